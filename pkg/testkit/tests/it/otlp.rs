//! The OTLP receiver keeps what an exporter sends, and refuses what it cannot read.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span::SpanKind};
use prost::Message as _;
use testkit::{OtlpReceiver, SpanKind as Kind};

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..Default::default()
    }
}

fn export(spans: Vec<Span>) -> Vec<u8> {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    text("service.name", "order"),
                    text("service.version", "1.2.3"),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

#[tokio::test]
async fn spans_are_kept_with_their_service_ids_and_attributes() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let http = reqwest::Client::new();
    let url = format!("{}/v1/traces", receiver.endpoint());

    let span = Span {
        trace_id: vec![0xab; 16],
        span_id: vec![0x01; 8],
        parent_span_id: vec![0x02; 8],
        name: "process order.checkout".to_owned(),
        kind: SpanKind::Server as i32,
        attributes: vec![text("messaging.system", "nats")],
        ..Default::default()
    };
    let answer = http
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .body(export(vec![span]))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);

    let spans = receiver
        .wait_for(|spans| !spans.is_empty(), Duration::from_secs(5))
        .await
        .expect("the span arrives");
    assert_eq!(spans.len(), 1);
    let span = &spans[0];
    assert_eq!(span.service_name, "order");
    assert_eq!(span.service_version.as_deref(), Some("1.2.3"));
    assert_eq!(span.trace_id, "ab".repeat(16));
    assert_eq!(span.span_id, "01".repeat(8));
    assert_eq!(span.parent_span_id, "02".repeat(8));
    assert!(!span.is_root());
    assert_eq!(span.name, "process order.checkout");
    assert_eq!(span.kind, Kind::Server);
    assert_eq!(span.attribute("messaging.system"), Some("nats"));

    // JSON and undecodable bodies are refused, and keep nothing.
    let json = http
        .post(&url)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 415);
    let garbage = http
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .body(vec![0xff; 32])
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 400);
    let more = receiver
        .wait_for(|spans| spans.len() > 1, Duration::from_millis(300))
        .await
        .expect_err("nothing more arrives");
    assert_eq!(more.len(), 1);
}
