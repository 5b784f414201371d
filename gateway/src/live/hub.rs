//! The fan-out: one ordered JetStream consumer per order event stream for the whole gateway,
//! routing each event by its order id to the connections following that order.
//!
//! Each stream's consumer starts at the stream's end (the next sequence) and delivers every
//! event in stream order, each with its stream sequence. The hub keeps, per stream, the
//! sequence of the last event it routed (its *position*). A connection registers its queue
//! under an order id and reads the positions right after: every event with a greater sequence
//! reaches its queue, and everything up to the positions is in the stream for a replay (see
//! [`Hub::register`] for why nothing falls between).
//!
//! A queue is bounded; an event that finds it full disconnects that client (its [`Cut`] is
//! cut) instead of waiting for it or buffering more.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use async_nats::jetstream::{self, consumer};
use dashmap::DashMap;
use futures::StreamExt as _;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::conn::Cut;
use super::{LiveEvent, STREAMS, Streams};

/// Open live connections (SSE and WebSocket).
pub const OPEN_CONNECTIONS: &str = "gateway_live_connections";
/// Clients disconnected because their queue was full.
pub const SLOW_CLIENTS: &str = "gateway_live_slow_clients_dropped_total";
/// From an event's publication (its JetStream timestamp) to the moment the hub routed it.
pub const FANOUT_LAG: &str = "gateway_live_fanout_lag_seconds";
/// Events the hub routed, by stream.
pub const EVENTS_ROUTED: &str = "gateway_live_events_total";

/// How long the hub waits between attempts to attach to a stream that does not exist yet
/// (its producer creates it when it starts).
const ATTACH_RETRY: Duration = Duration::from_secs(2);

/// Where one connection's events go.
pub struct Sink {
    id: u64,
    queue: mpsc::Sender<Arc<LiveEvent>>,
    cut: Arc<Cut>,
    /// Set when its queue overflowed; the connection ends.
    slow: Arc<AtomicBool>,
}

impl Sink {
    pub fn new(queue: mpsc::Sender<Arc<LiveEvent>>, cut: Arc<Cut>, slow: Arc<AtomicBool>) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            queue,
            cut,
            slow,
        }
    }

    fn share(&self) -> Sink {
        Sink {
            id: self.id,
            queue: self.queue.clone(),
            cut: self.cut.clone(),
            slow: self.slow.clone(),
        }
    }
}

/// The gateway's live fan-out.
pub struct Hub {
    routes: DashMap<String, Vec<Sink>>,
    positions: [AtomicU64; STREAMS],
    attached: [AtomicBool; STREAMS],
    open: AtomicUsize,
    pub max_connections: usize,
}

/// A connection counted against the cap while it lives.
pub struct Slot(Arc<Hub>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
        metrics::gauge!(OPEN_CONNECTIONS).decrement(1.0);
    }
}

/// A connection's registration under one order id; unregisters when dropped.
pub struct Registration {
    hub: Arc<Hub>,
    order_id: String,
    sink_id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let id = self.sink_id;
        if let Some(mut sinks) = self.hub.routes.get_mut(&self.order_id) {
            sinks.retain(|s| s.id != id);
        }
        self.hub
            .routes
            .remove_if(&self.order_id, |_, sinks| sinks.is_empty());
    }
}

impl Hub {
    pub fn new(max_connections: usize) -> Arc<Self> {
        // Registered at zero, so dashboards read 0 rather than no data before the first one.
        metrics::gauge!(OPEN_CONNECTIONS).increment(0.0);
        metrics::counter!(SLOW_CLIENTS).increment(0);
        Arc::new(Self {
            routes: DashMap::new(),
            positions: Default::default(),
            attached: Default::default(),
            open: AtomicUsize::new(0),
            max_connections,
        })
    }

