//! Redemptions: the limits hold under concurrency, retries are idempotent, a held use is
//! committed, released or expires, and commits and releases are published (returns of
//! committed uses are in `returns.rs`).

use std::sync::Arc;
use std::time::Duration;

use api::voucher::events::{VOUCHER_REDEEMED, VOUCHER_RELEASED};
use api::voucher::{
    CreateVoucherRequest, ReserveVoucherRequest, UpdateVoucherRequest, VoucherRedeemed,
    VoucherReleased,
};
use events::headers;
use rpc::ErrorCode;

use crate::helpers::{
    TestApp, anonymous, bad_fields, eventually, expect_error, money, new_id, usd, voucher,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_reservations_take_exactly_the_usage_limit() {
    let app = Arc::new(TestApp::spawn().await);
    app.create(CreateVoucherRequest {
        usage_limit: 50,
        ..voucher("FIFTY")
    })
    .await;

    let attempts: Vec<_> = (0..200)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { app.reserve("fifty", &new_id(), &new_id(), 100, 60).await })
        })
        .collect();
    let (mut taken, mut refused) = (0, 0);
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(redemption) => {
                assert_eq!(redemption.status, "held");
                assert_eq!(redemption.code, "FIFTY");
                taken += 1;
            }
            Err(error) => {
                assert_eq!(error.code(), ErrorCode::FailedPrecondition, "{error}");
                assert!(error.message().contains("exhausted"), "{error}");
                refused += 1;
            }
        }
    }
    assert_eq!((taken, refused), (50, 150));
    assert_eq!(app.stored_counts("FIFTY").await, (0, 50));
    let held: i64 = sqlx::query_scalar("SELECT count(*) FROM redemptions WHERE status = 'held'")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(
        held, 50,
        "a refused reservation leaves no redemption behind"
    );
    let shown = app.get("fifty").await;
    assert_eq!((shown.used_count, shown.reserved_count), (0, 50));

    Arc::into_inner(app).unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reservations_of_one_user_take_exactly_the_per_user_limit() {
    let app = Arc::new(TestApp::spawn().await);
    app.create(CreateVoucherRequest {
        per_user_limit: 3,
        usage_limit: 100,
        ..voucher("THRICE")
    })
    .await;
    let user = new_id();
    let attempts: Vec<_> = (0..40)
        .map(|_| {
            let (app, user) = (app.clone(), user.clone());
            tokio::spawn(async move { app.reserve("THRICE", &user, &new_id(), 100, 60).await })
        })
        .collect();
    let (mut taken, mut refused) = (0, 0);
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(_) => taken += 1,
            Err(error) => {
                assert_eq!(error.code(), ErrorCode::FailedPrecondition, "{error}");
                assert!(error.message().contains("already_used"), "{error}");
                refused += 1;
            }
        }
    }
    assert_eq!((taken, refused), (3, 37));
    assert_eq!(app.stored_counts("THRICE").await, (0, 3));
    let uses: i32 = sqlx::query_scalar("SELECT uses FROM voucher_user_uses")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(uses, 3);

    // Another user still may; a released use counts no more.
    app.reserve("THRICE", &new_id(), &new_id(), 100, 60)
        .await
        .expect("another user's first use");
    let first: String = sqlx::query_scalar(
        "SELECT order_id::text FROM redemptions WHERE user_id = $1::uuid LIMIT 1",
    )
    .bind(&user)
    .fetch_one(app.db())
    .await
    .unwrap();
    app.release(&first).await.unwrap();
    app.reserve("THRICE", &user, &new_id(), 100, 60)
        .await
        .expect("a use given back can be taken again");

    Arc::into_inner(app).unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserve_commit_and_release_are_idempotent_on_the_order_id() {
    let app = TestApp::spawn().await;
    app.create(voucher("Retry")).await;
    app.create(voucher("Other")).await;
    let (user, order) = (new_id(), new_id());

    let first = app.reserve("retry", &user, &order, 250, 60).await.unwrap();
    assert_eq!(first.order_id, order);
    assert_eq!(first.amount, usd(250));
    assert_eq!(first.status, "held");
    let again = app.reserve("RETRY", &user, &order, 250, 60).await.unwrap();
    assert_eq!(again, first, "a retry answers the same redemption");
    assert_eq!(
        app.stored_counts("Retry").await,
        (0, 1),
        "and takes no second use"
    );

    for (code, amount) in [("Retry", 300), ("Other", 250)] {
        let error = expect_error(
            app.reserve(code, &user, &order, amount, 60).await,
            ErrorCode::Conflict,
        );
        assert!(error.message().contains(&order), "{error}");
    }
    assert_eq!(app.stored_counts("Retry").await, (0, 1));
    assert_eq!(app.stored_counts("Other").await, (0, 0));

    let committed = app.commit(&order).await.unwrap();
    assert_eq!(committed.status, "committed");
    assert_eq!(app.commit(&order).await.unwrap(), committed);
    assert_eq!(app.stored_counts("Retry").await, (1, 0));
    expect_error(app.release(&order).await, ErrorCode::FailedPrecondition);
    assert_eq!(
        app.reserve("Retry", &user, &order, 250, 60).await.unwrap(),
        committed,
        "reserving a committed order again answers it as it is"
    );

    let released_order = new_id();
    app.reserve("Retry", &user, &released_order, 100, 60)
        .await
        .unwrap();
    let released = app.release(&released_order).await.unwrap();
    assert_eq!(released.status, "released");
    assert_eq!(app.release(&released_order).await.unwrap(), released);
    assert_eq!(app.stored_counts("Retry").await, (1, 0));
    expect_error(
        app.commit(&released_order).await,
        ErrorCode::FailedPrecondition,
    );

    expect_error(app.commit(&new_id()).await, ErrorCode::NotFound);
    expect_error(app.release(&new_id()).await, ErrorCode::NotFound);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_reservation_gives_its_use_back() {
    let app = TestApp::spawn().await;
    app.create(CreateVoucherRequest {
        usage_limit: 1,
        ..voucher("ONCE")
    })
    .await;
    let order = new_id();
    app.reserve("ONCE", &new_id(), &order, 100, 1)
        .await
        .unwrap();
    let error = expect_error(
        app.reserve("ONCE", &new_id(), &new_id(), 100, 60).await,
        ErrorCode::FailedPrecondition,
    );
    assert!(error.message().contains("exhausted"), "{error}");

    eventually(
        Duration::from_secs(10),
        "the redemption to expire",
        || async { app.stored_status(&order).await == "expired" },
    )
    .await;
    assert_eq!(app.stored_counts("ONCE").await, (0, 0));
    expect_error(app.commit(&order).await, ErrorCode::FailedPrecondition);
    assert_eq!(app.release(&order).await.unwrap().status, "expired");

    app.reserve("ONCE", &new_id(), &new_id(), 100, 60)
        .await
        .expect("the use given back is taken again");
    assert_eq!(app.stored_counts("ONCE").await, (0, 1));

    let released = app.published(&VOUCHER_RELEASED, 1).await;
    let event: VoucherReleased = serde_json::from_slice(&released[0].payload).unwrap();
    let redemption = event.redemption.unwrap();
    assert_eq!(
        (redemption.order_id.as_str(), redemption.status.as_str()),
        (order.as_str(), "expired")
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_is_refused_for_a_missing_disabled_or_wrong_currency_code() {
    let app = TestApp::spawn().await;
    app.create(voucher("Paused")).await;
    expect_error(
        app.reserve("nothing", &new_id(), &new_id(), 100, 60).await,
        ErrorCode::NotFound,
    );
    let error = expect_error(
        app.client
            .reserve_voucher(
                &anonymous(),
                &ReserveVoucherRequest {
                    code: "Paused".into(),
                    user_id: new_id(),
                    order_id: new_id(),
                    amount: money(100, "EUR"),
                    ttl_seconds: 60,
                },
            )
            .await,
        ErrorCode::FailedPrecondition,
    );
    assert!(error.message().contains("wrong_currency"), "{error}");

    app.update(UpdateVoucherRequest {
        code: "paused".into(),
        status: Some("disabled".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let error = expect_error(
        app.reserve("Paused", &new_id(), &new_id(), 100, 60).await,
        ErrorCode::FailedPrecondition,
    );
    assert!(error.message().contains("disabled"), "{error}");

    let error = expect_error(
        app.client
            .reserve_voucher(
                &anonymous(),
                &ReserveVoucherRequest {
                    code: "Paused".into(),
                    user_id: "someone".into(),
                    order_id: new_id(),
                    amount: usd(-1),
                    ttl_seconds: 0,
                },
            )
            .await,
        ErrorCode::InvalidArgument,
    );
    assert_eq!(bad_fields(&error), ["user_id", "amount.minor_units"]);
    assert_eq!(app.stored_counts("Paused").await, (0, 0));
    let redemptions: i64 = sqlx::query_scalar("SELECT count(*) FROM redemptions")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(redemptions, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_and_releases_are_published_once_each() {
    let app = TestApp::spawn().await;
    let created = app.create(voucher("Evented")).await;
    let (user, kept, dropped) = (new_id(), new_id(), new_id());
    app.reserve("Evented", &user, &kept, 100, 60).await.unwrap();
    app.reserve("Evented", &user, &dropped, 200, 60)
        .await
        .unwrap();
    app.commit(&kept).await.unwrap();
    app.commit(&kept).await.unwrap();
    app.release(&dropped).await.unwrap();
    app.release(&dropped).await.unwrap();

    let redeemed = app.published(&VOUCHER_REDEEMED, 1).await;
    let message = &redeemed[0];
    assert_eq!(
        message.subject.as_str(),
        events::names::subject(&VOUCHER_REDEEMED, &created.id).unwrap()
    );
    assert_eq!(
        message.headers.get(headers::EVENT_TYPE).unwrap().as_str(),
        "voucher.redeemed"
    );
    let event: VoucherRedeemed = serde_json::from_slice(&message.payload).unwrap();
    let redemption = event.redemption.unwrap();
    assert_eq!(redemption.order_id, kept);
    assert_eq!(redemption.code, "Evented");
    assert_eq!(redemption.user_id, user);
    assert_eq!(redemption.status, "committed");
    assert_eq!(redemption.amount, usd(100));

    let released = app.published(&VOUCHER_RELEASED, 1).await;
    let event: VoucherReleased = serde_json::from_slice(&released[0].payload).unwrap();
    let redemption = event.redemption.unwrap();
    assert_eq!(
        (redemption.order_id, redemption.status),
        (dropped, "released".into())
    );

    // Well past the relay's poll interval: the repeats published nothing.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(app.events_of(&VOUCHER_REDEEMED).await.len(), 1);
    assert_eq!(app.events_of(&VOUCHER_RELEASED).await.len(), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_sweeping_at_once_expire_each_redemption_exactly_once() {
    let app = TestApp::spawn().await;
    let replica = app.start_replica().await;
    app.create(voucher("Crowd")).await;
    let user = new_id();
    for _ in 0..30 {
        app.reserve("Crowd", &user, &new_id(), 100, 1)
            .await
            .unwrap();
    }
    assert_eq!(app.stored_counts("Crowd").await, (0, 30));

    eventually(
        Duration::from_secs(15),
        "every redemption to expire",
        || async { app.stored_counts("Crowd").await == (0, 0) },
    )
    .await;
    let expired: i64 =
        sqlx::query_scalar("SELECT count(*) FROM redemptions WHERE status = 'expired'")
            .fetch_one(app.db())
            .await
            .unwrap();
    assert_eq!(expired, 30);
    let uses: i32 = sqlx::query_scalar("SELECT uses FROM voucher_user_uses")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(uses, 0, "each use went back once");
    app.published(&VOUCHER_RELEASED, 30).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        app.events_of(&VOUCHER_RELEASED).await.len(),
        30,
        "one event each"
    );

    replica.stop().await;
    app.stop().await;
}
