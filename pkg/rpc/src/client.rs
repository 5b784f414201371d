//! Calling a service over NATS: typed (for services) and raw (for the gateway).

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::client::RequestErrorKind;
use bytes::Bytes;
use tracing::Instrument;

use crate::codec::Codec;
use crate::context::Context;
use crate::error::{Error, ErrorBody, ErrorCode};
use crate::headers;
use crate::method::Method;

/// A NATS connection used to call services. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Client {
    nats: async_nats::Client,
    codec: Codec,
    default_timeout: Duration,
}

/// A successful raw reply: the payload exactly as the service sent it.
#[derive(Debug)]
pub struct RawReply {
    pub content_type: Option<String>,
    pub payload: Bytes,
}

impl Client {
    pub fn new(nats: async_nats::Client) -> Self {
        Self {
            nats,
            codec: Codec::Json,
            default_timeout: Duration::from_secs(10),
        }
    }

    /// Speak protobuf instead of JSON to services (smaller, faster; not human readable).
    pub fn with_codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// The timeout of a call whose context has no deadline.
    pub fn with_default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = timeout;
        self
    }

    pub fn nats(&self) -> &async_nats::Client {
        &self.nats
    }

    /// Calls the method `M` with `request` on behalf of `ctx`.
    pub async fn call<M: Method>(
        &self,
        ctx: &Context,
        request: &M::Request,
    ) -> Result<M::Response, Error> {
        let method = M::DESCRIPTOR;
        let payload = self.codec.encode(request)?;
        let mut headers = HeaderMap::new();
        headers.insert(
            headers::CONTENT_TYPE,
            headers::value(self.codec.content_type()),
        );
        // The context's deadline travels as `Emporium-Deadline` (and the time left).
        let timeout = ctx.write_headers(&mut headers, self.default_timeout);
        let reply = self
            .call_raw(method.subject, headers, payload, timeout)
            .await?;
        let codec = Codec::from_content_type(reply.content_type.as_deref())?;
        codec.decode(&reply.payload).map_err(|e| {
            Error::internal(anyhow::anyhow!(
                "undecodable reply from {}: {}",
                method.subject,
                e.message()
            ))
        })
    }

    /// Sends `payload` to `subject` and returns the reply untouched, or the typed error the
    /// service answered with. No responders is `unavailable`; no answer in time is
    /// `deadline_exceeded`; a payload larger than the server takes is `invalid_argument`.
    pub async fn call_raw(
        &self,
        subject: &str,
        headers: HeaderMap,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<RawReply, Error> {
        // The client span, DEBUG like every per-request span (see the logging policy of the
        // telemetry crate). The service's server span becomes its child: the trace context in
        // `headers` (the caller's) is replaced by this span's when it is exported.
        let span = client_span(subject);
        let mut headers = headers;
        telemetry::propagation::inject_span(&span, &mut headers);
        let result = self
            .send(subject, headers, payload, timeout)
            .instrument(span.clone())
            .await;
        if let Err(error) = &result {
            record_error(&span, error);
        }
        result
    }

    async fn send(
        &self,
        subject: &str,
        headers: HeaderMap,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<RawReply, Error> {
        let max_payload = self.nats.max_payload();
        if max_payload > 0 && payload.len() > max_payload {
            return Err(Error::invalid_argument(format!(
                "the request is larger than the {max_payload} bytes a message may carry"
            )));
        }
        let request = async_nats::Request::new()
            .payload(payload)
            .headers(headers)
            .timeout(Some(timeout));
        let message = self
            .nats
            .send_request(subject.to_owned(), request)
            .await
            .map_err(|error| match error.kind() {
                RequestErrorKind::NoResponders => {
                    Error::unavailable(format!("no service is answering on {subject}"))
                }
                RequestErrorKind::TimedOut => Error::deadline_exceeded(format!(
                    "no reply from {subject} within {} ms",
                    timeout.as_millis()
                )),
                _ => Error::unavailable(format!("request to {subject} failed: {error}")),
            })?;
        let reply_headers = message.headers.as_ref();
        let content_type = reply_headers
            .and_then(|h| h.get(headers::CONTENT_TYPE))
            .map(|v| v.as_str().to_owned());
        if let Some(status) = reply_headers.and_then(|h| h.get(headers::NATS_SERVICE_ERROR)) {
            return Err(decode_error(
                status.as_str(),
                reply_headers.and_then(|h| h.get(headers::NATS_SERVICE_ERROR_CODE)),
                &message.payload,
            ));
        }
        Ok(RawReply {
            content_type,
            payload: message.payload,
        })
    }
}

/// The span of one request to `subject` (`product.reserve_stock`): `send product.reserve_stock`,
/// kind client, with the messaging and RPC attributes (docs/ARCHITECTURE.md, "Traces").
fn client_span(subject: &str) -> tracing::Span {
    let (service, method) = subject.split_once('.').unwrap_or((subject, ""));
    tracing::debug_span!(
        target: telemetry::REQUEST_TARGET,
        "rpc.client",
        otel.name = %format_args!("send {subject}"),
        otel.kind = "client",
        messaging.system = "nats",
        messaging.destination.name = subject,
        messaging.operation.type = "send",
        messaging.operation.name = "request",
        rpc.system = "nats",
        rpc.service = service,
        rpc.method = method,
        rpc.code = tracing::field::Empty,
        "error.type" = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    )
}

/// Records a failed call on its client span: the error code always, an error status when the
/// failure is the service's or the network's rather than the caller's.
pub(crate) fn record_error(span: &tracing::Span, error: &Error) {
    let code = error.code().as_str();
    span.record("rpc.code", code);
    if crate::layers::is_server_fault(error.code()) {
        span.record("error.type", code);
        span.record("otel.status_code", "ERROR");
    }
}

/// The typed error in an error reply: the JSON body when there is one, else the headers.
fn decode_error(status: &str, code: Option<&async_nats::HeaderValue>, payload: &[u8]) -> Error {
    if let Ok(body) = serde_json::from_slice::<ErrorBody>(payload) {
        return Error::from_body(body);
    }
    // Some other NATS micro service, answering with headers only.
    let code = code
        .and_then(|c| c.as_str().parse::<u16>().ok())
        .and_then(ErrorCode::from_number)
        .unwrap_or(ErrorCode::Internal);
    Error::new(code, status)
}
