//! Scenario 7: checkouts through the gateway. Signed-in customers, each with an address, a
//! card on file and a cart of 2 lines from 2 shops, POST /api/v1/checkout with an
//! Idempotency-Key and a bearer token: the gateway claims the key in Redis and forwards to the
//! order service, which creates the order and runs the checkout saga (address snapshot, cart
//! pricing, stock reservation, payment authorisation, commits, capture, order paid, cart
//! cleared), each step a PostgreSQL commit, and answers 201 once the order is paid.
//!
//! Measured: checkouts per second at saturation (closed loop, a few connections) against a
//! product GET through the same gateway; p50/p99 at fixed offered rates (open loop, latency
//! from the intended send time); and what one checkout costs the platform: database
//! transactions (`pg_stat_database.xact_commit` of every service's database, and transaction
//! ids assigned, i.e. writing transactions), NATS requests served (the services'
//! `rpc_server_requests_total`), events published, and the saga's step durations
//! (`saga_step_duration_seconds`), against the end-to-end latency.
//!
//! Honesty checks: every checkout must answer 201 with the order "paid" (anything else is
//! counted by outcome), every order in the order database must be paid, the units sold must
//! be two per order, and no stock may be left reserved.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use bytes::Bytes;
use serde::Serialize;
use sqlx::PgPool;
use testkit::{Companion, TestDatabase};

use crate::Options;
use crate::http::{self, HttpConnection, HttpWorker, RequestSet};
use crate::load::{self, LoadResult, Worker};
use crate::platform::{self, Platform};
use crate::scenarios::ratio;

/// The test card the simulated provider always approves.
const APPROVED_CARD: &str = "4242424242424242";

/// Steps of the checkout saga that run inside the order service's own transaction (no NATS
/// call): `apps/order/src/checkout.rs` lists every step and what it calls.
const LOCAL_STEPS: [&str; 3] = ["open", "record_order", "mark_paid"];

/// The saga the order service registers for checkouts (`saga_step_duration_seconds{saga}`).
const CHECKOUT_SAGA: &str = "checkout";

/// Stock of each product: far more than any run sells.
const STOCK_PER_PRODUCT: i64 = 100_000_000;

/// The figures of scenario 7.
#[derive(Clone, Debug, Serialize)]
pub struct Checkout {
    pub shops: usize,
    pub products_per_shop: usize,
    /// Lines in each cart (one unit of one product of each shop).
    pub lines_per_cart: usize,
    /// Customers prepared (address, card, filled cart), one per checkout attempted.
    pub customers_prepared: usize,
    /// Seconds the preparation took (through the gateway, 4 requests per customer).
    pub preparation_seconds: f64,
    /// `GET /api/v1/products/{id}` of the cart's products through the same gateway, closed
    /// loop with the harness's usual connection count: the baseline.
    pub product_get: LoadResult,
    pub saturation_connections: usize,
    /// Checkouts at saturation (closed loop); errors are answers other than 201 "paid".
    pub saturation: LoadResult,
    /// Checkouts per second over product GETs per second.
    pub saturation_ratio: f64,
    /// The latency limit of the fixed-rate figure.
    pub p99_limit_ms: f64,
    pub fixed_rates: Vec<FixedRate>,
    /// The highest fixed rate that kept p99 within the limit with no errors while
    /// delivering at least 95 % of the rate asked for.
    pub sustained_rate_within_limit: Option<f64>,
    /// Orders paid during the measured part (saturation and fixed rates, warm-ups included).
    pub checkouts_paid: u64,
    /// Every answer that was not 201 "paid", by status and outcome, over every phase.
    pub other_outcomes: BTreeMap<String, u64>,
    pub costs: Costs,
    pub checks: Checks,
}

/// One open-loop run at a fixed offered rate.
#[derive(Clone, Debug, Serialize)]
pub struct FixedRate {
    pub result: LoadResult,
    pub p99_within_limit: bool,
    /// Orders paid during this run.
    pub checkouts_paid: u64,
    /// NATS requests served per checkout during this run (every service's endpoints).
    pub nats_requests_per_checkout: f64,
    /// Per checkout: the sum of the saga's remote steps' durations (their NATS calls,
    /// answered by the other services), and of every step (the local ones too).
    pub remote_steps_ms_per_checkout: f64,
    pub all_steps_ms_per_checkout: f64,
    /// Mean end-to-end latency over the remote steps' time per checkout.
    pub latency_to_remote_steps_ratio: f64,
    /// The saga's steps during this run, in the saga's order.
    pub steps: Vec<StepFigure>,
}

