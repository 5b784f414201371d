//! `GET /api/v1/admin/services`: every running service instance, from NATS micro discovery.
//!
//! The route is a method of the gateway's own contract (`api::gateway`), so its access level
//! (admins), rate class and errors are applied and documented like every route's; the gateway
//! answers it here instead of forwarding it. It asks every instance at once (`$SRV.INFO` and
//! `$SRV.STATS`, [`trust::GATEWAY_DISCOVERY`], the replies to its own inbox), gathers the
//! replies for a bounded window and joins the two by instance.
//!
//! Everything is bounded: the window ([`WINDOW`] at most, ending once no reply came for
//! [`QUIET`]), each reply ([`MAX_REPLY_BYTES`], and what it may list), the replies kept in all
//! ([`MAX_GATHERED_BYTES`]) and the instances listed ([`MAX_INSTANCES`]). A reply that is too
//! large, malformed or past a bound is skipped and counted (`skipped_replies`, and
//! `gateway_discovery_replies_skipped_total{reason}`); it never fails the answer.
//!
//! Health is what discovery can tell: `up` when an instance answered both requests, `partial`
//! when only one of its replies was taken. Readiness (its database, Redis) is what the
//! instance's admin port last said, which the rpc runtime reports with its endpoints' stats.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use api::gateway::{
    InstanceEndpoint, ListServicesResponse, MetadataEntry, RunningService, ServiceInstance,
};
use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use futures::StreamExt as _;
use serde::Deserialize;

use crate::error::ApiError;

/// The longest the gateway gathers replies.
pub const WINDOW: Duration = Duration::from_secs(1);
/// Once replies have come, a spell this long without one ends the window early.
pub const QUIET: Duration = Duration::from_millis(150);
/// A larger reply is skipped: a service's INFO or STATS is a few KiB.
pub const MAX_REPLY_BYTES: usize = 64 * 1024;
/// The replies kept in all; later ones are skipped.
pub const MAX_GATHERED_BYTES: usize = 8 * 1024 * 1024;
/// The instances listed at most; replies of further instances are skipped.
pub const MAX_INSTANCES: usize = 1_000;
/// What one reply may list.
const MAX_ENDPOINTS: usize = 512;
const MAX_METADATA: usize = 64;
/// Characters of a name, id, version, subject, queue group or metadata key.
const MAX_NAME_CHARS: usize = 256;
/// Characters of a description, last error or metadata value.
const MAX_TEXT_CHARS: usize = 4096;

const INFO_TYPE: &str = "io.nats.micro.v1.info_response";
const STATS_TYPE: &str = "io.nats.micro.v1.stats_response";

/// The `health` of an instance that answered both requests.
pub const UP: &str = "up";
/// The `health` of an instance whose INFO or STATS reply is missing.
pub const PARTIAL: &str = "partial";

const SKIPPED_METRIC: &str = "gateway_discovery_replies_skipped_total";

/// Registers the skipped-replies counter at zero for every reason, so a dashboard reads 0
/// rather than no data before the first skip.
pub fn register_metrics() {
    for reason in Skip::ALL {
        metrics::counter!(SKIPPED_METRIC, "reason" => reason.label()).increment(0);
    }
}

/// Whether the gateway answers `route` itself rather than forwarding it: the methods of its
/// own contract (the service list here, the dead letters in [`crate::dead_letters`]).
pub fn answers(route: &api::Route) -> bool {
    route.descriptor.service == api::gateway::SERVICE_NAME
}

/// The answer to `GET /api/v1/admin/services`, gathered within `time_left` (the request's).
pub async fn list_services(
    nats: &async_nats::Client,
    time_left: Duration,
) -> Result<Response, ApiError> {
    let gathered = gather(nats, WINDOW.min(time_left)).await?;
    if gathered.skipped.total() > 0 {
        tracing::warn!(skipped = ?gathered.skipped.by_reason, "service discovery replies skipped");
    }
    json_answer(&gathered.into_response(), "the service list")
}

/// The JSON answer of one of the gateway's own routes: `what` names it in the error.
pub(crate) fn json_answer<T: serde::Serialize>(
    value: &T,
    what: &str,
) -> Result<Response, ApiError> {
    let body = serde_json::to_vec(value).map_err(|e| {
        tracing::error!(error = %e, "encoding {what}");
        ApiError::service(
            rpc::ErrorCode::Internal,
            format!("{what} could not be encoded"),
        )
    })?;
    let mut response = Response::new(Body::from(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(rpc::headers::JSON),
    );
    Ok(response)
}

/// Which discovery request a reply answers; its reply subject ends with the suffix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verb {
    Info,
    Stats,
}

