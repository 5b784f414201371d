//! The service contracts of the platform, generated from `proto/` at build time.
//!
//! Each service's contract is one `.proto` file: its messages, an rpc service, and per method
//! the platform options (access level, HTTP route, rate class). From that single source this
//! crate provides the message types with canonical proto3 JSON, each method's NATS subject
//! ([`rpc::MethodDescriptor`]), a server trait and `endpoints()` binding for the service, a
//! typed client for its callers, the gateway's route table ([`ROUTES`]) and the OpenAPI
//! document ([`OPENAPI_JSON`]).
//!
//! Domain events are declared beside the contracts: a message with the
//! `(emporium.options.event)` option is an event payload. Each gets an [`EventDescriptor`]
//! (`api::product::events::PRODUCT_CREATED`), an [`Event`] impl tying the payload type to it,
//! a place in [`EVENTS`], and a channel in the AsyncAPI catalogue ([`ASYNCAPI_JSON`]). Stream
//! names and subjects are derived from the descriptors by `pkg/events`, nowhere else.
//!
//! Each method is also a type (`api::product::methods::GetProduct`, an [`rpc::Method`]) that
//! carries its descriptor, request and response, so a call or a binding with the wrong message
//! types does not compile:
//!
//! ```
//! use api::product::{GetProductRequest, Product, methods::GetProduct};
//! let _endpoint = rpc::Endpoint::bind::<GetProduct, _, _>(
//!     |_ctx, _request: GetProductRequest| async move { Ok(Product::default()) },
//! );
//! ```
//!
//! ```compile_fail
//! // A handler of another method's request is refused.
//! use api::product::{ListProductsRequest, Product, methods::GetProduct};
//! let _endpoint = rpc::Endpoint::bind::<GetProduct, _, _>(
//!     |_ctx, _request: ListProductsRequest| async move { Ok(Product::default()) },
//! );
//! ```
//!
//! It must never hold behaviour: no I/O, no business rules, only what the contracts say.
//! A subject or route string written anywhere else in the platform is a bug.

#![allow(clippy::all, clippy::pedantic)]

include!(concat!(env!("OUT_DIR"), "/api.rs"));

pub use pbjson_types::Timestamp;

/// A UTC instant as the contracts carry it: a protobuf `Timestamp` (RFC 3339 in JSON), set.
/// A pure conversion, written here once for every service.
pub fn timestamp(at: chrono::DateTime<chrono::Utc>) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: at.timestamp(),
        // Always below one billion, so it fits.
        nanos: at.timestamp_subsec_nanos() as i32,
    })
}

/// A service's contract as a whole: what the platform's NATS permissions are made from.
#[derive(Debug)]
pub struct Contract {
    pub service: &'static rpc::ServiceDescriptor,
    /// Every method it serves, in declaration order.
    pub methods: &'static [&'static rpc::MethodDescriptor],
    /// The internal methods of other services it calls (the `calls` of its service option):
    /// the only method subjects its NATS user may publish to.
    pub calls: &'static [&'static rpc::MethodDescriptor],
}

/// Contracts are one per service: the same service is the same contract.
impl PartialEq for Contract {
    fn eq(&self, other: &Self) -> bool {
        self.service == other.service
    }
}

impl Eq for Contract {}

/// The contract of the service named `name`, if there is one.
pub fn contract(name: &str) -> Option<&'static Contract> {
    CONTRACTS.iter().find(|c| c.service.name == name)
}

