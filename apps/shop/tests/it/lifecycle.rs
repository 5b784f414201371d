//! A shop's life: opened pending, approved, suspended, approved again, closed for good; its
//! fields change while it is open; other services read who owns it.

use api::shop::{
    CloseShopRequest, GetShopAccessRequest, LookupShopsRequest, ShopAccess, ShopSummary,
    UpdateShopRequest,
};
use rpc::ErrorCode;
use uuid::Uuid;

use crate::helpers::{TestApp, User, admin, anonymous, bad_fields, expect_error, shop};

async fn history(app: &TestApp, shop_id: &str) -> Vec<(String, String, String, String)> {
    sqlx::query_as(
        "SELECT previous_status, status, reason, changed_by FROM shop_status_changes \
         WHERE shop_id = $1::uuid ORDER BY id",
    )
    .bind(shop_id)
    .fetch_all(app.db())
    .await
    .expect("reading the status history")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sellers_new_shop_is_pending_until_an_admin_approves_it() {
    let app = TestApp::spawn().await;
    let seller = User::seller();
    let opened = app
        .open(
            &seller,
            api::shop::CreateShopRequest {
                logo_url: "https://img.example.com/logo.png".into(),
                ..shop("Acme Tools")
            },
        )
        .await;
    assert_eq!(opened.status, "pending");
    assert_eq!(opened.owner_id, seller.id.to_string());
    assert_eq!(opened.currency, "EUR");
    assert_eq!(opened.logo_url, "https://img.example.com/logo.png");
    assert_eq!(Uuid::parse_str(&opened.id).unwrap().get_version_num(), 7);

    // Nobody but its owner and admins sees a pending shop, by id or by slug.
    expect_error(app.get(&anonymous(), &opened.id).await, ErrorCode::NotFound);
    expect_error(
        app.get(&anonymous(), &opened.slug).await,
        ErrorCode::NotFound,
    );
    expect_error(
        app.get(&User::customer().ctx(), &opened.id).await,
        ErrorCode::NotFound,
    );
    assert_eq!(app.get(&seller.ctx(), &opened.id).await.unwrap(), opened);
    assert_eq!(app.get(&seller.ctx(), &opened.slug).await.unwrap(), opened);
    assert_eq!(app.get(&admin(), &opened.id).await.unwrap(), opened);

    let approved = app.approve(&opened.id).await.expect("approving");
    assert_eq!(approved.status, "active");
    assert_eq!(app.get(&anonymous(), &opened.id).await.unwrap(), approved);
    assert_eq!(
        app.get(&anonymous(), &opened.slug.to_uppercase())
            .await
            .unwrap(),
        approved,
        "slugs are found whatever their case"
    );

    // Approving an active shop changes nothing.
    let again = app.approve(&opened.id).await.expect("approving again");
    assert_eq!(again, approved);
    let history = history(&app, &opened.id).await;
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(
        (history[0].0.as_str(), history[0].1.as_str()),
        ("pending", "active")
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspension_hides_a_shop_and_closing_ends_it_for_good() {
    let app = TestApp::spawn().await;
    let seller = User::seller();
    let shop = app.open_active(&seller, "Night Market").await;

    let suspended = app
        .suspend(&shop.id, "Counterfeit goods reported")
        .await
        .expect("suspending");
    assert_eq!(suspended.status, "suspended");
    assert_eq!(suspended.status_reason, "Counterfeit goods reported");
    expect_error(app.get(&anonymous(), &shop.id).await, ErrorCode::NotFound);
    let seen_by_owner = app.get(&seller.ctx(), &shop.id).await.unwrap();
    assert_eq!(seen_by_owner.status_reason, "Counterfeit goods reported");
    // Its owner may still fix its details while it is suspended.
    let renamed = app
        .client
        .update_shop(
            &seller.ctx(),
            &UpdateShopRequest {
                id: shop.id.clone(),
                name: Some("Day Market".into()),
                ..Default::default()
            },
        )
        .await
        .expect("updating a suspended shop");
    assert_eq!(renamed.status, "suspended");

    let reinstated = app.approve(&shop.id).await.expect("approving again");
    assert_eq!(reinstated.status, "active");
    assert_eq!(
        reinstated.status_reason, "",
        "the reason goes with the suspension"
    );

    let close = CloseShopRequest {
        id: shop.id.clone(),
    };
    let closed = app
        .client
        .close_shop(&seller.ctx(), &close)
        .await
        .expect("closing");
    assert_eq!(closed.status, "closed");
    let closed_again = app
        .client
        .close_shop(&seller.ctx(), &close)
        .await
        .expect("closing a closed shop");
    assert_eq!(closed_again, closed, "closing twice changes nothing");

    expect_error(app.approve(&shop.id).await, ErrorCode::FailedPrecondition);
    expect_error(
        app.suspend(&shop.id, "too late").await,
        ErrorCode::FailedPrecondition,
    );
    for ctx in [seller.ctx(), admin()] {
        expect_error(
            app.client
                .update_shop(
                    &ctx,
                    &UpdateShopRequest {
                        id: shop.id.clone(),
                        description: Some("Back again".into()),
                        ..Default::default()
                    },
                )
                .await,
            ErrorCode::FailedPrecondition,
        );
    }
    assert_eq!(
        app.get(&admin(), &shop.id).await.unwrap().description,
        shop.description
    );

    let history: Vec<(String, String)> = history(&app, &shop.id)
        .await
        .into_iter()
        .map(|(from, to, _, _)| (from, to))
        .collect();
    let expected = [
        ("pending", "active"),
        ("active", "suspended"),
        ("suspended", "active"),
        ("active", "closed"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(from, to)| ((*from).to_owned(), (*to).to_owned()))
        .collect();
    assert_eq!(history, expected);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_changes_only_the_fields_present() {
    let app = TestApp::spawn().await;
    let seller = User::seller();
    let opened = app
        .open(
            &seller,
            api::shop::CreateShopRequest {
                logo_url: "https://img.example.com/logo.png".into(),
                ..shop("Paper Goods")
            },
        )
        .await;
    let updated = app
        .client
        .update_shop(
            &seller.ctx(),
            &UpdateShopRequest {
                id: opened.id.clone(),
                slug: Some("paper-and-ink".into()),
                logo_url: Some(String::new()),
                contact_email: Some("ink@paper.example".into()),
                ..Default::default()
            },
        )
        .await
        .expect("updating");
    assert_eq!(updated.slug, "paper-and-ink");
    assert_eq!(updated.logo_url, "", "an empty logo url removes the logo");
    assert_eq!(updated.contact_email, "ink@paper.example");
    assert_eq!(updated.name, opened.name, "absent fields stay as they were");
    assert_eq!(updated.description, opened.description);
    assert_eq!(updated.currency, opened.currency);
    assert_ne!(updated.updated_at, opened.updated_at);
    assert_eq!(
        app.get(&seller.ctx(), "paper-and-ink").await.unwrap(),
        updated
    );
    expect_error(
        app.get(&seller.ctx(), &opened.slug).await,
        ErrorCode::NotFound,
    );

    // Admins change any shop.
    let by_admin = app
        .client
        .update_shop(
            &admin(),
            &UpdateShopRequest {
                id: opened.id.clone(),
                name: Some("Paper & Ink".into()),
                ..Default::default()
            },
        )
        .await
        .expect("an admin updating");
    assert_eq!(by_admin.name, "Paper & Ink");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shop_access_tells_other_services_who_owns_a_shop_in_any_status() {
    let app = TestApp::spawn().await;
    let seller = User::seller();
    let pending = app.open(&seller, shop("Pending Place")).await;
    let access = |shop_id: &str| GetShopAccessRequest {
        shop_id: shop_id.into(),
    };
    let answer = app
        .client
        .get_shop_access(&anonymous(), &access(&pending.id))
        .await
        .expect("reading shop access");
    assert_eq!(
        answer,
        ShopAccess {
            shop_id: pending.id.clone(),
            owner_id: seller.id.to_string(),
            status: "pending".into(),
            currency: "EUR".into(),
        }
    );
    app.suspend(&pending.id, "Checking papers").await.unwrap();
    let answer = app
        .client
        .get_shop_access(&anonymous(), &access(&pending.id))
        .await
        .unwrap();
    assert_eq!(answer.status, "suspended");

    let missing = Uuid::now_v7().to_string();
    let error = expect_error(
        app.client
            .get_shop_access(&anonymous(), &access(&missing))
            .await,
        ErrorCode::NotFound,
    );
    assert_eq!(error.message(), format!("shop {missing} not found"));
    let error = app
        .client
        .get_shop_access(&anonymous(), &access("nope"))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&error), ["shop_id"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_names_the_shops_that_exist_in_any_status() {
    let app = TestApp::spawn().await;
    let seller = User::seller();
    let pending = app.open(&seller, shop("Pending Place")).await;
    let other = app.open(&User::seller(), shop("Other Place")).await;
    app.suspend(&other.id, "Checking papers").await.unwrap();
    let missing = Uuid::now_v7().to_string();
    let lookup = |ids: &[&str]| LookupShopsRequest {
        shop_ids: ids.iter().map(|id| (*id).to_owned()).collect(),
    };

    let answer = app
        .client
        .lookup_shops(
            &anonymous(),
            &lookup(&[&other.id, &missing, &pending.id, &pending.id]),
        )
        .await
        .expect("looking shops up");
    let mut shops = answer.shops;
    shops.sort_by(|a, b| a.shop_id.cmp(&b.shop_id));
    let mut expected = vec![
        ShopSummary {
            shop_id: pending.id.clone(),
            name: "Pending Place".into(),
            status: "pending".into(),
        },
        ShopSummary {
            shop_id: other.id.clone(),
            name: "Other Place".into(),
            status: "suspended".into(),
        },
    ];
    expected.sort_by(|a, b| a.shop_id.cmp(&b.shop_id));
    assert_eq!(shops, expected);

    let error = app
        .client
        .lookup_shops(&anonymous(), &lookup(&[&pending.id, "nope"]))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&error), ["shop_ids[1]"]);
    let error = app
        .client
        .lookup_shops(&anonymous(), &lookup(&[]))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&error), ["shop_ids"]);
    app.stop().await;
}
