//! Scenario 8: live order status. Many customers hold a server-sent events connection each
//! (`GET /api/v1/orders/{id}/events`) to one gateway process, and order events are committed
//! to the EVENTS_ORDER stream at a fixed rate spread over the orders.
//!
//! Set-up: the order service (in this process) on its own database, seeded with paid orders
//! (rows written directly: checkouts are scenario 7's business), and the gateway binary as a
//! process of its own so its resident memory is its own. Every connection is a customer's
//! (their token, their order); opening it runs the real access check and snapshot
//! (`order.WatchOrder`) and registers it with the gateway's fan-out.
//!
//! The events are published the way the order service's outbox relay publishes them (its
//! subject, a JetStream publish that waits for the stream's ack) at `rate` per second, the
//! orders taken in turn; each carries its publish time, and each client reads it off the
//! stream: the latency is from the publish (the moment the event is committed to the stream)
//! to the client reading it, through the fan-out consumer, the routing and the socket.
//!
//! Measured: p50/p99/max of that latency, the gateway's RSS idle and with every connection
//! open (and the difference per connection), how long opening them took. Honesty checks:
//! every connection received its snapshot, and every event reached every connection
//! following its order (deliveries expected = received).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail, ensure};
use futures::StreamExt as _;
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::memory::{raise_open_file_limit, rss_mib};
use crate::platform::{Servers, write_jwks};

/// Targets.
pub const P99_LIMIT_MS: f64 = 250.0;
pub const RSS_LIMIT_MIB: f64 = 200.0;

/// How the scenario runs.
#[derive(Clone, Debug, Serialize)]
pub struct LiveOptions {
    pub connections: usize,
    pub orders: usize,
    /// Events per second, over all orders.
    pub rate: f64,
    pub duration: Duration,
    /// Connections being opened at once.
    pub opening_concurrency: usize,
    pub settle: Duration,
}

impl LiveOptions {
    pub fn full() -> Self {
        Self {
            connections: 10_000,
            orders: 1_000,
            rate: 50.0,
            duration: Duration::from_secs(30),
            opening_concurrency: 200,
            settle: Duration::from_secs(3),
        }
    }

    pub fn smoke() -> Self {
        Self {
            connections: 200,
            orders: 20,
            rate: 20.0,
            duration: Duration::from_secs(3),
            opening_concurrency: 50,
            settle: Duration::from_millis(500),
        }
    }
}

/// The figures of scenario 8.
#[derive(Clone, Debug, Serialize)]
pub struct Live {
    pub connections: usize,
    pub orders: usize,
    pub connections_per_order: usize,
    pub rate_per_second: f64,
    pub seconds: f64,
    pub events_published: u64,
    pub deliveries_expected: u64,
    pub deliveries_received: u64,
    /// Publish (stream ack requested) to the client reading the event.
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_max_ms: f64,
    pub p99_limit_ms: f64,
    /// Seconds to open every connection (snapshot received), `opening_concurrency` at once.
    pub opening_seconds: f64,
    pub gateway_idle_mib: f64,
    pub gateway_with_connections_mib: f64,
    pub gateway_kib_per_connection: f64,
    pub rss_limit_mib: f64,
    /// After the events: the RSS with the connections still open.
    pub gateway_after_events_mib: f64,
}

/// The report of `bench --scenario live`.
#[derive(Clone, Debug, Serialize)]
pub struct LiveReport {
    pub mode: String,
    pub started_at_unix: u64,
    pub cpus: usize,
    pub live: Live,
    pub targets_met: bool,
}