    /// Counts a new connection, or refuses it past the cap.
    pub fn admit(self: &Arc<Self>) -> Option<Slot> {
        let previous = self.open.fetch_add(1, Ordering::SeqCst);
        if previous >= self.max_connections {
            self.open.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        metrics::gauge!(OPEN_CONNECTIONS).increment(1.0);
        Some(Slot(self.clone()))
    }

    /// Whether both streams are followed, so positions mean something.
    pub fn is_attached(&self) -> bool {
        self.attached.iter().all(|a| a.load(Ordering::SeqCst))
    }

    /// Waits (a bounded time) until the hub follows both streams.
    pub async fn attached_within(&self, wait: Duration) -> bool {
        let started = std::time::Instant::now();
        while !self.is_attached() {
            if started.elapsed() > wait {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        true
    }

    /// Registers `sink` for the events of `order_id` and answers the positions: every event
    /// with a greater sequence will reach the sink.
    ///
    /// Why nothing falls between: the router stores an event's sequence as its position
    /// *before* it looks the order up. If the lookup came before this insertion (the event
    /// missed the sink), the store came before it too, so the positions read after the
    /// insertion include that event's sequence: it is in the replay range. An event whose
    /// position was not yet stored when they were read is looked up after the insertion, and
    /// reaches the sink. (The sink may also receive events at or below the positions; the
    /// connection drops those.)
    pub fn register(
        self: &Arc<Self>,
        order_id: &str,
        sink: &Sink,
    ) -> (Registration, [u64; STREAMS]) {
        self.routes
            .entry(order_id.to_owned())
            .or_default()
            .push(sink.share());
        let positions = [0, 1].map(|i| self.positions[i].load(Ordering::SeqCst));
        (
            Registration {
                hub: self.clone(),
                order_id: order_id.to_owned(),
                sink_id: sink.id,
            },
            positions,
        )
    }

    /// Sends one event to the connections following its order.
    fn route(&self, event: Arc<LiveEvent>) {
        let stream = event.stream;
        // Only forward: a consumer recreated from an older sequence sends some again.
        if self.positions[stream].load(Ordering::SeqCst) >= event.seq {
            return;
        }
        self.positions[stream].store(event.seq, Ordering::SeqCst);
        metrics::counter!(EVENTS_ROUTED, "stream" => Streams::NAMES[stream]).increment(1);
        if let Ok(lag) = SystemTime::now().duration_since(event.published) {
            metrics::histogram!(FANOUT_LAG).record(lag.as_secs_f64());
        }
        let Some(sinks) = self.routes.get(&event.order_id) else {
            return;
        };
        for sink in sinks.iter() {
            match sink.queue.try_send(event.clone()) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    if !sink.slow.swap(true, Ordering::SeqCst) {
                        metrics::counter!(SLOW_CLIENTS).increment(1);
                        tracing::info!(order_id = %event.order_id, "a live client too slow to read was disconnected");
                    }
                    sink.cut.cut();
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
    }

    /// Starts following both streams; the tasks run until the gateway stops.
    pub fn start(self: &Arc<Self>, nats: async_nats::Client) -> Vec<JoinHandle<()>> {
        (0..STREAMS)
            .map(|stream| {
                let hub = self.clone();
                let nats = nats.clone();
                tokio::spawn(async move { hub.follow(nats, stream).await })
            })
            .collect()
    }

    async fn follow(self: Arc<Self>, nats: async_nats::Client, stream: usize) {
        let js = jetstream::new(nats.clone());
        let name = Streams::NAMES[stream];
        let mut warned = false;
        loop {
            match self.attach(&js, &nats, stream).await {
                Ok(mut messages) => {
                    self.attached[stream].store(true, Ordering::SeqCst);
                    tracing::info!(
                        stream = name,
                        position = self.positions[stream].load(Ordering::SeqCst),
                        "following the stream for live clients"
                    );
                    while let Some(message) = messages.next().await {
                        match message {
                            Ok(message) => match LiveEvent::decode(stream, &message) {
                                Some(event) => self.route(Arc::new(event)),
                                None => tracing::warn!(
                                    stream = name,
                                    subject = %message.subject,
                                    "an event the live fan-out cannot read was skipped"
                                ),
                            },
                            // The ordered consumer recreates itself from where it was.
                            Err(error) => {
                                tracing::debug!(stream = name, %error, "live fan-out consumer")
                            }
                        }
                    }
                    tracing::warn!(
                        stream = name,
                        "the live fan-out consumer ended; following again"
                    );
                }
                Err(error) => {
                    if warned {
                        tracing::debug!(stream = name, %error, "the stream is not followable yet");
                    } else {
                        tracing::info!(stream = name, %error, "the stream is not followable yet; retrying");
                        warned = true;
                    }
                }
            }
            tokio::time::sleep(ATTACH_RETRY).await;
        }
    }

    /// An ordered push consumer from the position on (from the stream's end the first time).
    async fn attach(
        &self,
        js: &jetstream::Context,
        nats: &async_nats::Client,
        stream: usize,
    ) -> anyhow::Result<consumer::push::Ordered> {
        let handle = js.get_stream(Streams::NAMES[stream]).await?;
        let last = handle.cached_info().state.last_sequence;
        let position = &self.positions[stream];
        if !self.attached[stream].load(Ordering::SeqCst) {
            position.fetch_max(last, Ordering::SeqCst);
        }
        let start = position.load(Ordering::SeqCst) + 1;
        let consumer = handle
            .create_consumer(consumer::push::OrderedConfig {
                deliver_subject: nats.new_inbox(),
                filter_subject: Streams::subjects(stream),
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: start,
                },
                ..Default::default()
            })
            .await?;
        Ok(consumer.messages().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paid(seq: u64, order: &str) -> Arc<LiveEvent> {
        let payload = serde_json::json!({"order": {"id": order, "status": "paid"}});
        Arc::new(
            LiveEvent::from_parts(
                0,
                seq,
                SystemTime::now(),
                &format!("events.order.{order}.paid"),
                None,
                payload.to_string().as_bytes(),
            )
            .unwrap(),
        )
    }

    #[test]
    fn events_reach_their_orders_followers_and_a_full_queue_cuts_its_connection() {
        let hub = Hub::new(10);
        let (queue, mut events) = mpsc::channel(2);
        let cut = Arc::new(Cut::default());
        let slow = Arc::new(AtomicBool::new(false));
        let sink = Sink::new(queue, cut.clone(), slow.clone());
        let (registration, positions) = hub.register("o1", &sink);
        assert_eq!(positions, [0, 0]);

        hub.route(paid(1, "o2"));
        hub.route(paid(2, "o1"));
        assert_eq!(events.try_recv().unwrap().seq, 2, "only its order's");
        assert!(events.try_recv().is_err());
        // The positions move with every event routed, followed or not.
        assert_eq!(hub.register("o3", &sink).1, [2, 0]);
        // An event again (a recreated consumer) is not routed twice.
        hub.route(paid(2, "o1"));
        assert!(events.try_recv().is_err());

        hub.route(paid(3, "o1"));
        hub.route(paid(4, "o1"));
        assert!(!cut.is_cut());
        hub.route(paid(5, "o1"));
        assert!(cut.is_cut(), "the third event found the queue full");
        assert!(slow.load(Ordering::SeqCst));

        drop(registration);
        assert!(hub.routes.get("o1").is_none(), "unregistered when dropped");
    }

    #[test]
    fn connections_past_the_cap_are_refused() {
        let hub = Hub::new(2);
        let first = hub.admit().unwrap();
        let _second = hub.admit().unwrap();
        assert!(hub.admit().is_none());
        drop(first);
        assert!(hub.admit().is_some());
    }
}
