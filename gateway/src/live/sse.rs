//! `GET /api/v1/orders/{id}/events`: one order's live status as server-sent events.
//!
//! The first event is `snapshot` (a new subscriber) or the replayed events (a client that
//! sent `Last-Event-ID`), then each event as it happens, each named by its event
//! (`order.paid`, `suborder.shipped`, ...) with its cursor as the SSE id. The stream ends when
//! the client goes away, when its queue overflows (the connection is cut), or when the
//! gateway shuts down.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use tokio::sync::mpsc;

use super::conn::Cut;
use super::{Check, Cursor, Hub, Opening, Settings};
use crate::error::ApiError;
use crate::stream::Closer;

/// The cursor a reconnecting client sent, if any.
pub fn last_event_id(headers: &HeaderMap) -> Result<Option<Cursor>, ApiError> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::invalid_argument("Last-Event-ID is not an event id"))?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|problem| ApiError::invalid_argument(format!("Last-Event-ID: {problem}")))
}

/// Answers the route for `order_id`: the access check and snapshot (`check`), then the
/// stream. `cut` disconnects this client when it cannot keep up.
#[allow(clippy::too_many_arguments)]
pub async fn respond(
    hub: &Arc<Hub>,
    nats: &async_nats::Client,
    settings: &Settings,
    closer: &Closer,
    cut: Arc<Cut>,
    order_id: &str,
    since: Option<Cursor>,
    check: Check,
) -> Result<Response, ApiError> {
    let Some(slot) = hub.admit() else {
        return Err(ApiError::service(
            rpc::ErrorCode::Unavailable,
            "this gateway holds as many live connections as it may; retry shortly",
        ));
    };
    let (queue, events) = mpsc::channel(settings.queue.max(1));
    let slow = Arc::new(AtomicBool::new(false));
    let sink = super::hub::Sink::new(queue, cut.clone(), slow);
    let (following, opening) = super::open(hub, nats, &sink, order_id, since, check).await?;
    drop(sink);
    let first: Vec<Event> = match opening {
        Opening::Snapshot { id, data } => vec![
            Event::default()
                .event("snapshot")
                .id(id.to_string())
                .data(data),
        ],
        Opening::Replay(replayed) => replayed
            .into_iter()
            .map(|(id, name, data)| Event::default().event(name).id(id.to_string()).data(data))
            .collect(),
    };
    // The slot is held by the stream: the connection counts until the stream is dropped.
    let live = futures::stream::unfold(
        (following, events, slot),
        |(mut following, mut events, slot)| async move {
            loop {
                let event = events.recv().await?;
                if let Some(data) = following.accept(&event) {
                    let sse = Event::default()
                        .event(event.name.clone())
                        .id(following.cursor.to_string())
                        .data(data);
                    return Some((sse, (following, events, slot)));
                }
            }
        },
    );
    // A slow client's connection is cut (its socket fails), which ends this stream too.
    let stream = futures::stream::iter(first)
        .chain(live)
        .map(Ok::<_, Infallible>)
        .take_until(closer.closed());
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(settings.heartbeat))
        .into_response())
}
