//! The conformance suite of the profile stores: every case is written once, generic over
//! `ProfileStore`, and runs against PostgreSQL (a fresh database per test) and MongoDB (a
//! database of its own per test, when MONGODB_URL names a server; ignored otherwise).

use std::time::Duration;

use api::user::{ListUsersRequest, SearchUsersRequest, UpdateMyProfileRequest};
use user_service::domain::{NewProfile, Page, ProfileChanges, Search, UserId};
use user_service::store::{ProfileRecord, ProfileStore, StoreError};
use uuid::Uuid;
use vocab::page::encode_token;

use crate::helpers::registered;

fn new_profile(email: &str) -> NewProfile {
    NewProfile::from_event(&registered(&Uuid::now_v7().to_string(), email)).unwrap()
}

fn changes(request: UpdateMyProfileRequest) -> ProfileChanges {
    ProfileChanges::parse(&request, chrono::Utc::now().date_naive()).unwrap()
}

fn username(name: &str) -> ProfileChanges {
    changes(UpdateMyProfileRequest {
        username: Some(name.into()),
        ..Default::default()
    })
}

fn page(page_size: i32, after: Option<UserId>) -> Page {
    Page::parse(&ListUsersRequest {
        page_size,
        cursor: after.map(|id| encode_token(&id)).unwrap_or_default(),
    })
    .unwrap()
}

async fn search<S: ProfileStore>(store: &S, q: &str) -> Vec<String> {
    let search = Search::parse(&SearchUsersRequest {
        q: q.into(),
        page_size: 0,
    })
    .unwrap();
    emails(store.search(&search).await.unwrap())
}

fn emails(records: Vec<ProfileRecord>) -> Vec<String> {
    records.into_iter().map(|r| r.profile.email).collect()
}

async fn created<S: ProfileStore>(store: &S, email: &str) -> NewProfile {
    let new = new_profile(email);
    assert!(store.create_if_absent(&new).await.unwrap());
    new
}

async fn get_answers_nothing_for_an_unknown_id<S: ProfileStore>(store: &S) {
    let unknown = UserId::from_uuid(Uuid::now_v7());
    assert_eq!(store.get(unknown).await.unwrap(), None);
    assert_eq!(
        store.update(unknown, &username("nobody")).await.unwrap(),
        None
    );
}

async fn create_if_absent_creates_once_and_leaves_the_first_alone<S: ProfileStore>(store: &S) {
    let new = new_profile("ada@example.com");
    assert!(store.create_if_absent(&new).await.unwrap(), "created");
    let first = store.get(new.user_id).await.unwrap().unwrap();
    assert_eq!(first.user_id, new.user_id);
    assert_eq!(first.profile, new.profile);
    assert_eq!(first.created_at, first.updated_at);

    let mut again = new.clone();
    again.profile.email = "someone.else@example.com".into();
    assert!(
        !store.create_if_absent(&again).await.unwrap(),
        "already there"
    );
    assert_eq!(store.get(new.user_id).await.unwrap().unwrap(), first);
}

async fn update_sets_only_the_fields_present<S: ProfileStore>(store: &S) {
    let new = created(store, "ada@example.com").await;
    let before = store.get(new.user_id).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let updated = store
        .update(
            new.user_id,
            &changes(UpdateMyProfileRequest {
                first_name: Some("Ada".into()),
                preferences: Some(api::user::Preferences {
                    language: "fr".into(),
                    currency: "EUR".into(),
                    notifications: None,
                }),
                ..Default::default()
            }),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.profile.first_name, "Ada");
    assert_eq!(updated.profile.last_name, "");
    assert_eq!(updated.profile.email, "ada@example.com");
    assert_eq!(updated.profile.preferences.language, "fr");
    assert_eq!(updated.profile.preferences.currency, "EUR");
    assert!(
        !updated.profile.preferences.notifications.email,
        "replaced whole"
    );
    assert_eq!(updated.created_at, before.created_at);
    assert!(updated.updated_at > before.updated_at);
    assert_eq!(store.get(new.user_id).await.unwrap().unwrap(), updated);
}

async fn a_username_is_held_by_one_profile_at_a_time<S: ProfileStore>(store: &S) {
    let ada = created(store, "ada@example.com").await;
    let grace = created(store, "grace@example.com").await;
    store
        .update(ada.user_id, &username("countess"))
        .await
        .unwrap()
        .unwrap();
    let taken = store.update(grace.user_id, &username("countess")).await;
    assert!(matches!(taken, Err(StoreError::UsernameTaken)), "{taken:?}");
    assert_eq!(
        store
            .get(grace.user_id)
            .await
            .unwrap()
            .unwrap()
            .profile
            .username,
        ""
    );
    // Empty usernames do not collide.
    store.update(ada.user_id, &username("")).await.unwrap();
    store.update(grace.user_id, &username("")).await.unwrap();
    store
        .update(grace.user_id, &username("countess"))
        .await
        .unwrap()
        .unwrap();
}

