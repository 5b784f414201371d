//! The suite of the document stores: every case is written once, generic over `Reviews`, and
//! runs against PostgreSQL (a fresh database per test) and against MongoDB (a database of its
//! own per test, dropped at the end; its events still go through a fresh PostgreSQL outbox).
//! The MongoDB cases are ignored unless asked for, as the harness cannot start MongoDB; run
//! them on a server with
//! `MONGODB_URL=mongodb://127.0.0.1:27017 cargo test -p comment-service -- --ignored`
//! (a standalone server will do: the MongoDB store uses no transactions).

use comment_service::domain::{Action, Draft, Page, Rating, Report, Sort, Status, Verdict};
use comment_service::store::mongo::MongoReviews;
use comment_service::store::postgres::{MIGRATOR, PgReviews};
use comment_service::store::{Moderated, Purchase, PurchaseKind, Reported, Reviews, Vote, Written};
use events::TraceHeaders;
use futures::future::join_all;
use uuid::Uuid;

fn draft(product_id: Uuid, rating: i32, title: &str) -> Draft {
    Draft {
        product_id,
        rating: Rating::parse(rating).unwrap(),
        title: title.to_owned(),
        body: format!("{title}, in so many words."),
    }
}

async fn put<S: Reviews>(store: &S, author: Uuid, product_id: Uuid, rating: i32) -> Written {
    store
        .put(
            author,
            &draft(product_id, rating, "Fine"),
            &Verdict::Publish,
            &TraceHeaders::default(),
        )
        .await
        .expect("writing a review")
}

async fn one_review_per_author_and_product_and_an_edit_moves_the_summary<S: Reviews>(store: &S) {
    let (product, author) = (Uuid::now_v7(), Uuid::now_v7());
    let first = put(store, author, product, 2).await;
    assert_eq!(first.previous, None);
    assert_eq!(first.review.status, Status::Published);
    let second = put(store, author, product, 4).await;
    assert_eq!(second.previous, Some(Status::Published));
    assert_eq!(second.review.id, first.review.id);
    assert_eq!(second.review.rating, 4);
    assert_eq!(second.review.created_at, first.review.created_at);
    let summary = store.summary(product).await.unwrap();
    assert_eq!((summary.review_count, summary.rating_total), (1, 4));
    assert_eq!(summary.stars, [0, 0, 0, 1, 0]);
    assert_eq!(
        store.get(first.review.id).await.unwrap(),
        Some(second.review.clone())
    );
    assert_eq!(
        store.get_mine(author, product).await.unwrap(),
        Some(second.review)
    );
    assert_eq!(store.get_mine(Uuid::now_v7(), product).await.unwrap(), None);
}

async fn concurrent_first_reviews_by_one_author_make_one<S: Reviews>(store: &S) {
    let (product, author) = (Uuid::now_v7(), Uuid::now_v7());
    let writes = (1..=5).map(|rating| put(store, author, product, rating));
    let written = join_all(writes).await;
    assert_eq!(written.iter().filter(|w| w.previous.is_none()).count(), 1);
    let summary = store.summary(product).await.unwrap();
    assert_eq!(summary.review_count, 1);
    let kept = store.get_mine(author, product).await.unwrap().unwrap();
    assert_eq!(summary.rating_total, i64::from(kept.rating));
}

async fn concurrent_reviews_keep_the_summary_exact<S: Reviews>(store: &S) {
    let product = Uuid::now_v7();
    let writes = (0..50).map(|n| put(store, Uuid::now_v7(), product, n % 5 + 1));
    join_all(writes).await;
    let summary = store.summary(product).await.unwrap();
    assert_eq!(summary.review_count, 50);
    assert_eq!(summary.stars, [10; 5]);
    assert_eq!(summary.rating_total, 150);
}

async fn votes_and_reports_count_once<S: Reviews>(store: &S) {
    let (product, author, voter) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let review = put(store, author, product, 3).await.review;
    let votes = join_all((0..5).map(|_| store.vote(review.id, voter))).await;
    let counted = votes
        .into_iter()
        .filter(|v| matches!(v, Ok(Vote::Voted { counted: true, .. })))
        .count();
    assert_eq!(counted, 1);
    assert_eq!(
        store.get(review.id).await.unwrap().unwrap().helpful_count,
        1
    );
    assert_eq!(store.vote(review.id, author).await.unwrap(), Vote::Own);
    assert_eq!(
        store.vote(Uuid::now_v7(), voter).await.unwrap(),
        Vote::Missing
    );

    let report = Report {
        review_id: review.id,
        reason: "spam",
        note: String::new(),
    };
    assert_eq!(
        store.report(&report, voter).await.unwrap(),
        Reported::Recorded
    );
    assert_eq!(
        store.report(&report, voter).await.unwrap(),
        Reported::Already
    );
    assert_eq!(store.report(&report, author).await.unwrap(), Reported::Own);
    assert_eq!(store.get(review.id).await.unwrap().unwrap().open_reports, 1);
}

