//! Telemetry for every binary: logs, traces, metrics and the admin HTTP port.
//!
//! A binary calls [`init`] once at start-up (logs as JSON or human-readable text, traces
//! exported over OTLP/HTTP when a collector is configured), serves [`admin::AdminServer`] for
//! health checks and Prometheus scrapes, and waits on [`shutdown_signal`].
//!
//! # Logging policy
//!
//! Logging every request costs more than anything else our code does per request, so:
//! - The per-request spans (`rpc.server`, `rpc.client`, the gateway's `http.request`) and the
//!   per-request "request served" lines are DEBUG events with the target [`REQUEST_TARGET`].
//!   At the default `info` filter they are never formatted; `RUST_LOG=info,emporium::request=debug`
//!   turns them on in the logs.
//! - A saga step's span and an event consumer's span are INFO under [`REQUEST_TARGET`]: in the
//!   logs at the usual `info`, and exported whatever the log filter, so a trace keeps its
//!   steps and consumers when the logs are turned down to `warn`.
//! - Failures are still logged where operators look: `internal` errors at ERROR, service-side
//!   failures (`unavailable`, `deadline_exceeded`, HTTP 5xx) at WARN and slow requests at INFO,
//!   each line carrying the request id, method and latency itself, because the request span it
//!   happens in is usually not in the logs.
//! - When an OTLP exporter is configured, the exporter gets the request spans anyway: the log
//!   filter applies to the log output only, and the exporter has its own filter, the log filter
//!   plus `emporium::request=debug` (see [`init`]).
//!
//! It must never know about any particular service, route or business rule; it only offers the
//! plumbing. The admin server is the one HTTP listener outside the gateway and must stay that
//! small: health and metrics, nothing a client of the platform calls.
pub mod admin;
pub mod propagation;

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;

/// How logs are written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Pretty on a terminal, JSON otherwise.
    #[default]
    Auto,
    Json,
    Pretty,
}

/// Logging and tracing settings, flattened into every binary's config.
#[derive(clap::Args, Clone, Debug)]
pub struct TelemetryArgs {
    #[arg(long = "log-format", env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,
    /// A tracing-subscriber filter: "info", "product_service=debug,info", ...
    #[arg(long = "log-filter", env = "RUST_LOG", default_value = "info")]
    pub log_filter: String,
    /// OTLP/HTTP endpoint of an OpenTelemetry collector; traces are exported only when set.
    #[arg(long = "otlp-endpoint", env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
}

/// The tracing target of per-request spans and "request served" lines, which are DEBUG: see
/// the logging policy in the crate documentation. Written as
/// `tracing::debug_span!(target: telemetry::REQUEST_TARGET, "rpc.server", ...)`.
pub const REQUEST_TARGET: &str = "emporium::request";

/// Set once the process-wide subscriber has been installed by [`init`].
static INITIALISED: AtomicBool = AtomicBool::new(false);

/// Keeps the trace pipeline alive; dropping it flushes the spans still queued and shuts the
/// exporter down. Hold it in `main` until the service has stopped. The drop blocks the calling
/// thread while the last batch is sent (at most the exporter's 5 s timeout).
#[must_use = "dropping the guard shuts the trace exporter down"]
pub struct TelemetryGuard {
    tracer_provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.tracer_provider.take()
            && let Err(error) = provider.shutdown()
        {
            // The subscriber may already be gone at this point, so say it where it will be seen.
            eprintln!("flushing traces at shutdown failed: {error}");
        }
    }
}

/// Installs the process-wide logging and tracing set-up and the Prometheus recorder.
///
/// Logs go to stderr, as JSON (one object per line, event fields flattened, the current span's
/// fields under `span`, RFC 3339 UTC timestamps) or as human-readable lines. When
/// `args.otlp_endpoint` is set, spans are exported over OTLP/HTTP (protobuf) with
/// `service.name` = `service_name` without its `-service` suffix, and `service.version`. The
/// W3C trace-context propagator is installed globally either way. The batch processor takes
/// its settings from the standard `OTEL_BSP_*` variables (`OTEL_BSP_SCHEDULE_DELAY`, ...).
///
/// The log filter (`args.log_filter`) applies to the log output only. The exporter has a filter
/// of its own, the log filter plus `emporium::request=debug`, so request spans reach it while
/// the logs stay free of them.
///
/// Call it once per process; a second call returns an error and changes nothing.
pub fn init(service_name: &'static str, args: &TelemetryArgs) -> anyhow::Result<TelemetryGuard> {
    if INITIALISED.swap(true, Ordering::SeqCst) {
        anyhow::bail!("telemetry is already initialised in this process");
    }
    let result = install(service_name, args);
    if result.is_err() {
        INITIALISED.store(false, Ordering::SeqCst);
    }
    result
}

