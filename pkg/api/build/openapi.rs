//! The OpenAPI 3.1 document of every HTTP route: one operation per routed method, its
//! parameters and bodies from the request and response messages, its access level, subject and
//! rate class as extensions.

use std::collections::BTreeMap;

use prost_reflect::Kind;
use serde_json::{Value as Json, json};

use crate::contracts::{Contracts, Cookie, CookieAction, must_be_present, path_params};
use crate::schema::{field_schema, schema_of, schema_ref};

/// The request header that makes a mutating request idempotent (IETF httpapi
/// idempotency-key draft); the gateway honours it on every POST, PUT, PATCH and DELETE route.
const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// The response header marking a stored answer sent again.
const IDEMPOTENT_REPLAYED: &str = "Idempotent-Replayed";

fn idempotency_key_parameter(required: bool) -> Json {
    let description = if required {
        "Required: a key the client chooses for this operation (a UUID), sent again unchanged when it retries. The first request's answer (a 2xx or a 4xx) is kept for 24 hours and sent again, marked `Idempotent-Replayed: true`, to a repeat with the same key, body and query string from the same caller; the same key with another body is refused (`idempotency_key_reused`, 422), a repeat while the first is still being served is refused (`idempotency_key_in_flight`, 409, see Retry-After). A 5xx answer is not kept: retry with the same key. Without the header the request is refused (`idempotency_key_required`, 400)."
    } else {
        "Optional: a key the client chooses for this operation (a UUID), sent again unchanged when it retries. The first request's answer (a 2xx or a 4xx) is kept for 24 hours and sent again, marked `Idempotent-Replayed: true`, to a repeat with the same key, body and query string from the same caller; the same key with another body is refused (`idempotency_key_reused`, 422), a repeat while the first is still being served is refused (`idempotency_key_in_flight`, 409, see Retry-After). A 5xx answer is not kept: retry with the same key."
    };
    json!({
        "name": IDEMPOTENCY_KEY,
        "in": "header",
        "required": required,
        "description": description,
        "schema": { "type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$" }
    })
}

/// The header by which a client asks for a route's token in a cookie instead of the body.
fn cookie_opt_in_parameter(cookie: &Cookie) -> Json {
    let what = match &cookie.action {
        CookieAction::Set { value_field, .. } => format!(
            "`cookie`: the answer's `{value_field}` is set as the HttpOnly cookie `{}` (SameSite=Strict, Path={}, Secure over HTTPS, Max-Age its lifetime) and is the empty string in the body, out of reach of scripts in the page. `body` or absent: the body carries it, as for any API client.",
            cookie.name, cookie.path
        ),
        CookieAction::Clear => format!(
            "`cookie`: the answer (unless a 5xx or 429) clears the cookie `{}` (Max-Age=0). `body` or absent: the cookie is left as it is.",
            cookie.name
        ),
    };
    json!({
        "name": cookie.opt_in_header,
        "in": "header",
        "required": false,
        "description": what,
        "schema": { "type": "string", "enum": ["cookie", "body"] }
    })
}

/// The Set-Cookie header of a route's answer, when the client asked for the cookie.
fn set_cookie_header(cookie: &Cookie) -> Json {
    let description = match &cookie.action {
        CookieAction::Set { .. } => format!(
            "With `{}: cookie` only: `{}=<token>; HttpOnly; SameSite=Strict; Path={}; Max-Age=<seconds>`, plus `Secure` when the request came over HTTPS.",
            cookie.opt_in_header, cookie.name, cookie.path
        ),
        CookieAction::Clear => format!(
            "With `{}: cookie` only: `{}=; HttpOnly; SameSite=Strict; Path={}; Max-Age=0`, which clears the cookie.",
            cookie.opt_in_header, cookie.name, cookie.path
        ),
    };
    json!({ "description": description, "schema": { "type": "string" } })
}

fn idempotent_replayed_header() -> Json {
    json!({
        "description": "`true` when this is the kept answer of an earlier request with the same Idempotency-Key, sent again; absent otherwise.",
        "schema": { "type": "string", "enum": ["true"] }
    })
}

