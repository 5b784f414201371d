//! How settings reach the services: the bucket, a watcher in another connection, NATS
//! outages, a crash between the commit and the copy, and who may write the bucket.

use std::time::Duration;

use serde_json::json;
use settings::Scope;
use settings::catalogue::{NOTIFICATION_SENDER, SHIPPING_METHODS, TAX_RATES};

use crate::helpers::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_reaches_a_running_watcher_without_a_restart() {
    let app = TestApp::spawn().await;
    let watcher = app.watcher().await;
    // Loaded at start: the seeded defaults are in the bucket.
    watcher
        .until("the seeded tax rates", |s| {
            s.stored(Scope::Platform, TAX_RATES).map(|v| v.version) == Some(1)
        })
        .await;
    assert_eq!(watcher.settings.tax_rates()["DE"], 1900);

    let changed_at = std::time::Instant::now();
    app.change(TAX_RATES, json!({"DE": 1600, "US": 0}), 1)
        .await
        .unwrap();
    watcher
        .until("the changed tax rate", |s| {
            s.tax_rates().get("DE") == Some(&1600)
        })
        .await;
    // Reported, not asserted: the promise is "within a second" on a quiet machine.
    eprintln!(
        "a change reached the watcher {:?} after the request was sent",
        changed_at.elapsed()
    );
    assert_eq!(
        watcher
            .settings
            .stored(Scope::Platform, TAX_RATES)
            .unwrap()
            .version,
        2
    );

    // A shop's own value, and the platform's for a shop that has none.
    let shop = uuid::Uuid::now_v7();
    let other_shop = uuid::Uuid::now_v7();
    let sender = json!({"name": "Rug Shop", "address": "rugs@example.com"});
    app.change_as(
        &crate::helpers::admin(),
        NOTIFICATION_SENDER,
        &format!("shop:{shop}"),
        sender,
        0,
    )
    .await
    .unwrap();
    watcher
        .until("the shop's sender", |s| {
            s.notification_sender(Scope::Shop(shop)).name == "Rug Shop"
        })
        .await;
    assert_eq!(
        watcher
            .settings
            .notification_sender(Scope::Shop(other_shop))
            .name,
        "Emporium"
    );

    // A rollback travels the same way.
    app.rollback(TAX_RATES, 1, 2).await.unwrap();
    watcher
        .until("the rolled back tax rate", |s| {
            s.tax_rates().get("DE") == Some(&1900)
        })
        .await;
    watcher.stop().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_keeps_its_values_while_nats_restarts_and_catches_up_after() {
    let mut app = TestApp::spawn().await;
    let watcher = app.watcher().await;
    app.change(TAX_RATES, json!({"DE": 1234}), 1).await.unwrap();
    watcher
        .until("the first change", |s| {
            s.tax_rates().get("DE") == Some(&1234)
        })
        .await;

    app.servers.nats.stop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // NATS is away: the last values stay in force.
    assert_eq!(watcher.settings.tax_rates().get("DE"), Some(&1234));
    assert_eq!(
        watcher.settings.shipping_methods()["standard"].amount_minor_units,
        499
    );

    app.servers
        .nats
        .restart()
        .await
        .expect("restarting nats-server");
    // The service and the test's client reconnect by themselves; a change made now reaches
    // the watcher once it has watched again.
    let started = std::time::Instant::now();
    loop {
        match app.change(TAX_RATES, json!({"DE": 4321}), 2).await {
            Ok(_) => break,
            Err(error) if error.code() == rpc::ErrorCode::Unavailable => {
                assert!(started.elapsed() < Duration::from_secs(20), "{error:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("changing after the restart: {error:?}"),
        }
    }
    watcher
        .until("the change after the restart", |s| {
            s.tax_rates().get("DE") == Some(&4321)
        })
        .await;
    watcher.stop().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_committed_but_not_copied_reaches_the_bucket_through_the_relay() {
    let app = TestApp::spawn().await;
    let watcher = app.watcher().await;
    watcher
        .until("the seeded shipping methods", |s| {
            s.stored(Scope::Platform, SHIPPING_METHODS).is_some()
        })
        .await;
    // What a crash between the commit and the copy leaves: a new version in PostgreSQL
    // (with its history row) that the bucket has not seen.
    let value = json!({
        "standard": {"amount_minor_units": 250, "currency": "USD"},
    });
    sqlx::query(
        "UPDATE settings SET value = $1, version = 2, updated_by = 'crashed' \
         WHERE scope = 'platform' AND key = $2",
    )
    .bind(&value)
    .bind(SHIPPING_METHODS)
    .execute(app.db())
    .await
    .unwrap();
    watcher
        .until("the relay's copy", |s| {
            s.shipping_methods()
                .get("standard")
                .map(|r| r.amount_minor_units)
                == Some(250)
        })
        .await;
    // Marked published once the copy is in (just after the watcher may see it).
    let started = std::time::Instant::now();
    loop {
        let published: i64 = sqlx::query_scalar(
            "SELECT published_version FROM settings WHERE scope = 'platform' AND key = $1",
        )
        .bind(SHIPPING_METHODS)
        .fetch_one(app.db())
        .await
        .unwrap();
        if published == 2 {
            break;
        }
        assert!(
            started.elapsed() < crate::helpers::ARRIVAL_BOUND,
            "never marked published"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    watcher.stop().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_service_reads_the_bucket_but_cannot_write_it() {
    assert_eq!(
        trust::SETTINGS_BUCKET,
        settings::BUCKET,
        "pkg/trust names the same bucket"
    );
    let mut app = TestApp::spawn().await;
    let order = app.servers.nats.connect_as("order").await;
    let bucket = async_nats::jetstream::new(order)
        .get_key_value(settings::BUCKET)
        .await
        .expect("every service may open the bucket");
    let entry = bucket
        .get(Scope::Platform.bucket_key(TAX_RATES))
        .await
        .expect("and read it");
    assert!(entry.is_some());
    let put = tokio::time::timeout(
        Duration::from_secs(5),
        bucket.put(Scope::Platform.bucket_key(TAX_RATES), "{}".into()),
    )
    .await;
    assert!(
        !matches!(put, Ok(Ok(_))),
        "a service other than settings wrote the bucket"
    );
    app.stop_service().await;
    let violations = app.servers.nats.violations();
    assert!(
        !violations.is_empty()
            && violations
                .iter()
                .all(|v| v.contains("$KV.settings.platform.checkout.tax_rates")),
        "the refused put, and nothing else: {violations:#?}"
    );
    // The value is untouched.
    let stored: settings::Stored = serde_json::from_slice(
        &bucket
            .get(Scope::Platform.bucket_key(TAX_RATES))
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(stored.version, 1);
}