impl Verb {
    const ALL: [Verb; 2] = [Verb::Info, Verb::Stats];

    fn subject(self) -> &'static str {
        let [info, stats] = trust::GATEWAY_DISCOVERY;
        match self {
            Verb::Info => info,
            Verb::Stats => stats,
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Verb::Info => "info",
            Verb::Stats => "stats",
        }
    }
}

/// Publishes both requests with replies to one fresh inbox and takes the replies until the
/// window ends, a quiet spell follows the last one, or nobody is there to answer.
async fn gather(nats: &async_nats::Client, window: Duration) -> Result<Gathered, ApiError> {
    let unreachable = |error: &dyn std::fmt::Display| {
        tracing::warn!(%error, "asking for service discovery");
        ApiError::service(
            rpc::ErrorCode::Unavailable,
            "service discovery cannot be reached right now",
        )
    };
    if nats.connection_state() != async_nats::connection::State::Connected {
        return Err(unreachable(&"not connected to NATS"));
    }
    let inbox = nats.new_inbox();
    let asked = async {
        let replies = nats.subscribe(format!("{inbox}.*")).await?;
        for verb in Verb::ALL {
            nats.publish_with_reply(
                verb.subject(),
                format!("{inbox}.{}", verb.suffix()),
                "".into(),
            )
            .await?;
        }
        nats.flush().await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(replies)
    };
    // Asking is bounded by the window too: a connection that breaks now does not hold the
    // request until its deadline.
    let mut replies = match tokio::time::timeout(window, asked).await {
        Ok(Ok(replies)) => replies,
        Ok(Err(e)) => return Err(unreachable(&e)),
        Err(_) => return Err(unreachable(&"no answer from NATS within the window")),
    };

    let end = Instant::now() + window;
    let mut gathered = Gathered::default();
    let mut answered = false;
    let mut nobody_there = 0;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        // The first reply may take the whole window; after it, a quiet spell ends it.
        let wait = if answered { QUIET.min(left) } else { left };
        let Ok(Some(message)) = tokio::time::timeout(wait, replies.next()).await else {
            break;
        };
        if message.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
            // No service instance at all: neither request will get a reply.
            nobody_there += 1;
            if nobody_there == Verb::ALL.len() {
                break;
            }
            continue;
        }
        answered = true;
        let verb = match message.subject.as_str().rsplit('.').next() {
            Some("info") => Verb::Info,
            Some("stats") => Verb::Stats,
            _ => continue,
        };
        gathered.take(verb, &message.payload);
    }
    Ok(gathered)
}

/// Why a reply was left out, as the metric's `reason` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Skip {
    TooLarge,
    Malformed,
    Duplicate,
    TooManyInstances,
    OverBudget,
}

impl Skip {
    const ALL: [Skip; 5] = [
        Skip::TooLarge,
        Skip::Malformed,
        Skip::Duplicate,
        Skip::TooManyInstances,
        Skip::OverBudget,
    ];

    fn label(self) -> &'static str {
        match self {
            Skip::TooLarge => "too_large",
            Skip::Malformed => "malformed",
            Skip::Duplicate => "duplicate",
            Skip::TooManyInstances => "too_many_instances",
            Skip::OverBudget => "over_budget",
        }
    }
}

#[derive(Debug, Default)]
struct Skipped {
    by_reason: BTreeMap<&'static str, u32>,
}

impl Skipped {
    fn count(&mut self, reason: Skip) {
        *self.by_reason.entry(reason.label()).or_default() += 1;
        metrics::counter!(SKIPPED_METRIC, "reason" => reason.label()).increment(1);
    }

    fn total(&self) -> u32 {
        self.by_reason.values().sum()
    }
}

/// The replies taken so far, by service name and instance id.
#[derive(Debug, Default)]
struct Gathered {
    instances: BTreeMap<(String, String), Replies>,
    bytes: usize,
    skipped: Skipped,
}

#[derive(Debug, Default)]
struct Replies {
    info: Option<InfoReply>,
    stats: Option<StatsReply>,
}

impl Gathered {
    /// Takes one reply, or skips it and counts why.
    fn take(&mut self, verb: Verb, payload: &[u8]) {
        if let Err(reason) = self.try_take(verb, payload) {
            self.skipped.count(reason);
        }
    }

