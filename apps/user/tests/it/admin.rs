//! The admin methods: listing, searching and batch reads, refused to customers.

use api::user::{
    BatchGetUsersRequest, ListUsersRequest, SearchUsersRequest, UpdateMyProfileRequest,
};
use rpc::ErrorCode;
use uuid::Uuid;

use crate::helpers::{TestApp, User, admin, bad_fields, expect_error};

async fn name(app: &TestApp, user: &User, username: &str, first: &str, last: &str) {
    app.client
        .update_my_profile(
            &user.ctx,
            &UpdateMyProfileRequest {
                username: Some(username.into()),
                first_name: Some(first.into()),
                last_name: Some(last.into()),
                ..Default::default()
            },
        )
        .await
        .expect("naming a user");
}

async fn search(app: &TestApp, q: &str) -> Vec<String> {
    app.client
        .search_users(
            &admin(),
            &SearchUsersRequest {
                q: q.into(),
                page_size: 0,
            },
        )
        .await
        .expect("searching")
        .users
        .into_iter()
        .map(|u| u.email)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_pages_through_every_profile_in_registration_order() {
    let app = TestApp::spawn().await;
    let mut registered = Vec::new();
    for n in 0..5 {
        registered.push(app.register(&format!("user{n}@example.com")).await.id);
    }

    let mut seen = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let page = app
            .client
            .list_users(
                &admin(),
                &ListUsersRequest {
                    page_size: 2,
                    cursor: cursor.clone(),
                },
            )
            .await
            .unwrap();
        pages += 1;
        assert!(page.users.len() <= 2);
        seen.extend(page.users.into_iter().map(|u| u.user_id));
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, registered, "each once, oldest first");

    let everyone = app
        .client
        .list_users(&admin(), &ListUsersRequest::default())
        .await
        .unwrap();
    assert_eq!(everyone.users.len(), 5);
    assert_eq!(everyone.next_cursor, "");

    let error = expect_error(
        app.client
            .list_users(
                &admin(),
                &ListUsersRequest {
                    page_size: 101,
                    cursor: "not-a-cursor".into(),
                },
            )
            .await,
        ErrorCode::InvalidArgument,
    );
    // The field rules bound the page size; whether a cursor is one this service issued is the
    // service's to say once the request has the right shape.
    assert_eq!(bad_fields(&error), ["page_size"]);
    let error = expect_error(
        app.client
            .list_users(
                &admin(),
                &ListUsersRequest {
                    page_size: 10,
                    cursor: "not-a-cursor".into(),
                },
            )
            .await,
        ErrorCode::InvalidArgument,
    );
    assert_eq!(bad_fields(&error), ["cursor"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_email_username_and_names_ignoring_case_and_literally() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let grace = app.register("grace@navy.example").await;
    let alan = app.register("alan_t@example.org").await;
    name(&app, &ada, "countess", "Ada", "Lovelace").await;
    name(&app, &grace, "amazing_grace", "Grace", "Hopper").await;
    name(&app, &alan, "", "Alan", "Turing").await;

    assert_eq!(search(&app, "LOVE").await, ["ada@example.com"]);
    assert_eq!(search(&app, "countess").await, ["ada@example.com"]);
    assert_eq!(search(&app, "hopper").await, ["grace@navy.example"]);
    assert_eq!(search(&app, "NAVY").await, ["grace@navy.example"]);
    assert_eq!(
        search(&app, "example.").await,
        ["ada@example.com", "alan_t@example.org"]
    );
    // `_` and `%` match only themselves, not any character.
    assert_eq!(
        search(&app, "_").await,
        ["grace@navy.example", "alan_t@example.org"]
    );
    assert_eq!(search(&app, "n_t").await, ["alan_t@example.org"]);
    assert!(search(&app, "%").await.is_empty());
    assert!(search(&app, "a.a").await.is_empty());
    // One field at a time: a first and last name together are not one field.
    assert!(search(&app, "ada lovelace").await.is_empty());

    let one = app
        .client
        .search_users(
            &admin(),
            &SearchUsersRequest {
                q: "a".into(),
                page_size: 1,
            },
        )
        .await
        .unwrap();
    assert_eq!(one.users.len(), 1);

    let error = expect_error(
        app.client
            .search_users(
                &admin(),
                &SearchUsersRequest {
                    q: "x".repeat(101),
                    page_size: -1,
                },
            )
            .await,
        ErrorCode::InvalidArgument,
    );
    assert_eq!(bad_fields(&error), ["q", "page_size"]);
    let error = expect_error(
        app.client
            .search_users(&admin(), &SearchUsersRequest::default())
            .await,
        ErrorCode::InvalidArgument,
    );
    assert_eq!(bad_fields(&error), ["q"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_get_answers_in_the_order_asked_and_lists_the_missing() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let grace = app.register("grace@example.com").await;
    let nobody = Uuid::now_v7().to_string();

    let batch = app
        .client
        .batch_get_users(
            &admin(),
            &BatchGetUsersRequest {
                user_ids: vec![
                    grace.id.clone(),
                    nobody.clone(),
                    ada.id.clone(),
                    grace.id.clone(),
                    nobody.to_uppercase(),
                ],
            },
        )
        .await
        .unwrap();
    let ids: Vec<&str> = batch.users.iter().map(|u| u.user_id.as_str()).collect();
    assert_eq!(ids, [grace.id.as_str(), ada.id.as_str()]);
    assert_eq!(batch.missing, [nobody]);

    let error = expect_error(
        app.client
            .batch_get_users(
                &admin(),
                &BatchGetUsersRequest {
                    user_ids: vec![ada.id.clone(), "nope".into(), String::new()],
                },
            )
            .await,
        ErrorCode::InvalidArgument,
    );
    assert_eq!(bad_fields(&error), ["user_ids[1]", "user_ids[2]"]);
    for user_ids in [vec![], vec![ada.id.clone(); 101]] {
        let error = expect_error(
            app.client
                .batch_get_users(&admin(), &BatchGetUsersRequest { user_ids })
                .await,
            ErrorCode::InvalidArgument,
        );
        assert_eq!(bad_fields(&error), ["user_ids"]);
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_are_refused_the_admin_methods() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    expect_error(
        app.client
            .list_users(&ada.ctx, &ListUsersRequest::default())
            .await,
        ErrorCode::PermissionDenied,
    );
    expect_error(
        app.client
            .search_users(
                &ada.ctx,
                &SearchUsersRequest {
                    q: "ada".into(),
                    page_size: 0,
                },
            )
            .await,
        ErrorCode::PermissionDenied,
    );
    expect_error(
        app.client
            .batch_get_users(
                &ada.ctx,
                &BatchGetUsersRequest {
                    user_ids: vec![ada.id.clone()],
                },
            )
            .await,
        ErrorCode::PermissionDenied,
    );
    expect_error(
        app.client
            .list_users(&rpc::Context::background(), &ListUsersRequest::default())
            .await,
        ErrorCode::Unauthenticated,
    );
    app.stop().await;
}
