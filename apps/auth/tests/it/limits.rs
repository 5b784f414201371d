//! Login attempt limits and the bound on concurrent password hashing.

use rpc::ErrorCode;

use crate::helpers::{PASSWORD, TestApp, anonymous, expect_error, from_client};

const LIMITED: &str = "too many login attempts; try again later";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_is_locked_after_its_failures_and_unknown_emails_the_same_way() {
    let app = TestApp::spawn_with(|config| config.login_failures_per_account = 3).await;
    app.register("target@example.com", PASSWORD).await.unwrap();

    for email in ["target@example.com", "ghost@example.com"] {
        for _ in 0..3 {
            expect_error(
                app.login(email, "a wrong guess here").await,
                ErrorCode::Unauthenticated,
            );
        }
        // Past the limit even the right password is refused, with the same words for an
        // account that exists and one that does not.
        let limited = expect_error(app.login(email, PASSWORD).await, ErrorCode::RateLimited);
        assert_eq!(limited.message(), LIMITED);
        assert!(limited.details().is_empty());
    }
    // Other accounts are not affected.
    app.register("bystander@example.com", PASSWORD)
        .await
        .unwrap();
    app.login("bystander@example.com", PASSWORD).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successful_login_clears_the_failures() {
    let app = TestApp::spawn_with(|config| config.login_failures_per_account = 3).await;
    app.register("forgetful@example.com", PASSWORD)
        .await
        .unwrap();
    for _ in 0..2 {
        expect_error(
            app.login("forgetful@example.com", "a wrong guess here")
                .await,
            ErrorCode::Unauthenticated,
        );
    }
    app.login("forgetful@example.com", PASSWORD).await.unwrap();
    for _ in 0..2 {
        expect_error(
            app.login("forgetful@example.com", "a wrong guess here")
                .await,
            ErrorCode::Unauthenticated,
        );
    }
    app.login("forgetful@example.com", PASSWORD).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_is_limited_across_accounts_and_other_clients_are_not() {
    let app = TestApp::spawn_with(|config| config.login_attempts_per_client = 4).await;
    app.register("shared@example.com", PASSWORD).await.unwrap();
    let noisy = from_client("203.0.113.7");
    for n in 0..4 {
        let email = format!("guess{n}@example.com");
        expect_error(
            app.login_from(&noisy, &email, PASSWORD).await,
            ErrorCode::Unauthenticated,
        );
    }
    let limited = expect_error(
        app.login_from(&noisy, "shared@example.com", PASSWORD).await,
        ErrorCode::RateLimited,
    );
    assert_eq!(limited.message(), LIMITED);
    // Another client, and a caller without a client address, log in as usual.
    app.login_from(&from_client("198.51.100.2"), "shared@example.com", PASSWORD)
        .await
        .unwrap();
    app.login_from(&anonymous(), "shared@example.com", PASSWORD)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_logins_is_turned_away_instead_of_queueing_without_bound() {
    let app = TestApp::spawn_with(|config| {
        config.max_concurrent_hashes = Some(1);
        config.hash_queue_timeout_ms = 5;
    })
    .await;
    app.register("popular@example.com", PASSWORD).await.unwrap();

    let burst = (0..16).map(|_| app.login("popular@example.com", PASSWORD));
    let outcomes = futures::future::join_all(burst).await;
    let succeeded = outcomes.iter().filter(|o| o.is_ok()).count();
    let unavailable: Vec<_> = outcomes
        .iter()
        .filter_map(|o| o.as_ref().err())
        .inspect(|e| assert_eq!(e.code(), ErrorCode::Unavailable, "{e}"))
        .collect();
    assert!(succeeded >= 1, "at least the first login gets a slot");
    assert!(!unavailable.is_empty(), "some logins were turned away");
    assert!(
        !unavailable[0].message().contains("argon") && !unavailable[0].message().contains("slot"),
        "{}",
        unavailable[0]
    );
    // Once the burst is over, logins work again.
    app.login("popular@example.com", PASSWORD).await.unwrap();
}
