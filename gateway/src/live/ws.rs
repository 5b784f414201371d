//! `/api/v1/ws`: live order status over one WebSocket, for several orders at once.
//!
//! The upgrade needs a signed-in user (the `Authorization` bearer token, like every USER
//! route). Then the client sends JSON text messages:
//! - `{"type":"subscribe","order_id":"…","since":"<event id>"}` (`since` optional): answered
//!   `{"type":"subscribed","order_id":"…"}`, then the snapshot (no `since`) or the missed
//!   events, then each event live; every message names its `order_id`.
//! - `{"type":"unsubscribe","order_id":"…"}`: answered `{"type":"unsubscribed",…}`.
//!
//! A refused subscription (an order the caller may not see answers `not_found` like a missing
//! one) is an `{"type":"error","order_id":…,"code":…,"message":…}` message: the socket stays
//! open. The server pings every heartbeat interval; a client that does not keep up with its
//! events is closed with 1008 (policy violation; dropped when even the close frame cannot go
//! out within a second); at shutdown the socket is closed with 1001.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

use super::conn::Peer;
use super::hub::Sink;
use super::{Cursor, Following, Opening};
use crate::error::ApiError;
use crate::forward::Forwarder;

/// The largest message a client may send.
const MAX_CLIENT_MESSAGE: usize = 4 * 1024;
/// The read buffer of a socket, and the size past which its writes go out.
const SOCKET_BUFFER: usize = 4 * 1024;
/// The most a socket buffers for a client that does not read (a slow client is cut before).
const MAX_WRITE_BUFFER: usize = 1024 * 1024;
/// How long a close frame may take to go out before the socket is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    Subscribe {
        order_id: String,
        #[serde(default)]
        since: Option<String>,
    },
    Unsubscribe {
        order_id: String,
    },
}

/// The upgrade: the caller is authenticated and counted before the socket opens.
pub async fn upgrade(
    State(forwarder): State<Arc<Forwarder>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let principal = match forwarder
        .authenticator
        .authorize(&headers, rpc::Access::User)
        .await
    {
        Ok(Some(principal)) => principal,
        Ok(None) => return ApiError::unauthenticated("sign in to follow orders").into_response(),
        Err(refused) => return refused.into_response(),
    };
    let decision = forwarder
        .rate_limiter
        .check("default", &format!("user:{}", principal.user_id))
        .await;
    if let Some(denied) = decision.to_error() {
        let mut response = denied.into_response();
        decision.apply_headers(response.headers_mut());
        return response;
    }
    let Some(slot) = forwarder.live.admit() else {
        return ApiError::service(
            rpc::ErrorCode::Unavailable,
            "this gateway holds as many live connections as it may; retry shortly",
        )
        .into_response();
    };
    let peer_addr = peer.addr;
    upgrade
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        // The library's defaults (128 KiB each, the read buffer allocated up front) would
        // cost a gigabyte for 10,000 idle sockets; clients send small messages, and every
        // message out is flushed at once.
        .read_buffer_size(SOCKET_BUFFER)
        .write_buffer_size(SOCKET_BUFFER)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .on_upgrade(move |socket| async move {
            let _slot = slot;
            Session {
                forwarder,
                principal,
                client_ip: peer_addr.ip().to_canonical(),
                following: HashMap::new(),
            }
            .run(socket)
            .await
        })
}

struct Session {
    forwarder: Arc<Forwarder>,
    principal: rpc::Principal,
    client_ip: std::net::IpAddr,
    following: HashMap<String, Following>,
}

enum End {
    ClientGone,
    Slow,
    Shutdown,
}

