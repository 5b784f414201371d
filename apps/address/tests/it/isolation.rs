//! A user only ever sees and changes their own addresses: another user's address answers
//! exactly like one that does not exist.

use rpc::ErrorCode;
use uuid::Uuid;

use crate::helpers::{TestApp, User, address, expect_error, replacement};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_user_cannot_read_change_or_delete_an_address() {
    let app = TestApp::spawn().await;
    let alice = User::signed_up();
    let bob = User::signed_up();
    let alices = app.add(&alice, address("Alice")).await;
    let alices_other = app.add(&alice, address("Alice at work")).await;
    let bobs = app.add(&bob, address("Bob")).await;
    let guessed = Uuid::now_v7().to_string();

    for id in [&alices.id, &alices_other.id, &guessed] {
        let errors = [
            expect_error(app.get(&bob, id).await, ErrorCode::NotFound),
            expect_error(app.update(&bob, replacement(id)).await, ErrorCode::NotFound),
            expect_error(app.set_default(&bob, id).await, ErrorCode::NotFound),
            expect_error(app.delete(&bob, id).await, ErrorCode::NotFound),
        ];
        for error in errors {
            // The same answer for someone else's address and for one that does not exist.
            assert_eq!(error.message(), format!("address {id} not found"));
            assert!(error.details().is_empty());
        }
    }

    // Alice's addresses are as they were, and so is Bob's.
    assert_eq!(
        app.list(&alice).await,
        [alices.clone(), alices_other.clone()]
    );
    assert_eq!(app.get(&alice, &alices.id).await.unwrap(), alices);
    app.assert_only_default(&alice, &alices.id).await;
    assert_eq!(app.list(&bob).await, std::slice::from_ref(&bobs));
    app.assert_only_default(&bob, &bobs.id).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listing_shows_only_the_callers_addresses() {
    let app = TestApp::spawn().await;
    let alice = User::signed_up();
    let bob = User::signed_up();
    let carol = User::signed_up();
    for name in ["Alice 1", "Alice 2"] {
        app.add(&alice, address(name)).await;
    }
    app.add(&bob, address("Bob 1")).await;

    let names = |addresses: Vec<api::address::Address>| -> Vec<String> {
        addresses.into_iter().map(|a| a.recipient_name).collect()
    };
    assert_eq!(names(app.list(&alice).await), ["Alice 1", "Alice 2"]);
    assert_eq!(names(app.list(&bob).await), ["Bob 1"]);
    assert!(app.list(&carol).await.is_empty());
    assert!(
        app.list(&alice)
            .await
            .iter()
            .all(|a| a.user_id == alice.id.to_string())
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_user_has_their_own_default() {
    let app = TestApp::spawn().await;
    let alice = User::signed_up();
    let bob = User::signed_up();
    let alices = app.add(&alice, address("Alice")).await;
    let bobs = app.add(&bob, address("Bob")).await;
    assert!(alices.is_default && bobs.is_default);
    let bobs_new = app
        .add(
            &bob,
            api::address::CreateAddressRequest {
                is_default: true,
                ..address("Bob 2")
            },
        )
        .await;
    app.assert_only_default(&alice, &alices.id).await;
    app.assert_only_default(&bob, &bobs_new.id).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checkout_reads_an_address_only_of_the_user_it_names() {
    use api::address::GetUserAddressRequest;

    let app = TestApp::spawn().await;
    let alice = User::signed_up();
    let bob = User::signed_up();
    let alices = app.add(&alice, address("Alice")).await;
    let ask = |user: &User, id: &str| GetUserAddressRequest {
        user_id: user.id.to_string(),
        id: id.into(),
    };

    // The service the checkout runs in names the customer; the address must be theirs.
    let found = app
        .client
        .get_user_address(&crate::helpers::anonymous(), &ask(&alice, &alices.id))
        .await
        .unwrap();
    assert_eq!(found, alices);
    let error = expect_error(
        app.client
            .get_user_address(&crate::helpers::anonymous(), &ask(&bob, &alices.id))
            .await,
        ErrorCode::NotFound,
    );
    assert_eq!(error.message(), format!("address {} not found", alices.id));
}
