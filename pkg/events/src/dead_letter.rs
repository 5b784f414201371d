//! Dead letters: messages a consumer gave up on, kept in the `DEAD_LETTERS` stream.
//!
//! JetStream announces a message that reached a consumer's `max_deliver`, or that a consumer
//! terminated, with an advisory naming the stream, the consumer, the stream sequence and the
//! delivery count. Each consumer runtime subscribes to its own consumer's two advisories
//! ([`Watch`]), reads the original message by sequence and stores it under
//! `deadletter.<durable>` with the original payload and headers plus the reason, the consumer,
//! the original stream, sequence and subject, and the delivery count. Several replicas of a
//! service see the same advisory; the dead letter's `Nats-Msg-Id` is derived from the consumer
//! and the original sequence, so JetStream stores it once.
//!
//! Advisories are plain NATS messages: one published while no replica of the consumer runs is
//! lost, and the message then stays only in its stream (findable by the consumer's
//! `num_redelivered` and the original sequence).
//!
//! [`list`] and [`redrive`] are what `cargo xtask dlq list|redrive` run; [`page`] and
//! [`counts`] answer the gateway's dead-letter route, and [`redrive_endpoint`] is the method
//! every service with consumers serves for its redrive route. A redrive republishes the
//! original message to the redrive subject of the consumer that gave it up
//! ([`names::redrive_subject`]), inside the event's stream, with a new `Nats-Msg-Id` (the old
//! one may still be inside the duplicate window) and the same event id, then deletes the dead
//! letter. Only that consumer receives it again: the others applied it already.

use anyhow::Context as _;
use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::{self, ErrorCode, stream::LastRawMessageErrorKind};
use async_nats::{HeaderMap, Subscriber};
use futures::StreamExt as _;
use serde::Deserialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{headers, names};

/// Why a message became a dead letter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Every allowed delivery failed.
    MaxDeliveries,
    /// The consumer terminated it, with the reason it gave when the server reports it.
    Terminated(Option<String>),
}

impl Reason {
    /// The value of the reason header: `max_deliveries`, `terminated` or `terminated: <why>`.
    pub fn header_value(&self) -> String {
        match self {
            Reason::MaxDeliveries => "max_deliveries".to_owned(),
            Reason::Terminated(None) => "terminated".to_owned(),
            Reason::Terminated(Some(why)) => format!("terminated: {why}"),
        }
    }

    fn label(&self) -> &'static str {
        match self {
            Reason::MaxDeliveries => "max_deliveries",
            Reason::Terminated(_) => "terminated",
        }
    }
}

/// The fields of the max-deliveries and terminated advisories this module needs.
#[derive(Debug, Deserialize)]
struct Advisory {
    stream: String,
    consumer: String,
    stream_seq: u64,
    deliveries: u64,
    #[serde(default)]
    reason: String,
}

/// The advisory subscriptions of one durable consumer.
pub(crate) struct Watch {
    max_deliveries: Subscriber,
    terminated: Subscriber,
    durable: String,
}

impl Watch {
    /// Subscribes now, before any message is pulled, so no advisory is missed.
    pub(crate) async fn subscribe(
        client: &async_nats::Client,
        stream: &str,
        durable: &str,
    ) -> anyhow::Result<Self> {
        let max_deliveries = client
            .subscribe(names::max_deliveries_advisory(stream, durable))
            .await?;
        let terminated = client
            .subscribe(names::terminated_advisory(stream, durable))
            .await?;
        // The subscriptions must be known to the server before the first delivery.
        client.flush().await?;
        // At zero, so dashboards and alert rules read 0 rather than no data until one arrives.
        for reason in [Reason::MaxDeliveries, Reason::Terminated(None)] {
            metrics::counter!("events_dead_letters_total", "consumer" => durable.to_owned(), "reason" => reason.label())
                .increment(0);
        }
        Ok(Self {
            max_deliveries,
            terminated,
            durable: durable.to_owned(),
        })
    }

    pub(crate) fn spawn(
        mut self,
        jetstream: jetstream::Context,
        cancel: CancellationToken,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let (message, terminated) = tokio::select! {
                    _ = cancel.cancelled() => break,
                    Some(message) = self.max_deliveries.next() => (message, false),
                    Some(message) = self.terminated.next() => (message, true),
                    else => break,
                };
                let advisory: Advisory = match serde_json::from_slice(&message.payload) {
                    Ok(advisory) => advisory,
                    Err(error) => {
                        tracing::warn!(consumer = %self.durable, %error, "unreadable advisory");
                        continue;
                    }
                };
                let reason = if terminated {
                    Reason::Terminated(Some(advisory.reason.clone()).filter(|r| !r.is_empty()))
                } else {
                    Reason::MaxDeliveries
                };
                if let Err(error) = store(&jetstream, &advisory, &reason).await {
                    tracing::error!(
                        consumer = %advisory.consumer,
                        stream = %advisory.stream,
                        stream_sequence = advisory.stream_seq,
                        error = format!("{error:#}"),
                        "could not store a dead letter"
                    );
                }
            }
        })
    }
}

