//! W3C trace context carried in NATS headers.
//!
//! The gateway injects `traceparent`/`tracestate` into every NATS request, services extract it
//! to parent their request span, and events carry it the same way. When no OpenTelemetry layer
//! is installed the spans have no OpenTelemetry context, so callers pass the incoming headers as
//! a fallback and the trace id still survives every hop.

use async_nats::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";

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
        self.0.insert(key, value.as_str());
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
        headers.insert(TRACEPARENT, parent.as_str());
    }
    if let Some(state) = &fallback.tracestate {
        headers.insert(TRACESTATE, state.as_str());
    }
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
