//! docker-compose.yml, as Compose reads it (anchors and `<<` merge keys resolved), checked
//! against the workspace: what the Compose specification's schema cannot know.
//!
//! - Every `depends_on` names a service, with a condition; `service_healthy` only on a service
//!   with a health check; no cycle.
//! - Every named volume used is declared, and every declared one used; every bind-mount
//!   source exists in the repository (or is made by a documented command: `.dev/keys`).
//! - Every service built from the Dockerfile runs a binary the image holds, and so does its
//!   health check; it is given `OTEL_EXPORTER_OTLP_ENDPOINT`, pointing at a compose service.
//! - Every service of `apps/services.toml` is there with its admin port (`ADMIN_ADDR` and the
//!   health check's URL), and so is the gateway.
//! - Every host port is published once, on 127.0.0.1.
//! - Every other image is pinned to an explicit tag (or digest): no `latest`, no bare name.
//! - Every long-running service has a health check, or says why it cannot have one
//!   (`x-no-healthcheck: <reason>`); a one-shot (one that others wait on to complete) is
//!   never waited on to be healthy.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;
use serde_json::Value;

use super::workspace::Workspace;

/// The environment variable that points a process at the trace collector.
const OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// The one address a port may be published on.
const HOST_IP: &str = "127.0.0.1";

#[derive(Debug, Deserialize)]
struct Compose {
    #[serde(default)]
    services: BTreeMap<String, Service>,
    /// Declared named volumes; a declaration may be empty (null).
    #[serde(default)]
    volumes: BTreeMap<String, Value>,
}

/// The parts of a service the checks read; the schema checks the rest.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Service {
    image: Option<String>,
    build: Option<Value>,
    command: Option<Value>,
    environment: Option<Value>,
    depends_on: Option<Value>,
    volumes: Vec<Value>,
    ports: Vec<Value>,
    healthcheck: Option<Healthcheck>,
    /// Why the service has no health check (an image without any tool to run one).
    #[serde(rename = "x-no-healthcheck")]
    no_healthcheck: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Healthcheck {
    test: Option<Value>,
    disable: bool,
}

/// The words of a command or health-check test, in either of Compose's forms.
fn words(value: &Value) -> Vec<String> {
    match value {
        Value::String(line) => line.split_whitespace().map(str::to_owned).collect(),
        Value::Array(items) => items.iter().map(scalar).collect(),
        _ => Vec::new(),
    }
}

