//! The cookie a route keeps a token in for browsers, as the contracts declare it (the method
//! option `cookie` and the field option `cookie`, see `api::Cookie`).
//!
//! - A client asks for it with the route's opt-in header (`X-Refresh-Token-Delivery: cookie`).
//!   A 2xx answer of a route that sets the cookie then carries the token in
//!   `Set-Cookie: <name>=<token>; HttpOnly; SameSite=Strict; Path=<path>; Max-Age=<seconds>`
//!   (and `Secure` when the request came over HTTPS) and as the empty string in its JSON body,
//!   so that no script in the page ever holds it. A route that clears the cookie answers with
//!   `Max-Age=0`. Without the header (or with `body`) the answer is the service's, untouched.
//! - A request field declared to come from a cookie takes that cookie's value when the body
//!   leaves the field empty ([`fill`]). Only the cookie the field names is read, only on the
//!   routes that declare it: any other route ignores every cookie.
//!
//! Cross-site requests cannot use it: the cookie is SameSite=Strict and scoped to the routes
//! that take it, which are JSON POSTs (a form cannot send `application/json`), and the gateway's
//! CORS never allows credentials.

use api::{Cookie, CookieAction, Route};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// The opt-in header's value that asks for the cookie.
pub const COOKIE: &str = "cookie";
/// The opt-in header's value that asks for the token in the body, as without the header.
pub const BODY: &str = "body";

/// The largest answer read to move a token out of it: a token pair is a few kilobytes.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// What a request asked of its route's cookie: decided before the call, applied to its answer.
#[derive(Debug)]
pub struct Delivery {
    /// The route's method subject, for the logs.
    subject: &'static str,
    cookie: &'static Cookie,
    /// The request came over HTTPS: the cookie is `Secure`.
    secure: bool,
}

/// The cookie delivery the request asks for: `None` when the route has no cookie or the
/// client did not ask (no opt-in header, or `body`). An opt-in header with another value, or
/// given twice, is refused, naming the header.
pub fn requested(
    route: &'static Route,
    headers: &HeaderMap,
    secure: bool,
) -> Result<Option<Delivery>, ApiError> {
    let Some(cookie) = route.cookie() else {
        return Ok(None);
    };
    let mut values = headers.get_all(cookie.opt_in_header).iter();
    let value = match (values.next(), values.next()) {
        (None, _) => return Ok(None),
        (Some(value), None) => value,
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_argument(format!(
                "the {} header must be given only once",
                cookie.opt_in_header
            )));
        }
    };
    let value = value.to_str().unwrap_or_default().trim();
    if value.eq_ignore_ascii_case(COOKIE) {
        Ok(Some(Delivery {
            subject: route.descriptor.subject,
            cookie,
            secure,
        }))
    } else if value.eq_ignore_ascii_case(BODY) {
        Ok(None)
    } else {
        Err(ApiError::invalid_argument(format!(
            "the {} header must be `{COOKIE}` or `{BODY}`",
            cookie.opt_in_header
        )))
    }
}

