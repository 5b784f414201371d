//! Email verification and password reset, end to end: the links' tokens are read from the
//! events on EVENTS_USER the way the notification service reads them, and presented back the
//! way the web app's pages do.

use std::marker::PhantomData;
use std::time::Duration;

use api::auth::{
    EmailVerificationRequested, GetAccountRequest, GetMyAccountRequest, PasswordResetRequested,
    RequestEmailVerificationRequest, RequestPasswordResetRequest, ResetPasswordRequest,
    VerifyEmailRequest,
};
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use auth_service::clock::Clock;
use auth_service::{PASSWORD_RESET_MESSAGE, RESET_REQUESTED_MESSAGE};
use futures::StreamExt as _;
use rpc::{Context, ErrorCode};

use crate::helpers::{PASSWORD, TestApp, admin, anonymous, bad_fields, expect_error, from_client};

const NEW_PASSWORD: &str = "a brand new passphrase";
const REFUSED_TOKEN: &str = "is invalid, expired or already used; ask for a new link";

/// The events of one type as the notification service receives them: a consumer on the
/// event's stream, filtered to its type, from the start of the stream.
struct Mailbox<E> {
    messages: pull::Stream,
    _event: PhantomData<E>,
}

impl<E: api::Event + serde::de::DeserializeOwned> Mailbox<E> {
    async fn open(app: &TestApp) -> Self {
        let descriptor = E::DESCRIPTOR;
        events::streams::ensure_exists(&app.jetstream, descriptor.domain)
            .await
            .unwrap();
        let stream = app
            .jetstream
            .get_stream(events::names::stream_of(descriptor))
            .await
            .unwrap();
        let consumer = stream
            .create_consumer(pull::Config {
                filter_subject: events::names::filter_subject(descriptor),
                deliver_policy: DeliverPolicy::All,
                ack_policy: AckPolicy::None,
                ..Default::default()
            })
            .await
            .unwrap();
        Self {
            messages: consumer.messages().await.unwrap(),
            _event: PhantomData,
        }
    }

    /// The next event; fails after ten seconds without one.
    async fn next(&mut self) -> E {
        let message = tokio::time::timeout(Duration::from_secs(10), self.messages.next())
            .await
            .unwrap_or_else(|_| panic!("no {} event within 10 s", E::DESCRIPTOR.name))
            .expect("the consumer ended")
            .expect("reading the event");
        serde_json::from_slice(&message.payload).expect("decoding the event")
    }

    /// Asserts no further event arrives well past the outbox relay's poll interval.
    async fn expect_nothing_more(&mut self) {
        let next = tokio::time::timeout(Duration::from_millis(1_000), self.messages.next()).await;
        assert!(next.is_err(), "an unexpected {} event", E::DESCRIPTOR.name);
    }
}

type VerificationMail = Mailbox<EmailVerificationRequested>;
type ResetMail = Mailbox<PasswordResetRequested>;

impl TestApp {
    async fn verify_email(&self, token: &str) -> Result<bool, rpc::Error> {
        self.client
            .verify_email(
                &anonymous(),
                &VerifyEmailRequest {
                    token: token.into(),
                },
            )
            .await
            .map(|response| response.email_verified)
    }

    async fn email_verified(&self, user_id: &str) -> bool {
        let mine = self
            .client
            .get_my_account(&customer(user_id), &GetMyAccountRequest {})
            .await
            .expect("reading my account");
        let seen_by_admin = self
            .client
            .get_account(
                &admin(),
                &GetAccountRequest {
                    user_id: user_id.into(),
                },
            )
            .await
            .expect("reading the account as an admin");
        assert_eq!(mine.email_verified, seen_by_admin.email_verified);
        assert_eq!(mine.email_verified, mine.email_verified_at.is_some());
        mine.email_verified
    }

    async fn ask_for_verification(
        &self,
        user_id: &str,
    ) -> Result<api::auth::EmailLinkResponse, rpc::Error> {
        self.client
            .request_email_verification(&customer(user_id), &RequestEmailVerificationRequest {})
            .await
    }

    async fn ask_for_reset_from(
        &self,
        ctx: &Context,
        email: &str,
    ) -> Result<api::auth::EmailLinkResponse, rpc::Error> {
        self.client
            .request_password_reset(
                ctx,
                &RequestPasswordResetRequest {
                    email: email.into(),
                },
            )
            .await
    }

