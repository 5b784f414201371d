//! Consumers: durable pull consumers with explicit acks, one per (service, event type).
//!
//! Most handlers return an [`Outcome`] and the runtime decides the message: [`Outcome::Done`]
//! acks, [`Outcome::Retry`] naks with the backoff delay (or the one given), and
//! [`Outcome::GiveUp`] terminates it, so it goes to the dead letters with the reason. The
//! runtime logs each retry, each give-up and each acknowledgement that could not be sent; a
//! handler logs nothing about the message's fate. [`Consumer::new`] makes such a consumer.
//!
//! A handler that must decide at a moment of its own choosing (acknowledge before a slow
//! follow-up, say) takes the [`AckGuard`] instead ([`Consumer::with_guard`]) and calls
//! `ack()`, `nak(..)` or `term(reason)`. A guard dropped undecided (an early return, a `?`, a
//! panic) naks with the backoff delay, so no message is ever left to its ack timeout silently:
//! wadm's `ScopedMessage` is the model.
//!
//! A [`Consumer`] is a value until it is started: a service hands it to its host, which
//! creates the durable (so a start-up failure surfaces before the service serves) and
//! cancels it at shutdown after requests are drained.
//!
//! Redelivery follows the consumer's backoff schedule (also its per-delivery ack wait) up to
//! `max_deliver` attempts. While a handler runs, the runtime tells JetStream it is still
//! working (`+WPI`) every half ack wait, so a slow handler is not redelivered under its feet.
//! After the last attempt, or on `term`, JetStream publishes an advisory; the runtime listens
//! for its own consumer's advisories and moves the message to the dead-letter stream
//! (see [`crate::dead_letter`]).
//!
//! If JetStream loses the durable or its stream (deleted, or a server whose store was wiped),
//! the runtime declares both again and carries on, without a restart of the service; what the
//! lost stream held is gone from JetStream (the producers' outboxes keep published events for a
//! while: `cargo xtask events republish`).
//!
//! Metrics, sampled every `lag_sample_interval` from consumer and stream info:
//! `events_consumer_lag{consumer}` (matching messages not yet delivered),
//! `events_consumer_ack_pending{consumer}`,
//! `events_consumer_oldest_unacked_age_seconds{consumer}` (age of the oldest event this consumer
//! has not acknowledged; 0 when caught up) beside `events_consumer_retention_seconds{consumer}`
//! (the stream's max age: an event older than that is deleted, acknowledged or not),
//! `events_consumer_retention_gap{consumer}` (stream sequences the stream's limits removed before
//! this consumer acknowledged them, now) and `events_consumer_retention_skipped_total{consumer}`
//! (the same, counted once each: events this consumer lost; for a durable of one event type in
//! a stream of several, an upper bound, since the removed messages may be of other types).
//! Beside them: `events_consumer_redeclared_total{consumer}`,
//! `events_redeliveries_total{consumer}`, `events_consumed_total{consumer, outcome}` and
//! `events_dead_letters_total{consumer, reason}`.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::consumer::pull::{MessagesError, MessagesErrorKind};
use async_nats::jetstream::context::{ConsumerInfoErrorKind, GetStreamErrorKind};
use async_nats::jetstream::{self, consumer::pull};
use async_nats::{HeaderMap, Subject};
use futures::StreamExt as _;
use futures::future::BoxFuture;
use telemetry::propagation::TraceHeaders;
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::{dead_letter, headers, names, streams};

/// How a consumer runs.
#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    /// The consuming service: "notification". With the event type it names the durable.
    pub consumer: String,
    /// Deliveries before a message goes to the dead letters.
    pub max_deliver: i64,
    /// The delay before each redelivery (the last one repeats); also the ack wait of each
    /// delivery. Must be shorter than `max_deliver`.
    pub backoff: Vec<Duration>,
    /// Handlers running at once.
    pub max_in_flight: usize,
    /// How often lag is sampled for the metrics.
    pub lag_sample_interval: Duration,
}