impl Delivery {
    /// The route's answer, with the token moved into the cookie (a 2xx of a route that sets
    /// it) or the cookie cleared (a route that clears it; any answer but a 5xx or 429, which
    /// may be retried).
    pub async fn apply(&self, response: Response) -> Response {
        match self.cookie.action {
            CookieAction::Set {
                value_field,
                max_age_field,
            } => {
                if !response.status().is_success() {
                    return response;
                }
                self.set(response, value_field, max_age_field).await
            }
            CookieAction::Clear => {
                let status = response.status();
                if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                    return response;
                }
                let mut response = response;
                if let Ok(value) = HeaderValue::from_str(&self.set_cookie("", 0)) {
                    response.headers_mut().append(header::SET_COOKIE, value);
                }
                response
            }
        }
    }

    async fn set(
        &self,
        response: Response,
        value_field: &'static str,
        max_age_field: &'static str,
    ) -> Response {
        let (mut parts, body) = response.into_parts();
        let moved = match axum::body::to_bytes(body, MAX_ANSWER_BYTES).await {
            Ok(bytes) => move_out(&bytes, value_field, max_age_field),
            Err(error) => Err(format!("the answer could not be read: {error}")),
        };
        // The client asked not to get the token in the body: an answer the gateway cannot
        // rewrite is an internal error, never the token where scripts can read it.
        let (body, token, max_age) = match moved {
            Ok(moved) => moved,
            Err(problem) => {
                tracing::error!(
                    route = self.subject,
                    problem,
                    "a token could not be moved into its cookie"
                );
                return ApiError::service(rpc::ErrorCode::Internal, "internal error")
                    .into_response();
            }
        };
        parts.headers.remove(header::CONTENT_LENGTH);
        let mut response = Response::from_parts(parts, Body::from(body));
        if !token.is_empty() {
            match HeaderValue::from_str(&self.set_cookie(&token, max_age)) {
                Ok(value) => {
                    response.headers_mut().append(header::SET_COOKIE, value);
                }
                Err(_) => {
                    return ApiError::service(rpc::ErrorCode::Internal, "internal error")
                        .into_response();
                }
            }
        }
        response
    }

    /// The `Set-Cookie` value: the token for `max_age` seconds (0 clears it).
    fn set_cookie(&self, value: &str, max_age: u64) -> String {
        let Cookie { name, path, .. } = self.cookie;
        let secure = if self.secure { "; Secure" } else { "" };
        format!("{name}={value}; HttpOnly; SameSite=Strict; Path={path}; Max-Age={max_age}{secure}")
    }
}

/// The JSON body with `value_field` emptied, the token it held, and the seconds of
/// `max_age_field` (a JSON number, or a string as proto3 JSON writes 64-bit integers).
fn move_out(
    body: &[u8],
    value_field: &str,
    max_age_field: &str,
) -> Result<(Vec<u8>, String, u64), String> {
    let mut object: Map<String, Value> = match serde_json::from_slice(body) {
        Ok(Value::Object(object)) => object,
        _ => return Err("the answer is not a JSON object".to_owned()),
    };
    let token = match object.get(value_field) {
        Some(Value::String(token)) => token.clone(),
        None => String::new(),
        Some(_) => return Err(format!("{value_field} is not a string")),
    };
    if !token.bytes().all(is_cookie_octet) {
        return Err(format!("{value_field} cannot be a cookie value"));
    }
    let max_age = match object.get(max_age_field) {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse::<u64>().ok(),
        _ => None,
    }
    .ok_or_else(|| format!("{max_age_field} is not a number of seconds"))?;
    object.insert(value_field.to_owned(), Value::String(String::new()));
    let body = serde_json::to_vec(&Value::Object(object)).map_err(|e| e.to_string())?;
    Ok((body, token, max_age))
}

/// RFC 6265's cookie-octet: printable ASCII but space, `"`, `,`, `;` and `\`.
fn is_cookie_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
}

/// The value of the cookie `name` in the request's `Cookie` headers: the first one, which a
/// browser sends for the most specific path. `None` when absent or empty.
pub fn read<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| key.trim() == name)
        .map(|(_, value)| value.trim().trim_matches('"'))
        .filter(|value| !value.is_empty())
}

/// Fills each of the route's cookie fields the body left empty (absent, or a string of
/// nothing but white space) from its cookie. A value longer than the field's `max_len` is
/// refused naming the field; an absent cookie leaves the field as it was, for the service to
/// say it is required.
pub fn fill(
    route: &Route,
    headers: &HeaderMap,
    object: &mut Map<String, Value>,
) -> Result<(), ApiError> {
    for field in route.cookie_fields() {
        let empty = match object.get(field.field) {
            None | Some(Value::Null) => true,
            Some(Value::String(value)) => value.trim().is_empty(),
            Some(_) => false,
        };
        if !empty {
            continue;
        }
        let Some(value) = read(headers, field.cookie) else {
            continue;
        };
        if value.chars().count() > field.max_len as usize {
            return Err(ApiError::invalid_field(
                field.field,
                format!(
                    "the {} cookie is longer than {} characters",
                    field.cookie, field.max_len
                ),
            ));
        }
        object.insert(field.field.to_owned(), Value::String(value.to_owned()));
    }
    Ok(())
}