async fn moderation_moves_the_summary_and_a_hidden_edit_waits<S: Reviews>(store: &S) {
    let (product, author) = (Uuid::now_v7(), Uuid::now_v7());
    let review = put(store, author, product, 5).await.review;
    let trace = TraceHeaders::default();
    let hidden = store
        .moderate(review.id, Action::Hide, "rude", None, &trace)
        .await
        .unwrap();
    assert!(
        matches!(hidden, Moderated::Done { ref review, previous: Status::Published } if review.status == Status::Hidden)
    );
    assert_eq!(store.summary(product).await.unwrap().review_count, 0);
    assert!(matches!(
        store
            .moderate(review.id, Action::Hide, "again", None, &trace)
            .await
            .unwrap(),
        Moderated::Refused(_)
    ));
    let edited = put(store, author, product, 4).await;
    assert_eq!(edited.review.status, Status::Pending);
    assert_eq!(store.summary(product).await.unwrap().review_count, 0);
    store
        .moderate(review.id, Action::Approve, "", None, &trace)
        .await
        .unwrap();
    let summary = store.summary(product).await.unwrap();
    assert_eq!((summary.review_count, summary.rating_total), (1, 4));
    let page = Page {
        product_id: product,
        sort: Sort::Newest,
        size: 10,
        after: None,
    };
    assert_eq!(store.list(&page, 10).await.unwrap().len(), 1);
    assert!(store.list(&page, 0).await.unwrap().is_empty());
}

async fn purchases_verify_once_and_a_void_is_final<S: Reviews>(store: &S) {
    let (product, author) = (Uuid::now_v7(), Uuid::now_v7());
    let review = put(store, author, product, 5).await.review;
    assert!(!review.verified);
    let order_id = Uuid::now_v7();
    let purchase = |kind| Purchase {
        order_id,
        user_id: Some(author),
        product_ids: vec![product],
        kind,
    };
    let paid = Uuid::now_v7();
    store
        .apply_purchase("c", paid, &purchase(PurchaseKind::Paid))
        .await
        .unwrap();
    assert!(store.get(review.id).await.unwrap().unwrap().verified);
    // The same event again (a redelivery) changes nothing.
    store
        .apply_purchase("c", paid, &purchase(PurchaseKind::Paid))
        .await
        .unwrap();
    assert!(store.get(review.id).await.unwrap().unwrap().verified);
    store
        .apply_purchase("c", Uuid::now_v7(), &purchase(PurchaseKind::Void))
        .await
        .unwrap();
    assert!(!store.get(review.id).await.unwrap().unwrap().verified);
    store
        .apply_purchase("c", Uuid::now_v7(), &purchase(PurchaseKind::Paid))
        .await
        .unwrap();
    assert!(
        !store.get(review.id).await.unwrap().unwrap().verified,
        "a void is final"
    );

    // A delivery seen before the payment verifies once the payment names the customer.
    let (other_product, order_id) = (Uuid::now_v7(), Uuid::now_v7());
    let other = put(store, author, other_product, 3).await.review;
    let delivered = Purchase {
        order_id,
        user_id: None,
        product_ids: vec![other_product],
        kind: PurchaseKind::Delivered,
    };
    store
        .apply_purchase("c", Uuid::now_v7(), &delivered)
        .await
        .unwrap();
    assert!(!store.get(other.id).await.unwrap().unwrap().verified);
    let paid = Purchase {
        user_id: Some(author),
        kind: PurchaseKind::Paid,
        ..delivered
    };
    store
        .apply_purchase("c", Uuid::now_v7(), &paid)
        .await
        .unwrap();
    assert!(store.get(other.id).await.unwrap().unwrap().verified);
}

async fn fresh_pool() -> (sqlx::PgPool, testkit::TestDatabase) {
    telemetry::init_for_tests();
    let database = testkit::fresh_database()
        .await
        .expect("creating a database");
    let pool = ::db::postgres::connect(database.url(), 8, &MIGRATOR)
        .await
        .expect("connecting and migrating");
    events::migrate(&pool).await.expect("the outbox tables");
    (pool, database)
}

async fn postgres_store() -> (PgReviews, testkit::TestDatabase) {
    let (pool, database) = fresh_pool().await;
    (PgReviews::new(pool), database)
}

/// The one place the tests read the environment: whether a MongoDB server is there to test on.
async fn mongo_store() -> (MongoReviews, mongodb::Database, testkit::TestDatabase) {
    let url = std::env::var("MONGODB_URL").expect("needs MongoDB: set MONGODB_URL");
    let (pool, events_database) = fresh_pool().await;
    let client = ::db::mongo::connect(&url)
        .await
        .expect("connecting to MongoDB");
    // A database per test, so tests run in parallel; short, as MongoDB allows 63 characters.
    let database = client.database(&format!("test_{}", Uuid::now_v7().simple()));
    let store = MongoReviews::open(&database, pool)
        .await
        .expect("creating the indexes");
    (store, database, events_database)
}

/// One test per case and store: `store::postgres::<case>` and `store::mongo::<case>`.
macro_rules! store_suite {
    ($($case:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let (store, _database) = super::postgres_store().await;
                    super::$case(&store).await;
                }
            )*
        }

        mod mongo {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "needs MongoDB: set MONGODB_URL and run with --ignored"]
                async fn $case() {
                    let (store, database, _events) = super::mongo_store().await;
                    super::$case(&store).await;
                    database.drop().await.expect("dropping the test database");
                }
            )*
        }
    };
}

store_suite!(
    one_review_per_author_and_product_and_an_edit_moves_the_summary,
    concurrent_first_reviews_by_one_author_make_one,
    concurrent_reviews_keep_the_summary_exact,
    votes_and_reports_count_once,
    moderation_moves_the_summary_and_a_hidden_edit_waits,
    purchases_verify_once_and_a_void_is_final,
);
