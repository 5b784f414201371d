//! Registration, login and roles: what a user and an admin see.

use api::auth::{GetAccountRequest, GrantRoleRequest, RevokeRoleRequest};
use auth_service::REGISTERED_MESSAGE;
use rpc::ErrorCode;

use crate::helpers::{PASSWORD, TestApp, admin, bad_fields, customer, expect_error};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_customer_gets_a_token_that_verifies_with_the_published_keys() {
    let app = TestApp::spawn().await;
    let registered = app.register("  Ada@Example.COM ", PASSWORD).await.unwrap();
    assert_eq!(registered.message, REGISTERED_MESSAGE);

    let pair = app.login("ada@example.com", PASSWORD).await.unwrap();
    assert_eq!(pair.token_type, "Bearer");
    assert_eq!(pair.expires_in, 900);
    assert_eq!(pair.refresh_expires_in, 30 * 24 * 3600);
    assert_eq!(pair.roles, ["customer"]);
    assert!(uuid::Uuid::parse_str(&pair.user_id).is_ok());
    assert_eq!(pair.refresh_token.len(), 43, "32 bytes, base64url");

    let verifier = app.verifier().await;
    let claims = verifier
        .verify(&pair.access_token)
        .expect("the token verifies");
    assert_eq!(claims.sub, pair.user_id);
    assert_eq!(claims.roles, ["customer"]);
    assert_eq!(claims.iss, tokens::DEFAULT_ISSUER);
    assert_eq!(claims.aud, tokens::DEFAULT_AUDIENCE);
    assert_eq!(claims.exp - claims.iat, 900);
    // The header: EdDSA, an access token, signed by a key of the published set.
    let header = access_token_header(&pair.access_token);
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], "at+jwt");
    let kid = header["kid"].as_str().unwrap();
    assert_eq!(verifier.key_ids(), [kid]);

    // The address is stored normalised, with an argon2id hash and never the password.
    let (email, hash): (String, String) =
        sqlx::query_as("SELECT email, password_hash FROM accounts")
            .fetch_one(app.db())
            .await
            .unwrap();
    assert_eq!(email, "ada@example.com");
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(!hash.contains(PASSWORD));
    app.stop().await;
}

