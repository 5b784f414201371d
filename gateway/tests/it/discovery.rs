//! `GET /api/v1/admin/services`: the gateway lists every running service instance from NATS
//! micro discovery, for admins only, and a bad or slow responder never spoils the answer.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use reqwest::StatusCode;
use serde_json::Value;
use testkit::Companion;

use crate::helpers::{
    Platform, PlatformOptions, TestApp, assert_nothing_arrives, expect_error, json_u64, path_of,
    product_path, products_path,
};

fn services_path() -> String {
    path_of(&api::gateway::methods::LIST_SERVICES, &[])
}

/// The services an answer lists, by name.
fn names(listing: &Value) -> BTreeSet<String> {
    listing["services"]
        .as_array()
        .expect("a services array")
        .iter()
        .map(|s| s["name"].as_str().expect("a name").to_owned())
        .collect()
}

fn service<'a>(listing: &'a Value, name: &str) -> &'a Value {
    listing["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not listed: {listing}"))
}

fn instances(service: &Value) -> &Vec<Value> {
    service["instances"].as_array().expect("an instances array")
}

fn endpoint<'a>(instance: &'a Value, name: &str) -> &'a Value {
    instance["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no endpoint {name}: {instance}"))
}

/// Every served contract's service name: what a whole platform runs.
fn every_service() -> BTreeSet<String> {
    api::CONTRACTS
        .iter()
        .filter(|c| trust::is_served(c))
        .map(|c| c.service.name.to_owned())
        .collect()
}

