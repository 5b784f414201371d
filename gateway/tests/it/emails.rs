//! The flows that go through the customer's mailbox, end to end: the gateway, auth, the
//! notification service and a real SMTP server, with the links read back from the emails.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Platform, PlatformOptions};

const PATIENCE: Duration = Duration::from_secs(30);

/// Waits for the `nth` (from 1) email to `to` whose text has a link to `page`, and returns the
/// link's token.
async fn link_token(platform: &Platform, to: &str, page: &str, nth: usize) -> String {
    let smtp = platform.smtp.as_ref().expect("the platform's SMTP server");
    let marker = format!("/{page}?token=");
    let started = std::time::Instant::now();
    loop {
        let tokens: Vec<String> = smtp
            .messages()
            .iter()
            .filter(|mail| mail.envelope_to().is_some_and(|rcpt| rcpt.contains(to)))
            .filter_map(|mail| {
                let text = mail.text();
                let at = text.find(&marker)? + marker.len();
                Some(
                    text[at..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                        .collect(),
                )
            })
            .collect();
        if tokens.len() >= nth {
            return tokens[nth - 1].clone();
        }
        assert!(
            started.elapsed() < PATIENCE,
            "no email number {nth} with a {page} link to {to}: {} so far",
            tokens.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn login(platform: &Platform, email: &str, password: &str) -> (StatusCode, Value) {
    platform
        .post(
            "/api/v1/auth/login",
            json!({"email": email, "password": password}),
            None,
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_verifies_their_email_and_resets_a_forgotten_password_from_their_mailbox() {
    let platform = Platform::spawn_with(PlatformOptions {
        after_the_order: true,
        ..PlatformOptions::default()
    })
    .await;
    let email = "ines@example.com";
    let old_password = "first correct horse battery";
    let first = platform.register_and_login(email, old_password).await;
    let (status, second) = login(&platform, email, old_password).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let access = first["access_token"].as_str().unwrap().to_owned();

    // Registering sent a verification link; following it verifies the address, once.
    let (status, me) = platform.get("/api/v1/auth/me", Some(&access)).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["email_verified"], json!(false), "{me}");
    let token = link_token(&platform, email, "verify-email", 1).await;
    let (status, body) = platform
        .post("/api/v1/auth/verify-email", json!({"token": token}), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, me) = platform.get("/api/v1/auth/me", Some(&access)).await;
    assert_eq!(me["email_verified"], json!(true), "{me}");
    let (status, body) = platform
        .post("/api/v1/auth/verify-email", json!({"token": token}), None)
        .await;
    assert!(status.is_client_error(), "a second use: {status} {body}");

    // Asking for a reset answers alike for an address nobody has.
    let (status, known) = platform
        .post(
            "/api/v1/auth/password-reset/request",
            json!({"email": email}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{known}");
    let (status, unknown) = platform
        .post(
            "/api/v1/auth/password-reset/request",
            json!({"email": "nobody-here@example.com"}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{unknown}");
    assert_eq!(known, unknown);
    let old_link = link_token(&platform, email, "reset-password", 1).await;

    // A second request supersedes the first link.
    let (status, _) = platform
        .post(
            "/api/v1/auth/password-reset/request",
            json!({"email": email}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let new_link = link_token(&platform, email, "reset-password", 2).await;
    assert_ne!(old_link, new_link);
    let new_password = "second correct horse battery";
    let (status, body) = platform
        .post(
            "/api/v1/auth/password-reset",
            json!({"token": old_link, "new_password": new_password}),
            None,
        )
        .await;
    assert!(status.is_client_error(), "the old link: {status} {body}");
    let (status, _) = login(&platform, email, new_password).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the old link changed nothing"
    );

    let (status, body) = platform
        .post(
            "/api/v1/auth/password-reset",
            json!({"token": new_link, "new_password": new_password}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The new password works, the old one does not, and every session ended.
    let (status, body) = login(&platform, email, new_password).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = login(&platform, email, old_password).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for session in [&first, &second] {
        let (status, body) = platform
            .post(
                "/api/v1/auth/refresh",
                json!({"refresh_token": session["refresh_token"]}),
                None,
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "a session survived: {body}"
        );
    }
    // The link works once.
    let (status, body) = platform
        .post(
            "/api/v1/auth/password-reset",
            json!({"token": new_link, "new_password": "third correct horse battery"}),
            None,
        )
        .await;
    assert!(status.is_client_error(), "a second use: {status} {body}");

    // Nothing was ever sent to the address nobody has.
    let smtp = platform.smtp.as_ref().unwrap();
    assert!(
        !smtp.messages().iter().any(|mail| mail
            .envelope_to()
            .is_some_and(|to| to.contains("nobody-here"))),
        "an email went to an address without an account"
    );
    platform.stop().await;
}