fn access_token_header(token: &str) -> serde_json::Value {
    use base64::Engine as _;
    let header = token.split('.').next().unwrap();
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    serde_json::from_slice(&json).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_and_an_unknown_email_look_the_same() {
    let app = TestApp::spawn().await;
    app.register("grace@example.org", PASSWORD).await.unwrap();

    let wrong_password = expect_error(
        app.login("grace@example.org", "not the password at all")
            .await,
        ErrorCode::Unauthenticated,
    );
    let unknown_email = expect_error(
        app.login("nobody@example.org", PASSWORD).await,
        ErrorCode::Unauthenticated,
    );
    assert_eq!(wrong_password.message(), "invalid email or password");
    assert_eq!(wrong_password.to_body(), unknown_email.to_body());
    // Case and spaces do not matter for the right password.
    app.login(" GRACE@example.org", PASSWORD).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_a_taken_email_answers_the_same_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let first = app.register("linus@example.net", PASSWORD).await.unwrap();
    let again = app
        .register("Linus@Example.net", "another good passphrase")
        .await
        .unwrap();
    assert_eq!(first, again);

    assert_eq!(app.count("SELECT count(*) FROM accounts").await, 1);
    // One user.registered and one verification link, both of the first registration.
    assert_eq!(app.count("SELECT count(*) FROM events_outbox").await, 2);
    assert_eq!(
        app.count(
            "SELECT count(*) FROM events_outbox \
             WHERE event_name = 'user.email_verification_requested'"
        )
        .await,
        1
    );
    // The first password still works; the second one never became the account's.
    app.login("linus@example.net", PASSWORD).await.unwrap();
    expect_error(
        app.login("linus@example.net", "another good passphrase")
            .await,
        ErrorCode::Unauthenticated,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_policy_names_the_field_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let cases = [
        ("ada@example.com", "too short", vec!["password"]),
        ("ada@example.com", &"x".repeat(129), vec!["password"]),
        ("ada@example.com", "Password1234", vec!["password"]),
        (
            "ada.lovelace@example.com",
            "I am ada.lovelace!",
            vec!["password"],
        ),
        ("not-an-email", PASSWORD, vec!["email"]),
        ("two@@example.com", "short", vec!["email", "password"]),
        ("", "", vec!["email", "password"]),
    ];
    for (email, password, fields) in cases {
        let error = expect_error(
            app.register(email, password).await,
            ErrorCode::InvalidArgument,
        );
        assert_eq!(bad_fields(&error), fields, "{email:?} / {password:?}");
    }
    let common = expect_error(
        app.register("ada@example.com", "password1234").await,
        ErrorCode::InvalidArgument,
    );
    assert!(
        common.details()[0].problem.contains("too common"),
        "{common}"
    );
    assert_eq!(app.count("SELECT count(*) FROM accounts").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM events_outbox").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_role_shows_in_the_next_refreshed_token() {
    let app = TestApp::spawn().await;
    let pair = app.signed_up("seller@example.com").await;
    let account = app
        .client
        .grant_role(
            &admin(),
            &GrantRoleRequest {
                user_id: pair.user_id.clone(),
                role: "admin".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(account.roles, ["admin", "customer"]);
    // Granting again changes nothing.
    let again = app
        .client
        .grant_role(
            &admin(),
            &GrantRoleRequest {
                user_id: pair.user_id.clone(),
                role: "admin".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(again, account);

    let refreshed = app.refresh(&pair.refresh_token).await.unwrap();
    assert_eq!(refreshed.roles, ["admin", "customer"]);
    let claims = app
        .verifier()
        .await
        .verify(&refreshed.access_token)
        .unwrap();
    assert_eq!(claims.roles, ["admin", "customer"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_are_revoked_but_an_account_keeps_one() {
    let app = TestApp::spawn().await;
    let pair = app.signed_up("shop@example.com").await;
    let revoke = |role: &str| RevokeRoleRequest {
        user_id: pair.user_id.clone(),
        role: role.into(),
    };
    let last = expect_error(
        app.client.revoke_role(&admin(), &revoke("customer")).await,
        ErrorCode::FailedPrecondition,
    );
    assert!(last.message().contains("at least one role"), "{last}");

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
    let account = app
        .client
        .revoke_role(&admin(), &revoke("customer"))
        .await
        .unwrap();
    assert_eq!(account.roles, ["seller"]);
    // Revoking a role the account lacks changes nothing.
    let again = app
        .client
        .revoke_role(&admin(), &revoke("customer"))
        .await
        .unwrap();
    assert_eq!(again, account);
    let read = app
        .client
        .get_account(
            &admin(),
            &GetAccountRequest {
                user_id: pair.user_id.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(read, account);
    assert_eq!(read.email, "shop@example.com");
    assert!(read.updated_at.unwrap().seconds >= read.created_at.unwrap().seconds);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_requests_are_checked_and_admin_only() {
    let app = TestApp::spawn().await;
    let pair = app.signed_up("someone@example.com").await;
    let bad = expect_error(
        app.client
            .grant_role(
                &admin(),
                &GrantRoleRequest {
                    user_id: pair.user_id.clone(),
                    role: "root".into(),
                },
            )
            .await,
        ErrorCode::InvalidArgument,
    );
    assert_eq!(bad_fields(&bad), ["role"]);
    let bad = expect_error(
        app.client
            .revoke_role(
                &admin(),
                &RevokeRoleRequest {
                    user_id: "not-a-uuid".into(),
                    role: "customer".into(),
                },
            )
            .await,
        ErrorCode::InvalidArgument,
    );
    assert_eq!(bad_fields(&bad), ["user_id"]);
    let nobody = uuid::Uuid::now_v7().to_string();
    expect_error(
        app.client
            .grant_role(
                &admin(),
                &GrantRoleRequest {
                    user_id: nobody.clone(),
                    role: "seller".into(),
                },
            )
            .await,
        ErrorCode::NotFound,
    );
    expect_error(
        app.client
            .get_account(&admin(), &GetAccountRequest { user_id: nobody })
            .await,
        ErrorCode::NotFound,
    );
    expect_error(
        app.client
            .grant_role(
                &customer(),
                &GrantRoleRequest {
                    user_id: pair.user_id.clone(),
                    role: "admin".into(),
                },
            )
            .await,
        ErrorCode::PermissionDenied,
    );
}