    fn try_take(&mut self, verb: Verb, payload: &[u8]) -> Result<(), Skip> {
        if payload.len() > MAX_REPLY_BYTES {
            return Err(Skip::TooLarge);
        }
        if self.bytes + payload.len() > MAX_GATHERED_BYTES {
            return Err(Skip::OverBudget);
        }
        let (key, reply) = match verb {
            Verb::Info => {
                let info: InfoReply =
                    serde_json::from_slice(payload).map_err(|_| Skip::Malformed)?;
                info.check()?;
                ((info.name.clone(), info.id.clone()), Reply::Info(info))
            }
            Verb::Stats => {
                let stats: StatsReply =
                    serde_json::from_slice(payload).map_err(|_| Skip::Malformed)?;
                stats.check()?;
                ((stats.name.clone(), stats.id.clone()), Reply::Stats(stats))
            }
        };
        if !self.instances.contains_key(&key) && self.instances.len() >= MAX_INSTANCES {
            return Err(Skip::TooManyInstances);
        }
        let replies = self.instances.entry(key).or_default();
        match reply {
            Reply::Info(info) if replies.info.is_none() => replies.info = Some(info),
            Reply::Stats(stats) if replies.stats.is_none() => replies.stats = Some(stats),
            _ => return Err(Skip::Duplicate),
        }
        self.bytes += payload.len();
        Ok(())
    }

    /// The answer: services by name, their instances by id, endpoints by name.
    fn into_response(self) -> ListServicesResponse {
        let skipped_replies = self.skipped.total();
        let mut services: Vec<RunningService> = Vec::new();
        // Keys are (name, id) in order, so each service's instances come together, sorted.
        for ((name, id), replies) in self.instances {
            let instance = instance(id, replies);
            match services.last_mut() {
                Some(service) if service.name == name => service.instances.push(instance),
                _ => services.push(RunningService {
                    name,
                    instances: vec![instance],
                }),
            }
        }
        ListServicesResponse {
            services,
            skipped_replies,
        }
    }
}

enum Reply {
    Info(InfoReply),
    Stats(StatsReply),
}

/// One instance from its replies: INFO's description and endpoint list, STATS' start and
/// counts, endpoints joined by name.
fn instance(id: String, replies: Replies) -> ServiceInstance {
    let health = if replies.info.is_some() && replies.stats.is_some() {
        UP
    } else {
        PARTIAL
    };
    let mut endpoints: BTreeMap<String, InstanceEndpoint> = BTreeMap::new();
    let mut instance = ServiceInstance {
        id,
        health: health.to_owned(),
        ..Default::default()
    };
    if let Some(info) = replies.info {
        instance.version = info.version;
        instance.description = info.description;
        let mut metadata: Vec<MetadataEntry> = info
            .metadata
            .unwrap_or_default()
            .into_iter()
            .map(|(key, value)| MetadataEntry { key, value })
            .collect();
        metadata.sort_by(|a, b| a.key.cmp(&b.key));
        instance.metadata = metadata;
        for endpoint in info.endpoints.unwrap_or_default() {
            endpoints.insert(
                endpoint.name.clone(),
                InstanceEndpoint {
                    name: endpoint.name,
                    subject: endpoint.subject,
                    queue_group: endpoint.queue_group,
                    ..Default::default()
                },
            );
        }
    }
    if let Some(stats) = replies.stats {
        if instance.version.is_empty() {
            instance.version = stats.version;
        }
        instance.started = stats.started;
        for counted in stats.endpoints.unwrap_or_default() {
            let endpoint =
                endpoints
                    .entry(counted.name.clone())
                    .or_insert_with(|| InstanceEndpoint {
                        name: counted.name.clone(),
                        subject: counted.subject.clone(),
                        queue_group: counted.queue_group.clone(),
                        ..Default::default()
                    });
            endpoint.num_requests = counted.num_requests;
            endpoint.num_errors = counted.errors();
            if let Some(readiness) = counted.readiness() {
                instance.readiness = readiness.to_owned();
            }
            endpoint.last_error = counted.last_error;
            endpoint.processing_time = Some(Duration::from_nanos(counted.processing_time).into());
            endpoint.average_processing_time =
                Some(Duration::from_nanos(counted.average_processing_time).into());
        }
    }
    instance.endpoints = endpoints.into_values().collect();
    instance.total_requests = instance
        .endpoints
        .iter()
        .fold(0u64, |sum, e| sum.saturating_add(e.num_requests));
    instance.total_errors = instance
        .endpoints
        .iter()
        .fold(0u64, |sum, e| sum.saturating_add(e.num_errors));
    instance
}

