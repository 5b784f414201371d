//! Streaming routes: a product page follows its product live over server-sent events.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_error, new_product, path_of};

/// One server-sent event.
#[derive(Debug)]
struct Sse {
    event: String,
    id: String,
    data: Value,
}

/// Reads the events of an open `text/event-stream` response, skipping keep-alive comments.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    fn new(response: reqwest::Response) -> Self {
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// Whether the server ends the stream within 5 s (whatever is still buffered is dropped).
    async fn ends(&mut self) -> bool {
        let read_to_end = async { while let Ok(Some(_)) = self.response.chunk().await {} };
        tokio::time::timeout(Duration::from_secs(5), read_to_end)
            .await
            .is_ok()
    }

    async fn next(&mut self) -> Sse {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block
                        .lines()
                        .filter_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                        .map(str::trim_start)
                        .collect::<Vec<_>>()
                        .join("\n")
                };
                let data = field("data");
                if data.is_empty() {
                    continue; // a comment
                }
                return Sse {
                    event: field("event"),
                    id: field("id"),
                    data: serde_json::from_str(&data).expect("event data is JSON"),
                };
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.response.chunk())
                .await
                .expect("an event within 10 s")
                .expect("the stream reads")
                .expect("the stream is still open");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

fn watch_path(id: &str) -> String {
    path_of(&api::product::methods::WATCH_PRODUCT, &[("id", id)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_page_sees_its_product_change_without_reloading() {
    let app = TestApp::spawn().await;
    let lamp = app
        .create_product(&new_product("Brass desk lamp", 4500))
        .await;
    let shelf = app.create_product(&new_product("Oak shelf", 9000)).await;
    let lamp_id = lamp["id"].as_str().unwrap();

    let response = app.get(&watch_path(lamp_id)).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut events = Events::new(response);
    let snapshot = events.next().await;
    assert_eq!(snapshot.event, "snapshot");
    assert_eq!(snapshot.data["name"], "Brass desk lamp");
    assert_eq!(snapshot.data["price"]["minor_units"], "4500");

    // Another product's change is not this page's business; the lamp's is.
    let admin = app.admin_token();
    let update = |id: &str| path_of(&api::product::methods::UPDATE_PRODUCT, &[("id", id)]);
    let shelf_id = shelf["id"].as_str().unwrap();
    let response = app
        .patch_json(
            &update(shelf_id),
            &json!({"name": "Oak bookshelf"}),
            Some(&admin),
        )
        .await;
    assert_eq!(response.status(), 200);
    let response = app
        .patch_json(
            &update(lamp_id),
            &json!({"price": {"minor_units": "3900", "currency": "USD"}}),
            Some(&admin),
        )
        .await;
    assert_eq!(response.status(), 200);

    // The lamp's own `product.created` may still arrive after the snapshot: the relay
    // publishes it after the create returned, and a page that opened in between sees it live.
    let mut changed = events.next().await;
    if changed.event == "product.created" {
        assert_eq!(changed.data["product"]["id"], lamp_id);
        changed = events.next().await;
    }
    assert_eq!(changed.event, "product.updated");
    assert!(!changed.id.is_empty(), "each event carries its id");
    assert_eq!(changed.data["product"]["id"], lamp_id);
    assert_eq!(changed.data["product"]["price"]["minor_units"], "3900");
    // Stopping the gateway ends the stream instead of waiting for the client to leave.
    app.stop().await;
    assert!(
        events.ends().await,
        "the stream ended when the gateway stopped"
    );
}

/// The stream follows the method's access rules: an inactive product is the admins' to see,
/// so a shopper cannot follow it (it answers like a missing one) while an admin can.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_follow_an_inactive_product() {
    let app = TestApp::spawn().await;
    let mut hidden = new_product("Prototype lamp", 9900);
    hidden["status"] = json!("inactive");
    let hidden = app.create_product(&hidden).await;
    let path = watch_path(hidden["id"].as_str().unwrap());

    expect_error(app.get(&path).await, 404, "not_found").await;
    let customer = app.customer_token();
    expect_error(app.get_with_token(&path, &customer).await, 404, "not_found").await;

    let response = app.get_with_token(&path, &app.admin_token()).await;
    assert_eq!(response.status(), 200);
    let snapshot = Events::new(response).next().await;
    assert_eq!(snapshot.event, "snapshot");
    assert_eq!(snapshot.data["status"], "inactive");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_malformed_product_is_an_error_not_a_stream() {
    let app = TestApp::spawn().await;
    let missing = app
        .get(&watch_path("0190f5c6-1e2b-7a1c-9d3e-4f5a6b7c8d9e"))
        .await;
    expect_error(missing, 404, "not_found").await;
    // A key that would change the subject is refused before anything is subscribed.
    let dotted = app.get(&watch_path("a.b")).await;
    expect_error(dotted, 400, "invalid_argument").await;
    // The contract's rules still apply: the id must be a UUID.
    let malformed = app.get(&watch_path("lamp")).await;
    expect_error(malformed, 400, "invalid_argument").await;
    app.stop().await;
}