/// An HTTP route of a contract method, for the gateway.
#[derive(Debug)]
pub struct Route {
    pub descriptor: &'static rpc::MethodDescriptor,
    /// "GET", "POST", "PUT", "PATCH" or "DELETE".
    pub http_method: &'static str,
    /// In axum's syntax: `/api/v1/products/{id}`.
    pub path: &'static str,
    /// Names of the path parameters, each a field of the request message.
    pub path_params: &'static [&'static str],
    /// The rate-limit class the gateway applies.
    pub rate_class: &'static str,
    /// The gateway refuses a request without an `Idempotency-Key` header (400); every
    /// mutating route accepts one (see [`Route::accepts_idempotency_key`]).
    pub idempotency_key_required: bool,
    /// A top-level int32 field of the response whose value, when it is a 2xx status, is the
    /// status the gateway answers with (201 created, 202 accepted); 200 otherwise.
    pub status_field: Option<&'static str>,
    /// The top-level fields of the request message, for turning query strings into JSON.
    pub request_fields: &'static [Field],
    /// Present when the route answers with server-sent events.
    pub stream: Option<Stream>,
    /// The cookie the route sets or clears for a client that asks for it.
    pub cookie: Option<Cookie>,
    /// The request fields the gateway fills from a cookie when the body leaves them empty;
    /// the only cookies it reads for this route.
    pub cookie_fields: &'static [CookieField],
}

/// A streaming route: the method's reply first (the current state, after its access rules),
/// then each event of one aggregate as it is published. The subject is the events crate's to
/// derive from `domain` (events.<domain>.<aggregate id>.>).
#[derive(Debug)]
pub struct Stream {
    /// The event domain whose events are streamed: "product".
    pub domain: &'static str,
    /// The path parameter holding the aggregate id: "id".
    pub key: &'static str,
}

impl Stream {
    /// The events a client of this stream can receive, as the contracts declare them.
    pub fn events(&self) -> impl Iterator<Item = &'static EventDescriptor> + '_ {
        EVENTS.iter().copied().filter(|e| e.domain == self.domain)
    }
}

impl Route {
    pub fn field(&self, name: &str) -> Option<&'static Field> {
        self.request_fields.iter().find(|f| f.name == name)
    }

    /// Whether the gateway honours an `Idempotency-Key` header: POST, PUT, PATCH and DELETE
    /// routes; GET routes and streams ignore it.
    pub fn accepts_idempotency_key(&self) -> bool {
        self.stream.is_none() && matches!(self.http_method, "POST" | "PUT" | "PATCH" | "DELETE")
    }

    /// The fields the gateway fills from request headers.
    pub fn header_fields(&self) -> impl Iterator<Item = &'static Field> + '_ {
        self.request_fields.iter().filter(|f| f.header.is_some())
    }

    /// The cookie this route sets or clears for a client that asks for it.
    pub fn cookie(&self) -> Option<&Cookie> {
        self.cookie.as_ref()
    }

    /// The fields the gateway fills from a cookie when the body leaves them empty; the only
    /// cookies it reads for this route.
    pub fn cookie_fields(&self) -> impl Iterator<Item = &'static CookieField> + '_ {
        self.cookie_fields.iter()
    }
}

/// A cookie a route sets or clears in place of a token in its JSON body, for a client that
/// sends `opt_in_header: cookie` (the method option `cookie`). HttpOnly, SameSite=Strict,
/// scoped to `path`.
#[derive(Debug)]
pub struct Cookie {
    /// "emporium_refresh"
    pub name: &'static str,
    /// The request header whose value `cookie` asks for it ("X-Refresh-Token-Delivery").
    pub opt_in_header: &'static str,
    /// The cookie's Path ("/api/v1/auth").
    pub path: &'static str,
    pub action: CookieAction,
}

#[derive(Debug)]
pub enum CookieAction {
    /// A 2xx answer's top-level string field `value_field` becomes the cookie (and the empty
    /// string in the body), lasting the seconds of its integer field `max_age_field`.
    Set {
        value_field: &'static str,
        max_age_field: &'static str,
    },
    /// The answer clears the cookie.
    Clear,
}

/// A top-level request field the gateway fills from a cookie (the field option `cookie`).
#[derive(Debug)]
pub struct CookieField {
    /// The field's name.
    pub field: &'static str,
    /// The cookie's name.
    pub cookie: &'static str,
    /// The most characters of the field, and so of a cookie value taken for it.
    pub max_len: u32,
}

/// A top-level field of a request message.
#[derive(Debug)]
pub struct Field {
    pub name: &'static str,
    pub kind: FieldKind,
    pub repeated: bool,
    /// The HTTP request header the gateway fills this field from, replacing what the client
    /// sent in the body or query string (`X-Cart-Token`).
    pub header: Option<&'static str>,
}

