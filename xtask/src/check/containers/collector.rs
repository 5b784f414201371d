//! infra/otel/collector.yaml against itself and docker-compose.yml, since no collector binary
//! is at hand to validate it: every component a pipeline names is defined and every defined
//! one is used; the compose service the processes export to mounts this file and receives
//! OTLP/HTTP on the port they are given; every exporter sends to a compose service.

use std::collections::BTreeSet;

use anyhow::Context as _;
use serde_json::Value;

/// Where the file is, relative to the workspace, as compose mounts it.
pub const FILE: &str = "infra/otel/collector.yaml";

/// Everything wrong with the collector configuration `config` under the compose file
/// `compose`; empty when they agree.
pub fn problems(config: &str, compose: &str) -> anyhow::Result<Vec<String>> {
    let config: Value =
        serde_saphyr::from_str(config).with_context(|| format!("parsing {FILE}"))?;
    let compose: Value = serde_saphyr::from_str(compose).context("parsing docker-compose.yml")?;
    let mut problems = Vec::new();

    // The pipelines and the components they name.
    let mut used = BTreeSet::new();
    let service = &config["service"];
    for name in names(&service["extensions"]) {
        used.insert(("extensions", name));
    }
    match service["pipelines"].as_object() {
        Some(pipelines) if !pipelines.is_empty() => {
            for (pipeline, spec) in pipelines {
                for kind in ["receivers", "processors", "exporters"] {
                    let listed = names(&spec[kind]);
                    if kind != "processors" && listed.is_empty() {
                        problems.push(format!("{FILE}: pipeline {pipeline} has no {kind}"));
                    }
                    for name in listed {
                        used.insert((kind, name));
                    }
                }
            }
        }
        _ => problems.push(format!("{FILE}: no pipeline under service.pipelines")),
    }
    for (kind, name) in &used {
        if config[*kind].get(name).is_none() {
            problems.push(format!(
                "{FILE}: {name} is used but not defined under {kind}"
            ));
        }
    }
    for kind in ["receivers", "processors", "exporters", "extensions"] {
        for name in config[kind].as_object().into_iter().flat_map(|m| m.keys()) {
            if !used.contains(&(kind, name.clone())) {
                problems.push(format!("{FILE}: {kind}.{name} is defined but not used"));
            }
        }
    }

    // Where compose points the processes, and where the collector sends.
    let services = compose["services"].as_object().cloned().unwrap_or_default();
    let endpoints: BTreeSet<String> = services
        .values()
        .filter_map(|service| service["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"].as_str())
        .map(str::to_owned)
        .collect();
    for endpoint in &endpoints {
        let (host, port) = host_port(endpoint);
        let Some(collector) = services.get(&host) else {
            continue; // the compose checks report it
        };
        let mounts_this_file = collector["volumes"].as_array().is_some_and(|volumes| {
            volumes.iter().any(|volume| {
                let source = volume
                    .as_str()
                    .and_then(|short| short.split(':').next())
                    .or_else(|| volume["source"].as_str())
                    .unwrap_or_default();
                source.trim_start_matches("./") == FILE
            })
        });
        if !mounts_this_file {
            problems.push(format!(
                "docker-compose.yml: the processes export to {host}, which does not mount {FILE}"
            ));
        }
        let receives = config["receivers"]
            .as_object()
            .into_iter()
            .flat_map(|receivers| receivers.values())
            .filter_map(|receiver| receiver["protocols"]["http"]["endpoint"].as_str())
            .any(|listen| host_port(listen).1 == port);
        if !receives {
            problems.push(format!(
                "{FILE}: no OTLP/HTTP receiver on port {port}, where docker-compose.yml sends the spans ({endpoint})"
            ));
        }
    }
    if endpoints.is_empty() {
        problems.push("docker-compose.yml: no service is given OTEL_EXPORTER_OTLP_ENDPOINT".into());
    }
    for (name, exporter) in config["exporters"].as_object().into_iter().flatten() {
        if let Some(endpoint) = exporter["endpoint"].as_str() {
            let (host, _) = host_port(endpoint);
            if !services.contains_key(&host) {
                problems.push(format!(
                    "{FILE}: exporter {name} sends to {host}, which is not a docker-compose service"
                ));
            }
        }
    }
    Ok(problems)
}

/// The names in a YAML list of strings (none when it is not one).
fn names(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|name| name.as_str().map(str::to_owned))
        .collect()
}

/// Host and port of `scheme://host:port/path` or `host:port`.
fn host_port(endpoint: &str) -> (String, String) {
    let rest = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or_default();
    match authority.rsplit_once(':') {
        Some((host, port)) => (host.to_owned(), port.to_owned()),
        None => (authority.to_owned(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Layout;

    fn read(name: &str) -> String {
        std::fs::read_to_string(Layout::discover().root().join(name)).unwrap()
    }

    #[test]
    fn the_collector_configuration_agrees_with_compose() {
        let problems = problems(&read(FILE), &read("docker-compose.yml")).unwrap();
        assert!(problems.is_empty(), "{problems:#?}");
    }

    /// Each break of the real files is rejected with its reason.
    #[test]
    fn broken_collector_configurations_are_rejected_with_the_reason() {
        let config = read(FILE);
        let compose = read("docker-compose.yml");
        let config_cases = [
            (
                "processors: [memory_limiter, batch]",
                "processors: [memory_limiter, batch, filter]",
                "filter is used but not defined under processors",
            ),
            (
                "processors: [memory_limiter, batch]",
                "processors: [batch]",
                "processors.memory_limiter is defined but not used",
            ),
            (
                "endpoint: 0.0.0.0:4318",
                "endpoint: 0.0.0.0:4319",
                "no OTLP/HTTP receiver on port 4318",
            ),
            (
                "endpoint: jaeger:4317",
                "endpoint: tempo:4317",
                "exporter otlp_grpc/jaeger sends to tempo, which is not a docker-compose service",
            ),
        ];
        for (from, to, reason) in config_cases {
            assert_eq!(config.matches(from).count(), 1, "{from}");
            let problems = problems(&config.replacen(from, to, 1), &compose).unwrap();
            assert!(
                problems.len() == 1 && problems[0].contains(reason),
                "{from} -> {to}: expected {reason:?}, got {problems:#?}"
            );
        }
        let unmounted = compose.replacen(
            "./infra/otel/collector.yaml:",
            "./infra/otel/other.yaml:",
            1,
        );
        assert_eq!(
            problems(&config, &unmounted).unwrap(),
            [format!(
                "docker-compose.yml: the processes export to otel-collector, which does not mount {FILE}"
            )]
        );
    }

    #[test]
    fn endpoints_are_split_into_host_and_port() {
        let split = |e: &str| host_port(e);
        assert_eq!(
            split("http://otel-collector:4318"),
            ("otel-collector".into(), "4318".into())
        );
        assert_eq!(
            split("http://c:4318/v1/traces"),
            ("c".into(), "4318".into())
        );
        assert_eq!(split("jaeger:4317"), ("jaeger".into(), "4317".into()));
    }
}
