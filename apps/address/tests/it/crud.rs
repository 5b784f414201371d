//! Creating, reading, replacing, listing and deleting one's own addresses.

use std::time::Duration;

use rpc::ErrorCode;

use crate::helpers::{TestApp, User, address, anonymous, expect_error, replacement};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_can_be_created_read_replaced_and_deleted() {
    let app = TestApp::spawn().await;
    let user = User::signed_up();

    let created = app.add(&user, address("  Ada Lovelace ")).await;
    assert_eq!(created.user_id, user.id.to_string());
    assert_eq!(created.recipient_name, "Ada Lovelace", "trimmed");
    assert_eq!(created.phone, "+14155552671", "separators dropped");
    assert_eq!(created.line1, "1 Market Street");
    assert_eq!(created.line2, "Suite 300");
    assert_eq!(created.city, "San Francisco");
    assert_eq!(created.region, "CA");
    assert_eq!(created.postal_code, "94105");
    assert_eq!(created.country_code, "US", "stored upper case");
    assert!(created.created_at.is_some());
    assert_eq!(created.created_at, created.updated_at);
    assert_eq!(app.get(&user, &created.id).await.unwrap(), created);

    tokio::time::sleep(Duration::from_millis(5)).await;
    let replaced = app
        .update(&user, replacement(&created.id))
        .await
        .expect("replacing the address");
    assert_eq!(replaced.id, created.id);
    assert_eq!(replaced.recipient_name, "Grace Hopper");
    assert_eq!(
        replaced.phone, "",
        "every field is replaced, also by empty values"
    );
    assert_eq!(replaced.line1, "Unter den Linden 1");
    assert_eq!(replaced.line2, "");
    assert_eq!(replaced.city, "Berlin");
    assert_eq!(replaced.region, "");
    assert_eq!(replaced.postal_code, "10117");
    assert_eq!(replaced.country_code, "DE");
    assert!(replaced.is_default, "replacing keeps the default");
    assert_eq!(replaced.created_at, created.created_at);
    assert_ne!(replaced.updated_at, created.updated_at);
    assert_eq!(app.get(&user, &created.id).await.unwrap(), replaced);
    assert_eq!(app.list(&user).await, [replaced]);

    app.delete(&user, &created.id).await.expect("deleting");
    expect_error(app.get(&user, &created.id).await, ErrorCode::NotFound);
    expect_error(app.delete(&user, &created.id).await, ErrorCode::NotFound);
    expect_error(
        app.update(&user, replacement(&created.id)).await,
        ErrorCode::NotFound,
    );
    assert!(app.list(&user).await.is_empty());
    assert_eq!(app.stored_total().await, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listing_shows_the_default_first_then_the_newest_first() {
    let app = TestApp::spawn().await;
    let user = User::signed_up();
    for name in ["First", "Second", "Third", "Fourth"] {
        app.add(&user, address(name)).await;
    }
    let names = |addresses: Vec<api::address::Address>| -> Vec<String> {
        addresses.into_iter().map(|a| a.recipient_name).collect()
    };
    assert_eq!(
        names(app.list(&user).await),
        ["First", "Fourth", "Third", "Second"]
    );

    let third = app.list(&user).await.remove(2);
    app.set_default(&user, &third.id).await.unwrap();
    assert_eq!(
        names(app.list(&user).await),
        ["Third", "Fourth", "Second", "First"]
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_callers_are_unauthenticated_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let user = User::signed_up();
    let mine = app.add(&user, address("Mine")).await;
    let client = &app.client;
    let ctx = anonymous();
    let id = mine.id.clone();

    let create = client.create_address(&ctx, &address("Anonymous")).await;
    expect_error(create, ErrorCode::Unauthenticated);
    let list = client
        .list_addresses(&ctx, &api::address::ListAddressesRequest {})
        .await;
    expect_error(list, ErrorCode::Unauthenticated);
    let get = client
        .get_address(&ctx, &api::address::GetAddressRequest { id: id.clone() })
        .await;
    expect_error(get, ErrorCode::Unauthenticated);
    let update = client.update_address(&ctx, &replacement(&id)).await;
    expect_error(update, ErrorCode::Unauthenticated);
    let request = api::address::SetDefaultAddressRequest { id: id.clone() };
    let set_default = client.set_default_address(&ctx, &request).await;
    expect_error(set_default, ErrorCode::Unauthenticated);
    let request = api::address::DeleteAddressRequest { id: id.clone() };
    let delete = client.delete_address(&ctx, &request).await;
    expect_error(delete, ErrorCode::Unauthenticated);

    assert_eq!(app.list(&user).await, [mine]);
    assert_eq!(app.stored_total().await, 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_whose_user_id_is_not_a_uuid_is_refused() {
    let app = TestApp::spawn().await;
    let ctx = rpc::Context::background().with_principal(rpc::Principal {
        user_id: "customer-1".into(),
        roles: vec![rpc::roles::CUSTOMER.into()],
    });
    let error = expect_error(
        app.client.create_address(&ctx, &address("Odd")).await,
        ErrorCode::PermissionDenied,
    );
    assert!(error.message().contains("not a UUID"), "{error}");
    assert_eq!(app.stored_total().await, 0);
    app.stop().await;
}

#[test]
fn the_gateway_routes_every_method_of_the_contract() {
    let mut routes: Vec<(&str, &str)> = api::ROUTES
        .iter()
        .filter(|route| route.descriptor.service == api::address::SERVICE_NAME)
        .map(|route| (route.http_method, route.path))
        .collect();
    routes.sort();
    assert_eq!(
        routes,
        [
            ("DELETE", "/api/v1/addresses/{id}"),
            ("GET", "/api/v1/addresses"),
            ("GET", "/api/v1/addresses/{id}"),
            ("POST", "/api/v1/addresses"),
            ("POST", "/api/v1/addresses/{id}/default"),
            ("PUT", "/api/v1/addresses/{id}"),
        ]
    );
}
