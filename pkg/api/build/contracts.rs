//! The contracts as the platform options describe them: services, their methods and the
//! domain events, read from the compiled descriptors and checked (unique subjects and routes,
//! path parameters that are request fields, one producer per event). The generators read only
//! this model.

use std::collections::HashMap;

use anyhow::{Context as _, Result, bail, ensure};
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor,
    ServiceDescriptor,
};

/// The package of the platform options themselves: not a contract.
pub const OPTIONS_PACKAGE: &str = "emporium.options";

/// A service contract as the platform options describe it.
pub struct Service {
    pub descriptor: ServiceDescriptor,
    pub name: String,
    pub version: String,
    pub description: String,
    pub methods: Vec<Method>,
    /// The subjects of the internal methods of other services it calls.
    pub calls: Vec<String>,
}

pub struct Method {
    pub descriptor: MethodDescriptor,
    /// snake_case, e.g. get_product
    pub name: String,
    pub access: &'static str,
    pub http: Option<(String, String)>,
    /// A streaming route's event domain and key field.
    pub stream: Option<(String, String)>,
    pub rate_class: String,
    /// The gateway refuses a request to its route without an `Idempotency-Key` header.
    pub idempotency_key_required: bool,
    /// A top-level int32 field of the response whose 2xx value is the route's status.
    pub status_field: Option<String>,
    /// The error codes it answers with because of what it does (`not_found`, ...).
    pub errors: Vec<&'static str>,
    /// The cookie the gateway sets or clears for a client that asks for it.
    pub cookie: Option<Cookie>,
    pub comment: String,
}

/// A method's `cookie` option: a token of its answer carried in an HttpOnly cookie.
pub struct Cookie {
    /// "emporium_refresh"
    pub name: String,
    /// The request header whose value `cookie` asks for it.
    pub opt_in_header: String,
    /// The cookie's Path, a prefix of the route's path.
    pub path: String,
    pub action: CookieAction,
}

pub enum CookieAction {
    /// The response's string field `value_field` becomes the cookie, for `max_age_field`
    /// seconds (an integer field of the response).
    Set {
        value_field: String,
        max_age_field: String,
    },
    /// The answer clears the cookie.
    Clear,
}

/// Letters, digits, `_` and `-`: a cookie name that needs no quoting anywhere.
fn is_cookie_name(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether `path` is `prefix` or lies under it, whole segments only.
fn is_under(path: &str, prefix: &str) -> bool {
    path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| prefix.ends_with('/') || rest.starts_with('/'))
}

impl Method {
    pub fn subject(&self, service: &Service) -> String {
        format!("{}.{}", service.name, self.name)
    }

    pub fn constant(&self) -> String {
        self.name.to_ascii_uppercase()
    }

    /// Every error code a call through the gateway can answer with, in the words of
    /// `rpc::ErrorCode` and the gateway's own codes: those of any request, those of its access
    /// level and body, and those it declares. The gateway's status table gives each its status.
    pub fn error_codes(&self) -> Vec<&'static str> {
        let mut codes = vec!["invalid_argument", "unauthenticated"];
        if self.access == "Admin" {
            codes.push("permission_denied");
        }
        for declared in &self.errors {
            if !codes.contains(declared) {
                codes.push(declared);
            }
        }
        if self.has_body() {
            codes.extend(["payload_too_large", "unsupported_media_type"]);
        }
        if self.accepts_idempotency_key() {
            if self.idempotency_key_required {
                codes.push("idempotency_key_required");
            }
            codes.extend(["idempotency_key_in_flight", "idempotency_key_reused"]);
        }
        codes.extend([
            "rate_limited",
            "internal",
            "unavailable",
            "deadline_exceeded",
        ]);
        codes
    }

    /// Whether the gateway honours an `Idempotency-Key` header on its route: every mutating
    /// route (POST, PUT, PATCH, DELETE); streaming routes are GET only.
    pub fn accepts_idempotency_key(&self) -> bool {
        self.stream.is_none()
            && self.http.as_ref().is_some_and(|(verb, _)| {
                matches!(verb.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
            })
    }

    /// Whether its HTTP request carries a JSON body (POST, PUT and PATCH do).
    pub fn has_body(&self) -> bool {
        self.http
            .as_ref()
            .is_some_and(|(verb, _)| matches!(verb.as_str(), "POST" | "PUT" | "PATCH"))
    }
}

