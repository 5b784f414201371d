//! One checkout is one trace, across processes: the gateway, order, product, payment and
//! notification run as their binaries, each exporting its spans over OTLP to a receiver of the
//! test's, and the test follows the parent links from the HTTP request through the saga's steps,
//! the calls they make and the events they publish, to the notification's consumer.
//!
//! The services' binaries are built first, with the features `make test` (`cargo test
//! --workspace --all-features`) resolves, so that under it the build finds them up to date;
//! the gateway's is the one this package builds for its tests.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use testkit::{
    Companion, NatsServer, OtlpReceiver, ReceivedSpan, RedisServer, SpanKind, TestDatabase,
};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

/// The services run as processes here, by package (and binary) name.
const SERVICE_BINARIES: [&str; 4] = [
    "product-service",
    "payment-service",
    "order-service",
    "notification-service",
];

/// The workspace root: the gateway lives at `<root>/gateway`.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the gateway is one level below the workspace root")
        .to_path_buf()
}

/// Builds the services' binaries (a no-op when they are up to date) and returns the directory
/// they are in: the one this test binary was built into (`target/debug`). The whole workspace
/// with all features decides the dependencies' features, as in `make test`, so this neither
/// rebuilds them with other features nor replaces binaries `make test` has just built.
fn build_services() -> PathBuf {
    let mut command = std::process::Command::new(env!("CARGO"));
    command.current_dir(workspace_root()).args([
        "build",
        "--quiet",
        "--workspace",
        "--all-features",
    ]);
    for package in SERVICE_BINARIES {
        command.args(["--bin", package]);
    }
    let status = command.status().expect("running cargo build");
    assert!(status.success(), "building the services failed: {status}");
    let test_binary = std::env::current_exe().expect("the test binary's path");
    // target/debug/deps/it-<hash> -> target/debug
    test_binary
        .parent()
        .and_then(Path::parent)
        .expect("the test binary is in <target>/<profile>/deps")
        .to_path_buf()
}

/// A platform binary running as a child process, exporting traces to the test's receiver;
/// killed when dropped. Its log lines are kept to explain a failure.
struct Process {
    name: &'static str,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Process {
    fn start(name: &'static str, binary: &Path, args: &[String], otlp: &OtlpReceiver) -> Self {
        let mut child = Command::new(binary)
            .args(args)
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.endpoint())
            // Spans leave in batches every 100 ms instead of every 5 s.
            .env("OTEL_BSP_SCHEDULE_DELAY", "100")
            .env("RUST_LOG", "warn")
            .env("LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("piped stderr");
        let lines = log.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                lines.lock().unwrap().push(line);
            }
        });
        Self { name, child, log }
    }

    /// Panics with the process' log when it has exited.
    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited ({status}):\n{}",
                self.name,
                self.log.lock().unwrap().join("\n")
            );
        }
    }
}

/// What every binary takes: its NATS identity and a free admin port.
fn common_args(nats: &NatsServer, identity: &str) -> Vec<String> {
    let seed = nats
        .credentials()
        .seed_file(identity)
        .unwrap_or_else(|| panic!("{identity} is no NATS identity of the platform"));
    vec![
        "--nats-url".into(),
        nats.url().into(),
        "--nats-nkey-file".into(),
        seed.display().to_string(),
        "--admin-addr".into(),
        "127.0.0.1:0".into(),
    ]
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("picking a free port")
        .port()
}

/// The platform of this test: the services a checkout needs, the traced ones as processes.
struct TracedPlatform {
    address: String,
    http: reqwest::Client,
    signing_key: tokens::SigningKey,
    receiver: OtlpReceiver,
    processes: Vec<Process>,
    _companions: Vec<Companion>,
    _smtp: testkit::SmtpServer,
    _databases: Vec<TestDatabase>,
    _jwks: KeyFile,
    _redis: RedisServer,
    _nats: NatsServer,
}

struct KeyFile(PathBuf);

