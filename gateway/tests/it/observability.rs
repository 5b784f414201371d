//! The dashboards and alert rules watch metrics that exist: every metric name the Grafana
//! dashboards (infra/grafana/dashboards/*.json) and the Prometheus alert rules
//! (infra/prometheus/alerts.yml) use must be exported by some component of a running
//! platform, after a checkout went through every service.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::checkout::{customer, shop_with_product};
use crate::helpers::{Platform, PlatformOptions};

/// Series Prometheus makes itself for every target, not any component.
const MADE_BY_PROMETHEUS: &[&str] = &[
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

/// PromQL's aggregations and keywords, which read like metric names. A function is
/// recognised by the parenthesis after it; an aggregation may have `by (..)` in between.
const PROMQL_WORDS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the gateway sits in the workspace")
        .to_path_buf()
}

/// The metric names one PromQL expression selects: identifiers outside label matchers, string
/// literals, range selectors and grouping clauses, that are neither functions nor keywords.
/// Grafana's variables (`$route`, `$__rate_interval`) are dropped first.
fn metric_names(expression: &str) -> BTreeSet<String> {
    let mut text = String::with_capacity(expression.len());
    // Drop strings, {..} matchers, [..] ranges and Grafana variables.
    let mut chars = expression.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                let mut escaped = false;
                for inner in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if inner == '\\' {
                        escaped = true;
                    } else if inner == c {
                        break;
                    }
                }
                text.push(' ');
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                let mut quote = None;
                for inner in chars.by_ref() {
                    match quote {
                        Some(q) if inner == q => quote = None,
                        Some(_) => {}
                        None if inner == '"' || inner == '\'' => quote = Some(inner),
                        None if inner == close => break,
                        None => {}
                    }
                }
                text.push(' ');
            }
            '$' => {
                while chars
                    .peek()
                    .is_some_and(|n| n.is_ascii_alphanumeric() || *n == '_')
                {
                    chars.next();
                }
                text.push(' ');
            }
            other => text.push(other),
        }
    }
    let mut names = BTreeSet::new();
    let bytes: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut skip_group = false;
    while i < bytes.len() {
        let c = bytes[i];
        let starts_word = (c.is_ascii_alphabetic() || c == '_' || c == ':')
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == '.'));
        if !starts_word {
            if c == '(' && skip_group {
                // The label list of by/without/on/ignoring/group_*.
                while i < bytes.len() && bytes[i] != ')' {
                    i += 1;
                }
                skip_group = false;
            } else if !c.is_whitespace() {
                skip_group = false;
            }
            i += 1;
            continue;
        }
        // A word after `group_left` (and the like) means it had no label list.
        skip_group = false;
        let start = i;
        while i < bytes.len()
            && (bytes[i].is_ascii_alphanumeric() || bytes[i] == '_' || bytes[i] == ':')
        {
            i += 1;
        }
        let word: String = bytes[start..i].iter().collect();
        let next = bytes[i..].iter().find(|c| !c.is_whitespace());
        let lower = word.to_ascii_lowercase();
        if matches!(
            lower.as_str(),
            "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
        ) {
            skip_group = true;
            continue;
        }
        if next == Some(&'(') || PROMQL_WORDS.contains(&lower.as_str()) {
            continue;
        }
        names.insert(word);
    }
    names
}

/// The metric of a Grafana `label_values(metric{..}, label)` variable query.
fn label_values_metric(query: &str) -> Option<String> {
    let inner = query.trim().strip_prefix("label_values(")?;
    let (first, rest) = inner.split_once(',')?;
    // `label_values(label)` has no metric; with one, the label follows it.
    (!rest.trim().is_empty()).then(|| metric_names(first).into_iter().next())?
}

/// Every PromQL expression and variable query of a dashboard, wherever it sits.
fn dashboard_queries(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr", Value::String(expr)) => out.push(expr.clone()),
                    ("definition" | "query", Value::String(query))
                        if query.trim_start().starts_with("label_values(") =>
                    {
                        out.push(query.clone())
                    }
                    _ => dashboard_queries(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| dashboard_queries(item, out)),
        _ => {}
    }
}

/// The `expr` of every rule of a Prometheus rule file: inline, quoted, or a folded (`>`) or
/// literal (`|`) block.
fn rule_expressions(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        i += 1;
        let Some(value) = trimmed.strip_prefix("expr:") else {
            continue;
        };
        let value = value.trim();
        if value.is_empty() || value.starts_with('>') || value.starts_with('|') {
            let indent = line.len() - trimmed.len();
            let mut block = Vec::new();
            while i < lines.len() {
                let next = lines[i];
                let next_indent = next.len() - next.trim_start().len();
                if !next.trim().is_empty() && next_indent <= indent {
                    break;
                }
                block.push(next.trim());
                i += 1;
            }
            out.push(block.join(" "));
        } else {
            out.push(value.trim_matches(|c| c == '"' || c == '\'').to_owned());
        }
    }
    out
}

