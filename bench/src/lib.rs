//! The benchmark harness behind `make bench`: it measures what the platform costs against
//! physical baselines measured in the same run on the same machine, and checks the targets
//! of issue 5.
//!
//! Scenarios (docs/PERFORMANCE.md explains the method and the latest figures):
//! 1. gateway overhead: GET a product through gateway → NATS → product service against the
//!    same handler and cache behind a bare axum server;
//! 2. runtime overhead: an echo endpoint on pkg/rpc against a raw `async_nats::service` one;
//! 3. capacity of cached and uncached GETs and of a search through the gateway at a p99 limit;
//! 4. concurrent inventory reservations over NATS, with the stock invariant checked after;
//! 5. resident memory of the release binaries, idle and with many idle HTTP connections;
//! 6. a priced cart read (5 lines, 2 shops) and a cart write through the gateway against a
//!    product GET through the same gateway;
//! 7. checkouts (2 lines from 2 shops, the whole saga) through the gateway: at saturation
//!    against a product GET, at fixed rates, and what one costs in database commits, NATS
//!    requests and saga steps. Runnable alone ([`run_checkout`], `bench --scenario checkout`).
//!
//! The load generator ([`load`], [`http`]) runs in this process, on the same cores as the
//! servers, which is why figures are ratios against baselines that pay the same cost.
//!
//! This is a measuring tool: it starts private servers (pkg/testkit) on random ports of
//! 127.0.0.1 and must never be a dependency of a service, never use fixed ports, and never
//! touch the dev stack's data.

pub mod checkout;
pub mod http;
pub mod live;
pub mod load;
pub mod marketplace;
pub mod memory;
pub mod platform;
pub mod report;
pub mod scenarios;

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;

use crate::platform::{CacheMode, Platform, Servers};
use crate::report::Report;

/// How long and how hard each scenario runs.
#[derive(Clone, Debug)]
pub struct Options {
    pub mode: String,
    /// Load before each measured window, not counted.
    pub warmup: Duration,
    /// Each measured window (saturation and fixed-rate runs).
    pub duration: Duration,
    /// Saturation runs per side of scenarios 1 and 2 (the median counts).
    pub repeats: usize,
    /// Each fixed-rate step of the capacity search.
    pub step_duration: Duration,
    /// Fractions of the saturation throughput the capacity search tries, highest first.
    pub capacity_fractions: Vec<f64>,
    /// HTTP connections of a closed-loop (saturation) run.
    pub connections: usize,
    /// HTTP connections an open-loop run spreads its requests over.
    pub open_loop_connections: usize,
    /// The moderate rate of scenario 1's latency comparison.
    pub fixed_rate: f64,
    /// Products created for the read scenarios.
    pub catalog_size: usize,
    /// Distinct products the cached GETs cycle through.
    pub hot_products: usize,
    pub concurrent_requesters: usize,
    pub inventory_workers: usize,
    pub inventory_products: usize,
    pub inventory_stock_per_product: i64,
    pub idle_connections: usize,
    /// Pause before reading memory.
    pub settle: Duration,
    /// Connections of the checkout saturation run (each one checkout at a time), and its
    /// measured window (after `warmup`): long enough for checkouts to complete inside it.
    pub checkout_connections: usize,
    pub checkout_duration: Duration,
    /// The closed loop's customers are prepared for at most this many checkouts a second.
    pub checkout_pool_rate: f64,
    /// Offered rates of the checkout latency runs, and how long each lasts.
    pub checkout_rates: Vec<f64>,
    pub checkout_rate_duration: Duration,
    pub checkout_open_loop_connections: usize,
    pub checkout_p99_limit_ms: f64,
    pub checkout_products_per_shop: usize,
    /// How long PostgreSQL may take to publish a backend's transaction counters
    /// (`pg_stat_database`): an idle backend flushes them within 10 s.
    pub stats_settle: Duration,
    /// The idle window the platform's background commits and requests are measured over.
    pub idle_window: Duration,
    pub product_service_bin: PathBuf,
    pub gateway_bin: PathBuf,
}

impl Options {
    /// `make bench`: a few minutes in all.
    pub fn full(binaries: PathBuf) -> Self {
        Self {
            mode: "full".into(),
            warmup: Duration::from_secs(1),
            duration: Duration::from_secs(4),
            repeats: 3,
            step_duration: Duration::from_secs(4),
            capacity_fractions: vec![1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1],
            connections: 64,
            open_loop_connections: 128,
            fixed_rate: 2_000.0,
            catalog_size: 2_000,
            hot_products: 100,
            concurrent_requesters: 32,
            inventory_workers: 32,
            inventory_products: 8,
            inventory_stock_per_product: 20,
            idle_connections: 10_000,
            settle: Duration::from_secs(2),
            checkout_connections: 8,
            checkout_duration: Duration::from_secs(4),
            checkout_pool_rate: 200.0,
            checkout_rates: vec![50.0, 100.0],
            checkout_rate_duration: Duration::from_secs(8),
            checkout_open_loop_connections: 64,
            checkout_p99_limit_ms: 250.0,
            checkout_products_per_shop: 3,
            stats_settle: Duration::from_millis(10_500),
            idle_window: Duration::from_secs(3),
            product_service_bin: binaries.join("product-service"),
            gateway_bin: binaries.join("gateway"),
        }
    }