impl LiveReport {
    pub fn table(&self) -> String {
        let l = &self.live;
        let mark = |ok: bool| if ok { "ok" } else { "MISSED" };
        format!(
            "scenario 8: live order status ({} mode, {} cpus)\n\
             connections held                  {:>10}  ({} orders, {} per order)\n\
             opening them                      {:>10.1} s\n\
             events                            {:>10}  ({:.0}/s for {:.0} s)\n\
             deliveries received / expected    {:>10} / {}\n\
             publish -> client p50             {:>10.1} ms\n\
             publish -> client p99             {:>10.1} ms  (target <= {:.0} ms: {})\n\
             publish -> client max             {:>10.1} ms\n\
             gateway RSS idle                  {:>10.1} MiB\n\
             gateway RSS with the connections  {:>10.1} MiB  (target <= {:.0} MiB: {})\n\
             per idle connection               {:>10.1} KiB\n\
             gateway RSS after the events      {:>10.1} MiB\n",
            self.mode,
            self.cpus,
            l.connections,
            l.orders,
            l.connections_per_order,
            l.opening_seconds,
            l.events_published,
            l.rate_per_second,
            l.seconds,
            l.deliveries_received,
            l.deliveries_expected,
            l.latency_p50_ms,
            l.latency_p99_ms,
            l.p99_limit_ms,
            mark(l.latency_p99_ms <= l.p99_limit_ms),
            l.latency_max_ms,
            l.gateway_idle_mib,
            l.gateway_with_connections_mib,
            l.rss_limit_mib,
            mark(l.gateway_with_connections_mib <= l.rss_limit_mib),
            l.gateway_kib_per_connection,
            l.gateway_after_events_mib,
        )
    }
}

/// Runs the scenario alone.
pub async fn run(
    mode: &str,
    gateway_bin: &std::path::Path,
    options: &LiveOptions,
) -> anyhow::Result<LiveReport> {
    let started_at_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    raise_open_file_limit(options.connections as u64 + 1024)?;
    let servers = Servers::start().await?;
    let live = live(&servers, gateway_bin, options).await?;
    let targets_met = live.latency_p99_ms <= P99_LIMIT_MS
        && live.gateway_with_connections_mib <= RSS_LIMIT_MIB
        && live.deliveries_received == live.deliveries_expected;
    Ok(LiveReport {
        mode: mode.to_owned(),
        started_at_unix,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        live,
        targets_met,
    })
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The gateway binary as a child process, killed when dropped.
struct GatewayProcess {
    child: Child,
    addr: SocketAddr,
}

impl GatewayProcess {
    async fn start(
        servers: &Servers,
        binary: &std::path::Path,
        jwks: &std::path::Path,
        log: &std::path::Path,
        connections: usize,
    ) -> anyhow::Result<Self> {
        let seed = servers
            .nats
            .credentials()
            .seed_file("gateway")
            .context("the gateway's NATS identity")?;
        let port = free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log_file = std::fs::File::create(log)?;
        let child = Command::new(binary)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--nats-url",
                servers.nats.url(),
                "--nats-nkey-file",
                seed.to_str().context("a UTF-8 path")?,
                "--redis-url",
                servers.redis.url(),
                "--jwt-jwks-file",
                jwks.to_str().context("a UTF-8 path")?,
                "--rate-limits",
                "default=1000000000/1",
                "--max-in-flight",
                "100000",
                "--live-max-connections",
                &(connections + 100).to_string(),
            ])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut process = Self { child, addr };
        let started = Instant::now();
        loop {
            if let Some(status) = process.child.try_wait()? {
                bail!("the gateway exited with {status}; see {}", log.display());
            }
            if let Ok((200, _)) = crate::http::get(addr, telemetry::admin::READY_PATH).await {
                break;
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!(
                    "the gateway was not ready after 60 s; see {}",
                    log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        process.addr = addr;
        Ok(process)
    }

    fn rss_mib(&self) -> anyhow::Result<f64> {
        rss_mib(self.child.id().context("the gateway exited")?)
    }

    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: kill only sends a signal to the child we spawned.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

async fn live(
    servers: &Servers,
    gateway_bin: &std::path::Path,
    options: &LiveOptions,
) -> anyhow::Result<Live> {
    // The order service, on a database of its own that the orders are written to.
    let database = testkit::fresh_database().await?;
    let mut config = <order_service::Config as clap::Parser>::try_parse_from(["order-service"])?;
    config.service.nats = servers.nats.args_for("order");
    config.postgres.database_url = Some(database.url().to_owned());
    config.service.admin_addr = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    let order_service = testkit::ServiceTask::start(order_service::start(config)).await;

    let pool = sqlx::PgPool::connect(database.url()).await?;
    let orders = seed_orders(&pool, options.orders).await?;

    let (dir, jwks, key) = write_jwks()?;
    let result = async {
        let gateway = GatewayProcess::start(
            servers,
            gateway_bin,
            &jwks,
            &dir.join("gateway.log"),
            options.connections,
        )
        .await?;
        tokio::time::sleep(options.settle).await;
        let measured = measure(servers, &gateway, &key, &orders, options).await;
        gateway.stop().await;
        measured
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    order_service.stop().await;
    result
}

/// Paid orders of one sub-order each, each of its own customer: (order id, user id).
async fn seed_orders(pool: &sqlx::PgPool, count: usize) -> anyhow::Result<Vec<(String, String)>> {
    let mut orders = Vec::with_capacity(count);
    let mut tx = pool.begin().await?;
    for _ in 0..count {
        let (order_id, user_id) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        sqlx::query(
            "INSERT INTO orders (id, user_id, idempotency_key, status, currency, shipping_method, \
             shipping_address_id, payment_method_id) \
             VALUES ($1, $2, $3, 'paid', 'USD', 'standard', $4, 'pm_bench')",
        )
        .bind(order_id)
        .bind(user_id)
        .bind(order_id.to_string())
        .bind(uuid::Uuid::now_v7())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO sub_orders (id, order_id, shop_id, status, subtotal, discount, shipping, \
             tax, total) VALUES ($1, $2, $3, 'paid', 0, 0, 0, 0, 0)",
        )
        .bind(uuid::Uuid::now_v7())
        .bind(order_id)
        .bind(uuid::Uuid::now_v7())
        .execute(&mut *tx)
        .await?;
        orders.push((order_id.to_string(), user_id.to_string()));
    }
    tx.commit().await?;
    Ok(orders)
}

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// One SSE client: its connection, opened up to the snapshot.
struct Client {
    stream: TcpStream,
    order: usize,
}

async fn open_client(
    addr: SocketAddr,
    order_id: &str,
    token: &str,
    order: usize,
) -> anyhow::Result<Client> {
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(
            format!(
                "GET /api/v1/orders/{order_id}/events HTTP/1.1\r\nHost: {addr}\r\n\
                 Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
            )
            .as_bytes(),
        )
        .await?;
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buffer))
            .await
            .context("no snapshot within 30 s")??;
        ensure!(
            n > 0,
            "the gateway closed the connection before the snapshot"
        );
        seen.extend_from_slice(&buffer[..n]);
        if !seen.starts_with(b"HTTP/1.1 200") && seen.len() >= 12 {
            bail!(
                "{}",
                String::from_utf8_lossy(&seen)
                    .lines()
                    .next()
                    .unwrap_or_default()
            );
        }
        if seen.windows(14).any(|w| w == b"event:snapshot")
            || seen.windows(15).any(|w| w == b"event: snapshot")
        {
            return Ok(Client { stream, order });
        }
    }
}