/// A message declared as a domain event payload.
pub struct Event {
    pub message: MessageDescriptor,
    /// "product.created"
    pub name: String,
    /// "product"
    pub domain: String,
    /// "created"
    pub event: String,
    pub version: u32,
    /// The name of the service whose package declares the event.
    pub producer: String,
    pub consumers: Vec<String>,
    pub comment: String,
}

impl Event {
    /// PRODUCT_CREATED
    pub fn constant(&self) -> String {
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

pub struct Contracts {
    pub services: Vec<Service>,
    pub events: Vec<Event>,
    pub comments: HashMap<(String, Vec<i32>), String>,
    /// The declared rules of each field, by the field's full name.
    pub rules: HashMap<String, Rules>,
    /// Every message of the platform's packages, in a stable order.
    pub messages: Vec<MessageDescriptor>,
}

/// The `(emporium.options.field)` rules of one field.
#[derive(Debug, Default)]
pub struct Rules {
    pub required: bool,
    pub max_len: u32,
    pub min_len: u32,
    pub verbatim: bool,
    pub no_control: bool,
    pub multiline: bool,
    /// "uuid", "email", "uri" or "date".
    pub format: Option<&'static str>,
    pub pattern: Option<String>,
    pub pattern_problem: String,
    pub one_of: Vec<String>,
    pub minimum: Option<i64>,
    pub maximum: Option<i64>,
    pub max_items: u32,
    /// The HTTP request header the gateway fills the field from ("X-Cart-Token").
    pub header: Option<String>,
    /// The cookie the gateway fills the field from when the body leaves it empty.
    pub cookie: Option<String>,
}

/// Whether a field must be present in a request: its rules require it and it is not a proto3
/// `optional` scalar (for which `required` means "not blank when present").
pub fn must_be_present(rules: Option<&Rules>, field: &FieldDescriptor) -> bool {
    rules.is_some_and(|r| r.required)
        && (matches!(field.kind(), Kind::Message(_))
            || field.is_list()
            || !field.supports_presence())
}

impl Rules {
    /// Whether any rule is about a string's value (rather than its presence or a list's
    /// length): these apply to a string field, or to each item of a repeated one.
    pub fn has_string_rules(&self) -> bool {
        self.max_len > 0
            || self.min_len > 0
            || self.verbatim
            || self.no_control
            || self.multiline
            || self.format.is_some()
            || self.pattern.is_some()
            || !self.one_of.is_empty()
    }
}

/// Reads and checks the rules of every field: each rule must suit the field's kind, and a
/// pattern must compile.
fn read_rules(
    pool: &DescriptorPool,
    messages: &[MessageDescriptor],
) -> Result<HashMap<String, Rules>> {
    let field_ext = pool
        .get_extension_by_name("emporium.options.field")
        .context("emporium.options.field extension missing")?;
    let mut all = HashMap::new();
    for message in messages {
        for field in message.fields() {
            let options = field.options();
            if !options.has_extension(&field_ext) {
                continue;
            }
            let value = options.get_extension(&field_ext);
            let option = value.as_message().context("field option")?;
            let name = field.full_name().to_owned();
            let flag = |n: &str| {
                option
                    .get_field_by_name(n)
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false)
            };
            let number = |n: &str| {
                option
                    .get_field_by_name(n)
                    .and_then(|v| v.as_u32())
                    .unwrap_or(0)
            };
            let bound = |n: &str| {
                option
                    .has_field_by_name(n)
                    .then(|| option.get_field_by_name(n).and_then(|v| v.as_i64()))
                    .flatten()
            };
            let format = match option
                .get_field_by_name("format")
                .and_then(|v| v.as_enum_number())
            {
                None | Some(0) => None,
                Some(1) => Some("uuid"),
                Some(2) => Some("email"),
                Some(3) => Some("uri"),
                Some(4) => Some("date"),
                Some(other) => bail!("field {name}: unknown format {other}"),
            };
            let pattern = Some(string_field(option, "pattern")).filter(|p| !p.is_empty());
            if let Some(pattern) = &pattern {
                regex::Regex::new(pattern).with_context(|| {
                    format!("field {name}: pattern {pattern:?} does not compile")
                })?;
            }
            let one_of: Vec<String> = string_list(option, "one_of");
            let rules = Rules {
                required: flag("required"),
                max_len: number("max_len"),
                min_len: number("min_len"),
                verbatim: flag("verbatim"),
                no_control: flag("no_control"),
                multiline: flag("multiline"),
                format,
                pattern,
                pattern_problem: string_field(option, "pattern_problem"),
                one_of,
                minimum: bound("minimum"),
                maximum: bound("maximum"),
                max_items: number("max_items"),
                header: Some(string_field(option, "header")).filter(|h| !h.is_empty()),
                cookie: Some(string_field(option, "cookie")).filter(|c| !c.is_empty()),
            };
            let is_string = matches!(field.kind(), Kind::String);
            let is_integer = matches!(
                field.kind(),
                Kind::Int32
                    | Kind::Int64
                    | Kind::Uint32
                    | Kind::Uint64
                    | Kind::Sint32
                    | Kind::Sint64
            );
            let is_message = matches!(field.kind(), Kind::Message(_));
            let text = rules.has_string_rules();
            ensure!(
                !text || is_string,
                "field {name}: string rules on a field that is not a string"
            );
            if let Some(header) = &rules.header {
                ensure!(
                    is_string && !field.is_list(),
                    "field {name}: only a single string field can come from a header"
                );
                ensure!(
                    !header.is_empty()
                        && header
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-'),
                    "field {name}: header {header:?} is not an HTTP header name"
                );
            }
            if let Some(cookie) = &rules.cookie {
                ensure!(
                    is_string && !field.is_list() && rules.header.is_none(),
                    "field {name}: only a single string field, not one from a header, can come from a cookie"
                );
                ensure!(
                    is_cookie_name(cookie),
                    "field {name}: cookie {cookie:?} must be letters, digits, _ and -"
                );
                ensure!(
                    rules.max_len > 0,
                    "field {name}: a field from a cookie needs a max_len"
                );
            }
            ensure!(
                rules.pattern_problem.is_empty() || rules.pattern.is_some(),
                "field {name}: pattern_problem without a pattern"
            );
            ensure!(
                !rules.multiline || rules.no_control,
                "field {name}: multiline only qualifies no_control"
            );
            ensure!(
                (rules.minimum.is_none() && rules.maximum.is_none())
                    || (is_integer && !field.is_list()),
                "field {name}: minimum and maximum are for integer fields"
            );
            ensure!(
                rules.max_items == 0 || field.is_list(),
                "field {name}: max_items is for repeated fields"
            );
            ensure!(
                !rules.required || is_string || is_message || field.is_list(),
                "field {name}: required is for strings, messages and repeated fields"
            );
            all.insert(name, rules);
        }
    }
    Ok(all)
}

impl Contracts {
    pub fn read(pool: &DescriptorPool) -> Result<Self> {
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
                let http_option = method_options
                    .get_field_by_name("http")
                    .and_then(|v| v.as_message().cloned());
                let http = http_option
                    .as_ref()
                    .map(|m| (string_field(m, "method"), string_field(m, "path")))
                    .filter(|(m, p)| !m.is_empty() || !p.is_empty());
                let stream = http_option
                    .as_ref()
                    .filter(|m| m.has_field_by_name("stream"))
                    .and_then(|m| m.get_field_by_name("stream"))
                    .and_then(|v| v.as_message().cloned())
                    .map(|m| (string_field(&m, "domain"), string_field(&m, "key")));
                if let Some((domain, key)) = &stream {
                    let (verb, path) = http.as_ref().context("a stream needs a route")?;
                    ensure!(
                        verb == "GET",
                        "method {}: only GET routes stream",
                        method.full_name()
                    );
                    ensure!(
                        is_token(domain),
                        "method {}: stream domain {domain:?} must be lower case letters, digits and _",
                        method.full_name()
                    );
                    ensure!(
                        path_params(path).contains(key),
                        "method {}: stream key {key:?} must be a path parameter of {path}",
                        method.full_name()
                    );
                }
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
                let status_field = http_option
                    .as_ref()
                    .map(|m| string_field(m, "status_field"))
                    .filter(|f| !f.is_empty());
                if let Some(field) = &status_field {
                    let found = method.output().get_field_by_name(field);
                    ensure!(
                        found.as_ref().is_some_and(|f| {
                            f.kind() == prost_reflect::Kind::Int32 && !f.is_list()
                        }),
                        "method {}: status_field {field:?} must name an int32 field of {}",
                        method.full_name(),
                        method.output().full_name()
                    );
                    ensure!(
                        stream.is_none(),
                        "method {}: a streaming route has no status_field",
                        method.full_name()
                    );
                }
                let mut rate_class = string_field(method_options, "rate_class");
                if rate_class.is_empty() {
                    rate_class = "default".to_owned();
                }
                let idempotency_key_required = method_options
                    .get_field_by_name("idempotency_key_required")
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false);
                if idempotency_key_required {
                    ensure!(
                        http.as_ref().is_some_and(|(verb, _)| verb != "GET") && stream.is_none(),
                        "method {}: only a mutating route (POST, PUT, PATCH, DELETE) can require an Idempotency-Key",
                        method.full_name()
                    );
                }
                let errors = method_options
                    .get_field_by_name("errors")
                    .and_then(|v| {
                        v.as_list().map(|l| {
                            l.iter()
                                .filter_map(|e| e.as_enum_number())
                                .collect::<Vec<_>>()
                        })
                    })
                    .unwrap_or_default()
                    .into_iter()
                    .map(|number| match number {
                        1 => Ok("not_found"),
                        2 => Ok("conflict"),
                        3 => Ok("failed_precondition"),
                        4 => Ok("permission_denied"),
                        other => Err(anyhow::anyhow!(
                            "method {}: unknown error {other}",
                            method.full_name()
                        )),
                    })
                    .collect::<Result<Vec<_>>>()?;
                let cookie = method_options
                    .has_field_by_name("cookie")
                    .then(|| method_options.get_field_by_name("cookie"))
                    .flatten()
                    .and_then(|v| v.as_message().cloned())
                    .map(|option| read_cookie(&method, http.as_ref(), &option))
                    .transpose()?;
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
                    stream,
                    rate_class,
                    idempotency_key_required,
                    status_field,
                    errors,
                    cookie,
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
            let calls = string_list(service_options, "calls");
            services.push(Service {
                name,
                version,
                description: string_field(service_options, "description"),
                descriptor,
                methods,
                calls,
            });
        }
        for service in &services {
            for call in &service.calls {
                let callee = services.iter().find_map(|other| {
                    other
                        .methods
                        .iter()
                        .find(|m| &m.subject(other) == call)
                        .map(|m| (other, m))
                });
                match callee {
                    None => bail!(
                        "service {}: calls {call:?}, which no contract declares",
                        service.name
                    ),
                    Some((other, _)) if other.name == service.name => {
                        bail!("service {}: calls its own method {call:?}", service.name)
                    }
                    Some((_, method)) if method.access != "Internal" => bail!(
                        "service {}: calls {call:?}, which is not internal: only the gateway calls public, user and admin methods",
                        service.name
                    ),
                    Some(_) => {}
                }
            }
        }
        let events = read_events(pool, &services, &comments)?;
        for service in &services {
            for method in &service.methods {
                if let Some((domain, _)) = &method.stream {
                    ensure!(
                        events.iter().any(|e| &e.domain == domain),
                        "method {}: no event is declared in the stream's domain {domain:?}",
                        method.descriptor.full_name()
                    );
                }
            }
        }
        let messages: Vec<MessageDescriptor> = pool
            .all_messages()
            .filter(|m| {
                m.package_name().starts_with("emporium.") && m.package_name() != OPTIONS_PACKAGE
            })
            .collect();
        let rules = read_rules(pool, &messages)?;
        check_cookies(&services, &rules)?;
        Ok(Self {
            services,
            events,
            comments,
            rules,
            messages,
        })
    }

    pub fn comment_of(&self, file: &str, path: &[i32]) -> Option<&str> {
        self.comments
            .get(&(file.to_owned(), path.to_vec()))
            .map(String::as_str)
            .filter(|c| !c.is_empty())
    }

    /// Whether a message or any message inside it declares a rule, i.e. whether validating
    /// it can find anything.
    pub fn has_rules(&self, message: &MessageDescriptor) -> bool {
        fn walk(
            contracts: &Contracts,
            message: &MessageDescriptor,
            seen: &mut Vec<String>,
        ) -> bool {
            if seen.iter().any(|s| s == message.full_name()) {
                return false;
            }
            seen.push(message.full_name().to_owned());
            message.fields().any(|field| {
                contracts.rules.contains_key(field.full_name())
                    || matches!(field.kind(), Kind::Message(inner) if walk(contracts, &inner, seen))
            })
        }
        walk(self, message, &mut Vec::new())
    }

    pub fn field_comment(&self, field: &FieldDescriptor) -> Option<&str> {
        self.comment_of(field.parent_file().name(), field.path())
    }
}