    async fn ask_for_reset(&self, email: &str) -> Result<api::auth::EmailLinkResponse, rpc::Error> {
        self.ask_for_reset_from(&anonymous(), email).await
    }

    async fn reset_password(&self, token: &str, new_password: &str) -> Result<String, rpc::Error> {
        self.client
            .reset_password(
                &anonymous(),
                &ResetPasswordRequest {
                    token: token.into(),
                    new_password: new_password.into(),
                },
            )
            .await
            .map(|response| response.message)
    }
}

/// The account's own view, as the gateway forwards a signed-in user's request.
fn customer(user_id: &str) -> Context {
    testkit::callers::customer(user_id)
}

/// A token of the right shape that was never issued.
fn forged_token() -> String {
    auth_service::email_links::generate().expose().to_owned()
}

#[track_caller]
fn assert_refused_token(result: Result<impl std::fmt::Debug, rpc::Error>, token: &str) {
    let error = expect_error(result, ErrorCode::InvalidArgument);
    assert_eq!(bad_fields(&error), ["token"]);
    assert_eq!(error.details()[0].problem, REFUSED_TOKEN);
    assert!(
        !error.to_string().contains(token),
        "the token is echoed: {error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_sends_a_verification_link_that_verifies_the_email_once() {
    let app = TestApp::spawn().await;
    let mut mail = VerificationMail::open(&app).await;
    let pair = app.signed_up("Verify.Me@Example.com").await;
    assert!(!app.email_verified(&pair.user_id).await);

    let link = mail.next().await;
    assert_eq!(link.user_id, pair.user_id);
    assert_eq!(link.email, "verify.me@example.com");
    let expires_at = link.expires_at.expect("an expiry").seconds;
    let in_a_day = chrono::Utc::now().timestamp() + 24 * 3_600;
    assert!(
        (expires_at - in_a_day).abs() < 60,
        "expires at {expires_at}"
    );
    // Only the hash is stored.
    let stored: String = sqlx::query_scalar("SELECT token_hash FROM email_link_tokens")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_ne!(stored, link.token);
    assert_eq!(
        stored,
        auth_service::domain::sha256_hex(link.token.as_bytes())
    );

    assert!(app.verify_email(&link.token).await.unwrap());
    assert!(app.email_verified(&pair.user_id).await);

    // A link works once.
    assert_refused_token(app.verify_email(&link.token).await, &link.token);
    assert!(app.email_verified(&pair.user_id).await);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ones_own_account_and_verification_links_need_a_signed_in_user() {
    let app = TestApp::spawn().await;
    let mut mail = VerificationMail::open(&app).await;
    let pair = app.signed_up("mine@example.com").await;
    mail.next().await;

    expect_error(
        app.client
            .get_my_account(&anonymous(), &GetMyAccountRequest {})
            .await,
        ErrorCode::Unauthenticated,
    );
    expect_error(
        app.client
            .request_email_verification(&anonymous(), &RequestEmailVerificationRequest {})
            .await,
        ErrorCode::Unauthenticated,
    );
    // Each user sees their own account only: the request names no account.
    let mine = app
        .client
        .get_my_account(&customer(&pair.user_id), &GetMyAccountRequest {})
        .await
        .unwrap();
    assert_eq!(mine.user_id, pair.user_id);
    assert_eq!(mine.email, "mine@example.com");
    assert!(!mine.email_verified);
    assert_eq!(mine.email_verified_at, None);
    mail.expect_nothing_more().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verification_link_expires_after_a_day() {
    let clock = Clock::system();
    let app = TestApp::spawn_with_clock(clock.clone(), |_| {}).await;
    let mut mail = VerificationMail::open(&app).await;
    let late = app.signed_up("late@example.com").await;
    let late_link = mail.next().await;
    let prompt = app.signed_up("prompt@example.com").await;
    let prompt_link = mail.next().await;

    clock.advance(Duration::from_secs(23 * 3_600 + 59 * 60));
    app.verify_email(&prompt_link.token).await.unwrap();
    assert!(app.email_verified(&prompt.user_id).await);

    clock.advance(Duration::from_secs(2 * 60));
    assert_refused_token(app.verify_email(&late_link.token).await, &late_link.token);
    assert!(!app.email_verified(&late.user_id).await);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_misused_tokens_are_refused_alike() {
    let app = TestApp::spawn().await;
    let mut mail = VerificationMail::open(&app).await;
    let mut resets = ResetMail::open(&app).await;
    let pair = app.signed_up("forged@example.com").await;
    let verification = mail.next().await;
    app.ask_for_reset("forged@example.com").await.unwrap();
    let reset = resets.next().await;

    let forged = forged_token();
    assert_refused_token(app.verify_email(&forged).await, &forged);
    assert_refused_token(app.reset_password(&forged, NEW_PASSWORD).await, &forged);
    // A token of one kind is no token of the other.
    assert_refused_token(app.verify_email(&reset.token).await, &reset.token);
    assert_refused_token(
        app.reset_password(&verification.token, NEW_PASSWORD).await,
        &verification.token,
    );
    // A token with one character changed.
    let mut altered = verification.token.clone().into_bytes();
    altered[0] = if altered[0] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    assert_refused_token(app.verify_email(&altered).await, &altered);
    // What cannot be a token at all reads the same, without a lookup.
    for malformed in ["not-a-token", "%%%%", &"a".repeat(44)] {
        assert_refused_token(app.verify_email(malformed).await, malformed);
    }
    let too_long = "a".repeat(65);
    let error = expect_error(
        app.verify_email(&too_long).await,
        ErrorCode::InvalidArgument,
    );
    assert_eq!(bad_fields(&error), ["token"]);
    let error = expect_error(app.verify_email("").await, ErrorCode::InvalidArgument);
    assert_eq!(bad_fields(&error), ["token"]);

    // Nothing was verified or changed, and the real tokens still work.
    assert!(!app.email_verified(&pair.user_id).await);
    app.login("forged@example.com", PASSWORD).await.unwrap();
    app.verify_email(&verification.token).await.unwrap();
    app.reset_password(&reset.token, NEW_PASSWORD)
        .await
        .unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verification_link_stops_working_once_the_account_has_another_email() {
    let app = TestApp::spawn().await;
    let mut mail = VerificationMail::open(&app).await;
    let pair = app.signed_up("old.address@example.com").await;
    let link = mail.next().await;
    // No route changes an address yet; whatever does will clear the verification too.
    sqlx::query("UPDATE accounts SET email = 'new.address@example.com' WHERE id = $1::uuid")
        .bind(&pair.user_id)
        .execute(app.db())
        .await
        .unwrap();

    assert_refused_token(app.verify_email(&link.token).await, &link.token);
    assert!(!app.email_verified(&pair.user_id).await);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_for_verification_links_is_limited_per_account() {
    let clock = Clock::system();
    let app = TestApp::spawn_with_clock(clock.clone(), |_| {}).await;
    let mut mail = VerificationMail::open(&app).await;
    let pair = app.signed_up("asker@example.com").await;
    let other = app.signed_up("other@example.com").await;
    mail.next().await;
    mail.next().await;

    // Registering sent one a moment ago.
    let limited = expect_error(
        app.ask_for_verification(&pair.user_id).await,
        ErrorCode::RateLimited,
    );
    assert!(limited.message().contains("try again later"), "{limited}");

    // One a minute, five a day (registration's included).
    let mut tokens = Vec::new();
    for _ in 0..4 {
        clock.advance(Duration::from_secs(61));
        let accepted = app.ask_for_verification(&pair.user_id).await.unwrap();
        assert_eq!(accepted.http_status, 202);
        let link = mail.next().await;
        assert_eq!(link.user_id, pair.user_id);
        tokens.push(link.token);
        expect_error(
            app.ask_for_verification(&pair.user_id).await,
            ErrorCode::RateLimited,
        );
    }
    clock.advance(Duration::from_secs(61));
    expect_error(
        app.ask_for_verification(&pair.user_id).await,
        ErrorCode::RateLimited,
    );
    // Another account has its own allowance.
    app.ask_for_verification(&other.user_id).await.unwrap();
    assert_eq!(mail.next().await.user_id, other.user_id);

    // A day later, one more.
    clock.advance(Duration::from_secs(24 * 3_600));
    app.ask_for_verification(&pair.user_id).await.unwrap();
    let fresh = mail.next().await;
    // The links of the day before have expired by now.
    assert_refused_token(app.verify_email(&tokens[0]).await, &tokens[0]);
    app.verify_email(&fresh.token).await.unwrap();
    assert!(app.email_verified(&pair.user_id).await);

    // Verified: a request is answered the same, and sends nothing.
    clock.advance(Duration::from_secs(61));
    let accepted = app.ask_for_verification(&pair.user_id).await.unwrap();
    assert_eq!(accepted.http_status, 202);
    mail.expect_nothing_more().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_reset_sets_the_new_password_and_ends_every_session() {
    let app = TestApp::spawn().await;
    let mut resets = ResetMail::open(&app).await;
    let first = app.signed_up("reset.me@example.com").await;
    let second = app.login("reset.me@example.com", PASSWORD).await.unwrap();
    let bystander = app.signed_up("bystander@example.com").await;

    let accepted = app.ask_for_reset("Reset.Me@Example.com").await.unwrap();
    assert_eq!(accepted.http_status, 202);
    assert_eq!(accepted.message, RESET_REQUESTED_MESSAGE);
    let link = resets.next().await;
    assert_eq!(link.user_id, first.user_id);
    assert_eq!(link.email, "reset.me@example.com");
    let expires_at = link.expires_at.expect("an expiry").seconds;
    let in_half_an_hour = chrono::Utc::now().timestamp() + 30 * 60;
    assert!(
        (expires_at - in_half_an_hour).abs() < 60,
        "expires at {expires_at}"
    );

    // Asking changes nothing yet.
    app.login("reset.me@example.com", PASSWORD).await.unwrap();
    let third = app.login("reset.me@example.com", PASSWORD).await.unwrap();

    let message = app.reset_password(&link.token, NEW_PASSWORD).await.unwrap();
    assert_eq!(message, PASSWORD_RESET_MESSAGE);

    let refused = expect_error(
        app.login("reset.me@example.com", PASSWORD).await,
        ErrorCode::Unauthenticated,
    );
    assert_eq!(refused.message(), "invalid email or password");
    let fresh = app
        .login("reset.me@example.com", NEW_PASSWORD)
        .await
        .unwrap();
    assert_eq!(fresh.user_id, first.user_id);
    // Every refresh token issued before the reset is refused; the new session's works.
    for old in [&first, &second, &third] {
        expect_error(
            app.refresh(&old.refresh_token).await,
            ErrorCode::Unauthenticated,
        );
    }
    app.refresh(&fresh.refresh_token).await.unwrap();
    // Another account's sessions are untouched.
    app.refresh(&bystander.refresh_token).await.unwrap();

    // The link works once.
    assert_refused_token(
        app.reset_password(&link.token, "yet another passphrase")
            .await,
        &link.token,
    );
    app.login("reset.me@example.com", NEW_PASSWORD)
        .await
        .unwrap();

    // What an operator watches: links asked for, issued and used, by purpose and outcome;
    // never a token. (The tests of this binary share one recorder: names, not counts.)
    let metrics = metrics(&app).await;
    for expected in [
        "auth_email_links_issued_total{purpose=\"verify_email\"}",
        "auth_email_links_issued_total{purpose=\"reset_password\"}",
        "auth_email_link_requests_total{purpose=\"reset_password\",outcome=\"ok\"}",
        "auth_email_links_consumed_total{purpose=\"reset_password\",outcome=\"ok\"}",
        "auth_email_links_consumed_total{purpose=\"reset_password\",outcome=\"refused\"}",
    ] {
        assert!(
            metrics.contains(expected),
            "{expected} in /metrics:\n{metrics}"
        );
    }
    assert!(!metrics.contains(&link.token));
    app.stop().await;
}

/// The service's `/metrics` from its admin port.
async fn metrics(app: &TestApp) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(app.admin_addr())
        .await
        .unwrap();
    let request = "GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n";
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_link_expires_after_30_minutes() {
    let clock = Clock::system();
    let app = TestApp::spawn_with_clock(clock.clone(), |_| {}).await;
    let mut resets = ResetMail::open(&app).await;
    app.register("slow@example.com", PASSWORD).await.unwrap();
    app.register("quick@example.com", PASSWORD).await.unwrap();
    app.ask_for_reset("slow@example.com").await.unwrap();
    let slow = resets.next().await;
    app.ask_for_reset("quick@example.com").await.unwrap();
    let quick = resets.next().await;

    clock.advance(Duration::from_secs(29 * 60));
    app.reset_password(&quick.token, NEW_PASSWORD)
        .await
        .unwrap();
    app.login("quick@example.com", NEW_PASSWORD).await.unwrap();

    clock.advance(Duration::from_secs(2 * 60));
    assert_refused_token(
        app.reset_password(&slow.token, NEW_PASSWORD).await,
        &slow.token,
    );
    app.login("slow@example.com", PASSWORD).await.unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_reset_link_supersedes_the_older_ones() {
    let app = TestApp::spawn().await;
    let mut resets = ResetMail::open(&app).await;
    app.register("twice@example.com", PASSWORD).await.unwrap();
    app.ask_for_reset("twice@example.com").await.unwrap();
    let older = resets.next().await;
    app.ask_for_reset("twice@example.com").await.unwrap();
    let newer = resets.next().await;
    assert_ne!(older.token, newer.token);

    assert_refused_token(
        app.reset_password(&older.token, NEW_PASSWORD).await,
        &older.token,
    );
    app.reset_password(&newer.token, NEW_PASSWORD)
        .await
        .unwrap();
    app.login("twice@example.com", NEW_PASSWORD).await.unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_for_an_unknown_address_answers_like_a_known_one_and_publishes_nothing() {
    let app = TestApp::spawn().await;
    let mut resets = ResetMail::open(&app).await;
    app.register("known@example.com", PASSWORD).await.unwrap();

    let unknown = app.ask_for_reset("nobody@example.com").await.unwrap();
    let known = app.ask_for_reset("known@example.com").await.unwrap();
    assert_eq!(unknown, known);
    assert_eq!(unknown.http_status, 202);

    // The one event is the known address's; the unknown one left no trace to publish.
    let link = resets.next().await;
    assert_eq!(link.email, "known@example.com");
    resets.expect_nothing_more().await;
    let reset_rows = app
        .count("SELECT count(*) FROM email_link_tokens WHERE purpose = 'reset_password'")
        .await;
    assert_eq!(reset_rows, 1);
    let outbox_rows = app
        .count(
            "SELECT count(*) FROM events_outbox \
             WHERE event_name = 'user.password_reset_requested'",
        )
        .await;
    assert_eq!(outbox_rows, 1);

    // A malformed address is a validation error, for every address alike.
    let error = expect_error(
        app.ask_for_reset("not an address").await,
        ErrorCode::InvalidArgument,
    );
    assert_eq!(bad_fields(&error), ["email"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_requests_are_limited_per_address_and_per_client_alike_for_unknown_addresses() {
    let app = TestApp::spawn_with(|config| {
        config.password_reset_requests_per_email = 2;
        config.password_reset_requests_per_client = 3;
    })
    .await;
    let mut resets = ResetMail::open(&app).await;
    app.register("limited@example.com", PASSWORD).await.unwrap();

    // Per address: each from its own client, so only the address's count matters.
    for (i, email) in ["limited@example.com", "ghost@example.com"]
        .iter()
        .enumerate()
    {
        for j in 0..2 {
            app.ask_for_reset_from(&from_client(&format!("198.51.100.{}", i * 10 + j)), email)
                .await
                .unwrap();
        }
        let limited = expect_error(
            app.ask_for_reset_from(&from_client(&format!("198.51.100.{}", i * 10 + 5)), email)
                .await,
            ErrorCode::RateLimited,
        );
        assert_eq!(
            limited.message(),
            "too many password reset requests; try again later"
        );
    }
    resets.next().await;
    resets.next().await;
    resets.expect_nothing_more().await;

    // Per client: a third address is fine, a fourth is not, known or unknown.
    let client = from_client("203.0.113.9");
    for email in ["a@example.com", "b@example.com", "c@example.com"] {
        app.ask_for_reset_from(&client, email).await.unwrap();
    }
    expect_error(
        app.ask_for_reset_from(&client, "d@example.com").await,
        ErrorCode::RateLimited,
    );
    // An IPv6 client is its /64.
    let v6 = |host: u32| from_client(&format!("2001:db8:1:2::{host:x}"));
    for host in 1..=3 {
        app.ask_for_reset_from(&v6(host), &format!("v6-{host}@example.com"))
            .await
            .unwrap();
    }
    expect_error(
        app.ask_for_reset_from(&v6(99), "v6-4@example.com").await,
        ErrorCode::RateLimited,
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_password_follows_the_registration_rules_and_a_refusal_keeps_the_link() {
    let app = TestApp::spawn().await;
    let mut resets = ResetMail::open(&app).await;
    app.register("rules@example.com", PASSWORD).await.unwrap();
    app.ask_for_reset("rules@example.com").await.unwrap();
    let link = resets.next().await;

    // The rules that need the account's address, and the list of common passwords.
    for (weak, problem) in [
        ("my rules@example.com", "must not contain the email address"),
        (
            "I follow rules, always",
            "must not contain the email address",
        ),
        (
            "password1234",
            "is too common; choose a less guessable password",
        ),
    ] {
        let error = expect_error(
            app.reset_password(&link.token, weak).await,
            ErrorCode::InvalidArgument,
        );
        assert_eq!(bad_fields(&error), ["new_password"], "{weak}");
        assert_eq!(error.details()[0].problem, problem, "{weak}");
    }
    // The length bounds (the contract's, checked before the service runs).
    for weak in ["short".to_owned(), "x".repeat(129)] {
        let error = expect_error(
            app.reset_password(&link.token, &weak).await,
            ErrorCode::InvalidArgument,
        );
        assert_eq!(bad_fields(&error), ["new_password"], "{weak}");
    }
    // Nothing changed, and the link still works.
    app.login("rules@example.com", PASSWORD).await.unwrap();
    app.reset_password(&link.token, NEW_PASSWORD).await.unwrap();
    app.login("rules@example.com", NEW_PASSWORD).await.unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_lets_a_client_that_was_refused_on_the_account_log_in_again() {
    let app = TestApp::spawn_with(|config| config.login_failures_per_client_and_account = 2).await;
    let mut resets = ResetMail::open(&app).await;
    app.register("forgetful@example.com", PASSWORD)
        .await
        .unwrap();
    let owner = from_client("192.0.2.44");
    for guess in ["was it this one?", "or maybe this one"] {
        expect_error(
            app.login_from(&owner, "forgetful@example.com", guess).await,
            ErrorCode::Unauthenticated,
        );
    }
    expect_error(
        app.login_from(&owner, "forgetful@example.com", PASSWORD)
            .await,
        ErrorCode::RateLimited,
    );

    app.ask_for_reset_from(&owner, "forgetful@example.com")
        .await
        .unwrap();
    let link = resets.next().await;
    app.reset_password(&link.token, NEW_PASSWORD).await.unwrap();

    app.login_from(&owner, "forgetful@example.com", NEW_PASSWORD)
        .await
        .expect("the limit on this client and account was cleared by the reset");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_also_ends_sessions_started_before_sessions_were_dated() {
    let app = TestApp::spawn().await;
    let mut resets = ResetMail::open(&app).await;
    let old = app.signed_up("legacy@example.com").await;
    // A session as the service stored it before sessions carried their start.
    let mut redis = redis::Client::open(app.servers.redis.as_ref().unwrap().url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let token_key = format!(
        "auth:refresh:{}",
        auth_service::domain::sha256_hex(old.refresh_token.as_bytes())
    );
    let family: String = redis::cmd("HGET")
        .arg(&token_key)
        .arg("family")
        .query_async(&mut redis)
        .await
        .unwrap();
    let removed: i64 = redis::cmd("HDEL")
        .arg(format!("auth:session:{family}"))
        .arg("started_at")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(removed, 1, "sessions are dated");

    app.ask_for_reset("legacy@example.com").await.unwrap();
    let link = resets.next().await;
    app.reset_password(&link.token, NEW_PASSWORD).await.unwrap();
    expect_error(
        app.refresh(&old.refresh_token).await,
        ErrorCode::Unauthenticated,
    );
    app.stop().await;
}
