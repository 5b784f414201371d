//! The dead-letter routes of the gateway's own contract (emporium/gateway/v1), for admins.
//!
//! `GET /api/v1/admin/dead-letters` is answered here, from the DEAD_LETTERS stream, which the
//! gateway may read (its info and its messages by sequence) and nothing more.
//! `POST /api/v1/admin/dead-letters/{consumer}/redrive` is passed to the service that runs the
//! consumer (`<service>.redrive_dead_letters`, served by every service with consumers): only
//! that service may put an event back on its own durable, so the gateway never publishes an
//! event nor deletes a dead letter. Which service runs a consumer comes from the contracts.

use std::time::Duration;

use api::gateway::{
    ConsumerDeadLetters, DeadLetter, ListDeadLettersRequest, ListDeadLettersResponse,
    RedriveDeadLettersRequest,
};
use axum::response::Response;
use bytes::Bytes;
use events::dead_letter;

use crate::error::ApiError;

/// A page when the request names no size, and the most one may name (the contract's bound).
const DEFAULT_PAGE: usize = 50;
/// The payload shown of each dead letter.
const PAYLOAD_SHOWN: usize = 4096;

/// Whether `route` is one of the dead-letter routes, and which.
pub fn route(route: &api::Route) -> Option<Route> {
    use api::gateway::methods::{LIST_DEAD_LETTERS, REDRIVE_DEAD_LETTERS};
    if route.descriptor.subject == LIST_DEAD_LETTERS.subject {
        Some(Route::List)
    } else if route.descriptor.subject == REDRIVE_DEAD_LETTERS.subject {
        Some(Route::Redrive)
    } else {
        None
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    List,
    Redrive,
}

/// `GET /api/v1/admin/dead-letters`: a page of dead letters and every consumer's count.
pub async fn list(
    nats: &async_nats::Client,
    payload: &[u8],
    time_left: Duration,
) -> Result<Response, ApiError> {
    let request: ListDeadLettersRequest = decode(payload)?;
    let durables = events::names::durables();
    if !request.consumer.is_empty() && !durables.iter().any(|d| d.2 == request.consumer) {
        return Err(ApiError::not_found(format!(
            "no service consumes by the name {}",
            request.consumer
        )));
    }
    let limit = match request.page_size {
        0 => DEFAULT_PAGE,
        n => usize::try_from(n).unwrap_or(DEFAULT_PAGE),
    };
    let jetstream = async_nats::jetstream::new(nats.clone());
    let filter = (!request.consumer.is_empty()).then_some(request.consumer.as_str());
    let read = async {
        let (letters, next_after) =
            dead_letter::page(&jetstream, filter, request.after, limit).await?;
        let counts = dead_letter::counts(&jetstream).await?;
        anyhow::Ok((letters, next_after, counts))
    };
    let (letters, next_after, counts) = tokio::time::timeout(time_left, read)
        .await
        .map_err(|_| unavailable("reading the dead letters took too long"))?
        .map_err(|error| {
            tracing::warn!(error = format!("{error:#}"), "reading the dead letters");
            unavailable("the dead letters could not be read")
        })?;
    let service_of = |consumer: &str| {
        durables
            .iter()
            .find(|d| d.2 == consumer)
            .map(|d| d.0.to_owned())
            .unwrap_or_default()
    };
    let response = ListDeadLettersResponse {
        dead_letters: letters
            .into_iter()
            .map(|letter| {
                let (payload, payload_truncated) = shown(&letter.payload);
                DeadLetter {
                    sequence: letter.sequence,
                    stored_at: api::timestamp(letter.stored),
                    service: service_of(&letter.consumer),
                    consumer: letter.consumer,
                    reason: letter.reason,
                    event_type: letter.event_type,
                    event_id: letter.event_id,
                    subject: letter.original_subject,
                    stream: letter.original_stream,
                    stream_sequence: letter.original_sequence,
                    deliveries: letter.deliveries,
                    payload,
                    payload_truncated,
                }
            })
            .collect(),
        consumers: durables
            .iter()
            .map(|(service, event, durable)| ConsumerDeadLetters {
                consumer: durable.clone(),
                service: (*service).to_owned(),
                event_type: event.name.to_owned(),
                dead_letters: counts.get(durable).copied().unwrap_or(0),
            })
            .collect(),
        next_after: next_after.unwrap_or(0),
    };
    crate::discovery::json_answer(&response, "the dead letters")
}

/// The service that runs `consumer`, and the subject of its redrive endpoint, for
/// `POST /api/v1/admin/dead-letters/{consumer}/redrive`. The caller forwards the request
/// there with the caller's principal; the service checks it again.
pub fn redrive_subject(payload: &[u8]) -> Result<String, ApiError> {
    let request: RedriveDeadLettersRequest = decode(payload)?;
    events::names::durables()
        .into_iter()
        .find(|d| d.2 == request.consumer)
        .map(|(service, _, _)| events::names::redrive_endpoint_subject(service))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no service consumes by the name {}",
                request.consumer
            ))
        })
}

/// The request, decoded as a service would (unknown fields refused) and checked against the
/// contract's field rules.
fn decode<T>(payload: &[u8]) -> Result<T, ApiError>
where
    T: serde::de::DeserializeOwned + rpc::rules::Validate,
{
    let request: T = serde_json::from_slice(payload)
        .map_err(|error| ApiError::invalid_argument(format!("invalid request: {error}")))?;
    let mut violations = rpc::Violations::new();
    request.validate("", &mut violations);
    violations.into_result().map_err(ApiError::from)?;
    Ok(request)
}

/// The payload as text, at most [`PAYLOAD_SHOWN`] bytes of it, cut on a character boundary.
fn shown(payload: &Bytes) -> (String, bool) {
    let text = String::from_utf8_lossy(payload);
    if text.len() <= PAYLOAD_SHOWN {
        return (text.into_owned(), false);
    }
    let mut end = PAYLOAD_SHOWN;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (text[..end].to_owned(), true)
}

fn unavailable(message: &str) -> ApiError {
    ApiError::service(rpc::ErrorCode::Unavailable, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_payloads_are_cut_on_a_character_boundary() {
        let short = Bytes::from_static(br#"{"a":1}"#);
        assert_eq!(shown(&short), (r#"{"a":1}"#.to_owned(), false));
        // 'é' is two bytes: 4,095 bytes of 'a' then 'é' straddles the limit.
        let mut long = "a".repeat(PAYLOAD_SHOWN - 1);
        long.push_str("ééé");
        let (text, cut) = shown(&Bytes::from(long));
        assert!(cut);
        assert_eq!(text.len(), PAYLOAD_SHOWN - 1);
    }

    #[test]
    fn a_redrive_goes_to_the_service_that_runs_the_consumer() {
        let (service, event, durable) = events::names::durables()
            .into_iter()
            .find(|d| d.0 == "notification")
            .expect("notification consumes events");
        let body = format!(r#"{{"consumer":"{durable}"}}"#);
        assert_eq!(
            redrive_subject(body.as_bytes()).unwrap(),
            format!("{service}.redrive_dead_letters")
        );
        assert!(event.consumers.contains(&service));
        let unknown = redrive_subject(br#"{"consumer":"nobody_order_paid"}"#).unwrap_err();
        assert_eq!(unknown.code().status(), axum::http::StatusCode::NOT_FOUND);
        let bad = redrive_subject(br#"{"consumer":"Bad Name"}"#).unwrap_err();
        assert_eq!(bad.code().status(), axum::http::StatusCode::BAD_REQUEST);
        assert_eq!(bad.details()[0].field, "consumer");
    }
}