/// A `$SRV.INFO` reply, as the NATS micro protocol (ADR-32) writes it. Only what the answer
/// shows is read; unknown fields are ignored, so a newer protocol version still parses.
#[derive(Debug, Deserialize)]
struct InfoReply {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    id: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    description: String,
    /// Null when a service has none.
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    endpoints: Option<Vec<EndpointInfo>>,
}

#[derive(Debug, Deserialize)]
struct EndpointInfo {
    name: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    queue_group: String,
}

/// A `$SRV.STATS` reply.
#[derive(Debug, Deserialize)]
struct StatsReply {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    id: String,
    #[serde(default)]
    version: String,
    /// RFC 3339.
    #[serde(default)]
    started: Option<api::Timestamp>,
    #[serde(default)]
    endpoints: Option<Vec<EndpointStats>>,
}

#[derive(Debug, Deserialize)]
struct EndpointStats {
    name: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    queue_group: String,
    #[serde(default)]
    num_requests: u64,
    #[serde(default)]
    num_errors: u64,
    /// Nanoseconds.
    #[serde(default)]
    processing_time: u64,
    #[serde(default)]
    average_processing_time: u64,
    #[serde(default)]
    last_error: String,
    /// What the service's stats handler adds: pkg/rpc reports `{"errors": n}`, with
    /// `"readiness"` when the process runs an admin server.
    #[serde(default)]
    data: Option<serde_json::Value>,
}

impl EndpointStats {
    /// The requests answered with an error. Micro counts only errors sent through its own
    /// error reply, which cannot carry the platform's error body, so pkg/rpc counts every
    /// error reply itself and reports it in the endpoint's `data`; that count is taken when
    /// present.
    fn errors(&self) -> u64 {
        self.data
            .as_ref()
            .and_then(|data| data.get("errors"))
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(self.num_errors)
    }

    /// The instance's readiness, which pkg/rpc reports with each endpoint's stats: one of the
    /// three words its admin port answers, anything else ignored.
    fn readiness(&self) -> Option<&'static str> {
        let said = self.data.as_ref()?.get("readiness")?.as_str()?;
        READINESS.iter().copied().find(|known| *known == said)
    }
}

/// What an instance's readiness can be (its admin port's `/health/ready` status).
const READINESS: [&str; 3] = ["ok", "degraded", "unavailable"];

fn name_ok(value: &str) -> bool {
    !value.is_empty() && value.chars().count() <= MAX_NAME_CHARS
}

fn short_ok(value: &str) -> bool {
    value.chars().count() <= MAX_NAME_CHARS
}

fn text_ok(value: &str) -> bool {
    value.chars().count() <= MAX_TEXT_CHARS
}

impl InfoReply {
    fn check(&self) -> Result<(), Skip> {
        let metadata = self.metadata.as_ref();
        let endpoints = self.endpoints.as_deref().unwrap_or_default();
        let fits = self.kind == INFO_TYPE
            && name_ok(&self.name)
            && name_ok(&self.id)
            && short_ok(&self.version)
            && text_ok(&self.description)
            && metadata.is_none_or(|m| {
                m.len() <= MAX_METADATA && m.iter().all(|(k, v)| name_ok(k) && text_ok(v))
            })
            && endpoints.len() <= MAX_ENDPOINTS
            && endpoints
                .iter()
                .all(|e| name_ok(&e.name) && short_ok(&e.subject) && short_ok(&e.queue_group));
        if fits { Ok(()) } else { Err(Skip::Malformed) }
    }
}

