//! Stock levels and reservations: all-or-nothing holds, idempotent retries, release, commit,
//! restock, expiry, and no overselling (nor restocking twice) under concurrency.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use api::product::{
    CheckAvailabilityRequest, CommitReservationRequest, CreateProductRequest,
    LookupProductsRequest, ReleaseReservationRequest, Reservation, RestockReservationRequest,
    SetStockRequest, UpdateProductRequest,
};
use rpc::ErrorCode;
use uuid::Uuid;

use crate::helpers::{
    TestApp, admin, anonymous, bad_fields, customer, expect_error, item, product,
};

fn new_id() -> String {
    Uuid::now_v7().to_string()
}

async fn product_with_stock(app: &TestApp, name: &str, stock: i64) -> String {
    app.create_product(CreateProductRequest {
        initial_stock: stock,
        ..product(name)
    })
    .await
    .id
}

async fn release(app: &TestApp, reservation_id: &str) -> Result<Reservation, rpc::Error> {
    app.client
        .release_reservation(
            &anonymous(),
            &ReleaseReservationRequest {
                reservation_id: reservation_id.into(),
            },
        )
        .await
}

async fn commit(app: &TestApp, reservation_id: &str) -> Result<Reservation, rpc::Error> {
    app.client
        .commit_reservation(
            &anonymous(),
            &CommitReservationRequest {
                reservation_id: reservation_id.into(),
            },
        )
        .await
}

async fn restock(app: &TestApp, reservation_id: &str) -> Result<Reservation, rpc::Error> {
    app.client
        .restock_reservation(
            &anonymous(),
            &RestockReservationRequest {
                reservation_id: reservation_id.into(),
            },
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reservations_never_oversell() {
    let app = Arc::new(TestApp::spawn().await);
    let product_id = product_with_stock(&app, "Limited Edition", 50).await;

    // Watch the stored row the whole time: reserved must never exceed stock.
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (db, done, product_id) = (app.db().clone(), done.clone(), product_id.clone());
        tokio::spawn(async move {
            let mut samples = 0;
            while !done.load(Ordering::Relaxed) {
                let (stock, reserved): (i64, i64) = sqlx::query_as(
                    "SELECT stock, reserved FROM inventory WHERE product_id = $1::uuid",
                )
                .bind(&product_id)
                .fetch_one(&db)
                .await
                .unwrap();
                assert!(reserved <= stock, "reserved {reserved} > stock {stock}");
                samples += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            samples
        })
    };

    let attempts: Vec<_> = (0..200)
        .map(|_| {
            let (app, product_id) = (app.clone(), product_id.clone());
            tokio::spawn(
                async move { app.reserve(&new_id(), vec![item(&product_id, 1)], 60).await },
            )
        })
        .collect();
    let mut succeeded = 0;
    let mut refused = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(reservation) => {
                assert_eq!(reservation.status, "held");
                succeeded += 1;
            }
            Err(error) => {
                assert_eq!(error.code(), ErrorCode::FailedPrecondition, "{error}");
                assert!(error.message().contains(&product_id), "{error}");
                refused += 1;
            }
        }
    }
    done.store(true, Ordering::Relaxed);
    let samples = watcher.await.unwrap();
    assert!(samples > 0);

    assert_eq!((succeeded, refused), (50, 150));
    let availability = app.availability(&product_id).await;
    assert_eq!(
        (
            availability.stock,
            availability.reserved,
            availability.available
        ),
        (50, 50, 0)
    );
    assert!(!availability.in_stock);
    let held: i64 = sqlx::query_scalar("SELECT count(*) FROM reservations WHERE status = 'held'")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(held, 50, "refused reservations left nothing behind");

    // And the database itself refuses to hold more than there is.
    let error =
        sqlx::query("UPDATE inventory SET reserved = stock + 1 WHERE product_id = $1::uuid")
            .bind(&product_id)
            .execute(app.db())
            .await
            .unwrap_err();
    let constraint = error.as_database_error().and_then(|e| e.constraint());
    assert_eq!(constraint, Some("inventory_reserved_within_stock"));

    Arc::into_inner(app)
        .expect("no other references")
        .stop()
        .await;
}