/// One step (and phase) of the checkout saga over a run.
#[derive(Clone, Debug, Serialize)]
pub struct StepFigure {
    pub step: String,
    pub phase: String,
    pub remote: bool,
    /// Executions per checkout (1 unless a step was retried or compensated).
    pub runs_per_checkout: f64,
    pub mean_ms: f64,
    /// Its share of the sum over all steps.
    pub share: f64,
}

/// What one checkout costs the platform, over the measured part of the scenario (from the
/// first saturation checkout to the last fixed-rate one), less the platform's idle background
/// (pollers, relays) measured just before over an idle window.
#[derive(Clone, Debug, Serialize)]
pub struct Costs {
    /// Seconds between the two database snapshots, and of the idle window before.
    pub measured_seconds: f64,
    pub idle_seconds: f64,
    /// `xact_commit` deltas of the databases of order, payment, product, voucher, cart and
    /// address, background subtracted, per checkout. Read-only transactions count too.
    pub database_commits_per_checkout: f64,
    /// The same without subtracting the background.
    pub database_commits_per_checkout_raw: f64,
    /// Per service, background subtracted.
    pub database_commits_by_service: BTreeMap<String, f64>,
    /// Transactions that wrote (transaction ids assigned, whole cluster), per checkout.
    pub writing_transactions_per_checkout: f64,
    /// NATS requests served (`rpc_server_requests_total` of every service), per checkout,
    /// background subtracted; and by `service.method`.
    pub nats_requests_per_checkout: f64,
    pub nats_requests_by_method: BTreeMap<String, f64>,
    /// Events the services' outbox relays published, and their consumers took, per checkout.
    pub events_published_per_checkout: f64,
    pub events_consumed_per_checkout: f64,
}

/// The checks that make the figures honest.
#[derive(Clone, Debug, Serialize)]
pub struct Checks {
    /// Orders in the order database in any state but "paid" at the end.
    pub orders_not_paid: i64,
    /// Units sold (stock taken) over orders paid: 2 when every order sold its 2 lines once.
    pub units_sold: i64,
    pub units_per_paid_order: f64,
    /// Units of the scenario's products still reserved, and reservations still held.
    pub units_left_reserved: i64,
    pub reservations_still_held: i64,
    /// Answers other than 201 "paid".
    pub other_outcomes: u64,
    pub hold: bool,
}

impl Checkout {
    /// The rows of the printed table (`| scenario | platform | baseline | ratio | target |`).
    pub fn rows(&self) -> Vec<[String; 5]> {
        let mut rows = vec![[
            format!(
                "7. checkout (2 lines, 2 shops) at saturation, {} connections, vs GET product (req/s)",
                self.saturation_connections
            ),
            format!(
                "checkout {:.0} (p50 {:.1}, p99 {:.1} ms)",
                self.saturation.throughput_per_second,
                self.saturation.latency.p50_ms,
                self.saturation.latency.p99_ms
            ),
            format!("GET product {:.0}", self.product_get.throughput_per_second),
            format!("{:.3}x", self.saturation_ratio),
            "reported".into(),
        ]];
        for fixed in &self.fixed_rates {
            let r = &fixed.result;
            rows.push([
                format!(
                    "7. checkout at {:.0}/s offered, p50 / p99 (ms)",
                    r.target_rate_per_second.unwrap_or_default()
                ),
                format!(
                    "{:.1} / {:.1} ({:.0}/s done, {} errors)",
                    r.latency.p50_ms, r.latency.p99_ms, r.throughput_per_second, r.errors
                ),
                format!(
                    "saga remote steps {:.1} ms/checkout",
                    fixed.remote_steps_ms_per_checkout
                ),
                format!(
                    "mean {:.1} ms = {:.2}x remote steps",
                    r.latency.mean_ms, fixed.latency_to_remote_steps_ratio
                ),
                format!("p99 <= {:.0} ms", self.p99_limit_ms),
            ]);
        }
        let c = &self.costs;
        rows.push([
            "7. per checkout: DB commits (writing) / NATS requests / events".into(),
            format!(
                "{:.1} ({:.1}) / {:.1} / {:.1}",
                c.database_commits_per_checkout,
                c.writing_transactions_per_checkout,
                c.nats_requests_per_checkout,
                c.events_published_per_checkout
            ),
            format!("{} checkouts paid", self.checkouts_paid),
            format!("checks {}", if self.checks.hold { "hold" } else { "FAIL" }),
            "all paid, nothing reserved".into(),
        ]);
        rows
    }
}