impl ConsumerConfig {
    pub fn new(consumer: impl Into<String>) -> Self {
        Self {
            consumer: consumer.into(),
            max_deliver: 5,
            backoff: vec![
                Duration::from_secs(1),
                Duration::from_secs(5),
                Duration::from_secs(30),
            ],
            max_in_flight: 16,
            lag_sample_interval: Duration::from_secs(5),
        }
    }

    /// The delay after the `delivered`-th delivery fails (1-based); none after the last one,
    /// so the message reaches the dead letters without waiting.
    pub fn retry_delay(&self, delivered: i64) -> Duration {
        if delivered >= self.max_deliver {
            return Duration::ZERO;
        }
        self.ack_wait(delivered)
    }

    /// The ack wait of the `delivered`-th delivery: the backoff schedule's entry.
    fn ack_wait(&self, delivered: i64) -> Duration {
        let index = usize::try_from(delivered.max(1) - 1).unwrap_or(0);
        self.backoff
            .get(index)
            .or(self.backoff.last())
            .copied()
            .unwrap_or(Duration::from_secs(30))
    }
}

/// One event as a handler sees it.
#[derive(Debug)]
pub struct Delivery<E> {
    /// The event id (the outbox row id); the key of [`crate::inbox::record`].
    pub event_id: Uuid,
    pub aggregate_id: String,
    pub payload: E,
    pub subject: String,
    pub headers: HeaderMap,
    /// The message's sequence in its stream.
    pub stream_sequence: u64,
    /// 1 on the first delivery.
    pub delivered: i64,
    /// The durable consumer name, also the inbox's consumer key.
    pub consumer: String,
}

impl<E> Delivery<E> {
    /// The trace context of the change that produced the event.
    pub fn trace(&self) -> TraceHeaders {
        TraceHeaders::from_nats(Some(&self.headers))
    }

    /// A context for calls made while handling the event, in the producer's trace.
    pub fn context(&self) -> rpc::Context {
        rpc::Context::background().with_trace(self.trace())
    }
}

/// Why an acknowledgement could not be sent.
#[derive(Debug, thiserror::Error)]
#[error("acknowledging a message: {0}")]
pub struct AckError(String);

/// What a handler made of one event; the runtime acks, naks or terminates accordingly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The effect happened (or had happened before): acknowledge.
    Done,
    /// It failed for a reason that may pass (a database or a service unavailable): deliver
    /// it again after `after`, or after the backoff schedule's delay when `None`.
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// It can never succeed (a malformed payload, a reference to nothing): no redelivery;
    /// it goes to the dead letters with `reason`.
    GiveUp { reason: String },
}

impl Outcome {
    /// Retry after the backoff schedule's delay, because of `reason` (an error, usually).
    pub fn retry(reason: impl std::fmt::Display) -> Self {
        Self::Retry {
            reason: reason.to_string(),
            after: None,
        }
    }

    /// Give up on the message because of `reason`.
    pub fn give_up(reason: impl std::fmt::Display) -> Self {
        Self::GiveUp {
            reason: reason.to_string(),
        }
    }

    /// Decides `guard` by this outcome and logs what needs an operator's eye: a retry, a
    /// give-up, an acknowledgement that could not be sent. Runs in the handler's span, which
    /// names the consumer and the event.
    pub async fn decide(self, guard: AckGuard) {
        let (decision, sent) = match self {
            Outcome::Done => ("ack", guard.ack().await),
            Outcome::Retry { reason, after } => {
                tracing::warn!(%reason, "handling an event failed; it will be delivered again");
                ("nak", guard.nak(after).await)
            }
            Outcome::GiveUp { reason } => {
                tracing::warn!(%reason, "giving up on an event; it goes to the dead letters");
                ("term", guard.term(&reason).await)
            }
        };
        if let Err(error) = sent {
            // Without the acknowledgement the message comes back after its ack wait, which a
            // consumer's idempotence makes harmless.
            tracing::warn!(%error, decision, "sending the decision about an event");
        }
    }
}

impl<E: std::fmt::Display> From<Result<(), E>> for Outcome {
    /// `Ok` is done; an error is retried.
    fn from(result: Result<(), E>) -> Self {
        match result {
            Ok(()) => Outcome::Done,
            Err(error) => Outcome::retry(error),
        }
    }
}

