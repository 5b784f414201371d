//! Generates the contracts crate from proto/: prost message types, their canonical proto3 JSON
//! (pbjson, proto field names, defaults emitted), and from each service's platform options the
//! method descriptors (NATS subjects), server traits, typed clients, the HTTP route table and the
//! OpenAPI document; from each message's `(emporium.options.event)` option the event descriptors
//! and the AsyncAPI event catalogue. No protoc is needed: protox compiles the protos in-process.
//!
//! Everything lands in OUT_DIR; src/lib.rs includes `api.rs`, the root of the generated tree.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail, ensure};
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor,
    ServiceDescriptor,
};
use serde_json::{Value as Json, json};

const OPTIONS_PACKAGE: &str = "emporium.options";

fn main() -> Result<()> {
    let proto_root = PathBuf::from("proto");
    println!("cargo:rerun-if-changed=proto");
    let mut files = Vec::new();
    collect_protos(&proto_root, &mut files)?;
    files.sort();
    let relative: Vec<PathBuf> = files
        .iter()
        .map(|f| f.strip_prefix(&proto_root).map(Path::to_path_buf))
        .collect::<Result<_, _>>()?;

    let mut compiler = protox::Compiler::new([&proto_root])?;
    compiler.include_imports(true).include_source_info(true);
    compiler
        .open_files(&relative)
        .map_err(|e| anyhow::anyhow!("compiling protos: {e}"))?;
    let pool = compiler.descriptor_pool();
    let descriptor_bytes = compiler.encode_file_descriptor_set();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);

    prost_build::Config::new()
        // Well-known types come from pbjson_types, which carries their canonical JSON.
        .compile_well_known_types()
        .extern_path(".google.protobuf", "::pbjson_types")
        .out_dir(&out_dir)
        .compile_fds(compiler.file_descriptor_set())
        .context("generating message types")?;
    pbjson_build::Builder::new()
        .register_descriptors(&descriptor_bytes)?
        .out_dir(&out_dir)
        .preserve_proto_field_names()
        .emit_fields()
        .build(&[".emporium"])
        .context("generating JSON impls")?;

    let contracts = Contracts::read(&pool)?;
    let packages: Vec<String> = pool
        .files()
        .map(|f| f.package_name().to_owned())
        .filter(|p| p.starts_with("emporium.") && p != OPTIONS_PACKAGE)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();

    for package in &packages {
        let code = contracts.package_rust(package);
        std::fs::write(out_dir.join(format!("{package}.rpc.rs")), code)?;
    }
    std::fs::write(out_dir.join("api.rs"), contracts.root_rust(&packages))?;
    let openapi = serde_json::to_string_pretty(&contracts.openapi(&pool)?)?;
    std::fs::write(out_dir.join("openapi.json"), openapi + "\n")?;
    let asyncapi = serde_json::to_string_pretty(&contracts.asyncapi())?;
    std::fs::write(out_dir.join("asyncapi.json"), asyncapi + "\n")?;
    Ok(())
}

fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}

/// A service contract as the platform options describe it.
struct Service {
    descriptor: ServiceDescriptor,
    name: String,
    version: String,
    description: String,
    methods: Vec<Method>,
}

struct Method {
    descriptor: MethodDescriptor,
    /// snake_case, e.g. get_product
    name: String,
    access: &'static str,
    http: Option<(String, String)>,
    rate_class: String,
    comment: String,
}

impl Method {
    fn subject(&self, service: &Service) -> String {
        format!("{}.{}", service.name, self.name)
    }

    fn constant(&self) -> String {
        self.name.to_ascii_uppercase()
    }
}

/// A message declared as a domain event payload.
struct Event {
    message: MessageDescriptor,
    /// "product.created"
    name: String,
    /// "product"
    domain: String,
    /// "created"
    event: String,
    version: u32,
    /// The name of the service whose package declares the event.
    producer: String,
    consumers: Vec<String>,
    comment: String,
}

impl Event {
    /// PRODUCT_CREATED
    fn constant(&self) -> String {
        self.name.replace('.', "_").to_ascii_uppercase()
    }
}

