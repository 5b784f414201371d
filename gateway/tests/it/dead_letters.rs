//! `GET /api/v1/admin/dead-letters` and `POST /api/v1/admin/dead-letters/{consumer}/redrive`:
//! admins see what a consumer gave up on and put it back on that consumer alone, through the
//! gateway and the consuming service, under the platform's NATS permissions.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Platform, expect_error, json_u64, path_of};

fn list_path() -> String {
    path_of(&api::gateway::methods::LIST_DEAD_LETTERS, &[])
}

fn redrive_path(consumer: &str) -> String {
    path_of(
        &api::gateway::methods::REDRIVE_DEAD_LETTERS,
        &[("consumer", consumer)],
    )
}

fn letters(listing: &Value) -> &Vec<Value> {
    listing["dead_letters"]
        .as_array()
        .unwrap_or_else(|| panic!("a dead_letters array: {listing}"))
}

fn count_of(listing: &Value, consumer: &str) -> u64 {
    let entry = listing["consumers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["consumer"] == consumer)
        .unwrap_or_else(|| panic!("{consumer} is not among the consumers: {listing}"));
    json_u64(&entry["dead_letters"])
}

/// Lists until `done` holds for the listing of `consumer`'s dead letters.
async fn listing_until(
    platform: &Platform,
    token: &str,
    consumer: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, listing) = platform
            .get(&format!("{}?consumer={consumer}", list_path()), Some(token))
            .await;
        assert_eq!(status, StatusCode::OK, "{listing}");
        if done(&listing) {
            return listing;
        }
        assert!(Instant::now() < deadline, "waiting for {what}: {listing}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_list_dead_letters_and_redrive_them_to_their_consumer_alone() {
    let platform = Platform::spawn().await;
    let admin = platform.admin_token();
    let customer = platform.token(&["customer"]);
    let durable = events::names::durable_name("user", &api::auth::events::USER_REGISTERED).unwrap();

    // Nobody else sees or moves them, and nothing reaches NATS for them.
    for (token, status, code) in [
        (None, 401, "unauthenticated"),
        (Some(customer.as_str()), 403, "permission_denied"),
    ] {
        let mut list = platform
            .http
            .get(format!("{}{}", platform.address, list_path()));
        let mut redrive = platform
            .http
            .post(format!("{}{}", platform.address, redrive_path(&durable)))
            .json(&json!({}));
        if let Some(token) = token {
            list = list.bearer_auth(token);
            redrive = redrive.bearer_auth(token);
        }
        expect_error(list.send().await.unwrap(), status, code).await;
        expect_error(redrive.send().await.unwrap(), status, code).await;
    }

    // An empty platform: every consumer of the contracts is listed, at zero.
    let (status, empty) = platform.get(&list_path(), Some(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{empty}");
    assert!(letters(&empty).is_empty(), "{empty}");
    assert_eq!(
        empty["consumers"].as_array().unwrap().len(),
        events::names::durables().len()
    );
    assert_eq!(count_of(&empty, &durable), 0);

    let event_id = platform.publish_poisoned_registration("poison").await;
    let listing = listing_until(&platform, &admin, &durable, "the dead letter", |l| {
        !letters(l).is_empty()
    })
    .await;
    let letter = &letters(&listing)[0];
    assert_eq!(letters(&listing).len(), 1, "{listing}");
    assert_eq!(letter["consumer"], durable.as_str());
    assert_eq!(letter["service"], "user");
    assert_eq!(letter["event_type"], "user.registered");
    assert_eq!(letter["event_id"], event_id.as_str());
    assert_eq!(
        letter["subject"],
        events::names::subject(&api::auth::events::USER_REGISTERED, "poison").unwrap()
    );
    assert_eq!(letter["stream"], "EVENTS_USER");
    assert!(
        letter["reason"]
            .as_str()
            .unwrap()
            .starts_with("terminated: user_id"),
        "{letter}"
    );
    assert_eq!(json_u64(&letter["deliveries"]), 1);
    assert!(letter["payload"].as_str().unwrap().contains("not-a-uuid"));
    assert_eq!(letter["payload_truncated"], false);
    assert!(letter["stored_at"].is_string(), "{letter}");
    assert_eq!(count_of(&listing, &durable), 1);
    let first = json_u64(&letter["sequence"]);

    // Bad requests are refused with what is wrong.
    let (status, body) = platform
        .get(
            &format!("{}?consumer=nobody_user_registered", list_path()),
            Some(&admin),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = platform
        .get(&format!("{}?page_size=500", list_path()), Some(&admin))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["details"][0]["field"], "page_size", "{body}");
    let (status, body) = platform
        .post(
            &redrive_path("nobody_user_registered"),
            json!({}),
            Some(&admin),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = platform
        .post(&redrive_path("Not-A-Name"), json!({}), Some(&admin))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = platform
        .post(
            &redrive_path(&durable),
            json!({"sequence": (first + 1000).to_string()}),
            Some(&admin),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // Paging: one letter per page, then none.
    let (status, page) = platform
        .get(&format!("{}?page_size=1", list_path()), Some(&admin))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(letters(&page).len(), 1);
    assert_eq!(json_u64(&page["next_after"]), 0, "the only letter: {page}");

    // The redrive goes through the user service, which puts the event back on its own
    // consumer; that consumer gives it up again, so it comes back as a new dead letter.
    let (status, done) = platform
        .post(
            &redrive_path(&durable),
            json!({"sequence": first.to_string()}),
            Some(&admin),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["redriven"], 1, "{done}");
    let again = listing_until(&platform, &admin, &durable, "the letter back", |l| {
        letters(l)
            .iter()
            .any(|letter| json_u64(&letter["sequence"]) > first)
    })
    .await;
    assert_eq!(letters(&again).len(), 1, "the old one is gone: {again}");
    let letter = &letters(&again)[0];
    assert_eq!(letter["event_id"], event_id.as_str(), "the same event");
    assert_eq!(
        letter["subject"],
        events::names::subject(&api::auth::events::USER_REGISTERED, "poison").unwrap(),
        "still named by the subject it was first published to"
    );

    // Redrive all: the same again, through the same path.
    let second = json_u64(&letter["sequence"]);
    let (status, done) = platform
        .post(&redrive_path(&durable), json!({}), Some(&admin))
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["redriven"], 1, "{done}");
    listing_until(&platform, &admin, &durable, "the letter back again", |l| {
        letters(l)
            .iter()
            .any(|letter| json_u64(&letter["sequence"]) > second)
    })
    .await;

    // Everything above ran within the NATS permissions each identity has.
    assert_eq!(platform.nats_violations(), Vec::<String>::new());
    platform.stop().await;
}
