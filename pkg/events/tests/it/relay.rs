//! The outbox relay: exactly one message per committed change, in commit order, promptly.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use events::headers;

use crate::{TestEnv, eventually, header, product_updated};

/// EVENTS_PRODUCT, as the names generator spells it.
fn stream() -> String {
    events::names::stream_of(&api::product::events::PRODUCT_UPDATED)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_committed_while_the_relay_is_down_is_published_once_when_it_comes_back() {
    let env = TestEnv::start().await;
    // One relay stopped the graceful way, one killed: neither is running at the commit.
    let relay = env.spawn_relay(TestEnv::relay_config());
    tokio::time::sleep(Duration::from_millis(200)).await;
    relay.stop().await;
    let first = env.append("p1", &product_updated("first")).await;
    let relay = env.spawn_relay(TestEnv::relay_config());
    eventually(Duration::from_secs(10), "the first event", || async {
        env.stream_count(&stream()).await == 1
    })
    .await;
    relay.kill().await;
    let second = env.append("p1", &product_updated("second")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        env.stream_count(&stream()).await,
        1,
        "nothing publishes while down"
    );

    let relay = env.spawn_relay(TestEnv::relay_config());
    eventually(Duration::from_secs(10), "the second event", || async {
        env.unpublished_rows().await == 0
    })
    .await;
    // Past a few poll intervals: nothing more arrives.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let messages = env.stream_messages(&stream()).await;
    let ids: Vec<String> = messages
        .iter()
        .map(|m| header(m, headers::MSG_ID))
        .collect();
    assert_eq!(ids, vec![first.to_string(), second.to_string()]);
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_running_at_once_publish_each_event_once() {
    let env = TestEnv::start().await;
    let one = env.spawn_relay(TestEnv::relay_config());
    let two = env.spawn_relay(TestEnv::relay_config());
    let mut appended = HashSet::new();
    for i in 0..30 {
        let aggregate = format!("p{}", i % 3);
        appended.insert(
            env.append(&aggregate, &product_updated(&i.to_string()))
                .await
                .to_string(),
        );
    }
    eventually(Duration::from_secs(10), "every event", || async {
        env.unpublished_rows().await == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let messages = env.stream_messages(&stream()).await;
    let published: Vec<String> = messages
        .iter()
        .map(|m| header(m, headers::MSG_ID))
        .collect();
    assert_eq!(published.len(), 30, "one message per event");
    assert_eq!(published.into_iter().collect::<HashSet<_>>(), appended);
    one.stop().await;
    two.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_publishing_and_before_marking_does_not_duplicate() {
    let env = TestEnv::start().await;
    let id = env.append("p1", &product_updated("once")).await;
    // What a relay that died right after the ack leaves behind: the message is in the stream,
    // the row is still unpublished.
    let rows = events::outbox::rows_since(&env.pool, DateTime::<Utc>::UNIX_EPOCH)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    rows[0].publish(&env.jetstream).await.unwrap();
    assert_eq!(env.unpublished_rows().await, 1);

    let relay = env.spawn_relay(TestEnv::relay_config());
    eventually(Duration::from_secs(10), "the row to be marked", || async {
        env.unpublished_rows().await == 0
    })
    .await;
    let messages = env.stream_messages(&stream()).await;
    assert_eq!(
        messages.len(),
        1,
        "the duplicate window dropped the re-publication"
    );
    assert_eq!(header(&messages[0], headers::MSG_ID), id.to_string());
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_one_aggregate_are_published_in_commit_order() {
    let env = TestEnv::start().await;
    let relay = env.spawn_relay(TestEnv::relay_config());
    let mut expected: Vec<(String, String)> = Vec::new();
    for i in 0..20 {
        let aggregate = if i % 2 == 0 { "a" } else { "b" };
        let label = format!("{aggregate}-{i}");
        env.append(aggregate, &product_updated(&label)).await;
        expected.push((aggregate.to_owned(), label));
        if i == 9 {
            // Half before the relay catches up, half after.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    eventually(Duration::from_secs(10), "every event", || async {
        env.stream_count(&stream()).await == 20
    })
    .await;
    let messages = env.stream_messages(&stream()).await;
    for aggregate in ["a", "b"] {
        let published: Vec<String> = messages
            .iter()
            .filter(|m| header(m, headers::AGGREGATE_ID) == aggregate)
            .map(|m| {
                let payload: api::product::ProductUpdated =
                    serde_json::from_slice(&m.payload).unwrap();
                payload.product.unwrap().name
            })
            .collect();
        let committed: Vec<String> = expected
            .iter()
            .filter(|(a, _)| a == aggregate)
            .map(|(_, label)| label.clone())
            .collect();
        assert_eq!(published, committed, "aggregate {aggregate}");
    }
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_wakes_the_relay_long_before_its_poll_interval() {
    let env = TestEnv::start().await;
    let relay = env.spawn_relay(events::RelayConfig {
        poll_interval: Duration::from_secs(60),
        ..TestEnv::relay_config()
    });
    // Let it become the leader and go to sleep on its first (empty) pass.
    env.append("p0", &product_updated("warm-up")).await;
    eventually(Duration::from_secs(10), "the warm-up event", || async {
        env.stream_count(&stream()).await == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    env.append("p1", &product_updated("prompt")).await;
    eventually(Duration::from_secs(5), "the notified event", || async {
        env.stream_count(&stream()).await == 2
    })
    .await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "took {took:?}");
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_carry_the_event_headers_and_readable_json() {
    let env = TestEnv::start().await;
    let relay = env.spawn_relay(TestEnv::relay_config());
    let id = env.append("p1", &product_updated("Gizmo")).await;
    eventually(Duration::from_secs(10), "the event", || async {
        env.stream_count(&stream()).await == 1
    })
    .await;
    let message = &env.stream_messages(&stream()).await[0];
    assert_eq!(
        message.subject.as_str(),
        events::names::subject(&api::product::events::PRODUCT_UPDATED, "p1").unwrap()
    );
    assert_eq!(header(message, headers::MSG_ID), id.to_string());
    assert_eq!(header(message, headers::EVENT_ID), id.to_string());
    assert_eq!(header(message, headers::EVENT_TYPE), "product.updated");
    assert_eq!(header(message, headers::EVENT_VERSION), "1");
    assert_eq!(header(message, headers::PRODUCER), "product");
    assert_eq!(header(message, headers::AGGREGATE_ID), "p1");
    assert_eq!(header(message, headers::CONTENT_TYPE), "application/json");
    let json: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
    assert_eq!(json["product"]["name"], "Gizmo");
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_rows_can_be_republished_after_the_broker_lost_them() {
    let env = TestEnv::start().await;
    let relay = env.spawn_relay(TestEnv::relay_config());
    let id = env.append("p1", &product_updated("kept")).await;
    eventually(Duration::from_secs(10), "the event", || async {
        env.unpublished_rows().await == 0
    })
    .await;
    relay.stop().await;
    // The broker lost the stream (a crash before it synced, say).
    env.jetstream.delete_stream(&stream()).await.unwrap();
    events::streams::ensure(
        &env.jetstream,
        "product",
        &events::StreamSettings::default(),
    )
    .await
    .unwrap();
    let since = Utc::now() - chrono::Duration::hours(1);
    let sent = events::outbox::republish_since(&env.pool, &env.jetstream, since)
        .await
        .unwrap();
    assert_eq!(sent, 1);
    // Republishing again inside the duplicate window adds nothing.
    events::outbox::republish_since(&env.pool, &env.jetstream, since)
        .await
        .unwrap();
    let messages = env.stream_messages(&stream()).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(header(&messages[0], headers::MSG_ID), id.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_updated_when_their_declared_limits_change() {
    let env = TestEnv::start().await;
    let settings = events::StreamSettings {
        max_age: Duration::from_secs(3600),
        ..events::StreamSettings::default()
    };
    events::streams::ensure(&env.jetstream, "product", &settings)
        .await
        .unwrap();
    let info = env
        .jetstream
        .get_stream(&stream())
        .await
        .unwrap()
        .get_info()
        .await
        .unwrap();
    assert_eq!(info.config.max_age, Duration::from_secs(3600));
    assert_eq!(info.config.duplicate_window, Duration::from_secs(120));
    assert_eq!(
        info.config.storage,
        async_nats::jetstream::stream::StorageType::File
    );
    assert_eq!(info.config.subjects, vec!["events.product.>".to_owned()]);
}