/// Lower case letters, digits and `_`: a safe NATS subject token and stream-name part.
fn is_token(value: &str) -> bool {
    !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

struct Contracts {
    services: Vec<Service>,
    events: Vec<Event>,
    comments: HashMap<(String, Vec<i32>), String>,
}

impl Contracts {
    fn read(pool: &DescriptorPool) -> Result<Self> {
        let service_ext = pool
            .get_extension_by_name("emporium.options.service")
            .context("emporium.options.service extension missing")?;
        let method_ext = pool
            .get_extension_by_name("emporium.options.method")
            .context("emporium.options.method extension missing")?;

        let mut comments = HashMap::new();
        for file in pool.files() {
            let proto = file.file_descriptor_proto();
            if let Some(info) = &proto.source_code_info {
                for location in &info.location {
                    if let Some(text) = &location.leading_comments {
                        comments.insert(
                            (file.name().to_owned(), location.path.clone()),
                            clean_comment(text),
                        );
                    }
                }
            }
        }

        let mut services = Vec::new();
        let mut subjects = HashMap::new();
        let mut routes = HashMap::new();
        for descriptor in pool.services() {
            if !descriptor.package_name().starts_with("emporium.") {
                continue;
            }
            let options = descriptor.options();
            ensure!(
                options.has_extension(&service_ext),
                "service {} has no (emporium.options.service) option",
                descriptor.full_name()
            );
            let service_options = options.get_extension(&service_ext);
            let service_options = service_options.as_message().context("service option")?;
            let name = string_field(service_options, "name");
            ensure!(
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "service {}: name {name:?} must be lower case letters, digits and _",
                descriptor.full_name()
            );
            let version = string_field(service_options, "version");
            ensure!(
                version.split('.').count() == 3
                    && version.split('.').all(|p| p.parse::<u64>().is_ok()),
                "service {}: version {version:?} is not semver",
                descriptor.full_name()
            );
            let mut methods = Vec::new();
            for method in descriptor.methods() {
                let options = method.options();
                ensure!(
                    options.has_extension(&method_ext),
                    "method {} has no (emporium.options.method) option",
                    method.full_name()
                );
                let method_options = options.get_extension(&method_ext);
                let method_options = method_options.as_message().context("method option")?;
                let access = match method_options
                    .get_field_by_name("access")
                    .and_then(|v| v.as_enum_number())
                {
                    Some(1) => "Public",
                    Some(2) => "User",
                    Some(3) => "Admin",
                    Some(4) => "Internal",
                    _ => bail!("method {}: access must be set", method.full_name()),
                };
                let http = method_options
                    .get_field_by_name("http")
                    .and_then(|v| v.as_message().cloned())
                    .map(|m| (string_field(&m, "method"), string_field(&m, "path")))
                    .filter(|(m, p)| !m.is_empty() || !p.is_empty());
                match (&http, access) {
                    (Some(_), "Internal") => {
                        bail!(
                            "method {}: internal methods have no HTTP route",
                            method.full_name()
                        )
                    }
                    (None, a) if a != "Internal" => {
                        bail!(
                            "method {}: {a} methods need an HTTP route",
                            method.full_name()
                        )
                    }
                    _ => {}
                }
                if let Some((verb, path)) = &http {
                    ensure!(
                        ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&verb.as_str()),
                        "method {}: unknown HTTP method {verb}",
                        method.full_name()
                    );
                    ensure!(
                        path.starts_with("/"),
                        "method {}: path must start with /",
                        method.full_name()
                    );
                    for param in path_params(path) {
                        ensure!(
                            method.input().get_field_by_name(&param).is_some(),
                            "method {}: path parameter {{{param}}} is not a field of {}",
                            method.full_name(),
                            method.input().full_name()
                        );
                    }
                    if let Some(other) =
                        routes.insert((verb.clone(), path.clone()), method.full_name().to_owned())
                    {
                        bail!(
                            "{verb} {path} is routed to both {other} and {}",
                            method.full_name()
                        );
                    }
                }
                let mut rate_class = string_field(method_options, "rate_class");
                if rate_class.is_empty() {
                    rate_class = "default".to_owned();
                }
                let file = descriptor.parent_file();
                let comment = comments
                    .get(&(file.name().to_owned(), method.path().to_vec()))
                    .cloned()
                    .unwrap_or_default();
                let method = Method {
                    name: snake_case(method.name()),
                    descriptor: method,
                    access,
                    http,
                    rate_class,
                    comment,
                };
                let subject = format!("{name}.{}", method.name);
                if let Some(other) =
                    subjects.insert(subject.clone(), method.descriptor.full_name().to_owned())
                {
                    bail!(
                        "subject {subject} is used by {other} and {}",
                        method.descriptor.full_name()
                    );
                }
                methods.push(method);
            }
            services.push(Service {
                name,
                version,
                description: string_field(service_options, "description"),
                descriptor,
                methods,
            });
        }
        let events = read_events(pool, &services, &comments)?;
        Ok(Self {
            services,
            events,
            comments,
        })
    }

    fn comment_of(&self, file: &str, path: &[i32]) -> Option<&str> {
        self.comments
            .get(&(file.to_owned(), path.to_vec()))
            .map(String::as_str)
            .filter(|c| !c.is_empty())
    }

    /// The module tree mirrors the proto packages (prost's cross-package references are
    /// relative), with short aliases at the root: `api::product`, `api::common`.
    fn root_rust(&self, packages: &[String]) -> String {
        let mut tree: BTreeMap<Vec<String>, String> = BTreeMap::new();
        for package in packages {
            tree.insert(
                package.split('.').map(str::to_owned).collect(),
                package.clone(),
            );
        }
        let mut out =
            String::from("// Generated by pkg/api/build.rs from proto/. Do not edit.\n\n");
        write_modules(&mut out, &tree, &[], 0);
        for package in packages {
            let parts: Vec<&str> = package.split('.').collect();
            let alias = parts[1];
            let _ = writeln!(out, "pub use self::{} as {alias};", parts.join("::"));
        }
        out.push_str(
            "\n/// Every HTTP route of every contract.\npub static ROUTES: &[crate::Route] = &[\n",
        );
        for service in &self.services {
            let module = rust_module_path(service.descriptor.package_name());
            for method in &service.methods {
                let Some((verb, path)) = &method.http else {
                    continue;
                };
                let params = path_params(path);
                let fields: Vec<String> = method
                    .descriptor
                    .input()
                    .fields()
                    .map(|f| {
                        format!(
                            "crate::Field {{ name: {:?}, kind: crate::FieldKind::{}, repeated: {} }}",
                            f.name(),
                            field_kind(&f),
                            f.is_list()
                        )
                    })
                    .collect();
                let _ = writeln!(
                    out,
                    "    crate::Route {{ descriptor: &{module}::methods::{}, http_method: {verb:?}, path: {path:?}, path_params: &[{}], rate_class: {:?}, request_fields: &[{}] }},",
                    method.constant(),
                    params
                        .iter()
                        .map(|p| format!("{p:?}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    method.rate_class,
                    fields.join(", ")
                );
            }
        }
        out.push_str("];\n");
        out.push_str(
            "\n/// Every domain event every contract declares.\npub static EVENTS: &[&crate::EventDescriptor] = &[\n",
        );
        for event in &self.events {
            let _ = writeln!(
                out,
                "    &{}::events::{},",
                rust_module_path(event.message.package_name()),
                event.constant()
            );
        }
        out.push_str("];\n");
        out
    }

    fn package_rust(&self, package: &str) -> String {
        let mut out = String::from("// Generated by pkg/api/build.rs from proto/. Do not edit.\n");
        let events: Vec<&Event> = self
            .events
            .iter()
            .filter(|e| e.message.package_name() == package)
            .collect();
        if !events.is_empty() {
            out.push_str("\n/// The domain events this package declares.\npub mod events {\n");
            for event in &events {
                for line in doc_lines(&event.comment, 4) {
                    out.push_str(&line);
                }
                let _ = writeln!(
                    out,
                    "    pub const {}: crate::EventDescriptor = crate::EventDescriptor {{ name: {:?}, domain: {:?}, event: {:?}, version: {}, payload_type: {:?}, producer: {:?}, consumers: &[{}] }};",
                    event.constant(),
                    event.name,
                    event.domain,
                    event.event,
                    event.version,
                    event.message.full_name(),
                    event.producer,
                    event
                        .consumers
                        .iter()
                        .map(|c| format!("{c:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            out.push_str("}\n\n");
            for event in &events {
                let _ = writeln!(
                    out,
                    "impl crate::Event for {} {{\n    const DESCRIPTOR: &'static crate::EventDescriptor = &events::{};\n}}\n",
                    rust_type(&event.message),
                    event.constant()
                );
            }
        }
        for service in self
            .services
            .iter()
            .filter(|s| s.descriptor.package_name() == package)
        {
            let trait_name = service.descriptor.name().to_owned();
            let client_name = format!(
                "{}Client",
                trait_name.strip_suffix("Service").unwrap_or(&trait_name)
            );
            let _ = writeln!(
                out,
                "\n/// The NATS micro service name of {trait_name}.\npub const SERVICE_NAME: &str = {:?};\npub const SERVICE_VERSION: &str = {:?};\npub const SERVICE_DESCRIPTION: &str = {:?};\n/// The {} service as NATS micro registers it.\npub static SERVICE: ::rpc::ServiceDescriptor = ::rpc::ServiceDescriptor {{ name: SERVICE_NAME, version: SERVICE_VERSION, description: SERVICE_DESCRIPTION }};\n",
                service.name, service.version, service.description, service.name
            );
            out.push_str("/// One descriptor per method: its subject, access level and message types.\npub mod methods {\n");
            for method in &service.methods {
                let _ = writeln!(
                    out,
                    "    pub static {}: ::rpc::MethodDescriptor = ::rpc::MethodDescriptor {{ service: {:?}, method: {:?}, subject: {:?}, access: ::rpc::Access::{}, request_type: {:?}, response_type: {:?} }};",
                    method.constant(),
                    service.name,
                    method.name,
                    method.subject(service),
                    method.access,
                    method.descriptor.input().full_name(),
                    method.descriptor.output().full_name(),
                );
            }
            out.push_str("}\n\n");

            let _ = writeln!(
                out,
                "/// What the {} service implements; [`endpoints`] binds it to the runtime.\npub trait {trait_name}: Send + Sync + 'static {{",
                service.name
            );
            for method in &service.methods {
                for line in doc_lines(&method.comment, 4) {
                    out.push_str(&line);
                }
                let _ = writeln!(
                    out,
                    "    fn {}(&self, ctx: ::rpc::Context, request: {}) -> impl ::std::future::Future<Output = ::std::result::Result<{}, ::rpc::Error>> + Send;",
                    method.name,
                    rust_type(&method.descriptor.input()),
                    rust_type(&method.descriptor.output()),
                );
            }
            out.push_str("}\n\n");

            let _ = writeln!(
                out,
                "/// The runtime endpoints of a [`{trait_name}`] implementation.\npub fn endpoints<S: {trait_name}>(service: ::std::sync::Arc<S>) -> ::std::vec::Vec<::rpc::Endpoint> {{\n    ::std::vec!["
            );
            for method in &service.methods {
                let _ = writeln!(
                    out,
                    "        {{\n            let service = service.clone();\n            ::rpc::Endpoint::unary(&methods::{}, move |ctx, request: {}| {{\n                let service = service.clone();\n                async move {{ service.{}(ctx, request).await }}\n            }})\n        }},",
                    method.constant(),
                    rust_type(&method.descriptor.input()),
                    method.name
                );
            }
            out.push_str("    ]\n}\n\n");

            let _ = writeln!(
                out,
                "/// A typed client of the {} service.\n#[derive(Clone, Debug)]\npub struct {client_name} {{\n    client: ::rpc::Client,\n}}\n\nimpl {client_name} {{\n    pub fn new(client: ::rpc::Client) -> Self {{\n        Self {{ client }}\n    }}\n",
                service.name
            );
            for method in &service.methods {
                for line in doc_lines(&method.comment, 4) {
                    out.push_str(&line);
                }
                let _ = writeln!(
                    out,
                    "    pub async fn {}(&self, ctx: &::rpc::Context, request: &{}) -> ::std::result::Result<{}, ::rpc::Error> {{\n        self.client.call(ctx, &methods::{}, request).await\n    }}\n",
                    method.name,
                    rust_type(&method.descriptor.input()),
                    rust_type(&method.descriptor.output()),
                    method.constant(),
                );
            }
            out.push_str("}\n");
        }
        out
    }

    fn openapi(&self, pool: &DescriptorPool) -> Result<Json> {
        let mut paths: BTreeMap<String, serde_json::Map<String, Json>> = BTreeMap::new();
        let mut schemas = BTreeMap::new();
        let mut tags = Vec::new();
        for service in &self.services {
            tags.push(json!({ "name": service.name, "description": service.description }));
            for method in &service.methods {
                let Some((verb, path)) = &method.http else {
                    continue;
                };
                let input = method.descriptor.input();
                let output = method.descriptor.output();
                self.schema_of(&input, &mut schemas);
                self.schema_of(&output, &mut schemas);
                let params = path_params(path);
                let mut parameters: Vec<Json> = params
                    .iter()
                    .map(|p| {
                        let field = input.get_field_by_name(p).expect("checked in read");
                        json!({ "name": p, "in": "path", "required": true, "schema": field_schema(&field) })
                    })
                    .collect();
                let has_body = matches!(verb.as_str(), "POST" | "PUT" | "PATCH");
                if !has_body {
                    for field in input
                        .fields()
                        .filter(|f| !params.contains(&f.name().to_owned()))
                    {
                        if matches!(field.kind(), Kind::Message(_)) {
                            continue;
                        }
                        let mut parameter = json!({ "name": field.name(), "in": "query", "required": false, "schema": field_schema(&field) });
                        if let Some(doc) = self.field_comment(&field) {
                            parameter["description"] = json!(doc);
                        }
                        parameters.push(parameter);
                    }
                }
                let mut responses = serde_json::Map::new();
                responses.insert(
                    "200".into(),
                    json!({ "description": "OK", "content": { "application/json": { "schema": schema_ref(&output) } } }),
                );
                let mut errors = vec![("400", "Invalid argument: `details` names each bad field")];
                match method.access {
                    "User" => errors.push(("401", "Missing or invalid bearer token")),
                    "Admin" => {
                        errors.push(("401", "Missing or invalid bearer token"));
                        errors.push(("403", "The token lacks the admin role"));
                    }
                    _ => errors.push(("401", "An invalid bearer token was sent")),
                }
                if params.iter().any(|p| p == "id") || verb != "GET" {
                    errors.push(("404", "Not found"));
                }
                if verb != "GET" {
                    errors.push(("409", "Conflict with the current state"));
                }
                errors.extend([
                    ("429", "Rate limited: see Retry-After"),
                    ("500", "Internal error"),
                    ("503", "The service is unavailable: see Retry-After"),
                    ("504", "The service did not answer in time"),
                ]);
                for (status, description) in errors {
                    responses.insert(
                        status.into(),
                        json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }),
                    );
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
                });
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
        let _ = pool;
        let mut components: serde_json::Map<String, Json> = schemas.into_iter().collect();
        components.insert(
            "Error".into(),
            json!({
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": { "type": "string", "enum": ["invalid_argument", "unauthenticated", "permission_denied", "not_found", "conflict", "failed_precondition", "rate_limited", "unavailable", "deadline_exceeded", "internal", "method_not_allowed", "payload_too_large", "unsupported_media_type"] },
                    "message": { "type": "string" },
                    "details": { "type": "array", "items": { "type": "object", "required": ["field", "problem"], "properties": { "field": { "type": "string" }, "problem": { "type": "string" } } } }
                }
            }),
        );
        Ok(json!({
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
        }))
    }

    /// The AsyncAPI 3.0 catalogue of every event: one channel per event (its subject pattern,
    /// with the aggregate id as a parameter), the payload's JSON schema, the producing service
    /// and the consuming ones. Subject patterns follow pkg/events' naming rules; a test there
    /// checks that both agree.
    fn asyncapi(&self) -> Json {
        let mut channels = serde_json::Map::new();
        let mut operations = serde_json::Map::new();
        let mut messages = serde_json::Map::new();
        let mut schemas = BTreeMap::new();
        for event in &self.events {
            self.schema_of(&event.message, &mut schemas);
            let message_name = event.message.name().to_owned();
            let summary = event
                .comment
                .lines()
                .next()
                .unwrap_or(&event.name)
                .to_owned();
            messages.insert(
                event.name.clone(),
                json!({
                    "name": message_name,
                    "title": event.name,
                    "summary": summary,
                    "description": event.comment,
                    "contentType": "application/json",
                    "headers": { "$ref": "#/components/schemas/EventHeaders" },
                    "payload": schema_ref(&event.message),
                    "x-event-version": event.version,
                    "x-producer": event.producer,
                    "x-consumers": event.consumers,
                }),
            );
            channels.insert(
                event.name.clone(),
                json!({
                    "address": format!("events.{}.{{aggregate_id}}.{}", event.domain, event.event),
                    "title": event.name,
                    "description": format!("Stored in the EVENTS_{} stream.", event.domain.to_ascii_uppercase()),
                    "parameters": { "aggregate_id": { "description": "The id of the aggregate the event is about; its events are published in commit order." } },
                    "messages": { message_name.clone(): { "$ref": format!("#/components/messages/{}", event.name) } },
                }),
            );
            let channel_ref = json!({ "$ref": format!("#/channels/{}", event.name) });
            let message_ref =
                json!({ "$ref": format!("#/channels/{}/messages/{message_name}", event.name) });
            operations.insert(
                format!("{}.{}.send", event.producer, event.name),
                json!({
                    "action": "send",
                    "title": format!("{} publishes {}", event.producer, event.name),
                    "channel": channel_ref,
                    "messages": [message_ref],
                    "x-service": event.producer,
                }),
            );
            for consumer in &event.consumers {
                operations.insert(
                    format!("{consumer}.{}.receive", event.name),
                    json!({
                        "action": "receive",
                        "title": format!("{consumer} consumes {}", event.name),
                        "channel": channel_ref,
                        "messages": [message_ref],
                        "x-service": consumer,
                    }),
                );
            }
        }
        let mut components: serde_json::Map<String, Json> = schemas.into_iter().collect();
        components.insert(
            "EventHeaders".into(),
            json!({
                "type": "object",
                "description": "NATS headers of every event message.",
                "properties": {
                    "Nats-Msg-Id": { "type": "string", "format": "uuid", "description": "The outbox row id; JetStream drops a duplicate within the stream's duplicate window." },
                    "Emporium-Event-Id": { "type": "string", "format": "uuid", "description": "The event id (the outbox row id), kept when a dead letter is redriven; consumers deduplicate on it." },
                    "Emporium-Event-Type": { "type": "string", "description": "The event name, e.g. product.created." },
                    "Emporium-Event-Version": { "type": "string", "description": "The payload version." },
                    "Emporium-Producer": { "type": "string", "description": "The service that published it." },
                    "Emporium-Aggregate-Id": { "type": "string" },
                    "traceparent": { "type": "string", "description": "W3C trace context of the change." },
                    "tracestate": { "type": "string" },
                    "Content-Type": { "type": "string", "const": "application/json" }
                }
            }),
        );
        json!({
            "x-generated-by": "pkg/api/build.rs from pkg/api/proto; do not edit, regenerate with `UPDATE_GENERATED=1 cargo test -p api`",
            "asyncapi": "3.0.0",
            "info": {
                "title": "Emporium events",
                "version": env!("CARGO_PKG_VERSION"),
                "description": "The domain events of the Emporium platform, on JetStream: one stream per domain (EVENTS_<DOMAIN>), subjects events.<domain>.<aggregate_id>.<event>, canonical proto3 JSON payloads. Generated from the event declarations in pkg/api/proto; published through each producer's transactional outbox.",
            },
            "defaultContentType": "application/json",
            "servers": {
                "dev": { "host": "127.0.0.1:4222", "protocol": "nats", "description": "The dev stack (make up)." }
            },
            "channels": channels,
            "operations": operations,
            "components": { "messages": messages, "schemas": components },
        })
    }

    fn field_comment(&self, field: &FieldDescriptor) -> Option<&str> {
        self.comment_of(field.parent_file().name(), field.path())
    }

    fn schema_of(&self, message: &MessageDescriptor, schemas: &mut BTreeMap<String, Json>) {
        let name = schema_name(message);
        if schemas.contains_key(&name) || well_known(message).is_some() {
            return;
        }
        schemas.insert(name.clone(), Json::Null);
        let mut properties = serde_json::Map::new();
        for field in message.fields() {
            let mut schema = field_schema(&field);
            if let Some(doc) = self.field_comment(&field) {
                schema["description"] = json!(doc);
            }
            properties.insert(field.name().to_owned(), schema);
            if let Kind::Message(inner) = field.kind() {
                self.schema_of(&inner, schemas);
            }
        }
        let mut schema = json!({ "type": "object", "properties": properties });
        if let Some(doc) = self.comment_of(message.parent_file().name(), message.path()) {
            schema["description"] = json!(doc);
        }
        schemas.insert(name, schema);
    }
}

fn read_events(
    pool: &DescriptorPool,
    services: &[Service],
    comments: &HashMap<(String, Vec<i32>), String>,
) -> Result<Vec<Event>> {
    let event_ext = pool
        .get_extension_by_name("emporium.options.event")
        .context("emporium.options.event extension missing")?;
    let mut events = Vec::new();
    let mut names = HashMap::new();
    for message in pool.all_messages() {
        if !message.package_name().starts_with("emporium.") {
            continue;
        }
        let options = message.options();
        if !options.has_extension(&event_ext) {
            continue;
        }
        let option = options.get_extension(&event_ext);
        let option = option.as_message().context("event option")?;
        let name = string_field(option, "name");
        let Some((domain, event)) = name.split_once('.') else {
            bail!(
                "event {}: name {name:?} must be <domain>.<event>",
                message.full_name()
            );
        };
        ensure!(
            is_token(domain) && is_token(event),
            "event {}: name {name:?} must be two tokens of lower case letters, digits and _",
            message.full_name()
        );
        let version = option
            .get_field_by_name("version")
            .and_then(|v| v.as_u32())
            .unwrap_or(0);
        ensure!(
            version >= 1,
            "event {}: version must be 1 or more",
            message.full_name()
        );
        let consumers: Vec<String> = option
            .get_field_by_name("consumers")
            .and_then(|v| {
                v.as_list().map(|l| {
                    l.iter()
                        .filter_map(|c| c.as_str().map(str::to_owned))
                        .collect()
                })
            })
            .unwrap_or_default();
        for consumer in &consumers {
            ensure!(
                !consumer.is_empty()
                    && consumer.chars().all(|c| c.is_ascii_lowercase()
                        || c.is_ascii_digit()
                        || c == '_'
                        || c == '-'),
                "event {}: consumer {consumer:?} must be lower case letters, digits, _ and -",
                message.full_name()
            );
        }
        ensure!(
            !message.full_name()[message.package_name().len() + 1..].contains('.'),
            "event {}: event payloads must be top-level messages",
            message.full_name()
        );
        let producers: Vec<&Service> = services
            .iter()
            .filter(|s| s.descriptor.package_name() == message.package_name())
            .collect();
        let [producer] = producers.as_slice() else {
            bail!(
                "event {}: its package must declare exactly one service, the producer",
                message.full_name()
            );
        };
        if let Some(other) = names.insert(name.clone(), message.full_name().to_owned()) {
            bail!(
                "event {name} is declared by both {other} and {}",
                message.full_name()
            );
        }
        let comment = comments
            .get(&(
                message.parent_file().name().to_owned(),
                message.path().to_vec(),
            ))
            .cloned()
            .unwrap_or_default();
        events.push(Event {
            domain: domain.to_owned(),
            event: event.to_owned(),
            name,
            version,
            producer: producer.name.clone(),
            consumers,
            comment,
            message,
        });
    }
    events.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(events)
}

fn write_modules(
    out: &mut String,
    tree: &BTreeMap<Vec<String>, String>,
    prefix: &[String],
    depth: usize,
) {
    let children: std::collections::BTreeSet<&String> = tree
        .keys()
        .filter(|k| k.len() > prefix.len() && k.starts_with(prefix))
        .map(|k| &k[prefix.len()])
        .collect();
    for child in children {
        let mut path = prefix.to_vec();
        path.push(child.clone());
        let indent = "    ".repeat(depth);
        let _ = writeln!(out, "{indent}pub mod {child} {{");
        if let Some(package) = tree.get(&path) {
            for suffix in ["rs", "serde.rs", "rpc.rs"] {
                let _ = writeln!(
                    out,
                    "{indent}    include!(concat!(env!(\"OUT_DIR\"), \"/{package}.{suffix}\"));"
                );
            }
        }
        write_modules(out, tree, &path, depth + 1);
        let _ = writeln!(out, "{indent}}}");
    }
}

fn string_field(message: &DynamicMessage, name: &str) -> String {
    message
        .get_field_by_name(name)
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn path_params(path: &str) -> Vec<String> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(str::to_owned)
        .collect()
}

fn snake_case(name: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let previous_lower =
                i > 0 && (chars[i - 1].is_ascii_lowercase() || chars[i - 1].is_ascii_digit());
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if i > 0 && (previous_lower || (next_lower && chars[i - 1].is_ascii_uppercase())) {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(*c);
        }
    }
    out
}

fn rust_module_path(package: &str) -> String {
    format!("crate::{}", package.replace('.', "::"))
}

fn rust_type(message: &MessageDescriptor) -> String {
    if message.package_name() == "google.protobuf" {
        return format!("::pbjson_types::{}", message.name());
    }
    let nested = message
        .full_name()
        .strip_prefix(message.package_name())
        .unwrap_or(message.full_name())
        .trim_start_matches('.');
    assert!(
        !nested.contains('.'),
        "nested request/response types are not supported: {nested}"
    );
    format!(
        "{}::{}",
        rust_module_path(message.package_name()),
        message.name()
    )
}

fn field_kind(field: &FieldDescriptor) -> &'static str {
    match field.kind() {
        Kind::String => "String",
        Kind::Bool => "Bool",
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => "Int32",
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => "Int64",
        Kind::Uint32 | Kind::Fixed32 => "Uint32",
        Kind::Uint64 | Kind::Fixed64 => "Uint64",
        Kind::Float => "Float",
        Kind::Double => "Double",
        Kind::Enum(_) => "Enum",
        Kind::Bytes => "Bytes",
        Kind::Message(_) => "Message",
    }
}

fn schema_name(message: &MessageDescriptor) -> String {
    // emporium.product.v1.Product -> product.v1.Product
    message
        .full_name()
        .strip_prefix("emporium.")
        .unwrap_or(message.full_name())
        .to_owned()
}

fn schema_ref(message: &MessageDescriptor) -> Json {
    well_known(message).unwrap_or_else(
        || json!({ "$ref": format!("#/components/schemas/{}", schema_name(message)) }),
    )
}

fn well_known(message: &MessageDescriptor) -> Option<Json> {
    match message.full_name() {
        "google.protobuf.Timestamp" => Some(json!({ "type": "string", "format": "date-time" })),
        "google.protobuf.Duration" => {
            Some(json!({ "type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?s$" }))
        }
        "google.protobuf.Empty" => Some(json!({ "type": "object" })),
        _ => None,
    }
}

fn field_schema(field: &FieldDescriptor) -> Json {
    let scalar = match field.kind() {
        Kind::String => json!({ "type": "string" }),
        Kind::Bool => json!({ "type": "boolean" }),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            json!({ "type": "integer", "format": "int32" })
        }
        Kind::Uint32 | Kind::Fixed32 => {
            json!({ "type": "integer", "format": "int32", "minimum": 0 })
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            json!({ "type": ["string", "integer"], "format": "int64", "pattern": "^-?[0-9]+$" })
        }
        Kind::Uint64 | Kind::Fixed64 => {
            json!({ "type": ["string", "integer"], "format": "int64", "pattern": "^[0-9]+$" })
        }
        Kind::Float | Kind::Double => json!({ "type": "number" }),
        Kind::Bytes => json!({ "type": "string", "contentEncoding": "base64" }),
        Kind::Enum(e) => {
            json!({ "type": "string", "enum": e.values().map(|v| v.name().to_owned()).collect::<Vec<_>>() })
        }
        Kind::Message(m) => schema_ref(&m),
    };
    if field.is_list() {
        json!({ "type": "array", "items": scalar })
    } else {
        scalar
    }
}

fn clean_comment(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}

fn doc_lines(comment: &str, indent: usize) -> Vec<String> {
    let pad = " ".repeat(indent);
    comment
        .lines()
        .map(|line| {
            if line.is_empty() {
                format!("{pad}///\n")
            } else {
                format!("{pad}/// {line}\n")
            }
        })
        .collect()
}
