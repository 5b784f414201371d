//! In-app notifications: each user sees only their own, newest first, and marks them read.

use api::notification::{
    ListMyNotificationsRequest, ListMyNotificationsResponse, MarkAllMyNotificationsReadRequest,
    MarkMyNotificationReadRequest,
};
use rpc::ErrorCode;

use crate::helpers::{TestApp, User, expect_error};

async fn list(app: &TestApp, user: &User, filter: &str) -> ListMyNotificationsResponse {
    app.client
        .list_my_notifications(
            &user.ctx,
            &ListMyNotificationsRequest {
                filter: filter.into(),
                ..Default::default()
            },
        )
        .await
        .expect("listing notifications")
}

fn kinds(page: &ListMyNotificationsResponse) -> Vec<&str> {
    page.notifications.iter().map(|n| n.kind.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_user_sees_only_their_own_and_marks_them_read() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let bob = app.register("bob@example.com").await;
    let order = app.pay_order(&ada).await;

    let adas = list(&app, &ada, "").await;
    assert_eq!(
        kinds(&adas),
        ["order_confirmation", "welcome"],
        "newest first"
    );
    assert_eq!(adas.unread_count, 2);
    let confirmation = &adas.notifications[0];
    assert!(
        confirmation.title.contains("is confirmed"),
        "{}",
        confirmation.title
    );
    assert!(
        confirmation.body.contains("USD 47.50"),
        "{}",
        confirmation.body
    );
    assert_eq!(confirmation.subject_id, order.id);
    assert!(!confirmation.read);

    let bobs = list(&app, &bob, "").await;
    assert_eq!(kinds(&bobs), ["welcome"]);
    assert_eq!(bobs.unread_count, 1);

    // Bob cannot mark Ada's notification: to him it does not exist.
    let adas_id = MarkMyNotificationReadRequest {
        id: confirmation.id.clone(),
    };
    expect_error(
        app.client
            .mark_my_notification_read(&bob.ctx, &adas_id)
            .await,
        ErrorCode::NotFound,
    );
    assert_eq!(list(&app, &ada, "").await.unread_count, 2);

    let read = app
        .client
        .mark_my_notification_read(&ada.ctx, &adas_id)
        .await
        .unwrap();
    assert!(read.read);
    assert!(read.read_at.is_some());
    // Again is harmless and keeps the first reading time.
    let again = app
        .client
        .mark_my_notification_read(&ada.ctx, &adas_id)
        .await
        .unwrap();
    assert_eq!(again.read_at, read.read_at);

    assert_eq!(kinds(&list(&app, &ada, "unread").await), ["welcome"]);
    assert_eq!(
        kinds(&list(&app, &ada, "read").await),
        ["order_confirmation"]
    );
    assert_eq!(list(&app, &ada, "").await.unread_count, 1);

    let marked = app
        .client
        .mark_all_my_notifications_read(&ada.ctx, &MarkAllMyNotificationsReadRequest {})
        .await
        .unwrap();
    assert_eq!(marked.marked, 1);
    assert_eq!(list(&app, &ada, "").await.unread_count, 0);
    assert_eq!(
        list(&app, &bob, "").await.unread_count,
        1,
        "Bob's are untouched"
    );

    // Emails are not in the in-app list, and an unknown id is not found.
    expect_error(
        app.client
            .mark_my_notification_read(
                &ada.ctx,
                &MarkMyNotificationReadRequest {
                    id: uuid::Uuid::now_v7().to_string(),
                },
            )
            .await,
        ErrorCode::NotFound,
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_go_from_newest_to_oldest() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    for _ in 0..2 {
        app.pay_order(&ada).await;
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = app
            .client
            .list_my_notifications(
                &ada.ctx,
                &ListMyNotificationsRequest {
                    page_size: 2,
                    cursor: cursor.clone(),
                    filter: String::new(),
                },
            )
            .await
            .unwrap();
        assert!(page.notifications.len() <= 2);
        seen.extend(page.notifications.into_iter().map(|n| (n.id, n.kind)));
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    let kinds: Vec<&str> = seen.iter().map(|(_, kind)| kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["order_confirmation", "order_confirmation", "welcome"]
    );
    let mut ids: Vec<&String> = seen.iter().map(|(id, _)| id).collect();
    let listed = ids.clone();
    ids.sort();
    ids.reverse();
    assert_eq!(ids, listed, "newest first");
    app.stop().await;
}