/// The decision about one message. Exactly one of `ack`, `nak`, `term`; dropping it undecided
/// naks with the backoff delay.
#[must_use = "a dropped guard naks the message"]
pub struct AckGuard {
    client: async_nats::Client,
    reply: Option<Subject>,
    decided: Arc<AtomicBool>,
    retry_delay: Duration,
    consumer: String,
}

impl std::fmt::Debug for AckGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckGuard")
            .field("consumer", &self.consumer)
            .field("decided", &self.decided.load(Ordering::SeqCst))
            .finish()
    }
}

impl AckGuard {
    /// Acknowledges the message and waits until JetStream confirms it, so a handler that
    /// returns after `ack` knows the message will not come back.
    pub async fn ack(self) -> Result<(), AckError> {
        self.outcome("ack");
        let Some(reply) = self.take_reply() else {
            return Ok(());
        };
        self.client
            .request(reply, bytes::Bytes::from_static(b"+ACK"))
            .await
            .map(|_| ())
            .map_err(|e| AckError(e.to_string()))
    }

    /// Asks for a redelivery after `retry_after`, or after the backoff schedule's delay.
    pub async fn nak(self, retry_after: Option<Duration>) -> Result<(), AckError> {
        self.outcome("nak");
        let delay = retry_after.unwrap_or(self.retry_delay);
        let Some(reply) = self.take_reply() else {
            return Ok(());
        };
        self.client
            .publish(reply, nak_body(delay))
            .await
            .map_err(|e| AckError(e.to_string()))
    }

    /// Gives up on the message: no redelivery, and it goes to the dead letters with `reason`.
    pub async fn term(self, reason: &str) -> Result<(), AckError> {
        self.outcome("term");
        let Some(reply) = self.take_reply() else {
            return Ok(());
        };
        self.client
            .publish(reply, term_body(reason))
            .await
            .map_err(|e| AckError(e.to_string()))
    }

    fn outcome(&self, outcome: &'static str) {
        metrics::counter!("events_consumed_total", "consumer" => self.consumer.clone(), "outcome" => outcome)
            .increment(1);
    }

    fn take_reply(&self) -> Option<Subject> {
        if self.decided.swap(true, Ordering::SeqCst) {
            return None;
        }
        self.reply.clone()
    }
}

impl Drop for AckGuard {
    fn drop(&mut self) {
        let Some(reply) = self.take_reply() else {
            return;
        };
        self.outcome("dropped");
        tracing::warn!(consumer = %self.consumer, "a handler dropped its ack guard undecided; nak");
        let client = self.client.clone();
        let body = nak_body(self.retry_delay);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = client.publish(reply, body).await;
            });
        }
    }
}

fn nak_body(delay: Duration) -> bytes::Bytes {
    if delay.is_zero() {
        bytes::Bytes::from_static(b"-NAK")
    } else {
        format!("-NAK {{\"delay\":{}}}", delay.as_nanos()).into()
    }
}

/// `+TERM <reason>`: JetStream (2.11+) puts the reason into the terminated advisory.
fn term_body(reason: &str) -> bytes::Bytes {
    let reason: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(256)
        .collect();
    let reason = reason.trim();
    if reason.is_empty() {
        bytes::Bytes::from_static(b"+TERM")
    } else {
        format!("+TERM {reason}").into()
    }
}

type Start = Box<
    dyn FnOnce(
            jetstream::Context,
            CancellationToken,
        ) -> BoxFuture<'static, anyhow::Result<JoinHandle<()>>>
        + Send,
>;

/// The handler of one event type for one consuming service, ready to start. A service hands
/// it to its host, which starts it with [`Consumer::start`].
#[must_use = "a consumer does nothing until it is started"]
pub struct Consumer {
    name: String,
    /// The durable's name, when the consumer's name is a valid one (`start` says why not).
    durable: Option<String>,
    start: Start,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("name", &self.name)
            .finish()
    }
}