/// The idempotency scope of a request, made distinct by the cookies its route reads: a
/// repeat of an `Idempotency-Key` with another cookie (another session behind the same
/// address) is another caller's request, never given the first one's answer.
pub fn scope(route: &Route, headers: &HeaderMap, scope: Vec<u8>) -> Vec<u8> {
    let mut fields = route.cookie_fields().peekable();
    if fields.peek().is_none() {
        return scope;
    }
    let mut hasher = Sha256::new();
    hasher.update((scope.len() as u64).to_be_bytes());
    hasher.update(&scope);
    for field in fields {
        let value = read(headers, field.cookie).unwrap_or_default();
        hasher.update((value.len() as u64).to_be_bytes());
        hasher.update(value.as_bytes());
    }
    hasher.finalize().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(path: &str) -> &'static Route {
        api::ROUTES
            .iter()
            .find(|r| r.path == path && r.http_method == "POST")
            .unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn answer(json: &str, status: StatusCode) -> Response {
        let mut response = Response::new(Body::from(json.to_owned()));
        *response.status_mut() = status;
        response
    }

    async fn body_of(response: Response) -> Value {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn the_auth_routes_declare_the_refresh_cookie_and_no_other_route_reads_one() {
        let login = route("/api/v1/auth/login").cookie().unwrap();
        assert_eq!(login.name, "emporium_refresh");
        assert_eq!(login.path, "/api/v1/auth");
        assert!(matches!(login.action, CookieAction::Set { .. }));
        assert!(matches!(
            route("/api/v1/auth/logout").cookie().unwrap().action,
            CookieAction::Clear
        ));
        for path in ["/api/v1/auth/refresh", "/api/v1/auth/logout"] {
            let fields: Vec<_> = route(path).cookie_fields().collect();
            assert_eq!(fields.len(), 1, "{path}");
            assert_eq!(fields[0].field, "refresh_token");
            assert_eq!(fields[0].cookie, "emporium_refresh");
        }
        for route in api::ROUTES {
            if route.cookie_fields().next().is_some() {
                assert!(route.path.starts_with("/api/v1/auth/"), "{}", route.path);
            }
        }
    }

    #[test]
    fn the_opt_in_header_is_cookie_body_or_absent() {
        let login = route("/api/v1/auth/login");
        let header = "x-refresh-token-delivery";
        assert!(requested(login, &headers(&[]), false).unwrap().is_none());
        assert!(
            requested(login, &headers(&[(header, "body")]), false)
                .unwrap()
                .is_none()
        );
        assert!(
            requested(login, &headers(&[(header, " Cookie ")]), false)
                .unwrap()
                .is_some()
        );
        for bad in [
            vec![(header, "yes")],
            vec![(header, "cookie"), (header, "cookie")],
        ] {
            let error = requested(login, &headers(&bad), false).unwrap_err();
            assert_eq!(error.code().status(), 400);
            assert!(
                error.message().contains("X-Refresh-Token-Delivery"),
                "{}",
                error.message()
            );
        }
        // A route without a cookie ignores the header.
        let register = route("/api/v1/auth/register");
        assert!(
            requested(register, &headers(&[(header, "cookie")]), false)
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_set_moves_the_token_out_of_the_body_only_on_success() {
        let login = route("/api/v1/auth/login");
        let asked = headers(&[("x-refresh-token-delivery", "cookie")]);
        let pair = r#"{"access_token":"a.b.c","refresh_token":"r-1_x","refresh_expires_in":"1209600","user_id":"u"}"#;
        for secure in [false, true] {
            let delivery = requested(login, &asked, secure).unwrap().unwrap();
            let response = delivery.apply(answer(pair, StatusCode::OK)).await;
            let cookie = response.headers()[header::SET_COOKIE]
                .to_str()
                .unwrap()
                .to_owned();
            let mut expected = "emporium_refresh=r-1_x; HttpOnly; SameSite=Strict; Path=/api/v1/auth; Max-Age=1209600".to_owned();
            if secure {
                expected.push_str("; Secure");
            }
            assert_eq!(cookie, expected);
            let body = body_of(response).await;
            assert_eq!(body["refresh_token"], "");
            assert_eq!(body["access_token"], "a.b.c");
        }
        let delivery = requested(login, &asked, false).unwrap().unwrap();
        let refused = delivery
            .apply(answer(
                r#"{"code":"unauthenticated"}"#,
                StatusCode::UNAUTHORIZED,
            ))
            .await;
        assert!(refused.headers().get(header::SET_COOKIE).is_none());
        // A token no cookie can carry is never put back in the body.
        let odd = r#"{"refresh_token":"a;b","refresh_expires_in":5}"#;
        let response = delivery.apply(answer(odd, StatusCode::OK)).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[tokio::test]
    async fn a_clear_expires_the_cookie_unless_the_answer_may_be_retried() {
        let logout = route("/api/v1/auth/logout");
        let asked = headers(&[("x-refresh-token-delivery", "cookie")]);
        let delivery = requested(logout, &asked, false).unwrap().unwrap();
        for status in [StatusCode::OK, StatusCode::BAD_REQUEST] {
            let response = delivery.apply(answer("{}", status)).await;
            assert_eq!(
                response.headers()[header::SET_COOKIE],
                "emporium_refresh=; HttpOnly; SameSite=Strict; Path=/api/v1/auth; Max-Age=0"
            );
        }
        for status in [
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::SERVICE_UNAVAILABLE,
        ] {
            let response = delivery.apply(answer("{}", status)).await;
            assert!(
                response.headers().get(header::SET_COOKIE).is_none(),
                "{status}"
            );
        }
    }

    #[test]
    fn only_the_named_cookie_fills_an_empty_field_within_its_bound() {
        let refresh = route("/api/v1/auth/refresh");
        let jar = headers(&[("cookie", "other=x; emporium_refresh=tok-1; more=y")]);
        let mut object = Map::new();
        fill(refresh, &jar, &mut object).unwrap();
        assert_eq!(object["refresh_token"], "tok-1");
        // The body's value wins; an empty one does not.
        let mut object = Map::from_iter([("refresh_token".to_owned(), Value::from("tok-body"))]);
        fill(refresh, &jar, &mut object).unwrap();
        assert_eq!(object["refresh_token"], "tok-body");
        let mut object = Map::from_iter([("refresh_token".to_owned(), Value::from(" "))]);
        fill(refresh, &jar, &mut object).unwrap();
        assert_eq!(object["refresh_token"], "tok-1");
        // Another cookie, or none: the field stays empty.
        let mut object = Map::new();
        fill(
            refresh,
            &headers(&[("cookie", "emporium_refresh_old=x")]),
            &mut object,
        )
        .unwrap();
        assert!(object.is_empty());
        // Longer than the field may be.
        let long = format!("emporium_refresh={}", "x".repeat(257));
        let error = fill(refresh, &headers(&[("cookie", &long)]), &mut Map::new()).unwrap_err();
        assert_eq!(error.details()[0].field, "refresh_token");
        // A route that declares no cookie field reads none.
        let mut object = Map::new();
        fill(route("/api/v1/auth/login"), &jar, &mut object).unwrap();
        assert!(object.is_empty());
    }

    #[test]
    fn the_idempotency_scope_depends_on_the_cookie_of_routes_that_read_it() {
        let refresh = route("/api/v1/auth/refresh");
        let a = headers(&[("cookie", "emporium_refresh=a")]);
        let b = headers(&[("cookie", "emporium_refresh=b")]);
        assert_ne!(scope(refresh, &a, vec![1]), scope(refresh, &b, vec![1]));
        assert_eq!(scope(refresh, &a, vec![1]), scope(refresh, &a, vec![1]));
        let login = route("/api/v1/auth/login");
        assert_eq!(scope(login, &a, vec![1]), vec![1]);
    }
}
