//! Who may do what: sellers open shops, a seller changes only their own shops (another's
//! answers exactly like a missing one), admins approve, suspend and change any shop.

use api::shop::{CloseShopRequest, Shop, UpdateShopRequest};
use rpc::ErrorCode;
use uuid::Uuid;

use crate::helpers::{TestApp, User, admin, anonymous, expect_error, shop};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_sellers_and_admins_open_shops() {
    let app = TestApp::spawn().await;
    let error = expect_error(
        app.client
            .create_shop(&User::customer().ctx(), &shop("Wannabe"))
            .await,
        ErrorCode::PermissionDenied,
    );
    assert_eq!(error.message(), "this needs the seller role");
    expect_error(
        app.client.create_shop(&anonymous(), &shop("Nobody")).await,
        ErrorCode::Unauthenticated,
    );
    assert_eq!(app.stored_shops().await, 0);

    let by_admin = app
        .client
        .create_shop(&admin(), &shop("House Brand"))
        .await
        .expect("an admin opening a shop");
    assert_eq!(by_admin.status, "pending");
    assert_eq!(app.stored_shops().await, 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_sellers_shop_answers_like_a_missing_one() {
    let app = TestApp::spawn().await;
    let (owner, other) = (User::seller(), User::seller());
    let pending = app.open(&owner, shop("Quiet Corner")).await;
    let active = app.open_active(&owner, "Busy Street").await;
    let missing = Uuid::now_v7().to_string();

    // The error for a shop that does not exist, and the one another seller gets, differ
    // only in the id they name.
    let missing_error = expect_error(app.get(&other.ctx(), &missing).await, ErrorCode::NotFound);
    let same_shape = |error: &rpc::Error, id: &str| {
        assert_eq!(error.code(), missing_error.code());
        assert_eq!(
            error.message(),
            missing_error.message().replace(&missing, id)
        );
        assert!(error.details().is_empty());
    };

    let error = expect_error(
        app.get(&other.ctx(), &pending.id).await,
        ErrorCode::NotFound,
    );
    same_shape(&error, &pending.id);

    for target in [&pending, &active] {
        let update = UpdateShopRequest {
            id: target.id.clone(),
            name: Some("Taken Over".into()),
            ..Default::default()
        };
        let error = expect_error(
            app.client.update_shop(&other.ctx(), &update).await,
            ErrorCode::NotFound,
        );
        same_shape(&error, &target.id);
        let close = CloseShopRequest {
            id: target.id.clone(),
        };
        let error = expect_error(
            app.client.close_shop(&other.ctx(), &close).await,
            ErrorCode::NotFound,
        );
        same_shape(&error, &target.id);
        // A customer fares no better.
        expect_error(
            app.client.close_shop(&User::customer().ctx(), &close).await,
            ErrorCode::NotFound,
        );
    }
    let missing_update = UpdateShopRequest {
        id: missing.clone(),
        name: Some("Taken Over".into()),
        ..Default::default()
    };
    let error = expect_error(
        app.client.update_shop(&other.ctx(), &missing_update).await,
        ErrorCode::NotFound,
    );
    same_shape(&error, &missing);

    // Nothing changed.
    let unchanged = |before: &Shop, after: Shop| {
        assert_eq!(after.name, before.name);
        assert_ne!(after.status, "closed");
        assert_eq!(after.updated_at, before.updated_at);
    };
    unchanged(&pending, app.get(&owner.ctx(), &pending.id).await.unwrap());
    unchanged(&active, app.get(&owner.ctx(), &active.id).await.unwrap());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_approve_and_suspend() {
    let app = TestApp::spawn().await;
    let seller = User::seller();
    let opened = app.open(&seller, shop("Eager")).await;
    expect_error(
        app.client
            .approve_shop(
                &seller.ctx(),
                &api::shop::ApproveShopRequest {
                    id: opened.id.clone(),
                },
            )
            .await,
        ErrorCode::PermissionDenied,
    );
    expect_error(
        app.client
            .suspend_shop(
                &seller.ctx(),
                &api::shop::SuspendShopRequest {
                    id: opened.id.clone(),
                    reason: "self-suspension".into(),
                },
            )
            .await,
        ErrorCode::PermissionDenied,
    );
    assert_eq!(
        app.get(&seller.ctx(), &opened.id).await.unwrap().status,
        "pending"
    );
    expect_error(
        app.approve(&Uuid::now_v7().to_string()).await,
        ErrorCode::NotFound,
    );
    app.stop().await;
}
