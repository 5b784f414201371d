//! Live order status: server-sent events at `GET /api/v1/orders/{id}/events` and a WebSocket
//! at `/api/v1/ws`, resumable, fanned out from one JetStream consumer per stream.
//!
//! - Fan-out ([`hub`]): one ordered consumer per stream (EVENTS_ORDER, EVENTS_SUBORDER) for
//!   the whole gateway routes each event by its order id to the bounded queues of the
//!   connections following that order. JetStream is read per connection only to replay.
//! - Cursor ([`Cursor`]): an event id is `<order stream seq>-<sub-order stream seq>`, meaning
//!   "every event of this order up to these two positions". It is the SSE id and the
//!   WebSocket message's `id`; `Last-Event-ID` (SSE) or `since` (WebSocket) resumes after it.
//! - Opening a subscription ([`open`]): the connection registers with the fan-out first (its
//!   queue buffers), reads the hub's positions, calls the contract's method (`WatchOrder`:
//!   the access check and the snapshot, with the caller's principal; an error ends it before
//!   anything is streamed), then either sends the snapshot (a new subscriber; its id is the
//!   positions) or replays from the cursor up to the positions with a short-lived ordered
//!   consumer filtered on the order's subjects. Live events above the positions follow.
//!   So nothing is missed and nothing is sent twice.
//! - Access: the method's reply says which sub-orders the caller sees; a seller's stream
//!   leaves out other shops' sub-order events.
//! - Slow clients: a full queue cuts the connection ([`conn`]); heartbeats (SSE comments, WS
//!   pings) keep idle ones open through proxies.
//!
//! This is the one place of the gateway that reads event payloads: the order events are
//! turned into small status messages (event, order, sub-order, status, time, carrier and
//! tracking number), never passed on whole (an order event carries every sub-order and the
//! shipping address, which a seller must not see).

pub mod conn;
pub mod hub;
pub mod sse;
pub mod ws;

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_nats::jetstream::{self, consumer};
use bytes::Bytes;
use futures::StreamExt as _;
use serde_json::{Map, Value, json};

use crate::error::ApiError;
pub use hub::Hub;

/// The event domain of the streaming route served live: the order's.
pub const DOMAIN: &str = "order";

/// The WebSocket route.
pub const WS_PATH: &str = "/api/v1/ws";

/// The number of streams an order's events are on.
pub const STREAMS: usize = 2;

/// The two streams of an order's events, in cursor order.
pub struct Streams;

impl Streams {
    pub const DOMAINS: [&'static str; STREAMS] = ["order", "suborder"];
    pub const NAMES: [&'static str; STREAMS] = ["EVENTS_ORDER", "EVENTS_SUBORDER"];

    /// Every subject of stream `i`: `events.<domain>.>`.
    pub fn subjects(i: usize) -> String {
        events::names::stream_subjects(Self::DOMAINS[i])
    }

    /// One order's subjects on stream `i`: `events.<domain>.<order id>.>`.
    fn order_subjects(i: usize, order_id: &str) -> Result<String, ApiError> {
        events::names::aggregate_subjects(Self::DOMAINS[i], order_id)
            .map_err(|error| ApiError::invalid_field("id", error.to_string()))
    }
}

/// The live connections' limits.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Events queued per connection before it counts as too slow and is cut.
    pub queue: usize,
    /// How often an idle connection gets a heartbeat (SSE comment, WebSocket ping).
    pub heartbeat: Duration,
    /// Orders one WebSocket may follow at once.
    pub max_subscriptions: usize,
}

/// How long a replay may take before the subscription fails (503).
const REPLAY_TIMEOUT: Duration = Duration::from_secs(10);
/// The most events one replay sends; an order has a handful.
const REPLAY_LIMIT: usize = 10_000;
/// How long a subscription waits for the fan-out to follow the streams after a start.
const ATTACH_WAIT: Duration = Duration::from_secs(5);

/// A position in both streams: "everything up to these sequences".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cursor(pub [u64; STREAMS]);

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.0[0], self.0[1])
    }
}