/// Copies the original message of `advisory` into the dead-letter stream.
async fn store(
    jetstream: &jetstream::Context,
    advisory: &Advisory,
    reason: &Reason,
) -> anyhow::Result<()> {
    let stream = jetstream
        .get_stream(&advisory.stream)
        .await
        .with_context(|| format!("opening stream {}", advisory.stream))?;
    let original = stream
        .get_raw_message(advisory.stream_seq)
        .await
        .with_context(|| {
            format!(
                "reading message {} of {}",
                advisory.stream_seq, advisory.stream
            )
        })?;
    let mut out = copy_headers(&original.headers, |name| name != headers::MSG_ID);
    out.insert(headers::DEAD_LETTER_REASON, reason.header_value().as_str());
    out.insert(headers::DEAD_LETTER_CONSUMER, advisory.consumer.as_str());
    out.insert(headers::DEAD_LETTER_STREAM, advisory.stream.as_str());
    out.insert(
        headers::DEAD_LETTER_SEQUENCE,
        advisory.stream_seq.to_string().as_str(),
    );
    // A redriven letter keeps the subject its event was first published to.
    let subject = original
        .headers
        .get(headers::REDRIVEN_FROM)
        .map_or(original.subject.as_str(), |from| from.as_str());
    out.insert(headers::DEAD_LETTER_SUBJECT, subject);
    out.insert(
        headers::DEAD_LETTER_DELIVERIES,
        advisory.deliveries.to_string().as_str(),
    );
    out.insert(
        headers::MSG_ID,
        names::dead_letter_message_id(&advisory.consumer, &advisory.stream, advisory.stream_seq)
            .as_str(),
    );
    jetstream
        .publish_with_headers(
            names::dead_letter_subject(&advisory.consumer)?,
            out,
            original.payload.clone(),
        )
        .await?
        .await
        .context("storing the dead letter")?;
    metrics::counter!("events_dead_letters_total", "consumer" => advisory.consumer.clone(), "reason" => reason.label())
        .increment(1);
    tracing::warn!(
        consumer = %advisory.consumer,
        subject = %original.subject,
        deliveries = advisory.deliveries,
        reason = %reason.header_value(),
        "event moved to the dead letters"
    );
    Ok(())
}

fn copy_headers(from: &HeaderMap, keep: impl Fn(&str) -> bool) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, values) in from.iter() {
        let name: &str = name.as_ref();
        if !keep(name) {
            continue;
        }
        for value in values {
            out.append(name, value.as_str());
        }
    }
    out
}

/// A message in the dead-letter stream.
#[derive(Clone, Debug)]
pub struct DeadLetter {
    /// Its sequence in the dead-letter stream: what `redrive --seq` takes.
    pub sequence: u64,
    /// When the dead-letter stream stored it.
    pub stored: chrono::DateTime<chrono::Utc>,
    pub consumer: String,
    pub reason: String,
    pub original_stream: String,
    pub original_sequence: u64,
    pub original_subject: String,
    pub deliveries: u64,
    pub event_type: String,
    pub event_id: String,
    pub headers: HeaderMap,
    pub payload: bytes::Bytes,
}

impl DeadLetter {
    fn from_message(message: jetstream::message::StreamMessage) -> Self {
        let get = |name: &str| {
            message
                .headers
                .get(name)
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default()
        };
        Self {
            sequence: message.sequence,
            stored: chrono::DateTime::from_timestamp_nanos(
                i64::try_from(message.time.unix_timestamp_nanos()).unwrap_or(i64::MAX),
            ),
            consumer: get(headers::DEAD_LETTER_CONSUMER),
            reason: get(headers::DEAD_LETTER_REASON),
            original_stream: get(headers::DEAD_LETTER_STREAM),
            original_sequence: get(headers::DEAD_LETTER_SEQUENCE).parse().unwrap_or(0),
            original_subject: get(headers::DEAD_LETTER_SUBJECT),
            deliveries: get(headers::DEAD_LETTER_DELIVERIES).parse().unwrap_or(0),
            event_type: get(headers::EVENT_TYPE),
            event_id: get(headers::EVENT_ID),
            headers: message.headers,
            payload: message.payload,
        }
    }
}

/// Every dead letter, or those of one durable consumer, oldest first.
pub async fn list(
    jetstream: &jetstream::Context,
    durable: Option<&str>,
) -> anyhow::Result<Vec<DeadLetter>> {
    Ok(page(jetstream, durable, 0, usize::MAX - 1).await?.0)
}

