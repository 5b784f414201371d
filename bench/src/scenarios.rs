//! The scenarios of `make bench`. Each returns its measurements; [`crate::report`] turns
//! them into the table and the target checks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::ensure;
use api::product::{
    GetAvailabilityRequest, GetProductRequest, ProductClient, ReleaseReservationRequest,
    ReservationItem, ReserveStockRequest, methods,
};
use async_nats::HeaderMap;
use bytes::Bytes;
use futures::StreamExt as _;
use serde::Serialize;

use crate::Options;
use crate::http::{self, HttpWorker, RequestSet};
use crate::load::{self, LoadResult, Worker};
use crate::platform::{self, Platform};

/// The run with the median throughput, and every run's throughput.
pub(crate) fn median(mut runs: Vec<LoadResult>) -> (LoadResult, Vec<f64>) {
    let throughputs = runs.iter().map(|r| r.throughput_per_second).collect();
    runs.sort_by(|a, b| a.throughput_per_second.total_cmp(&b.throughput_per_second));
    let middle = runs.swap_remove(runs.len() / 2);
    (middle, throughputs)
}

/// `a / b`, or 0 when `b` is 0.
pub(crate) fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

async fn http_closed(
    address: SocketAddr,
    requests: &RequestSet,
    options: &Options,
) -> anyhow::Result<LoadResult> {
    let workers = HttpWorker::connect_many(address, requests, options.connections).await?;
    Ok(load::closed_loop(workers, options.warmup, options.duration).await)
}

async fn http_open(
    address: SocketAddr,
    requests: &RequestSet,
    rate: f64,
    duration: Duration,
    options: &Options,
) -> anyhow::Result<LoadResult> {
    let workers =
        HttpWorker::connect_many(address, requests, options.open_loop_connections).await?;
    Ok(load::open_loop(workers, rate, duration).await)
}

// ---------------------------------------------------------------------------------------
// 1. Gateway overhead

#[derive(Clone, Debug, Serialize)]
pub struct GatewayOverhead {
    /// Distinct products the GETs cycle through (all cached).
    pub products: usize,
    /// The median of `repeats` saturation runs, alternating bare and gateway.
    pub bare_saturation: LoadResult,
    pub gateway_saturation: LoadResult,
    pub bare_runs_per_second: Vec<f64>,
    pub gateway_runs_per_second: Vec<f64>,
    /// Gateway throughput over bare axum throughput (medians).
    pub throughput_ratio: f64,
    pub fixed_rate_per_second: f64,
    pub bare_fixed_rate: LoadResult,
    pub gateway_fixed_rate: LoadResult,
    /// Gateway p50 minus bare p50 at the fixed rate.
    pub added_p50_ms: f64,
    pub added_p99_ms: f64,
}

pub async fn gateway_overhead(
    platform: &Platform,
    options: &Options,
) -> anyhow::Result<GatewayOverhead> {
    let hot = &platform.catalog[..options.hot_products.min(platform.catalog.len())];
    // Both sides must answer the same bytes for the same request.
    for id in hot {
        let path = platform::product_path(id);
        let (bare_status, bare_body) = http::get(platform.bare_addr, &path).await?;
        let (gateway_status, gateway_body) = http::get(platform.gateway_addr, &path).await?;
        ensure!(
            bare_status == 200 && gateway_status == 200,
            "GET {path}: bare {bare_status}, gateway {gateway_status}"
        );
        ensure!(
            bare_body == gateway_body,
            "GET {path}: the gateway and the bare server answer differently"
        );
    }
    let requests = RequestSet::new(hot.iter().map(|id| platform::product_path(id)));

    // Alternating runs, so a disturbance on the shared machine hits both sides alike.
    let (mut bare_runs, mut gateway_runs) = (Vec::new(), Vec::new());
    for _ in 0..options.repeats.max(1) {
        bare_runs.push(http_closed(platform.bare_addr, &requests, options).await?);
        gateway_runs.push(http_closed(platform.gateway_addr, &requests, options).await?);
    }
    let (bare_saturation, bare_runs_per_second) = median(bare_runs);
    let (gateway_saturation, gateway_runs_per_second) = median(gateway_runs);
    let rate = options.fixed_rate;
    let bare_fixed_rate = http_open(
        platform.bare_addr,
        &requests,
        rate,
        options.duration,
        options,
    )
    .await?;
    let gateway_fixed_rate = http_open(
        platform.gateway_addr,
        &requests,
        rate,
        options.duration,
        options,
    )
    .await?;
    Ok(GatewayOverhead {
        products: hot.len(),
        throughput_ratio: ratio(
            gateway_saturation.throughput_per_second,
            bare_saturation.throughput_per_second,
        ),
        added_p50_ms: gateway_fixed_rate.latency.p50_ms - bare_fixed_rate.latency.p50_ms,
        added_p99_ms: gateway_fixed_rate.latency.p99_ms - bare_fixed_rate.latency.p99_ms,
        fixed_rate_per_second: rate,
        bare_saturation,
        gateway_saturation,
        bare_runs_per_second,
        gateway_runs_per_second,
        bare_fixed_rate,
        gateway_fixed_rate,
    })
}