impl StatsReply {
    fn check(&self) -> Result<(), Skip> {
        let endpoints = self.endpoints.as_deref().unwrap_or_default();
        let fits = self.kind == STATS_TYPE
            && name_ok(&self.name)
            && name_ok(&self.id)
            && short_ok(&self.version)
            && endpoints.len() <= MAX_ENDPOINTS
            && endpoints.iter().all(|e| {
                name_ok(&e.name)
                    && short_ok(&e.subject)
                    && short_ok(&e.queue_group)
                    && text_ok(&e.last_error)
            });
        if fits { Ok(()) } else { Err(Skip::Malformed) }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn info(name: &str, id: &str, endpoints: &[&str]) -> Vec<u8> {
        let endpoints: Vec<Value> = endpoints
            .iter()
            .map(|e| json!({"name": e, "subject": format!("{name}.{e}"), "queue_group": "q", "metadata": null}))
            .collect();
        serde_json::to_vec(&json!({
            "type": INFO_TYPE,
            "name": name,
            "id": id,
            "version": "1.2.3",
            "description": format!("the {name} service"),
            "metadata": null,
            "endpoints": endpoints,
        }))
        .unwrap()
    }

    fn stats(name: &str, id: &str, endpoints: &[(&str, u64, Option<u64>)]) -> Vec<u8> {
        let endpoints: Vec<Value> = endpoints
            .iter()
            .map(|(e, requests, errors)| {
                let mut endpoint = json!({
                    "name": e,
                    "subject": format!("{name}.{e}"),
                    "queue_group": "q",
                    "num_requests": requests,
                    "num_errors": 0,
                    "processing_time": 3_000_000_000u64 + 500,
                    "average_processing_time": 1_500_000,
                    "last_error": "",
                });
                if let Some(errors) = errors {
                    endpoint["data"] = json!({"errors": errors});
                }
                endpoint
            })
            .collect();
        serde_json::to_vec(&json!({
            "type": STATS_TYPE,
            "name": name,
            "id": id,
            "version": "1.2.3",
            "started": "2026-12-02T10:00:00.123456789Z",
            "endpoints": endpoints,
        }))
        .unwrap()
    }

    #[test]
    fn info_and_stats_are_joined_by_instance_and_sorted() {
        let mut gathered = Gathered::default();
        gathered.take(Verb::Stats, &stats("product", "b", &[("get", 4, Some(1))]));
        gathered.take(Verb::Info, &info("product", "b", &["list", "get"]));
        gathered.take(Verb::Info, &info("auth", "z", &["login"]));
        gathered.take(Verb::Info, &info("product", "a", &["get"]));
        gathered.take(Verb::Stats, &stats("product", "a", &[("get", 2, None)]));
        let response = gathered.into_response();
        assert_eq!(response.skipped_replies, 0);
        let names: Vec<&str> = response.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["auth", "product"]);

        let auth = &response.services[0].instances[0];
        assert_eq!(auth.health, PARTIAL, "no STATS from auth");
        assert_eq!(auth.started, None);
        assert_eq!(auth.endpoints[0].subject, "auth.login");

        let product = &response.services[1];
        let ids: Vec<&str> = product.instances.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        let b = &product.instances[1];
        assert_eq!(b.health, UP);
        assert_eq!(b.version, "1.2.3");
        assert_eq!(b.description, "the product service");
        let endpoints: Vec<&str> = b.endpoints.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(endpoints, ["get", "list"]);
        let get = &b.endpoints[0];
        assert_eq!(
            (get.num_requests, get.num_errors, get.queue_group.as_str()),
            (4, 1, "q")
        );
        assert_eq!(get.processing_time.as_ref().unwrap().seconds, 3);
        assert_eq!(get.processing_time.as_ref().unwrap().nanos, 500);
        assert_eq!(
            get.average_processing_time.as_ref().unwrap().nanos,
            1_500_000
        );
        assert_eq!(
            b.endpoints[1].num_requests, 0,
            "listed by INFO, not counted"
        );
        assert_eq!((b.total_requests, b.total_errors), (4, 1));
        assert_eq!(b.started.as_ref().unwrap().nanos, 123_456_789);
        // Without the runtime's count, micro's own is taken.
        assert_eq!(product.instances[0].total_errors, 0);
    }

    #[test]
    fn readiness_is_taken_from_the_runtimes_stats_when_it_is_a_known_word() {
        let endpoint = |data: Value| -> EndpointStats {
            serde_json::from_value(json!({"name": "get", "data": data})).unwrap()
        };
        assert_eq!(
            endpoint(json!({"errors": 0, "readiness": "degraded"})).readiness(),
            Some("degraded")
        );
        assert_eq!(endpoint(json!({"errors": 0})).readiness(), None);
        assert_eq!(
            endpoint(json!({"readiness": "fine\nX-Forged: 1"})).readiness(),
            None
        );
        assert_eq!(endpoint(json!({"readiness": 1})).readiness(), None);
    }

    #[test]
    fn the_answer_is_canonical_json() {
        let mut gathered = Gathered::default();
        gathered.take(Verb::Info, &info("product", "a", &["get"]));
        gathered.take(Verb::Stats, &stats("product", "a", &[("get", 7, Some(2))]));
        let json: Value = serde_json::to_value(gathered.into_response()).unwrap();
        let instance = &json["services"][0]["instances"][0];
        assert_eq!(
            instance["total_requests"], "7",
            "64-bit integers are strings"
        );
        assert_eq!(instance["endpoints"][0]["num_errors"], "2");
        assert_eq!(instance["endpoints"][0]["processing_time"], "3.000000500s");
        assert_eq!(instance["started"], "2026-12-02T10:00:00.123456789+00:00");
        assert_eq!(instance["metadata"], json!([]));
        assert_eq!(json["skipped_replies"], 0);
    }