fn install(service_name: &'static str, args: &TelemetryArgs) -> anyhow::Result<TelemetryGuard> {
    let filter = log_filter(&args.log_filter)?;

    let json = match args.log_format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let fmt_layer = if json {
        json_layer(std::io::stderr).boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .boxed()
    };

    let export_filter = export_filter(&args.log_filter)?;
    let tracer_provider = args
        .otlp_endpoint
        .as_deref()
        .map(|endpoint| tracer_provider(service_name, endpoint))
        .transpose()?;
    let otel_layer = tracer_provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(service_name))
            .with_filter(export_filter)
    });

    // Per-layer filters: a span only the exporter wants is never formatted by the log layer.
    let installed = tracing_subscriber::registry()
        .with(fmt_layer.with_filter(filter))
        .with(otel_layer)
        .try_init();
    if let Err(error) = installed {
        if let Some(provider) = &tracer_provider {
            let _ = provider.shutdown();
        }
        return Err(anyhow::anyhow!(
            "a global tracing subscriber is already installed: {error}"
        ));
    }

    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    if let Some(provider) = &tracer_provider {
        opentelemetry::global::set_tracer_provider(provider.clone());
    }
    // Installing the recorder now means counters recorded before the first scrape are kept.
    let _ = SERVICE_LABEL.set(service_label(service_name));
    let _ = metrics();

    tracing::debug!(
        service = service_name,
        traces_exported = tracer_provider.is_some(),
        "telemetry initialised"
    );
    Ok(TelemetryGuard { tracer_provider })
}

/// The filter of the log output: exactly what the operator asked for.
fn log_filter(directives: &str) -> anyhow::Result<EnvFilter> {
    EnvFilter::try_new(directives).with_context(|| format!("invalid log filter {directives:?}"))
}

/// The filter of the trace exporter: the log filter, plus the per-request spans, which are
/// DEBUG so that the log output skips them at the usual `info`.
fn export_filter(log_directives: &str) -> anyhow::Result<EnvFilter> {
    let request_spans = format!("{REQUEST_TARGET}=debug")
        .parse()
        .context("the request spans' filter directive")?;
    Ok(log_filter(log_directives)?.add_directive(request_spans))
}

/// The JSON log layer: one object per line, event fields at the top level, the current span's
/// fields under `span`, the target, and an RFC 3339 UTC timestamp.
fn json_layer<S, W>(writer: W) -> impl Layer<S> + Send + Sync + 'static
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span>,
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(true)
        .with_timer(tracing_subscriber::fmt::time::SystemTime)
        .with_writer(writer)
}

/// The OTLP collector URL of the trace signal. `OTEL_EXPORTER_OTLP_ENDPOINT` is a base URL by
/// the OpenTelemetry specification (`http://collector:4318`), while the exporter takes the
/// endpoint as given, so the signal path is appended unless it is already there.
fn traces_url(endpoint: &str) -> String {
    const TRACES_PATH: &str = "/v1/traces";
    let endpoint = endpoint.trim_end_matches('/');
    if endpoint.ends_with(TRACES_PATH) {
        endpoint.to_owned()
    } else {
        format!("{endpoint}{TRACES_PATH}")
    }
}

fn tracer_provider(
    service_name: &'static str,
    endpoint: &str,
) -> anyhow::Result<SdkTracerProvider> {
    // The exporter uses reqwest's blocking client: the SDK's batch processor exports from its
    // own thread, outside any Tokio runtime, which an async client cannot run on.
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(traces_url(endpoint))
        .with_timeout(Duration::from_secs(5))
        .build()
        .context("building the OTLP span exporter")?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource(service_name))
        .build())
}