// ---------------------------------------------------------------------------------------
// 2. Runtime overhead

#[derive(Clone, Debug, Serialize)]
pub struct RuntimePair {
    pub requesters: usize,
    /// The median of `repeats` runs each, alternating raw and runtime.
    pub raw: LoadResult,
    pub runtime: LoadResult,
    pub raw_runs_per_second: Vec<f64>,
    pub runtime_runs_per_second: Vec<f64>,
    /// Runtime throughput over raw `async_nats::service` throughput.
    pub ratio: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct RuntimeOverhead {
    pub payload_bytes: usize,
    pub pairs: Vec<RuntimePair>,
}

/// Sends the same request over and over and checks the echo.
struct NatsWorker {
    client: async_nats::Client,
    headers: HeaderMap,
    payload: Bytes,
}

impl Worker for NatsWorker {
    async fn call(&mut self, _sequence: u64) -> anyhow::Result<bool> {
        let reply = self
            .client
            .request_with_headers(
                methods::GET_PRODUCT.subject,
                self.headers.clone(),
                self.payload.clone(),
            )
            .await?;
        let failed = reply
            .headers
            .as_ref()
            .is_some_and(|h| h.get(rpc::headers::NATS_SERVICE_ERROR).is_some());
        Ok(!failed && reply.payload == self.payload)
    }
}

/// An echo endpoint on `GetProduct`'s subject, either on the pkg/rpc runtime (with its
/// layers) or as a bare `async_nats::service` endpoint.
enum Echo {
    Runtime(Box<rpc::RunningService>),
    Raw {
        service: Box<async_nats::service::Service>,
        task: tokio::task::JoinHandle<()>,
    },
}

/// `GetProduct`'s subject answered with its own request: the runtime's cost without a
/// handler's.
enum EchoGetProduct {}

impl rpc::Method for EchoGetProduct {
    type Request = GetProductRequest;
    type Response = GetProductRequest;
    const DESCRIPTOR: &'static rpc::MethodDescriptor = &methods::GET_PRODUCT;
}

impl Echo {
    async fn runtime(nats: async_nats::Client) -> anyhow::Result<Self> {
        let endpoint = rpc::Endpoint::bind::<EchoGetProduct, _, _>(
            |_ctx: rpc::Context, request: GetProductRequest| async move { Ok::<_, rpc::Error>(request) },
        );
        let running = rpc::Service::new(api::product::SERVICE_NAME, api::product::SERVICE_VERSION)
            .endpoints([endpoint])
            .start(nats)
            .await?;
        Ok(Echo::Runtime(Box::new(running)))
    }

    async fn raw(nats: async_nats::Client) -> anyhow::Result<Self> {
        use async_nats::service::ServiceExt as _;
        let service = nats
            .service_builder()
            .start(api::product::SERVICE_NAME, api::product::SERVICE_VERSION)
            .await
            .map_err(|e| anyhow::anyhow!("starting the raw service: {e}"))?;
        let mut endpoint = service
            .endpoint(methods::GET_PRODUCT.subject)
            .await
            .map_err(|e| anyhow::anyhow!("adding the raw endpoint: {e}"))?;
        nats.flush().await?;
        let task = tokio::spawn(async move {
            while let Some(request) = endpoint.next().await {
                let payload = request.message.payload.clone();
                if let Err(error) = request.respond(Ok(payload)).await {
                    tracing::warn!(%error, "raw echo reply");
                }
            }
        });
        Ok(Echo::Raw {
            service: Box::new(service),
            task,
        })
    }

