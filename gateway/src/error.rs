//! Every error the gateway answers with, and the one table that turns error codes into HTTP
//! statuses.
//!
//! Services speak [`rpc::ErrorCode`]s; a few failures only exist at the HTTP edge (a wrong
//! method, a body too large, a body that is not JSON, an `Idempotency-Key` missing, in flight
//! or reused). [`ApiCode`] is the union of both, and
//! [`ApiCode::status`] is the only place in the platform where a code becomes a status.
//! Every error body has the same JSON shape, `{"code", "message", "details": [{"field",
//! "problem"}]}`, including the answers axum and tower-http produce on their own
//! ([`json_errors`] rewrites those).

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rpc::{ErrorCode, FieldViolation};
use serde::Serialize;

/// What went wrong, as the `code` of an error body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiCode {
    /// A code a service (or the gateway on a service's behalf) answered with.
    Service(ErrorCode),
    /// The path exists but not with this method.
    MethodNotAllowed,
    /// The body is larger than the configured limit.
    PayloadTooLarge,
    /// The body is not JSON.
    UnsupportedMediaType,
    /// The route requires an `Idempotency-Key` header and the request has none.
    IdempotencyKeyRequired,
    /// A request with the same `Idempotency-Key` is still being served.
    IdempotencyKeyInFlight,
    /// The `Idempotency-Key` was used for a request with another body or query string.
    IdempotencyKeyReused,
}

impl ApiCode {
    /// Every code, in the order the OpenAPI document lists them.
    pub const ALL: [ApiCode; 16] = [
        ApiCode::Service(ErrorCode::InvalidArgument),
        ApiCode::IdempotencyKeyRequired,
        ApiCode::Service(ErrorCode::Unauthenticated),
        ApiCode::Service(ErrorCode::PermissionDenied),
        ApiCode::Service(ErrorCode::NotFound),
        ApiCode::MethodNotAllowed,
        ApiCode::Service(ErrorCode::Conflict),
        ApiCode::Service(ErrorCode::FailedPrecondition),
        ApiCode::IdempotencyKeyInFlight,
        ApiCode::PayloadTooLarge,
        ApiCode::UnsupportedMediaType,
        ApiCode::IdempotencyKeyReused,
        ApiCode::Service(ErrorCode::RateLimited),
        ApiCode::Service(ErrorCode::Internal),
        ApiCode::Service(ErrorCode::Unavailable),
        ApiCode::Service(ErrorCode::DeadlineExceeded),
    ];

    /// The code spelled `code`, as error bodies and the contracts spell it.
    pub fn parse(code: &str) -> Option<ApiCode> {
        ApiCode::ALL.into_iter().find(|c| c.as_str() == code)
    }