async fn list_pages_in_user_id_order<S: ProfileStore>(store: &S) {
    let mut profiles: Vec<NewProfile> = (0..5)
        .map(|n| new_profile(&format!("user{n}@example.com")))
        .collect();
    // Stored out of order; listed in id order.
    for new in profiles.iter().rev() {
        assert!(store.create_if_absent(new).await.unwrap());
    }
    profiles.sort_by_key(|p| p.user_id);
    let all: Vec<UserId> = profiles.iter().map(|p| p.user_id).collect();

    let first = store.list(page(2, None), 2).await.unwrap();
    let ids: Vec<UserId> = first.iter().map(|r| r.user_id).collect();
    assert_eq!(ids, all[..2]);
    let rest = store.list(page(10, Some(all[1])), 10).await.unwrap();
    let ids: Vec<UserId> = rest.iter().map(|r| r.user_id).collect();
    assert_eq!(ids, all[2..]);
    assert!(
        store
            .list(page(10, Some(all[4])), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn search_matches_any_field_ignoring_case_and_literally<S: ProfileStore>(store: &S) {
    let ada = created(store, "ada@example.com").await;
    let alan = created(store, "alan_t@example.org").await;
    store
        .update(
            ada.user_id,
            &changes(UpdateMyProfileRequest {
                username: Some("countess".into()),
                first_name: Some("Ada".into()),
                last_name: Some("Lovelace".into()),
                ..Default::default()
            }),
        )
        .await
        .unwrap();
    let _ = alan;
    assert_eq!(search(store, "LOVELACE").await, ["ada@example.com"]);
    assert_eq!(search(store, "Countess").await, ["ada@example.com"]);
    assert_eq!(search(store, "ORG").await, ["alan_t@example.org"]);
    assert_eq!(
        search(store, "@example").await,
        ["ada@example.com", "alan_t@example.org"]
    );
    assert_eq!(search(store, "n_t").await, ["alan_t@example.org"]);
    assert!(search(store, "%").await.is_empty());
    assert!(search(store, "a.a").await.is_empty());
    assert!(search(store, "a*").await.is_empty());
    assert!(search(store, "ada lovelace").await.is_empty());
}

async fn batch_get_returns_those_that_exist<S: ProfileStore>(store: &S) {
    let ada = created(store, "ada@example.com").await;
    let grace = created(store, "grace@example.com").await;
    let unknown = UserId::from_uuid(Uuid::now_v7());
    let mut found = emails(
        store
            .batch_get(&[grace.user_id, unknown, ada.user_id])
            .await
            .unwrap(),
    );
    found.sort();
    assert_eq!(found, ["ada@example.com", "grace@example.com"]);
    assert!(store.batch_get(&[unknown]).await.unwrap().is_empty());
}

async fn postgres_store() -> (
    user_service::store::postgres::PgProfiles,
    testkit::TestDatabase,
) {
    telemetry::init_for_tests();
    let database = testkit::fresh_database()
        .await
        .expect("creating a database");
    let pool = ::db::postgres::connect(database.url(), 4, &user_service::store::postgres::MIGRATOR)
        .await
        .expect("connecting and migrating");
    (
        user_service::store::postgres::PgProfiles::new(pool),
        database,
    )
}

/// The one place tests read the environment: whether a MongoDB server is there to test on.
async fn mongo_store() -> (user_service::store::mongo::MongoProfiles, mongodb::Database) {
    telemetry::init_for_tests();
    let url = std::env::var("MONGODB_URL").expect("needs MongoDB: set MONGODB_URL");
    let client = ::db::mongo::connect(&url)
        .await
        .expect("connecting to MongoDB");
    let database = client.database(&format!("user_test_{}", Uuid::now_v7().simple()));
    let store = user_service::store::mongo::MongoProfiles::open(&database)
        .await
        .expect("creating the indexes");
    (store, database)
}

macro_rules! conformance {
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
                #[ignore = "needs MongoDB: set MONGODB_URL"]
                async fn $case() {
                    let (store, database) = super::mongo_store().await;
                    super::$case(&store).await;
                    database.drop().await.expect("dropping the test database");
                }
            )*
        }
    };
}

conformance!(
    get_answers_nothing_for_an_unknown_id,
    create_if_absent_creates_once_and_leaves_the_first_alone,
    update_sets_only_the_fields_present,
    a_username_is_held_by_one_profile_at_a_time,
    list_pages_in_user_id_order,
    search_matches_any_field_ignoring_case_and_literally,
    batch_get_returns_those_that_exist,
);
