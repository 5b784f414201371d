//! Names of the NATS headers event messages carry. Written here once.

/// JetStream's de-duplication id: the outbox row id (a new one when a dead letter is redriven).
pub const MSG_ID: &str = "Nats-Msg-Id";
/// The event id: the outbox row id, kept across redrives. Consumers deduplicate on it.
pub const EVENT_ID: &str = "Emporium-Event-Id";
/// The event name: "product.created".
pub const EVENT_TYPE: &str = "Emporium-Event-Type";
/// The payload version.
pub const EVENT_VERSION: &str = "Emporium-Event-Version";
/// The service that published the event.
pub const PRODUCER: &str = "Emporium-Producer";
/// The id of the aggregate the event is about.
pub const AGGREGATE_ID: &str = "Emporium-Aggregate-Id";
/// Always `application/json`: payloads are canonical proto3 JSON.
pub const CONTENT_TYPE: &str = rpc::headers::CONTENT_TYPE;
pub const JSON: &str = rpc::headers::JSON;
pub use telemetry::propagation::{TRACEPARENT, TRACESTATE};

/// Why the message is a dead letter: `max_deliveries`, or `terminated` with the reason.
pub const DEAD_LETTER_REASON: &str = "Emporium-Dead-Letter-Reason";
/// The durable consumer that gave up on it.
pub const DEAD_LETTER_CONSUMER: &str = "Emporium-Dead-Letter-Consumer";
/// The stream, sequence and subject of the original message.
pub const DEAD_LETTER_STREAM: &str = "Emporium-Dead-Letter-Stream";
pub const DEAD_LETTER_SEQUENCE: &str = "Emporium-Dead-Letter-Sequence";
pub const DEAD_LETTER_SUBJECT: &str = "Emporium-Dead-Letter-Subject";
/// How many times the consumer received it.
pub const DEAD_LETTER_DELIVERIES: &str = "Emporium-Dead-Letter-Deliveries";

/// On a redriven dead letter: the subject it was first published to.
pub const REDRIVEN_FROM: &str = "Emporium-Redriven-From";

/// Headers a dead letter adds, which a redrive removes again.
pub(crate) const DEAD_LETTER_HEADERS: [&str; 6] = [
    DEAD_LETTER_REASON,
    DEAD_LETTER_CONSUMER,
    DEAD_LETTER_STREAM,
    DEAD_LETTER_SEQUENCE,
    DEAD_LETTER_SUBJECT,
    DEAD_LETTER_DELIVERIES,
];