    /// What the code means to a client, for the OpenAPI document.
    pub fn description(self) -> &'static str {
        match self {
            ApiCode::Service(code) => match code {
                ErrorCode::InvalidArgument => "Invalid argument: `details` names each bad field",
                ErrorCode::Unauthenticated => {
                    "Missing or invalid bearer token, or wrong credentials"
                }
                ErrorCode::PermissionDenied => {
                    "The caller may not do this (an admin method needs the admin role)"
                }
                ErrorCode::NotFound => "Not found, or not the caller's to see",
                ErrorCode::Conflict => {
                    "Conflicts with what exists (a duplicate, a concurrent change)"
                }
                ErrorCode::FailedPrecondition => {
                    "Refused by the current state (not enough stock, an expired reservation)"
                }
                ErrorCode::RateLimited => "Rate limited: see Retry-After",
                ErrorCode::Unavailable => "The service is unavailable: see Retry-After",
                ErrorCode::DeadlineExceeded => "The service did not answer in time",
                ErrorCode::Internal => "Internal error",
            },
            ApiCode::MethodNotAllowed => "The path exists but not with this method: see Allow",
            ApiCode::PayloadTooLarge => "The body is larger than the gateway accepts",
            ApiCode::UnsupportedMediaType => "The body is not JSON",
            ApiCode::IdempotencyKeyRequired => "This route requires an Idempotency-Key header",
            ApiCode::IdempotencyKeyInFlight => {
                "A request with this Idempotency-Key is still being served: see Retry-After"
            }
            ApiCode::IdempotencyKeyReused => {
                "This Idempotency-Key was used for a request with another body or query string"
            }
        }
    }

    /// The error table: the HTTP status of every code.
    ///
    /// `failed_precondition` (not enough stock, an expired reservation) is 409 Conflict: the
    /// request is well formed but conflicts with the current state of the resource, which is
    /// what RFC 9110 says 409 is for; retrying unchanged will fail again until the state
    /// changes.
    pub fn status(self) -> StatusCode {
        match self {
            ApiCode::Service(code) => match code {
                ErrorCode::InvalidArgument => StatusCode::BAD_REQUEST,
                ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
                ErrorCode::PermissionDenied => StatusCode::FORBIDDEN,
                ErrorCode::NotFound => StatusCode::NOT_FOUND,
                ErrorCode::Conflict => StatusCode::CONFLICT,
                ErrorCode::FailedPrecondition => StatusCode::CONFLICT,
                ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
                ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ApiCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiCode::IdempotencyKeyRequired => StatusCode::BAD_REQUEST,
            ApiCode::IdempotencyKeyInFlight => StatusCode::CONFLICT,
            // The idempotency-key draft's answer for a key reused with another payload.
            ApiCode::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ApiCode::Service(code) => code.as_str(),
            ApiCode::MethodNotAllowed => "method_not_allowed",
            ApiCode::PayloadTooLarge => "payload_too_large",
            ApiCode::UnsupportedMediaType => "unsupported_media_type",
            ApiCode::IdempotencyKeyRequired => "idempotency_key_required",
            ApiCode::IdempotencyKeyInFlight => "idempotency_key_in_flight",
            ApiCode::IdempotencyKeyReused => "idempotency_key_reused",
        }
    }

    /// The code of an error response some layer produced without a body we can read: the
    /// reverse of the table, for the statuses axum and tower-http answer with.
    pub fn for_status(status: StatusCode) -> ApiCode {
        match status {
            StatusCode::UNAUTHORIZED => ApiCode::Service(ErrorCode::Unauthenticated),
            StatusCode::FORBIDDEN => ApiCode::Service(ErrorCode::PermissionDenied),
            StatusCode::NOT_FOUND => ApiCode::Service(ErrorCode::NotFound),
            StatusCode::METHOD_NOT_ALLOWED => ApiCode::MethodNotAllowed,
            StatusCode::CONFLICT => ApiCode::Service(ErrorCode::Conflict),
            StatusCode::PAYLOAD_TOO_LARGE => ApiCode::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiCode::UnsupportedMediaType,
            StatusCode::TOO_MANY_REQUESTS => ApiCode::Service(ErrorCode::RateLimited),
            StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => {
                ApiCode::Service(ErrorCode::DeadlineExceeded)
            }
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::BAD_GATEWAY => {
                ApiCode::Service(ErrorCode::Unavailable)
            }
            s if s.is_server_error() => ApiCode::Service(ErrorCode::Internal),
            _ => ApiCode::Service(ErrorCode::InvalidArgument),
        }
    }
}

/// The JSON body of every error answer. The same shape as [`rpc::ErrorBody`], except that
/// `code` may also be one of the gateway's own codes and `details` is always present.
#[derive(Debug, Serialize)]
pub struct ErrorJson<'a> {
    pub code: &'static str,
    pub message: &'a str,
    pub details: &'a [FieldViolation],
}

/// An error answer: code, message, field details and any headers it needs.
#[derive(Debug)]
pub struct ApiError {
    code: ApiCode,
    message: String,
    details: Vec<FieldViolation>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(code: ApiCode, message: impl Into<String>) -> Self {
        let mut error = Self {
            code,
            message: message.into(),
            details: Vec::new(),
            headers: Vec::new(),
        };
        // Clients back off and retry on 503 (a replica restarting, a service not up yet).
        if code == ApiCode::Service(ErrorCode::Unavailable) {
            error = error.with_header(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        error
    }

    pub fn service(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(ApiCode::Service(code), message)
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::service(ErrorCode::InvalidArgument, message)
    }

    /// A bad input naming the field, like the services' validation errors.
    pub fn invalid_field(field: &str, problem: impl Into<String>) -> Self {
        let problem = problem.into();
        Self::invalid_argument(format!("invalid {field}: {problem}")).with_details(vec![
            FieldViolation {
                field: field.to_owned(),
                problem,
            },
        ])
    }

    /// A 401 with the `WWW-Authenticate` challenge RFC 6750 asks for.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::service(ErrorCode::Unauthenticated, message).with_header(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"emporium\""),
        )
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::service(ErrorCode::NotFound, message)
    }

    pub fn with_details(mut self, details: Vec<FieldViolation>) -> Self {
        self.details = details;
        self
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value));
        self
    }

    pub fn code(&self) -> ApiCode {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn details(&self) -> &[FieldViolation] {
        &self.details
    }
}

impl From<rpc::Error> for ApiError {
    /// A service's error, passed on as it is. Internal errors already carry only "internal
    /// error": the cause stays in the service's logs.
    fn from(error: rpc::Error) -> Self {
        ApiError::service(error.code(), error.message()).with_details(error.details().to_vec())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorJson {
            code: self.code.as_str(),
            message: &self.message,
            details: &self.details,
        };
        let bytes = serde_json::to_vec(&body).expect("an error body always serializes");
        let mut response = Response::new(Body::from(bytes));
        *response.status_mut() = self.code.status();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(rpc::headers::JSON),
        );
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        response
    }
}

/// Answers requests to paths no route serves.
pub async fn route_not_found() -> ApiError {
    ApiError::not_found("no such route")
}