/// A YAML scalar as text (`8080` and `"8080"` alike).
fn scalar(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

impl Service {
    fn built_here(&self) -> bool {
        self.build.is_some()
    }

    fn health_test(&self) -> Option<Vec<String>> {
        let check = self.healthcheck.as_ref()?;
        if check.disable {
            return None;
        }
        let test = words(check.test.as_ref()?);
        (!test.is_empty() && test[0] != "NONE").then_some(test)
    }

    fn env(&self, key: &str) -> Option<String> {
        match self.environment.as_ref()? {
            Value::Object(map) => map.get(key).map(scalar),
            Value::Array(items) => items.iter().map(scalar).find_map(|item| {
                let (name, value) = item.split_once('=').unwrap_or((&item, ""));
                (name == key).then(|| value.to_owned())
            }),
            _ => None,
        }
    }

    /// Each service waited on, with its condition (`None`: the short form, which has none).
    fn dependencies(&self) -> Vec<(String, Option<String>)> {
        match &self.depends_on {
            Some(Value::Array(names)) => names.iter().map(|n| (scalar(n), None)).collect(),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(name, spec)| {
                    let condition = spec.get("condition").map(scalar);
                    (name.clone(), condition)
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// One entry of a service's `volumes`.
#[derive(Debug, PartialEq, Eq)]
enum Mount {
    Named(String),
    Bind(String),
    /// Anonymous volumes, tmpfs and the like: nothing to check.
    Other,
}

fn mount(value: &Value) -> Mount {
    match value {
        Value::String(short) => {
            let parts: Vec<&str> = short.split(':').collect();
            if parts.len() < 2 {
                return Mount::Other;
            }
            let source = parts[0];
            if source.starts_with(['.', '/', '~']) {
                Mount::Bind(source.to_owned())
            } else {
                Mount::Named(source.to_owned())
            }
        }
        Value::Object(long) => {
            let source = long.get("source").map(scalar).unwrap_or_default();
            match long.get("type").map(scalar).as_deref() {
                Some("volume") if !source.is_empty() => Mount::Named(source),
                Some("bind") => Mount::Bind(source),
                _ => Mount::Other,
            }
        }
        _ => Mount::Other,
    }
}

/// A port published on the host: address, port and protocol.
#[derive(Debug, PartialEq, Eq)]
struct Published {
    host_ip: String,
    port: String,
    protocol: String,
}

/// The host ports a `ports` entry publishes (none when the container port only is given);
/// a range publishes each of its ports.
fn published(value: &Value) -> Vec<Published> {
    let (host_ip, host, protocol) = match value {
        Value::String(short) => {
            let (spec, protocol) = short.split_once('/').unwrap_or((short, "tcp"));
            let (host_ip, rest) = match spec.strip_prefix('[') {
                Some(bracketed) => match bracketed.split_once("]:") {
                    Some((ip, rest)) => (ip.to_owned(), rest),
                    None => return Vec::new(),
                },
                None => match spec.matches(':').count() {
                    2 => {
                        let (ip, rest) = spec.split_once(':').unwrap_or_default();
                        (ip.to_owned(), rest)
                    }
                    _ => (String::new(), spec),
                },
            };
            let Some((host, _container)) = rest.split_once(':') else {
                return Vec::new();
            };
            (host_ip, host.to_owned(), protocol.to_owned())
        }
        Value::Object(long) => (
            long.get("host_ip").map(scalar).unwrap_or_default(),
            long.get("published").map(scalar).unwrap_or_default(),
            long.get("protocol")
                .map(scalar)
                .unwrap_or_else(|| "tcp".to_owned()),
        ),
        _ => return Vec::new(),
    };
    if host.is_empty() {
        return Vec::new();
    }
    let ports: Vec<String> = match host.split_once('-') {
        Some((first, last)) => match (first.parse::<u16>(), last.parse::<u16>()) {
            (Ok(first), Ok(last)) if first <= last => {
                (first..=last).map(|port| port.to_string()).collect()
            }
            _ => vec![host.clone()],
        },
        None => vec![host.clone()],
    };
    ports
        .into_iter()
        .map(|port| Published {
            host_ip: host_ip.clone(),
            port,
            protocol: protocol.clone(),
        })
        .collect()
}

/// What is wrong with an image reference that is not built here; `None` when it is pinned.
fn unpinned(image: &str) -> Option<&'static str> {
    if image.contains("@sha256:") {
        return None;
    }
    // The tag follows the last colon after the last slash (a registry may have a port).
    let name = image.rsplit('/').next().unwrap_or(image);
    match name.split_once(':') {
        None => Some("has no tag"),
        Some((_, "latest")) => Some("is tagged latest"),
        Some((_, "")) => Some("has an empty tag"),
        Some(_) => None,
    }
}

/// Whether `relative` (a bind source, relative to the compose file) stays inside the
/// repository: no absolute path, no `..` climbing out.
fn inside_repository(relative: &Path) -> bool {
    let mut depth = 0usize;
    for component in relative.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir if depth > 0 => depth -= 1,
            _ => return false,
        }
    }
    true
}

/// `relative` without its `.` components: `./.dev/keys` is `.dev/keys`.
fn normalized(relative: &Path) -> PathBuf {
    relative
        .components()
        .filter(|c| *c != Component::CurDir)
        .collect()
}

/// Everything wrong with the compose file `text` for `workspace`; empty when it agrees.
/// Errors only when the text is not YAML of a Compose file's shape.
pub fn problems(text: &str, workspace: &Workspace) -> anyhow::Result<Vec<String>> {
    let value: Value = serde_saphyr::from_str(text).context("parsing the YAML")?;
    let compose: Compose =
        serde_json::from_value(value).context("reading the services and volumes")?;
    let services = &compose.services;
    let mut problems = Vec::new();

    // Who waits on whom, and how.
    let mut one_shots = BTreeSet::new();
    let mut awaited_healthy = BTreeMap::<&str, Vec<&str>>::new();
    for (name, service) in services {
        for (dependency, condition) in service.dependencies() {
            let Some((dependency, _)) = services.get_key_value(dependency.as_str()) else {
                problems.push(format!(
                    "service {name}: depends on {dependency}, which is not a service"
                ));
                continue;
            };
            if dependency == name {
                problems.push(format!("service {name}: depends on itself"));
            }
            match condition.as_deref() {
                None => problems.push(format!(
                    "service {name}: depends on {dependency} without a condition (service_started, service_healthy or service_completed_successfully)"
                )),
                Some("service_completed_successfully") => {
                    one_shots.insert(dependency.as_str());
                }
                Some("service_healthy") => awaited_healthy
                    .entry(dependency.as_str())
                    .or_default()
                    .push(name),
                _ => {}
            }
        }
    }
    if let Some(cycle) = dependency_cycle(services) {
        problems.push(format!("depends_on has a cycle: {}", cycle.join(" -> ")));
    }

    // Health checks.
    for (name, service) in services {
        let test = service.health_test();
        let waiters = awaited_healthy.get(name.as_str());
        if let Some(waiters) = waiters
            && test.is_none()
        {
            problems.push(format!(
                "service {name}: {} wait(s) for it to be healthy, but it has no health check",
                waiters.join(", ")
            ));
        }
        if one_shots.contains(name.as_str()) {
            if waiters.is_some() {
                problems.push(format!(
                    "service {name}: waited on both to complete and to be healthy"
                ));
            }
            continue;
        }
        match (&test, &service.no_healthcheck) {
            (None, None) => problems.push(format!(
                "service {name}: no health check (a long-running service needs one, or x-no-healthcheck with the reason it cannot have one)"
            )),
            (Some(_), Some(_)) => problems.push(format!(
                "service {name}: has a health check and x-no-healthcheck; drop one"
            )),
            (None, Some(reason)) if reason.trim().is_empty() => problems.push(format!(
                "service {name}: x-no-healthcheck must say why there is no health check"
            )),
            _ => {}
        }
    }

    // Volumes and bind mounts.
    let mut used_volumes = BTreeSet::new();
    for (name, service) in services {
        for entry in &service.volumes {
            match mount(entry) {
                Mount::Named(volume) => {
                    if !compose.volumes.contains_key(&volume) {
                        problems.push(format!(
                            "service {name}: uses the volume {volume}, which is not declared under volumes:"
                        ));
                    }
                    used_volumes.insert(volume);
                }
                Mount::Bind(source) => {
                    let relative = Path::new(&source);
                    if !inside_repository(relative) {
                        problems.push(format!(
                            "service {name}: bind-mounts {source}, outside the repository"
                        ));
                    } else if !workspace.root.join(relative).exists()
                        && !workspace.made_locally.contains(&normalized(relative))
                    {
                        problems.push(format!(
                            "service {name}: bind-mounts {source}, which does not exist in the repository"
                        ));
                    }
                }
                Mount::Other => {}
            }
        }
    }
    for volume in compose.volumes.keys() {
        if !used_volumes.contains(volume) {
            problems.push(format!("volume {volume}: declared but no service uses it"));
        }
    }

    // Images: the one built here runs the workspace's binaries; every other is pinned.
    for (name, service) in services {
        if service.built_here() {
            let command = service.command.as_ref().map(words).unwrap_or_default();
            match command.first() {
                None => problems.push(format!(
                    "service {name}: built from the Dockerfile but names no binary in its command"
                )),
                Some(binary) if !workspace.binaries.contains(binary) => problems.push(format!(
                    "service {name}: runs {binary}, which the workspace does not build into the image"
                )),
                Some(_) => {}
            }
            if let Some(test) = service.health_test()
                && test[0] == "CMD"
                && let Some(program) = test.get(1)
                && !workspace.binaries.contains(program)
            {
                problems.push(format!(
                    "service {name}: its health check runs {program}, which the image does not hold"
                ));
            }
            if !one_shots.contains(name.as_str()) {
                match service.env(OTLP_ENDPOINT) {
                    None => problems.push(format!(
                        "service {name}: {OTLP_ENDPOINT} is not set, so its traces go nowhere"
                    )),
                    Some(url) => {
                        let host = url
                            .split_once("://")
                            .map_or(url.as_str(), |(_, rest)| rest)
                            .split([':', '/'])
                            .next()
                            .unwrap_or_default();
                        if !services.contains_key(host) {
                            problems.push(format!(
                                "service {name}: {OTLP_ENDPOINT} points at {host}, which is not a service"
                            ));
                        }
                    }
                }
            }
        } else {
            match &service.image {
                None => problems.push(format!("service {name}: neither image nor build")),
                Some(image) => {
                    if let Some(problem) = unpinned(image) {
                        problems.push(format!(
                            "service {name}: image {image} {problem}; pin an explicit version tag"
                        ));
                    }
                }
            }
        }
    }

    // The services of apps/services.toml, with their admin ports, and the gateway.
    for entry in &workspace.services {
        let package = entry.package();
        let Some(service) = services.get(&package) else {
            problems.push(format!(
                "{}: service {} is not in docker-compose.yml (run `cargo xtask sync-services`)",
                crate::services::LIST,
                package
            ));
            continue;
        };
        let port = entry.admin_port.to_string();
        let admin = service.env("ADMIN_ADDR").unwrap_or_default();
        if admin.rsplit_once(':').map(|(_, p)| p) != Some(port.as_str()) {
            problems.push(format!(
                "service {package}: ADMIN_ADDR is {admin:?}, not on its admin port {port}"
            ));
        }
        let probes_admin_port = service
            .health_test()
            .is_some_and(|test| test.iter().any(|w| w.contains(&format!(":{port}/"))));
        if !probes_admin_port {
            problems.push(format!(
                "service {package}: its health check does not probe its admin port {port}"
            ));
        }
    }
    let gateway_runs = services.values().any(|service| {
        service.built_here()
            && service
                .command
                .as_ref()
                .map(words)
                .unwrap_or_default()
                .first()
                == Some(&"gateway".to_owned())
    });
    if !gateway_runs {
        problems.push("no service runs the gateway".to_owned());
    }

    // Host ports: each published once, on the loopback address.
    let mut owners = BTreeMap::<(String, String), &str>::new();
    for (name, service) in services {
        for entry in &service.ports {
            for port in published(entry) {
                if port.host_ip != HOST_IP {
                    let shown = if port.host_ip.is_empty() {
                        "every address".to_owned()
                    } else {
                        port.host_ip.clone()
                    };
                    problems.push(format!(
                        "service {name}: publishes port {} on {shown}; publish it on {HOST_IP} only",
                        port.port
                    ));
                }
                let key = (port.port.clone(), port.protocol.clone());
                if let Some(first) = owners.get(&key) {
                    problems.push(format!(
                        "service {name}: host port {}/{} is already published by {first}",
                        port.port, port.protocol
                    ));
                } else {
                    owners.insert(key, name);
                }
            }
        }
    }
    Ok(problems)
}

/// A cycle in `depends_on`, as the services along it, if there is one.
fn dependency_cycle(services: &BTreeMap<String, Service>) -> Option<Vec<String>> {
    fn visit<'a>(
        name: &'a str,
        services: &'a BTreeMap<String, Service>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|seen| *seen == name) {
            let mut cycle: Vec<String> = path[start..].iter().map(|s| (*s).to_owned()).collect();
            cycle.push(name.to_owned());
            return Some(cycle);
        }
        if done.contains(name) {
            return None;
        }
        path.push(name);
        if let Some((_, service)) = services.get_key_value(name) {
            for (dependency, _) in service.dependencies() {
                if let Some((dependency, _)) = services.get_key_value(dependency.as_str())
                    && dependency != name
                    && let Some(cycle) = visit(dependency, services, path, done)
                {
                    return Some(cycle);
                }
            }
        }
        path.pop();
        done.insert(name);
        None
    }
    let mut done = BTreeSet::new();
    services
        .keys()
        .find_map(|name| visit(name, services, &mut Vec::new(), &mut done))
}

#[cfg(test)]
mod tests;