/// Reads events until `stop`, recording each publish-to-read latency.
async fn read_events(
    mut client: Client,
    histogram: Arc<Mutex<Histogram<u64>>>,
    received: Arc<Mutex<Vec<u64>>>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    const MARK: &[u8] = b"\"time\":\"";
    let mut pending: Vec<u8> = Vec::new();
    let mut buffer = vec![0u8; 8192];
    let mut stop = stop;
    let mut count = 0u64;
    loop {
        let n = tokio::select! {
            read = client.stream.read(&mut buffer) => read?,
            _ = stop.wait_for(|s| *s) => break,
        };
        if n == 0 {
            bail!("the gateway closed a live connection");
        }
        let now = unix_nanos();
        pending.extend_from_slice(&buffer[..n]);
        // Whole lines only; a line may be split across reads.
        let Some(last_newline) = pending.iter().rposition(|b| *b == b'\n') else {
            continue;
        };
        let lines: Vec<u8> = pending.drain(..=last_newline).collect();
        for line in lines.split(|b| *b == b'\n') {
            if !line.starts_with(b"data:") {
                continue;
            }
            let Some(at) = line.windows(MARK.len()).position(|w| w == MARK) else {
                continue;
            };
            let rest = &line[at + MARK.len()..];
            let end = rest.iter().position(|b| *b == b'"').unwrap_or(rest.len());
            let Some(sent) = std::str::from_utf8(&rest[..end])
                .ok()
                .and_then(|s| s.parse::<u128>().ok())
            else {
                continue;
            };
            let micros = (now.saturating_sub(sent) / 1_000) as u64;
            let _ = histogram.lock().map(|mut h| h.record(micros.max(1)));
            count += 1;
        }
    }
    if let Ok(mut received) = received.lock() {
        received[client.order] += count;
    }
    Ok(())
}