/// A checkout request per customer, each used once: a worker takes the `sequence`th.
struct CheckoutWorker {
    connection: HttpConnection,
    requests: Arc<Vec<Bytes>>,
    /// How many of `requests` were sent, by every worker of the run.
    taken: Arc<AtomicUsize>,
    outcomes: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl CheckoutWorker {
    fn record(&self, outcome: String) {
        *self
            .outcomes
            .lock()
            .expect("the outcome tally")
            .entry(outcome)
            .or_default() += 1;
    }
}

impl Worker for CheckoutWorker {
    async fn call(&mut self, sequence: u64) -> anyhow::Result<bool> {
        self.taken
            .fetch_max(sequence as usize + 1, Ordering::Relaxed);
        let Some(request) = self.requests.get(sequence as usize).cloned() else {
            // More checkouts than customers prepared: the run was faster than the pool was
            // sized for, and the figure is a lower bound.
            self.record("no customer left".to_owned());
            return Ok(false);
        };
        let (status, body) = self.connection.send(&request).await?;
        let answer: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let order_status = answer["order"]["status"].as_str();
        if status == 201 && order_status == Some("paid") {
            return Ok(true);
        }
        let what = order_status
            .or_else(|| answer["code"].as_str())
            .or_else(|| answer["error"]["code"].as_str())
            .unwrap_or("-");
        self.record(format!("{status} {what}"));
        Ok(false)
    }
}

/// The databases whose commits a checkout is charged with, by service.
struct Databases(Vec<(&'static str, String)>);

/// What the counters said at one moment.
struct Snapshot {
    at: Instant,
    commits: BTreeMap<String, i64>,
    next_transaction_id: i64,
    series: Series,
}

async fn snapshot(pool: &PgPool) -> anyhow::Result<Snapshot> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT datname::text, xact_commit FROM pg_stat_database WHERE datname IS NOT NULL",
    )
    .fetch_all(pool)
    .await?;
    let (next_transaction_id,): (i64,) =
        sqlx::query_as("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
            .fetch_one(pool)
            .await?;
    Ok(Snapshot {
        at: Instant::now(),
        commits: rows.into_iter().collect(),
        next_transaction_id,
        series: Series::parse(&telemetry::metrics().render()),
    })
}

/// Orders paid so far, and orders in any other state.
async fn orders(pool: &PgPool) -> anyhow::Result<(i64, i64)> {
    Ok(sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'paid'), count(*) FILTER (WHERE status <> 'paid')
         FROM orders",
    )
    .fetch_one(pool)
    .await?)
}

/// A service beside the platform, on a database of ours (so its commits can be told apart).
async fn companion_on<C, Fut>(
    platform: &Platform,
    start: impl FnOnce(C) -> Fut,
    database: &TestDatabase,
    postgres: impl FnOnce(&mut C) -> &mut config::PostgresArgs,
    configure: impl FnOnce(&mut C),
) -> Companion
where
    C: clap::Parser,
    Fut: std::future::Future<Output = anyhow::Result<host::Serving>>,
{
    let url = database.url().to_owned();
    Companion::start(&platform.servers.nats, start, move |config: &mut C| {
        postgres(config).database_url = Some(url);
        configure(config);
    })
    .await
}