#[tokio::test]
async fn a_reservation_is_all_or_nothing() {
    let app = TestApp::spawn().await;
    let plenty = product_with_stock(&app, "Plenty", 100).await;
    let scarce = product_with_stock(&app, "Scarce", 2).await;

    let error = expect_error(
        app.reserve(&new_id(), vec![item(&plenty, 5), item(&scarce, 3)], 0)
            .await,
        ErrorCode::FailedPrecondition,
    );
    assert!(error.message().contains(&scarce), "{error}");
    assert_eq!(
        app.stored_stock(&plenty).await,
        (100, 0),
        "nothing stays held"
    );

    let unknown = new_id();
    let error = expect_error(
        app.reserve(&new_id(), vec![item(&plenty, 1), item(&unknown, 1)], 0)
            .await,
        ErrorCode::NotFound,
    );
    assert_eq!(error.message(), format!("product {unknown} not found"));

    let error = app
        .reserve("order-1", vec![item(&plenty, 1), item(&plenty, 2)], 90_000)
        .await
        .unwrap_err();
    // The field rules name the malformed id and the too-long hold; the same product twice is
    // the service's to refuse once the request has the right shape.
    assert_eq!(bad_fields(&error), ["reservation_id", "ttl_seconds"]);
    let error = app
        .reserve(&new_id(), vec![item(&plenty, 1), item(&plenty, 2)], 0)
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&error), ["items"]);
    let error = app
        .reserve(&new_id(), vec![item(&plenty, 10_001)], 0)
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&error), ["items[0].quantity"]);

    let reservation = app
        .reserve(&new_id(), vec![item(&scarce, 2), item(&plenty, 5)], 0)
        .await
        .unwrap();
    assert_eq!(reservation.items.len(), 2);
    assert_eq!(app.stored_stock(&plenty).await, (100, 5));
    assert_eq!(app.stored_stock(&scarce).await, (2, 2));
    app.stop().await;
}

#[tokio::test]
async fn repeating_a_reservation_changes_nothing() {
    let app = TestApp::spawn().await;
    let product_id = product_with_stock(&app, "Kettle", 10).await;
    let reservation_id = new_id();

    let first = app
        .reserve(&reservation_id, vec![item(&product_id, 3)], 0)
        .await
        .unwrap();
    let again = app
        .reserve(&reservation_id, vec![item(&product_id, 3)], 0)
        .await
        .unwrap();
    assert_eq!(again, first, "the same reservation is returned");
    assert_eq!(app.availability(&product_id).await.reserved, 3, "held once");

    let error = expect_error(
        app.reserve(&reservation_id, vec![item(&product_id, 4)], 0)
            .await,
        ErrorCode::Conflict,
    );
    assert!(error.message().contains(&reservation_id));
    assert_eq!(app.availability(&product_id).await.reserved, 3);
    app.stop().await;
}

#[tokio::test]
async fn releasing_gives_stock_back_once() {
    let app = TestApp::spawn().await;
    let product_id = product_with_stock(&app, "Toaster", 5).await;
    let reservation_id = new_id();
    app.reserve(&reservation_id, vec![item(&product_id, 4)], 0)
        .await
        .unwrap();
    assert_eq!(app.availability(&product_id).await.available, 1);

    let released = release(&app, &reservation_id).await.unwrap();
    assert_eq!(released.status, "released");
    assert_eq!(app.stored_stock(&product_id).await, (5, 0));

    let again = release(&app, &reservation_id).await.unwrap();
    assert_eq!(again.status, "released");
    assert_eq!(
        app.stored_stock(&product_id).await,
        (5, 0),
        "released only once"
    );

    expect_error(
        commit(&app, &reservation_id).await,
        ErrorCode::FailedPrecondition,
    );
    expect_error(release(&app, &new_id()).await, ErrorCode::NotFound);
    app.stop().await;
}