/// A method's `cookie` option, checked: a named cookie on a route under its path, either
/// set from a string field of the response for the seconds of an integer one, or cleared.
fn read_cookie(
    method: &MethodDescriptor,
    http: Option<&(String, String)>,
    option: &DynamicMessage,
) -> Result<Cookie> {
    let full_name = method.full_name();
    let (verb, route_path) =
        http.with_context(|| format!("method {full_name}: a cookie needs a route"))?;
    ensure!(
        verb != "GET",
        "method {full_name}: only a POST, PUT, PATCH or DELETE route sets or clears a cookie"
    );
    let name = string_field(option, "name");
    ensure!(
        is_cookie_name(&name),
        "method {full_name}: cookie name {name:?} must be letters, digits, _ and -"
    );
    let opt_in_header = string_field(option, "opt_in_header");
    ensure!(
        !opt_in_header.is_empty()
            && opt_in_header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-'),
        "method {full_name}: cookie opt_in_header {opt_in_header:?} is not an HTTP header name"
    );
    let path = string_field(option, "path");
    ensure!(
        path.starts_with('/')
            && !path.contains(['{', '}', ';', ' '])
            && is_under(route_path, &path),
        "method {full_name}: cookie path {path:?} must be a prefix of {route_path}, whole segments"
    );
    let value_field = string_field(option, "value_field");
    let max_age_field = string_field(option, "max_age_field");
    let clear = option
        .get_field_by_name("clear")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let action = if clear {
        ensure!(
            value_field.is_empty() && max_age_field.is_empty(),
            "method {full_name}: a cookie is either cleared or set from value_field"
        );
        CookieAction::Clear
    } else {
        let output = method.output();
        ensure!(
            output
                .get_field_by_name(&value_field)
                .is_some_and(|f| f.kind() == Kind::String && !f.is_list()),
            "method {full_name}: cookie value_field {value_field:?} must name a string field of {}",
            output.full_name()
        );
        ensure!(
            output.get_field_by_name(&max_age_field).is_some_and(|f| {
                matches!(
                    f.kind(),
                    Kind::Int32 | Kind::Int64 | Kind::Uint32 | Kind::Uint64
                ) && !f.is_list()
            }),
            "method {full_name}: cookie max_age_field {max_age_field:?} must name an integer field of {}",
            output.full_name()
        );
        CookieAction::Set {
            value_field,
            max_age_field,
        }
    };
    Ok(Cookie {
        name,
        opt_in_header,
        path,
        action,
    })
}

