//! Consumers: typed deliveries, guards, and effects that happen once however often an event
//! is delivered.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use api::product::ProductUpdated;
use events::{AckGuard, Consumer, ConsumerConfig, Delivery, inbox};
use futures::StreamExt as _;
use tokio_util::sync::CancellationToken;

use crate::{TestEnv, eventually, product_updated};

/// Short retries, so a test sees several deliveries in well under a second.
pub fn fast_config(consumer: &str) -> ConsumerConfig {
    ConsumerConfig {
        max_deliver: 3,
        backoff: vec![Duration::from_millis(100), Duration::from_millis(200)],
        lag_sample_interval: Duration::from_millis(100),
        ..ConsumerConfig::new(consumer)
    }
}

async fn create_effects_table(env: &TestEnv) {
    sqlx::query("CREATE TABLE effects (event_id uuid NOT NULL, label text NOT NULL)")
        .execute(&env.pool)
        .await
        .unwrap();
}

async fn effects(env: &TestEnv) -> Vec<String> {
    sqlx::query_scalar("SELECT label FROM effects ORDER BY label")
        .fetch_all(&env.pool)
        .await
        .unwrap()
}

/// Applies the event's effect once: the inbox record and the effect commit together.
async fn apply_once(pool: &sqlx::PgPool, delivery: &Delivery<ProductUpdated>) {
    let mut tx = pool.begin().await.unwrap();
    if inbox::record(&mut tx, &delivery.consumer, delivery.event_id)
        .await
        .unwrap()
    {
        let label = delivery.payload.product.clone().unwrap_or_default().name;
        sqlx::query("INSERT INTO effects (event_id, label) VALUES ($1, $2)")
            .bind(delivery.event_id)
            .bind(label)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_event_has_exactly_one_effect() {
    let env = TestEnv::start().await;
    create_effects_table(&env).await;
    let relay = env.spawn_relay(TestEnv::relay_config());
    let deliveries = Arc::new(AtomicUsize::new(0));
    let cancel = CancellationToken::new();
    let pool = env.pool.clone();
    let seen = deliveries.clone();
    let consumer = Consumer::with_guard(
        fast_config("audit"),
        move |delivery: Delivery<ProductUpdated>, guard: AckGuard| {
            let pool = pool.clone();
            let seen = seen.clone();
            async move {
                apply_once(&pool, &delivery).await;
                seen.fetch_add(1, Ordering::SeqCst);
                if delivery.delivered == 1 {
                    // The effect committed but the ack is lost: JetStream delivers it again.
                    guard.nak(Some(Duration::from_millis(50))).await.unwrap();
                } else {
                    guard.ack().await.unwrap();
                }
            }
        },
    )
    .start(env.jetstream.clone(), cancel.clone())
    .await
    .unwrap();

    env.append("p1", &product_updated("once")).await;
    eventually(Duration::from_secs(10), "the redelivery", || async {
        deliveries.load(Ordering::SeqCst) >= 2
    })
    .await;
    // Let any further delivery (a slow machine can let an ack wait pass) arrive too: however
    // many there were, the effect happened once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(deliveries.load(Ordering::SeqCst) >= 2);
    assert_eq!(effects(&env).await, vec!["once".to_owned()]);
    let inbox: i64 = sqlx::query_scalar("SELECT count(*) FROM events_inbox")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(inbox, 1);

    // The series exists from the consumer's start, at 0: it counted the redelivery.
    let metrics = telemetry::metrics().render();
    let redeliveries = metrics
        .lines()
        .find_map(|line| {
            line.strip_prefix("events_redeliveries_total{consumer=\"audit_product_updated\"}")
        })
        .and_then(|value| value.trim().parse::<f64>().ok());
    assert!(redeliveries.is_some_and(|n| n >= 1.0), "{metrics}");
    cancel.cancel();
    consumer.await.unwrap();
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_guard_naks_the_message() {
    let env = TestEnv::start().await;
    let relay = env.spawn_relay(TestEnv::relay_config());
    let event = &api::product::events::PRODUCT_UPDATED;
    let durable = events::names::durable_name("forgetful", event).unwrap();
    let mut naks = env
        .nats
        .subscribe(events::names::naked_advisory(
            &events::names::stream_of(event),
            &durable,
        ))
        .await
        .unwrap();
    let cancel = CancellationToken::new();
    let consumer = Consumer::with_guard(
        ConsumerConfig {
            // An ack timeout this long cannot explain anything the test sees.
            backoff: vec![Duration::from_secs(30)],
            max_deliver: 5,
            ..fast_config("forgetful")
        },
        |_delivery: Delivery<ProductUpdated>, guard: AckGuard| async move {
            // A handler that returns early and forgets to decide.
            let _forgotten = guard;
        },
    )
    .start(env.jetstream.clone(), cancel.clone())
    .await
    .unwrap();
    env.append("p1", &product_updated("dropped")).await;
    let advisory = tokio::time::timeout(Duration::from_secs(10), naks.next())
        .await
        .expect("a nak advisory")
        .unwrap();
    let advisory: serde_json::Value = serde_json::from_slice(&advisory.payload).unwrap();
    assert_eq!(advisory["consumer"], durable.as_str());
    assert_eq!(advisory["deliveries"], 1);
    cancel.cancel();
    consumer.await.unwrap();
    relay.stop().await;
}