impl FromStr for Cursor {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let problem = || {
            format!(
                "{:?} is not an event id: expected <order seq>-<sub-order seq>",
                text.chars().take(64).collect::<String>()
            )
        };
        let (order, sub_order) = text.trim().split_once('-').ok_or_else(problem)?;
        let parse = |s: &str| {
            (!s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u64>().ok())
                .flatten()
        };
        match (parse(order), parse(sub_order)) {
            (Some(o), Some(s)) => Ok(Cursor([o, s])),
            _ => Err(problem()),
        }
    }
}

/// One order or sub-order event, as the fan-out routes it.
#[derive(Debug)]
pub struct LiveEvent {
    /// 0: EVENTS_ORDER, 1: EVENTS_SUBORDER.
    pub stream: usize,
    pub seq: u64,
    pub order_id: String,
    /// Set for a sub-order's event.
    pub sub_order_id: Option<String>,
    /// When JetStream stored it.
    pub published: SystemTime,
    pub name: String,
    /// The message's fields after `type` and `id`, as a JSON object's members.
    fields: String,
}

impl LiveEvent {
    /// Reads a JetStream message of stream `stream`: `events.<domain>.<order id>.<event>`.
    fn decode(stream: usize, message: &jetstream::Message) -> Option<Self> {
        let info = message.info().ok()?;
        let published = SystemTime::UNIX_EPOCH
            + Duration::from_nanos(u64::try_from(info.published.unix_timestamp_nanos()).ok()?);
        Self::from_parts(
            stream,
            info.stream_sequence,
            published,
            &message.subject,
            message.headers.as_ref(),
            &message.payload,
        )
    }

    fn from_parts(
        stream: usize,
        seq: u64,
        published: SystemTime,
        subject: &str,
        headers: Option<&async_nats::HeaderMap>,
        payload: &[u8],
    ) -> Option<Self> {
        let mut tokens = subject.split('.');
        let (_, domain, order_id) = (tokens.next()?, tokens.next()?, tokens.next()?);
        let name = headers
            .and_then(|h| h.get(events::headers::EVENT_TYPE))
            .map(|v| v.as_str().to_owned())
            .unwrap_or_else(|| format!("{domain}.{}", tokens.collect::<Vec<_>>().join(".")));
        let name: String = name.chars().filter(|c| !c.is_control()).collect();
        let body: Value = serde_json::from_slice(payload).ok()?;
        let mut fields = Map::new();
        fields.insert("event".into(), json!(name));
        fields.insert("order_id".into(), json!(order_id));
        let text = |v: &Value, f: &str| v.get(f).and_then(Value::as_str).map(str::to_owned);
        let mut sub_order_id = None;
        if let Some(sub) = body.get("sub_order").filter(|s| s.is_object()) {
            sub_order_id = text(sub, "id");
            fields.insert("sub_order_id".into(), json!(sub_order_id));
            fields.insert("shop_id".into(), json!(text(sub, "shop_id")));
            fields.insert("status".into(), json!(text(sub, "status")));
            if let Some(status) = text(&body, "order_status") {
                fields.insert("order_status".into(), json!(status));
            }
            let time = match name.as_str() {
                "suborder.shipped" => text(sub, "shipped_at"),
                "suborder.delivered" => text(sub, "delivered_at"),
                _ => None,
            }
            .or_else(|| text(sub, "updated_at"));
            fields.insert("time".into(), json!(time));
            for field in ["carrier", "tracking_number"] {
                if let Some(value) = text(sub, field).filter(|v| !v.is_empty()) {
                    fields.insert(field.into(), json!(value));
                }
            }
        } else if let Some(order) = body.get("order").filter(|o| o.is_object()) {
            fields.insert("status".into(), json!(text(order, "status")));
            fields.insert("time".into(), json!(text(order, "updated_at")));
            if let Some(code) = order.get("failure").and_then(|f| text(f, "code")) {
                fields.insert("failure_code".into(), json!(code));
            }
        } else {
            return None;
        }
        let fields = serde_json::to_string(&Value::Object(fields)).ok()?;
        // Strip the braces: the members go after "type" and "id".
        let fields = fields[1..fields.len() - 1].to_owned();
        Some(Self {
            stream,
            seq,
            order_id: order_id.to_owned(),
            sub_order_id,
            published,
            name,
            fields,
        })
    }