/// The resource every exported span carries: `service.name`, the binary's service as NATS
/// subjects name it (`order` for `order-service`, `gateway`), and `service.version` (the
/// workspace's version, which every crate shares).
fn resource(service_name: &'static str) -> Resource {
    Resource::builder()
        .with_service_name(service_label(service_name))
        .with_attribute(KeyValue::new(SERVICE_VERSION, env!("CARGO_PKG_VERSION")))
        .build()
}

/// The resource attribute naming the version of the service.
const SERVICE_VERSION: &str = "service.version";

/// Logging for tests: written through the test harness' capture, filtered by `RUST_LOG` or
/// "warn". Safe to call from every test; only the first call in a process installs anything.
pub fn init_for_tests() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}

/// Upper bounds (seconds) of the histogram buckets of every metric whose name ends in
/// `_seconds`: request latencies from half a millisecond to ten seconds.
const LATENCY_BUCKETS_SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How often the recorder drains histogram samples into its summaries.
const METRICS_UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The `service` label [`init`] gives every metric of the process, so that dashboards and
/// alert rules select a service by the series themselves, whatever labels the scraper adds.
static SERVICE_LABEL: OnceLock<String> = OnceLock::new();

/// The `service` label of a binary: its service's name as in NATS subjects (`product` for
/// `product-service`, `gift_card` for `gift-card-service`), or the binary's name (`gateway`).
fn service_label(service_name: &str) -> String {
    service_name
        .strip_suffix("-service")
        .unwrap_or(service_name)
        .replace('-', "_")
}

/// The Prometheus recorder's handle; `render()` is the text a scrape of /metrics returns.
///
/// Every series carries the `service` label of the binary when [`init`] ran first.
///
/// The first call installs the recorder as the process-wide `metrics` recorder and starts a
/// small thread that runs its periodic upkeep; later calls return clones of the same handle, so
/// any number of tests in one process may call it. If some other recorder was installed first,
/// the handle still renders, but nothing recorded through the `metrics` macros reaches it (a
/// warning says so).
pub fn metrics() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let mut builder = PrometheusBuilder::new();
            if let Some(service) = SERVICE_LABEL.get() {
                builder = builder.add_global_label("service", service);
            }
            let builder = builder
                .set_buckets_for_metric(
                    Matcher::Suffix("_seconds".to_owned()),
                    LATENCY_BUCKETS_SECONDS,
                )
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if let Err(error) = metrics::set_global_recorder(recorder) {
                tracing::warn!(%error, "another metrics recorder is installed; /metrics will not see recorded metrics");
            }
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".to_owned())
                .spawn(move || {
                    loop {
                        std::thread::sleep(METRICS_UPKEEP_INTERVAL);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(error) = spawned {
                tracing::warn!(%error, "could not start the metrics upkeep thread");
            }
            handle
        })
        .clone()
}