    async fn stop(self) -> anyhow::Result<()> {
        match self {
            Echo::Runtime(running) => running.shutdown().await,
            Echo::Raw { service, task } => {
                task.abort();
                service
                    .stop()
                    .await
                    .map_err(|e| anyhow::anyhow!("stopping the raw service: {e}"))
            }
        }
    }
}

pub async fn runtime_overhead(options: &Options) -> anyhow::Result<RuntimeOverhead> {
    // A server of its own: the product service answers on the same subject elsewhere.
    let server = testkit::NatsServer::start().await?;
    let payload = Bytes::from(serde_json::to_vec(&GetProductRequest {
        id: uuid::Uuid::now_v7().to_string(),
    })?);
    // What the gateway sends with every request.
    let mut headers = HeaderMap::new();
    headers.insert(rpc::headers::CONTENT_TYPE, rpc::headers::JSON);
    headers.insert(
        rpc::headers::REQUEST_ID,
        uuid::Uuid::now_v7().to_string().as_str(),
    );
    headers.insert(rpc::headers::TIMEOUT_MS, "10000");

    let mut pairs = Vec::new();
    for requesters in [1, options.concurrent_requesters] {
        let (mut raw_runs, mut runtime_runs) = (Vec::new(), Vec::new());
        for runtime in [false, true].repeat(options.repeats.max(1)) {
            let service_connection = server.connect().await;
            let echo = if runtime {
                Echo::runtime(service_connection).await?
            } else {
                Echo::raw(service_connection).await?
            };
            let client = server.connect().await;
            let workers = (0..requesters)
                .map(|_| NatsWorker {
                    client: client.clone(),
                    headers: headers.clone(),
                    payload: payload.clone(),
                })
                .collect();
            let result = load::closed_loop(workers, options.warmup, options.duration).await;
            echo.stop().await?;
            if runtime {
                runtime_runs.push(result);
            } else {
                raw_runs.push(result);
            }
        }
        let (raw, raw_runs_per_second) = median(raw_runs);
        let (runtime, runtime_runs_per_second) = median(runtime_runs);
        pairs.push(RuntimePair {
            requesters,
            ratio: ratio(runtime.throughput_per_second, raw.throughput_per_second),
            raw,
            runtime,
            raw_runs_per_second,
            runtime_runs_per_second,
        });
    }
    Ok(RuntimeOverhead {
        payload_bytes: payload.len(),
        pairs,
    })
}

// ---------------------------------------------------------------------------------------
// 3. Capacity of product reads through the gateway

#[derive(Clone, Debug, Serialize)]
pub struct Capacity {
    pub name: String,
    pub p99_limit_ms: f64,
    pub saturation: LoadResult,
    /// The highest rate tried at which p99 stayed within the limit with no errors.
    pub best: Option<LoadResult>,
    /// Every fixed-rate step tried, highest first.
    pub steps: Vec<LoadResult>,
}

impl Capacity {
    /// The best passing rate, 0 when none passed.
    pub fn rate(&self) -> f64 {
        self.best
            .as_ref()
            .map_or(0.0, |best| best.throughput_per_second)
    }
}

/// Saturates, then tries fixed rates from the saturation throughput down until one keeps
/// p99 within `p99_limit_ms` without errors while delivering (nearly) the rate asked for.
pub async fn capacity(
    name: &str,
    address: SocketAddr,
    requests: &RequestSet,
    p99_limit_ms: f64,
    options: &Options,
) -> anyhow::Result<Capacity> {
    let saturation = http_closed(address, requests, options).await?;
    let mut steps = Vec::new();
    let mut best = None;
    for fraction in &options.capacity_fractions {
        let rate = (saturation.throughput_per_second * fraction).floor();
        if rate < 1.0 {
            continue;
        }
        let step = http_open(address, requests, rate, options.step_duration, options).await?;
        let passed = step.errors == 0
            && step.latency.p99_ms <= p99_limit_ms
            && step.throughput_per_second >= 0.95 * rate;
        steps.push(step.clone());
        if passed {
            best = Some(step);
            break;
        }
    }
    Ok(Capacity {
        name: name.to_owned(),
        p99_limit_ms,
        saturation,
        best,
        steps,
    })
}

// ---------------------------------------------------------------------------------------
// 4. Inventory

#[derive(Clone, Debug, Serialize)]
pub struct Inventory {
    pub workers: usize,
    pub products: usize,
    pub stock_per_product: i64,
    /// One operation is a reservation of two products followed by its release (or a refusal
    /// for lack of stock).
    pub result: LoadResult,
    pub reservations_held_and_released: u64,
    pub refused_out_of_stock: u64,
    pub initial_stock_total: i64,
    pub final_stock_total: i64,
    pub final_reserved_total: i64,
    pub negative_stock_rows: i64,
    pub reservations_still_held: i64,
    /// Stock never negative, nothing left reserved, and the stock totals unchanged.
    pub invariant_holds: bool,
}

#[derive(Default)]
struct InventoryCounters {
    held_and_released: AtomicU64,
    out_of_stock: AtomicU64,
}

struct InventoryWorker {
    client: ProductClient,
    products: Arc<Vec<String>>,
    counters: Arc<InventoryCounters>,
}

impl Worker for InventoryWorker {
    async fn call(&mut self, sequence: u64) -> anyhow::Result<bool> {
        let n = self.products.len() as u64;
        let first = sequence % n;
        let second = (first + 1 + (sequence / n) % (n - 1)) % n;
        let ctx = rpc::Context::background();
        let reservation_id = uuid::Uuid::now_v7().to_string();
        let request = ReserveStockRequest {
            reservation_id: reservation_id.clone(),
            items: vec![
                ReservationItem {
                    product_id: self.products[first as usize].clone(),
                    quantity: 1 + (sequence % 3) as i64,
                },
                ReservationItem {
                    product_id: self.products[second as usize].clone(),
                    quantity: 1,
                },
            ],
            ttl_seconds: 600,
        };
        match self.client.reserve_stock(&ctx, &request).await {
            Ok(_) => {}
            Err(error) if error.code() == rpc::ErrorCode::FailedPrecondition => {
                self.counters.out_of_stock.fetch_add(1, Ordering::Relaxed);
                return Ok(true);
            }
            Err(error) => {
                tracing::warn!(%error, "reserving stock");
                return Ok(false);
            }
        }
        match self
            .client
            .release_reservation(&ctx, &ReleaseReservationRequest { reservation_id })
            .await
        {
            Ok(_) => {
                self.counters
                    .held_and_released
                    .fetch_add(1, Ordering::Relaxed);
                Ok(true)
            }
            Err(error) => {
                tracing::warn!(%error, "releasing a reservation");
                Ok(false)
            }
        }
    }
}

pub async fn inventory(platform: &Platform, options: &Options) -> anyhow::Result<Inventory> {
    let stock = options.inventory_stock_per_product;
    let products = Arc::new(
        platform
            .create_products(options.inventory_products.max(2), stock)
            .await?,
    );
    let counters = Arc::new(InventoryCounters::default());
    let workers = (0..options.inventory_workers)
        .map(|_| InventoryWorker {
            client: platform.product_client.clone(),
            products: products.clone(),
            counters: counters.clone(),
        })
        .collect();
    let result = load::closed_loop(workers, options.warmup, options.duration).await;

    let mut final_stock_total = 0;
    let mut final_reserved_total = 0;
    for id in products.iter() {
        let availability = platform
            .product_client
            .get_availability(
                &rpc::Context::background(),
                &GetAvailabilityRequest { id: id.clone() },
            )
            .await
            .map_err(|e| anyhow::anyhow!("reading availability: {e}"))?;
        final_stock_total += availability.stock;
        final_reserved_total += availability.reserved;
    }
    let (negative_stock_rows,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM inventory WHERE stock < 0 OR reserved < 0 OR reserved > stock",
    )
    .fetch_one(&platform.pool)
    .await?;
    let (reservations_still_held,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM reservations WHERE status = 'held'")
            .fetch_one(&platform.pool)
            .await?;
    let initial_stock_total = stock * products.len() as i64;
    Ok(Inventory {
        workers: options.inventory_workers,
        products: products.len(),
        stock_per_product: stock,
        result,
        reservations_held_and_released: counters.held_and_released.load(Ordering::Relaxed),
        refused_out_of_stock: counters.out_of_stock.load(Ordering::Relaxed),
        invariant_holds: negative_stock_rows == 0
            && reservations_still_held == 0
            && final_reserved_total == 0
            && final_stock_total == initial_stock_total,
        initial_stock_total,
        final_stock_total,
        final_reserved_total,
        negative_stock_rows,
        reservations_still_held,
    })
}

/// Keeps `count` keep-alive connections open on `address`, each having been answered once.
pub async fn open_idle_connections(
    address: SocketAddr,
    path: &str,
    count: usize,
) -> anyhow::Result<Vec<http::HttpConnection>> {
    let request = http::get_request(path);
    let connections: Vec<anyhow::Result<http::HttpConnection>> = futures::stream::iter(0..count)
        .map(|_| {
            let request = request.clone();
            async move {
                let mut connection = http::HttpConnection::connect(address).await?;
                let (status, _) = connection.send(&request).await?;
                ensure!(status == 200, "GET {path} answered {status}");
                Ok(connection)
            }
        })
        .buffer_unordered(200)
        .collect()
        .await;
    connections.into_iter().collect()
}
