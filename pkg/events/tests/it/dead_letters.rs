//! Dead letters: what a consumer gives up on is kept with the reason, and can be redriven.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use api::product::ProductUpdated;
use events::dead_letter::{self, Selection};
use events::{Consumer, Delivery, Outcome, headers};
use tokio_util::sync::CancellationToken;

use crate::consumers::fast_config;
use crate::{TestEnv, eventually, product_updated};

fn durable(consumer: &str) -> String {
    events::names::durable_name(consumer, &api::product::events::PRODUCT_UPDATED).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_keeps_failing_moves_the_message_to_the_dead_letters() {
    let env = TestEnv::start().await;
    let relay = env.spawn_relay(TestEnv::relay_config());
    let attempts = Arc::new(AtomicUsize::new(0));
    let cancel = CancellationToken::new();
    let seen = attempts.clone();
    // A handler whose every attempt fails: the runtime naks it until max_deliver.
    let consumer = Consumer::new(
        fast_config("flaky"),
        move |_delivery: Delivery<ProductUpdated>| {
            let seen = seen.clone();
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>("the database is down")
            }
        },
    )
    .start(env.jetstream.clone(), cancel.clone())
    .await
    .unwrap();
    let id = env.append("p1", &product_updated("poison")).await;

    let durable = durable("flaky");
    eventually(Duration::from_secs(15), "a dead letter", || async {
        !dead_letter::list(&env.jetstream, Some(&durable))
            .await
            .unwrap()
            .is_empty()
    })
    .await;
    let letters = dead_letter::list(&env.jetstream, Some(&durable))
        .await
        .unwrap();
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(letter.reason, "max_deliveries");
    assert_eq!(letter.consumer, durable);
    assert_eq!(letter.deliveries, 3);
    assert_eq!(
        letter.original_subject,
        events::names::subject(&api::product::events::PRODUCT_UPDATED, "p1").unwrap()
    );
    assert_eq!(letter.original_stream, "EVENTS_PRODUCT");
    assert_eq!(letter.original_sequence, 1);
    assert_eq!(letter.event_id, id.to_string());
    assert_eq!(letter.event_type, "product.updated");
    let payload: ProductUpdated = serde_json::from_slice(&letter.payload).unwrap();
    assert_eq!(payload.product.unwrap().name, "poison");
    assert_eq!(attempts.load(Ordering::SeqCst), 3, "max_deliver attempts");
    // Every dead letter names its consumer: another consumer's filter finds nothing.
    assert!(
        dead_letter::list(&env.jetstream, Some(&durable_for_other()))
            .await
            .unwrap()
            .is_empty()
    );
    cancel.cancel();
    consumer.await.unwrap();
    relay.stop().await;
}

fn durable_for_other() -> String {
    durable("other")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_message_is_a_dead_letter_with_its_reason_and_redrive_delivers_it_again() {
    let env = TestEnv::start().await;
    let relay = env.spawn_relay(TestEnv::relay_config());
    let refuse = Arc::new(AtomicBool::new(true));
    let handled = Arc::new(AtomicUsize::new(0));
    let cancel = CancellationToken::new();
    let (refusing, done) = (refuse.clone(), handled.clone());
    // A handler that returns its outcome: the runtime terminates or acks.
    let consumer = Consumer::new(
        fast_config("strict"),
        move |delivery: Delivery<ProductUpdated>| {
            let (refusing, done) = (refusing.clone(), done.clone());
            async move {
                if refusing.load(Ordering::SeqCst) {
                    Outcome::give_up("unknown shop")
                } else {
                    assert_eq!(delivery.payload.product.unwrap().name, "refused");
                    done.fetch_add(1, Ordering::SeqCst);
                    Outcome::Done
                }
            }
        },
    )
    .start(env.jetstream.clone(), cancel.clone())
    .await
    .unwrap();
    // Another service's consumer of the same event, which takes it the first time.
    let bystander_saw = Arc::new(AtomicUsize::new(0));
    let saw = bystander_saw.clone();
    let bystander = Consumer::new(
        fast_config("bystander"),
        move |_delivery: Delivery<ProductUpdated>| {
            let saw = saw.clone();
            async move {
                saw.fetch_add(1, Ordering::SeqCst);
                Outcome::Done
            }
        },
    )
    .start(env.jetstream.clone(), cancel.clone())
    .await
    .unwrap();
    let id = env.append("p1", &product_updated("refused")).await;
    let durable = durable("strict");
    eventually(Duration::from_secs(10), "a dead letter", || async {
        !dead_letter::list(&env.jetstream, Some(&durable))
            .await
            .unwrap()
            .is_empty()
    })
    .await;
    let letters = dead_letter::list(&env.jetstream, None).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].reason, "terminated: unknown shop");
    assert_eq!(letters[0].deliveries, 1);

    // The cause is fixed; put it back.
    refuse.store(false, Ordering::SeqCst);
    let redriven = dead_letter::redrive(&env.jetstream, &durable, Selection::All)
        .await
        .unwrap();
    assert_eq!(redriven.redriven, 1);
    assert_eq!(redriven.remaining, 0);
    eventually(Duration::from_secs(10), "the redelivered event", || async {
        handled.load(Ordering::SeqCst) == 1
    })
    .await;
    // The redrive went to the consumer that gave it up, and to no other: the bystander, which
    // handled it the first time, never sees it again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(bystander_saw.load(Ordering::SeqCst), 1);
    assert!(
        dead_letter::redrive(&env.jetstream, &durable, Selection::Sequence(999))
            .await
            .is_err(),
        "a sequence the consumer does not hold is an error"
    );
    assert!(
        dead_letter::list(&env.jetstream, Some(&durable))
            .await
            .unwrap()
            .is_empty(),
        "a redriven dead letter leaves the dead-letter stream"
    );
    // The redriven message keeps its event id (for inboxes) under a new de-duplication id.
    let messages = env.stream_messages("EVENTS_PRODUCT").await;
    assert_eq!(messages.len(), 2);
    let again = &messages[1];
    assert_eq!(crate::header(again, headers::EVENT_ID), id.to_string());
    assert_ne!(crate::header(again, headers::MSG_ID), id.to_string());
    assert!(crate::header(again, headers::DEAD_LETTER_REASON).is_empty());
    assert_eq!(
        crate::header(again, headers::REDRIVEN_FROM),
        events::names::subject(&api::product::events::PRODUCT_UPDATED, "p1").unwrap()
    );
    cancel.cancel();
    consumer.await.unwrap();
    bystander.await.unwrap();
    relay.stop().await;
}