/// Completes when the process receives SIGTERM (orchestrators) or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};

    async fn wait_for(kind: SignalKind, name: &'static str) {
        match signal(kind) {
            Ok(mut stream) => {
                stream.recv().await;
                tracing::info!(signal = name, "shutdown signal received");
            }
            Err(error) => {
                tracing::error!(%error, signal = name, "cannot listen for the signal");
                std::future::pending::<()>().await;
            }
        }
    }

    tokio::select! {
        () = wait_for(SignalKind::terminate(), "SIGTERM") => {}
        () = wait_for(SignalKind::interrupt(), "SIGINT") => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_service_label_is_the_name_in_nats_subjects() {
        assert_eq!(service_label("product-service"), "product");
        assert_eq!(service_label("gift-card-service"), "gift_card");
        assert_eq!(service_label("gateway"), "gateway");
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;

        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    #[test]
    fn json_logs_flatten_event_fields_and_carry_the_current_span() {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::registry().with(json_layer(buffer.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("handle_request", request_id = "r-1");
            let _entered = span.enter();
            tracing::info!(product_id = 42, "product loaded");
        });

        let output = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(output.trim()).unwrap();
        assert_eq!(line["message"], "product loaded");
        assert_eq!(line["product_id"], 42);
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["target"], module_path!());
        assert_eq!(line["span"]["name"], "handle_request");
        assert_eq!(line["span"]["request_id"], "r-1");
        let timestamp = line["timestamp"].as_str().unwrap();
        assert!(timestamp.ends_with('Z'), "not UTC: {timestamp}");
        assert_eq!(&timestamp[4..5], "-");
        assert_eq!(&timestamp[10..11], "T");
    }

    /// Stands in for the OpenTelemetry layer: remembers the name of every span it is given.
    #[derive(Clone, Default)]
    struct SpanNames(Arc<Mutex<Vec<String>>>);

    impl<S: tracing::Subscriber> Layer<S> for SpanNames {
        fn on_new_span(
            &self,
            attrs: &tracing::span::Attributes<'_>,
            _id: &tracing::span::Id,
            _ctx: tracing_subscriber::layer::Context<'_, S>,
        ) {
            self.0
                .lock()
                .unwrap()
                .push(attrs.metadata().name().to_owned());
        }
    }

    #[test]
    fn request_spans_reach_the_exporter_but_not_the_logs_at_info() {
        let logs = Buffer::default();
        let exported = SpanNames::default();
        let subscriber = tracing_subscriber::registry()
            .with(json_layer(logs.clone()).with_filter(log_filter("info").unwrap()))
            .with(exported.clone().with_filter(export_filter("info").unwrap()));
        tracing::subscriber::with_default(subscriber, || {
            let request =
                tracing::debug_span!(target: REQUEST_TARGET, "rpc.server", request_id = "r-1");
            let _entered = request.enter();
            tracing::debug!(target: REQUEST_TARGET, "request served");
            tracing::info_span!("load_product").in_scope(|| {
                tracing::warn!("slow query");
            });
            tracing::debug_span!("internal_detail").in_scope(|| {});
        });

        assert_eq!(
            *exported.0.lock().unwrap(),
            ["rpc.server", "load_product"],
            "the exporter gets the request span and what the log filter admits, nothing else"
        );
        let output = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = output
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 1, "only the warning is logged: {output}");
        assert_eq!(lines[0]["message"], "slow query");
        assert_eq!(lines[0]["span"]["name"], "load_product");
        assert!(
            !output.contains("r-1"),
            "the request span is not formatted: {output}"
        );
    }

    #[test]
    fn request_spans_are_logged_when_the_filter_asks_for_them() {
        let logs = Buffer::default();
        let filter = log_filter("info,emporium::request=debug").unwrap();
        let subscriber =
            tracing_subscriber::registry().with(json_layer(logs.clone()).with_filter(filter));
        tracing::subscriber::with_default(subscriber, || {
            let request =
                tracing::debug_span!(target: REQUEST_TARGET, "rpc.server", request_id = "r-2");
            let _entered = request.enter();
            tracing::debug!(target: REQUEST_TARGET, "request served");
        });
        let output = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(output.trim()).unwrap();
        assert_eq!(line["message"], "request served");
        assert_eq!(line["span"]["request_id"], "r-2");
    }

    #[test]
    fn the_traces_path_is_appended_to_a_base_endpoint_once() {
        assert_eq!(
            traces_url("http://collector:4318"),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://collector:4318/"),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://collector:4318/v1/traces"),
            "http://collector:4318/v1/traces"
        );
    }

    #[test]
    fn init_after_the_test_subscriber_is_an_error_not_a_panic() {
        init_for_tests();
        init_for_tests();
        let args = TelemetryArgs {
            log_format: LogFormat::Json,
            log_filter: "info".to_owned(),
            otlp_endpoint: None,
        };
        assert!(init("unit-test", &args).is_err());
        assert!(init("unit-test", &args).is_err());
    }

    #[test]
    fn an_invalid_log_filter_is_reported() {
        let args = TelemetryArgs {
            log_format: LogFormat::Json,
            log_filter: "product_service=loud".to_owned(),
            otlp_endpoint: None,
        };
        let error = install("unit-test", &args)
            .err()
            .expect("the filter is invalid");
        assert!(
            format!("{error:#}").contains("invalid log filter"),
            "{error:#}"
        );
    }
}
