//! Listings: the public sees active shops only, admins any status, sellers all of their own;
//! every listing pages through its shops oldest first.

use rpc::ErrorCode;

use crate::helpers::{TestApp, User, admin, anonymous, bad_fields, expect_error, shop};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_pages_through_active_shops_only() {
    let app = TestApp::spawn().await;
    let seller = User::seller();
    let mut pending = Vec::new();
    for (index, name) in ["Alder", "Birch", "Cedar", "Dogwood", "Elm"]
        .iter()
        .enumerate()
    {
        let opened = app.open(&seller, shop(name)).await;
        if index % 2 == 0 {
            app.approve(&opened.id).await.unwrap();
        } else {
            pending.push(opened.name);
        }
    }

    let (first, cursor) = app.list(&anonymous(), "", 2, "").await.unwrap();
    assert_eq!(first, ["Alder", "Cedar"]);
    assert!(!cursor.is_empty());
    let (rest, cursor) = app.list(&anonymous(), "", 2, &cursor).await.unwrap();
    assert_eq!(rest, ["Elm"]);
    assert!(cursor.is_empty(), "the last page has no next cursor");
    let (explicit, _) = app.list(&anonymous(), "active", 0, "").await.unwrap();
    assert_eq!(explicit, ["Alder", "Cedar", "Elm"]);

    // Other statuses are for admins.
    for ctx in [anonymous(), seller.ctx()] {
        expect_error(
            app.list(&ctx, "pending", 0, "").await,
            ErrorCode::PermissionDenied,
        );
    }
    let (listed, _) = app.list(&admin(), "pending", 0, "").await.unwrap();
    assert_eq!(listed, pending);

    let error = app.list(&anonymous(), "", 0, "garbage").await.unwrap_err();
    assert_eq!(bad_fields(&error), ["cursor"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seller_lists_all_their_own_shops_and_nobody_elses() {
    let app = TestApp::spawn().await;
    let (seller, other) = (User::seller(), User::seller());
    let first = app.open(&seller, shop("First")).await;
    app.open_active(&seller, "Second").await;
    let third = app.open(&seller, shop("Third")).await;
    app.suspend(&first.id, "Paperwork").await.unwrap();
    app.client
        .close_shop(
            &seller.ctx(),
            &api::shop::CloseShopRequest {
                id: third.id.clone(),
            },
        )
        .await
        .unwrap();
    app.open(&other, shop("Elsewhere")).await;

    let (page, cursor) = app.list_mine(&seller, 2, "").await;
    assert_eq!(page, ["First", "Second"]);
    let (rest, cursor) = app.list_mine(&seller, 2, &cursor).await;
    assert_eq!(rest, ["Third"]);
    assert!(cursor.is_empty());
    assert_eq!(app.list_mine(&other, 0, "").await.0, ["Elsewhere"]);
    assert_eq!(
        app.list_mine(&User::customer(), 0, "").await.0,
        Vec::<String>::new()
    );
    app.stop().await;
}