#[tokio::test]
async fn committing_sells_the_stock_and_cannot_be_undone() {
    let app = TestApp::spawn().await;
    let product_id = product_with_stock(&app, "Blender", 8).await;
    let reservation_id = new_id();
    app.reserve(&reservation_id, vec![item(&product_id, 3)], 0)
        .await
        .unwrap();

    let committed = commit(&app, &reservation_id).await.unwrap();
    assert_eq!(committed.status, "committed");
    let availability = app.availability(&product_id).await;
    assert_eq!(
        (
            availability.stock,
            availability.reserved,
            availability.available
        ),
        (5, 0, 5)
    );

    assert_eq!(
        commit(&app, &reservation_id).await.unwrap().status,
        "committed"
    );
    assert_eq!(
        app.stored_stock(&product_id).await,
        (5, 0),
        "committed only once"
    );

    let error = expect_error(
        release(&app, &reservation_id).await,
        ErrorCode::FailedPrecondition,
    );
    assert_eq!(
        error.message(),
        format!("reservation {reservation_id} is committed")
    );
    assert_eq!(app.stored_stock(&product_id).await, (5, 0));
    app.stop().await;
}

#[tokio::test]
async fn restocking_puts_what_a_committed_reservation_sold_back_once() {
    let app = TestApp::spawn().await;
    let mixer = product_with_stock(&app, "Mixer", 8).await;
    let whisk = product_with_stock(&app, "Whisk", 4).await;
    let before = (
        app.availability(&mixer).await,
        app.availability(&whisk).await,
    );
    let reservation_id = new_id();
    app.reserve(&reservation_id, vec![item(&mixer, 3), item(&whisk, 4)], 0)
        .await
        .unwrap();
    commit(&app, &reservation_id).await.unwrap();
    assert_eq!(app.stored_stock(&mixer).await, (5, 0));
    assert_eq!(app.stored_stock(&whisk).await, (0, 0));

    let restocked = restock(&app, &reservation_id).await.unwrap();
    assert_eq!(restocked.status, "restocked");
    assert_eq!(restocked.reservation_id, reservation_id);
    assert_eq!(restocked.items.len(), 2);
    let after = (
        app.availability(&mixer).await,
        app.availability(&whisk).await,
    );
    assert_eq!(
        after, before,
        "stock and availability are as before the reservation"
    );

    // The saga retries: the same answer, and the stock went back once.
    let again = restock(&app, &reservation_id).await.unwrap();
    assert_eq!(again, restocked);
    assert_eq!(app.stored_stock(&mixer).await, (8, 0));
    assert_eq!(app.stored_stock(&whisk).await, (4, 0));

    // A restocked reservation's sale is undone for good: it can neither be released nor
    // committed again.
    let error = expect_error(
        release(&app, &reservation_id).await,
        ErrorCode::FailedPrecondition,
    );
    assert_eq!(
        error.message(),
        format!("reservation {reservation_id} is restocked")
    );
    expect_error(
        commit(&app, &reservation_id).await,
        ErrorCode::FailedPrecondition,
    );
    assert_eq!(app.stored_stock(&mixer).await, (8, 0));
    app.stop().await;
}

