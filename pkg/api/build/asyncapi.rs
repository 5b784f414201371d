//! The AsyncAPI 3.0 catalogue of every domain event.

use std::collections::BTreeMap;

use serde_json::{Value as Json, json};

use crate::contracts::Contracts;
use crate::schema::{schema_of, schema_ref};

/// The AsyncAPI 3.0 catalogue of every event: one channel per event (its subject pattern,
/// with the aggregate id as a parameter), the payload's JSON schema, the producing service
/// and the consuming ones. Subject patterns follow pkg/events' naming rules; a test there
/// checks that both agree.
pub fn document(contracts: &Contracts) -> Json {
    let mut channels = serde_json::Map::new();
    let mut operations = serde_json::Map::new();
    let mut messages = serde_json::Map::new();
    let mut schemas = BTreeMap::new();
    for event in &contracts.events {
        schema_of(contracts, &event.message, &mut schemas);
        let message_name = event.message.name().to_owned();
        let summary = event
            .comment
            .lines()
            .next()
            .unwrap_or(&event.name)
            .to_owned();
        messages.insert(
            event.name.clone(),
            json!({
                "name": message_name,
                "title": event.name,
                "summary": summary,
                "description": event.comment,
                "contentType": "application/json",
                "headers": { "$ref": "#/components/schemas/EventHeaders" },
                "payload": schema_ref(&event.message),
                "x-event-version": event.version,
                "x-producer": event.producer,
                "x-consumers": event.consumers,
            }),
        );
        channels.insert(
            event.name.clone(),
            json!({
                "address": format!("events.{}.{{aggregate_id}}.{}", event.domain, event.event),
                "title": event.name,
                "description": format!("Stored in the EVENTS_{} stream.", event.domain.to_ascii_uppercase()),
                "parameters": { "aggregate_id": { "description": "The id of the aggregate the event is about; its events are published in commit order." } },
                "messages": { message_name.clone(): { "$ref": format!("#/components/messages/{}", event.name) } },
            }),
        );
        let channel_ref = json!({ "$ref": format!("#/channels/{}", event.name) });
        let message_ref =
            json!({ "$ref": format!("#/channels/{}/messages/{message_name}", event.name) });
        operations.insert(
            format!("{}.{}.send", event.producer, event.name),
            json!({
                "action": "send",
                "title": format!("{} publishes {}", event.producer, event.name),
                "channel": channel_ref,
                "messages": [message_ref],
                "x-service": event.producer,
            }),
        );
        for consumer in &event.consumers {
            operations.insert(
                format!("{consumer}.{}.receive", event.name),
                json!({
                    "action": "receive",
                    "title": format!("{consumer} consumes {}", event.name),
                    "channel": channel_ref,
                    "messages": [message_ref],
                    "x-service": consumer,
                }),
            );
        }
    }
    let mut components: serde_json::Map<String, Json> = schemas.into_iter().collect();
    components.insert(
        "EventHeaders".into(),
        json!({
            "type": "object",
            "description": "NATS headers of every event message.",
            "properties": {
                "Nats-Msg-Id": { "type": "string", "format": "uuid", "description": "The outbox row id; JetStream drops a duplicate within the stream's duplicate window." },
                "Emporium-Event-Id": { "type": "string", "format": "uuid", "description": "The event id (the outbox row id), kept when a dead letter is redriven; consumers deduplicate on it." },
                "Emporium-Event-Type": { "type": "string", "description": "The event name, e.g. product.created." },
                "Emporium-Event-Version": { "type": "string", "description": "The payload version." },
                "Emporium-Producer": { "type": "string", "description": "The service that published it." },
                "Emporium-Aggregate-Id": { "type": "string" },
                "traceparent": { "type": "string", "description": "W3C trace context of the change." },
                "tracestate": { "type": "string" },
                "Content-Type": { "type": "string", "const": "application/json" }
            }
        }),
    );
    json!({
        "x-generated-by": "pkg/api/build from pkg/api/proto; do not edit, regenerate with `cargo xtask api-docs`",
        "asyncapi": "3.0.0",
        "info": {
            "title": "Emporium events",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The domain events of the Emporium platform, on JetStream: one stream per domain (EVENTS_<DOMAIN>), subjects events.<domain>.<aggregate_id>.<event>, canonical proto3 JSON payloads. Generated from the event declarations in pkg/api/proto; published through each producer's transactional outbox.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "dev": { "host": "127.0.0.1:4222", "protocol": "nats", "description": "The dev stack (make up)." }
        },
        "channels": channels,
        "operations": operations,
        "components": { "messages": messages, "schemas": components },
    })
}
