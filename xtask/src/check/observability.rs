//! The observability checks: Prometheus's scrape configuration, alert rules and their unit
//! tests through `promtool` (from Debian's `prometheus` package, installed with apt-get when
//! missing), every alert's runbook and unit test present, and the Grafana dashboards read and
//! cross-checked against the provisioned data sources.
//!
//! That every metric a dashboard or rule names is exported is the gateway's `observability`
//! test: it needs a running platform.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail, ensure};
use serde_json::Value;

use super::tools::{self, relative};
use crate::layout::Layout;
use crate::system::{all_on_path, running_as_root};

const PROMETHEUS: &str = "infra/prometheus";
const GRAFANA: &str = "infra/grafana";

pub fn check(layout: &Layout) -> anyhow::Result<()> {
    let root = layout.root();
    let promtool = promtool()?;
    let prometheus = root.join(PROMETHEUS);
    // `check config` checks the rule files it names too.
    tools::run(
        Command::new(&promtool)
            .args(["check", "config"])
            .arg(prometheus.join("prometheus.yml")),
    )?;
    tools::run(
        Command::new(&promtool)
            .args(["check", "rules"])
            .arg(prometheus.join("alerts.yml")),
    )?;
    let tests = files_with_extension(&prometheus.join("tests"), "yml")?;
    ensure!(
        !tests.is_empty(),
        "{PROMETHEUS}/tests/ has no unit tests of the alert rules"
    );
    // From the tests' directory, where their `rule_files` paths start.
    tools::run(
        Command::new(&promtool)
            .current_dir(prometheus.join("tests"))
            .args(["test", "rules"])
            .args(
                tests
                    .iter()
                    .map(|path| path.file_name().expect("a file name")),
            ),
    )?;
    println!(
        "==> promtool: {}/prometheus.yml, alerts.yml and {} unit test files pass",
        PROMETHEUS,
        tests.len()
    );

    let alerts = std::fs::read_to_string(prometheus.join("alerts.yml"))
        .with_context(|| format!("reading {PROMETHEUS}/alerts.yml"))?;
    let mut test_text = String::new();
    for test in &tests {
        test_text.push_str(&std::fs::read_to_string(test)?);
    }
    let problems = alert_problems(root, &alerts, &test_text);
    ensure!(
        problems.is_empty(),
        "the alert rules:\n  {}",
        problems.join("\n  ")
    );

    let grafana = root.join(GRAFANA);
    let mut uids = BTreeSet::new();
    for file in files_with_extension(&grafana.join("provisioning/datasources"), "yml")? {
        uids.extend(datasource_uids(&std::fs::read_to_string(&file)?));
    }
    ensure!(
        !uids.is_empty(),
        "{GRAFANA}/provisioning/datasources/ defines no data source uid"
    );
    let mut dashboards = Vec::new();
    for file in files_with_extension(&grafana.join("dashboards"), "json")? {
        let text = std::fs::read_to_string(&file)?;
        let dashboard: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", relative(root, &file)))?;
        dashboards.push((relative(root, &file).to_string(), dashboard));
    }
    ensure!(
        !dashboards.is_empty(),
        "{GRAFANA}/dashboards/ has no dashboards"
    );
    let problems = dashboard_problems(&dashboards, &uids);
    ensure!(
        problems.is_empty(),
        "the dashboards:\n  {}",
        problems.join("\n  ")
    );
    println!(
        "==> grafana: {} dashboards, data sources {}",
        dashboards.len(),
        uids.iter().cloned().collect::<Vec<_>>().join(", ")
    );
    Ok(())
}

