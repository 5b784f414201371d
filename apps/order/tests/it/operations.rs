//! Operating the sagas (admins only), and the checkout under load: many customers racing for
//! the last units of one product.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use api::order::{
    AbortSagaRequest, GetSagaRequest, ListSagasRequest, ListSagasResponse, RetrySagaRequest,
};
use rpc::{Context, ErrorCode};
use testkit::callers::admin;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::helpers::{TestApp, VISA_DECLINED, expect_error, minor};

/// The checkout saga's steps, in the order they run.
const CHECKOUT_STEPS: [&str; 12] = [
    "open",
    "snapshot_address",
    "price_cart",
    "record_order",
    "reserve_stock",
    "reserve_voucher",
    "authorize_payment",
    "commit_voucher",
    "commit_stock",
    "capture_payment",
    "mark_paid",
    "clear_cart",
];

async fn list_sagas(app: &TestApp, ctx: &Context, state: &str, saga: &str) -> ListSagasResponse {
    app.client
        .list_sagas(
            ctx,
            &ListSagasRequest {
                state: state.into(),
                saga: saga.into(),
                ..Default::default()
            },
        )
        .await
        .expect("listing sagas")
}

fn ids(page: &ListSagasResponse) -> Vec<&str> {
    page.sagas.iter().map(|s| s.id.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_list_inspect_and_operate_sagas_and_nobody_else_does() {
    let app = TestApp::spawn().await;
    let seller = app.seller().await;
    let lamp = app.product(&seller, "Lamp", 2500, 5).await;
    let customer = app.customer().await;
    let paid = app.paid_order(&customer, &[&lamp], 1).await;
    let declined = app.customer_with(VISA_DECLINED, "US").await;
    app.add_to_cart(&declined, &lamp, 1).await;
    let failed = app.checkout(&declined).await;
    assert_eq!(failed.status, "failed");

    // Listed newest first, filtered by state and by saga.
    let all = list_sagas(&app, &admin(), "", "").await;
    assert_eq!(ids(&all), [failed.id.as_str(), paid.id.as_str()]);
    assert!(all.sagas.iter().all(|s| s.saga == "checkout"));
    assert!(all.sagas.iter().all(|s| s.steps.is_empty()));
    let completed = list_sagas(&app, &admin(), "completed", "").await;
    assert_eq!(ids(&completed), [paid.id.as_str()]);
    let compensated = list_sagas(&app, &admin(), "compensated", "checkout").await;
    assert_eq!(ids(&compensated), [failed.id.as_str()]);
    assert_eq!(compensated.sagas[0].refusal_code, "payment_declined");
    assert!(
        list_sagas(&app, &admin(), "", "cancellation")
            .await
            .sagas
            .is_empty()
    );
    assert!(
        list_sagas(&app, &admin(), "running", "")
            .await
            .sagas
            .is_empty()
    );
    // A page at a time.
    let first = app
        .client
        .list_sagas(
            &admin(),
            &ListSagasRequest {
                page_size: 1,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(&first), [failed.id.as_str()]);
    let second = app
        .client
        .list_sagas(
            &admin(),
            &ListSagasRequest {
                page_size: 1,
                cursor: first.next_cursor.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(&second), [paid.id.as_str()]);
    assert!(second.next_cursor.is_empty());

    // The paid order's saga, every step done once, with its timings.
    let saga = app
        .client
        .get_saga(
            &admin(),
            &GetSagaRequest {
                id: paid.id.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (saga.id.as_str(), saga.saga.as_str(), saga.state.as_str()),
        (paid.id.as_str(), "checkout", "completed")
    );
    assert!(saga.finished_at.is_some());
    assert_eq!(saga.current_step, "");
    assert_eq!(
        saga.steps
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        CHECKOUT_STEPS
    );
    for step in &saga.steps {
        assert_eq!(
            (step.phase.as_str(), step.outcome.as_str(), step.attempts),
            ("action", "done", 1),
            "{step:?}"
        );
        assert!(step.started_at.is_some() && step.finished_at.is_some());
        assert!(step.duration_ms >= 0, "{step:?}");
        assert!(step.last_error.is_empty(), "{step:?}");
    }
    // The failed one: refused at the payment, then compensated back to the start.
    let saga = app
        .client
        .get_saga(
            &admin(),
            &GetSagaRequest {
                id: failed.id.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(saga.state, "compensated");
    let authorize = saga
        .steps
        .iter()
        .find(|s| s.name == "authorize_payment" && s.phase == "action")
        .expect("the authorisation step");
    assert_eq!(authorize.outcome, "refused");
    assert!(
        !saga
            .steps
            .iter()
            .any(|s| s.phase == "action" && s.name == "commit_stock")
    );
    let compensations: Vec<&str> = saga
        .steps
        .iter()
        .filter(|s| s.phase == "compensation")
        .map(|s| s.name.as_str())
        .collect();
    assert!(
        compensations.contains(&"reserve_stock"),
        "{compensations:?}"
    );
    assert_eq!(compensations.last(), Some(&"open"), "{compensations:?}");
    assert!(
        saga.steps
            .iter()
            .filter(|s| s.phase == "compensation")
            .all(|s| s.outcome == "done")
    );

    // Nothing to retry or abort once a saga ended.
    for id in [&paid.id, &failed.id] {
        expect_error(
            app.client
                .abort_saga(
                    &admin(),
                    &AbortSagaRequest {
                        id: id.clone(),
                        reason: "testing".into(),
                    },
                )
                .await,
            ErrorCode::FailedPrecondition,
        );
        expect_error(
            app.client
                .retry_saga(&admin(), &RetrySagaRequest { id: id.clone() })
                .await,
            ErrorCode::FailedPrecondition,
        );
    }
    let random = Uuid::now_v7().to_string();
    expect_error(
        app.client
            .get_saga(&admin(), &GetSagaRequest { id: random.clone() })
            .await,
        ErrorCode::NotFound,
    );
    expect_error(
        app.client
            .retry_saga(&admin(), &RetrySagaRequest { id: random.clone() })
            .await,
        ErrorCode::NotFound,
    );

    // Customers and sellers may do none of it, not even on their own order's saga.
    for ctx in [&customer.ctx, &seller.ctx] {
        expect_error(
            app.client
                .list_sagas(ctx, &ListSagasRequest::default())
                .await,
            ErrorCode::PermissionDenied,
        );
        expect_error(
            app.client
                .get_saga(
                    ctx,
                    &GetSagaRequest {
                        id: paid.id.clone(),
                    },
                )
                .await,
            ErrorCode::PermissionDenied,
        );
        expect_error(
            app.client
                .retry_saga(
                    ctx,
                    &RetrySagaRequest {
                        id: failed.id.clone(),
                    },
                )
                .await,
            ErrorCode::PermissionDenied,
        );
        expect_error(
            app.client
                .abort_saga(
                    ctx,
                    &AbortSagaRequest {
                        id: paid.id.clone(),
                        reason: "mine".into(),
                    },
                )
                .await,
            ErrorCode::PermissionDenied,
        );
    }
    // The orders are as they were.
    assert_eq!(
        app.get_order(&customer.ctx, &paid.id).await.unwrap().status,
        "paid"
    );

    // What an operator's dashboard reads: outcomes per saga, step latency, what is in flight.
    let metrics = metrics(&app).await;
    for expected in [
        "saga_started_total{saga=\"checkout\"}",
        "saga_completed_total{saga=\"checkout\"}",
        "saga_compensated_total{saga=\"checkout\"}",
        "saga_step_duration_seconds_count{saga=\"checkout\",step=\"authorize_payment\",phase=\"action\"}",
    ] {
        // The counters exist from the start, at 0: each has counted.
        let value = metrics
            .lines()
            .find_map(|line| line.strip_prefix(expected))
            .and_then(|value| value.trim().parse::<f64>().ok());
        assert!(
            value.is_some_and(|n| n >= 1.0),
            "{expected} in the order service's /metrics: {value:?}"
        );
    }
    app.stop().await;
}

/// The order service's `/metrics` from its admin port.
async fn metrics(app: &TestApp) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(app.admin_addr())
        .await
        .unwrap();
    let request = "GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n";
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

/// How many customers race, for how many units, with how many requests in flight at once.
const CUSTOMERS: usize = 100;
const UNITS: i64 = 10;
const IN_FLIGHT: usize = 25;
const PRICE: i64 = 2500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_customers_racing_for_ten_units_make_ten_paid_orders() {
    // No shipping charge, so that every paid order is exactly the product's price.
    let app =
        Arc::new(TestApp::spawn_with(|config| config.shipping_rates = "standard=0".into()).await);
    let seller = app.seller().await;
    let lamp = app.product(&seller, "Lamp", PRICE, UNITS).await;
    let gate = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut tasks = JoinSet::new();
    for _ in 0..CUSTOMERS {
        let (app, gate, lamp) = (app.clone(), gate.clone(), lamp.clone());
        tasks.spawn(async move {
            let _turn = gate.acquire_owned().await.unwrap();
            let customer = app.customer().await;
            app.add_to_cart(&customer, &lamp, 1).await;
            customer
        });
    }
    let customers = tasks.join_all().await;

    // Stock and holds are watched throughout: never below zero, never more held than stocked.
    let watching = Arc::new(AtomicBool::new(true));
    let watcher = tokio::spawn({
        let (app, lamp, watching) = (app.clone(), lamp.clone(), watching.clone());
        async move {
            let mut looks = 0;
            while watching.load(Ordering::Relaxed) {
                let seen = app.availability(&lamp).await;
                assert!(
                    seen.stock >= 0
                        && seen.reserved >= 0
                        && seen.available >= 0
                        && seen.reserved <= seen.stock,
                    "{seen:?}"
                );
                looks += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            looks
        }
    });

    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for customer in customers {
        let (app, gate) = (app.clone(), gate.clone());
        tasks.spawn(async move {
            let _turn = gate.acquire_owned().await.unwrap();
            let request = app.checkout_request(&customer, &Uuid::now_v7().to_string());
            let answer = app
                .checkout_with(&customer, &request)
                .await
                .expect("checking out");
            let id = answer.order.expect("the answer holds the order").id;
            app.settled(&customer, &id).await
        });
    }
    let orders = tasks.join_all().await;
    let took = started.elapsed();
    watching.store(false, Ordering::Relaxed);
    assert!(watcher.await.expect("stock stayed sane") > 0);
    eprintln!("{CUSTOMERS} concurrent checkouts settled in {took:?}");

    let paid: Vec<_> = orders.iter().filter(|o| o.status == "paid").collect();
    let failed: Vec<_> = orders.iter().filter(|o| o.status == "failed").collect();
    assert_eq!(paid.len(), UNITS as usize);
    assert_eq!(failed.len(), CUSTOMERS - UNITS as usize);
    for order in &failed {
        let failure = order.failure.as_ref().expect("why it failed");
        assert_eq!(failure.code, "out_of_stock", "{failure:?}");
        assert_eq!(failure.product_ids, [lamp.id.as_str()]);
    }
    let lamps = app.availability(&lamp).await;
    assert_eq!((lamps.stock, lamps.reserved, lamps.available), (0, 0, 0));
    // Money moved only for the paid orders: one capture each, the price each.
    let mut captured = 0;
    for order in &paid {
        assert_eq!(minor(&order.total), PRICE);
        assert_eq!(app.provider_calls(&order.id, "capture").await, 1);
        captured += app
            .payments_of(&order.id)
            .await
            .iter()
            .map(|p| minor(&p.captured))
            .sum::<i64>();
    }
    assert_eq!(captured, UNITS * PRICE);
    for order in &failed {
        let payments = app.payments_of(&order.id).await;
        assert!(
            payments.iter().all(|p| minor(&p.captured) == 0),
            "{payments:?}"
        );
    }
    // Every saga ended: ten completed, the rest compensated.
    for (state, count) in [
        ("completed", UNITS as usize),
        ("compensated", CUSTOMERS - UNITS as usize),
        ("running", 0),
        ("compensating", 0),
    ] {
        let listed = app
            .client
            .list_sagas(
                &admin(),
                &ListSagasRequest {
                    state: state.into(),
                    page_size: 100,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(listed.sagas.len(), count, "{state}");
    }
    Arc::try_unwrap(app)
        .ok()
        .expect("every task is done with the app")
        .stop()
        .await;
}