impl Consumer {
    /// A consumer of `E` whose handler returns its [`Outcome`] (or a `Result<(), _>`: `Ok`
    /// is done, an error is retried).
    pub fn new<E, F, Fut, O>(config: ConsumerConfig, handler: F) -> Self
    where
        E: api::Event,
        F: Fn(Delivery<E>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = O> + Send + 'static,
        O: Into<Outcome>,
    {
        Self::with_guard(config, move |delivery: Delivery<E>, guard: AckGuard| {
            let outcome = handler(delivery);
            async move { outcome.await.into().decide(guard).await }
        })
    }

    /// A consumer of `E` whose handler decides each message itself through its [`AckGuard`].
    pub fn with_guard<E, F, Fut>(config: ConsumerConfig, handler: F) -> Self
    where
        E: api::Event,
        F: Fn(Delivery<E>, AckGuard) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self {
            name: format!("{} consumer of {}", config.consumer, E::DESCRIPTOR.name),
            durable: names::durable_name(&config.consumer, E::DESCRIPTOR).ok(),
            start: Box::new(move |jetstream, cancel| {
                Box::pin(spawn::<E, F, Fut>(jetstream, config, cancel, handler))
            }),
        }
    }

    /// "user consumer of user.registered", for logs.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its durable consumer's name: "user_user_registered".
    pub fn durable(&self) -> Option<&str> {
        self.durable.as_deref()
    }

    /// Creates (or updates) the durable consumer and starts handling messages until `cancel`
    /// fires. The durable exists and the dead-letter watch is subscribed when this returns;
    /// the task ends once the handlers in flight have decided their messages.
    pub async fn start(
        self,
        jetstream: jetstream::Context,
        cancel: CancellationToken,
    ) -> anyhow::Result<JoinHandle<()>> {
        (self.start)(jetstream, cancel).await
    }
}

async fn spawn<E, F, Fut>(
    jetstream: jetstream::Context,
    config: ConsumerConfig,
    cancel: CancellationToken,
    handler: F,
) -> anyhow::Result<JoinHandle<()>>
where
    E: api::Event,
    F: Fn(Delivery<E>, AckGuard) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let descriptor = E::DESCRIPTOR;
    let durable = names::durable_name(&config.consumer, descriptor)?;
    anyhow::ensure!(
        config.max_deliver > config.backoff.len() as i64,
        "consumer {durable}: max_deliver must be more than the backoff steps"
    );
    let stream_name = names::stream_of(descriptor);
    let consumer = declare(&jetstream, &config, descriptor, &durable).await?;
    // At zero, so dashboards and alert rules read 0 rather than no data until one happens.
    metrics::counter!("events_redeliveries_total", "consumer" => durable.clone()).increment(0);
    metrics::counter!("events_consumer_redeclared_total", "consumer" => durable.clone())
        .increment(0);

    let client = jetstream.client();
    let watch = dead_letter::Watch::subscribe(&client, &stream_name, &durable).await?;
    let messages = open(&consumer, &config, &durable).await?;

    let in_flight = Arc::new(Semaphore::new(max_in_flight(&config)));
    let runtime = Arc::new(Runtime {
        config,
        durable: durable.clone(),
        stream_name: stream_name.clone(),
        jetstream: jetstream.clone(),
        client,
        handler,
        in_flight,
        _event: PhantomData,
    });
    let lag = spawn_lag_sampler(
        jetstream.clone(),
        consumer,
        stream_name,
        names::filter_subject(descriptor),
        durable.clone(),
        runtime.config.lag_sample_interval,
        cancel.clone(),
    );
    let dead_letters = watch.spawn(jetstream.clone(), cancel.clone());
    Ok(tokio::spawn(async move {
        runtime.run(messages, cancel).await;
        let _ = lag.await;
        let _ = dead_letters.await;
        tracing::debug!(consumer = %durable, "consumer stopped");
    }))
}

/// The handlers one replica runs at once.
fn max_in_flight(config: &ConsumerConfig) -> usize {
    config.max_in_flight.max(1)
}

