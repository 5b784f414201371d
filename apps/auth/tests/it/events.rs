//! `user.registered`: published once per account, through the outbox.

use std::time::Duration;

use api::auth::UserRegistered;
use api::auth::events::USER_REGISTERED;
use events::headers;

use crate::helpers::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_publishes_exactly_one_user_registered_event() {
    let app = TestApp::spawn().await;
    let pair = app.signed_up("Events@Example.com").await;
    // A second registration of the same address publishes nothing.
    app.register("events@example.com", "some other passphrase")
        .await
        .unwrap();

    let messages = app.published(&USER_REGISTERED, 1).await;
    // Well past the relay's poll interval: still one.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        app.events_of(&USER_REGISTERED).await.len(),
        1,
        "exactly one event"
    );
    let message = &messages[0];
    assert_eq!(
        message.subject.as_str(),
        events::names::subject(&USER_REGISTERED, &pair.user_id).unwrap()
    );
    assert_eq!(
        events::names::stream_of(&USER_REGISTERED),
        events::names::stream_name("user")
    );
    let header = |name: &str| {
        message
            .headers
            .get(name)
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(header(headers::EVENT_TYPE), "user.registered");
    assert_eq!(header(headers::PRODUCER), "auth");
    assert_eq!(header(headers::AGGREGATE_ID), pair.user_id);
    let event: UserRegistered = serde_json::from_slice(&message.payload).unwrap();
    assert_eq!(event.user_id, pair.user_id);
    assert_eq!(event.email, "events@example.com");
    assert_eq!(event.roles, ["customer"]);
    let registered_at = event.registered_at.expect("a registration time");
    let now = chrono::Utc::now().timestamp();
    assert!(
        (now - registered_at.seconds).abs() < 60,
        "{registered_at:?}"
    );

    let unpublished = app
        .count("SELECT count(*) FROM events_outbox WHERE published_at IS NULL")
        .await;
    assert_eq!(unpublished, 0);
}
