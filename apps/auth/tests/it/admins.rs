//! The first admin: made once by `auth-service bootstrap-admin`, never by registering.

use std::process::Output;

use api::auth::UserRegistered;
use api::auth::events::USER_REGISTERED;
use auth_service::commands::{self, BootstrapError, Bootstrapped};
use auth_service::domain::{Email, Password};
use auth_service::passwords::PasswordHasher;
use tokio::io::AsyncWriteExt as _;

use crate::helpers::{PASSWORD, TestApp};

/// How the password reaches the command.
enum Given<'a> {
    Env(&'a str),
    Stdin(&'a str),
}

/// Runs the real binary's `bootstrap-admin` against the test's database.
async fn bootstrap_admin(app: &TestApp, email: &str, password: Given<'_>) -> Output {
    let database_url = app.config.postgres.database_url.clone().unwrap();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_auth-service"));
    command
        .args(["bootstrap-admin", "--email", email, "--database-url"])
        .arg(&database_url)
        .env_remove("ADMIN_PASSWORD")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let stdin_text = match password {
        Given::Env(password) => {
            command.env("ADMIN_PASSWORD", password);
            String::new()
        }
        Given::Stdin(password) => format!("{password}\n"),
    };
    let mut child = command
        .spawn()
        .expect("running auth-service bootstrap-admin");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(stdin_text.as_bytes()).await.unwrap();
    drop(stdin);
    child.wait_with_output().await.unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bootstrap_command_makes_the_first_admin_once() {
    let app = TestApp::spawn().await;

    let made = bootstrap_admin(&app, " Boss@Example.com", Given::Env(PASSWORD)).await;
    assert!(made.status.success(), "{}", text(&made.stderr));
    assert!(
        text(&made.stdout).contains("created the first admin"),
        "{}",
        text(&made.stdout)
    );
    let boss = app.login("boss@example.com", PASSWORD).await.unwrap();
    assert_eq!(boss.roles, ["admin", "customer"]);
    let claims = app.verifier().await.verify(&boss.access_token).unwrap();
    assert_eq!(claims.roles, ["admin", "customer"]);

    // Like a registration, it announces the account (the running service's relay publishes it).
    let messages = app.published(&USER_REGISTERED, 1).await;
    let event: UserRegistered = serde_json::from_slice(&messages[0].payload).unwrap();
    assert_eq!(event.user_id, boss.user_id);
    assert_eq!(event.email, "boss@example.com");
    assert_eq!(event.roles, ["admin", "customer"]);

    // A second run refuses, for another address and for the same one.
    for email in ["second@example.com", "boss@example.com"] {
        let again = bootstrap_admin(&app, email, Given::Stdin("another good passphrase")).await;
        assert!(
            !again.status.success(),
            "a second bootstrap for {email} succeeded"
        );
        assert!(
            text(&again.stderr).contains("an admin already exists"),
            "{}",
            text(&again.stderr)
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM accounts").await, 1);
    // user.registered and, as for any new account, the first verification link.
    assert_eq!(app.count("SELECT count(*) FROM events_outbox").await, 2);
    assert_eq!(
        app.count(
            "SELECT count(*) FROM events_outbox \
             WHERE event_name = 'user.email_verification_requested'"
        )
        .await,
        1
    );
    crate::helpers::expect_error(
        app.login("second@example.com", "another good passphrase")
            .await,
        rpc::ErrorCode::Unauthenticated,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_account_becomes_the_first_admin_only_with_its_own_password() {
    let app = TestApp::spawn().await;
    // Somebody registered the address before the operator ran the command.
    app.register("ops@example.com", PASSWORD).await.unwrap();

    let refused = bootstrap_admin(
        &app,
        "ops@example.com",
        Given::Stdin("the operator's own passphrase"),
    )
    .await;
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("not its password"),
        "{}",
        text(&refused.stderr)
    );
    assert_eq!(
        app.login("ops@example.com", PASSWORD).await.unwrap().roles,
        ["customer"]
    );

    let promoted = bootstrap_admin(&app, "ops@example.com", Given::Stdin(PASSWORD)).await;
    assert!(promoted.status.success(), "{}", text(&promoted.stderr));
    assert_eq!(
        app.login("ops@example.com", PASSWORD).await.unwrap().roles,
        ["admin", "customer"]
    );
    // Promoting registers nobody: the events are the registration's (the account and its
    // verification link).
    assert_eq!(app.count("SELECT count(*) FROM events_outbox").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_bootstraps_make_exactly_one_admin() {
    let app = TestApp::spawn().await;
    let hasher = PasswordHasher::new(4, std::time::Duration::from_secs(60)).unwrap();
    let password = Password::new(PASSWORD.to_owned());
    let emails: Vec<Email> = (0..4)
        .map(|n| Email::parse(&format!("first{n}@example.com")).unwrap())
        .collect();

    let runs = emails
        .iter()
        .map(|email| commands::bootstrap_admin(app.db(), &hasher, email, &password));
    let outcomes = futures::future::join_all(runs).await;

    let made = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(Bootstrapped::Created(_))))
        .count();
    assert_eq!(made, 1, "{outcomes:?}");
    for outcome in outcomes.iter().filter(|o| o.is_err()) {
        assert!(
            matches!(outcome, Err(BootstrapError::AdminExists)),
            "{outcome:?}"
        );
    }
    assert_eq!(
        app.count("SELECT count(*) FROM accounts WHERE 'admin' = ANY (roles)")
            .await,
        1
    );
    assert_eq!(app.count("SELECT count(*) FROM accounts").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_a_formerly_listed_address_gives_only_the_customer_role() {
    // A deployment that still sets the removed --admin-emails starts, and the address it
    // lists registers like any other.
    let app = TestApp::spawn_with(|config| {
        config.removed_admin_emails = vec!["Boss@Example.com".into()];
    })
    .await;
    let boss = app.signed_up("boss@example.com").await;
    assert_eq!(boss.roles, ["customer"]);
    let claims = app.verifier().await.verify(&boss.access_token).unwrap();
    assert_eq!(claims.roles, ["customer"]);
    assert_eq!(
        app.count("SELECT count(*) FROM accounts WHERE 'admin' = ANY (roles)")
            .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_seller_is_seeded_once_with_its_fixed_id() {
    let app = TestApp::spawn_with(|config| {
        config.seed_demo_seller_password = Some(PASSWORD.to_owned());
    })
    .await;
    let seller = app
        .login(vocab::demo::DEMO_SELLER_EMAIL, PASSWORD)
        .await
        .expect("the demo seller signs in");
    assert_eq!(seller.user_id, vocab::demo::DEMO_SELLER_ID);
    assert_eq!(seller.roles, ["customer", "seller"]);
    let events = app.published(&USER_REGISTERED, 1).await;
    assert_eq!(events.len(), 1);

    // A second start (a restart, another replica) finds it and changes nothing.
    let replica = app.start_replica().await;
    let password_hash: String = sqlx::query_scalar("SELECT password_hash FROM accounts")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(
        app.count("SELECT count(*) FROM accounts").await,
        1,
        "one account"
    );
    assert!(
        app.login(vocab::demo::DEMO_SELLER_EMAIL, PASSWORD)
            .await
            .is_ok()
    );
    let unchanged: String = sqlx::query_scalar("SELECT password_hash FROM accounts")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(password_hash, unchanged);
    assert_eq!(app.events_of(&USER_REGISTERED).await.len(), 1);
    replica.stop().await;
    app.stop().await;
}