/// Makes sure the event's stream and the dead-letter stream exist, and creates (or updates)
/// the durable consumer: at start-up, and again whenever JetStream has lost them.
async fn declare(
    jetstream: &jetstream::Context,
    config: &ConsumerConfig,
    descriptor: &'static api::EventDescriptor,
    durable: &str,
) -> anyhow::Result<jetstream::consumer::Consumer<pull::Config>> {
    let stream_name = names::stream_of(descriptor);
    streams::ensure_exists(jetstream, descriptor.domain).await?;
    streams::ensure_dead_letters(jetstream, &streams::StreamSettings::dead_letters()).await?;
    let stream = jetstream
        .get_stream(&stream_name)
        .await
        .with_context(|| format!("opening stream {stream_name}"))?;
    stream
        .create_consumer(pull::Config {
            durable_name: Some(durable.to_owned()),
            description: Some(format!("{} consumes {}", config.consumer, descriptor.name)),
            // The event's subject, and the redrive subject only this durable takes.
            filter_subjects: vec![
                names::filter_subject(descriptor),
                names::redrive_subject(descriptor.domain, durable)?,
            ],
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            deliver_policy: jetstream::consumer::DeliverPolicy::All,
            ack_wait: config.ack_wait(1),
            max_deliver: config.max_deliver,
            backoff: config.backoff.clone(),
            max_ack_pending: (max_in_flight(config) * 2) as i64,
            ..Default::default()
        })
        .await
        .with_context(|| format!("creating consumer {durable} on {stream_name}"))
}

/// Starts pulling from `consumer`.
async fn open(
    consumer: &jetstream::consumer::Consumer<pull::Config>,
    config: &ConsumerConfig,
    durable: &str,
) -> anyhow::Result<pull::Stream> {
    consumer
        .stream()
        .max_messages_per_batch(max_in_flight(config))
        .heartbeat(Duration::from_secs(5))
        .messages()
        .await
        .with_context(|| format!("pulling from consumer {durable}"))
}

struct Runtime<E, F> {
    config: ConsumerConfig,
    durable: String,
    stream_name: String,
    jetstream: jetstream::Context,
    client: async_nats::Client,
    handler: F,
    in_flight: Arc<Semaphore>,
    _event: PhantomData<fn() -> E>,
}