/// The protobuf kind of a field, as far as JSON encoding cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    String,
    Bool,
    Int32,
    Int64,
    Uint32,
    Uint64,
    Float,
    Double,
    Enum,
    Bytes,
    Message,
}

/// The OpenAPI 3.1 document of every route, generated from the contracts. Each operation lists
/// the error codes it can answer with (`x-error-codes`); the gateway, which decides the HTTP
/// status of each code, adds the error responses to the document it serves.
pub const OPENAPI_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.json"));

/// The AsyncAPI 3.0 catalogue of every domain event, generated from the event declarations.
pub const ASYNCAPI_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/asyncapi.json"));

/// A domain event as its contract declares it. Data only: `pkg/events` turns it into stream
/// names and subjects.
#[derive(Debug, PartialEq, Eq)]
pub struct EventDescriptor {
    /// "product.created": the domain, a dot, the event.
    pub name: &'static str,
    /// "product": names the stream the event is stored in.
    pub domain: &'static str,
    /// "created": the last token of the event's subject.
    pub event: &'static str,
    /// The payload's version, from 1.
    pub version: u32,
    /// The full protobuf name of the payload message: "emporium.product.v1.ProductCreated".
    pub payload_type: &'static str,
    /// The service that publishes it: the one whose contract package declares it.
    pub producer: &'static str,
    /// The services that consume it, as the declaration lists them (for the catalogue).
    pub consumers: &'static [&'static str],
}

/// A contract message that is the payload of a domain event.
pub trait Event: rpc::Message {
    const DESCRIPTOR: &'static EventDescriptor;
}

