use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use bytes::Bytes;
use rpc::{Codec, Context, ErrorBody, ErrorCode, Limits, headers};

use crate::support::*;

#[tokio::test]
async fn a_request_is_answered_in_json_and_in_protobuf() {
    let (service, _running) = TestService::start().await;
    let reply: Echo = service
        .rpc
        .call::<Say>(&Context::background(), &echo("hi"))
        .await
        .unwrap();
    assert_eq!(reply.text, "hi");

    let protobuf = service.rpc.clone().with_codec(Codec::Protobuf);
    let reply: Echo = protobuf
        .call::<Say>(&Context::background(), &echo("bin"))
        .await
        .unwrap();
    assert_eq!(reply.text, "bin");

    // What `nats req echo.say '{"text":"raw"}'` sees: plain JSON back.
    let message = service
        .client
        .request("echo.say", Bytes::from_static(br#"{"text":"raw"}"#))
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
    assert_eq!(body["text"], "raw");
}

#[tokio::test]
async fn a_panicking_handler_still_replies_and_the_endpoint_keeps_serving() {
    let (service, _running) = TestService::start().await;
    let error = service
        .rpc
        .call::<Panic>(&Context::background(), &echo("boom"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::Internal);
    assert_eq!(
        error.message(),
        "internal error",
        "the panic message is not leaked"
    );

    let reply: Echo = service
        .rpc
        .call::<Panic>(&Context::background(), &echo("fine"))
        .await
        .unwrap();
    assert_eq!(reply.text, "fine");
}

#[tokio::test]
async fn a_handler_past_the_callers_deadline_gets_a_timeout_reply() {
    let (service, _running) = TestService::start().await;
    let mut headers = HeaderMap::new();
    headers.insert(headers::TIMEOUT_MS, "200");
    let started = Instant::now();
    // The requester waits longer than the deadline it announced, so the reply it gets is the
    // service's own timeout answer, not a client-side timeout.
    let error = service
        .rpc
        .call_raw(
            SLOW.subject,
            headers,
            Bytes::from_static(br#"{"sleep_ms":5000}"#),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::DeadlineExceeded);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_handler_past_the_services_default_timeout_gets_a_timeout_reply() {
    let limits = Limits {
        default_timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let (service, _running) = TestService::start_with(limits).await;
    let error = service
        .rpc
        .call_raw(
            SLOW.subject,
            HeaderMap::new(),
            Bytes::from_static(br#"{"sleep_ms":5000}"#),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::DeadlineExceeded);
}

#[tokio::test]
async fn access_levels_are_enforced_by_the_runtime() {
    let (service, _running) = TestService::start().await;
    let anonymous = service
        .rpc
        .call::<AdminOnly>(&Context::background(), &echo("x"))
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), ErrorCode::Unauthenticated);
    let forbidden = service
        .rpc
        .call::<AdminOnly>(&customer(), &echo("x"))
        .await
        .unwrap_err();
    assert_eq!(forbidden.code(), ErrorCode::PermissionDenied);
    let reply: Echo = service
        .rpc
        .call::<AdminOnly>(&admin(), &echo("x"))
        .await
        .unwrap();
    assert_eq!(reply.text, "admin-1", "the principal reaches the handler");
}

#[tokio::test]
async fn errors_use_the_standard_headers_and_a_json_body_naming_each_field() {
    let (service, _running) = TestService::start().await;
    let message = service
        .client
        .request(
            VALIDATE.subject,
            Bytes::from_static(br#"{"text":"","sleep_ms":99}"#),
        )
        .await
        .unwrap();
    let headers = message.headers.expect("error headers");
    assert_eq!(
        headers
            .get(headers::NATS_SERVICE_ERROR_CODE)
            .unwrap()
            .as_str(),
        "3"
    );
    assert!(
        !headers
            .get(headers::NATS_SERVICE_ERROR)
            .unwrap()
            .as_str()
            .is_empty()
    );
    let body: ErrorBody = serde_json::from_slice(&message.payload).unwrap();
    assert_eq!(body.code, ErrorCode::InvalidArgument);
    let fields: Vec<_> = body.details.iter().map(|d| d.field.as_str()).collect();
    assert_eq!(fields, ["text", "sleep_ms"]);
}

#[tokio::test]
async fn malformed_requests_are_invalid_arguments() {
    let (service, _running) = TestService::start().await;
    for payload in [&b"{not json"[..], br#"{"unknown":1}"#, br#"{"text":5}"#] {
        let error = service
            .rpc
            .call_raw(
                SAY.subject,
                HeaderMap::new(),
                Bytes::copy_from_slice(payload),
                Duration::from_secs(5),
            )
            .await
            .unwrap_err();
        assert_eq!(
            error.code(),
            ErrorCode::InvalidArgument,
            "{}",
            String::from_utf8_lossy(payload)
        );
    }
    let mut headers = HeaderMap::new();
    headers.insert(headers::CONTENT_TYPE, "text/xml");
    let error = service
        .rpc
        .call_raw(
            SAY.subject,
            headers,
            Bytes::from_static(b"<x/>"),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::InvalidArgument);
}

/// A message that quotes client input with a line break (serde names the unknown field) once
/// made the reply's header unsendable and stopped the endpoint; it must stay an answer.
#[tokio::test]
async fn a_line_break_in_what_a_client_sent_does_not_stop_the_endpoint() {
    let (service, _running) = TestService::start().await;
    for _ in 0..2 {
        let error = service
            .rpc
            .call_raw(
                SAY.subject,
                HeaderMap::new(),
                Bytes::from_static(b"{\"a\\nb\":1}"),
                Duration::from_secs(5),
            )
            .await
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidArgument, "{error}");
        assert!(
            error.message().contains("a\nb"),
            "the body keeps the message: {error}"
        );
    }
    let echoed = service
        .rpc
        .call::<Say>(&Context::background(), &echo("still here"))
        .await
        .unwrap();
    assert_eq!(echoed.text, "still here");
}

/// A reply larger than the server carries cannot be sent; the caller still gets an answer,
/// not its own timeout, and the endpoint goes on.
#[tokio::test]
async fn a_reply_too_large_to_send_is_answered_internal_and_the_endpoint_keeps_serving() {
    let (service, _running) = TestService::start().await;
    let too_large = service.client.server_info().max_payload + 1;
    for _ in 0..2 {
        let error = service
            .rpc
            .call::<Grow>(
                &Context::background(),
                &Echo {
                    text: "x".into(),
                    sleep_ms: too_large as u64,
                },
            )
            .await
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::Internal, "{error}");
    }
    let grown: Echo = service
        .rpc
        .call::<Grow>(
            &Context::background(),
            &Echo {
                text: "ab".into(),
                sleep_ms: 3,
            },
        )
        .await
        .unwrap();
    assert_eq!(grown.text, "ababab");
}

/// An error message quoting a huge unknown field name still makes a reply that fits.
#[tokio::test]
async fn an_error_quoting_a_huge_field_name_is_still_answered() {
    let (service, _running) = TestService::start().await;
    let name = "k".repeat(service.client.server_info().max_payload * 3 / 4);
    let payload = Bytes::from(format!("{{\"{name}\":1}}"));
    let error = service
        .rpc
        .call_raw(
            SAY.subject,
            HeaderMap::new(),
            payload,
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::InvalidArgument, "{error}");
    assert!(error.message().len() < 10_000, "{}", error.message().len());
}

#[tokio::test]
async fn no_responders_is_unavailable_at_once() {
    let nats = testkit::NatsServer::start().await.unwrap();
    let client = rpc::Client::new(nats.connect().await);
    let started = Instant::now();
    let error = client
        .call::<Say>(&Context::background(), &echo("x"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::Unavailable);
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_per_endpoint_is_bounded_and_nothing_is_dropped() {
    let limits = Limits {
        max_in_flight_per_endpoint: 2,
        ..Limits::default()
    };
    let (service, _running) = TestService::start_with(limits).await;
    let calls = (0..8).map(|i| {
        let rpc = service.rpc.clone();
        async move {
            let request = Echo {
                text: i.to_string(),
                sleep_ms: 100,
            };
            rpc.call::<Slow>(&Context::background(), &request).await
        }
    });
    let results = futures::future::join_all(calls).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(
        service.gauge.max.load(std::sync::atomic::Ordering::SeqCst),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_the_load_through_the_queue_group() {
    let (service, _first) = TestService::start().await;
    let second_gauge = std::sync::Arc::new(Gauge::default());
    let second_client = service.nats.connect().await;
    let _second =
        TestService::replica(&second_client, Limits::default(), second_gauge.clone()).await;
    for i in 0..40 {
        let request = Echo {
            text: i.to_string(),
            sleep_ms: 1,
        };
        let _: Echo = service
            .rpc
            .call::<Slow>(&Context::background(), &request)
            .await
            .unwrap();
    }
    let first = service
        .gauge
        .served
        .load(std::sync::atomic::Ordering::SeqCst);
    let second = second_gauge
        .served
        .load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(first + second, 40, "each request served exactly once");
    assert!(first > 0 && second > 0, "first {first}, second {second}");
}