impl Drop for KeyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl TracedPlatform {
    async fn spawn() -> Self {
        telemetry::init_for_tests();
        let bin_dir = tokio::task::spawn_blocking(build_services)
            .await
            .expect("building the services");
        let receiver = OtlpReceiver::start().await.expect("starting the receiver");
        let nats = NatsServer::start().await.expect("starting nats-server");
        let redis = RedisServer::start().await.expect("starting redis");
        let smtp = testkit::SmtpServer::start()
            .await
            .expect("starting the SMTP server");

        // Untraced, in this process: what the checkout calls beside the traced services. They
        // export nothing, and forward the trace context they are given unchanged.
        let mut companions = Vec::new();
        companions.push(Companion::start(&nats, shop_service::start, |_| {}).await);
        companions.push(Companion::start(&nats, address_service::start, |_| {}).await);
        companions.push(Companion::start(&nats, voucher_service::start, |_| {}).await);
        companions.push(Companion::start(&nats, cart_service::start, |_| {}).await);
        companions.push(Companion::start(&nats, settings_service::start, |_| {}).await);

        let mut databases = Vec::new();
        let mut processes = Vec::new();
        let operator = nats.connect().await;
        for package in SERVICE_BINARIES {
            let identity = package.trim_end_matches("-service");
            let database = testkit::fresh_database().await.expect("a database");
            let mut args = common_args(&nats, identity);
            args.extend(["--database-url".into(), database.url().to_owned()]);
            match identity {
                "product" => args.extend(["--redis-url".into(), redis.url().to_owned()]),
                "order" => args.extend(["--saga-poll-ms".into(), "50".into()]),
                "notification" => args.extend([
                    "--smtp-url".into(),
                    smtp.url(),
                    "--public-base-url".into(),
                    "https://shop.example/".into(),
                    "--email-poll-ms".into(),
                    "50".into(),
                ]),
                _ => {}
            }
            let mut process = Process::start(package, &bin_dir.join(package), &args, &receiver);
            tokio::time::timeout(
                Duration::from_secs(30),
                testkit::wait_until_answering(&operator, identity),
            )
            .await
            .unwrap_or_else(|_| {
                process.assert_running();
                panic!("{package} does not answer after 30 s")
            });
            process.assert_running();
            processes.push(process);
            databases.push(database);
        }

        let signing_key = tokens::SigningKey::generate("traces-1");
        let jwks = KeyFile(
            std::env::temp_dir().join(format!("traces-jwks-{}.json", uuid::Uuid::now_v7())),
        );
        std::fs::write(
            &jwks.0,
            serde_json::to_vec(&signing_key.jwks()).expect("the key set as JSON"),
        )
        .expect("writing the key set");
        let port = free_port();
        let mut args = common_args(&nats, "gateway");
        args.extend([
            "--bind".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
            "--redis-url".into(),
            redis.url().to_owned(),
            "--jwt-jwks-file".into(),
            jwks.0.display().to_string(),
        ]);
        let mut gateway = Process::start(
            "gateway",
            Path::new(env!("CARGO_BIN_EXE_gateway")),
            &args,
            &receiver,
        );
        let started = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            gateway.assert_running();
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the gateway does not listen after 30 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        processes.push(gateway);

        Self {
            address: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            signing_key,
            receiver,
            processes,
            _companions: companions,
            _smtp: smtp,
            _databases: databases,
            _jwks: jwks,
            _redis: redis,
            _nats: nats,
        }
    }

    fn token(&self, roles: &[&str]) -> String {
        self.signing_key.mint(
            &uuid::Uuid::now_v7().to_string(),
            roles,
            Duration::from_secs(300),
            tokens::DEFAULT_ISSUER,
            tokens::DEFAULT_AUDIENCE,
        )
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Value,
        token: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(token)
            .json(&body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value, token: &str) -> (StatusCode, Value) {
        let (status, body) = self.send(Method::POST, path, body, token, &[]).await;
        assert!(status.is_success(), "POST {path}: {status} {body}");
        (status, body)
    }
}

fn id(value: &Value) -> String {
    value["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {value}"))
        .to_owned()
}

/// Spans of `trace` by span id.
fn by_id(trace: &[ReceivedSpan]) -> HashMap<&str, &ReceivedSpan> {
    trace.iter().map(|s| (s.span_id.as_str(), s)).collect()
}

/// `span`'s ancestors, nearest first, as far as the trace has them.
fn ancestors<'a>(
    span: &'a ReceivedSpan,
    index: &HashMap<&str, &'a ReceivedSpan>,
) -> Vec<&'a ReceivedSpan> {
    let mut chain = Vec::new();
    let mut current = span;
    while let Some(parent) = index.get(current.parent_span_id.as_str()) {
        chain.push(*parent);
        current = parent;
        assert!(chain.len() < 100, "a cycle of parents above {}", span.name);
    }
    chain
}

