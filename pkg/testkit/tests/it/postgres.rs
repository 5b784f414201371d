use sqlx::Connection as _;
use testkit::fresh_database;

async fn connect(url: &str) -> sqlx::PgConnection {
    sqlx::PgConnection::connect(url).await.unwrap()
}

#[tokio::test]
async fn two_fresh_databases_are_distinct_and_writable() {
    let first = fresh_database().await.unwrap();
    let second = fresh_database().await.unwrap();
    assert_ne!(first.name(), second.name());
    assert!(first.url().ends_with(first.name()));

    let mut on_first = connect(first.url()).await;
    let mut on_second = connect(second.url()).await;
    sqlx::raw_sql("CREATE TABLE note (body text NOT NULL); INSERT INTO note VALUES ('first')")
        .execute(&mut on_first)
        .await
        .unwrap();
    let body: String = sqlx::query_scalar("SELECT body FROM note")
        .fetch_one(&mut on_first)
        .await
        .unwrap();
    assert_eq!(body, "first");

    let on_second_tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&mut on_second)
    .await
    .unwrap();
    assert_eq!(on_second_tables, 0, "a fresh database is empty");
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&mut on_second)
        .await
        .unwrap();
    assert_eq!(database, second.name());
}

// Each test has its own runtime; the cluster must serve runtimes that start after the first
// one has ended.
#[test]
fn the_cluster_outlives_the_runtime_that_started_it() {
    let first_url = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async { fresh_database().await.unwrap().url().to_owned() });
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let mut connection = connect(&first_url).await;
        let one: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&mut connection)
            .await
            .unwrap();
        assert_eq!(one, 1);
        fresh_database().await.unwrap();
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_databases_can_be_created_at_once() {
    let creations = (0..8).map(|_| tokio::spawn(fresh_database()));
    let mut names = std::collections::HashSet::new();
    for creation in creations {
        names.insert(creation.await.unwrap().unwrap().name().to_owned());
    }
    assert_eq!(names.len(), 8);
}
