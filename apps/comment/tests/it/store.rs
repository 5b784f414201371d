//! The suite of the document stores: every case is written once, generic over
//! `CommentDocuments`, and runs against PostgreSQL (a fresh database per test) and against
//! MongoDB (a database of its own per test, dropped at the end). The MongoDB cases are ignored
//! unless asked for, as the harness cannot start MongoDB; run them on a server with
//! `MONGODB_URL=mongodb://127.0.0.1:27017 cargo test -p comment-service -- --ignored`.
//!
//! Written once by `cargo xtask new-service comment`; from now on it belongs to the service.

use std::time::Duration;

use comment_service::domain::{CommentChanges, CommentId, NewComment, Page};
use comment_service::store::mongo::MongoComments;
use comment_service::store::postgres::{MIGRATOR, PgComments};
use comment_service::store::{CommentDocuments, CommentRecord};
use uuid::Uuid;

fn new_comment(name: &str) -> NewComment {
    NewComment {
        name: name.to_owned(),
        description: format!("The {name}."),
    }
}

async fn inserted<S: CommentDocuments>(store: &S, name: &str) -> CommentRecord {
    store
        .insert(CommentId::new(), &new_comment(name))
        .await
        .expect("inserting")
}

fn renamed(record: &CommentRecord, name: &str) -> CommentChanges {
    CommentChanges {
        id: CommentId(record.id),
        name: Some(name.to_owned()),
        description: None,
    }
}

fn ids(records: Vec<CommentRecord>) -> Vec<Uuid> {
    records.into_iter().map(|record| record.id).collect()
}

async fn what_is_inserted_reads_back_the_same<S: CommentDocuments>(store: &S) {
    let id = CommentId::new();
    let inserted = store.insert(id, &new_comment("First")).await.unwrap();
    assert_eq!(inserted.id, id.0);
    assert_eq!(inserted.name, "First");
    assert_eq!(inserted.description, "The First.");
    assert_eq!(inserted.created_at, inserted.updated_at);
    assert_eq!(store.get(id).await.unwrap(), Some(inserted));
}

async fn an_unknown_id_is_found_nowhere<S: CommentDocuments>(store: &S) {
    let unknown = CommentId::new();
    assert_eq!(store.get(unknown).await.unwrap(), None);
    let changes = CommentChanges {
        id: unknown,
        name: Some("Nobody".into()),
        description: None,
    };
    assert_eq!(store.update(&changes).await.unwrap(), None);
    assert!(!store.delete(unknown).await.unwrap());
}

async fn update_sets_only_the_fields_present<S: CommentDocuments>(store: &S) {
    let before = inserted(store, "First").await;
    // Later than the insert at either store's precision (milliseconds in MongoDB).
    tokio::time::sleep(Duration::from_millis(5)).await;
    let updated = store
        .update(&renamed(&before, "Renamed"))
        .await
        .unwrap()
        .expect("it exists");
    assert_eq!(updated.name, "Renamed");
    assert_eq!(
        updated.description, before.description,
        "absent fields stay"
    );
    assert_eq!(updated.created_at, before.created_at);
    assert!(updated.updated_at > before.updated_at);
    assert_eq!(
        store.get(CommentId(before.id)).await.unwrap(),
        Some(updated)
    );
}

async fn concurrent_updates_of_different_fields_all_stay<S: CommentDocuments>(store: &S) {
    let mut records = Vec::new();
    for n in 0..5 {
        records.push(inserted(store, &format!("Number {n}")).await);
    }
    // Each one's name and description changed at the same time, by two updates.
    let updates: Vec<CommentChanges> = records
        .iter()
        .flat_map(|record| {
            let id = CommentId(record.id);
            [
                CommentChanges {
                    id,
                    name: Some("Renamed".into()),
                    description: None,
                },
                CommentChanges {
                    id,
                    name: None,
                    description: Some("Changed.".into()),
                },
            ]
        })
        .collect();
    let results =
        futures::future::join_all(updates.iter().map(|changes| store.update(changes))).await;
    for result in results {
        result.unwrap().expect("it exists");
    }
    for record in &records {
        let now = store.get(CommentId(record.id)).await.unwrap().unwrap();
        assert_eq!(
            (now.name.as_str(), now.description.as_str()),
            ("Renamed", "Changed.")
        );
    }
}

async fn delete_removes_it_once<S: CommentDocuments>(store: &S) {
    let record = inserted(store, "Doomed").await;
    let kept = inserted(store, "Kept").await;
    let id = CommentId(record.id);
    assert!(store.delete(id).await.unwrap());
    assert_eq!(store.get(id).await.unwrap(), None);
    assert!(!store.delete(id).await.unwrap(), "already gone");
    assert_eq!(store.get(CommentId(kept.id)).await.unwrap(), Some(kept));
}

async fn list_pages_in_id_order<S: CommentDocuments>(store: &S) {
    let mut all: Vec<CommentId> = (0..5).map(|_| CommentId::new()).collect();
    all.sort();
    // Stored out of order; listed in id order.
    for (n, id) in all.iter().enumerate().rev() {
        store
            .insert(*id, &new_comment(&format!("Number {n}")))
            .await
            .unwrap();
    }
    let page = |after: Option<CommentId>| Page { size: 10, after };
    let uuids: Vec<Uuid> = all.iter().map(|id| id.0).collect();

    assert_eq!(ids(store.list(page(None), 2).await.unwrap()), uuids[..2]);
    assert_eq!(
        ids(store.list(page(Some(all[1])), 10).await.unwrap()),
        uuids[2..]
    );
    assert!(store.list(page(Some(all[4])), 10).await.unwrap().is_empty());
    assert!(
        store.list(page(None), 0).await.unwrap().is_empty(),
        "a limit of 0 is nothing, not everything"
    );
}

async fn postgres_store() -> (PgComments, testkit::TestDatabase) {
    telemetry::init_for_tests();
    let database = testkit::fresh_database()
        .await
        .expect("creating a database");
    let pool = ::db::postgres::connect(database.url(), 4, &MIGRATOR)
        .await
        .expect("connecting and migrating");
    (PgComments::new(pool), database)
}

/// The one place the tests read the environment: whether a MongoDB server is there to test on.
async fn mongo_store() -> (MongoComments, mongodb::Database) {
    telemetry::init_for_tests();
    let url = std::env::var("MONGODB_URL").expect("needs MongoDB: set MONGODB_URL");
    let client = ::db::mongo::connect(&url)
        .await
        .expect("connecting to MongoDB");
    // A database per test, so tests run in parallel; short, as MongoDB allows 63 characters.
    let database = client.database(&format!("test_{}", Uuid::now_v7().simple()));
    (MongoComments::new(&database), database)
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
                    let (store, database) = super::mongo_store().await;
                    super::$case(&store).await;
                    database.drop().await.expect("dropping the test database");
                }
            )*
        }
    };
}

store_suite!(
    what_is_inserted_reads_back_the_same,
    an_unknown_id_is_found_nowhere,
    update_sets_only_the_fields_present,
    concurrent_updates_of_different_fields_all_stay,
    delete_removes_it_once,
    list_pages_in_id_order,
);