/// One prepared customer: the checkout request it will send.
async fn prepare_customer(
    platform: &Platform,
    connection: &mut HttpConnection,
    lines: [&str; 2],
) -> anyhow::Result<Bytes> {
    let user_id = uuid::Uuid::now_v7().to_string();
    let bearer = format!(
        "Bearer {}",
        platform.access_token(&user_id, &[rpc::roles::CUSTOMER])
    );
    let auth = [("Authorization", bearer.as_str())];
    let created = |what: &str, status: u16, body: &Bytes| -> anyhow::Result<String> {
        ensure!(
            (200..300).contains(&status),
            "{what}: {status} {}",
            String::from_utf8_lossy(body)
        );
        let value: serde_json::Value = serde_json::from_slice(body)?;
        Ok(value["id"]
            .as_str()
            .with_context(|| format!("{what}: no id in {value}"))?
            .to_owned())
    };
    let (status, body) = connection
        .send(&http::request(
            "POST",
            platform::route_path(&api::address::methods::CREATE_ADDRESS),
            &auth,
            Some(
                r#"{"recipient_name":"Ada Lovelace","line1":"1 Market Street","city":"San Francisco","postal_code":"94105","country_code":"US"}"#,
            ),
        ))
        .await?;
    let address_id = created("adding an address", status, &body)?;
    let card = format!(
        r#"{{"card_number":"{APPROVED_CARD}","exp_month":12,"exp_year":2030,"cvc":"123"}}"#
    );
    let (status, body) = connection
        .send(&http::request(
            "POST",
            platform::route_path(&api::payment::methods::CREATE_PAYMENT_METHOD),
            &auth,
            Some(&card),
        ))
        .await?;
    let payment_method_id = created("adding a card", status, &body)?;
    for product in lines {
        let (status, body) = connection
            .send(&http::request(
                "PUT",
                &platform::route_path(&api::cart::methods::SET_ITEM)
                    .replace("{product_id}", product),
                &auth,
                Some(r#"{"quantity":1}"#),
            ))
            .await?;
        ensure!(
            status == 200,
            "adding a line to the cart: {status} {}",
            String::from_utf8_lossy(&body)
        );
    }
    let key = uuid::Uuid::now_v7().to_string();
    let body = format!(
        r#"{{"shipping_address_id":"{address_id}","payment_method_id":"{payment_method_id}"}}"#
    );
    Ok(http::request(
        "POST",
        platform::route_path(&api::order::methods::CHECKOUT),
        &[("Authorization", &bearer), ("Idempotency-Key", &key)],
        Some(&body),
    ))
}

/// `count` customers, prepared over `lanes` keep-alive connections; their checkout requests.
async fn prepare_customers(
    platform: &Platform,
    first_shop: &[String],
    second_shop: &[String],
    count: usize,
    lanes: usize,
) -> anyhow::Result<Vec<Bytes>> {
    let lanes = lanes.clamp(1, count.max(1));
    let prepared = futures::future::try_join_all((0..lanes).map(|lane| async move {
        let mut connection = HttpConnection::connect(platform.gateway_addr).await?;
        let mut requests = Vec::new();
        for i in (lane..count).step_by(lanes) {
            let lines = [
                first_shop[i % first_shop.len()].as_str(),
                second_shop[(i / first_shop.len()) % second_shop.len()].as_str(),
            ];
            requests.push(prepare_customer(platform, &mut connection, lines).await?);
        }
        anyhow::Ok(requests)
    }))
    .await?;
    Ok(prepared.into_iter().flatten().collect())
}

/// Workers sharing `requests`, and the count of requests they took.
async fn checkout_workers(
    platform: &Platform,
    requests: Vec<Bytes>,
    connections: usize,
    outcomes: &Arc<Mutex<BTreeMap<String, u64>>>,
) -> anyhow::Result<(Vec<CheckoutWorker>, Arc<Vec<Bytes>>, Arc<AtomicUsize>)> {
    let requests = Arc::new(requests);
    let taken = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::with_capacity(connections);
    for _ in 0..connections {
        workers.push(CheckoutWorker {
            connection: HttpConnection::connect(platform.gateway_addr).await?,
            requests: requests.clone(),
            taken: taken.clone(),
            outcomes: outcomes.clone(),
        });
    }
    Ok((workers, requests, taken))
}

pub async fn checkout(platform: &Platform, options: &Options) -> anyhow::Result<Checkout> {
    // Every service the checkout calls, each on a database of its own that we can name.
    let mut databases = Databases(vec![(
        "product",
        platform.servers.database.name().to_owned(),
    )]);
    let order_db = testkit::fresh_database().await?;
    let payment_db = testkit::fresh_database().await?;
    let address_db = testkit::fresh_database().await?;
    let cart_db = testkit::fresh_database().await?;
    let voucher_db = testkit::fresh_database().await?;
    for (service, database) in [
        ("order", &order_db),
        ("payment", &payment_db),
        ("address", &address_db),
        ("cart", &cart_db),
        ("voucher", &voucher_db),
    ] {
        databases.0.push((service, database.name().to_owned()));
    }
    let voucher = companion_on(
        platform,
        voucher_service::start,
        &voucher_db,
        |c: &mut voucher_service::Config| &mut c.postgres,
        |_| {},
    )
    .await;
    let cart = companion_on(
        platform,
        cart_service::start,
        &cart_db,
        |c: &mut cart_service::Config| &mut c.postgres,
        |_| {},
    )
    .await;
    let address = companion_on(
        platform,
        address_service::start,
        &address_db,
        |c: &mut address_service::Config| &mut c.postgres,
        |_| {},
    )
    .await;
    let payment = companion_on(
        platform,
        payment_service::start,
        &payment_db,
        |c: &mut payment_service::Config| &mut c.postgres,
        |c| c.simulated_provider_latency_ms = 0,
    )
    .await;
    let order = companion_on(
        platform,
        order_service::start,
        &order_db,
        |c: &mut order_service::Config| &mut c.postgres,
        |_| {},
    )
    .await;
    let order_pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(order_db.url())
        .await
        .context("connecting to the order database")?;

    let result = measure(platform, options, &databases, &order_pool).await;

    order_pool.close().await;
    tokio::time::timeout(Duration::from_secs(60), async {
        order.stop().await;
        payment.stop().await;
        address.stop().await;
        cart.stop().await;
        voucher.stop().await;
    })
    .await
    .context("stopping the checkout's services")?;
    result
}

async fn measure(
    platform: &Platform,
    options: &Options,
    databases: &Databases,
    order_pool: &PgPool,
) -> anyhow::Result<Checkout> {
    let products_per_shop = options.checkout_products_per_shop.max(1);
    let first_shop = platform.open_shop("bench-checkout-first").await?;
    let second_shop = platform.open_shop("bench-checkout-second").await?;
    let first = platform
        .create_products_in(&first_shop, products_per_shop, STOCK_PER_PRODUCT)
        .await?;
    let second = platform
        .create_products_in(&second_shop, products_per_shop, STOCK_PER_PRODUCT)
        .await?;
    let products: Vec<uuid::Uuid> = first
        .iter()
        .chain(&second)
        .map(|id| id.parse())
        .collect::<Result<_, _>>()?;

    // One customer per checkout: the closed loop's pool is sized for the rate it could
    // reach at most, each fixed rate's for its rate and length.
    let closed_window = options.warmup + options.checkout_duration;
    let closed_pool =
        (options.checkout_pool_rate * (closed_window.as_secs_f64() + 0.5)).ceil() as usize;
    let open_pools: Vec<usize> = options
        .checkout_rates
        .iter()
        .map(|rate| (rate * options.checkout_rate_duration.as_secs_f64()).ceil() as usize + 2)
        .collect();
    let total = closed_pool + open_pools.iter().sum::<usize>();
    let preparing = Instant::now();
    let mut prepared = prepare_customers(
        platform,
        &first,
        &second,
        total,
        options.connections.min(32),
    )
    .await?;
    let preparation_seconds = preparing.elapsed().as_secs_f64();
    let prepared_at = Instant::now();

    // The baseline runs while the preparation's database statistics settle: PostgreSQL
    // flushes an idle backend's counters up to 10 s after its last transaction.
    let gets = RequestSet::new(
        first
            .iter()
            .chain(&second)
            .map(|id| platform::product_path(id)),
    );
    let workers =
        HttpWorker::connect_many(platform.gateway_addr, &gets, options.connections).await?;
    let product_get = load::closed_loop(workers, options.warmup, options.duration).await;
    let settled_at = prepared_at + options.stats_settle;
    tokio::time::sleep_until(settled_at.into()).await;

    // The idle background (pollers, relays), to subtract from the measured part.
    let idle_start = snapshot(&platform.pool).await?;
    tokio::time::sleep(options.idle_window).await;
    let start = snapshot(&platform.pool).await?;
    let (paid_before, _) = orders(order_pool).await?;

    let outcomes = Arc::new(Mutex::new(BTreeMap::new()));
    let closed_requests: Vec<Bytes> = prepared.drain(..closed_pool).collect();
    let (workers, closed_requests, taken) = checkout_workers(
        platform,
        closed_requests,
        options.checkout_connections,
        &outcomes,
    )
    .await?;
    let saturation = load::closed_loop(workers, options.warmup, options.checkout_duration).await;

    // First half the saturation rate, with the customers the closed loop left (the
    // uncongested latency, and what it is made of), then the fixed rates.
    let left: Vec<Bytes> = closed_requests
        .get(taken.load(Ordering::Relaxed)..)
        .unwrap_or_default()
        .to_vec();
    let duration = options.checkout_rate_duration.as_secs_f64();
    let half = (saturation.throughput_per_second / 2.0)
        .min(left.len() as f64 / duration)
        .floor();
    let mut runs: Vec<(f64, Vec<Bytes>)> = Vec::new();
    if half >= 1.0 {
        runs.push((half, left));
    }
    for (rate, pool) in options.checkout_rates.iter().zip(open_pools) {
        runs.push((*rate, prepared.drain(..pool).collect()));
    }
    let mut fixed_rates = Vec::new();
    for (rate, requests) in runs {
        let (workers, _, _) = checkout_workers(
            platform,
            requests,
            options.checkout_open_loop_connections,
            &outcomes,
        )
        .await?;
        let before = Series::parse(&telemetry::metrics().render());
        let (paid_at_start, _) = orders(order_pool).await?;
        let result = load::open_loop(workers, rate, options.checkout_rate_duration).await;
        let (paid_at_end, _) = orders(order_pool).await?;
        let after = Series::parse(&telemetry::metrics().render());
        fixed_rates.push(fixed_rate(
            result,
            (paid_at_end - paid_at_start).max(0) as u64,
            &after.minus(&before),
            options.checkout_p99_limit_ms,
        ));
    }
    let (paid_after, not_paid) = orders(order_pool).await?;
    let checkouts_paid = (paid_after - paid_before).max(0) as u64;

    // The last checkouts' counters reach pg_stat_database once their backends flush.
    tokio::time::sleep(options.stats_settle).await;
    let end = snapshot(&platform.pool).await?;
    let costs = costs(&idle_start, &start, &end, databases, checkouts_paid);

    let (units_left_reserved, stock_left): (i64, i64) = sqlx::query_as(
        "SELECT coalesce(sum(reserved), 0)::bigint, coalesce(sum(stock), 0)::bigint
         FROM inventory WHERE product_id = ANY($1)",
    )
    .bind(&products)
    .fetch_one(&platform.pool)
    .await?;
    let (reservations_still_held,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM reservations WHERE status = 'held'")
            .fetch_one(&platform.pool)
            .await?;
    let units_sold = STOCK_PER_PRODUCT * products.len() as i64 - stock_left;
    let other_outcomes = outcomes.lock().expect("the outcome tally").clone();
    let other_count: u64 = other_outcomes.values().sum();
    let checks = Checks {
        orders_not_paid: not_paid,
        units_sold,
        units_per_paid_order: ratio(units_sold as f64, paid_after as f64),
        units_left_reserved,
        reservations_still_held,
        other_outcomes: other_count,
        hold: not_paid == 0
            && other_count == 0
            && units_sold == 2 * paid_after
            && units_left_reserved == 0
            && reservations_still_held == 0,
    };

    let limit = options.checkout_p99_limit_ms;
    let sustained_rate_within_limit = fixed_rates
        .iter()
        .filter(|f| {
            f.p99_within_limit
                && f.result.errors == 0
                && f.result.throughput_per_second
                    >= 0.95 * f.result.target_rate_per_second.unwrap_or_default()
        })
        .filter_map(|f| f.result.target_rate_per_second)
        .reduce(f64::max);
    Ok(Checkout {
        shops: 2,
        products_per_shop,
        lines_per_cart: 2,
        customers_prepared: total,
        preparation_seconds,
        saturation_connections: options.checkout_connections,
        saturation_ratio: ratio(
            saturation.throughput_per_second,
            product_get.throughput_per_second,
        ),
        product_get,
        saturation,
        p99_limit_ms: limit,
        fixed_rates,
        sustained_rate_within_limit,
        checkouts_paid,
        other_outcomes,
        costs,
        checks,
    })
}

fn fixed_rate(
    result: LoadResult,
    checkouts_paid: u64,
    delta: &Series,
    p99_limit_ms: f64,
) -> FixedRate {
    let per_checkout = |value: f64| ratio(value, checkouts_paid as f64);
    let nats_requests_per_checkout = per_checkout(delta.sum("rpc_server_requests_total", &[]));
    let mut steps: Vec<(String, String, f64, f64)> = Vec::new();
    for (labels, count) in delta.matching(
        "saga_step_duration_seconds_count",
        &[("saga", CHECKOUT_SAGA)],
    ) {
        let step = labels.get("step").cloned().unwrap_or_default();
        let phase = labels.get("phase").cloned().unwrap_or_default();
        let seconds = delta.sum(
            "saga_step_duration_seconds_sum",
            &[("saga", CHECKOUT_SAGA), ("step", &step), ("phase", &phase)],
        );
        if count > 0.0 {
            steps.push((step, phase, count, seconds));
        }
    }
    let all_seconds: f64 = steps.iter().map(|s| s.3).sum();
    let remote_seconds: f64 = steps
        .iter()
        .filter(|s| !LOCAL_STEPS.contains(&s.0.as_str()))
        .map(|s| s.3)
        .sum();
    let remote_steps_ms_per_checkout = per_checkout(remote_seconds * 1000.0);
    let mut figures: Vec<StepFigure> = steps
        .into_iter()
        .map(|(step, phase, count, seconds)| StepFigure {
            remote: !LOCAL_STEPS.contains(&step.as_str()),
            runs_per_checkout: per_checkout(count),
            mean_ms: ratio(seconds * 1000.0, count),
            share: ratio(seconds, all_seconds),
            step,
            phase,
        })
        .collect();
    figures.sort_by(|a, b| b.share.total_cmp(&a.share));
    FixedRate {
        p99_within_limit: result.latency.p99_ms <= p99_limit_ms,
        checkouts_paid,
        nats_requests_per_checkout,
        remote_steps_ms_per_checkout,
        all_steps_ms_per_checkout: per_checkout(all_seconds * 1000.0),
        latency_to_remote_steps_ratio: ratio(result.latency.mean_ms, remote_steps_ms_per_checkout),
        steps: figures,
        result,
    }
}

fn costs(
    idle_start: &Snapshot,
    start: &Snapshot,
    end: &Snapshot,
    databases: &Databases,
    checkouts: u64,
) -> Costs {
    let idle_seconds = start.at.duration_since(idle_start.at).as_secs_f64();
    let measured_seconds = end.at.duration_since(start.at).as_secs_f64();
    // The background ran over the whole span between the snapshots, the settling included.
    let background = |idle: f64| ratio(idle, idle_seconds) * measured_seconds;
    let per_checkout = |value: f64| ratio(value, checkouts as f64);
    let commits = |snapshot: &Snapshot, name: &str| {
        snapshot.commits.get(name).copied().unwrap_or_default() as f64
    };
    let mut by_service = BTreeMap::new();
    let (mut raw_total, mut corrected_total) = (0.0, 0.0);
    for (service, name) in &databases.0 {
        let raw = commits(end, name) - commits(start, name);
        let idle = commits(start, name) - commits(idle_start, name);
        let corrected = (raw - background(idle)).max(0.0);
        raw_total += raw;
        corrected_total += corrected;
        by_service.insert((*service).to_owned(), per_checkout(corrected));
    }
    let series = end.series.minus(&start.series);
    let idle_series = start.series.minus(&idle_start.series);
    let corrected =
        |name: &str| (series.sum(name, &[]) - background(idle_series.sum(name, &[]))).max(0.0);
    let mut nats_requests_by_method = BTreeMap::new();
    for (labels, value) in series.matching("rpc_server_requests_total", &[]) {
        let key = format!(
            "{}.{}",
            labels.get("service").map_or("?", String::as_str),
            labels.get("method").map_or("?", String::as_str)
        );
        *nats_requests_by_method.entry(key).or_insert(0.0) += per_checkout(value);
    }
    nats_requests_by_method.retain(|_, value| *value >= 0.01);
    Costs {
        measured_seconds,
        idle_seconds,
        database_commits_per_checkout: per_checkout(corrected_total),
        database_commits_per_checkout_raw: per_checkout(raw_total),
        database_commits_by_service: by_service,
        writing_transactions_per_checkout: per_checkout(
            (end.next_transaction_id - start.next_transaction_id) as f64
                - background((start.next_transaction_id - idle_start.next_transaction_id) as f64),
        ),
        nats_requests_per_checkout: per_checkout(corrected("rpc_server_requests_total")),
        nats_requests_by_method,
        events_published_per_checkout: per_checkout(corrected("events_published_total")),
        events_consumed_per_checkout: per_checkout(corrected("events_consumed_total")),
    }
}

/// Prometheus text as series: (metric name, labels) -> value. Only what the scenario reads
/// (counters, histogram sums and counts) matters; bucket lines parse like any other series.
#[derive(Clone, Debug, Default)]
struct Series(BTreeMap<(String, BTreeMap<String, String>), f64>);

impl Series {
    fn parse(text: &str) -> Self {
        let mut series = BTreeMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((head, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let (name, labels) = match head.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest.trim_end_matches('}'))),
                None => (head, BTreeMap::new()),
            };
            series.insert((name.to_owned(), labels), value);
        }
        Self(series)
    }

    /// `self - before`, series by series (a series absent before counts from 0).
    fn minus(&self, before: &Series) -> Series {
        Series(
            self.0
                .iter()
                .map(|(key, value)| (key.clone(), value - before.0.get(key).unwrap_or(&0.0)))
                .collect(),
        )
    }

    /// The series of `name` whose labels include `wanted`.
    fn matching<'a>(
        &'a self,
        name: &'a str,
        wanted: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = (&'a BTreeMap<String, String>, f64)> + 'a {
        self.0
            .iter()
            .filter(move |((series, labels), _)| {
                series == name
                    && wanted
                        .iter()
                        .all(|(k, v)| labels.get(*k).is_some_and(|l| l == v))
            })
            .map(|((_, labels), value)| (labels, *value))
    }

    fn sum(&self, name: &str, wanted: &[(&str, &str)]) -> f64 {
        self.matching(name, wanted).map(|(_, value)| value).sum()
    }
}

/// `a="x",b="y"` (values escaped as Prometheus escapes them).
fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(if escaped == 'n' { '\n' } else { escaped });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        labels.insert(key.trim_start_matches(',').trim().to_owned(), value);
        rest = &after[end..];
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_is_read_into_series_and_subtracted() {
        let before = Series::parse(
            "# TYPE rpc_server_requests_total counter\n\
             rpc_server_requests_total{service=\"order\",method=\"Checkout\",code=\"ok\"} 3\n\
             saga_step_duration_seconds_sum{saga=\"checkout\",step=\"open\",phase=\"action\"} 0.5\n",
        );
        let after = Series::parse(
            "rpc_server_requests_total{service=\"order\",method=\"Checkout\",code=\"ok\"} 10\n\
             rpc_server_requests_total{service=\"cart\",method=\"Get\\\"Cart\",code=\"ok\"} 4\n\
             saga_step_duration_seconds_sum{saga=\"checkout\",step=\"open\",phase=\"action\"} 1.5\n\
             process_start_time_seconds 17\n",
        );
        let delta = after.minus(&before);
        assert_eq!(delta.sum("rpc_server_requests_total", &[]), 11.0);
        assert_eq!(
            delta.sum("rpc_server_requests_total", &[("service", "order")]),
            7.0
        );
        assert_eq!(
            delta.sum("rpc_server_requests_total", &[("method", "Get\"Cart")]),
            4.0
        );
        assert_eq!(
            delta.sum(
                "saga_step_duration_seconds_sum",
                &[("saga", "checkout"), ("step", "open")]
            ),
            1.0
        );
        assert_eq!(delta.sum("process_start_time_seconds", &[]), 17.0);
    }
}