fn find<'a>(
    trace: &'a [ReceivedSpan],
    service: &str,
    name: &str,
    kind: SpanKind,
) -> &'a ReceivedSpan {
    trace
        .iter()
        .find(|s| s.service_name == service && s.name == name && s.kind == kind)
        .unwrap_or_else(|| {
            let seen: Vec<String> = trace
                .iter()
                .map(|s| format!("{}: {} ({:?})", s.service_name, s.name, s.kind))
                .collect();
            panic!("no {kind:?} span {name:?} of {service} in the trace: {seen:#?}")
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_is_one_trace_from_the_http_request_to_the_notification() {
    let mut platform = TracedPlatform::spawn().await;

    // A seller's approved shop with a lamp; a customer with an address, a card and the lamp in
    // the cart.
    let seller = platform.token(&[rpc::roles::SELLER]);
    let admin = platform.token(&[rpc::roles::ADMIN]);
    let slug = format!("shop-{}", uuid::Uuid::now_v7().simple());
    let (_, shop) = platform
        .post(
            "/api/v1/shops",
            json!({"name": slug, "slug": slug, "contact_email": "s@shops.example", "currency": "USD"}),
            &seller,
        )
        .await;
    let shop_id = id(&shop);
    platform
        .post(
            &format!("/api/v1/admin/shops/{shop_id}/approve"),
            json!({}),
            &admin,
        )
        .await;
    let (_, product) = platform
        .post(
            "/api/v1/products",
            json!({
                "shop_id": shop_id, "name": "Lamp",
                "price": {"minor_units": 2500, "currency": "USD"}, "initial_stock": 5,
            }),
            &seller,
        )
        .await;
    let customer = platform.token(&[]);
    let (_, address) = platform
        .post(
            "/api/v1/addresses",
            json!({
                "recipient_name": "Ada Lovelace", "line1": "1 Market Street",
                "city": "San Francisco", "postal_code": "94105", "country_code": "US",
            }),
            &customer,
        )
        .await;
    let (_, card) = platform
        .post(
            "/api/v1/payment-methods",
            json!({"card_number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}),
            &customer,
        )
        .await;
    let (status, cart) = platform
        .send(
            Method::PUT,
            &format!("/api/v1/cart/items/{}", id(&product)),
            json!({"quantity": 1}),
            &customer,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cart}");

    let (status, answer) = platform
        .send(
            Method::POST,
            "/api/v1/checkout",
            json!({"shipping_address_id": id(&address), "payment_method_id": id(&card)}),
            &customer,
            &[("Idempotency-Key", "traced-checkout")],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["order"]["status"], "paid", "{answer}");

    // The checkout's trace: the one of the gateway's span for POST /api/v1/checkout. Complete
    // once the notification service has consumed the order's payment.
    const CHECKOUT: &str = "POST /api/v1/checkout";
    let trace_of_checkout = |spans: &[ReceivedSpan]| -> Vec<ReceivedSpan> {
        let Some(root) = spans
            .iter()
            .find(|s| s.service_name == "gateway" && s.name == CHECKOUT)
        else {
            return Vec::new();
        };
        spans
            .iter()
            .filter(|s| s.trace_id == root.trace_id)
            .cloned()
            .collect()
    };
    platform
        .receiver
        .wait_for(
            |spans| {
                trace_of_checkout(spans)
                    .iter()
                    .any(|s| s.service_name == "notification" && s.name == "process order.paid")
            },
            Duration::from_secs(30),
        )
        .await
        .unwrap_or_else(|spans| {
            let names: BTreeSet<String> = spans
                .iter()
                .map(|s| format!("{}: {}", s.service_name, s.name))
                .collect();
            panic!("the checkout's trace never reached the notification; spans: {names:#?}")
        });
    // Give the processes another batch to send what they finished meanwhile.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let spans = platform.receiver.spans();
    let trace = trace_of_checkout(&spans);
    let index = by_id(&trace);

    // The HTTP server span, after the HTTP semantic conventions, is the root.
    let http = find(&trace, "gateway", CHECKOUT, SpanKind::Server);
    assert!(http.is_root(), "the client sent no trace context");
    assert_eq!(http.attribute("http.request.method"), Some("POST"));
    assert_eq!(http.attribute("http.route"), Some("/api/v1/checkout"));
    assert_eq!(http.attribute("url.path"), Some("/api/v1/checkout"));
    assert_eq!(http.attribute("url.scheme"), Some("http"));
    assert_eq!(http.attribute("http.response.status_code"), Some("201"));
    assert_eq!(
        http.service_version.as_deref(),
        Some(env!("CARGO_PKG_VERSION"))
    );

    // The gateway's request to the order service, and the order service's answer to it.
    let send = find(&trace, "gateway", "send order.checkout", SpanKind::Client);
    assert_eq!(send.parent_span_id, http.span_id);
    assert_eq!(send.attribute("messaging.system"), Some("nats"));
    assert_eq!(
        send.attribute("messaging.destination.name"),
        Some("order.checkout")
    );
    assert_eq!(send.attribute("messaging.operation.type"), Some("send"));
    let process = find(&trace, "order", "process order.checkout", SpanKind::Server);
    assert_eq!(process.parent_span_id, send.span_id);
    assert_eq!(process.attribute("rpc.service"), Some("order"));
    assert_eq!(process.attribute("rpc.method"), Some("checkout"));
    assert_eq!(
        process.attribute("messaging.operation.type"),
        Some("process")
    );

    // The saga's steps are children of the request that created the saga, though they run in
    // tasks of their own; the calls they make are theirs.
    let reserve = find(
        &trace,
        "order",
        "checkout reserve_stock",
        SpanKind::Internal,
    );
    assert_eq!(reserve.parent_span_id, process.span_id);
    let reserve_call = find(
        &trace,
        "order",
        "send product.reserve_stock",
        SpanKind::Client,
    );
    assert_eq!(reserve_call.parent_span_id, reserve.span_id);
    let reserved = find(
        &trace,
        "product",
        "process product.reserve_stock",
        SpanKind::Server,
    );
    assert_eq!(reserved.parent_span_id, reserve_call.span_id);
    let authorize = find(
        &trace,
        "order",
        "checkout authorize_payment",
        SpanKind::Internal,
    );
    assert_eq!(authorize.parent_span_id, process.span_id);
    let authorize_call = find(
        &trace,
        "order",
        "send payment.authorize_payment",
        SpanKind::Client,
    );
    assert_eq!(authorize_call.parent_span_id, authorize.span_id);
    let authorized = find(
        &trace,
        "payment",
        "process payment.authorize_payment",
        SpanKind::Server,
    );
    assert_eq!(authorized.parent_span_id, authorize_call.span_id);
    let capture = find(
        &trace,
        "order",
        "checkout capture_payment",
        SpanKind::Internal,
    );
    let captured = find(
        &trace,
        "payment",
        "process payment.capture_payment",
        SpanKind::Server,
    );
    assert!(
        ancestors(captured, &index)
            .iter()
            .any(|a| a.span_id == capture.span_id),
        "the capture is not below the capture_payment step"
    );

    // The order's payment, recorded by the mark_paid step (its outbox row keeps the step's
    // context), published by the order service's relay and consumed by the notification
    // service.
    let mark_paid = find(&trace, "order", "checkout mark_paid", SpanKind::Internal);
    assert_eq!(mark_paid.parent_span_id, process.span_id);
    let published = find(&trace, "order", "send order.paid", SpanKind::Producer);
    assert_eq!(published.parent_span_id, mark_paid.span_id);
    assert_eq!(published.attribute("messaging.system"), Some("nats"));
    assert!(
        published
            .attribute("messaging.destination.name")
            .is_some_and(|subject| subject.ends_with(".paid")),
        "{published:?}"
    );
    let consumed = find(
        &trace,
        "notification",
        "process order.paid",
        SpanKind::Consumer,
    );
    assert_eq!(consumed.parent_span_id, published.span_id);
    assert_eq!(
        consumed.attribute("messaging.destination.name"),
        published.attribute("messaging.destination.name")
    );
    let chain = ancestors(consumed, &index);
    assert_eq!(
        chain.last().map(|root| root.span_id.as_str()),
        Some(http.span_id.as_str()),
        "the consumer's ancestors end at the HTTP request: {:?}",
        chain.iter().map(|s| &s.name).collect::<Vec<_>>()
    );

    // No broken links: every parent is in the trace, and one trace spans the services.
    for span in &trace {
        assert!(
            span.is_root() || index.contains_key(span.parent_span_id.as_str()),
            "the parent of {}: {} is not in the trace",
            span.service_name,
            span.name
        );
    }
    assert_eq!(trace.iter().filter(|s| s.is_root()).count(), 1);
    let services: BTreeSet<&str> = trace.iter().map(|s| s.service_name.as_str()).collect();
    for service in ["gateway", "order", "product", "payment", "notification"] {
        assert!(services.contains(service), "{service} not in {services:?}");
    }
    // Every name follows the scheme: HTTP `{method} {route}`, `send|process <subject>` for
    // requests and events, `<saga> <step>` for steps.
    for span in &trace {
        let ok = match span.kind {
            SpanKind::Server if span.service_name == "gateway" => span.name == CHECKOUT,
            SpanKind::Server | SpanKind::Consumer => span.name.starts_with("process "),
            SpanKind::Client | SpanKind::Producer => span.name.starts_with("send "),
            SpanKind::Internal => span.name.starts_with("checkout "),
            SpanKind::Unspecified => false,
        };
        assert!(
            ok,
            "{} ({:?}) of {}",
            span.name, span.kind, span.service_name
        );
    }

    for process in &mut platform.processes {
        process.assert_running();
    }
}
