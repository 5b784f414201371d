//! Turning an HTTP request into the JSON request message of a contract method.
//!
//! - GET and DELETE: the message is built from the path parameters and the query string.
//!   Query values are converted by the field's protobuf kind (see [`convert`]); query
//!   parameters that name no field are ignored.
//! - POST, PUT and PATCH: when there are no path parameters and no query string the body is
//!   forwarded byte for byte (the common case pays no decode/encode; the service validates
//!   it). Otherwise the body must be a JSON object; query parameters, then path parameters,
//!   override its fields of the same name, and the object is serialized once.
//!
//! An empty body is the empty message `{}`.
//!
//! A field the contract fills from a request header (`X-Cart-Token`) takes the header's value,
//! or is removed when the header is absent, whatever the body or query string said. A field
//! the contract fills from a cookie takes the cookie's value when the body leaves it empty
//! ([`crate::cookies::fill`]).

use api::{Field, FieldKind, Route};
use axum::http::HeaderMap;
use bytes::Bytes;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// Whether the route's method carries its message in the body.
pub fn has_body(route: &Route) -> bool {
    !matches!(route.http_method, "GET" | "DELETE" | "HEAD")
}

/// The request message of `route` from the HTTP request's parts.
pub fn build(
    route: &Route,
    path_params: &[(String, String)],
    query: &[(String, String)],
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Bytes, ApiError> {
    let from_headers =
        route.header_fields().next().is_some() || route.cookie_fields().next().is_some();
    if has_body(route) && path_params.is_empty() && query.is_empty() && !from_headers {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Bytes::from_static(b"{}"));
        }
        return Ok(body);
    }

    let mut object = if has_body(route) && !body.iter().all(u8::is_ascii_whitespace) {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(object)) => object,
            Ok(_) => {
                return Err(ApiError::invalid_argument(
                    "malformed JSON: the body must be a JSON object",
                ));
            }
            Err(e) => return Err(ApiError::invalid_argument(format!("malformed JSON: {e}"))),
        }
    } else {
        Map::new()
    };

    for (name, value) in query_fields(route, query)? {
        object.insert(name, value);
    }
    for (name, raw) in path_params {
        // A path parameter always names a field (the contracts crate checks that); convert it
        // like a query value so an integer id becomes what proto3 JSON expects.
        let value = match route.field(name) {
            Some(field) => convert(field, raw)?.unwrap_or_else(|| Value::String(String::new())),
            None => Value::String(raw.clone()),
        };
        object.insert(name.clone(), value);
    }
    // A field that comes from a header is the header's alone: a value in the body or the
    // query string never stands in for it.
    for field in route.header_fields() {
        let header = field.header.expect("header fields have a header");
        object.remove(field.name);
        if let Some(value) = headers.get(header) {
            let value = value.to_str().map_err(|_| {
                ApiError::invalid_field(field.name, format!("the {header} header is not text"))
            })?;
            object.insert(
                field.name.to_owned(),
                Value::String(value.trim().to_owned()),
            );
        }
    }
    crate::cookies::fill(route, headers, &mut object)?;
    let bytes =
        serde_json::to_vec(&Value::Object(object)).expect("a JSON object always serializes");
    Ok(Bytes::from(bytes))
}

/// The known fields of the query string, converted and grouped.
fn query_fields(
    route: &Route,
    query: &[(String, String)],
) -> Result<Vec<(String, Value)>, ApiError> {
    let mut out: Vec<(String, Value)> = Vec::new();
    for (name, raw) in query {
        let Some(field) = route.field(name) else {
            continue;
        };
        let Some(value) = convert(field, raw)? else {
            continue;
        };
        match out.iter_mut().find(|(n, _)| n == name) {
            Some((_, Value::Array(values))) if field.repeated => values.push(value),
            Some(_) => {
                return Err(ApiError::invalid_field(name, "must be given only once"));
            }
            None if field.repeated => out.push((name.clone(), Value::Array(vec![value]))),
            None => out.push((name.clone(), value)),
        }
    }
    Ok(out)
}

