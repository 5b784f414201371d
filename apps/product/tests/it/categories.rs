//! Hierarchical categories.

use api::product::{Category, CreateCategoryRequest, ListCategoriesRequest};
use rpc::ErrorCode;
use uuid::Uuid;

use crate::helpers::{TestApp, admin, anonymous, bad_fields, customer, expect_error};

async fn create(app: &TestApp, name: &str, parent: Option<&Category>) -> Category {
    app.client
        .create_category(
            &admin(),
            &CreateCategoryRequest {
                name: name.into(),
                parent_id: parent.map(|p| p.id.clone()).unwrap_or_default(),
                description: String::new(),
            },
        )
        .await
        .unwrap_or_else(|e| panic!("creating category {name}: {e}"))
}

#[tokio::test]
async fn categories_nest_and_list_parents_before_children() {
    let app = TestApp::spawn().await;
    let home = create(&app, "Home & Garden", None).await;
    let kitchen = create(&app, "Kitchen", Some(&home)).await;
    let knives = create(&app, "Knives", Some(&kitchen)).await;
    let books = create(&app, "Books", None).await;

    assert_eq!(home.slug, "home-and-garden");
    assert_eq!(home.parent_id, "");
    assert_eq!(kitchen.parent_id, home.id);

    let listed = app
        .client
        .list_categories(&anonymous(), &ListCategoriesRequest {})
        .await
        .unwrap()
        .categories;
    assert_eq!(listed.len(), 4);
    let position = |c: &Category| listed.iter().position(|l| l.id == c.id).unwrap();
    assert!(position(&home) < position(&kitchen));
    assert!(position(&kitchen) < position(&knives));
    assert!(listed.contains(&books));
    app.stop().await;
}

#[tokio::test]
async fn duplicate_names_and_slugs_conflict() {
    let app = TestApp::spawn().await;
    let toys = create(&app, "Toys", None).await;
    create(&app, "Puzzles", Some(&toys)).await;

    for (name, parent) in [("Toys", None), ("toys!", None), ("Puzzles", Some(&toys))] {
        let request = CreateCategoryRequest {
            name: name.into(),
            parent_id: parent.map(|p: &Category| p.id.clone()).unwrap_or_default(),
            description: String::new(),
        };
        let error = expect_error(
            app.client.create_category(&admin(), &request).await,
            ErrorCode::Conflict,
        );
        assert!(error.message().contains("already exists"), "{error}");
    }
    app.stop().await;
}

#[tokio::test]
async fn invalid_categories_are_refused() {
    let app = TestApp::spawn().await;
    let unknown_parent = CreateCategoryRequest {
        name: "Orphans".into(),
        parent_id: Uuid::now_v7().to_string(),
        description: String::new(),
    };
    let error = app
        .client
        .create_category(&admin(), &unknown_parent)
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&error), ["parent_id"]);

    let malformed = CreateCategoryRequest {
        name: "???".into(),
        parent_id: "root".into(),
        description: "x".repeat(5001),
    };
    let error = app
        .client
        .create_category(&admin(), &malformed)
        .await
        .unwrap_err();
    // The field rules name the malformed id and the long description; that "???" makes no
    // slug is the service's to say once the request has the right shape.
    assert_eq!(bad_fields(&error), ["parent_id", "description"]);
    let unsluggable = CreateCategoryRequest {
        name: "???".into(),
        parent_id: String::new(),
        description: String::new(),
    };
    let error = app
        .client
        .create_category(&admin(), &unsluggable)
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&error), ["name"]);

    expect_error(
        app.client
            .create_category(
                &customer(),
                &CreateCategoryRequest {
                    name: "Mine".into(),
                    ..Default::default()
                },
            )
            .await,
        ErrorCode::PermissionDenied,
    );
    app.stop().await;
}
