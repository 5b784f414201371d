//! Live order status: customers, sellers and admins follow an order over server-sent events
//! and the WebSocket while the real order, payment, shop, cart and product services move it;
//! resuming after a disconnection; who may follow what; many clients; a slow one.

use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_tungstenite::tungstenite;

use crate::checkout::{customer, shop_with_product};
use crate::helpers::{Platform, PlatformOptions};

/// How long a test waits for one live message.
const WAIT: Duration = Duration::from_secs(15);

fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {value}"))
}

/// One server-sent event.
#[derive(Debug)]
struct Sse {
    event: String,
    id: String,
    data: Value,
}

/// Reads the events of an open `text/event-stream` response, skipping heartbeats.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    async fn open(platform: &Platform, order_id: &str, token: &str, last: Option<&str>) -> Self {
        let response = request(platform, order_id, token, last).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        Self {
            response,
            buffer: String::new(),
        }
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
                    continue; // a heartbeat comment
                }
                return Sse {
                    event: field("event"),
                    id: field("id"),
                    data: serde_json::from_str(&data).expect("event data is JSON"),
                };
            }
            let chunk = tokio::time::timeout(WAIT, self.response.chunk())
                .await
                .expect("an event in time")
                .expect("the stream reads")
                .expect("the stream is still open");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// Whether nothing but heartbeats arrives for a moment (what "no duplicate" looks like).
    async fn quiet(&mut self) -> bool {
        if self.buffer.contains("data:") {
            return false;
        }
        match tokio::time::timeout(Duration::from_millis(700), self.response.chunk()).await {
            Err(_) => true,
            Ok(Ok(Some(chunk))) => !String::from_utf8_lossy(&chunk).contains("data:"),
            Ok(_) => false,
        }
    }
}

async fn request(
    platform: &Platform,
    order_id: &str,
    token: &str,
    last: Option<&str>,
) -> reqwest::Response {
    let mut request = platform
        .http
        .get(format!(
            "{}/api/v1/orders/{order_id}/events",
            platform.address
        ))
        .bearer_auth(token);
    if let Some(last) = last {
        request = request.header("Last-Event-ID", last);
    }
    request.send().await.expect("request sent")
}

/// A WebSocket client of `/api/v1/ws`.
struct Socket(
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
);

impl Socket {
    async fn open(platform: &Platform, token: &str) -> Self {
        use tungstenite::client::IntoClientRequest as _;
        let url = format!("{}/api/v1/ws", platform.address.replacen("http", "ws", 1));
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("the WebSocket opens");
        Self(socket)
    }

    async fn send(&mut self, message: Value) {
        self.0
            .send(tungstenite::Message::Text(message.to_string().into()))
            .await
            .expect("sent");
    }

    async fn next(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(WAIT, self.0.next())
                .await
                .expect("a message in time")
                .expect("the socket is open")
                .expect("the socket reads");
            match message {
                tungstenite::Message::Text(text) => {
                    return serde_json::from_str(text.as_str()).expect("JSON messages");
                }
                tungstenite::Message::Close(frame) => panic!("closed: {frame:?}"),
                _ => continue,
            }
        }
    }
}

