//! Events that age out, and streams JetStream loses: a consumer that falls behind its
//! stream's limits is measured, and a lost stream or durable is declared again while the
//! service runs.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::product::ProductUpdated;
use events::{Consumer, Delivery, Outcome, headers};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::consumers::fast_config;
use crate::{TestEnv, eventually, header, product_updated};

/// EVENTS_PRODUCT, as the names generator spells it.
fn stream() -> String {
    events::names::stream_of(&api::product::events::PRODUCT_UPDATED)
}

fn durable(consumer: &str) -> String {
    events::names::durable_name(consumer, &api::product::events::PRODUCT_UPDATED).unwrap()
}

/// The value of the metric `name` of `consumer`'s durable in this process, if recorded.
fn consumer_metric(name: &str, consumer: &str) -> Option<f64> {
    let prefix = format!("{name}{{consumer=\"{}\"}} ", durable(consumer));
    telemetry::metrics()
        .render()
        .lines()
        .find_map(|line| line.strip_prefix(&prefix)?.trim().parse().ok())
}

/// A consumer that records the labels of the events it handles, once the gate is open.
fn recording_consumer(
    consumer: &str,
    seen: Arc<Mutex<Vec<String>>>,
    gate: watch::Receiver<bool>,
) -> Consumer {
    Consumer::new(
        fast_config(consumer),
        move |delivery: Delivery<ProductUpdated>| {
            let seen = seen.clone();
            let mut gate = gate.clone();
            async move {
                let _ = gate.wait_for(|open| *open).await;
                let label = delivery.payload.product.unwrap_or_default().name;
                seen.lock().unwrap().push(label);
                Outcome::Done
            }
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_the_streams_limits_remove_before_a_consumer_gets_them_are_counted_as_lost() {
    let env = TestEnv::start().await;
    let relay = env.spawn_relay(TestEnv::relay_config());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (_open, gate) = watch::channel(true);
    let cancel = CancellationToken::new();
    let consumer = recording_consumer("laggard", seen.clone(), gate)
        .start(env.jetstream.clone(), cancel.clone())
        .await
        .unwrap();
    env.append("p1", &product_updated("first")).await;
    eventually(Duration::from_secs(10), "the first event", || async {
        seen.lock().unwrap().len() == 1
    })
    .await;
    eventually(
        Duration::from_secs(10),
        "the consumer to be sampled",
        || async {
            consumer_metric("events_consumer_retention_skipped_total", "laggard") == Some(0.0)
        },
    )
    .await;
    assert_eq!(
        consumer_metric("events_consumer_retention_seconds", "laggard"),
        Some(7.0 * 24.0 * 3600.0),
        "the age an event may reach before the stream drops it"
    );

    // The consuming service is down while three more events are published, and the stream's
    // limits drop the two oldest of them, as its max age or size would after a week.
    cancel.cancel();
    consumer.await.unwrap();
    for label in ["second", "third", "fourth"] {
        env.append("p1", &product_updated(label)).await;
    }
    eventually(Duration::from_secs(10), "four published events", || async {
        env.stream_count(&stream()).await == 4
    })
    .await;
    let mut config = env
        .jetstream
        .get_stream(stream())
        .await
        .unwrap()
        .cached_info()
        .config
        .clone();
    config.max_messages = 1;
    env.jetstream.update_stream(config).await.unwrap();

    // Back, and slow: it holds what is left without acknowledging it yet.
    let (open_gate, gate) = watch::channel(false);
    let cancel = CancellationToken::new();
    let consumer = recording_consumer("laggard", seen.clone(), gate)
        .start(env.jetstream.clone(), cancel.clone())
        .await
        .unwrap();
    eventually(
        Duration::from_secs(10),
        "the loss to be counted",
        || async {
            consumer_metric("events_consumer_retention_skipped_total", "laggard") == Some(2.0)
        },
    )
    .await;
    assert_eq!(
        consumer_metric("events_consumer_retention_gap", "laggard"),
        Some(2.0)
    );
    eventually(
        Duration::from_secs(10),
        "the age of what it holds",
        || async {
            consumer_metric("events_consumer_oldest_unacked_age_seconds", "laggard")
                .is_some_and(|age| age > 0.0)
        },
    )
    .await;

    open_gate.send(true).unwrap();
    eventually(
        Duration::from_secs(10),
        "the consumer to catch up",
        || async {
            consumer_metric("events_consumer_retention_gap", "laggard") == Some(0.0)
                && consumer_metric("events_consumer_oldest_unacked_age_seconds", "laggard")
                    == Some(0.0)
        },
    )
    .await;
    assert_eq!(
        consumer_metric("events_consumer_retention_skipped_total", "laggard"),
        Some(2.0),
        "each lost event is counted once"
    );
    assert_eq!(*seen.lock().unwrap(), ["first", "fourth"]);
    cancel.cancel();
    consumer.await.unwrap();
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_declares_a_lost_stream_again_and_keeps_publishing() {
    let env = TestEnv::start().await;
    let relay = env.spawn_relay(TestEnv::relay_config());
    env.append("p1", &product_updated("before")).await;
    eventually(Duration::from_secs(10), "the first event", || async {
        env.unpublished_rows().await == 0
    })
    .await;

    // JetStream loses the stream (deleted here; a server whose store was wiped alike).
    env.jetstream.delete_stream(stream()).await.unwrap();
    let after = env.append("p1", &product_updated("after")).await;

    eventually(
        Duration::from_secs(20),
        "the event to be published",
        || async { env.unpublished_rows().await == 0 },
    )
    .await;
    let messages = env.stream_messages(&stream()).await;
    let ids: Vec<String> = messages
        .iter()
        .map(|m| header(m, headers::MSG_ID))
        .collect();
    assert_eq!(
        ids,
        [after.to_string()],
        "the new stream holds the new event"
    );
    let info = env.jetstream.get_stream(stream()).await.unwrap();
    assert_eq!(
        info.cached_info().config.max_age,
        events::StreamSettings::default().max_age,
        "declared with the producer's limits"
    );
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_whose_stream_was_lost_declares_it_again_and_keeps_receiving() {
    let env = TestEnv::start().await;
    let relay = env.spawn_relay(TestEnv::relay_config());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (_open, gate) = watch::channel(true);
    let cancel = CancellationToken::new();
    let consumer = recording_consumer("survivor", seen.clone(), gate)
        .start(env.jetstream.clone(), cancel.clone())
        .await
        .unwrap();
    env.append("p1", &product_updated("before")).await;
    eventually(Duration::from_secs(10), "the first event", || async {
        seen.lock().unwrap().len() == 1
    })
    .await;

    // The stream goes, and its durable consumers with it.
    env.jetstream.delete_stream(stream()).await.unwrap();
    env.append("p1", &product_updated("after")).await;

    eventually(
        Duration::from_secs(30),
        "the event after the loss",
        || async { seen.lock().unwrap().len() == 2 },
    )
    .await;
    assert_eq!(*seen.lock().unwrap(), ["before", "after"]);
    let stream = env.jetstream.get_stream(stream()).await.unwrap();
    stream
        .consumer_info(durable("survivor"))
        .await
        .expect("the durable exists again");
    assert!(
        consumer_metric("events_consumer_redeclared_total", "survivor").is_some_and(|n| n >= 1.0)
    );
    cancel.cancel();
    consumer.await.unwrap();
    relay.stop().await;
}