impl<E, F, Fut> Runtime<E, F>
where
    E: api::Event,
    F: Fn(Delivery<E>, AckGuard) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    async fn run(self: Arc<Self>, mut messages: pull::Stream, cancel: CancellationToken) {
        let mut handlers = JoinSet::new();
        loop {
            let next = tokio::select! {
                _ = cancel.cancelled() => break,
                next = messages.next() => next,
            };
            let lost = match next {
                Some(Ok(message)) => {
                    let runtime = self.clone();
                    handlers.spawn(async move { runtime.handle(message).await });
                    false
                }
                Some(Err(error)) => self.consumer_is_gone(&error).await,
                None => {
                    tracing::warn!(consumer = %self.durable, "the message stream ended");
                    true
                }
            };
            // Reap finished handlers so the set does not grow.
            while handlers.try_join_next().is_some() {}
            if lost {
                match self.declare_again(&cancel).await {
                    Some(fresh) => messages = fresh,
                    None => break,
                }
            }
        }
        // Let the handlers in flight decide; undecided ones nak on drop.
        while handlers.join_next().await.is_some() {}
    }

    /// Whether `error` means JetStream no longer has this durable (or its stream): deleted,
    /// or lost with a server's store. Missed heartbeats and the like the pull stream recovers
    /// from by itself; a missed heartbeat is a loss only if the durable is in fact gone.
    async fn consumer_is_gone(&self, error: &MessagesError) -> bool {
        let gone = match error.kind() {
            MessagesErrorKind::ConsumerDeleted | MessagesErrorKind::NoResponders => true,
            MessagesErrorKind::MissingHeartbeat => self.durable_missing().await,
            _ => false,
        };
        if gone {
            tracing::warn!(consumer = %self.durable, stream = %self.stream_name, %error, "the durable consumer is gone from JetStream; declaring it again");
        } else {
            tracing::warn!(consumer = %self.durable, %error, "pulling messages");
        }
        gone
    }

    /// `true` only when JetStream answers that the stream or the durable does not exist; a
    /// server that does not answer (restarting, say) is no reason to declare anything.
    async fn durable_missing(&self) -> bool {
        let stream = match self.jetstream.get_stream(&self.stream_name).await {
            Ok(stream) => stream,
            Err(error) => {
                return matches!(
                    error.kind(),
                    GetStreamErrorKind::JetStream(error)
                        if error.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
                );
            }
        };
        matches!(
            stream
                .consumer_info(&self.durable)
                .await
                .map_err(|e| e.kind()),
            Err(ConsumerInfoErrorKind::NotFound | ConsumerInfoErrorKind::StreamNotFound)
        )
    }

    /// Declares the streams and the durable again and starts pulling, retrying with a growing
    /// pause until it works; `None` when cancelled first.
    async fn declare_again(&self, cancel: &CancellationToken) -> Option<pull::Stream> {
        let mut pause = Duration::from_millis(100);
        loop {
            let declared = async {
                let consumer =
                    declare(&self.jetstream, &self.config, E::DESCRIPTOR, &self.durable).await?;
                open(&consumer, &self.config, &self.durable).await
            }
            .await;
            match declared {
                Ok(messages) => {
                    metrics::counter!("events_consumer_redeclared_total", "consumer" => self.durable.clone())
                        .increment(1);
                    tracing::info!(consumer = %self.durable, stream = %self.stream_name, "durable consumer declared again; consuming");
                    return Some(messages);
                }
                Err(error) => {
                    tracing::warn!(consumer = %self.durable, error = format!("{error:#}"), "declaring the durable consumer again failed; retrying");
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return None,
                _ = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }

    async fn handle(self: Arc<Self>, message: jetstream::Message) {
        let (stream_sequence, delivered) = match message.info() {
            Ok(info) => (info.stream_sequence, info.delivered),
            Err(error) => {
                tracing::warn!(consumer = %self.durable, %error, "a message without JetStream metadata");
                return;
            }
        };
        if delivered > 1 {
            metrics::counter!("events_redeliveries_total", "consumer" => self.durable.clone())
                .increment(1);
        }
        let decided = Arc::new(AtomicBool::new(false));
        let guard = AckGuard {
            client: self.client.clone(),
            reply: message.message.reply.clone(),
            decided: decided.clone(),
            retry_delay: self.config.retry_delay(delivered),
            consumer: self.durable.clone(),
        };
        let message = message.message;
        let delivery = match decode::<E>(&message, &self.durable, stream_sequence, delivered) {
            Ok(delivery) => delivery,
            Err(problem) => {
                // Retrying cannot fix a message this service cannot read.
                tracing::warn!(consumer = %self.durable, stream_sequence, %problem, "undecodable event");
                let _ = guard.term(&format!("undecodable: {problem}")).await;
                return;
            }
        };
        // The handler's span continues the trace of the change that produced the event.
        // `process <event type>`, kind consumer: the naming scheme is in docs/ARCHITECTURE.md.
        // INFO under the request target: exported whatever the log filter (see the telemetry
        // crate's logging policy), and in the logs at the usual `info`.
        let span = tracing::info_span!(
            target: telemetry::REQUEST_TARGET,
            "event",
            otel.name = %format_args!("process {}", E::DESCRIPTOR.name),
            otel.kind = "consumer",
            messaging.system = "nats",
            messaging.destination.name = %delivery.subject,
            messaging.destination.template = %names::filter_subject(E::DESCRIPTOR),
            messaging.operation.type = "process",
            messaging.operation.name = "process",
            messaging.consumer.group.name = %self.durable,
            messaging.message.id = %delivery.event_id,
            consumer = %self.durable,
            event_type = E::DESCRIPTOR.name,
            event_id = %delivery.event_id,
            delivered,
        );
        telemetry::propagation::set_parent(&span, &delivery.trace());
        let runtime = self.clone();
        let work = async move {
            let _permit = runtime.in_flight.clone().acquire_owned().await;
            (runtime.handler)(delivery, guard).await;
        }
        .instrument(span);
        let reply = message.reply.clone();
        let period = (self.config.ack_wait(delivered) / 2).max(Duration::from_millis(50));
        keep_alive(work, &self.client, reply, &decided, period).await;
    }
}

/// Runs `work`, telling JetStream every `period` that the message is still being worked on
/// until the guard decides.
async fn keep_alive(
    work: impl Future<Output = ()>,
    client: &async_nats::Client,
    reply: Option<Subject>,
    decided: &AtomicBool,
    period: Duration,
) {
    tokio::pin!(work);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        tokio::select! {
            _ = &mut work => return,
            _ = ticker.tick() => {
                if let Some(reply) = &reply
                    && !decided.load(Ordering::SeqCst)
                {
                    let _ = client.publish(reply.clone(), bytes::Bytes::from_static(b"+WPI")).await;
                }
            }
        }
    }
}

fn decode<E: api::Event>(
    message: &async_nats::Message,
    durable: &str,
    stream_sequence: u64,
    delivered: i64,
) -> Result<Delivery<E>, String> {
    let headers = message.headers.clone().unwrap_or_default();
    let get = |name: &str| headers.get(name).map(|v| v.as_str().to_owned());
    let event_id = get(headers::EVENT_ID)
        .or_else(|| get(headers::MSG_ID))
        .ok_or_else(|| format!("no {} header", headers::EVENT_ID))?;
    let event_id = Uuid::parse_str(&event_id).map_err(|e| format!("event id {event_id:?}: {e}"))?;
    let payload: E = serde_json::from_slice(&message.payload)
        .map_err(|e| format!("payload of {}: {e}", E::DESCRIPTOR.name))?;
    Ok(Delivery {
        event_id,
        aggregate_id: get(headers::AGGREGATE_ID).unwrap_or_default(),
        payload,
        subject: message.subject.to_string(),
        headers,
        stream_sequence,
        delivered,
        consumer: durable.to_owned(),
    })
}

fn spawn_lag_sampler(
    jetstream: jetstream::Context,
    consumer: jetstream::consumer::Consumer<pull::Config>,
    stream_name: String,
    filter_subject: String,
    durable: String,
    interval: Duration,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut retention = Retention::default();
        let mut ticker = tokio::time::interval(interval);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = ticker.tick() => {}
            }
            let sampled = sample(
                &jetstream,
                &consumer,
                &stream_name,
                &filter_subject,
                &durable,
                &mut retention,
            )
            .await;
            if let Err(error) = sampled {
                tracing::debug!(consumer = %durable, error = format!("{error:#}"), "sampling consumer lag");
            }
        }
    })
}

