//! Bad input: every bad field is named at once and nothing is written; a slug belongs to one
//! shop only.

use api::shop::{CreateShopRequest, UpdateShopRequest};
use rpc::ErrorCode;

use crate::helpers::{TestApp, User, admin, bad_fields, expect_error, shop};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_names_every_field_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let seller = User::seller();
    let error = app
        .client
        .create_shop(
            &seller.ctx(),
            &CreateShopRequest {
                name: String::new(),
                slug: "Not A Slug".into(),
                description: String::new(),
                logo_url: "ftp://example.com/logo.png".into(),
                contact_email: "nobody".into(),
                currency: "usd".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&error),
        ["name", "slug", "logo_url", "contact_email", "currency"]
    );

    // Rules only the service knows: a real currency, a slug that is not an id.
    let error = app
        .client
        .create_shop(
            &seller.ctx(),
            &CreateShopRequest {
                slug: "01900000-0000-7000-8000-00000000d001".into(),
                currency: "XYZ".into(),
                ..shop("Sneaky")
            },
        )
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&error), ["slug", "currency"]);
    assert_eq!(app.stored_shops().await, 0);

    let opened = app.open(&seller, shop("Proper")).await;
    let error = app
        .client
        .update_shop(
            &seller.ctx(),
            &UpdateShopRequest {
                id: opened.id.clone(),
                name: Some("Fine".into()),
                contact_email: Some("not-an-email".into()),
                slug: Some("ab".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&error), ["slug", "contact_email"]);
    assert_eq!(
        app.get(&seller.ctx(), &opened.id).await.unwrap(),
        opened,
        "a refused update changes no field"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slug_belongs_to_one_shop() {
    let app = TestApp::spawn().await;
    let (first_seller, second_seller) = (User::seller(), User::seller());
    let first = app
        .open(
            &first_seller,
            CreateShopRequest {
                slug: "corner-shop".into(),
                ..shop("Corner Shop")
            },
        )
        .await;
    let error = expect_error(
        app.client
            .create_shop(
                &second_seller.ctx(),
                &CreateShopRequest {
                    slug: "corner-shop".into(),
                    ..shop("Other Corner")
                },
            )
            .await,
        ErrorCode::Conflict,
    );
    assert_eq!(error.details().len(), 1);
    assert_eq!(error.details()[0].field, "slug");
    assert_eq!(app.stored_shops().await, 1);

    let second = app.open(&second_seller, shop("Second")).await;
    let error = expect_error(
        app.client
            .update_shop(
                &admin(),
                &UpdateShopRequest {
                    id: second.id.clone(),
                    slug: Some("corner-shop".into()),
                    ..Default::default()
                },
            )
            .await,
        ErrorCode::Conflict,
    );
    assert_eq!(error.details()[0].field, "slug");
    assert_eq!(
        app.get(&admin(), &second.id).await.unwrap().slug,
        second.slug
    );
    assert_eq!(app.get(&admin(), "corner-shop").await.unwrap().id, first.id);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sellers_racing_for_one_slug_get_one_shop() {
    let app = std::sync::Arc::new(TestApp::spawn().await);
    let tasks: Vec<_> = (0..6)
        .map(|index| {
            let app = app.clone();
            tokio::spawn(async move {
                let request = CreateShopRequest {
                    slug: "the-one-slug".into(),
                    ..shop(&format!("Contender {index}"))
                };
                app.client
                    .create_shop(&User::seller().ctx(), &request)
                    .await
            })
        })
        .collect();
    let mut opened = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => opened += 1,
            Err(error) => {
                let error = expect_error(Err::<(), _>(error), ErrorCode::Conflict);
                assert_eq!(error.details()[0].field, "slug");
            }
        }
    }
    assert_eq!(opened, 1);
    assert_eq!(app.stored_shops().await, 1);
    let app = std::sync::Arc::into_inner(app).expect("every request task has ended");
    app.stop().await;
}