/// The descriptor of the event named `name` ("product.created"), if a contract declares it.
pub fn event_by_name(name: &str) -> Option<&'static EventDescriptor> {
    EVENTS.iter().copied().find(|e| e.name == name)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn routes_are_unique_and_their_path_params_are_request_fields() {
        let mut seen = HashSet::new();
        for route in ROUTES {
            assert!(
                seen.insert((route.http_method, route.path)),
                "{} {} is routed twice",
                route.http_method,
                route.path
            );
            for param in route.path_params {
                assert!(route.field(param).is_some(), "{} {param}", route.path);
                assert!(route.path.contains(&format!("{{{param}}}")));
            }
            assert_ne!(route.descriptor.access, rpc::Access::Internal);
            assert!(route.path.starts_with("/api/v1/") || route.path.starts_with("/.well-known/"));
        }
    }

    #[test]
    fn subjects_are_the_service_name_then_the_method() {
        let method = &product::methods::GET_PRODUCT;
        assert_eq!(method.subject, "product.get_product");
        assert_eq!(method.service, product::SERVICE_NAME);
        assert_eq!(
            product::methods::RESERVE_STOCK.access,
            rpc::Access::Internal
        );
        // Sellers create products in their own shops; the service checks which.
        assert_eq!(product::methods::CREATE_PRODUCT.access, rpc::Access::User);
        assert_eq!(shop::methods::APPROVE_SHOP.access, rpc::Access::Admin);
    }

    #[test]
    fn a_method_type_carries_its_descriptor() {
        use rpc::Method as _;
        let descriptor = product::methods::GetProduct::DESCRIPTOR;
        assert!(std::ptr::eq(descriptor, &product::methods::GET_PRODUCT));
        assert_eq!(descriptor.subject, "product.get_product");
        assert_eq!(
            auth::methods::GrantRole::DESCRIPTOR.access,
            rpc::Access::Admin
        );
    }

    #[test]
    fn json_uses_proto_field_names_and_emits_defaults() {
        let product = product::Product {
            id: "p1".into(),
            price: Some(common::Money {
                minor_units: 2999,
                currency: "USD".into(),
            }),
            ..Default::default()
        };
        let json: serde_json::Value = serde_json::to_value(&product).unwrap();
        assert_eq!(
            json["price"]["minor_units"], "2999",
            "int64 is a JSON string"
        );
        assert_eq!(
            json["image_urls"],
            serde_json::json!([]),
            "defaults are emitted"
        );
        assert_eq!(json["shop_id"], "");
        assert!(json.get("shopId").is_none());
    }

    #[test]
    fn json_accepts_numbers_for_int64_and_rejects_unknown_fields() {
        let request: product::SetStockRequest =
            serde_json::from_str(r#"{"id":"p1","stock":7}"#).unwrap();
        assert_eq!(request.stock, 7);
        let request: product::SetStockRequest =
            serde_json::from_str(r#"{"id":"p1","stock":"8"}"#).unwrap();
        assert_eq!(request.stock, 8);
        assert!(serde_json::from_str::<product::SetStockRequest>(r#"{"stok":1}"#).is_err());
    }

    #[test]
    fn openapi_lists_every_route() {
        let document: serde_json::Value = serde_json::from_str(OPENAPI_JSON).unwrap();
        assert_eq!(document["openapi"], "3.1.0");
        for route in ROUTES {
            let operation = &document["paths"][route.path][route.http_method.to_lowercase()];
            assert!(
                operation.is_object(),
                "{} {}",
                route.http_method,
                route.path
            );
            assert_eq!(operation["x-nats-subject"], route.descriptor.subject);
        }
        assert!(document["components"]["schemas"]["product.v1.Product"].is_object());
    }

    #[test]
    fn openapi_documents_the_idempotency_key_on_mutating_routes_only() {
        let document: serde_json::Value = serde_json::from_str(OPENAPI_JSON).unwrap();
        let mut mutating = 0;
        for route in ROUTES {
            let operation = &document["paths"][route.path][route.http_method.to_lowercase()];
            let parameter = operation["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == "Idempotency-Key");
            let codes = operation["x-error-codes"].as_array().unwrap();
            let has_code = |code: &str| codes.iter().any(|c| c == code);
            let what = format!("{} {}", route.http_method, route.path);
            if route.accepts_idempotency_key() {
                mutating += 1;
                let parameter = parameter.unwrap_or_else(|| panic!("{what}: no Idempotency-Key"));
                assert_eq!(parameter["in"], "header", "{what}");
                assert_eq!(
                    parameter["required"], route.idempotency_key_required,
                    "{what}"
                );
                assert_eq!(parameter["schema"]["maxLength"], 255, "{what}");
                assert!(has_code("idempotency_key_in_flight"), "{what}");
                assert!(has_code("idempotency_key_reused"), "{what}");
                assert_eq!(
                    has_code("idempotency_key_required"),
                    route.idempotency_key_required,
                    "{what}"
                );
                assert!(
                    operation["responses"]["200"]["headers"]["Idempotent-Replayed"].is_object(),
                    "{what}"
                );
            } else {
                assert!(parameter.is_none(), "{what} ignores Idempotency-Key");
                assert!(!has_code("idempotency_key_reused"), "{what}");
                assert!(!route.idempotency_key_required, "{what}");
            }
        }
        assert!(mutating > 0, "the contracts have mutating routes");
        assert!(
            !ROUTES
                .iter()
                .find(|r| r.http_method == "GET" && r.path == "/api/v1/products/{id}")
                .unwrap()
                .accepts_idempotency_key()
        );
    }

    #[test]
    fn the_refresh_cookie_is_declared_on_the_auth_routes_and_documented() {
        let document: serde_json::Value = serde_json::from_str(OPENAPI_JSON).unwrap();
        let route = |path: &str| ROUTES.iter().find(|r| r.path == path).unwrap();
        for path in [
            "/api/v1/auth/login",
            "/api/v1/auth/refresh",
            "/api/v1/auth/logout",
        ] {
            let cookie = route(path).cookie().unwrap_or_else(|| panic!("{path}"));
            assert_eq!(cookie.name, "emporium_refresh");
            assert_eq!(cookie.path, "/api/v1/auth");
            assert!(path.starts_with(cookie.path));
            let operation = &document["paths"][path]["post"];
            let parameters = operation["parameters"].as_array().unwrap();
            let opt_in = parameters
                .iter()
                .find(|p| p["name"] == cookie.opt_in_header)
                .unwrap_or_else(|| panic!("{path}: no {}", cookie.opt_in_header));
            assert_eq!(opt_in["in"], "header");
            assert_eq!(
                opt_in["schema"]["enum"],
                serde_json::json!(["cookie", "body"])
            );
            let set_cookie = &operation["responses"]["200"]["headers"]["Set-Cookie"];
            assert!(
                set_cookie["description"]
                    .as_str()
                    .unwrap()
                    .contains("HttpOnly"),
                "{path}"
            );
            let reads = parameters.iter().any(|p| p["in"] == "cookie");
            assert_eq!(
                reads,
                route(path).cookie_fields().next().is_some(),
                "{path}"
            );
        }
        assert!(matches!(
            route("/api/v1/auth/login").cookie().unwrap().action,
            CookieAction::Set {
                value_field: "refresh_token",
                max_age_field: "refresh_expires_in"
            }
        ));
        assert!(matches!(
            route("/api/v1/auth/logout").cookie().unwrap().action,
            CookieAction::Clear
        ));
        // The body may leave a field a cookie fills.
        let refresh = &document["components"]["schemas"]["auth.v1.RefreshRequest"];
        assert!(refresh.get("required").is_none(), "{refresh}");
        let parameter = document["paths"]["/api/v1/auth/refresh"]["post"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["in"] == "cookie")
            .unwrap();
        assert_eq!(parameter["name"], "emporium_refresh");
        assert_eq!(parameter["schema"]["maxLength"], 256);
        // No other route reads a cookie or has a cookie to set.
        for route in ROUTES {
            if !route.path.starts_with("/api/v1/auth/") {
                assert!(
                    route.cookie().is_none() && route.cookie_fields().next().is_none(),
                    "{}",
                    route.path
                );
            }
        }
    }

    #[test]
    fn events_are_declared_once_with_their_producer() {
        use crate::Event as _;
        let mut names = HashSet::new();
        for event in EVENTS {
            assert!(names.insert(event.name), "{} declared twice", event.name);
            assert_eq!(event.name, format!("{}.{}", event.domain, event.event));
            assert!(event.version >= 1);
        }
        let created = product::ProductCreated::DESCRIPTOR;
        assert_eq!(created, &product::events::PRODUCT_CREATED);
        assert_eq!(created.name, "product.created");
        assert_eq!(created.domain, "product");
        assert_eq!(created.producer, product::SERVICE_NAME);
        assert_eq!(created.payload_type, "emporium.product.v1.ProductCreated");
        assert_eq!(
            event_by_name("inventory.reserved"),
            Some(&product::events::INVENTORY_RESERVED)
        );
        assert!(event_by_name("product.deleted").is_none());
    }

    #[test]
    fn asyncapi_has_a_channel_and_a_producer_operation_per_event() {
        let document: serde_json::Value = serde_json::from_str(ASYNCAPI_JSON).unwrap();
        assert_eq!(document["asyncapi"], "3.0.0");
        for event in EVENTS {
            let channel = &document["channels"][event.name];
            assert!(channel.is_object(), "{}", event.name);
            assert!(channel["parameters"]["aggregate_id"].is_object());
            let message = &document["components"]["messages"][event.name];
            assert_eq!(message["x-producer"], event.producer);
            assert_eq!(message["x-event-version"], event.version);
            let payload = message["payload"]["$ref"].as_str().unwrap();
            let schema = payload.rsplit('/').next().unwrap();
            assert!(
                document["components"]["schemas"][schema].is_object(),
                "{schema}"
            );
            let send = &document["operations"][format!("{}.{}.send", event.producer, event.name)];
            assert_eq!(send["action"], "send");
        }
    }

    /// docs/api/asyncapi.json is the committed event catalogue. Regenerate with
    /// `cargo xtask api-docs`.
    #[test]
    fn committed_asyncapi_document_is_fresh() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api/asyncapi.json");
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == ASYNCAPI_JSON,
            "docs/api/asyncapi.json is out of date: run `cargo xtask api-docs`"
        );
    }
}