    #[test]
    fn every_answer_keeps_the_contracts_rules() {
        use rpc::rules::Validate as _;
        let mut gathered = Gathered::default();
        gathered.take(Verb::Info, &info("product", "a", &["get"]));
        gathered.take(Verb::Stats, &stats("product", "a", &[("get", 1, None)]));
        gathered.take(Verb::Info, &info("product", "b", &["get"]));
        let response = gathered.into_response();
        let healths: Vec<&str> = response.services[0]
            .instances
            .iter()
            .map(|i| i.health.as_str())
            .collect();
        assert_eq!(healths, [UP, PARTIAL]);
        let mut violations = rpc::Violations::new();
        response.validate("", &mut violations);
        assert!(violations.into_result().is_ok());
    }

    #[test]
    fn bad_replies_are_skipped_and_counted_without_spoiling_the_rest() {
        let mut gathered = Gathered::default();
        gathered.take(Verb::Info, &info("product", "a", &["get"]));
        gathered.take(Verb::Info, b"not json");
        // A STATS reply where INFO was asked, a reply without an id, an oversized name.
        gathered.take(Verb::Info, &stats("product", "b", &[]));
        gathered.take(
            Verb::Info,
            &serde_json::to_vec(&json!({"type": INFO_TYPE, "name": "x", "id": ""})).unwrap(),
        );
        gathered.take(Verb::Info, &info(&"n".repeat(MAX_NAME_CHARS + 1), "c", &[]));
        let mut large = info("product", "d", &[]);
        large.resize(MAX_REPLY_BYTES + 1, b' ');
        gathered.take(Verb::Info, &large);
        // The same instance answering twice.
        gathered.take(Verb::Info, &info("product", "a", &["get"]));
        let many: Vec<String> = (0..=MAX_ENDPOINTS).map(|i| format!("e{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        gathered.take(Verb::Info, &info("product", "e", &many));

        assert_eq!(gathered.skipped.by_reason.get("malformed"), Some(&5));
        assert_eq!(gathered.skipped.by_reason.get("too_large"), Some(&1));
        assert_eq!(gathered.skipped.by_reason.get("duplicate"), Some(&1));
        let response = gathered.into_response();
        assert_eq!(response.skipped_replies, 7);
        assert_eq!(response.services.len(), 1);
        assert_eq!(response.services[0].instances.len(), 1);
        assert_eq!(response.services[0].instances[0].id, "a");
    }

    #[test]
    fn instances_past_the_cap_are_skipped_but_those_listed_keep_their_replies() {
        let mut gathered = Gathered::default();
        for n in 0..MAX_INSTANCES {
            gathered.take(Verb::Info, &info("product", &format!("i{n:04}"), &[]));
        }
        gathered.take(Verb::Info, &info("product", "past-the-cap", &[]));
        gathered.take(Verb::Stats, &stats("product", "i0000", &[("get", 1, None)]));
        assert_eq!(
            gathered.skipped.by_reason.get("too_many_instances"),
            Some(&1)
        );
        let response = gathered.into_response();
        assert_eq!(response.services[0].instances.len(), MAX_INSTANCES);
        assert_eq!(response.services[0].instances[0].health, UP);
    }

    #[test]
    fn only_the_gateways_own_routes_are_answered_here() {
        let answered: Vec<&str> = api::ROUTES
            .iter()
            .filter(|r| answers(r))
            .map(|r| r.path)
            .collect();
        assert_eq!(
            answered,
            [
                "/api/v1/admin/services",
                "/api/v1/admin/dead-letters",
                "/api/v1/admin/dead-letters/{consumer}/redrive"
            ]
        );
        // Every method of the gateway's contract has its answer: the service list here, the
        // dead letters in crate::dead_letters.
        let own = api::contract(api::gateway::SERVICE_NAME).unwrap();
        assert_eq!(own.methods.len(), answered.len());
        let dead_letter_routes = api::ROUTES
            .iter()
            .filter(|r| crate::dead_letters::route(r).is_some())
            .count();
        assert_eq!(dead_letter_routes, 2);
    }
}