/// One page of dead letters, oldest first, after the dead-letter sequence `after`: at most
/// `limit`, and the `after` of the next page (`None` on the last).
pub async fn page(
    jetstream: &jetstream::Context,
    durable: Option<&str>,
    after: u64,
    limit: usize,
) -> anyhow::Result<(Vec<DeadLetter>, Option<u64>)> {
    let Some(stream) = dead_letter_stream(jetstream).await? else {
        return Ok((Vec::new(), None));
    };
    let filter = match durable {
        Some(durable) => names::dead_letter_subject(durable)?,
        None => names::dead_letter_subjects(),
    };
    let mut letters = Vec::new();
    let mut next = after.saturating_add(1);
    while letters.len() <= limit {
        match stream.get_first_raw_message_by_subject(&filter, next).await {
            Ok(message) => {
                next = message.sequence + 1;
                letters.push(DeadLetter::from_message(message));
            }
            Err(error) if error.kind() == LastRawMessageErrorKind::NoMessageFound => break,
            Err(error) => return Err(error).context("reading the dead-letter stream"),
        }
    }
    // One more than asked was read to know whether another page follows.
    let more = letters.len() > limit;
    letters.truncate(limit);
    let next_after = more.then(|| letters.last().map_or(after, |l| l.sequence));
    Ok((letters, next_after))
}

/// How many dead letters each durable consumer holds (only those holding any).
pub async fn counts(
    jetstream: &jetstream::Context,
) -> anyhow::Result<std::collections::HashMap<String, u64>> {
    let Some(stream) = dead_letter_stream(jetstream).await? else {
        return Ok(Default::default());
    };
    let mut subjects = stream
        .info_with_subjects(names::dead_letter_subjects())
        .await
        .context("reading the dead-letter stream's subjects")?;
    let mut counts = std::collections::HashMap::new();
    while let Some(entry) = subjects.next().await {
        let (subject, count) = entry.context("reading the dead-letter stream's subjects")?;
        if let Some(durable) = subject.split_once('.').map(|(_, durable)| durable) {
            counts.insert(durable.to_owned(), count as u64);
        }
    }
    Ok(counts)
}

/// The dead-letter stream, or `None` before anything declared it.
async fn dead_letter_stream(
    jetstream: &jetstream::Context,
) -> anyhow::Result<Option<jetstream::stream::Stream>> {
    match jetstream.get_stream(names::DEAD_LETTER_STREAM).await {
        Ok(stream) => Ok(Some(stream)),
        Err(error)
            if matches!(
                error.kind(),
                GetStreamErrorKind::JetStream(ref e) if e.error_code() == ErrorCode::STREAM_NOT_FOUND
            ) =>
        {
            Ok(None)
        }
        Err(error) => Err(error).context("opening the dead-letter stream"),
    }
}

/// Which dead letters of a consumer to redrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection {
    /// All of them, oldest first, at most [`REDRIVE_AT_MOST`] per call.
    All,
    /// One, by its sequence in the dead-letter stream.
    Sequence(u64),
}

/// The most dead letters one redrive puts back; the rest wait for the next call.
pub const REDRIVE_AT_MOST: usize = 1000;

/// What a redrive did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Redriven {
    pub redriven: usize,
    /// The consumer's dead letters still stored afterwards.
    pub remaining: u64,
}