/// Every method that sets or clears a cookie of one name agrees on its path and opt-in header
/// (a clearing with another path would clear nothing). A request field filled from a cookie
/// is on a route with a body (POST, PUT or PATCH), and some method sets that cookie with a
/// path covering the route, so that a browser sends it there: a cookie no route sets, or one
/// scoped elsewhere, would never arrive.
fn check_cookies(services: &[Service], rules: &HashMap<String, Rules>) -> Result<()> {
    let all: Vec<&Cookie> = services
        .iter()
        .flat_map(|s| &s.methods)
        .filter_map(|m| m.cookie.as_ref())
        .collect();
    for cookie in &all {
        ensure!(
            all.iter().all(|other| other.name != cookie.name
                || (other.path == cookie.path && other.opt_in_header == cookie.opt_in_header)),
            "cookie {:?}: every method that sets or clears it gives the same path and opt_in_header",
            cookie.name
        );
    }
    let set: Vec<&Cookie> = all
        .into_iter()
        .filter(|c| matches!(c.action, CookieAction::Set { .. }))
        .collect();
    for method in services.iter().flat_map(|s| &s.methods) {
        for field in method.descriptor.input().fields() {
            let Some(cookie) = rules.get(field.full_name()).and_then(|r| r.cookie.as_ref()) else {
                continue;
            };
            let full_name = method.descriptor.full_name();
            let Some((_, path)) = &method.http else {
                bail!(
                    "method {full_name}: field {} comes from a cookie but the method has no route",
                    field.name()
                );
            };
            ensure!(
                method.has_body(),
                "method {full_name}: field {} comes from a cookie, which only a POST, PUT or PATCH route reads",
                field.name()
            );
            ensure!(
                set.iter()
                    .any(|c| &c.name == cookie && is_under(path, &c.path)),
                "method {full_name}: field {} comes from the cookie {cookie:?}, which no method sets with a path covering {path}",
                field.name()
            );
        }
    }
    Ok(())
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
        let consumers: Vec<String> = string_list(option, "consumers");
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

fn string_field(message: &DynamicMessage, name: &str) -> String {
    message
        .get_field_by_name(name)
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A `repeated string` option field, empty when absent.
fn string_list(message: &DynamicMessage, name: &str) -> Vec<String> {
    message
        .get_field_by_name(name)
        .and_then(|v| {
            v.as_list().map(|l| {
                l.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default()
}

pub fn path_params(path: &str) -> Vec<String> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(str::to_owned)
        .collect()
}

pub fn snake_case(name: &str) -> String {
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

fn clean_comment(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}
