//! The cross-checks on the real docker-compose.yml, and on a small compose file broken one
//! way at a time: each break is rejected with its reason.

use std::path::PathBuf;

use super::*;
use crate::layout::Layout;
use crate::services::{ServiceEntry, StoreKind};

/// A workspace with one service, `widget` (admin port 9150), whose bind mounts are looked up
/// in this repository.
fn workspace() -> Workspace {
    Workspace {
        root: Layout::discover().root().to_path_buf(),
        binaries: [
            "gateway",
            "healthcheck",
            "nats-credentials",
            "widget-service",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect(),
        services: vec![ServiceEntry {
            name: "widget".into(),
            store: StoreKind::Postgres,
            admin_port: 9150,
            description: "Widgets.".into(),
            dev_args: Vec::new(),
        }],
        made_locally: vec![PathBuf::from(".dev/keys")],
    }
}

/// The smallest compose file that agrees with [`workspace`]: a one-shot, a server, a
/// collector that cannot have a health check, the service and the gateway.
const GOOD: &str = r#"
name: test

x-image: &image
  build:
    context: .
  image: emporium:dev

x-urls: &urls
  OTEL_EXPORTER_OTLP_ENDPOINT: http://collector:4318

services:
  credentials:
    <<: *image
    command: ["nats-credentials", "--out", "/keys"]
    volumes:
      - keys:/keys
    healthcheck:
      disable: true

  nats:
    image: nats:2.10-alpine
    volumes:
      - ./infra/nats/nats.conf:/etc/nats/nats.conf:ro
      - keys:/etc/nats/keys:ro
    ports:
      - "127.0.0.1:4222:4222"
    depends_on:
      credentials:
        condition: service_completed_successfully
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8222/healthz"]

  collector:
    image: otel/opentelemetry-collector-contrib:0.153.0
    ports:
      - "127.0.0.1:4318:4318"
    x-no-healthcheck: the image has no shell and no HTTP client

  widget-service:
    <<: *image
    command: ["widget-service"]
    environment:
      <<: *urls
      ADMIN_ADDR: 0.0.0.0:9150
    volumes:
      - ./.dev/keys:/etc/emporium/keys:ro
    ports:
      - "127.0.0.1:9150:9150"
    depends_on:
      nats:
        condition: service_healthy
      collector:
        condition: service_started
    healthcheck:
      test: ["CMD", "healthcheck", "http://127.0.0.1:9150/health/ready"]

  gateway:
    <<: *image
    command: ["gateway"]
    environment:
      <<: *urls
      ADMIN_ADDR: 0.0.0.0:9100
    ports:
      - "127.0.0.1:8080:8080"
    depends_on:
      widget-service:
        condition: service_healthy
    healthcheck:
      test: ["CMD", "healthcheck", "http://127.0.0.1:9100/health/ready"]

volumes:
  keys:
"#;

fn problems_of(text: &str) -> Vec<String> {
    problems(text, &workspace()).unwrap()
}

/// The repository's docker-compose.yml agrees with the repository.
#[test]
fn the_compose_file_agrees_with_the_workspace() {
    let layout = Layout::discover();
    let text = std::fs::read_to_string(layout.root().join("docker-compose.yml")).unwrap();
    let workspace = Workspace::load(&layout).unwrap();
    let problems = problems(&text, &workspace).unwrap();
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn a_compose_file_in_step_has_no_problems() {
    assert_eq!(problems_of(GOOD), Vec::<String>::new());
}

/// Each break of [`GOOD`] (a text replaced once) is rejected with its reason, and for that
/// reason only (once per service the break reaches: an anchor reaches several).
#[test]
fn broken_compose_files_are_rejected_with_the_reason() {
    let cases: &[(&str, &str, &str)] = &[
        // depends_on
        (
            "      collector:\n        condition: service_started\n",
            "      colector:\n        condition: service_started\n",
            "service widget-service: depends on colector, which is not a service",
        ),
        (
            "    depends_on:\n      widget-service:\n        condition: service_healthy\n",
            "    depends_on:\n      - widget-service\n",
            "service gateway: depends on widget-service without a condition",
        ),
        (
            "      collector:\n        condition: service_started\n",
            "      collector:\n        condition: service_healthy\n",
            "service collector: widget-service wait(s) for it to be healthy, but it has no health check",
        ),
        (
            "    depends_on:\n      credentials:\n",
            "    depends_on:\n      widget-service:\n        condition: service_started\n      credentials:\n",
            "depends_on has a cycle: widget-service -> nats -> widget-service",
        ),
        // health checks
        (
            "    x-no-healthcheck: the image has no shell and no HTTP client\n",
            "",
            "service collector: no health check",
        ),
        (
            "    x-no-healthcheck: the image has no shell and no HTTP client\n",
            "    x-no-healthcheck: \" \"\n",
            "service collector: x-no-healthcheck must say why",
        ),
        // volumes and bind mounts
        (
            "      - keys:/etc/nats/keys:ro\n",
            "      - nats-keys:/etc/nats/keys:ro\n",
            "service nats: uses the volume nats-keys, which is not declared",
        ),
        (
            "volumes:\n  keys:\n",
            "volumes:\n  keys:\n  spare:\n",
            "volume spare: declared but no service uses it",
        ),
        (
            "./infra/nats/nats.conf:",
            "./infra/nats/nats.cnf:",
            "service nats: bind-mounts ./infra/nats/nats.cnf, which does not exist in the repository",
        ),
        (
            "./infra/nats/nats.conf:",
            "/var/run/docker.sock:",
            "service nats: bind-mounts /var/run/docker.sock, outside the repository",
        ),
        (
            "./infra/nats/nats.conf:",
            "./infra/../../secrets:",
            "service nats: bind-mounts ./infra/../../secrets, outside the repository",
        ),
        // binaries, traces
        (
            "command: [\"widget-service\"]",
            "command: [\"widgets-service\"]",
            "service widget-service: runs widgets-service, which the workspace does not build into the image",
        ),
        (
            "      test: [\"CMD\", \"healthcheck\", \"http://127.0.0.1:9100/health/ready\"]\n",
            "      test: [\"CMD\", \"curl\", \"-f\", \"http://127.0.0.1:9100/health/ready\"]\n",
            "service gateway: its health check runs curl, which the image does not hold",
        ),
        (
            "  OTEL_EXPORTER_OTLP_ENDPOINT: http://collector:4318\n",
            "  OTEL_EXPORTER_OTLP_ENDPOINT: http://otel:4318\n",
            "OTEL_EXPORTER_OTLP_ENDPOINT points at otel, which is not a service",
        ),
        (
            "    command: [\"gateway\"]\n    environment:\n      <<: *urls\n",
            "    command: [\"gateway\"]\n    environment:\n",
            "service gateway: OTEL_EXPORTER_OTLP_ENDPOINT is not set",
        ),
        // apps/services.toml
        (
            "      ADMIN_ADDR: 0.0.0.0:9150\n",
            "      ADMIN_ADDR: 0.0.0.0:9151\n",
            "service widget-service: ADMIN_ADDR is \"0.0.0.0:9151\", not on its admin port 9150",
        ),
        (
            "\"http://127.0.0.1:9150/health/ready\"",
            "\"http://127.0.0.1:8080/health/ready\"",
            "service widget-service: its health check does not probe its admin port 9150",
        ),
        (
            "    command: [\"gateway\"]\n",
            "    command: [\"healthcheck\"]\n",
            "no service runs the gateway",
        ),
        // ports
        (
            "      - \"127.0.0.1:8080:8080\"\n",
            "      - \"127.0.0.1:4222:8080\"\n",
            "service nats: host port 4222/tcp is already published by gateway",
        ),
        (
            "      - \"127.0.0.1:8080:8080\"\n",
            "      - \"8080:8080\"\n",
            "service gateway: publishes port 8080 on every address; publish it on 127.0.0.1 only",
        ),
        (
            "      - \"127.0.0.1:8080:8080\"\n",
            "      - target: 8080\n        published: \"4318\"\n        host_ip: 127.0.0.1\n",
            "service gateway: host port 4318/tcp is already published by collector",
        ),
        // images
        (
            "image: nats:2.10-alpine",
            "image: nats",
            "service nats: image nats has no tag",
        ),
        (
            "image: otel/opentelemetry-collector-contrib:0.153.0",
            "image: otel/opentelemetry-collector-contrib:latest",
            "image otel/opentelemetry-collector-contrib:latest is tagged latest",
        ),
    ];
    for (from, to, reason) in cases {
        assert_eq!(
            GOOD.matches(from).count(),
            1,
            "{from:?} is not in the good file once"
        );
        let broken = GOOD.replacen(from, to, 1);
        let problems = problems_of(&broken);
        assert!(
            !problems.is_empty() && problems.iter().all(|problem| problem.contains(reason)),
            "{from:?} -> {to:?}: expected {reason:?} only, got {problems:#?}"
        );
    }
}

#[test]
fn a_missing_service_of_the_list_is_named() {
    let mut workspace = workspace();
    workspace.services.push(ServiceEntry {
        name: "gadget".into(),
        store: StoreKind::Redis,
        admin_port: 9151,
        description: "Gadgets.".into(),
        dev_args: Vec::new(),
    });
    assert_eq!(
        problems(GOOD, &workspace).unwrap(),
        [
            "apps/services.toml: service gadget-service is not in docker-compose.yml (run `cargo xtask sync-services`)"
        ]
    );
}

#[test]
fn digests_and_registry_ports_are_read_right() {
    assert_eq!(unpinned("localhost:5000/emporium"), Some("has no tag"));
    assert_eq!(unpinned("localhost:5000/emporium:1.2"), None);
    assert_eq!(unpinned("nats@sha256:0123"), None);
    assert_eq!(unpinned("nats:"), Some("has an empty tag"));
}

#[test]
fn port_forms_are_read_right() {
    let short = |text: &str| published(&Value::String(text.into()));
    assert!(short("8080").is_empty(), "the container port only");
    assert!(
        short("127.0.0.1::8080").is_empty(),
        "an ephemeral host port"
    );
    let range = short("127.0.0.1:8000-8002:8000-8002/udp");
    assert_eq!(
        range.iter().map(|p| p.port.as_str()).collect::<Vec<_>>(),
        ["8000", "8001", "8002"]
    );
    assert!(
        range
            .iter()
            .all(|p| p.protocol == "udp" && p.host_ip == "127.0.0.1")
    );
    let v6 = short("[::1]:8080:80");
    assert_eq!(v6.len(), 1);
    assert_eq!(
        (v6[0].host_ip.as_str(), v6[0].port.as_str()),
        ("::1", "8080")
    );
}

#[test]
fn text_that_is_not_a_compose_file_is_an_error() {
    assert!(problems("services: [", &workspace()).is_err());
    assert!(problems("services:\n  a:\n    ports: 3\n", &workspace()).is_err());
    // Compose refuses a key given twice; so does the check, rather than keep one of them.
    let twice = "services:\n  a:\n    image: a:1\n  a:\n    image: b:1\n";
    assert!(problems(twice, &workspace()).is_err());
}