impl Session {
    async fn run(mut self, mut socket: WebSocket) {
        let settings = self.forwarder.live_settings.clone();
        let (queue, mut events) = mpsc::channel(settings.queue.max(1));
        let slow = Arc::new(AtomicBool::new(false));
        // An overflow cuts this, not the socket: the session closes it with 1008 itself.
        let overflow = Arc::new(super::conn::Cut::default());
        let sink = Sink::new(queue, overflow.clone(), slow.clone());
        let mut heartbeat = tokio::time::interval(settings.heartbeat);
        heartbeat.tick().await;
        let closed = self.forwarder.streams_end.closed();
        tokio::pin!(closed);
        let end = loop {
            tokio::select! {
                incoming = socket.recv() => {
                    let text = match incoming {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break End::ClientGone,
                        Some(Ok(Message::Binary(_))) => {
                            let error = json!({"type": "error", "code": "invalid_argument",
                                "message": "messages are JSON text"});
                            if send(&mut socket, error.to_string()).await.is_err() {
                                break End::ClientGone;
                            }
                            continue;
                        }
                        // Pings are answered by the library; pongs need nothing.
                        Some(Ok(_)) => continue,
                    };
                    let answers = self.handle(&sink, text.as_str()).await;
                    let mut gone = false;
                    for answer in answers {
                        if send(&mut socket, answer).await.is_err() {
                            gone = true;
                            break;
                        }
                    }
                    if gone {
                        break End::ClientGone;
                    }
                }
                event = events.recv() => {
                    let Some(event) = event else { break End::ClientGone };
                    let Some(following) = self.following.get_mut(&event.order_id) else {
                        continue;
                    };
                    if let Some(message) = following.accept(&event) {
                        // A client that stops reading blocks this send; its queue fills and
                        // the hub signals the overflow, which ends the wait.
                        tokio::select! {
                            sent = send(&mut socket, message) => {
                                if sent.is_err() {
                                    break End::ClientGone;
                                }
                            }
                            () = overflow.cut_off() => break End::Slow,
                        }
                    }
                }
                _ = heartbeat.tick() => {
                    if socket.send(Message::Ping(Default::default())).await.is_err() {
                        break End::ClientGone;
                    }
                }
                () = &mut closed => break End::Shutdown,
                () = overflow.cut_off() => break End::Slow,
            }
        };
        let (code, reason) = match end {
            End::ClientGone => return,
            End::Slow => (close_code::POLICY, "too slow to keep up with its events"),
            End::Shutdown => (close_code::AWAY, "the gateway is shutting down"),
        };
        let frame = Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        }));
        let _ = tokio::time::timeout(CLOSE_GRACE, socket.send(frame)).await;
    }

    /// Answers one client message.
    async fn handle(&mut self, sink: &Sink, text: &str) -> Vec<String> {
        let message: ClientMessage = match serde_json::from_str(text) {
            Ok(message) => message,
            Err(error) => {
                return vec![
                    json!({"type": "error", "code": "invalid_argument",
                        "message": format!("not a subscribe or unsubscribe message: {error}")})
                    .to_string(),
                ];
            }
        };
        match message {
            ClientMessage::Unsubscribe { order_id } => {
                self.following.remove(&order_id);
                vec![json!({"type": "unsubscribed", "order_id": order_id}).to_string()]
            }
            ClientMessage::Subscribe { order_id, since } => {
                match self.subscribe(sink, &order_id, since.as_deref()).await {
                    Ok(messages) => messages,
                    Err(error) => vec![
                        json!({"type": "error", "order_id": order_id,
                            "code": error.code().as_str(), "message": error.message()})
                        .to_string(),
                    ],
                }
            }
        }
    }

    async fn subscribe(
        &mut self,
        sink: &Sink,
        order_id: &str,
        since: Option<&str>,
    ) -> Result<Vec<String>, ApiError> {
        // Each subscription is a method call: it spends a token like a request.
        let decision = self
            .forwarder
            .rate_limiter
            .check("default", &format!("user:{}", self.principal.user_id))
            .await;
        if let Some(denied) = decision.to_error() {
            return Err(denied);
        }
        let limit = self.forwarder.live_settings.max_subscriptions;
        if order_id.len() > 64 {
            return Err(ApiError::invalid_field("order_id", "must be a UUID"));
        }
        if self.following.contains_key(order_id) {
            return Err(ApiError::service(
                rpc::ErrorCode::Conflict,
                "this socket follows that order already",
            ));
        }
        if self.following.len() >= limit {
            return Err(ApiError::service(
                rpc::ErrorCode::FailedPrecondition,
                format!("a socket follows at most {limit} orders; unsubscribe from one first"),
            ));
        }
        let since = match since.map(str::trim).filter(|s| !s.is_empty()) {
            Some(text) => Some(
                text.parse::<Cursor>()
                    .map_err(|problem| ApiError::invalid_field("since", problem))?,
            ),
            None => None,
        };
        let check = self
            .forwarder
            .watch_check(self.principal.clone(), self.client_ip, order_id)?;
        let (following, opening) = super::open(
            &self.forwarder.live,
            self.forwarder.rpc.nats(),
            sink,
            order_id,
            since,
            check,
        )
        .await?;
        self.following.insert(order_id.to_owned(), following);
        let mut out = vec![json!({"type": "subscribed", "order_id": order_id}).to_string()];
        match opening {
            Opening::Snapshot { data, .. } => out.push(data),
            Opening::Replay(events) => out.extend(events.into_iter().map(|(_, _, data)| data)),
        }
        Ok(out)
    }
}

async fn send(socket: &mut WebSocket, text: String) -> Result<(), axum::Error> {
    socket.send(Message::Text(text.into())).await
}