/// Answers requests with a method the path does not serve; axum adds the `Allow` header.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ApiCode::MethodNotAllowed,
        "this route does not serve that method",
    )
}

/// The answer of a handler that panicked. The panic itself is logged, never sent.
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic".to_owned());
    tracing::error!(panic = %text, "request handler panicked");
    ApiError::service(ErrorCode::Internal, "internal error").into_response()
}

/// Rewrites every error answer that is not JSON (axum's own rejections, tower-http's body
/// limit and timeout answers) into the JSON error shape, keeping its headers.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&response) {
        return response;
    }
    let code = ApiCode::for_status(status);
    let message = match code {
        ApiCode::PayloadTooLarge => "the request body is larger than the limit".to_owned(),
        ApiCode::MethodNotAllowed => "this route does not serve that method".to_owned(),
        ApiCode::UnsupportedMediaType => "the request body must be application/json".to_owned(),
        ApiCode::Service(ErrorCode::DeadlineExceeded) => {
            "the request was not served in time".to_owned()
        }
        ApiCode::Service(ErrorCode::Internal) => "internal error".to_owned(),
        _ => status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_owned(),
    };
    let (parts, _) = response.into_parts();
    let mut rewritten = ApiError::new(code, message).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rewritten.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rewritten
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(rpc::headers::JSON))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[test]
    fn the_table_maps_every_service_code() {
        let expected = [
            (ErrorCode::InvalidArgument, 400),
            (ErrorCode::Unauthenticated, 401),
            (ErrorCode::PermissionDenied, 403),
            (ErrorCode::NotFound, 404),
            (ErrorCode::Conflict, 409),
            (ErrorCode::FailedPrecondition, 409),
            (ErrorCode::RateLimited, 429),
            (ErrorCode::Unavailable, 503),
            (ErrorCode::DeadlineExceeded, 504),
            (ErrorCode::Internal, 500),
        ];
        assert_eq!(expected.len(), ErrorCode::ALL.len());
        for (code, status) in expected {
            assert_eq!(ApiCode::Service(code).status().as_u16(), status, "{code}");
            assert_eq!(ApiCode::Service(code).as_str(), code.as_str());
        }
        assert_eq!(ApiCode::MethodNotAllowed.status().as_u16(), 405);
        assert_eq!(ApiCode::PayloadTooLarge.status().as_u16(), 413);
        assert_eq!(ApiCode::UnsupportedMediaType.status().as_u16(), 415);
        assert_eq!(ApiCode::IdempotencyKeyRequired.status().as_u16(), 400);
        assert_eq!(ApiCode::IdempotencyKeyInFlight.status().as_u16(), 409);
        assert_eq!(ApiCode::IdempotencyKeyReused.status().as_u16(), 422);
        for code in ApiCode::ALL {
            assert_eq!(ApiCode::parse(code.as_str()), Some(code), "{code:?}");
        }
    }

    #[test]
    fn statuses_map_back_to_codes_with_the_same_status() {
        // Everything the table produces (except 409, shared by two codes) round-trips.
        let codes = ErrorCode::ALL
            .into_iter()
            .filter(|c| *c != ErrorCode::FailedPrecondition)
            .map(ApiCode::Service)
            .chain([
                ApiCode::MethodNotAllowed,
                ApiCode::PayloadTooLarge,
                ApiCode::UnsupportedMediaType,
            ]);
        for code in codes {
            assert_eq!(ApiCode::for_status(code.status()), code, "{code:?}");
        }
        assert_eq!(
            ApiCode::for_status(StatusCode::REQUEST_TIMEOUT).status(),
            StatusCode::GATEWAY_TIMEOUT
        );
        assert_eq!(
            ApiCode::for_status(StatusCode::IM_A_TEAPOT),
            ApiCode::Service(ErrorCode::InvalidArgument)
        );
    }

    async fn body_of(response: Response) -> serde_json::Value {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn error_bodies_have_code_message_and_details() {
        let response = ApiError::invalid_field("page_size", "must be an integer").into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[header::CONTENT_TYPE], rpc::headers::JSON);
        let body = body_of(response).await;
        assert_eq!(body["code"], "invalid_argument");
        assert_eq!(body["details"][0]["field"], "page_size");
        assert_eq!(body["details"][0]["problem"], "must be an integer");

        let body = body_of(route_not_found().await.into_response()).await;
        assert_eq!(body["code"], "not_found");
        assert_eq!(body["details"], serde_json::json!([]));
    }

    #[tokio::test]
    async fn service_errors_pass_through_with_their_details() {
        let mut violations = rpc::Violations::new();
        violations.add("price.minor_units", "must not be negative");
        let error = violations.into_result().unwrap_err();
        let response = ApiError::from(error).into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body = body_of(response).await;
        assert_eq!(body["details"][0]["field"], "price.minor_units");
    }

    #[tokio::test]
    async fn unavailable_asks_to_retry() {
        let response =
            ApiError::from(rpc::Error::unavailable("no service is answering")).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }
}