/// One query or path value as the proto3 JSON value of `field`'s kind; `None` for an empty
/// value of a non-string field (an empty form input means "not given").
///
/// - int32/uint32/float/double become JSON numbers;
/// - int64/uint64 become JSON strings of the validated integer (proto3 JSON's form, which
///   keeps precision in JavaScript);
/// - bool accepts true/false/1/0;
/// - string, enum and bytes are passed as strings; a message cannot be given this way.
pub fn convert(field: &Field, raw: &str) -> Result<Option<Value>, ApiError> {
    let name = field.name;
    let text_kind = matches!(
        field.kind,
        FieldKind::String | FieldKind::Enum | FieldKind::Bytes
    );
    if raw.is_empty() && !text_kind {
        return Ok(None);
    }
    let value = match field.kind {
        FieldKind::String | FieldKind::Enum | FieldKind::Bytes => Value::String(raw.to_owned()),
        FieldKind::Bool => match raw {
            "true" | "1" => Value::Bool(true),
            "false" | "0" => Value::Bool(false),
            _ => return Err(ApiError::invalid_field(name, "must be true, false, 1 or 0")),
        },
        FieldKind::Int32 => raw
            .parse::<i32>()
            .map(Value::from)
            .map_err(|_| ApiError::invalid_field(name, "must be a 32-bit integer"))?,
        FieldKind::Uint32 => raw
            .parse::<u32>()
            .map(Value::from)
            .map_err(|_| ApiError::invalid_field(name, "must be a non-negative 32-bit integer"))?,
        FieldKind::Int64 => raw
            .parse::<i64>()
            .map(|n| Value::String(n.to_string()))
            .map_err(|_| ApiError::invalid_field(name, "must be a 64-bit integer"))?,
        FieldKind::Uint64 => raw
            .parse::<u64>()
            .map(|n| Value::String(n.to_string()))
            .map_err(|_| ApiError::invalid_field(name, "must be a non-negative 64-bit integer"))?,
        FieldKind::Float | FieldKind::Double => raw
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| ApiError::invalid_field(name, "must be a finite number"))?,
        FieldKind::Message => {
            return Err(ApiError::invalid_field(
                name,
                "cannot be given in the query string",
            ));
        }
    };
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rpc::{Access, MethodDescriptor};

    static DESCRIPTOR: MethodDescriptor = MethodDescriptor {
        service: "test",
        method: "m",
        subject: "test.m",
        access: Access::Public,
        request_type: "test.Request",
        response_type: "test.Response",
    };

    const FIELDS: &[Field] = &[
        Field {
            name: "id",
            kind: FieldKind::String,
            repeated: false,
            header: None,
        },
        Field {
            name: "q",
            kind: FieldKind::String,
            repeated: false,
            header: None,
        },
        Field {
            name: "page_size",
            kind: FieldKind::Int32,
            repeated: false,
            header: None,
        },
        Field {
            name: "offset",
            kind: FieldKind::Uint32,
            repeated: false,
            header: None,
        },
        Field {
            name: "min_price",
            kind: FieldKind::Int64,
            repeated: false,
            header: None,
        },
        Field {
            name: "big",
            kind: FieldKind::Uint64,
            repeated: false,
            header: None,
        },
        Field {
            name: "ratio",
            kind: FieldKind::Double,
            repeated: false,
            header: None,
        },
        Field {
            name: "in_stock",
            kind: FieldKind::Bool,
            repeated: false,
            header: None,
        },
        Field {
            name: "tags",
            kind: FieldKind::String,
            repeated: true,
            header: None,
        },
        Field {
            name: "sizes",
            kind: FieldKind::Int32,
            repeated: true,
            header: None,
        },
        Field {
            name: "sort",
            kind: FieldKind::Enum,
            repeated: false,
            header: None,
        },
        Field {
            name: "price",
            kind: FieldKind::Message,
            repeated: false,
            header: None,
        },
    ];

    /// A route's fields with one filled from a header.
    const HEADER_FIELDS: &[Field] = &[Field {
        name: "cart_token",
        kind: FieldKind::String,
        repeated: false,
        header: Some("x-cart-token"),
    }];

    fn route(method: &'static str, path_params: &'static [&'static str]) -> Route {
        Route {
            descriptor: &DESCRIPTOR,
            http_method: method,
            path: "/test",
            path_params,
            rate_class: "default",
            idempotency_key_required: false,
            status_field: None,
            request_fields: FIELDS,
            stream: None,
            cookie: None,
            cookie_fields: &[],
        }
    }

    fn route_with_header(method: &'static str) -> Route {
        Route {
            request_fields: HEADER_FIELDS,
            ..route(method, &[])
        }
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn json(bytes: Bytes) -> Value {
        serde_json::from_slice(&bytes).unwrap()
    }

    fn field_of(error: &ApiError) -> &str {
        &error.details()[0].field
    }

    #[test]
    fn query_values_are_converted_by_kind() {
        let route = route("GET", &[]);
        let query = pairs(&[
            ("q", "red shoes"),
            ("page_size", "20"),
            ("offset", "3"),
            ("min_price", "-1500"),
            ("big", "18446744073709551615"),
            ("ratio", "0.5"),
            ("in_stock", "1"),
            ("tags", "a"),
            ("tags", "b"),
            ("sizes", "40"),
            ("sizes", "41"),
            ("sort", "SORT_NEWEST"),
            ("unknown", "ignored"),
        ]);
        let message = json(build(&route, &[], &query, &HeaderMap::new(), Bytes::new()).unwrap());
        assert_eq!(
            message,
            serde_json::json!({
                "q": "red shoes",
                "page_size": 20,
                "offset": 3,
                "min_price": "-1500",
                "big": "18446744073709551615",
                "ratio": 0.5,
                "in_stock": true,
                "tags": ["a", "b"],
                "sizes": [40, 41],
                "sort": "SORT_NEWEST",
            })
        );
    }

    #[test]
    fn bools_accept_words_and_digits_only() {
        let route = route("GET", &[]);
        for (raw, expected) in [("true", true), ("false", false), ("1", true), ("0", false)] {
            let message = json(
                build(
                    &route,
                    &[],
                    &pairs(&[("in_stock", raw)]),
                    &HeaderMap::new(),
                    Bytes::new(),
                )
                .unwrap(),
            );
            assert_eq!(message["in_stock"], expected);
        }
        let error = build(
            &route,
            &[],
            &pairs(&[("in_stock", "yes")]),
            &HeaderMap::new(),
            Bytes::new(),
        )
        .unwrap_err();
        assert_eq!(field_of(&error), "in_stock");
    }

    #[test]
    fn non_numeric_values_name_the_field() {
        let route = route("GET", &[]);
        for (name, raw) in [
            ("page_size", "ten"),
            ("page_size", "3000000000"),
            ("offset", "-1"),
            ("min_price", "1.5"),
            ("min_price", "99999999999999999999"),
            ("big", "-1"),
            ("ratio", "NaN"),
            ("ratio", "abc"),
            ("sizes", "x"),
        ] {
            let error = build(
                &route,
                &[],
                &pairs(&[(name, raw)]),
                &HeaderMap::new(),
                Bytes::new(),
            )
            .unwrap_err();
            assert_eq!(error.code().status(), 400, "{name}={raw}");
            assert_eq!(field_of(&error), name, "{name}={raw}");
        }
    }

    #[test]
    fn empty_numbers_mean_not_given_and_repeated_scalars_are_refused() {
        let route = route("GET", &[]);
        let message = json(
            build(
                &route,
                &[],
                &pairs(&[("page_size", ""), ("q", "")]),
                &HeaderMap::new(),
                Bytes::new(),
            )
            .unwrap(),
        );
        assert_eq!(message, serde_json::json!({"q": ""}));
        let error = build(
            &route,
            &[],
            &pairs(&[("q", "a"), ("q", "b")]),
            &HeaderMap::new(),
            Bytes::new(),
        )
        .unwrap_err();
        assert_eq!(field_of(&error), "q");
        let error = build(
            &route,
            &[],
            &pairs(&[("price", "5")]),
            &HeaderMap::new(),
            Bytes::new(),
        )
        .unwrap_err();
        assert_eq!(field_of(&error), "price");
    }

    #[test]
    fn path_params_win_over_query_params() {
        let route = route("GET", &["id"]);
        let message = json(
            build(
                &route,
                &pairs(&[("id", "p-1")]),
                &pairs(&[("id", "p-2"), ("q", "x")]),
                &HeaderMap::new(),
                Bytes::new(),
            )
            .unwrap(),
        );
        assert_eq!(message, serde_json::json!({"id": "p-1", "q": "x"}));
    }

    #[test]
    fn get_bodies_are_ignored() {
        let route = route("GET", &[]);
        let message = json(
            build(
                &route,
                &[],
                &[],
                &HeaderMap::new(),
                Bytes::from_static(b"{\"q\":\"x\"}"),
            )
            .unwrap(),
        );
        assert_eq!(message, serde_json::json!({}));
    }

    #[test]
    fn a_plain_body_is_forwarded_byte_for_byte() {
        let route = route("POST", &[]);
        // Not even re-parsed: odd spacing and key order survive, and so does invalid JSON
        // (the service answers it with invalid_argument).
        for body in [&b"{ \"q\" :\"x\",\"a\":1 }"[..], b"{not json"] {
            let out = build(
                &route,
                &[],
                &[],
                &HeaderMap::new(),
                Bytes::copy_from_slice(body),
            )
            .unwrap();
            assert_eq!(&out[..], body);
        }
        let out = build(&route, &[], &[], &HeaderMap::new(), Bytes::new()).unwrap();
        assert_eq!(&out[..], b"{}");
    }

    #[test]
    fn path_params_are_merged_into_the_body_and_override_it() {
        let route = route("PATCH", &["id"]);
        let body = Bytes::from_static(
            b"{\"id\":\"forged\",\"q\":\"x\",\"price\":{\"minor_units\":\"5\"}}",
        );
        let message = json(
            build(
                &route,
                &pairs(&[("id", "p-1")]),
                &[],
                &HeaderMap::new(),
                body,
            )
            .unwrap(),
        );
        assert_eq!(
            message,
            serde_json::json!({"id": "p-1", "q": "x", "price": {"minor_units": "5"}})
        );
        let message = json(
            build(
                &route,
                &pairs(&[("id", "p-1")]),
                &[],
                &HeaderMap::new(),
                Bytes::new(),
            )
            .unwrap(),
        );
        assert_eq!(message, serde_json::json!({"id": "p-1"}));
    }

    #[test]
    fn bodies_that_must_be_merged_must_be_json_objects() {
        let route = route("PUT", &["id"]);
        for body in [&b"{not json"[..], b"[1,2]", b"\"text\"", b"42"] {
            let error = build(
                &route,
                &pairs(&[("id", "p-1")]),
                &[],
                &HeaderMap::new(),
                Bytes::copy_from_slice(body),
            )
            .unwrap_err();
            assert_eq!(error.code().status(), 400);
            assert!(
                error.message().starts_with("malformed JSON"),
                "{}",
                error.message()
            );
        }
    }

    #[test]
    fn query_params_on_a_body_route_are_merged() {
        let route = route("POST", &[]);
        let message = json(
            build(
                &route,
                &[],
                &pairs(&[("page_size", "5")]),
                &HeaderMap::new(),
                Bytes::from_static(b"{\"q\":\"x\",\"page_size\":1}"),
            )
            .unwrap(),
        );
        assert_eq!(message, serde_json::json!({"q": "x", "page_size": 5}));
    }

    #[test]
    fn a_cookie_fills_only_an_empty_field_of_a_route_that_reads_it() {
        let route = |path: &str| {
            api::ROUTES
                .iter()
                .find(|r| r.path == path && r.http_method == "POST")
                .unwrap()
        };
        let mut headers = HeaderMap::new();
        headers.insert("cookie", "emporium_refresh=tok-1".parse().unwrap());
        let refresh = route("/api/v1/auth/refresh");
        for body in [&b""[..], b"{}", b"{\"refresh_token\":\"\"}"] {
            let message =
                json(build(refresh, &[], &[], &headers, Bytes::from_static(body)).unwrap());
            assert_eq!(message, serde_json::json!({"refresh_token": "tok-1"}));
        }
        let message = json(
            build(
                refresh,
                &[],
                &[],
                &headers,
                Bytes::from_static(b"{\"refresh_token\":\"tok-body\"}"),
            )
            .unwrap(),
        );
        assert_eq!(message, serde_json::json!({"refresh_token": "tok-body"}));
        // Login reads no cookie: its body is forwarded as it came.
        let body = Bytes::from_static(b"{\"email\":\"a@b.c\"}");
        let out = build(
            route("/api/v1/auth/login"),
            &[],
            &[],
            &headers,
            body.clone(),
        )
        .unwrap();
        assert_eq!(out, body);
    }

    #[test]
    fn header_fields_come_from_the_header_alone() {
        let mut headers = HeaderMap::new();
        let body = Bytes::from_static(b"{\"q\":\"x\",\"cart_token\":\"forged\"}");
        // Absent header: the body's value is dropped, even on the byte-for-byte path.
        let message =
            json(build(&route_with_header("POST"), &[], &[], &headers, body.clone()).unwrap());
        assert_eq!(message, serde_json::json!({"q": "x"}));
        headers.insert("x-cart-token", " token-1 ".parse().unwrap());
        let message = json(build(&route_with_header("POST"), &[], &[], &headers, body).unwrap());
        assert_eq!(
            message,
            serde_json::json!({"q": "x", "cart_token": "token-1"})
        );
        let query = pairs(&[("cart_token", "forged")]);
        let message = json(
            build(
                &route_with_header("GET"),
                &[],
                &query,
                &headers,
                Bytes::new(),
            )
            .unwrap(),
        );
        assert_eq!(message, serde_json::json!({"cart_token": "token-1"}));
    }
}
