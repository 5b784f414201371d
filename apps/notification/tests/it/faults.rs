//! What the notification service reads from the platform's settings: the SMTP failure fault
//! flag of dev and test stacks, and the sender. Values are put into the settings bucket the
//! way the settings service does (its own tests cover how they get there).

use std::time::{Duration, Instant};

use crate::helpers::{PATIENCE, TestApp, with_subject};

/// Puts `value` as `key`'s platform value into the settings bucket, creating it if needed.
async fn put_setting(app: &TestApp, key: &str, version: i64, value: serde_json::Value) {
    let bucket = settings::open_bucket(&app.jetstream)
        .await
        .expect("opening the settings bucket");
    let stored = settings::Stored { version, value };
    settings::put(&bucket, &settings::Scope::Platform, key, &stored)
        .await
        .expect("putting a setting");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smtp_failure_fault_flag_holds_emails_back_until_it_is_cleared() {
    let app = TestApp::spawn().await;
    put_setting(
        &app,
        settings::catalogue::FAULT_NOTIFICATION_SMTP_FAILURE_PERCENT,
        1,
        serde_json::json!(100),
    )
    .await;
    // The running service has the flag once a delivery fails because of it; the welcome email
    // of an account registered from then on waits.
    let started = Instant::now();
    loop {
        let ada = app
            .register(&format!(
                "ada-{}@example.com",
                started.elapsed().as_millis()
            ))
            .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let failed_by_the_flag: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM notifications \
             WHERE channel = 'email' AND status = 'pending' AND last_error LIKE '%fault flag%'",
        )
        .fetch_one(app.db())
        .await
        .unwrap();
        if failed_by_the_flag > 0 {
            app.pay_order(&ada).await;
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the fault flag never reached the service"
        );
    }
    let before_clearing = app.smtp.messages().len();
    // While the flag is at 100%, emails are retried and none reaches the relay.
    let retried = Instant::now();
    loop {
        let rows = app.email_rows().await;
        let confirmation = rows
            .iter()
            .find(|(kind, _, _)| kind == "order_confirmation");
        if confirmation.is_some_and(|(_, status, attempts)| status == "pending" && *attempts >= 3) {
            break;
        }
        assert!(retried.elapsed() < PATIENCE, "no retries seen: {rows:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(app.smtp.messages().len(), before_clearing);

    put_setting(
        &app,
        settings::catalogue::FAULT_NOTIFICATION_SMTP_FAILURE_PERCENT,
        2,
        serde_json::json!(0),
    )
    .await;
    let mail = app.settled_mail().await;
    assert_eq!(
        with_subject(&mail, "is confirmed").len(),
        1,
        "one confirmation"
    );
    let rows = app.email_rows().await;
    assert!(
        rows.iter().all(|(_, status, _)| status == "sent"),
        "{rows:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emails_come_from_the_sender_the_platform_settings_name() {
    let app = TestApp::spawn().await;
    put_setting(
        &app,
        settings::catalogue::NOTIFICATION_SENDER,
        1,
        serde_json::json!({"name": "Corner Shop", "address": "hello@corner.example"}),
    )
    .await;
    let started = Instant::now();
    loop {
        let email = format!("grace-{}@example.com", started.elapsed().as_millis());
        app.register(&email).await;
        let mail = app.settled_mail().await;
        let welcome = mail
            .iter()
            .find(|mail| {
                mail.envelope_to()
                    .is_some_and(|to| to.contains(email.as_str()))
            })
            .expect("the welcome email");
        let from = welcome.header("from").unwrap_or_default().to_owned();
        if from.contains("hello@corner.example") {
            assert!(from.contains("Corner Shop"), "{from}");
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the sender setting never reached the service: {from}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.stop().await;
}
