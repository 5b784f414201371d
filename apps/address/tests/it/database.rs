//! The database itself keeps every user at exactly one default while they have addresses,
//! whatever writes it: checked here with raw SQL that bypasses the service.

use sqlx::PgPool;

use crate::helpers::{TestApp, User, address};

/// The name of the constraint `result` violated.
#[track_caller]
fn violated<T: std::fmt::Debug>(result: Result<T, sqlx::Error>) -> String {
    let error = result.expect_err("the database accepted the change");
    error
        .as_database_error()
        .and_then(|db| db.constraint())
        .unwrap_or_else(|| panic!("not a constraint violation: {error}"))
        .to_owned()
}

async fn execute(db: &PgPool, sql: &str, user: &User) -> Result<u64, sqlx::Error> {
    sqlx::query(sql)
        .bind(user.id)
        .execute(db)
        .await
        .map(|done| done.rows_affected())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_refuses_a_second_default() {
    let app = TestApp::spawn().await;
    let user = User::signed_up();
    let first = app.add(&user, address("First")).await;
    app.add(&user, address("Second")).await;
    let result = execute(
        app.db(),
        "UPDATE addresses SET is_default = true WHERE user_id = $1 AND NOT is_default",
        &user,
    )
    .await;
    assert_eq!(violated(result), "addresses_one_default_per_user");
    app.assert_only_default(&user, &first.id).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_refuses_to_leave_a_user_without_a_default() {
    let app = TestApp::spawn().await;
    let user = User::signed_up();
    let first = app.add(&user, address("First")).await;
    let second = app.add(&user, address("Second")).await;

    let clear = "UPDATE addresses SET is_default = false WHERE user_id = $1";
    assert_eq!(
        violated(execute(app.db(), clear, &user).await),
        "addresses_default_required"
    );
    let delete_default = "DELETE FROM addresses WHERE user_id = $1 AND is_default";
    assert_eq!(
        violated(execute(app.db(), delete_default, &user).await),
        "addresses_default_required"
    );
    let newcomer = User::signed_up();
    let insert_without_default = "INSERT INTO addresses \
         (id, user_id, recipient_name, line1, city, postal_code, country_code, is_default) \
         VALUES (gen_random_uuid(), $1, 'Nobody', '1 Main St', 'Springfield', '12345', 'US', \
                 false)";
    assert_eq!(
        violated(execute(app.db(), insert_without_default, &newcomer).await),
        "addresses_default_required",
        "a user's only address must be the default"
    );
    app.assert_only_default(&user, &first.id).await;
    assert_eq!(app.stored_total().await, 2);

    // Moving the default inside one transaction is fine: the check runs at commit.
    let mut tx = app.db().begin().await.unwrap();
    sqlx::query(clear)
        .bind(user.id)
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("UPDATE addresses SET is_default = true WHERE id = $1::uuid")
        .bind(&second.id)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit()
        .await
        .expect("moving the default in one transaction");
    app.assert_only_default(&user, &second.id).await;

    // Deleting every address leaves a user with none, which is allowed.
    let delete_all = "DELETE FROM addresses WHERE user_id = $1";
    assert_eq!(execute(app.db(), delete_all, &user).await.unwrap(), 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_checks_the_fields_too() {
    let app = TestApp::spawn().await;
    let user = User::signed_up();
    let insert = |country: &'static str, postal_code: &'static str, recipient: String| {
        let db = app.db().clone();
        let user_id = user.id;
        async move {
            sqlx::query(
                "INSERT INTO addresses (id, user_id, recipient_name, line1, city, postal_code, \
                 country_code, is_default) \
                 VALUES (gen_random_uuid(), $1, $2, '1 Main St', 'Springfield', $3, $4, true)",
            )
            .bind(user_id)
            .bind(recipient)
            .bind(postal_code)
            .bind(country)
            .execute(&db)
            .await
        }
    };
    assert_eq!(
        violated(insert("us", "12345", "Ann".into()).await),
        "addresses_country_code_format"
    );
    assert_eq!(
        violated(insert("US", "12_45", "Ann".into()).await),
        "addresses_postal_code_format"
    );
    assert_eq!(
        violated(insert("US", "12345", String::new()).await),
        "addresses_recipient_name_length"
    );
    assert_eq!(
        violated(insert("US", "12345", "x".repeat(201)).await),
        "addresses_recipient_name_length"
    );
    assert_eq!(app.stored_total().await, 0);
    app.stop().await;
}
