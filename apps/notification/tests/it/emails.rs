//! Emails: what arrives at the SMTP server, exactly once, whatever JetStream redelivers and
//! however long the relay is down.

use api::auth::events::{USER_EMAIL_VERIFICATION_REQUESTED, USER_PASSWORD_RESET_REQUESTED};
use api::auth::{EmailVerificationRequested, PasswordResetRequested};
use api::order::events::{ORDER_FAILED, ORDER_PAID, SUBORDER_SHIPPED};
use api::order::{Failure, OrderFailed, OrderPaid, SubOrderShipped};
use testkit::SmtpServer;
use uuid::Uuid;

use crate::helpers::{PATIENCE, TestApp, paid_order, with_subject};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_order_sends_one_confirmation_with_its_totals_even_when_redelivered() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let order = paid_order(&ada.id);
    let event = OrderPaid {
        order: Some(order.clone()),
    };
    let event_id = Uuid::now_v7();
    let first = app.publish(&ORDER_PAID, &order.id, &event, event_id).await;
    let second = app.publish(&ORDER_PAID, &order.id, &event, event_id).await;
    assert!(second > first, "the stream keeps both copies");
    app.handled(&ORDER_PAID, second).await;

    let mail = app.settled_mail().await;
    let confirmations = with_subject(&mail, "is confirmed");
    assert_eq!(
        confirmations.len(),
        1,
        "one confirmation, not one per delivery"
    );
    let confirmation = confirmations[0];
    assert_eq!(confirmation.envelope_to(), Some(ada.email.as_str()));
    assert!(
        confirmation
            .header("content-type")
            .is_some_and(|value| value.starts_with("multipart/alternative")),
        "HTML and plain text: {:?}",
        confirmation.header("content-type")
    );
    let text = confirmation.text();
    for figure in [
        "2 x Espresso cup at USD 12.50: USD 25.00",
        "1 x Coffee beans <1kg> & more at USD 18.99: USD 18.99",
        "Subtotal: USD 43.99",
        "Discount: -USD 5.00",
        "Shipping: USD 4.99",
        "Tax: USD 3.52",
        "Total: USD 47.50",
    ] {
        assert!(text.contains(figure), "{figure:?} missing from:\n{text}");
    }
    // The product name the seller wrote is escaped in the HTML part.
    assert!(
        text.contains("Coffee beans &lt;1kg&gt; &amp; more"),
        "{text}"
    );
    // The Message-ID is the notification's id, so a duplicate would be recognisable.
    let id: Uuid = sqlx::query_scalar(
        "SELECT id FROM notifications WHERE kind = 'order_confirmation' AND channel = 'email'",
    )
    .fetch_one(app.db())
    .await
    .unwrap();
    assert_eq!(
        confirmation.header("message-id"),
        Some(format!("<{id}@emporium.test>").as_str())
    );
    // The welcome email and the confirmation, nothing else.
    assert_eq!(mail.len(), 2);
    assert_eq!(with_subject(&mail, "Welcome to Emporium").len(), 1);
    let rows = app.email_rows().await;
    assert_eq!(
        rows,
        [
            ("welcome".to_owned(), "sent".to_owned(), 1),
            ("order_confirmation".to_owned(), "sent".to_owned(), 1)
        ]
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_relay_down_the_email_waits_and_arrives_once_it_is_back() {
    let smtp = SmtpServer::reserve().expect("a port for the SMTP server");
    let app = TestApp::spawn_with(smtp).await;
    let ada = app.register("ada@example.com").await;
    app.pay_order(&ada).await;

    // The relay refuses connections: the emails are tried again and again, never dropped.
    let started = std::time::Instant::now();
    loop {
        let rows = app.email_rows().await;
        if rows.len() == 2
            && rows
                .iter()
                .all(|(_, status, attempts)| status == "pending" && *attempts >= 3)
        {
            break;
        }
        assert!(started.elapsed() < PATIENCE, "no retries seen: {rows:?}");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let last_error: Option<String> =
        sqlx::query_scalar("SELECT last_error FROM notifications WHERE kind = 'order_confirmation' AND channel = 'email'")
            .fetch_one(app.db())
            .await
            .unwrap();
    assert!(last_error.is_some_and(|error| !error.is_empty()));

    let mut app = app;
    app.smtp
        .start_now()
        .await
        .expect("starting the SMTP server");
    let mail = app.settled_mail().await;
    assert_eq!(with_subject(&mail, "is confirmed").len(), 1);
    assert_eq!(with_subject(&mail, "Welcome").len(), 1);
    assert_eq!(mail.len(), 2);
    let rows = app.email_rows().await;
    assert!(
        rows.iter()
            .all(|(_, status, attempts)| status == "sent" && *attempts > 3),
        "{rows:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shipped_sub_order_is_emailed_with_its_carrier_and_tracking_number() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let order = app.pay_order(&ada).await;
    let mut sub_order = order.sub_orders[0].clone();
    sub_order.status = "shipped".into();
    sub_order.carrier = "UPS".into();
    sub_order.tracking_number = "1Z999AA10123456784".into();
    let event = SubOrderShipped {
        sub_order: Some(sub_order),
        order_status: "shipped".into(),
    };
    app.deliver(&SUBORDER_SHIPPED, &order.id, &event, Uuid::now_v7())
        .await;
    let mail = app.settled_mail().await;
    let shipped = with_subject(&mail, "has shipped");
    assert_eq!(shipped.len(), 1);
    let text = shipped[0].text();
    assert!(text.contains("Carrier: UPS"), "{text}");
    assert!(
        text.contains("Tracking number: 1Z999AA10123456784"),
        "{text}"
    );
    assert!(text.contains("2 x Espresso cup"), "{text}");
    assert_eq!(shipped[0].envelope_to(), Some("ada@example.com"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_order_is_emailed_with_the_reason() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let mut order = paid_order(&ada.id);
    order.status = "failed".into();
    order.failure = Some(Failure {
        code: "payment_declined".into(),
        message: "Your card was declined.".into(),
        ..Default::default()
    });
    let event = OrderFailed {
        order: Some(order.clone()),
    };
    app.deliver(&ORDER_FAILED, &order.id, &event, Uuid::now_v7())
        .await;
    let mail = app.settled_mail().await;
    let failed = with_subject(&mail, "could not be completed");
    assert_eq!(failed.len(), 1);
    assert!(failed[0].text().contains("Why: Your card was declined."));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_emails_carry_the_link_with_its_token_which_is_stored_nowhere() {
    let app = TestApp::spawn().await;
    let user_id = Uuid::now_v7().to_string();
    let expires_at = api::Timestamp {
        seconds: chrono::Utc::now().timestamp() + 3600,
        nanos: 0,
    };
    let verify_token = "vT0k3n-verify_abc123";
    let reset_token = "rT0k3n-reset_xyz789";
    let verification = EmailVerificationRequested {
        user_id: user_id.clone(),
        email: "ada@example.com".into(),
        token: verify_token.into(),
        expires_at: Some(expires_at),
    };
    let event_id = Uuid::now_v7();
    // Delivered twice: still one email.
    app.deliver(
        &USER_EMAIL_VERIFICATION_REQUESTED,
        &user_id,
        &verification,
        event_id,
    )
    .await;
    app.deliver(
        &USER_EMAIL_VERIFICATION_REQUESTED,
        &user_id,
        &verification,
        event_id,
    )
    .await;
    let reset = PasswordResetRequested {
        user_id: user_id.clone(),
        email: "ada@example.com".into(),
        token: reset_token.into(),
        expires_at: Some(expires_at),
    };
    app.deliver(
        &USER_PASSWORD_RESET_REQUESTED,
        &user_id,
        &reset,
        Uuid::now_v7(),
    )
    .await;

    let mail = app.settled_mail().await;
    assert_eq!(mail.len(), 2, "one email per request");
    let verify = with_subject(&mail, "Confirm your email address");
    assert_eq!(verify.len(), 1);
    assert!(
        verify[0].text().contains(&format!(
            "https://shop.example/verify-email?token={verify_token}"
        )),
        "{}",
        verify[0].text()
    );
    let reset_mail = with_subject(&mail, "Reset your Emporium password");
    assert_eq!(reset_mail.len(), 1);
    assert!(reset_mail[0].text().contains(&format!(
        "https://shop.example/reset-password?token={reset_token}"
    )));
    assert_eq!(reset_mail[0].envelope_to(), Some("ada@example.com"));

    // The tokens are in no table of the service.
    for table in ["notifications", "recipients", "events_inbox"] {
        let rows: Vec<String> =
            sqlx::query_scalar(&format!("SELECT row_to_json(t)::text FROM {table} t"))
                .fetch_all(app.db())
                .await
                .unwrap();
        for row in rows {
            assert!(
                !row.contains(verify_token) && !row.contains(reset_token),
                "{table} holds a token: {row}"
            );
        }
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_that_expired_before_it_could_be_sent_is_not_sent() {
    let app = TestApp::spawn().await;
    let user_id = Uuid::now_v7().to_string();
    let event = PasswordResetRequested {
        user_id: user_id.clone(),
        email: "ada@example.com".into(),
        token: "old-token".into(),
        expires_at: Some(api::Timestamp {
            seconds: chrono::Utc::now().timestamp() - 60,
            nanos: 0,
        }),
    };
    app.deliver(
        &USER_PASSWORD_RESET_REQUESTED,
        &user_id,
        &event,
        Uuid::now_v7(),
    )
    .await;
    assert!(app.settled_mail().await.is_empty());
    assert_eq!(
        app.email_rows().await,
        [("password_reset".to_owned(), "expired".to_owned(), 0)]
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_the_relay_never_takes_is_marked_failed_after_its_attempts_and_counted() {
    let smtp = SmtpServer::reserve().expect("a port for the SMTP server");
    let app = TestApp::spawn_configured(smtp, |config| config.mail.email_max_attempts = 3).await;
    let ada = app.register("ada@example.com").await;
    app.pay_order(&ada).await;
    let started = std::time::Instant::now();
    loop {
        let rows = app.email_rows().await;
        if rows.len() == 2 && rows.iter().all(|(_, status, _)| status == "failed") {
            assert!(
                rows.iter().all(|(_, _, attempts)| *attempts == 3),
                "{rows:?}"
            );
            break;
        }
        assert!(started.elapsed() < PATIENCE, "not failed: {rows:?}");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let metrics = app.metrics().await;
    let failed = metrics.lines().find(|line| {
        line.starts_with("notifications_failed_total")
            && line.contains("kind=\"order_confirmation\"")
            && line.contains("channel=\"email\"")
    });
    assert!(failed.is_some(), "no failed count in:\n{metrics}");
    for series in [
        "notification_email_attempts_total",
        "notification_emails_pending",
        "notification_email_oldest_pending_age_seconds",
        "notifications_created_total",
    ] {
        assert!(metrics.contains(series), "{series} missing from /metrics");
    }
    // The in-app notification is there all the same.
    let rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notifications WHERE channel = 'in_app' AND kind = 'order_confirmation'",
    )
    .fetch_one(app.db())
    .await
    .unwrap();
    assert_eq!(rows, 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_send_every_email_exactly_once() {
    let app = TestApp::spawn().await;
    let replica = app.start_replica().await;
    let mut users = Vec::new();
    for name in ["ada", "bob", "cyd"] {
        users.push(app.register(&format!("{name}@example.com")).await);
    }
    for user in &users {
        for _ in 0..3 {
            app.pay_order(user).await;
        }
    }
    let mail = app.settled_mail().await;
    assert_eq!(with_subject(&mail, "is confirmed").len(), 9);
    assert_eq!(with_subject(&mail, "Welcome").len(), 3);
    assert_eq!(mail.len(), 12);
    let mut ids: Vec<&str> = mail.iter().filter_map(|m| m.header("message-id")).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 12, "every email has its own Message-ID");
    replica.stop().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_link_asked_for_while_the_relay_is_down_arrives_once_it_is_back() {
    let smtp = SmtpServer::reserve().expect("a port for the SMTP server");
    let mut app = TestApp::spawn_with(smtp).await;
    let user_id = Uuid::now_v7().to_string();
    let event = PasswordResetRequested {
        user_id: user_id.clone(),
        email: "ada@example.com".into(),
        token: "while-down-token".into(),
        expires_at: Some(api::Timestamp {
            seconds: chrono::Utc::now().timestamp() + 3600,
            nanos: 0,
        }),
    };
    // Not waited on: the consumer holds the event, naking it while the relay is down.
    app.publish(
        &USER_PASSWORD_RESET_REQUESTED,
        &user_id,
        &event,
        Uuid::now_v7(),
    )
    .await;
    let started = std::time::Instant::now();
    loop {
        let rows = app.email_rows().await;
        if rows
            .first()
            .is_some_and(|(_, status, attempts)| status == "pending" && *attempts >= 3)
        {
            break;
        }
        assert!(started.elapsed() < PATIENCE, "no retries seen: {rows:?}");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    app.smtp
        .start_now()
        .await
        .expect("starting the SMTP server");
    let mail = app.smtp.wait_for(1, PATIENCE).await;
    assert_eq!(mail.len(), 1);
    assert!(
        mail[0]
            .text()
            .contains("https://shop.example/reset-password?token=while-down-token")
    );
    let mail = app.settled_mail().await;
    assert_eq!(mail.len(), 1, "sent once");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_then_refunded_order_gets_an_email_for_each() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let mut order = app.pay_order(&ada).await;
    order.status = "cancelled".into();
    order.failure = Some(Failure {
        code: "cancelled_by_customer".into(),
        message: String::new(),
        ..Default::default()
    });
    app.deliver(
        &api::order::events::ORDER_CANCELLED,
        &order.id,
        &api::order::OrderCancelled {
            order: Some(order.clone()),
        },
        Uuid::now_v7(),
    )
    .await;
    order.status = "refunded".into();
    app.deliver(
        &api::order::events::ORDER_REFUNDED,
        &order.id,
        &api::order::OrderRefunded {
            order: Some(order.clone()),
        },
        Uuid::now_v7(),
    )
    .await;
    let mail = app.settled_mail().await;
    let cancelled = with_subject(&mail, "was cancelled");
    assert_eq!(cancelled.len(), 1);
    let text = cancelled[0].text();
    assert!(text.contains("Why: cancelled by customer"), "{text}");
    assert!(text.contains("Total: USD 47.50"), "{text}");
    let refunded = with_subject(&mail, "was refunded");
    assert_eq!(refunded.len(), 1);
    assert!(
        refunded[0]
            .text()
            .contains("USD 47.50 is on its way back to your payment method")
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_held_by_a_sender_that_died_is_sent_once_its_lease_runs_out() {
    let smtp = SmtpServer::reserve().expect("a port for the SMTP server");
    let mut app = TestApp::spawn_with(smtp).await;
    let ada = app.register("ada@example.com").await;
    app.pay_order(&ada).await;
    // A sender claimed the confirmation and died: its lease still runs for an hour.
    sqlx::query(
        "UPDATE notifications SET lease_until = now() + interval '1 hour' \
         WHERE kind = 'order_confirmation' AND channel = 'email'",
    )
    .execute(app.db())
    .await
    .unwrap();
    app.smtp
        .start_now()
        .await
        .expect("starting the SMTP server");
    app.smtp.wait_for(1, PATIENCE).await;
    // The welcome email went out; the held one waits for its lease, untouched.
    let held: (String, Option<chrono::DateTime<chrono::Utc>>) = sqlx::query_as(
        "SELECT status, lease_until FROM notifications \
         WHERE kind = 'order_confirmation' AND channel = 'email'",
    )
    .fetch_one(app.db())
    .await
    .unwrap();
    assert_eq!(held.0, "pending");
    assert!(held.1.is_some_and(|until| until > chrono::Utc::now()));
    // The lease runs out.
    sqlx::query(
        "UPDATE notifications SET lease_until = now() - interval '1 second' \
         WHERE kind = 'order_confirmation' AND channel = 'email'",
    )
    .execute(app.db())
    .await
    .unwrap();
    let mail = app.settled_mail().await;
    assert_eq!(with_subject(&mail, "is confirmed").len(), 1);
    assert_eq!(mail.len(), 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_paid_before_its_user_is_known_is_confirmed_once_the_registration_arrives() {
    let app = TestApp::spawn().await;
    let user_id = Uuid::now_v7().to_string();
    let order = paid_order(&user_id);
    let sequence = app
        .publish(
            &ORDER_PAID,
            &order.id,
            &OrderPaid {
                order: Some(order.clone()),
            },
            Uuid::now_v7(),
        )
        .await;
    // The registration comes second (another stream, another consumer): the order's event
    // is retried meanwhile, not lost.
    let started = std::time::Instant::now();
    while app
        .consumer_info(&ORDER_PAID)
        .await
        .delivered
        .stream_sequence
        < sequence
    {
        assert!(started.elapsed() < PATIENCE, "order.paid never delivered");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        app.consumer_info(&ORDER_PAID)
            .await
            .ack_floor
            .stream_sequence
            < sequence,
        "without an email address the event is not done"
    );
    app.register_as(&user_id, "ada@example.com").await;
    app.handled(&ORDER_PAID, sequence).await;
    let mail = app.settled_mail().await;
    assert_eq!(with_subject(&mail, "is confirmed").len(), 1);
    assert_eq!(mail.len(), 2);
    app.stop().await;
}
