//! W3C trace context carried in NATS headers, and [`header_value`], the one way the platform
//! turns text into a NATS header value.
//!
//! The gateway injects `traceparent`/`tracestate` into every NATS request, services extract it
//! to parent their request span, and events carry it the same way. When no OpenTelemetry layer
//! is installed the spans have no OpenTelemetry context, so callers pass the incoming headers as
//! a fallback and the trace id still survives every hop.

use async_nats::{HeaderMap, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";

/// The longest header value written, in bytes; longer text is cut (at a character boundary).
pub const MAX_HEADER_VALUE_BYTES: usize = 1024;

/// `text` as a NATS header value, whatever it contains.
///
/// async-nats panics on a header value with a line break, and a reply's headers and payload
/// together must fit the server's max payload; a value may quote what a client sent (an
/// unknown field's name, a request id), so every value the platform writes goes through
/// here. Control characters become spaces and text past [`MAX_HEADER_VALUE_BYTES`] is cut.
pub fn header_value(text: &str) -> HeaderValue {
    let mut end = text.len().min(MAX_HEADER_VALUE_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let text = &text[..end];
    if text.chars().any(char::is_control) {
        let cleaned: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        HeaderValue::from(cleaned)
    } else {
        HeaderValue::from(text)
    }
}

/// The raw W3C trace headers of one request, kept so they can be forwarded verbatim.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceHeaders {
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

impl TraceHeaders {
    pub fn from_nats(headers: Option<&HeaderMap>) -> Self {
        let get = |name: &str| {
            headers
                .and_then(|h| h.get(name))
                .map(|v| v.as_str().to_owned())
                .filter(|v| !v.is_empty())
        };
        Self {
            traceparent: get(TRACEPARENT),
            tracestate: get(TRACESTATE),
        }
    }

    /// The trace id (32 hex digits) of a well-formed `traceparent`, for logs.
    pub fn trace_id(&self) -> Option<&str> {
        let parent = self.traceparent.as_deref()?;
        let mut parts = parent.split('-');
        let _version = parts.next()?;
        let trace_id = parts.next()?;
        (trace_id.len() == 32).then_some(trace_id)
    }
}

struct NatsExtractor<'a>(&'a TraceHeaders);

impl Extractor for NatsExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            TRACEPARENT => self.0.traceparent.as_deref(),
            TRACESTATE => self.0.tracestate.as_deref(),
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT, TRACESTATE]
    }
}

struct NatsInjector<'a>(&'a mut HeaderMap);

impl Injector for NatsInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, header_value(&value));
    }
}

/// Makes `span` a child of the remote context in `incoming`, when there is one.
/// Does nothing for a disabled span (a request span nobody exports), so that case costs no
/// header parsing.
pub fn set_parent(span: &tracing::Span, incoming: &TraceHeaders) {
    if incoming.traceparent.is_none() || span.is_disabled() {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&NatsExtractor(incoming));
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// Writes the current span's trace context into `headers`; when the current span has no
/// OpenTelemetry context (no exporter configured), forwards `fallback` unchanged.
pub fn inject_current(headers: &mut HeaderMap, fallback: &TraceHeaders) {
    let context = tracing::Span::current().context();
    if context.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&context, &mut NatsInjector(headers));
        return;
    }
    if let Some(parent) = &fallback.traceparent {
        headers.insert(TRACEPARENT, header_value(parent));
    }
    if let Some(state) = &fallback.tracestate {
        headers.insert(TRACESTATE, header_value(state));
    }
}

/// Writes `span`'s trace context into `headers`, replacing what is there, when the span has
/// an OpenTelemetry context (it is exported); leaves `headers` alone otherwise. For a span that
/// stands for the message itself (a request's client span, an event's producer span), whose
/// receiver must become its child.
pub fn inject_span(span: &tracing::Span, headers: &mut HeaderMap) {
    if span.is_disabled() {
        return;
    }
    let context = span.context();
    if context.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&context, &mut NatsInjector(headers));
    }
}

/// The trace context of the current span, to keep with work that runs later (a saga's steps):
/// the current span's own context when it is exported, else `fallback` (the incoming headers,
/// so the trace id survives without an exporter).
pub fn current(fallback: &TraceHeaders) -> TraceHeaders {
    let mut headers = HeaderMap::new();
    inject_current(&mut headers, fallback);
    TraceHeaders::from_nats(Some(&headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_id_is_read_from_a_well_formed_traceparent() {
        let headers = TraceHeaders {
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            tracestate: None,
        };
        assert_eq!(headers.trace_id(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert_eq!(TraceHeaders::default().trace_id(), None);
    }

    #[test]
    fn header_values_lose_control_characters_and_excess_length() {
        assert_eq!(header_value("plain text").as_str(), "plain text");
        assert_eq!(
            header_value("unknown field `a\r\nb`\t\0").as_str(),
            "unknown field `a  b`  "
        );
        let long = "é".repeat(MAX_HEADER_VALUE_BYTES);
        let cut = header_value(&long);
        assert!(cut.as_str().len() <= MAX_HEADER_VALUE_BYTES);
        assert!(cut.as_str().len() >= MAX_HEADER_VALUE_BYTES - 1);
        assert!(cut.as_str().chars().all(|c| c == 'é'));
        // What async-nats would panic on goes into a header map without a fuss.
        let mut headers = HeaderMap::new();
        headers.insert("X-Test", header_value("line\nbreak"));
        assert_eq!(headers.get("X-Test").unwrap().as_str(), "line break");
    }

    #[test]
    fn fallback_headers_are_forwarded_without_an_exporter() {
        let incoming = TraceHeaders {
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            tracestate: Some("vendor=1".into()),
        };
        let mut headers = HeaderMap::new();
        inject_current(&mut headers, &incoming);
        assert_eq!(TraceHeaders::from_nats(Some(&headers)), incoming);
    }
}