#[tokio::test]
async fn only_a_committed_reservation_can_be_restocked() {
    let app = TestApp::spawn().await;
    let product_id = product_with_stock(&app, "Griddle", 6).await;

    let held = new_id();
    app.reserve(&held, vec![item(&product_id, 2)], 0)
        .await
        .unwrap();
    let error = expect_error(restock(&app, &held).await, ErrorCode::FailedPrecondition);
    assert_eq!(
        error.message(),
        format!(
            "reservation {held} is held: only a committed reservation can be restocked \
             (it is the only kind that took stock)"
        )
    );
    assert_eq!(
        app.stored_stock(&product_id).await,
        (6, 2),
        "nothing changed"
    );

    let released = new_id();
    app.reserve(&released, vec![item(&product_id, 1)], 0)
        .await
        .unwrap();
    release(&app, &released).await.unwrap();
    let error = expect_error(
        restock(&app, &released).await,
        ErrorCode::FailedPrecondition,
    );
    assert!(error.message().contains("is released"), "{error}");
    assert_eq!(app.stored_stock(&product_id).await, (6, 2));

    let unknown = new_id();
    let error = expect_error(restock(&app, &unknown).await, ErrorCode::NotFound);
    assert_eq!(error.message(), format!("reservation {unknown} not found"));
    let error = restock(&app, "order-1").await.unwrap_err();
    assert_eq!(bad_fields(&error), ["reservation_id"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_restocks_put_the_stock_back_once() {
    let app = Arc::new(TestApp::spawn().await);
    let product_id = product_with_stock(&app, "Dutch Oven", 10).await;
    let reservation_id = new_id();
    app.reserve(&reservation_id, vec![item(&product_id, 7)], 0)
        .await
        .unwrap();
    commit(&app, &reservation_id).await.unwrap();
    assert_eq!(app.stored_stock(&product_id).await, (3, 0));

    let attempts: Vec<_> = (0..10)
        .map(|_| {
            let (app, reservation_id) = (app.clone(), reservation_id.clone());
            tokio::spawn(async move { restock(&app, &reservation_id).await })
        })
        .collect();
    for attempt in attempts {
        let reservation = attempt.await.unwrap().expect("every restock answers");
        assert_eq!(reservation.status, "restocked");
    }
    assert_eq!(app.stored_stock(&product_id).await, (10, 0), "added once");
    let events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events_outbox WHERE event_name = 'inventory.restocked'",
    )
    .fetch_one(app.db())
    .await
    .unwrap();
    assert_eq!(events, 1, "one event for one restock");

    Arc::into_inner(app)
        .expect("no other references")
        .stop()
        .await;
}

#[tokio::test]
async fn expired_reservations_give_their_stock_back() {
    let app = TestApp::spawn().await;
    let product_id = product_with_stock(&app, "Umbrella", 6).await;
    let reservation_id = new_id();
    app.reserve(&reservation_id, vec![item(&product_id, 4)], 1)
        .await
        .unwrap();
    assert_eq!(app.stored_stock(&product_id).await, (6, 4));

    // The background sweeper (every 100 ms in tests) expires it soon after its second is up.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while app.stored_stock(&product_id).await != (6, 0) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the reservation never expired"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status: String = sqlx::query_scalar("SELECT status FROM reservations WHERE id = $1::uuid")
        .bind(&reservation_id)
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(status, "expired");

    // An expired reservation stays given back: releasing changes nothing, committing fails.
    assert_eq!(
        release(&app, &reservation_id).await.unwrap().status,
        "expired"
    );
    expect_error(
        commit(&app, &reservation_id).await,
        ErrorCode::FailedPrecondition,
    );
    assert_eq!(app.stored_stock(&product_id).await, (6, 0));
    app.stop().await;
}

#[tokio::test]
async fn the_sweep_can_be_run_directly() {
    // A sweeper interval far beyond the test, so only the direct call expires anything.
    let app = TestApp::spawn_with(|config| config.reservation_sweep_interval_ms = 3_600_000).await;
    let product_id = product_with_stock(&app, "Lantern", 3).await;
    let due = new_id();
    let not_due = new_id();
    app.reserve(&due, vec![item(&product_id, 1)], 1)
        .await
        .unwrap();
    app.reserve(&not_due, vec![item(&product_id, 1)], 600)
        .await
        .unwrap();

    // Past its expiry but not yet swept: it cannot be committed any more.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let error = expect_error(commit(&app, &due).await, ErrorCode::FailedPrecondition);
    assert!(error.message().contains("expired"), "{error}");

    let expired = product_service::inventory::expire_due_reservations(app.db())
        .await
        .unwrap();
    assert_eq!(expired, 1);
    assert_eq!(app.stored_stock(&product_id).await, (3, 1));
    let again = product_service::inventory::expire_due_reservations(app.db())
        .await
        .unwrap();
    assert_eq!(again, 0);
    app.stop().await;
}

#[tokio::test]
async fn stock_can_be_set_but_not_below_what_is_reserved() {
    let app = TestApp::spawn().await;
    let product_id = product_with_stock(&app, "Stool", 10).await;
    app.reserve(&new_id(), vec![item(&product_id, 4)], 0)
        .await
        .unwrap();

    let set = |stock: i64| SetStockRequest {
        id: product_id.clone(),
        stock,
    };
    let availability = app.client.set_stock(&admin(), &set(20)).await.unwrap();
    assert_eq!(
        (
            availability.stock,
            availability.reserved,
            availability.available
        ),
        (20, 4, 16)
    );
    let error = expect_error(
        app.client.set_stock(&admin(), &set(3)).await,
        ErrorCode::FailedPrecondition,
    );
    assert!(error.message().contains("4 units reserved"), "{error}");
    assert_eq!(app.stored_stock(&product_id).await, (20, 4));

    let error = app.client.set_stock(&admin(), &set(-1)).await.unwrap_err();
    assert_eq!(bad_fields(&error), ["stock"]);
    // A customer owns no shop: to them the product's stock is not there to change.
    expect_error(
        app.client.set_stock(&customer(), &set(1)).await,
        ErrorCode::NotFound,
    );
    assert_eq!(app.stored_stock(&product_id).await, (20, 4));
    expect_error(
        app.client
            .set_stock(
                &admin(),
                &SetStockRequest {
                    id: new_id(),
                    stock: 1,
                },
            )
            .await,
        ErrorCode::NotFound,
    );
    app.stop().await;
}

#[tokio::test]
async fn availability_checks_and_inactive_products() {
    let app = TestApp::spawn().await;
    let chair = product_with_stock(&app, "Chair", 3).await;
    let table = product_with_stock(&app, "Table", 1).await;

    let check = |items| CheckAvailabilityRequest { items };
    let response = app
        .client
        .check_availability(&anonymous(), &check(vec![item(&chair, 3), item(&table, 1)]))
        .await
        .unwrap();
    assert!(response.available);
    assert_eq!(response.items.len(), 2);
    let response = app
        .client
        .check_availability(&anonymous(), &check(vec![item(&chair, 4)]))
        .await
        .unwrap();
    assert!(!response.available);
    assert_eq!(response.items[0].available, 3);

    // An inactive product is not for sale, and customers cannot see its stock.
    app.client
        .update_product(
            &admin(),
            &UpdateProductRequest {
                id: table.clone(),
                status: Some("inactive".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let response = app
        .client
        .check_availability(&anonymous(), &check(vec![item(&table, 1)]))
        .await
        .unwrap();
    assert!(!response.available);
    let error = expect_error(
        app.reserve(&new_id(), vec![item(&table, 1)], 0).await,
        ErrorCode::FailedPrecondition,
    );
    assert!(error.message().contains("not for sale"), "{error}");
    expect_error(
        app.client
            .get_availability(
                &customer(),
                &api::product::GetAvailabilityRequest { id: table.clone() },
            )
            .await,
        ErrorCode::NotFound,
    );
    app.stop().await;
}

#[tokio::test]
async fn lookups_answer_existing_products_with_what_could_be_reserved() {
    let app = TestApp::spawn().await;
    let lamp = product_with_stock(&app, "Lamp", 5).await;
    let rug = product_with_stock(&app, "Rug", 2).await;
    app.reserve(&new_id(), vec![item(&lamp, 3)], 0)
        .await
        .expect("holding three lamps");
    app.client
        .update_product(
            &admin(),
            &UpdateProductRequest {
                id: rug.clone(),
                status: Some("inactive".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    let missing = new_id();
    let response = app
        .client
        .lookup_products(
            &anonymous(),
            &LookupProductsRequest {
                product_ids: vec![rug.clone(), missing.clone(), lamp.clone(), lamp.clone()],
            },
        )
        .await
        .expect("looking products up");
    let mut offers: Vec<(String, String, i64)> = response
        .offers
        .iter()
        .map(|offer| {
            let product = offer.product.as_ref().expect("an offer names its product");
            (product.id.clone(), product.status.clone(), offer.available)
        })
        .collect();
    offers.sort();
    let mut expected = vec![
        (lamp.clone(), "active".to_owned(), 2),
        (rug.clone(), "inactive".to_owned(), 2),
    ];
    expected.sort();
    assert_eq!(
        offers, expected,
        "unknown ids are left out, any status is in"
    );

    let price = response.offers[0].product.as_ref().unwrap().price.clone();
    assert_eq!(price.map(|p| p.currency), Some("USD".to_owned()));

    let error = app
        .client
        .lookup_products(
            &anonymous(),
            &LookupProductsRequest {
                product_ids: vec![lamp, "not-a-uuid".into()],
            },
        )
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&error), ["product_ids[1]"]);
    app.stop().await;
}