/// The names every dashboard and rule uses, each with where it is used.
fn names_used() -> Vec<(String, String)> {
    let root = workspace_root();
    let mut used = Vec::new();
    let dashboards = root.join("infra/grafana/dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dashboards)
        .expect("infra/grafana/dashboards exists")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no dashboards in {}",
        dashboards.display()
    );
    for file in files {
        let dashboard: Value =
            serde_json::from_str(&std::fs::read_to_string(&file).expect("reading a dashboard"))
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mut queries = Vec::new();
        dashboard_queries(&dashboard, &mut queries);
        let place = format!(
            "infra/grafana/dashboards/{}",
            file.file_name().unwrap().to_string_lossy()
        );
        assert!(!queries.is_empty(), "{place} has no queries");
        for query in queries {
            let names = match label_values_metric(&query) {
                Some(metric) => BTreeSet::from([metric]),
                None => metric_names(&query),
            };
            used.extend(names.into_iter().map(|name| (name, place.clone())));
        }
    }
    let rules = std::fs::read_to_string(root.join("infra/prometheus/alerts.yml"))
        .expect("reading infra/prometheus/alerts.yml");
    let expressions = rule_expressions(&rules);
    let rule_count = rules
        .lines()
        .filter(|line| {
            let line = line.trim_start();
            line.starts_with("- alert:") || line.starts_with("- record:")
        })
        .count();
    assert_eq!(
        expressions.len(),
        rule_count,
        "one expression read per rule of alerts.yml"
    );
    for expression in expressions {
        used.extend(
            metric_names(&expression)
                .into_iter()
                .map(|name| (name, "infra/prometheus/alerts.yml".to_owned())),
        );
    }
    used
}

/// The metric names of a Prometheus text exposition, as they appear on sample lines
/// (`x_bucket`, `x_sum` and `x_count` for a histogram).
fn exported_names(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| line.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn metric_names_are_read_from_promql() {
    let names = metric_names(
        r#"sum by (service, route, le) (rate(http_request_duration_seconds_bucket{route=~"$route", x="a{b}"}[$__rate_interval])) / on (service) group_left (x) sum without (le) (up offset 5m) > 0.5 * 1e3 and events_consumer_lag + on() group_left sum(saga_stuck)"#,
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        [
            "events_consumer_lag",
            "http_request_duration_seconds_bucket",
            "saga_stuck",
            "up"
        ]
    );
    assert_eq!(
        label_values_metric(r#"label_values(saga_started_total{service=~"$service"}, saga)"#),
        Some("saga_started_total".to_owned())
    );
    assert_eq!(label_values_metric("label_values(service)"), None);
    assert_eq!(
        rule_expressions(
            "    - alert: A\n      expr: >\n        x\n          > y\n      for: 1m\n    - alert: B\n      expr: \"up == 0\"\n"
        ),
        ["x > y", "up == 0"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboards_and_alerts_use_is_exported() {
    let used = names_used();
    assert!(
        used.len() > 50,
        "too few metric names read from the dashboards and rules: {used:?}"
    );
    let platform = Platform::spawn_with(PlatformOptions {
        checkout: true,
        after_the_order: true,
        ..PlatformOptions::default()
    })
    .await;

    // A customer buys a lamp: the gateway, every service of the checkout, their outboxes,
    // the consumers of the order's events and the live fan-out all have something to count.
    let (_seller, _shop, lamp) = shop_with_product(&platform, "Lamp", 2500, 5).await;
    let (token, address_id, method_id) = customer(&platform, "4242424242424242", &lamp, 1).await;
    let (status, answer) = platform
        .send_with(
            Method::POST,
            "/api/v1/checkout",
            Some(json!({
                "shipping_address_id": address_id, "payment_method_id": method_id,
            })),
            Some(&token),
            &[("Idempotency-Key", "observability-checkout")],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["order"]["status"], "paid", "{answer}");

    // Every admin port serves its /metrics; some series (consumer lag, the live fan-out)
    // come from samplers and consumers a few seconds later.
    let mut admin_addrs = platform.service_admin_addrs();
    admin_addrs.push(platform.gateway_admin_addr);
    let deadline = Instant::now() + Duration::from_secs(30);
    let missing = loop {
        let mut exported = BTreeSet::new();
        for addr in &admin_addrs {
            let response = platform
                .http
                .get(format!("http://{addr}/metrics"))
                .send()
                .await
                .unwrap_or_else(|e| panic!("GET http://{addr}/metrics: {e}"));
            assert_eq!(response.status(), StatusCode::OK, "/metrics on {addr}");
            let text = response.text().await.expect("the exposition");
            assert!(!text.trim().is_empty(), "/metrics on {addr} is empty");
            exported.extend(exported_names(&text));
        }
        let missing: BTreeSet<String> = used
            .iter()
            .filter(|(name, _)| {
                !exported.contains(name) && !MADE_BY_PROMETHEUS.contains(&name.as_str())
            })
            .map(|(name, place)| format!("{name} (in {place})"))
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        missing.is_empty(),
        "the dashboards and alert rules use metrics no component exports after a checkout:\n  {}",
        missing.into_iter().collect::<Vec<_>>().join("\n  ")
    );
    platform.stop().await;
}
