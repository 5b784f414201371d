//! The settings every binary shares, as clap argument groups a binary flattens into its own
//! typed config struct. Each value comes from a flag or its environment variable, is read once
//! at start-up and passed down; nothing else reads the environment.
//!
//! Defaults work with the dev stack (`make up`). This crate must never hold a secret's value
//! in a `Debug` output or a log line.

use std::net::SocketAddr;
use std::time::Duration;

pub use telemetry::TelemetryArgs;

/// Where NATS is.
#[derive(clap::Args, Clone, Debug)]
pub struct NatsArgs {
    /// NATS server URL(s), comma separated.
    #[arg(
        long = "nats-url",
        env = "NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats_url: String,
}

impl NatsArgs {
    /// Connects with a client name (shown by `nats server report connections`) and retries
    /// the first connection for a while, so services can start before the server.
    pub async fn connect(&self, client_name: &str) -> anyhow::Result<async_nats::Client> {
        let options = async_nats::ConnectOptions::new()
            .name(client_name)
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5));
        let client = tokio::time::timeout(
            Duration::from_secs(30),
            options.connect(self.nats_url.as_str()),
        )
        .await
        .map_err(|_| anyhow::anyhow!("no NATS server at {} after 30 s", self.nats_url))?
        .map_err(|e| anyhow::anyhow!("connecting to NATS at {}: {e}", self.nats_url))?;
        Ok(client)
    }
}

/// Where the service's PostgreSQL database is.
#[derive(clap::Args, Clone)]
pub struct PostgresArgs {
    /// PostgreSQL URL; defaults to the service's database on the dev stack's server.
    #[arg(long = "database-url", env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Connections in the pool.
    #[arg(
        long = "database-max-connections",
        env = "DATABASE_MAX_CONNECTIONS",
        default_value_t = 10
    )]
    pub max_connections: u32,
    /// The `statement_timeout` of every pooled connection, in milliseconds (0: none): no
    /// statement runs longer than a request may. A request's transaction is bounded by the
    /// time the request has left, when that is shorter.
    #[arg(
        long = "database-statement-timeout-ms",
        env = "DATABASE_STATEMENT_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub statement_timeout_ms: u64,
}

impl PostgresArgs {
    /// The configured URL, or `postgres://postgres@127.0.0.1:5432/<database>`.
    pub fn url_or_default(&self, database: &str) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("postgres://postgres@127.0.0.1:5432/{database}"))
    }

    pub fn statement_timeout(&self) -> Duration {
        Duration::from_millis(self.statement_timeout_ms)
    }
}

impl std::fmt::Debug for PostgresArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresArgs")
            .field(
                "database_url",
                &self.database_url.as_ref().map(|_| "<redacted>"),
            )
            .field("max_connections", &self.max_connections)
            .field("statement_timeout_ms", &self.statement_timeout_ms)
            .finish()
    }
}

/// Where Redis is.
#[derive(clap::Args, Clone)]
pub struct RedisArgs {
    /// Redis URL: `redis://[:password@]host:port[/db]`, or `rediss://` for TLS (verified
    /// against the system's roots, or `--redis-tls-ca-file`); `rediss://host:port/#insecure`
    /// skips verification, for a development server with a self-signed certificate only.
    #[arg(
        long = "redis-url",
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    pub redis_url: String,
    /// PEM file of the certificate authority a `rediss://` server's certificate is verified
    /// against, instead of the system's roots.
    #[arg(long = "redis-tls-ca-file", env = "REDIS_TLS_CA_FILE")]
    pub redis_tls_ca_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for RedisArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisArgs")
            .field("redis_url", &"<redacted>")
            .field("redis_tls_ca_file", &self.redis_tls_ca_file)
            .finish()
    }
}

/// Where MongoDB is, if anywhere; document services fall back to PostgreSQL JSONB without it.
#[derive(clap::Args, Clone)]
pub struct MongoArgs {
    #[arg(long = "mongodb-url", env = "MONGODB_URL")]
    pub mongodb_url: Option<String>,
}

impl std::fmt::Debug for MongoArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoArgs")
            .field(
                "mongodb_url",
                &self.mongodb_url.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// The transactional outbox's relay, for services that publish domain events.
#[derive(clap::Args, Clone, Debug)]
pub struct OutboxArgs {
    /// How long published events stay in the outbox (for `cargo xtask events republish`),
    /// in seconds.
    #[arg(long, env = "OUTBOX_RETENTION_SECS", default_value_t = 86_400)]
    pub outbox_retention_secs: u64,
    /// How often the outbox relay looks for events when no notification woke it, in
    /// milliseconds (at least 10).
    #[arg(long, env = "OUTBOX_POLL_INTERVAL_MS", default_value_t = 1_000)]
    pub outbox_poll_interval_ms: u64,
}

impl OutboxArgs {
    pub fn retention(&self) -> Duration {
        Duration::from_secs(self.outbox_retention_secs)
    }

    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.outbox_poll_interval_ms.max(10))
    }
}

/// What every service is configured with: where NATS is, its admin HTTP port (health and
/// metrics), its request limits and its logging set-up.
#[derive(clap::Args, Clone, Debug)]
pub struct ServiceArgs {
    #[command(flatten)]
    pub nats: NatsArgs,
    /// Address of the admin HTTP server (/health/live, /health/ready, /metrics); a free port
    /// on 127.0.0.1 when not given.
    #[arg(long = "admin-addr", env = "ADMIN_ADDR")]
    pub admin_addr: Option<SocketAddr>,
    /// Requests one endpoint handles at once per replica.
    #[arg(long = "max-in-flight", env = "MAX_IN_FLIGHT", default_value_t = 256)]
    pub max_in_flight: usize,
    /// Deadline of a request that comes without one, in milliseconds.
    #[arg(
        long = "request-timeout-ms",
        env = "REQUEST_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub request_timeout_ms: u64,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

impl ServiceArgs {
    /// The configured admin address, or a free port on 127.0.0.1 (the service logs the one it
    /// bound). The dev stack and docker-compose give each service the port
    /// `apps/services.toml` lists, so that file is the only place admin ports are written.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}