    /// The smoke test: every scenario, tiny, so the harness cannot rot.
    pub fn smoke(binaries: PathBuf) -> Self {
        Self {
            mode: "smoke".into(),
            warmup: Duration::from_millis(50),
            duration: Duration::from_millis(250),
            repeats: 1,
            step_duration: Duration::from_millis(250),
            capacity_fractions: vec![0.5, 0.1],
            connections: 4,
            open_loop_connections: 8,
            fixed_rate: 100.0,
            catalog_size: 20,
            hot_products: 5,
            concurrent_requesters: 4,
            inventory_workers: 4,
            inventory_products: 3,
            inventory_stock_per_product: 4,
            idle_connections: 100,
            settle: Duration::from_millis(200),
            checkout_connections: 2,
            checkout_duration: Duration::from_millis(1_500),
            checkout_pool_rate: 40.0,
            checkout_rates: vec![10.0],
            checkout_rate_duration: Duration::from_millis(500),
            checkout_open_loop_connections: 4,
            checkout_products_per_shop: 2,
            stats_settle: Duration::from_millis(200),
            idle_window: Duration::from_millis(200),
            ..Self::full(binaries)
        }
    }
}

/// Runs every scenario and checks the targets.
pub async fn run(options: &Options) -> anyhow::Result<Report> {
    let started_at_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for binary in [&options.product_service_bin, &options.gateway_bin] {
        anyhow::ensure!(
            binary.is_file(),
            "{} is missing: build it first (cargo build -p product-service -p gateway)",
            binary.display()
        );
    }

    eprintln!("bench: runtime overhead (pkg/rpc against raw async_nats::service)");
    let runtime_overhead = scenarios::runtime_overhead(options).await?;

    eprintln!(
        "bench: starting the platform and creating {} products",
        options.catalog_size
    );
    let servers = Servers::start().await?;
    let mut platform = Platform::start(servers, options.catalog_size).await?;

    eprintln!("bench: gateway overhead (gateway against bare axum)");
    let gateway_overhead = scenarios::gateway_overhead(&platform, options).await?;

    eprintln!("bench: capacity of cached GETs and searches");
    let hot = &platform.catalog[..options.hot_products.min(platform.catalog.len())];
    let cached = scenarios::capacity(
        report::CACHED_GET,
        platform.gateway_addr,
        &http::RequestSet::new(hot.iter().map(|id| platform::product_path(id))),
        5.0,
        options,
    )
    .await?;
    let search = scenarios::capacity(
        report::SEARCH,
        platform.gateway_addr,
        &http::RequestSet::new([platform::search_path(platform::SEARCH_WORD)]),
        10.0,
        options,
    )
    .await?;

    eprintln!("bench: inventory reservations");
    let inventory = scenarios::inventory(&platform, options).await?;

    eprintln!("bench: the cart (priced reads and writes) against product GETs");
    let marketplace = marketplace::marketplace(&platform, options).await?;

    eprintln!("bench: checkouts through the gateway (about a minute)");
    let checkout = checkout::checkout(&platform, options).await?;

    eprintln!("bench: capacity of uncached GETs");
    platform
        .restart_product(CacheMode::Uncached)
        .await
        .context("restarting the product service without its cache")?;
    let uncached = scenarios::capacity(
        report::UNCACHED_GET,
        platform.gateway_addr,
        &http::RequestSet::new(platform.catalog.iter().map(|id| platform::product_path(id))),
        10.0,
        options,
    )
    .await?;
    let servers = platform.stop().await?;

    eprintln!(
        "bench: memory of the binaries, idle and with {} connections",
        options.idle_connections
    );
    let memory = memory::memory(&servers, options).await?;
    drop(servers);

    let mut report = Report {
        mode: options.mode.clone(),
        started_at_unix,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        gateway_overhead,
        runtime_overhead,
        capacity: vec![cached, uncached, search],
        inventory,
        marketplace,
        checkout,
        memory,
        targets: Vec::new(),
    };
    report.check_targets();
    Ok(report)
}

/// Scenario 7 alone: the platform with a small catalog, then the checkouts.
pub async fn run_checkout(options: &Options) -> anyhow::Result<report::CheckoutReport> {
    let started_at_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    eprintln!("bench: starting the platform");
    let servers = Servers::start().await?;
    let platform = Platform::start(servers, options.hot_products.min(10)).await?;
    eprintln!("bench: checkouts through the gateway (about a minute)");
    let checkout = checkout::checkout(&platform, options).await;
    platform.stop().await?;
    let mut report = report::CheckoutReport {
        mode: options.mode.clone(),
        started_at_unix,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        checkout: checkout?,
        targets: Vec::new(),
    };
    report.targets = report::checkout_targets(&report.checkout);
    Ok(report)
}
