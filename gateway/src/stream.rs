//! Streaming routes: server-sent events of one aggregate's domain events.
//!
//! A route whose contract declares a stream (`api::Stream`) is answered in three steps: the
//! gateway subscribes to the aggregate's events (`events::names::aggregate_subjects`), then
//! calls the method like any other route (its reply is the `snapshot` event, and its access
//! rules and errors decide whether anything is streamed at all), then sends each event as it
//! is published, until the client goes away. Subscribing before the call means no event
//! published after the snapshot was read is missed; one published just before may arrive
//! after a snapshot that already shows it, so clients apply events idempotently (each carries
//! its event id as the SSE id).
//!
//! The order's route is served by [`crate::live`] instead (one fan-out consumer per stream,
//! resumable with `Last-Event-ID`, access-filtered status messages). This module still serves
//! the product's: it does not resume from `Last-Event-ID` or fan out one subscription to many
//! clients; each connection holds one core NATS subscription, and a client too slow to read
//! loses events when the subscription's buffer overflows.

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt as _;

use crate::error::ApiError;

/// How often an idle stream sends a comment, so proxies keep the connection open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Open streams, for the live-connections gauge.
const OPEN_STREAMS: &str = "gateway_streams_open";

/// The aggregate's events, subscribed to before the snapshot is read.
pub struct Subscription {
    subscriber: async_nats::Subscriber,
}

/// Subscribes to the events of the aggregate the request names.
pub async fn subscribe(
    nats: &async_nats::Client,
    stream: &api::Stream,
    path_params: &[(String, String)],
) -> Result<Subscription, ApiError> {
    let aggregate_id = path_params
        .iter()
        .find(|(name, _)| name == stream.key)
        .map(|(_, value)| value.as_str())
        .unwrap_or_default();
    let subject = events::names::aggregate_subjects(stream.domain, aggregate_id)
        .map_err(|error| ApiError::invalid_field(stream.key, error.to_string()))?;
    let subscriber = nats.subscribe(subject).await.map_err(|error| {
        ApiError::service(
            rpc::ErrorCode::Unavailable,
            format!("subscribing to the event stream failed: {error}"),
        )
    })?;
    Ok(Subscription { subscriber })
}

/// Ends every open stream at once, when the gateway shuts down.
#[derive(Clone)]
pub struct Closer(tokio::sync::watch::Sender<bool>);

impl Closer {
    pub fn new() -> Self {
        Self(tokio::sync::watch::Sender::new(false))
    }

    pub fn close(&self) {
        self.0.send_replace(true);
    }

    /// Completes when the streams are to end.
    pub(crate) fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut closed = self.0.subscribe();
        async move {
            // An error means the sender is gone: the gateway is gone too.
            let _ = closed.wait_for(|closed| *closed).await;
        }
    }
}

impl Default for Closer {
    fn default() -> Self {
        Self::new()
    }
}

impl Subscription {
    /// The SSE response: the method's reply as `snapshot`, then each event, until the client
    /// goes away or the gateway shuts down.
    pub fn respond(self, snapshot: Bytes, closer: &Closer) -> Response {
        let open = OpenStream::new();
        let first = Event::default()
            .event("snapshot")
            .data(String::from_utf8_lossy(&snapshot));
        let events = self.subscriber.map(move |message| {
            // Held by the stream, so the gauge falls when the client goes away.
            let _open = &open;
            Ok::<_, Infallible>(event(&message))
        });
        let stream = futures::stream::once(async move { Ok(first) })
            .chain(events)
            .take_until(closer.closed());
        Sse::new(stream)
            .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
            .into_response()
    }
}

/// One domain event as an SSE event: named by its type, its event id as the SSE id, its
/// payload as data, untouched. (axum panics on a control character in an SSE id or event
/// name, so the headers lose theirs.)
fn event(message: &async_nats::Message) -> Event {
    let header = |name: &str| {
        message.headers.as_ref().and_then(|h| h.get(name)).map(|v| {
            v.as_str()
                .chars()
                .filter(|c| !c.is_control())
                .collect::<String>()
        })
    };
    let mut event = Event::default().data(String::from_utf8_lossy(&message.payload));
    if let Some(kind) = header(events::headers::EVENT_TYPE) {
        event = event.event(kind);
    }
    if let Some(id) = header(events::headers::EVENT_ID) {
        event = event.id(id);
    }
    event
}

/// Counts an open stream while it lives.
struct OpenStream;

impl OpenStream {
    fn new() -> Self {
        metrics::gauge!(OPEN_STREAMS).increment(1.0);
        OpenStream
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        metrics::gauge!(OPEN_STREAMS).decrement(1.0);
    }
}