/// A customer with an address, a card and one of each product in the cart, who checks out:
/// (customer token, the checkout's answer).
async fn order(platform: &Platform, products: &[&str]) -> (String, Value) {
    let (first, rest) = products.split_first().expect("at least one product");
    let (token, address_id, method_id) = customer(platform, "4242 4242 4242 4242", first, 1).await;
    for product in rest {
        let (status, cart) = platform
            .send(
                Method::PUT,
                &format!("/api/v1/cart/items/{product}"),
                Some(json!({"quantity": 1})),
                Some(&token),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{cart}");
    }
    let key = uuid::Uuid::now_v7().to_string();
    let (status, answer) = platform
        .send_with(
            Method::POST,
            "/api/v1/checkout",
            Some(json!({"shipping_address_id": address_id, "payment_method_id": method_id})),
            Some(&token),
            &[("Idempotency-Key", &key)],
        )
        .await;
    assert!(
        status == StatusCode::CREATED || status == StatusCode::ACCEPTED,
        "{status} {answer}"
    );
    (token, answer)
}

/// The sub-order of `shop_id` in the checkout's order.
fn sub_order_of(answer: &Value, shop_id: &str) -> String {
    answer["order"]["sub_orders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["shop_id"] == shop_id)
        .map(|s| text(s, "id").to_owned())
        .unwrap_or_else(|| panic!("no sub-order of {shop_id} in {answer}"))
}

async fn ship(platform: &Platform, seller: &str, sub_order_id: &str, tracking: &str) {
    let (status, body) = platform
        .post(
            &format!("/api/v1/suborders/{sub_order_id}/ship"),
            json!({"carrier": "UPS", "tracking_number": tracking}),
            Some(seller),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn deliver(platform: &Platform, seller: &str, sub_order_id: &str) {
    let (status, body) = platform
        .post(
            &format!("/api/v1/suborders/{sub_order_id}/deliver"),
            json!({}),
            Some(seller),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Waits until the order is paid (its checkout may have answered 202), and answers it.
async fn paid(platform: &Platform, token: &str, order_id: &str) -> Value {
    for _ in 0..300 {
        let (_, order) = platform
            .get(&format!("/api/v1/orders/{order_id}"), Some(token))
            .await;
        if order["status"] == "paid" {
            return json!({ "order": order });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("order {order_id} was not paid");
}

async fn checkout_platform(configure: Box<dyn FnOnce(&mut gateway::Config) + Send>) -> Platform {
    Platform::spawn_with(PlatformOptions {
        checkout: true,
        configure,
        ..PlatformOptions::default()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_follows_their_order_from_payment_to_delivery() {
    // The payment takes a while, so the customer is watching before the order is paid.
    let platform = Platform::spawn_with(PlatformOptions {
        checkout: true,
        checkout_wait_ms: 50,
        payment_latency_ms: 1_500,
        ..PlatformOptions::default()
    })
    .await;
    let (seller, shop_id, lamp) = shop_with_product(&platform, "lamp", 1500, 100).await;
    let (token, answer) = order(&platform, &[&lamp]).await;
    let order_id = text(&answer["order"], "id").to_owned();

    let mut events = Events::open(&platform, &order_id, &token, None).await;
    let snapshot = events.next().await;
    assert_eq!(snapshot.event, "snapshot");
    assert_eq!(snapshot.data["type"], "snapshot");
    assert_eq!(snapshot.data["order_id"], order_id.as_str());
    assert_eq!(snapshot.data["id"], snapshot.id.as_str());
    let status = text(&snapshot.data, "status");
    assert!(status == "pending" || status == "paid", "{}", snapshot.data);
    if status == "pending" {
        let paid = events.next().await;
        assert_eq!(paid.event, "order.paid", "{paid:?}");
        assert_eq!(paid.data["status"], "paid");
        assert_eq!(paid.data["order_id"], order_id.as_str());
        assert!(paid.data["time"].is_string(), "{}", paid.data);
    }
    let sub_order_id = sub_order_of(&paid(&platform, &token, &order_id).await, &shop_id);

    ship(&platform, &seller, &sub_order_id, "1Z999AA10123456784").await;
    let shipped = events.next().await;
    assert_eq!(shipped.event, "suborder.shipped");
    assert_eq!(shipped.data["sub_order_id"], sub_order_id.as_str());
    assert_eq!(shipped.data["status"], "shipped");
    assert_eq!(shipped.data["order_status"], "shipped");
    assert_eq!(shipped.data["carrier"], "UPS");
    assert_eq!(shipped.data["tracking_number"], "1Z999AA10123456784");
    assert!(shipped.data["time"].is_string());
    assert_eq!(shipped.data["id"], shipped.id.as_str());
    // Nothing of the order beyond its status travels: no lines, no address.
    assert!(shipped.data.get("lines").is_none() && shipped.data.get("shipping_address").is_none());

    deliver(&platform, &seller, &sub_order_id).await;
    let delivered = events.next().await;
    assert_eq!(delivered.event, "suborder.delivered");
    assert_eq!(delivered.data["status"], "delivered");
    assert_eq!(delivered.data["order_status"], "delivered");
    assert_ne!(delivered.id, shipped.id);
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_reconnects_gets_exactly_what_it_missed() {
    let platform = checkout_platform(Box::new(|_| {})).await;
    let (seller_a, shop_a, lamp) = shop_with_product(&platform, "lamp", 1500, 100).await;
    let (seller_b, shop_b, vase) = shop_with_product(&platform, "vase", 1500, 100).await;
    let (token, answer) = order(&platform, &[&lamp, &vase]).await;
    let order_id = text(&answer["order"], "id").to_owned();
    let answer = paid(&platform, &token, &order_id).await;
    let (sub_a, sub_b) = (
        sub_order_of(&answer, &shop_a),
        sub_order_of(&answer, &shop_b),
    );

    let mut first = Events::open(&platform, &order_id, &token, None).await;
    assert_eq!(first.next().await.event, "snapshot");
    ship(&platform, &seller_a, &sub_a, "A1").await;
    let shipped_a = first.next().await;
    assert_eq!(shipped_a.event, "suborder.shipped");
    assert_eq!(shipped_a.data["sub_order_id"], sub_a.as_str());
    // The client goes away after its first event; two changes happen meanwhile.
    drop(first);
    deliver(&platform, &seller_a, &sub_a).await;
    ship(&platform, &seller_b, &sub_b, "B1").await;

    let mut resumed = Events::open(&platform, &order_id, &token, Some(&shipped_a.id)).await;
    let missed_1 = resumed.next().await;
    assert_eq!(missed_1.event, "suborder.delivered", "{missed_1:?}");
    assert_eq!(missed_1.data["sub_order_id"], sub_a.as_str());
    let missed_2 = resumed.next().await;
    assert_eq!(missed_2.event, "suborder.shipped", "{missed_2:?}");
    assert_eq!(missed_2.data["sub_order_id"], sub_b.as_str());
    assert!(resumed.quiet().await, "nothing is sent twice");

    // The WebSocket resumes from the same id the same way.
    let mut socket = Socket::open(&platform, &token).await;
    socket
        .send(json!({"type": "subscribe", "order_id": order_id, "since": shipped_a.id}))
        .await;
    let subscribed = socket.next().await;
    assert_eq!(subscribed["type"], "subscribed", "{subscribed}");
    let ws_1 = socket.next().await;
    assert_eq!(ws_1["event"], "suborder.delivered", "{ws_1}");
    assert_eq!(ws_1["id"], missed_1.id.as_str());
    let ws_2 = socket.next().await;
    assert_eq!(ws_2["event"], "suborder.shipped", "{ws_2}");
    assert_eq!(ws_2["id"], missed_2.id.as_str());

    // Then both go on live, the next event and nothing twice.
    deliver(&platform, &seller_b, &sub_b).await;
    let live = resumed.next().await;
    assert_eq!(live.event, "suborder.delivered");
    assert_eq!(live.data["sub_order_id"], sub_b.as_str());
    assert_eq!(live.data["order_status"], "delivered");
    let ws_live = socket.next().await;
    assert_eq!(ws_live["event"], "suborder.delivered", "{ws_live}");
    assert_eq!(ws_live["id"], live.id.as_str());

    // Resuming from the last id finds nothing more.
    let mut caught_up = Events::open(&platform, &order_id, &token, Some(&live.id)).await;
    assert!(caught_up.quiet().await);
    // A malformed id is refused before anything is streamed.
    let response = request(&platform, &order_id, &token, Some("yesterday")).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // The replays and the fan-out stayed within the gateway's NATS permissions.
    assert!(
        platform.nats_violations().is_empty(),
        "{:?}",
        platform.nats_violations()
    );
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_customer_the_sellers_and_admins_follow_an_order() {
    let platform = checkout_platform(Box::new(|_| {})).await;
    let (seller_a, shop_a, lamp) = shop_with_product(&platform, "lamp", 1500, 100).await;
    let (seller_b, shop_b, vase) = shop_with_product(&platform, "vase", 1500, 100).await;
    let (token, answer) = order(&platform, &[&lamp, &vase]).await;
    let order_id = text(&answer["order"], "id").to_owned();
    let answer = paid(&platform, &token, &order_id).await;
    let (sub_a, sub_b) = (
        sub_order_of(&answer, &shop_a),
        sub_order_of(&answer, &shop_b),
    );

    // Another customer, a seller of neither shop, nobody: like a missing order.
    let stranger = platform.token(&[]);
    let other_seller = platform.token(&[rpc::roles::SELLER]);
    for who in [&stranger, &other_seller] {
        let response = request(&platform, &order_id, who, None).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "not_found", "{body}");
    }
    let missing = uuid::Uuid::now_v7().to_string();
    let response = request(&platform, &missing, &token, None).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let anonymous = platform
        .http
        .get(format!(
            "{}/api/v1/orders/{order_id}/events",
            platform.address
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    // On the WebSocket the refusal is a message and the socket stays open.
    let mut socket = Socket::open(&platform, &stranger).await;
    socket
        .send(json!({"type": "subscribe", "order_id": order_id}))
        .await;
    let refused = socket.next().await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "not_found");
    assert_eq!(refused["order_id"], order_id.as_str());
    socket
        .send(json!({"type": "unsubscribe", "order_id": order_id}))
        .await;
    assert_eq!(socket.next().await["type"], "unsubscribed");

    // Seller A sees their sub-order only; an admin sees everything.
    let mut seller_view = Events::open(&platform, &order_id, &seller_a, None).await;
    let snapshot = seller_view.next().await;
    let subs = snapshot.data["sub_orders"].as_array().unwrap();
    assert_eq!(subs.len(), 1, "{}", snapshot.data);
    assert_eq!(subs[0]["id"], sub_a.as_str());
    let mut admin_view = Events::open(&platform, &order_id, &platform.admin_token(), None).await;
    assert_eq!(
        admin_view.next().await.data["sub_orders"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let mut admin_socket = Socket::open(&platform, &platform.admin_token()).await;
    admin_socket
        .send(json!({"type": "subscribe", "order_id": order_id}))
        .await;
    assert_eq!(admin_socket.next().await["type"], "subscribed");
    assert_eq!(admin_socket.next().await["type"], "snapshot");

    ship(&platform, &seller_b, &sub_b, "B1").await;
    ship(&platform, &seller_a, &sub_a, "A1").await;
    let seen = seller_view.next().await;
    assert_eq!(seen.data["sub_order_id"], sub_a.as_str(), "{seen:?}");
    assert_eq!(seen.data["tracking_number"], "A1");
    for _ in 0..2 {
        assert_eq!(admin_view.next().await.event, "suborder.shipped");
    }
    let first = admin_socket.next().await;
    let second = admin_socket.next().await;
    assert_eq!(first["sub_order_id"], sub_b.as_str());
    assert_eq!(second["sub_order_id"], sub_a.as_str());
    assert!(
        seller_view.quiet().await,
        "seller A never sees B's sub-order"
    );
    platform.stop().await;
}

/// Raises the soft limit of open files to the hard limit: a thousand clients and their
/// server ends need more than the usual 1024.
fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_clients_all_receive_the_event() {
    const CLIENTS: usize = 1_000;
    raise_open_files_limit();
    let platform = checkout_platform(Box::new(|config: &mut gateway::Config| {
        config.rate_limits = "default=100000/60".parse().unwrap();
    }))
    .await;
    let (seller, shop_id, lamp) = shop_with_product(&platform, "lamp", 1500, 100).await;
    let (token, answer) = order(&platform, &[&lamp]).await;
    let order_id = text(&answer["order"], "id").to_owned();
    let answer = paid(&platform, &token, &order_id).await;
    let sub_order_id = sub_order_of(&answer, &shop_id);

    let opened = futures::stream::iter(0..CLIENTS)
        .map(|_| async {
            let mut events = Events::open(&platform, &order_id, &token, None).await;
            assert_eq!(events.next().await.event, "snapshot");
            events
        })
        .buffer_unordered(100)
        .collect::<Vec<_>>()
        .await;
    assert_eq!(opened.len(), CLIENTS);

    ship(&platform, &seller, &sub_order_id, "1Z1000").await;
    let received = futures::stream::iter(opened)
        .map(|mut events| async move {
            let event = events.next().await;
            (event.event, event.data["tracking_number"].clone())
        })
        .buffer_unordered(CLIENTS)
        .collect::<Vec<_>>()
        .await;
    assert_eq!(received.len(), CLIENTS);
    for (event, tracking) in received {
        assert_eq!(event, "suborder.shipped");
        assert_eq!(tracking, "1Z1000");
    }
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_stop_reading_are_disconnected_and_the_others_carry_on() {
    const EVENTS: usize = 200;
    let platform = checkout_platform(Box::new(|config: &mut gateway::Config| {
        config.live_queue = 4;
    }))
    .await;
    let (_, _, lamp) = shop_with_product(&platform, "lamp", 1500, 100).await;
    let (token, answer) = order(&platform, &[&lamp]).await;
    let order_id = text(&answer["order"], "id").to_owned();
    paid(&platform, &token, &order_id).await;
    let _ = answer;

    // The slow client asks with a small receive buffer and then never reads.
    let addr = platform.address.trim_start_matches("http://").to_owned();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut slow = socket.connect(addr.parse().unwrap()).await.unwrap();
    slow.write_all(
        format!(
            "GET /api/v1/orders/{order_id}/events HTTP/1.1\r\nHost: {addr}\r\n\
             Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    // And a WebSocket client that subscribes, then never reads.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr.parse().unwrap()).await.unwrap();
    let request = {
        use tungstenite::client::IntoClientRequest as _;
        let mut request = format!("ws://{addr}/api/v1/ws")
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        request
    };
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    let (slow_socket, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .expect("the WebSocket opens");
    let mut slow_socket = Socket(slow_socket);
    slow_socket
        .send(json!({"type": "subscribe", "order_id": order_id}))
        .await;
    assert_eq!(slow_socket.next().await["type"], "subscribed");
    assert_eq!(slow_socket.next().await["type"], "snapshot");

    let mut fast = Events::open(&platform, &order_id, &token, None).await;
    assert_eq!(fast.next().await.event, "snapshot");

    // The fast client reads as they come, and says so: each event is published once the
    // fast client has the one before, so only the slow client falls behind.
    let (progress, mut read) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        for n in 0..EVENTS {
            let event = fast.next().await;
            assert_eq!(event.event, "order.paid");
            assert!(
                text(&event.data, "time").starts_with(&format!("{n:04}-")),
                "event {n} out of order"
            );
            let _ = progress.send(n);
        }
    });
    // Large events, faster than the slow client's buffers take them (published as the order
    // service's relay would: the order's subject on its stream).
    let js = async_nats::jetstream::new(platform.operator().await);
    let padding = "x".repeat(60_000);
    for n in 0..EVENTS {
        let payload = json!({"order": {"id": order_id, "status": "paid",
            "updated_at": format!("{n:04}-{padding}")}});
        js.publish(
            format!("events.order.{order_id}.paid"),
            payload.to_string().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
        assert_eq!(read.recv().await, Some(n), "the fast client keeps up");
    }
    // The fast client got every one, in order.
    reader.await.expect("the fast client received every event");
    // The slow one was cut: reading what reached it ends (no more heartbeats come).
    let mut sink = vec![0u8; 64 * 1024];
    let drained = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match slow.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(drained.is_ok(), "the slow client's connection was closed");
    // So was the slow WebSocket: what reached it, then a close or the end of the stream.
    let ended = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match slow_socket.0.next().await {
                Some(Ok(tungstenite::Message::Close(frame))) => break frame.map(|f| f.code),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break None,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the slow WebSocket was closed");
    if let Ok(Some(code)) = ended {
        assert_eq!(
            code,
            tungstenite::protocol::frame::coding::CloseCode::Policy
        );
    }
    assert!(
        platform.nats_violations().is_empty(),
        "{:?}",
        platform.nats_violations()
    );
    platform.stop().await;
}