pub fn document(contracts: &Contracts) -> Json {
    let mut paths: BTreeMap<String, serde_json::Map<String, Json>> = BTreeMap::new();
    let mut schemas = BTreeMap::new();
    let mut tags = Vec::new();
    for service in &contracts.services {
        tags.push(json!({ "name": service.name, "description": service.description }));
        for method in &service.methods {
            let Some((verb, path)) = &method.http else {
                continue;
            };
            let input = method.descriptor.input();
            let output = method.descriptor.output();
            schema_of(contracts, &input, &mut schemas);
            schema_of(contracts, &output, &mut schemas);
            let params = path_params(path);
            let mut parameters: Vec<Json> = params
                .iter()
                .map(|p| {
                    let field = input.get_field_by_name(p).expect("checked in read");
                    json!({ "name": p, "in": "path", "required": true, "schema": field_schema(contracts, &field) })
                })
                .collect();
            let header_of = |field: &prost_reflect::FieldDescriptor| {
                contracts
                    .rules
                    .get(field.full_name())
                    .and_then(|r| r.header.clone())
            };
            for field in input.fields() {
                if let Some(header) = header_of(&field) {
                    let mut parameter = json!({ "name": header, "in": "header", "required": false, "schema": field_schema(contracts, &field) });
                    if let Some(doc) = contracts.field_comment(&field) {
                        parameter["description"] = json!(doc);
                    }
                    parameters.push(parameter);
                }
                if let Some(cookie) = contracts
                    .rules
                    .get(field.full_name())
                    .and_then(|r| r.cookie.as_ref())
                {
                    let mut parameter = json!({
                        "name": cookie,
                        "in": "cookie",
                        "required": false,
                        "description": format!("Read only when the body leaves `{}` empty: its value stands in for it. No other cookie is read.", field.name()),
                        "schema": field_schema(contracts, &field),
                    });
                    parameter["schema"]["minLength"] = json!(1);
                    parameters.push(parameter);
                }
            }
            if let Some(cookie) = &method.cookie {
                parameters.push(cookie_opt_in_parameter(cookie));
            }
            if method.accepts_idempotency_key() {
                // A request field the header fills (the order service keeps the key too) is
                // the same parameter: documented once, what the field says added.
                let mut parameter = idempotency_key_parameter(method.idempotency_key_required);
                if let Some(index) = parameters.iter().position(|p| {
                    p["in"] == "header"
                        && p["name"]
                            .as_str()
                            .is_some_and(|name| name.eq_ignore_ascii_case(IDEMPOTENCY_KEY))
                }) {
                    let field = parameters.remove(index);
                    if let Some(doc) = field["description"].as_str() {
                        parameter["description"] = json!(format!(
                            "{} {doc}",
                            parameter["description"].as_str().unwrap_or("")
                        ));
                    }
                }
                parameters.push(parameter);
            }
            let has_body = method.has_body();
            if !has_body {
                for field in input
                    .fields()
                    .filter(|f| !params.contains(&f.name().to_owned()) && header_of(f).is_none())
                {
                    if matches!(field.kind(), Kind::Message(_)) {
                        continue;
                    }
                    let required = must_be_present(contracts.rules.get(field.full_name()), &field);
                    let mut parameter = json!({ "name": field.name(), "in": "query", "required": required, "schema": field_schema(contracts, &field) });
                    if let Some(doc) = contracts.field_comment(&field) {
                        parameter["description"] = json!(doc);
                    }
                    parameters.push(parameter);
                }
            }
            // The error responses are the gateway's to add: its status table decides the
            // status of each code (gateway/src/openapi.rs).
            let responses = match &method.stream {
                None if method.status_field.is_some() => {
                    let field = method.status_field.as_deref().unwrap_or_default();
                    let answer = |description: &str| {
                        json!({
                            "description": format!("{description} (the reply's `{field}` says which)"),
                            "headers": { IDEMPOTENT_REPLAYED: idempotent_replayed_header() },
                            "content": { "application/json": { "schema": schema_ref(&output) } }
                        })
                    };
                    json!({
                        "200": answer("Done"),
                        "201": answer("Created, and done"),
                        "202": answer("Accepted: still in progress; follow it at the URL in the reply"),
                    })
                }
                None if method.accepts_idempotency_key() => json!({
                    "200": {
                        "description": "OK",
                        "headers": { IDEMPOTENT_REPLAYED: idempotent_replayed_header() },
                        "content": { "application/json": { "schema": schema_ref(&output) } }
                    }
                }),
                None => json!({
                    "200": { "description": "OK", "content": { "application/json": { "schema": schema_ref(&output) } } }
                }),
                Some((domain, _key)) => {
                    let events: Vec<&str> = contracts
                        .events
                        .iter()
                        .filter(|e| &e.domain == domain)
                        .map(|e| e.name.as_str())
                        .collect();
                    json!({
                        "200": {
                            "description": format!(
                                "Server-sent events: first `snapshot`, whose data is the reply (schema below), then each event of the {domain} as it is published ({}), named by its type, with the event id as the SSE id and the payload (see the AsyncAPI catalogue) as data. Comments keep an idle connection alive.",
                                events.iter().map(|e| format!("`{e}`")).collect::<Vec<_>>().join(", ")
                            ),
                            "content": { "text/event-stream": { "schema": { "type": "string" }, "x-snapshot": schema_ref(&output) } }
                        }
                    })
                }
            };
            let mut responses = responses;
            if let Some(cookie) = &method.cookie
                && let Some(responses) = responses.as_object_mut()
            {
                for (status, response) in responses.iter_mut() {
                    if status.starts_with('2') {
                        response["headers"]["Set-Cookie"] = set_cookie_header(cookie);
                    }
                }
            }
            let mut operation = json!({
                "operationId": format!("{}.{}", service.name, method.name),
                "tags": [service.name],
                "summary": method.comment.lines().next().unwrap_or(&method.name),
                "description": method.comment,
                "x-access": method.access.to_ascii_lowercase(),
                "x-nats-subject": method.subject(service),
                "x-rate-class": method.rate_class,
                "parameters": parameters,
                "responses": responses,
                "x-error-codes": method.error_codes(),
            });
            if let Some((domain, key)) = &method.stream {
                operation["x-stream"] = json!({
                    "subject": format!("events.{domain}.{{{key}}}.>"),
                    "events": contracts.events.iter().filter(|e| &e.domain == domain).map(|e| e.name.clone()).collect::<Vec<_>>(),
                });
            }
            if method.access != "Public" {
                operation["security"] = json!([{ "bearerAuth": [] }]);
            }
            if has_body {
                operation["requestBody"] = json!({
                    "required": true,
                    "content": { "application/json": { "schema": schema_ref(&input) } }
                });
            }
            paths
                .entry(path.clone())
                .or_default()
                .insert(verb.to_ascii_lowercase(), operation);
        }
    }
    let components: serde_json::Map<String, Json> = schemas.into_iter().collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Emporium API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The HTTP API of the Emporium platform. Every route is served by a NATS service; this document is generated from the service contracts in pkg/api/proto. 64-bit integers are JSON strings (canonical proto3 JSON) and are accepted as numbers too.",
        },
        "tags": tags,
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": { "bearerAuth": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" } }
        }
    })
}