    /// The message a client receives, with its event id.
    pub fn render(&self, id: Cursor) -> String {
        format!(r#"{{"type":"event","id":"{id}",{}}}"#, self.fields)
    }
}

/// What one caller may see of one order, from the method's reply.
#[derive(Debug, Clone)]
pub struct Visibility {
    /// `None`: every sub-order.
    sub_orders: Option<HashSet<String>>,
}

impl Visibility {
    fn of(reply: &Value) -> Self {
        if reply.get("all_sub_orders").and_then(Value::as_bool) == Some(true) {
            return Self { sub_orders: None };
        }
        let ids = reply
            .get("sub_orders")
            .and_then(Value::as_array)
            .map(|subs| {
                subs.iter()
                    .filter_map(|s| s.get("id").and_then(Value::as_str).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            sub_orders: Some(ids),
        }
    }

    pub fn sees(&self, event: &LiveEvent) -> bool {
        match (&self.sub_orders, &event.sub_order_id) {
            (Some(visible), Some(id)) => visible.contains(id),
            _ => true,
        }
    }
}

/// One order followed by one connection: what it may see and how far it got.
pub struct Following {
    pub order_id: String,
    pub cursor: Cursor,
    visibility: Visibility,
    _registration: hub::Registration,
}

impl Following {
    /// The message for `event` when this follower is to receive it (its order, above its
    /// cursor, visible to it), advancing the cursor.
    pub fn accept(&mut self, event: &LiveEvent) -> Option<String> {
        if event.order_id != self.order_id || event.seq <= self.cursor.0[event.stream] {
            return None;
        }
        self.cursor.0[event.stream] = event.seq;
        self.visibility
            .sees(event)
            .then(|| event.render(self.cursor))
    }
}

/// The first messages of a subscription: the snapshot or the replayed events.
pub enum Opening {
    Snapshot { id: Cursor, data: String },
    Replay(Vec<(Cursor, String, String)>),
}

/// The method call that checks access and reads the snapshot.
pub type Check =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Bytes, ApiError>> + Send>>;

/// Opens a subscription to `order_id` for the connection behind `sink`: registers it with
/// the fan-out, runs `check` (the method call), then reads the snapshot or replays.
pub async fn open(
    hub: &Arc<Hub>,
    nats: &async_nats::Client,
    sink: &hub::Sink,
    order_id: &str,
    since: Option<Cursor>,
    check: Check,
) -> Result<(Following, Opening), ApiError> {
    // Nothing for an id that cannot be one (the method refuses it too, but only after the
    // registration).
    if uuid::Uuid::try_parse(order_id).is_err() {
        return Err(ApiError::invalid_field("id", "must be a UUID"));
    }
    if !hub.attached_within(ATTACH_WAIT).await {
        return Err(ApiError::service(
            rpc::ErrorCode::Unavailable,
            "live order status is starting; retry shortly",
        ));
    }
    let (registration, positions) = hub.register(order_id, sink);
    let reply = check.await?;
    let reply: Value = serde_json::from_slice(&reply)
        .map_err(|_| ApiError::service(rpc::ErrorCode::Internal, "internal error"))?;
    let visibility = Visibility::of(&reply);
    let mut following = Following {
        order_id: order_id.to_owned(),
        cursor: Cursor(positions),
        visibility,
        _registration: registration,
    };
    let opening = match since {
        None => {
            let mut data = match reply {
                Value::Object(map) => map,
                _ => Map::new(),
            };
            data.remove("all_sub_orders");
            let mut message = Map::new();
            message.insert("type".into(), json!("snapshot"));
            message.insert("id".into(), json!(following.cursor.to_string()));
            message.extend(data);
            Opening::Snapshot {
                id: following.cursor,
                data: Value::Object(message).to_string(),
            }
        }
        Some(since) => {
            let events = tokio::time::timeout(
                REPLAY_TIMEOUT,
                replay(nats, order_id, since, Cursor(positions)),
            )
            .await
            .map_err(|_| {
                ApiError::service(
                    rpc::ErrorCode::Unavailable,
                    "replaying the missed events took too long; retry",
                )
            })??;
            // Resumes from the client's cursor, or the positions when it is ahead of them
            // (a reconnection to a replica that is behind).
            following.cursor = Cursor([0, 1].map(|i| since.0[i].min(positions[i])));
            let mut out = Vec::new();
            for event in events {
                if let Some(message) = following.accept(&event) {
                    out.push((following.cursor, event.name.clone(), message));
                }
            }
            following.cursor = Cursor([0, 1].map(|i| since.0[i].max(positions[i])));
            Opening::Replay(out)
        }
    };
    Ok((following, opening))
}

/// The events of `order_id` after `since` up to `upto`, from both streams, in the order they
/// happened (by publication time across the two streams).
async fn replay(
    nats: &async_nats::Client,
    order_id: &str,
    since: Cursor,
    upto: Cursor,
) -> Result<Vec<LiveEvent>, ApiError> {
    let js = jetstream::new(nats.clone());
    let mut all = Vec::new();
    for stream in 0..STREAMS {
        if since.0[stream] >= upto.0[stream] {
            continue;
        }
        let unavailable = |error: &dyn fmt::Display| {
            tracing::warn!(stream = Streams::NAMES[stream], %error, "replaying live events failed");
            ApiError::service(
                rpc::ErrorCode::Unavailable,
                "the missed events cannot be read right now; retry",
            )
        };
        let handle = js
            .get_stream_no_info(Streams::NAMES[stream])
            .await
            .map_err(|e| unavailable(&e))?;
        let consumer = handle
            .create_consumer(consumer::push::OrderedConfig {
                deliver_subject: nats.new_inbox(),
                filter_subject: Streams::order_subjects(stream, order_id)?,
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: since.0[stream] + 1,
                },
                ..Default::default()
            })
            .await
            .map_err(|e| unavailable(&e))?;
        let pending = consumer.cached_info().num_pending;
        if pending == 0 {
            continue;
        }
        let mut messages = consumer.messages().await.map_err(|e| unavailable(&e))?;
        let mut read = 0u64;
        while read < pending {
            let Some(message) = messages.next().await else {
                break;
            };
            let message = message.map_err(|e| unavailable(&e))?;
            read += 1;
            let Some(event) = LiveEvent::decode(stream, &message) else {
                continue;
            };
            if event.seq > upto.0[stream] {
                break;
            }
            all.push(event);
            if all.len() > REPLAY_LIMIT {
                return Err(ApiError::service(
                    rpc::ErrorCode::FailedPrecondition,
                    "too many events to replay: subscribe again without an event id",
                ));
            }
        }
    }
    all.sort_by_key(|e| (e.published, e.stream, e.seq));
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_read_and_write() {
        let cursor: Cursor = "12-7".parse().unwrap();
        assert_eq!(cursor, Cursor([12, 7]));
        assert_eq!(cursor.to_string(), "12-7");
        for bad in [
            "",
            "12",
            "12-",
            "-7",
            "a-1",
            "1-2-3",
            "+1-2",
            "99999999999999999999999-1",
        ] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_shipped_sub_order_becomes_a_status_message() {
        let payload = json!({
            "sub_order": {"id": "s1", "order_id": "o1", "shop_id": "shop", "status": "shipped",
                "carrier": "UPS", "tracking_number": "1Z9", "shipped_at": "2026-01-01T00:00:00Z",
                "lines": [{"name": "Lamp"}]},
            "order_status": "shipped"
        });
        let event = LiveEvent::from_parts(
            1,
            5,
            SystemTime::now(),
            "events.suborder.o1.shipped",
            None,
            payload.to_string().as_bytes(),
        )
        .unwrap();
        assert_eq!(event.sub_order_id.as_deref(), Some("s1"));
        let message: Value = serde_json::from_str(&event.render(Cursor([3, 5]))).unwrap();
        assert_eq!(message["id"], "3-5");
        assert_eq!(message["event"], "suborder.shipped");
        assert_eq!(message["status"], "shipped");
        assert_eq!(message["carrier"], "UPS");
        assert_eq!(message["tracking_number"], "1Z9");
        assert_eq!(message["time"], "2026-01-01T00:00:00Z");
        assert!(message.get("lines").is_none(), "{message}");
    }

    fn event(stream: usize, seq: u64, order: &str, sub_order: Option<&str>) -> LiveEvent {
        let payload = match sub_order {
            Some(id) => json!({"sub_order": {"id": id, "status": "shipped"}}),
            None => json!({"order": {"id": order, "status": "paid"}}),
        };
        let subject = match sub_order {
            Some(_) => format!("events.suborder.{order}.shipped"),
            None => format!("events.order.{order}.paid"),
        };
        LiveEvent::from_parts(
            stream,
            seq,
            SystemTime::now(),
            &subject,
            None,
            payload.to_string().as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn a_follower_gets_its_order_above_its_cursor_and_only_what_it_may_see() {
        let hub = Hub::new(10);
        let (queue, _events) = tokio::sync::mpsc::channel(4);
        let sink = hub::Sink::new(queue, Arc::default(), Arc::default());
        let (registration, positions) = hub.register("o1", &sink);
        assert_eq!(positions, [0, 0]);
        let mut seller = Following {
            order_id: "o1".into(),
            cursor: Cursor([10, 20]),
            visibility: Visibility::of(&json!({"sub_orders": [{"id": "mine"}]})),
            _registration: registration,
        };
        // At or below the cursor, or another order's: nothing.
        assert!(seller.accept(&event(0, 10, "o1", None)).is_none());
        assert!(seller.accept(&event(1, 20, "o1", Some("mine"))).is_none());
        assert!(seller.accept(&event(0, 11, "o2", None)).is_none());
        assert_eq!(seller.cursor, Cursor([10, 20]));
        // Another shop's sub-order moves the cursor but is not shown.
        assert!(seller.accept(&event(1, 21, "o1", Some("theirs"))).is_none());
        assert_eq!(seller.cursor, Cursor([10, 21]));
        // The order's own events and the seller's sub-order are, each with the new cursor.
        let message: Value =
            serde_json::from_str(&seller.accept(&event(0, 12, "o1", None)).unwrap()).unwrap();
        assert_eq!(message["id"], "12-21");
        let message: Value =
            serde_json::from_str(&seller.accept(&event(1, 25, "o1", Some("mine"))).unwrap())
                .unwrap();
        assert_eq!(message["id"], "12-25");
        assert_eq!(message["sub_order_id"], "mine");
        // The customer and admins see every sub-order.
        let everyone = Visibility::of(&json!({"all_sub_orders": true, "sub_orders": []}));
        assert!(everyone.sees(&event(1, 30, "o1", Some("theirs"))));
    }

    #[test]
    fn an_order_event_carries_only_its_status() {
        let payload = json!({"order": {"id": "o1", "status": "paid", "updated_at": "t",
            "shipping_address": {"line1": "1 Main St"}, "sub_orders": [{"id": "s2"}]}});
        let event = LiveEvent::from_parts(
            0,
            9,
            SystemTime::now(),
            "events.order.o1.paid",
            None,
            payload.to_string().as_bytes(),
        )
        .unwrap();
        let text = event.render(Cursor([9, 0]));
        assert!(!text.contains("Main St") && !text.contains("s2"), "{text}");
        let message: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(message["event"], "order.paid");
        assert_eq!(message["status"], "paid");
    }
}