async fn measure(
    servers: &Servers,
    gateway: &GatewayProcess,
    key: &tokens::SigningKey,
    orders: &[(String, String)],
    options: &LiveOptions,
) -> anyhow::Result<Live> {
    let gateway_idle_mib = gateway.rss_mib()?;
    let tokens: Vec<String> = orders
        .iter()
        .map(|(_, user)| {
            key.mint(
                user,
                &[],
                Duration::from_secs(3600),
                tokens::DEFAULT_ISSUER,
                tokens::DEFAULT_AUDIENCE,
            )
        })
        .collect();

    // Open every connection, the orders in turn.
    let opening = Instant::now();
    let addr = gateway.addr;
    let clients: Vec<anyhow::Result<Client>> = futures::stream::iter(0..options.connections)
        .map(|n| {
            let order = n % orders.len();
            let (order_id, token) = (orders[order].0.clone(), tokens[order].clone());
            async move { open_client(addr, &order_id, &token, order).await }
        })
        .buffer_unordered(options.opening_concurrency)
        .collect()
        .await;
    let opening_seconds = opening.elapsed().as_secs_f64();
    let clients = clients
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()
        .context("opening the live connections")?;
    let mut followers = vec![0u64; orders.len()];
    for client in &clients {
        followers[client.order] += 1;
    }
    tokio::time::sleep(options.settle).await;
    let gateway_with_connections_mib = gateway.rss_mib()?;

    // Every client reads; the events are published at the rate.
    let histogram = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let received = Arc::new(Mutex::new(vec![0u64; orders.len()]));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let readers: Vec<_> = clients
        .into_iter()
        .map(|client| {
            tokio::spawn(read_events(
                client,
                histogram.clone(),
                received.clone(),
                stopped.clone(),
            ))
        })
        .collect();

    let js = async_nats::jetstream::new(servers.nats.connect().await);
    let interval = Duration::from_secs_f64(1.0 / options.rate);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut published: HashMap<usize, u64> = HashMap::new();
    let started = Instant::now();
    let mut n = 0usize;
    while started.elapsed() < options.duration {
        ticker.tick().await;
        let order = n % orders.len();
        n += 1;
        let order_id = &orders[order].0;
        let payload = serde_json::json!({"order": {"id": order_id, "status": "paid",
            "updated_at": unix_nanos().to_string()}});
        let ack = js
            .publish(
                format!("events.order.{order_id}.paid"),
                payload.to_string().into(),
            )
            .await?;
        // The ack is awaited off the schedule, so a slow ack does not slow the rate.
        tokio::spawn(async move {
            let _ = ack.await;
        });
        *published.entry(order).or_default() += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    // Let the last events arrive, then stop the readers.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let gateway_after_events_mib = gateway.rss_mib()?;
    stop.send_replace(true);
    let mut failures = Vec::new();
    for reader in readers {
        if let Err(error) = reader.await? {
            failures.push(error.to_string());
        }
    }
    ensure!(
        failures.is_empty(),
        "{} live connections failed, e.g.: {}",
        failures.len(),
        failures[0]
    );
    let deliveries_expected: u64 = published
        .iter()
        .map(|(order, events)| events * followers[*order])
        .sum();
    let deliveries_received: u64 = received.lock().map(|r| r.iter().sum()).unwrap_or(0);
    let histogram = histogram.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let ms = |micros: u64| micros as f64 / 1000.0;
    Ok(Live {
        connections: options.connections,
        orders: orders.len(),
        connections_per_order: options.connections / orders.len().max(1),
        rate_per_second: options.rate,
        seconds,
        events_published: published.values().sum(),
        deliveries_expected,
        deliveries_received,
        latency_p50_ms: ms(histogram.value_at_quantile(0.5)),
        latency_p99_ms: ms(histogram.value_at_quantile(0.99)),
        latency_max_ms: ms(histogram.max()),
        p99_limit_ms: P99_LIMIT_MS,
        opening_seconds,
        gateway_idle_mib,
        gateway_with_connections_mib,
        gateway_kib_per_connection: (gateway_with_connections_mib - gateway_idle_mib) * 1024.0
            / options.connections.max(1) as f64,
        rss_limit_mib: RSS_LIMIT_MIB,
        gateway_after_events_mib,
    })
}