/// promtool from PATH, or from Debian's `prometheus` package, installed now.
fn promtool() -> anyhow::Result<PathBuf> {
    if let Some(found) = all_on_path("promtool").into_iter().next() {
        return Ok(found);
    }
    if !running_as_root() || all_on_path("apt-get").is_empty() {
        bail!(
            "promtool is missing: install Debian's prometheus package (`sudo apt-get install \
             prometheus`, it ships promtool) or put promtool on PATH"
        );
    }
    println!("==> installing promtool (apt-get: prometheus)");
    tools::run(
        Command::new("apt-get")
            .args(["update", "-qq"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    tools::run(
        Command::new("apt-get")
            .args([
                "install",
                "-y",
                "-qq",
                "--no-install-recommends",
                "prometheus",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    all_on_path("promtool")
        .into_iter()
        .next()
        .context("apt-get installed prometheus but promtool is not on PATH")
}

/// The files of `dir` ending in `.extension`, sorted.
fn files_with_extension(dir: &Path, extension: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == extension) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Every alert of `alerts` must link a runbook that exists, at a heading that exists, and be
/// the subject of some unit test in `tests`.
fn alert_problems(root: &Path, alerts: &str, tests: &str) -> Vec<String> {
    let tested: BTreeSet<&str> = tests
        .lines()
        .filter_map(|line| line.trim().strip_prefix("alertname:"))
        .map(str::trim)
        .collect();
    let mut problems = Vec::new();
    let mut alert: Option<&str> = None;
    let mut linked = BTreeMap::new();
    for line in alerts.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("- alert:") {
            let name = name.trim();
            alert = Some(name);
            linked.insert(name, false);
            if !tested.contains(name) {
                problems.push(format!(
                    "{name}: no unit test in {PROMETHEUS}/tests/ names it (alertname: {name})"
                ));
            }
        } else if let (Some(name), Some(url)) = (alert, line.strip_prefix("runbook_url:")) {
            linked.insert(name, true);
            if let Err(problem) = runbook_exists(root, url.trim().trim_matches('"')) {
                problems.push(format!("{name}: {problem}"));
            }
        }
    }
    if linked.is_empty() {
        problems.push("alerts.yml has no alerts".to_owned());
    }
    for (name, has_link) in linked {
        if !has_link {
            problems.push(format!("{name}: no runbook_url annotation"));
        }
    }
    problems
}

/// `docs/runbooks/<page>.md#<anchor>`: the page exists and has a heading with that anchor.
fn runbook_exists(root: &Path, url: &str) -> Result<(), String> {
    let (page, anchor) = url.split_once('#').unwrap_or((url, ""));
    if !page.starts_with("docs/runbooks/") || !page.ends_with(".md") {
        return Err(format!(
            "runbook_url {url} is not a page under docs/runbooks/"
        ));
    }
    let text = std::fs::read_to_string(root.join(page))
        .map_err(|_| format!("runbook_url {url}: {page} does not exist"))?;
    if !anchor.is_empty()
        && !text
            .lines()
            .filter_map(|line| line.strip_prefix('#'))
            .any(|heading| heading_anchor(heading) == anchor)
    {
        return Err(format!(
            "runbook_url {url}: {page} has no heading #{anchor}"
        ));
    }
    Ok(())
}

/// The anchor a Markdown renderer gives a heading: lower case, spaces to hyphens, other
/// punctuation dropped.
fn heading_anchor(heading: &str) -> String {
    heading
        .trim_start_matches('#')
        .trim()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

/// The `uid`s of a Grafana data source provisioning file.
fn datasource_uids(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.trim().trim_start_matches("- ").strip_prefix("uid:"))
        .map(|uid| uid.trim().trim_matches(['"', '\'']).to_owned())
        .filter(|uid| !uid.is_empty())
        .collect()
}

/// What is wrong with a set of dashboards (path, JSON): uid and title present and unique,
/// every panel and query naming a data source by a uid that provisioning defines, every
/// panel with a query.
fn dashboard_problems(dashboards: &[(String, Value)], uids: &BTreeSet<String>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen_uids = BTreeMap::new();
    let mut seen_titles = BTreeMap::new();
    for (path, dashboard) in dashboards {
        for (field, seen) in [("uid", &mut seen_uids), ("title", &mut seen_titles)] {
            match dashboard[field].as_str().filter(|v| !v.trim().is_empty()) {
                None => problems.push(format!("{path}: no {field}")),
                Some(value) => {
                    if let Some(other) = seen.insert(value.to_owned(), path.clone()) {
                        problems.push(format!("{path}: {field} {value:?} is also {other}'s"));
                    }
                }
            }
        }
        if dashboard["schemaVersion"].as_u64().is_none() {
            problems.push(format!("{path}: no schemaVersion"));
        }
        let mut panels = Vec::new();
        collect_panels(&dashboard["panels"], &mut panels);
        if panels.is_empty() {
            problems.push(format!("{path}: no panels"));
        }
        for panel in panels {
            let title = panel["title"].as_str().unwrap_or("(untitled)");
            let targets = panel["targets"].as_array().map_or(&[][..], Vec::as_slice);
            if targets.is_empty() {
                problems.push(format!("{path}: panel {title:?} has no queries"));
            }
            let mut sources = vec![("the panel", &panel["datasource"])];
            sources.extend(targets.iter().map(|t| ("a query", &t["datasource"])));
            for (what, source) in sources {
                match source["uid"].as_str() {
                    Some(uid) if uids.contains(uid) => {}
                    Some(uid) => problems.push(format!(
                        "{path}: panel {title:?}: {what} names data source {uid:?}, which provisioning does not define"
                    )),
                    None => problems.push(format!(
                        "{path}: panel {title:?}: {what} names no data source uid"
                    )),
                }
            }
        }
        for variable in dashboard["templating"]["list"]
            .as_array()
            .map_or(&[][..], Vec::as_slice)
        {
            if variable["type"] == "query"
                && !variable["datasource"]["uid"]
                    .as_str()
                    .is_some_and(|uid| uids.contains(uid))
            {
                problems.push(format!(
                    "{path}: variable {}: no data source that provisioning defines",
                    variable["name"]
                ));
            }
        }
    }
    problems
}

/// Every panel, those inside rows included; rows themselves hold no queries.
fn collect_panels<'a>(panels: &'a Value, out: &mut Vec<&'a Value>) {
    for panel in panels.as_array().map_or(&[][..], Vec::as_slice) {
        if panel["type"] == "row" {
            collect_panels(&panel["panels"], out);
        } else {
            out.push(panel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn workspace_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_path_buf()
    }

    fn dashboard(uid: &str, title: &str, source: &str) -> Value {
        json!({
            "uid": uid, "title": title, "schemaVersion": 39,
            "templating": {"list": [{"name": "service", "type": "query", "datasource": {"uid": "prometheus"}}]},
            "panels": [{"type": "row", "panels": [{
                "title": "Requests", "datasource": {"uid": source},
                "targets": [{"expr": "up", "datasource": {"uid": source}}]
            }]}]
        })
    }

    #[test]
    fn dashboards_are_checked_for_uids_titles_and_data_sources() {
        let uids = BTreeSet::from(["prometheus".to_owned()]);
        let good = [
            ("a.json".to_owned(), dashboard("a", "A", "prometheus")),
            ("b.json".to_owned(), dashboard("b", "B", "prometheus")),
        ];
        assert_eq!(dashboard_problems(&good, &uids), Vec::<String>::new());

        let twice = [
            ("a.json".to_owned(), dashboard("a", "A", "prometheus")),
            ("b.json".to_owned(), dashboard("a", "A", "prometheus")),
        ];
        assert_eq!(
            dashboard_problems(&twice, &uids),
            [
                "b.json: uid \"a\" is also a.json's",
                "b.json: title \"A\" is also a.json's"
            ]
        );

        let unknown = [("c.json".to_owned(), dashboard("c", "C", "loki"))];
        let problems = dashboard_problems(&unknown, &uids);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].contains("panel \"Requests\": the panel names data source \"loki\""),
            "{problems:?}"
        );
    }

    #[test]
    fn alerts_need_a_runbook_heading_and_a_unit_test() {
        let root = workspace_root();
        let alerts = "groups:\n  - name: g\n    rules:\n      - alert: SagaStuck\n        annotations:\n          runbook_url: docs/runbooks/sagas.md#sagastuck\n      - alert: Untested\n        annotations:\n          runbook_url: docs/runbooks/sagas.md#nowhere\n      - alert: Unlinked\n";
        let tests = "    alertname: SagaStuck\n    alertname: Unlinked\n";
        assert_eq!(
            alert_problems(&root, alerts, tests),
            [
                "Untested: no unit test in infra/prometheus/tests/ names it (alertname: Untested)",
                "Untested: runbook_url docs/runbooks/sagas.md#nowhere: docs/runbooks/sagas.md has no heading #nowhere",
                "Unlinked: no runbook_url annotation",
            ]
        );
    }

    #[test]
    fn provisioned_uids_and_heading_anchors_are_read() {
        assert_eq!(
            datasource_uids(
                "datasources:\n  - name: P\n    uid: prometheus\n  - uid: \"jaeger\"\n"
            ),
            ["prometheus", "jaeger"]
        );
        assert_eq!(heading_anchor("## SagaStuck"), "sagastuck");
        assert_eq!(
            heading_anchor("# Outbox: not draining"),
            "outbox-not-draining"
        );
    }

    /// The committed dashboards, provisioning and alert rules pass the checks that need no
    /// promtool.
    #[test]
    fn the_committed_files_pass() {
        let root = workspace_root();
        let grafana = root.join(GRAFANA);
        let mut uids = BTreeSet::new();
        for file in files_with_extension(&grafana.join("provisioning/datasources"), "yml").unwrap()
        {
            uids.extend(datasource_uids(&std::fs::read_to_string(file).unwrap()));
        }
        let dashboards: Vec<(String, Value)> =
            files_with_extension(&grafana.join("dashboards"), "json")
                .unwrap()
                .into_iter()
                .map(|file| {
                    let text = std::fs::read_to_string(&file).unwrap();
                    (
                        file.display().to_string(),
                        serde_json::from_str(&text).unwrap(),
                    )
                })
                .collect();
        assert!(dashboards.len() >= 5);
        assert_eq!(dashboard_problems(&dashboards, &uids), Vec::<String>::new());
        let prometheus = root.join(PROMETHEUS);
        let alerts = std::fs::read_to_string(prometheus.join("alerts.yml")).unwrap();
        let tests: String = files_with_extension(&prometheus.join("tests"), "yml")
            .unwrap()
            .into_iter()
            .map(|file| std::fs::read_to_string(file).unwrap())
            .collect();
        assert_eq!(alert_problems(&root, &alerts, &tests), Vec::<String>::new());
    }
}
