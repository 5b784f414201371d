//! The default address: the first one, moved on request, promoted on delete, always exactly
//! one while the user has addresses.

use rpc::ErrorCode;

use crate::helpers::{TestApp, User, address, expect_error, replacement};
use api::address::CreateAddressRequest;

fn as_default(name: &str) -> CreateAddressRequest {
    CreateAddressRequest {
        is_default: true,
        ..address(name)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_address_is_the_default_and_later_ones_are_not() {
    let app = TestApp::spawn().await;
    let user = User::signed_up();
    let first = app.add(&user, address("First")).await;
    assert!(
        first.is_default,
        "the first address becomes the default unasked"
    );
    let second = app.add(&user, address("Second")).await;
    assert!(!second.is_default);
    app.assert_only_default(&user, &first.id).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_an_address_as_default_moves_the_default() {
    let app = TestApp::spawn().await;
    let user = User::signed_up();
    let first = app.add(&user, address("First")).await;
    let second = app.add(&user, as_default("Second")).await;
    assert!(second.is_default);
    assert!(!app.get(&user, &first.id).await.unwrap().is_default);
    app.assert_only_default(&user, &second.id).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setting_the_default_moves_it_and_exactly_one_remains() {
    let app = TestApp::spawn().await;
    let user = User::signed_up();
    let first = app.add(&user, address("First")).await;
    let second = app.add(&user, address("Second")).await;
    let third = app.add(&user, address("Third")).await;

    let now_default = app.set_default(&user, &second.id).await.unwrap();
    assert!(now_default.is_default);
    assert_eq!(now_default.recipient_name, "Second");
    app.assert_only_default(&user, &second.id).await;
    let flags: Vec<(String, bool)> = app
        .list(&user)
        .await
        .into_iter()
        .map(|a| (a.recipient_name, a.is_default))
        .collect();
    assert_eq!(
        flags,
        [
            ("Second".to_owned(), true),
            ("Third".to_owned(), false),
            ("First".to_owned(), false)
        ]
    );

    // Setting the default again changes nothing.
    let again = app.set_default(&user, &second.id).await.unwrap();
    assert_eq!(again, app.get(&user, &second.id).await.unwrap());
    app.assert_only_default(&user, &second.id).await;

    app.set_default(&user, &third.id).await.unwrap();
    app.set_default(&user, &first.id).await.unwrap();
    app.assert_only_default(&user, &first.id).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_an_address_keeps_whether_it_is_the_default() {
    let app = TestApp::spawn().await;
    let user = User::signed_up();
    let first = app.add(&user, address("First")).await;
    let second = app.add(&user, address("Second")).await;
    assert!(
        app.update(&user, replacement(&first.id))
            .await
            .unwrap()
            .is_default
    );
    assert!(
        !app.update(&user, replacement(&second.id))
            .await
            .unwrap()
            .is_default
    );
    app.assert_only_default(&user, &first.id).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_default_promotes_the_newest_remaining_address() {
    let app = TestApp::spawn().await;
    let user = User::signed_up();
    let first = app.add(&user, address("First")).await;
    let second = app.add(&user, address("Second")).await;
    let third = app.add(&user, address("Third")).await;
    app.set_default(&user, &second.id).await.unwrap();

    app.delete(&user, &second.id).await.unwrap();
    app.assert_only_default(&user, &third.id).await;
    assert!(app.get(&user, &third.id).await.unwrap().is_default);

    app.delete(&user, &third.id).await.unwrap();
    app.assert_only_default(&user, &first.id).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_another_address_keeps_the_default() {
    let app = TestApp::spawn().await;
    let user = User::signed_up();
    let first = app.add(&user, address("First")).await;
    let second = app.add(&user, address("Second")).await;
    app.delete(&user, &second.id).await.unwrap();
    app.assert_only_default(&user, &first.id).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_last_address_leaves_none_and_the_next_one_is_the_default() {
    let app = TestApp::spawn().await;
    let user = User::signed_up();
    let only = app.add(&user, address("Only")).await;
    app.delete(&user, &only.id).await.unwrap();
    assert!(app.list(&user).await.is_empty());
    assert_eq!(app.stored_count(&user).await, 0);
    expect_error(app.set_default(&user, &only.id).await, ErrorCode::NotFound);

    let next = app.add(&user, address("Next")).await;
    assert!(next.is_default);
    app.assert_only_default(&user, &next.id).await;
    app.stop().await;
}
