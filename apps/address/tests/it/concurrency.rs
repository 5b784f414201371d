//! Concurrent writes of one user, and the cap on how many addresses a user keeps.

use futures::future::join_all;
use rpc::ErrorCode;

use crate::helpers::{TestApp, User, address, expect_error};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_addresses_end_with_exactly_one_default() {
    let app = TestApp::spawn().await;
    let user = User::signed_up();
    let results =
        join_all((0..20).map(|i| app.create(&user, address(&format!("Racer {i}"))))).await;
    let created: Vec<_> = results
        .into_iter()
        .map(|result| result.expect("every concurrent create succeeds"))
        .collect();
    assert_eq!(created.iter().filter(|a| a.is_default).count(), 1);
    assert_eq!(app.stored_count(&user).await, 20);
    let defaults = app.stored_defaults(&user).await;
    assert_eq!(defaults.len(), 1);
    let answered_default = created.iter().find(|a| a.is_default).unwrap();
    assert_eq!(defaults, std::slice::from_ref(&answered_default.id));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_as_default_end_with_exactly_one_default() {
    let app = TestApp::spawn().await;
    let user = User::signed_up();
    let requests = (0..20).map(|i| api::address::CreateAddressRequest {
        is_default: true,
        ..address(&format!("Racer {i}"))
    });
    let results = join_all(requests.map(|request| app.create(&user, request))).await;
    for result in results {
        assert!(result.expect("every concurrent create succeeds").is_default);
    }
    assert_eq!(app.stored_count(&user).await, 20);
    assert_eq!(app.stored_defaults(&user).await.len(), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_set_defaults_end_with_exactly_one_default() {
    let app = TestApp::spawn().await;
    let user = User::signed_up();
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(app.add(&user, address(&format!("Address {i}"))).await.id);
    }
    // Every address twice, interleaved, all at once.
    let requests = ids.iter().chain(ids.iter().rev());
    let results = join_all(requests.map(|id| app.set_default(&user, id))).await;
    for result in results {
        assert!(
            result
                .expect("every concurrent set-default succeeds")
                .is_default
        );
    }
    let defaults = app.stored_defaults(&user).await;
    assert_eq!(defaults.len(), 1, "{defaults:?}");
    let listed = app.list(&user).await;
    assert_eq!(listed.iter().filter(|a| a.is_default).count(), 1);
    assert_eq!(listed[0].id, defaults[0], "the default is listed first");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deletes_and_creates_never_leave_a_user_without_a_default() {
    let app = TestApp::spawn().await;
    let user = User::signed_up();
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(app.add(&user, address(&format!("Old {i}"))).await.id);
    }
    let deletes = join_all(ids.iter().map(|id| app.delete(&user, id)));
    let creates = join_all((0..5).map(|i| app.create(&user, address(&format!("New {i}")))));
    let (deleted, created) = tokio::join!(deletes, creates);
    for result in deleted {
        result.expect("every concurrent delete succeeds");
    }
    for result in created {
        result.expect("every concurrent create succeeds");
    }
    assert_eq!(app.stored_count(&user).await, 5);
    assert_eq!(app.stored_defaults(&user).await.len(), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_user_keeps_at_most_fifty_addresses_even_when_racing_past_the_cap() {
    let app = TestApp::spawn().await;
    let user = User::signed_up();
    let other = User::signed_up();
    let results = join_all((0..55).map(|i| app.create(&user, address(&format!("No. {i}"))))).await;
    let mut created = Vec::new();
    for result in results {
        match result {
            Ok(address) => created.push(address),
            Err(error) => {
                assert_eq!(error.code(), ErrorCode::FailedPrecondition, "{error}");
                assert!(error.message().contains("50 addresses"), "{error}");
            }
        }
    }
    assert_eq!(created.len(), 50);
    assert_eq!(app.stored_count(&user).await, 50);

    let error = expect_error(
        app.create(&user, address("One more")).await,
        ErrorCode::FailedPrecondition,
    );
    assert_eq!(
        error.message(),
        "you already have 50 addresses, the most one user may keep; delete one to add another"
    );

    // The cap is per user, and deleting one makes room again.
    app.add(&other, address("Someone else")).await;
    app.delete(&user, &created[0].id).await.unwrap();
    app.add(&user, address("Fiftieth again")).await;
    assert_eq!(app.stored_count(&user).await, 50);
    assert_eq!(app.stored_defaults(&user).await.len(), 1);
    app.stop().await;
}