/// What the sampler remembers between samples: the stream sequences already counted as lost.
#[derive(Debug, Default)]
struct Retention {
    counted_through: u64,
}

impl Retention {
    /// The stream sequences the stream's limits removed before the consumer acknowledged
    /// them, from its ack floor and the stream's first sequence: `(gap now, newly lost)`.
    /// Nothing is lost while the consumer has nothing unacknowledged (a caught-up consumer's
    /// ack floor may trail other event types' messages in the stream).
    fn observe(&mut self, ack_floor: u64, first_sequence: u64, unacknowledged: bool) -> (u64, u64) {
        if first_sequence.saturating_sub(1) < self.counted_through {
            // A new stream (the old one was lost): its sequences start again.
            self.counted_through = 0;
        }
        if !unacknowledged {
            return (0, 0);
        }
        let next_unacked = ack_floor + 1;
        let gap = first_sequence.saturating_sub(next_unacked);
        let from = next_unacked.max(self.counted_through + 1);
        let newly_lost = first_sequence.saturating_sub(from);
        if newly_lost > 0 {
            self.counted_through = first_sequence - 1;
        }
        (gap, newly_lost)
    }
}

/// One sample of the consumer's lag and of what the stream's limits took from it.
async fn sample(
    jetstream: &jetstream::Context,
    consumer: &jetstream::consumer::Consumer<pull::Config>,
    stream_name: &str,
    filter_subject: &str,
    durable: &str,
    retention: &mut Retention,
) -> anyhow::Result<()> {
    let label = || durable.to_owned();
    // By name, so it stays right after the durable was declared again.
    let info = consumer.get_info().await.context("reading consumer info")?;
    metrics::gauge!("events_consumer_lag", "consumer" => label()).set(info.num_pending as f64);
    metrics::gauge!("events_consumer_ack_pending", "consumer" => label())
        .set(info.num_ack_pending as f64);

    let stream = jetstream
        .get_stream(stream_name)
        .await
        .context("reading stream info")?;
    let stream_info = stream.cached_info();
    metrics::gauge!("events_consumer_retention_seconds", "consumer" => label())
        .set(stream_info.config.max_age.as_secs_f64());
    let unacknowledged = info.num_pending > 0 || info.num_ack_pending > 0;
    let ack_floor = info.ack_floor.stream_sequence;
    let (gap, newly_lost) =
        retention.observe(ack_floor, stream_info.state.first_sequence, unacknowledged);
    metrics::gauge!("events_consumer_retention_gap", "consumer" => label()).set(gap as f64);
    // Touched at zero too, so the series exists for alert rules before anything is lost.
    metrics::counter!("events_consumer_retention_skipped_total", "consumer" => label())
        .increment(newly_lost);
    if newly_lost > 0 {
        tracing::error!(
            consumer = %durable,
            stream = %stream_name,
            lost = newly_lost,
            "the stream's limits removed events before this consumer acknowledged them; they are lost to it (republish them from the producer's outbox while it keeps them)"
        );
    }

    let age = if unacknowledged {
        // The oldest event of this consumer's type past its ack floor.
        let oldest = stream
            .raw_message_builder()
            .sequence(ack_floor + 1)
            .next_by_subject(filter_subject)
            .send()
            .await;
        match oldest {
            Ok(message) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs_f64();
                let published = message.time.unix_timestamp_nanos() as f64 / 1e9;
                (now - published).max(0.0)
            }
            Err(_) => 0.0,
        }
    } else {
        0.0
    };
    metrics::gauge!("events_consumer_oldest_unacked_age_seconds", "consumer" => label()).set(age);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_follow_the_backoff_schedule_and_the_last_attempt_does_not_wait() {
        let config = ConsumerConfig::new("test");
        assert_eq!(config.retry_delay(1), Duration::from_secs(1));
        assert_eq!(config.retry_delay(2), Duration::from_secs(5));
        assert_eq!(config.retry_delay(3), Duration::from_secs(30));
        assert_eq!(config.retry_delay(4), Duration::from_secs(30));
        assert_eq!(config.retry_delay(5), Duration::ZERO);
    }

    #[test]
    fn sequences_removed_before_the_ack_floor_moved_are_counted_once() {
        let mut retention = Retention::default();
        // Acked through 10, the stream still starts at 5: nothing lost.
        assert_eq!(retention.observe(10, 5, true), (0, 0));
        // The limits removed 11..=14 before they were acked.
        assert_eq!(retention.observe(10, 15, true), (4, 4));
        // Seen again: still a gap, not lost again.
        assert_eq!(retention.observe(10, 15, true), (4, 0));
        // More went: only the new ones count.
        assert_eq!(retention.observe(10, 20, true), (9, 5));
        // Caught up: no gap, whatever the ack floor says.
        assert_eq!(retention.observe(10, 30, false), (0, 0));
    }

    #[test]
    fn a_new_stream_starts_counting_again() {
        let mut retention = Retention::default();
        assert_eq!(retention.observe(0, 101, true), (100, 100));
        // The stream was lost and declared again: sequences start over.
        assert_eq!(retention.observe(0, 1, true), (0, 0));
        assert_eq!(retention.observe(0, 6, true), (5, 5));
    }

    #[test]
    fn acknowledgement_bodies_are_what_jetstream_expects() {
        assert_eq!(nak_body(Duration::ZERO), "-NAK");
        assert_eq!(
            nak_body(Duration::from_millis(1500)),
            "-NAK {\"delay\":1500000000}"
        );
        assert_eq!(term_body(""), "+TERM");
        assert_eq!(term_body("bad\npayload"), "+TERM bad payload");
    }
}
