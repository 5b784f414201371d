//! The one generator of event stream names, subjects and consumer names.
//!
//! Every string that names a stream, a subject or a durable consumer of the events machinery
//! is built here from an [`api::EventDescriptor`] (which comes from the contracts) and nowhere
//! else, in the spirit of wadm's `TopicGenerator`. The AsyncAPI catalogue that pkg/api
//! generates spells the same patterns; a test checks that both agree.

use api::EventDescriptor;

/// The first token of every event subject.
const EVENTS_PREFIX: &str = "events";
/// The first token of every dead-letter subject.
const DEAD_LETTER_PREFIX: &str = "deadletter";
/// The stream that keeps the messages consumers gave up on.
pub const DEAD_LETTER_STREAM: &str = "DEAD_LETTERS";

/// JetStream's advisory published when a message reached a consumer's `max_deliver`.
const ADVISORY_MAX_DELIVERIES: &str = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES";
/// JetStream's advisory published when a consumer terminated a message (`+TERM`).
const ADVISORY_TERMINATED: &str = "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED";
/// JetStream's advisory published when a consumer nak'ed a message.
const ADVISORY_NAKED: &str = "$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED";

/// Why a name could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error(
        "{what} {value:?} is not a valid subject token (empty, or has '.', '*', '>' or whitespace)"
    )]
    BadToken { what: &'static str, value: String },
    #[error("consumer name {0:?} must be lower case letters, digits, '_' and '-'")]
    BadConsumer(String),
}

/// `EVENTS_PRODUCT`: the stream of one domain.
pub fn stream_name(domain: &str) -> String {
    format!("EVENTS_{}", domain.to_ascii_uppercase())
}

/// `events.product.>`: everything the stream of `domain` stores.
pub fn stream_subjects(domain: &str) -> String {
    format!("{EVENTS_PREFIX}.{domain}.>")
}

/// The stream an event is stored in.
pub fn stream_of(event: &EventDescriptor) -> String {
    stream_name(event.domain)
}

/// `events.product.<aggregate_id>.created`: the subject of one event of one aggregate.
pub fn subject(event: &EventDescriptor, aggregate_id: &str) -> Result<String, NameError> {
    check_token("aggregate id", aggregate_id)?;
    Ok(format!(
        "{EVENTS_PREFIX}.{}.{aggregate_id}.{}",
        event.domain, event.event
    ))
}

/// `events.product.<aggregate_id>.>`: every event of one aggregate (a streaming route's
/// subscription).
pub fn aggregate_subjects(domain: &str, aggregate_id: &str) -> Result<String, NameError> {
    check_token("aggregate id", aggregate_id)?;
    Ok(format!("{EVENTS_PREFIX}.{domain}.{aggregate_id}.>"))
}

/// `events.product.{id}.>`: the documented pattern of a streaming route whose aggregate id is
/// the path parameter `key`.
pub fn aggregate_pattern(domain: &str, key: &str) -> String {
    format!("{EVENTS_PREFIX}.{domain}.{{{key}}}.>")
}

/// `events.product.*.created`: every aggregate's events of one type (a consumer's filter).
pub fn filter_subject(event: &EventDescriptor) -> String {
    format!("{EVENTS_PREFIX}.{}.*.{}", event.domain, event.event)
}

/// `events.product.{aggregate_id}.created`: the AsyncAPI channel address of an event.
pub fn channel_address(event: &EventDescriptor) -> String {
    format!(
        "{EVENTS_PREFIX}.{}.{{aggregate_id}}.{}",
        event.domain, event.event
    )
}

/// `notification_product_created`: the durable consumer of `consumer` (a service name) for
/// one event type. One durable per event type keeps each type's retries and lag apart.
pub fn durable_name(consumer: &str, event: &EventDescriptor) -> Result<String, NameError> {
    if consumer.is_empty()
        || !consumer
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    {
        return Err(NameError::BadConsumer(consumer.to_owned()));
    }
    Ok(format!("{consumer}_{}_{}", event.domain, event.event))
}

/// The token between the domain and the durable in a redrive subject.
const REDRIVE_TOKEN: &str = "redrive";
/// The method every service with consumers serves: put dead letters back on a consumer.
pub const REDRIVE_METHOD: &str = "redrive_dead_letters";

/// `events.order.redrive.notification_order_paid`: where a redriven dead letter of `durable`
/// goes. It lies inside the domain's stream, and only that durable's filter takes it (the
/// filters of the others end in their event's name, and no aggregate is called "redrive"),
/// so a redrive reaches the consumer that gave the event up and no other.
pub fn redrive_subject(domain: &str, durable: &str) -> Result<String, NameError> {
    check_token("domain", domain)?;
    check_token("durable consumer name", durable)?;
    Ok(format!(
        "{EVENTS_PREFIX}.{domain}.{REDRIVE_TOKEN}.{durable}"
    ))
}

/// `notification.redrive_dead_letters`: the redrive endpoint of a service with consumers.
pub fn redrive_endpoint_subject(service: &str) -> String {
    format!("{service}.{REDRIVE_METHOD}")
}

/// Every durable consumer the contracts declare: (service, event, durable), sorted by durable.
pub fn durables() -> Vec<(&'static str, &'static EventDescriptor, String)> {
    let mut all: Vec<_> = api::EVENTS
        .iter()
        .flat_map(|&event| {
            event.consumers.iter().filter_map(move |service| {
                durable_name(service, event)
                    .ok()
                    .map(|durable| (*service, event, durable))
            })
        })
        .collect();
    all.sort_by(|a, b| a.2.cmp(&b.2));
    all
}

