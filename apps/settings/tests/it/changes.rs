//! Changing settings: schema checks, versions, history, rollback, who may, fault flags.

use rpc::ErrorCode;
use serde_json::json;
use settings::catalogue::{
    FAULT_PAYMENT_FAILURE_PERCENT, KEYS, KeyKind, NOTIFICATION_SENDER, SHIPPING_METHODS, TAX_RATES,
};

use crate::helpers::{TestApp, admin, bad_fields, customer, expect_error};

fn value(setting: &api::settings::Setting) -> serde_json::Value {
    serde_json::from_str(&setting.value_json).expect("a JSON value")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listing_shows_every_key_with_its_schema_and_the_seeded_defaults() {
    let app = TestApp::spawn().await;
    let listed = app.list("").await;
    assert_eq!(listed.len(), KEYS.len());
    for entry in &listed {
        let key = entry.key.as_ref().unwrap();
        let current = entry.current.as_ref().unwrap();
        let declared = settings::catalogue::key(&key.key).unwrap();
        assert!(!key.schema.is_empty() && !key.description.is_empty());
        assert_eq!(value(current), declared.default_value(), "{}", key.key);
        // Ordinary settings are seeded as version 1; flags stay unset (version 0) and off.
        let seeded = declared.kind == KeyKind::Setting;
        assert_eq!(current.version, i64::from(seeded), "{}", key.key);
        assert_eq!(key.fault_flag, declared.kind == KeyKind::FaultFlag);
    }
    let taxes = app.current(TAX_RATES).await;
    assert_eq!(value(&taxes)["DE"], 1900);
    assert_eq!(taxes.updated_by, settings_service::SEEDED_BY);

    // A shop's listing has only the keys a shop may set.
    let shop = format!("shop:{}", uuid::Uuid::now_v7());
    let shop_keys: Vec<String> = app
        .list(&shop)
        .await
        .into_iter()
        .map(|e| e.key.unwrap().key)
        .collect();
    assert!(shop_keys.contains(&NOTIFICATION_SENDER.to_owned()));
    assert!(!shop_keys.contains(&TAX_RATES.to_owned()));
    // A shop with no sender of its own shows the platform's, as version 0.
    let platform_sender = json!({"name": "Market", "address": "hello@market.example"});
    app.change(NOTIFICATION_SENDER, platform_sender.clone(), 1)
        .await
        .unwrap();
    let shop_sender = app.get(NOTIFICATION_SENDER, &shop).await.unwrap();
    let current = shop_sender.current.unwrap();
    assert_eq!((current.version, value(&current)), (0, platform_sender));
    assert!(shop_sender.history.is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_is_versioned_with_its_history_and_can_be_rolled_back() {
    let app = TestApp::spawn().await;
    let original = app.current(TAX_RATES).await;
    let who = admin();
    let who_id = who.principal().unwrap().user_id.clone();
    let changed = app
        .change_as(&who, TAX_RATES, "platform", json!({"DE": 700, "US": 0}), 1)
        .await
        .expect("changing the tax rates");
    assert_eq!(changed.version, 2);
    assert_eq!(changed.updated_by, who_id);
    assert_eq!(value(&changed), json!({"DE": 700, "US": 0}));

    let detail = app.get(TAX_RATES, "").await.unwrap();
    assert_eq!(detail.current.as_ref().unwrap(), &changed);
    let history = &detail.history;
    assert_eq!(
        history.len(),
        2,
        "newest first: the change, then the default"
    );
    assert_eq!(history[0].version, 2);
    assert_eq!(history[0].changed_by, who_id);
    assert_eq!(history[0].reason, "testing");
    assert!(history[0].changed_at.is_some());
    let old: serde_json::Value = serde_json::from_str(&history[0].old_value_json).unwrap();
    assert_eq!(old, value(&original));
    assert_eq!(history[1].version, 1);
    assert_eq!(
        history[1].old_value_json, "",
        "the first version replaced nothing"
    );

    let rolled_back = app.rollback(TAX_RATES, 1, 2).await.expect("rolling back");
    assert_eq!(rolled_back.version, 3, "a rollback is a new version");
    assert_eq!(value(&rolled_back), value(&original));
    let history = app.get(TAX_RATES, "").await.unwrap().history;
    assert_eq!(history.len(), 3);
    assert!(
        history[0].reason.contains("rollback to version 1"),
        "{}",
        history[0].reason
    );
    expect_error(app.rollback(TAX_RATES, 9, 3).await, ErrorCode::NotFound);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_value_is_refused_with_the_schema_error_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let bad = json!({
        "standard": {"amount_minor_units": 499, "currency": "USD"},
        "express": {"amount_minor_units": -5, "currency": "dollars"},
    });
    let error = expect_error(
        app.change(SHIPPING_METHODS, bad, 1).await,
        ErrorCode::InvalidArgument,
    );
    assert_eq!(
        bad_fields(&error),
        [
            "value_json.express.amount_minor_units",
            "value_json.express.currency"
        ]
    );
    assert!(error.message().contains("schema"), "{}", error.message());
    let error = expect_error(
        app.change(
            SHIPPING_METHODS,
            json!({"express": {"amount_minor_units": 1, "currency": "USD"}}),
            1,
        )
        .await,
        ErrorCode::InvalidArgument,
    );
    assert_eq!(
        bad_fields(&error),
        ["value_json"],
        "the default method is missing"
    );
    let error = expect_error(
        app.client
            .change_setting(
                &admin(),
                &api::settings::ChangeSettingRequest {
                    key: TAX_RATES.into(),
                    value_json: "{\"DE\": ".into(),
                    expected_version: 1,
                    reason: "typo".into(),
                    ..Default::default()
                },
            )
            .await,
        ErrorCode::InvalidArgument,
    );
    assert_eq!(bad_fields(&error), ["value_json"]);
    // A key that does not exist, and a scope the key cannot be set in.
    expect_error(
        app.change("checkout.colour", json!(1), 0).await,
        ErrorCode::NotFound,
    );
    let shop = format!("shop:{}", uuid::Uuid::now_v7());
    let error = expect_error(
        app.change_as(&admin(), TAX_RATES, &shop, json!({"DE": 1}), 0)
            .await,
        ErrorCode::InvalidArgument,
    );
    assert_eq!(bad_fields(&error), ["scope"]);

    let current = app.current(SHIPPING_METHODS).await;
    assert_eq!(current.version, 1, "nothing was stored");
    assert_eq!(
        app.get(SHIPPING_METHODS, "").await.unwrap().history.len(),
        1
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_from_an_old_version_is_a_conflict_and_one_of_two_racing_changes_wins() {
    let app = TestApp::spawn().await;
    app.change(TAX_RATES, json!({"DE": 1000}), 1).await.unwrap();
    let error = expect_error(
        app.change(TAX_RATES, json!({"DE": 2000}), 1).await,
        ErrorCode::Conflict,
    );
    assert!(error.message().contains("version 2"), "{}", error.message());
    assert_eq!(value(&app.current(TAX_RATES).await), json!({"DE": 1000}));

    // Eight admins change the same version at once: exactly one wins.
    let attempts = (0..8).map(|n| app.change(TAX_RATES, json!({"DE": n}), 2));
    let results = futures::future::join_all(attempts).await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "{results:?}");
    for result in results.iter().filter(|r| r.is_err()) {
        assert_eq!(result.as_ref().unwrap_err().code(), ErrorCode::Conflict);
    }
    assert_eq!(app.current(TAX_RATES).await.version, 3);
    assert_eq!(app.get(TAX_RATES, "").await.unwrap().history.len(), 3);

    // The first value of a shop's key races the same way from version 0.
    let shop = format!("shop:{}", uuid::Uuid::now_v7());
    let sender = json!({"name": "Shop", "address": "shop@example.com"});
    let admins: Vec<rpc::Context> = (0..4).map(|_| admin()).collect();
    let attempts = admins
        .iter()
        .map(|who| app.change_as(who, NOTIFICATION_SENDER, &shop, sender.clone(), 0));
    let results = futures::future::join_all(attempts).await;
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_read_or_change_settings() {
    let app = TestApp::spawn().await;
    let customer = customer("customer-1");
    expect_error(
        app.change_as(&customer, TAX_RATES, "", json!({"DE": 0}), 1)
            .await,
        ErrorCode::PermissionDenied,
    );
    expect_error(
        app.client
            .list_settings(&customer, &Default::default())
            .await,
        ErrorCode::PermissionDenied,
    );
    expect_error(
        app.client
            .get_setting(
                &testkit::callers::anonymous(),
                &api::settings::GetSettingRequest {
                    key: TAX_RATES.into(),
                    ..Default::default()
                },
            )
            .await,
        ErrorCode::Unauthenticated,
    );
    assert_eq!(app.current(TAX_RATES).await.version, 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_flags_are_refused_unless_the_service_runs_in_dev_mode() {
    let app = TestApp::spawn().await;
    let error = expect_error(
        app.change(FAULT_PAYMENT_FAILURE_PERCENT, json!(50), 0)
            .await,
        ErrorCode::FailedPrecondition,
    );
    assert!(
        error.message().contains("--allow-fault-flags"),
        "{}",
        error.message()
    );
    let current = app.current(FAULT_PAYMENT_FAILURE_PERCENT).await;
    assert_eq!(
        (current.version, value(&current)),
        (0, json!(0)),
        "still off"
    );
    app.stop().await;

    let app = TestApp::spawn_with(|config| config.allow_fault_flags = true).await;
    let set = app
        .change(FAULT_PAYMENT_FAILURE_PERCENT, json!(50), 0)
        .await
        .expect("a dev stack sets fault flags");
    assert_eq!((set.version, value(&set)), (1, json!(50)));
    // Still checked against the schema.
    let error = expect_error(
        app.change(FAULT_PAYMENT_FAILURE_PERCENT, json!(150), 1)
            .await,
        ErrorCode::InvalidArgument,
    );
    assert_eq!(bad_fields(&error), ["value_json"]);
    app.stop().await;
}

#[test]
fn the_gateway_routes_every_method_of_the_contract() {
    let mut routes: Vec<(&str, &str)> = api::ROUTES
        .iter()
        .filter(|route| route.descriptor.service == api::settings::SERVICE_NAME)
        .map(|route| (route.http_method, route.path))
        .collect();
    routes.sort();
    assert_eq!(
        routes,
        [
            ("GET", "/api/v1/settings"),
            ("GET", "/api/v1/settings/{key}"),
            ("POST", "/api/v1/settings/{key}/rollback"),
            ("PUT", "/api/v1/settings/{key}"),
        ]
    );
}