/// Asks until the listing names `wanted` (discovery is a snapshot: an instance too busy to
/// answer within the window is missing from that one answer), and returns that listing.
async fn listing_with(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    wanted: &BTreeSet<String>,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let response = http.get(url).bearer_auth(token).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/json");
        let listing: Value = response.json().await.unwrap();
        let listed = names(&listing);
        if wanted.is_subset(&listed) {
            return listing;
        }
        assert!(
            Instant::now() < deadline,
            "missing {:?} after 20 s: {listing}",
            wanted.difference(&listed).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_sees_every_running_service_with_its_version_endpoints_and_counts() {
    let platform = Platform::spawn_with(PlatformOptions {
        checkout: true,
        after_the_order: true,
        ..Default::default()
    })
    .await;
    let admin = platform.admin_token();
    let url = format!("{}{}", platform.address, services_path());
    let everything = every_service();
    assert_eq!(everything.len(), 12, "{everything:?}");
    let listing = listing_with(&platform.http, &url, &admin, &everything).await;
    assert_eq!(
        names(&listing),
        everything,
        "nothing but the platform's services"
    );
    assert_eq!(listing["skipped_replies"], 0, "{listing}");

    for name in &everything {
        let contract = api::contract(name).unwrap();
        let service = service(&listing, name);
        let instances = instances(service);
        assert_eq!(instances.len(), 1, "{service}");
        let instance = &instances[0];
        assert_eq!(instance["version"], contract.service.version, "{name}");
        assert_eq!(instance["description"], contract.service.description);
        assert_eq!(instance["health"], "up", "{instance}");
        // Every dependency is up: what its admin port says, carried by its stats.
        assert_eq!(instance["readiness"], "ok", "{instance}");
        assert!(!instance["id"].as_str().unwrap().is_empty());
        let started: &str = instance["started"].as_str().expect("a start time");
        assert!(started.starts_with("20"), "{started}");
        let subjects: BTreeSet<&str> = instance["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["subject"].as_str().unwrap())
            .collect();
        let mut declared: BTreeSet<String> = contract
            .methods
            .iter()
            .map(|m| m.subject.to_owned())
            .collect();
        // A service with consumers also serves the redrive of their dead letters.
        if events::names::durables()
            .iter()
            .any(|d| d.0 == name.as_str())
        {
            declared.insert(events::names::redrive_endpoint_subject(name));
        }
        let subjects: BTreeSet<String> = subjects.into_iter().map(str::to_owned).collect();
        assert_eq!(
            subjects, declared,
            "{name} serves what its contract declares, and a redrive when it consumes"
        );
        let names: Vec<&str> = instance["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted, "endpoints by name");
    }
    let mut listed: Vec<String> = listing["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    let in_order = listed.clone();
    listed.sort();
    assert_eq!(in_order, listed, "services by name");

    // Calls are counted: two product lists, and a product that does not exist (an error).
    let product = &instances(service(&listing, "product"))[0];
    let lists_before = json_u64(&endpoint(product, "list_products")["num_requests"]);
    let gets_before = json_u64(&endpoint(product, "get_product")["num_requests"]);
    let get_errors_before = json_u64(&endpoint(product, "get_product")["num_errors"]);
    let errors_before = json_u64(&product["total_errors"]);
    for _ in 0..2 {
        let (status, _) = platform.get(&products_path(), None).await;
        assert_eq!(status, StatusCode::OK);
    }
    let missing = product_path(&uuid::Uuid::now_v7().to_string());
    let (status, _) = platform.get(&missing, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let listing = listing_with(&platform.http, &url, &admin, &everything).await;
    let product = &instances(service(&listing, "product"))[0];
    let list = endpoint(product, "list_products");
    assert_eq!(json_u64(&list["num_requests"]), lists_before + 2, "{list}");
    assert_eq!(list["queue_group"], "q");
    assert!(
        list["processing_time"].as_str().unwrap().ends_with('s'),
        "{list}"
    );
    let get = endpoint(product, "get_product");
    assert_eq!(json_u64(&get["num_requests"]), gets_before + 1, "{get}");
    assert_eq!(
        json_u64(&get["num_errors"]),
        get_errors_before + 1,
        "the not found is an error: {get}"
    );
    assert_eq!(json_u64(&product["total_errors"]), errors_before + 1);
    let total: u64 = product["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| json_u64(&e["num_requests"]))
        .sum();
    assert_eq!(json_u64(&product["total_requests"]), total);

    let violations: Vec<String> = platform
        .nats_violations()
        .into_iter()
        .filter(|v| v.contains("$SRV") || v.contains("gateway"))
        .collect();
    assert!(violations.is_empty(), "{violations:#?}");
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_may_list_the_services_and_refused_callers_ask_nobody() {
    let app = TestApp::spawn_with(crate::helpers::Options {
        product_service: false,
        ..Default::default()
    })
    .await;
    // Nobody runs (nor listens): an empty list, answered without waiting out the window.
    let started = Instant::now();
    let listing: Value = app
        .get_with_token(&services_path(), &app.admin_token())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listing["services"], serde_json::json!([]), "{listing}");
    assert!(started.elapsed() < Duration::from_millis(900));
    let mut asked = app.nats.subscribe("$SRV.>").await.unwrap();
    app.nats.flush().await.unwrap();

    expect_error(app.get(&services_path()).await, 401, "unauthenticated").await;
    let customer = app.customer_token();
    expect_error(
        app.get_with_token(&services_path(), &customer).await,
        403,
        "permission_denied",
    )
    .await;
    assert_nothing_arrives(&mut asked).await;

    // An admin's request asks every instance, with replies to the gateway's own inbox.
    let response = app
        .get_with_token(&services_path(), &app.admin_token())
        .await;
    assert_eq!(response.status(), 200);
    let mut verbs = BTreeSet::new();
    while verbs.len() < 2 {
        let request = tokio::time::timeout(Duration::from_secs(5), asked.next())
            .await
            .expect("the gateway asked")
            .unwrap();
        assert!(
            request
                .reply
                .as_deref()
                .is_some_and(|r| r.starts_with("_INBOX_gateway.")),
            "{request:?}"
        );
        verbs.insert(request.subject.to_string());
    }
    assert_eq!(
        verbs,
        BTreeSet::from(["$SRV.INFO".to_owned(), "$SRV.STATS".to_owned()])
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_of_one_service_show_as_two_and_a_stopped_one_goes() {
    // The gateway with product and the shop service product asks.
    let app = TestApp::spawn().await;
    let second_shop = Companion::start(app.nats_server(), shop_service::start, |_| {}).await;
    let admin = app.admin_token();
    let url = app.url(&services_path());
    let wanted = BTreeSet::from(["product".to_owned(), "shop".to_owned()]);

    let deadline = Instant::now() + Duration::from_secs(20);
    let listing = loop {
        let listing = listing_with(&app.http, &url, &admin, &wanted).await;
        if instances(service(&listing, "shop")).len() == 2 || Instant::now() > deadline {
            break listing;
        }
    };
    let shops = instances(service(&listing, "shop"));
    assert_eq!(shops.len(), 2, "{listing}");
    let ids: Vec<&str> = shops.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert!(ids[0] < ids[1], "distinct instances, by id: {ids:?}");
    for shop in shops {
        assert_eq!(shop["health"], "up");
        assert_eq!(shop["version"], api::shop::SERVICE_VERSION);
    }
    assert_eq!(instances(service(&listing, "product")).len(), 1);

    second_shop.stop().await;
    let listing = listing_with(&app.http, &url, &admin, &wanted).await;
    assert_eq!(instances(service(&listing, "shop")).len(), 1, "{listing}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_oversized_and_slow_replies_never_spoil_the_answer() {
    let app = TestApp::spawn().await;
    // Someone with the operator's key answers discovery badly: garbage, a reply far too
    // large, and one long after the window.
    let responder = app.nats_server().connect().await;
    let mut requests = responder.subscribe("$SRV.INFO").await.unwrap();
    responder.flush().await.unwrap();
    let answering = tokio::spawn(async move {
        while let Some(request) = requests.next().await {
            let Some(reply) = request.reply else { continue };
            let _ = responder.publish(reply.clone(), "not json".into()).await;
            let _ = responder
                .publish(reply.clone(), vec![b' '; 200 * 1024].into())
                .await;
            let late = responder.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(3)).await;
                let _ = late.publish(reply, "too late".into()).await;
            });
        }
    });

    let admin = app.admin_token();
    let started = Instant::now();
    let response = app.get_with_token(&services_path(), &admin).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the window is bounded: {:?}",
        started.elapsed()
    );
    assert_eq!(response.status(), 200);
    let listing: Value = response.json().await.unwrap();
    assert!(
        listing["skipped_replies"].as_u64().unwrap() >= 2,
        "{listing}"
    );
    for name in ["product", "shop"] {
        assert_eq!(instances(service(&listing, name)).len(), 1, "{listing}");
    }
    // Counted where operators look too.
    let metrics = app.metrics().await;
    for reason in ["malformed", "too_large"] {
        let counted = metrics.lines().any(|line| {
            line.starts_with("gateway_discovery_replies_skipped_total{")
                && line.contains(&format!("reason=\"{reason}\""))
                && !line.ends_with(" 0")
        });
        assert!(counted, "{reason} skips are not counted:\n{metrics}");
    }
    answering.abort();
    app.stop().await;
}