/// `deadletter.>`: everything the dead-letter stream stores.
pub fn dead_letter_subjects() -> String {
    format!("{DEAD_LETTER_PREFIX}.>")
}

/// `deadletter.<durable>`: where the dead letters of one durable consumer go.
pub fn dead_letter_subject(durable: &str) -> Result<String, NameError> {
    check_token("durable consumer name", durable)?;
    Ok(format!("{DEAD_LETTER_PREFIX}.{durable}"))
}

/// The `Nats-Msg-Id` of a dead letter: one per original message and consumer, so that several
/// replicas seeing the same advisory store it once.
pub fn dead_letter_message_id(durable: &str, stream: &str, sequence: u64) -> String {
    format!("{DEAD_LETTER_PREFIX}:{durable}:{stream}:{sequence}")
}

/// The advisory subject announcing that `durable` on `stream` reached its max deliveries.
pub fn max_deliveries_advisory(stream: &str, durable: &str) -> String {
    format!("{ADVISORY_MAX_DELIVERIES}.{stream}.{durable}")
}

/// The advisory subject announcing that `durable` on `stream` terminated a message.
pub fn terminated_advisory(stream: &str, durable: &str) -> String {
    format!("{ADVISORY_TERMINATED}.{stream}.{durable}")
}

/// The advisory subject announcing that `durable` on `stream` nak'ed a message (for watching
/// retries with `nats sub`).
pub fn naked_advisory(stream: &str, durable: &str) -> String {
    format!("{ADVISORY_NAKED}.{stream}.{durable}")
}

fn check_token(what: &'static str, value: &str) -> Result<(), NameError> {
    let bad = value.is_empty()
        || value
            .chars()
            .any(|c| c == '.' || c == '*' || c == '>' || c.is_whitespace());
    if bad {
        Err(NameError::BadToken {
            what,
            value: value.to_owned(),
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::product::events::{INVENTORY_RESERVED, PRODUCT_CREATED};

    #[test]
    fn streams_and_subjects_follow_the_domain_and_event() {
        assert_eq!(stream_of(&PRODUCT_CREATED), "EVENTS_PRODUCT");
        assert_eq!(stream_of(&INVENTORY_RESERVED), "EVENTS_INVENTORY");
        assert_eq!(stream_subjects("product"), "events.product.>");
        assert_eq!(
            subject(&PRODUCT_CREATED, "0190aaaa-0000-7000-8000-000000000001").unwrap(),
            "events.product.0190aaaa-0000-7000-8000-000000000001.created"
        );
        assert_eq!(filter_subject(&PRODUCT_CREATED), "events.product.*.created");
        assert_eq!(
            durable_name("notification", &PRODUCT_CREATED).unwrap(),
            "notification_product_created"
        );
        assert_eq!(
            dead_letter_subject("notification_product_created").unwrap(),
            "deadletter.notification_product_created"
        );
        assert_eq!(
            max_deliveries_advisory("EVENTS_PRODUCT", "n_product_created"),
            "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.EVENTS_PRODUCT.n_product_created"
        );
    }

    #[test]
    fn tokens_that_would_change_the_subject_are_refused() {
        for bad in ["", "a.b", "*", ">", "a b"] {
            assert!(subject(&PRODUCT_CREATED, bad).is_err(), "{bad:?}");
            assert!(aggregate_subjects("product", bad).is_err(), "{bad:?}");
        }
        assert!(durable_name("Notification", &PRODUCT_CREATED).is_err());
        assert!(durable_name("a.b", &PRODUCT_CREATED).is_err());
    }

    /// pkg/api writes the channel addresses and stream names into the AsyncAPI catalogue; they
    /// must be the ones this module generates.
    #[test]
    fn the_event_catalogue_uses_these_names() {
        let document: serde_json::Value = serde_json::from_str(api::ASYNCAPI_JSON).unwrap();
        for event in api::EVENTS {
            let channel = &document["channels"][event.name];
            assert_eq!(channel["address"], channel_address(event), "{}", event.name);
            let description = channel["description"].as_str().unwrap();
            assert!(description.contains(&stream_of(event)), "{description}");
        }
    }

    /// pkg/api writes the subject of each streaming route into the OpenAPI document; it must
    /// be the one this module subscribes to.
    #[test]
    fn streaming_routes_document_these_subjects() {
        let document: serde_json::Value = serde_json::from_str(api::OPENAPI_JSON).unwrap();
        let mut streams = 0;
        for route in api::ROUTES {
            let Some(stream) = &route.stream else {
                continue;
            };
            streams += 1;
            let operation = &document["paths"][route.path][route.http_method.to_lowercase()];
            assert_eq!(
                operation["x-stream"]["subject"],
                aggregate_pattern(stream.domain, stream.key),
                "{}",
                route.path
            );
            assert_eq!(
                aggregate_subjects(stream.domain, "0190aaaa-0000-7000-8000-000000000001").unwrap(),
                format!(
                    "events.{}.0190aaaa-0000-7000-8000-000000000001.>",
                    stream.domain
                )
            );
        }
        assert!(streams > 0, "no contract declares a streaming route");
    }
}
