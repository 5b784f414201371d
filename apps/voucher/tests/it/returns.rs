//! Returning a committed redemption (its order was cancelled): the use is given back once, so
//! it counts against neither the usage limit nor the user's, and the return is published.

use std::sync::Arc;
use std::time::Duration;

use api::voucher::events::{VOUCHER_REDEEMED, VOUCHER_RETURNED};
use api::voucher::{CreateVoucherRequest, VoucherReturned};
use events::headers;
use rpc::ErrorCode;

use crate::helpers::{TestApp, bad_fields, expect_error, new_id, usd, voucher};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returned_use_no_longer_counts_against_the_usage_limit() {
    let app = TestApp::spawn().await;
    app.create(CreateVoucherRequest {
        usage_limit: 1,
        ..voucher("ONLY1")
    })
    .await;
    let (first_user, second_user, order) = (new_id(), new_id(), new_id());
    app.reserve("ONLY1", &first_user, &order, 100, 60)
        .await
        .unwrap();
    app.commit(&order).await.unwrap();
    let error = expect_error(
        app.reserve("ONLY1", &second_user, &new_id(), 100, 60).await,
        ErrorCode::FailedPrecondition,
    );
    assert!(error.message().contains("exhausted"), "{error}");

    let returned = app.return_use(&order).await.unwrap();
    assert_eq!(returned.status, "returned");
    assert_eq!(returned.order_id, order);
    assert_eq!(returned.user_id, first_user);
    assert_eq!(returned.amount, usd(100));
    assert_eq!(app.stored_counts("ONLY1").await, (0, 0));
    assert_eq!(app.stored_user_uses("ONLY1", &first_user).await, 0);
    let shown = app.get("ONLY1").await;
    assert_eq!((shown.used_count, shown.reserved_count), (0, 0));

    // The saga retries: the same answer, and the use went back once.
    assert_eq!(app.return_use(&order).await.unwrap(), returned);
    assert_eq!(app.stored_counts("ONLY1").await, (0, 0));
    assert_eq!(app.stored_user_uses("ONLY1", &first_user).await, 0);

    let second_order = new_id();
    app.reserve("ONLY1", &second_user, &second_order, 100, 60)
        .await
        .expect("the use given back can be taken again");
    app.commit(&second_order).await.unwrap();
    assert_eq!(app.stored_counts("ONLY1").await, (1, 0));
    // Returning the first order again gives nothing more back.
    assert_eq!(app.return_use(&order).await.unwrap(), returned);
    assert_eq!(app.stored_counts("ONLY1").await, (1, 0));
    expect_error(
        app.reserve("ONLY1", &new_id(), &new_id(), 100, 60).await,
        ErrorCode::FailedPrecondition,
    );

    // A returned redemption stays returned: it can be neither committed nor released, and
    // reserving its order again answers it as it is.
    let error = expect_error(app.commit(&order).await, ErrorCode::FailedPrecondition);
    assert_eq!(
        error.message(),
        format!("redemption of order {order} is returned")
    );
    expect_error(app.release(&order).await, ErrorCode::FailedPrecondition);
    assert_eq!(
        app.reserve("ONLY1", &first_user, &order, 100, 60)
            .await
            .unwrap(),
        returned
    );
    assert_eq!(app.stored_counts("ONLY1").await, (1, 0));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returned_use_no_longer_counts_against_the_per_user_limit() {
    let app = TestApp::spawn().await;
    app.create(CreateVoucherRequest {
        per_user_limit: 1,
        ..voucher("PERUSER")
    })
    .await;
    let (user, order) = (new_id(), new_id());
    app.reserve("PERUSER", &user, &order, 100, 60)
        .await
        .unwrap();
    app.commit(&order).await.unwrap();
    let error = expect_error(
        app.reserve("PERUSER", &user, &new_id(), 100, 60).await,
        ErrorCode::FailedPrecondition,
    );
    assert!(error.message().contains("already_used"), "{error}");
    assert_eq!(app.stored_user_uses("PERUSER", &user).await, 1);

    app.return_use(&order).await.unwrap();
    app.return_use(&order).await.unwrap();
    assert_eq!(app.stored_user_uses("PERUSER", &user).await, 0, "once");
    assert_eq!(app.stored_counts("PERUSER").await, (0, 0));
    let evaluation = app.evaluate("PERUSER", &user, "USD", vec![]).await;
    assert_ne!(evaluation.reason, "already_used", "{evaluation:?}");

    app.reserve("PERUSER", &user, &new_id(), 100, 60)
        .await
        .expect("the user's use given back can be taken again");
    expect_error(
        app.reserve("PERUSER", &user, &new_id(), 100, 60).await,
        ErrorCode::FailedPrecondition,
    );
    assert_eq!(app.stored_user_uses("PERUSER", &user).await, 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_committed_redemption_can_be_returned() {
    let app = TestApp::spawn().await;
    app.create(voucher("NotYet")).await;
    let (user, held, released) = (new_id(), new_id(), new_id());
    app.reserve("NotYet", &user, &held, 100, 60).await.unwrap();
    app.reserve("NotYet", &user, &released, 100, 60)
        .await
        .unwrap();
    app.release(&released).await.unwrap();

    let error = expect_error(app.return_use(&held).await, ErrorCode::FailedPrecondition);
    assert_eq!(
        error.message(),
        format!(
            "redemption of order {held} is held: only a committed redemption can be returned \
             (it is the only kind whose use counts)"
        )
    );
    let error = expect_error(
        app.return_use(&released).await,
        ErrorCode::FailedPrecondition,
    );
    assert!(error.message().contains("is released"), "{error}");
    assert_eq!(app.stored_status(&held).await, "held");
    assert_eq!(app.stored_counts("NotYet").await, (0, 1), "nothing changed");
    assert_eq!(app.stored_user_uses("NotYet", &user).await, 1);

    let unknown = new_id();
    let error = expect_error(app.return_use(&unknown).await, ErrorCode::NotFound);
    assert_eq!(
        error.message(),
        format!("redemption of order {unknown} not found")
    );
    let error = app.return_use("order-1").await.unwrap_err();
    assert_eq!(bad_fields(&error), ["order_id"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_returns_give_the_use_back_once() {
    let app = Arc::new(TestApp::spawn().await);
    app.create(CreateVoucherRequest {
        usage_limit: 5,
        ..voucher("Racy")
    })
    .await;
    let user = new_id();
    let orders: Vec<String> = (0..3).map(|_| new_id()).collect();
    for order in &orders {
        app.reserve("Racy", &user, order, 100, 60).await.unwrap();
        app.commit(order).await.unwrap();
    }
    assert_eq!(app.stored_counts("Racy").await, (3, 0));

    let attempts: Vec<_> = (0..10)
        .map(|_| {
            let (app, order) = (app.clone(), orders[0].clone());
            tokio::spawn(async move { app.return_use(&order).await })
        })
        .collect();
    for attempt in attempts {
        let redemption = attempt.await.unwrap().expect("every return answers");
        assert_eq!(redemption.status, "returned");
    }
    assert_eq!(app.stored_counts("Racy").await, (2, 0), "given back once");
    assert_eq!(app.stored_user_uses("Racy", &user).await, 2);
    Arc::into_inner(app).unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_is_published_once() {
    let app = TestApp::spawn().await;
    let created = app.create(voucher("Giveback")).await;
    let (user, order) = (new_id(), new_id());
    app.reserve("Giveback", &user, &order, 150, 60)
        .await
        .unwrap();
    app.commit(&order).await.unwrap();
    app.return_use(&order).await.unwrap();
    app.return_use(&order).await.unwrap();

    let returned = app.published(&VOUCHER_RETURNED, 1).await;
    let message = &returned[0];
    assert_eq!(
        message.subject.as_str(),
        events::names::subject(&VOUCHER_RETURNED, &created.id).unwrap()
    );
    assert_eq!(
        message.headers.get(headers::EVENT_TYPE).unwrap().as_str(),
        "voucher.returned"
    );
    let event: VoucherReturned = serde_json::from_slice(&message.payload).unwrap();
    let redemption = event.redemption.unwrap();
    assert_eq!(redemption.order_id, order);
    assert_eq!(redemption.user_id, user);
    assert_eq!(redemption.code, "Giveback");
    assert_eq!(redemption.status, "returned");
    assert_eq!(redemption.amount, usd(150));
    let redeemed = &app.published(&VOUCHER_REDEEMED, 1).await[0];
    assert!(redeemed.sequence < message.sequence, "commit order");

    // Well past the relay's poll interval: the repeat published nothing.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(app.events_of(&VOUCHER_RETURNED).await.len(), 1);
    app.stop().await;
}