/// Why a redrive did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    #[error("no dead letter of {durable} has sequence {sequence}")]
    NoSuchLetter { durable: String, sequence: u64 },
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// Puts dead letters of `durable` back on that durable consumer, and on no other, then
/// removes them from the dead-letter stream.
///
/// Each goes to the durable's redrive subject in the event's own stream
/// ([`names::redrive_subject`]), with its original headers, the same event id and a new
/// `Nats-Msg-Id` (the old one may still be inside the duplicate window). The consumer handles
/// it as any delivery, retries and dead letter included.
pub async fn redrive(
    jetstream: &jetstream::Context,
    durable: &str,
    selection: Selection,
) -> Result<Redriven, RedriveError> {
    let letters = match selection {
        Selection::All => page(jetstream, Some(durable), 0, REDRIVE_AT_MOST).await?.0,
        Selection::Sequence(sequence) => {
            let (letters, _) =
                page(jetstream, Some(durable), sequence.saturating_sub(1), 1).await?;
            letters
                .into_iter()
                .filter(|l| l.sequence == sequence)
                .collect()
        }
    };
    if let Selection::Sequence(sequence) = selection
        && letters.is_empty()
    {
        return Err(RedriveError::NoSuchLetter {
            durable: durable.to_owned(),
            sequence,
        });
    }
    let stream = jetstream
        .get_stream_no_info(names::DEAD_LETTER_STREAM)
        .await
        .context("opening the dead-letter stream")?;
    let mut redriven = 0;
    for letter in letters {
        let domain = letter
            .original_subject
            .split('.')
            .nth(1)
            .filter(|domain| !domain.is_empty())
            .with_context(|| {
                format!(
                    "dead letter {} has no original event subject ({:?})",
                    letter.sequence, letter.original_subject
                )
            })?;
        let mut out = copy_headers(&letter.headers, |name| {
            name != headers::MSG_ID && !headers::DEAD_LETTER_HEADERS.contains(&name)
        });
        // A new de-duplication id: the original may still be inside the duplicate window.
        out.insert(headers::MSG_ID, uuid::Uuid::now_v7().to_string().as_str());
        out.insert(headers::REDRIVEN_FROM, letter.original_subject.as_str());
        jetstream
            .publish_with_headers(
                names::redrive_subject(domain, durable).map_err(anyhow::Error::from)?,
                out,
                letter.payload.clone(),
            )
            .await
            .map_err(anyhow::Error::from)?
            .await
            .with_context(|| format!("republishing dead letter {}", letter.sequence))?;
        stream
            .delete_message(letter.sequence)
            .await
            .with_context(|| format!("deleting dead letter {}", letter.sequence))?;
        redriven += 1;
    }
    let remaining = counts(jetstream).await?.get(durable).copied().unwrap_or(0);
    Ok(Redriven {
        redriven,
        remaining,
    })
}

/// The `<service>.redrive_dead_letters` endpoint of a service whose consumers are `durables`:
/// what the gateway's `POST /api/v1/admin/dead-letters/{consumer}/redrive` asks (admins).
/// A durable of another service answers not found, as does a sequence it does not hold.
pub fn redrive_endpoint(
    jetstream: jetstream::Context,
    service: &'static str,
    durables: Vec<String>,
) -> rpc::Endpoint {
    let descriptor: &'static rpc::MethodDescriptor = Box::leak(Box::new(rpc::MethodDescriptor {
        service,
        method: names::REDRIVE_METHOD,
        subject: Box::leak(names::redrive_endpoint_subject(service).into_boxed_str()),
        access: rpc::Access::Admin,
        request_type: "emporium.gateway.v1.RedriveDeadLettersRequest",
        response_type: "emporium.gateway.v1.RedriveDeadLettersResponse",
    }));
    let durables = std::sync::Arc::new(durables);
    rpc::Endpoint::with_descriptor(
        descriptor,
        move |_ctx: rpc::Context, request: api::gateway::RedriveDeadLettersRequest| {
            let (jetstream, durables) = (jetstream.clone(), durables.clone());
            async move {
                if !durables.contains(&request.consumer) {
                    return Err(rpc::Error::not_found(format!(
                        "{service} has no consumer {}",
                        request.consumer
                    )));
                }
                let selection = match request.sequence {
                    0 => Selection::All,
                    sequence => Selection::Sequence(sequence),
                };
                match redrive(&jetstream, &request.consumer, selection).await {
                    Ok(done) => Ok(api::gateway::RedriveDeadLettersResponse {
                        redriven: done.redriven as u32,
                        remaining: done.remaining,
                    }),
                    Err(RedriveError::NoSuchLetter { durable, sequence }) => {
                        Err(rpc::Error::not_found(format!(
                            "{durable} has no dead letter with sequence {sequence}"
                        )))
                    }
                    Err(RedriveError::Failed(error)) => {
                        tracing::error!(consumer = %request.consumer, error = format!("{error:#}"), "redriving dead letters");
                        Err(rpc::Error::unavailable(
                            "the dead letters could not be redriven",
                        ))
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advisories_are_read_with_or_without_a_reason() {
        let max: Advisory = serde_json::from_str(
            r#"{"type":"io.nats.jetstream.advisory.v1.max_deliver","id":"x","timestamp":"2024-01-01T00:00:00Z","stream":"EVENTS_PRODUCT","consumer":"n_product_created","stream_seq":7,"deliveries":5}"#,
        )
        .unwrap();
        assert_eq!(max.stream_seq, 7);
        assert_eq!(max.deliveries, 5);
        assert_eq!(max.reason, "");
        let term: Advisory = serde_json::from_str(
            r#"{"type":"io.nats.jetstream.advisory.v1.terminated","stream":"S","consumer":"C","consumer_seq":3,"stream_seq":2,"deliveries":1,"reason":"unknown product"}"#,
        )
        .unwrap();
        assert_eq!(term.reason, "unknown product");
        assert_eq!(
            Reason::Terminated(Some(term.reason)).header_value(),
            "terminated: unknown product"
        );
        assert_eq!(Reason::MaxDeliveries.header_value(), "max_deliveries");
    }
}
