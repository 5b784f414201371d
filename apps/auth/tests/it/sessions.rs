//! Refresh tokens: rotation, reuse detection, concurrency and logout.

use api::auth::{GrantRoleRequest, LogoutRequest, RevokeRoleRequest};
use rpc::ErrorCode;

use crate::helpers::{TestApp, admin, anonymous, bad_fields, expect_error};

const REFUSED: &str = "the refresh token is invalid or expired; log in again";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_rotates_the_token_and_the_old_one_stops_working() {
    let app = TestApp::spawn().await;
    let first = app.signed_up("rota@example.com").await;
    let second = app.refresh(&first.refresh_token).await.unwrap();
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_eq!(second.user_id, first.user_id);
    assert_eq!(second.roles, ["customer"]);
    app.verifier().await.verify(&second.access_token).unwrap();

    let reused = expect_error(
        app.refresh(&first.refresh_token).await,
        ErrorCode::Unauthenticated,
    );
    assert_eq!(reused.message(), REFUSED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reusing_an_old_token_revokes_the_whole_session() {
    let app = TestApp::spawn().await;
    let first = app.signed_up("thief@example.com").await;
    let second = app.refresh(&first.refresh_token).await.unwrap();
    // Someone presents the stale token: the session ends for both holders.
    expect_error(
        app.refresh(&first.refresh_token).await,
        ErrorCode::Unauthenticated,
    );
    let after = expect_error(
        app.refresh(&second.refresh_token).await,
        ErrorCode::Unauthenticated,
    );
    assert_eq!(after.message(), REFUSED);

    // Another session of the same account is not affected.
    let other = app
        .login("thief@example.com", crate::helpers::PASSWORD)
        .await
        .unwrap();
    app.refresh(&other.refresh_token).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_concurrent_refreshes_of_one_token_at_most_one_succeeds() {
    let app = TestApp::spawn().await;
    let pair = app.signed_up("racer@example.com").await;
    let attempts = (0..12).map(|_| app.refresh(&pair.refresh_token));
    let outcomes = futures::future::join_all(attempts).await;
    let succeeded = outcomes.iter().filter(|o| o.is_ok()).count();
    assert!(succeeded <= 1, "{succeeded} refreshes succeeded");
    for outcome in &outcomes {
        if let Err(error) = outcome {
            assert_eq!(error.code(), ErrorCode::Unauthenticated, "{error}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_logout_the_refresh_token_is_refused_and_logout_is_idempotent() {
    let app = TestApp::spawn().await;
    let pair = app.signed_up("leaver@example.com").await;
    let rotated = app.refresh(&pair.refresh_token).await.unwrap();
    let logout = LogoutRequest {
        refresh_token: rotated.refresh_token.clone(),
    };
    app.client.logout(&anonymous(), &logout).await.unwrap();
    expect_error(
        app.refresh(&rotated.refresh_token).await,
        ErrorCode::Unauthenticated,
    );
    // Again, and with a token that never existed: still a success, so nothing is revealed.
    app.client.logout(&anonymous(), &logout).await.unwrap();
    app.client
        .logout(
            &anonymous(),
            &LogoutRequest {
                refresh_token: "never-issued".into(),
            },
        )
        .await
        .unwrap();
    let empty = expect_error(
        app.client
            .logout(&anonymous(), &LogoutRequest::default())
            .await,
        ErrorCode::InvalidArgument,
    );
    assert_eq!(bad_fields(&empty), ["refresh_token"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_malformed_refresh_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let unknown = expect_error(
        app.refresh("no-such-token").await,
        ErrorCode::Unauthenticated,
    );
    assert_eq!(unknown.message(), REFUSED);
    let empty = expect_error(app.refresh("").await, ErrorCode::InvalidArgument);
    assert_eq!(bad_fields(&empty), ["refresh_token"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_reads_the_roles_again() {
    let app = TestApp::spawn().await;
    let pair = app.signed_up("promoted@example.com").await;
    app.client
        .grant_role(
            &admin(),
            &GrantRoleRequest {
                user_id: pair.user_id.clone(),
                role: "seller".into(),
            },
        )
        .await
        .unwrap();
    app.client
        .revoke_role(
            &admin(),
            &RevokeRoleRequest {
                user_id: pair.user_id.clone(),
                role: "customer".into(),
            },
        )
        .await
        .unwrap();
    let refreshed = app.refresh(&pair.refresh_token).await.unwrap();
    assert_eq!(refreshed.roles, ["seller"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_for_a_deleted_account_is_refused() {
    let app = TestApp::spawn().await;
    let pair = app.signed_up("gone@example.com").await;
    sqlx::query("DELETE FROM accounts")
        .execute(app.db())
        .await
        .unwrap();
    expect_error(
        app.refresh(&pair.refresh_token).await,
        ErrorCode::Unauthenticated,
    );
}
