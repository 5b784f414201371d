//! The settings every binary shares, as clap argument groups a binary flattens into its own
//! typed config struct. Each value comes from a flag or its environment variable, is read once
//! at start-up and passed down; nothing else reads the environment.
//!
//! Defaults work with the dev stack (`make up`). This crate must never hold a secret's value
//! in a `Debug` output or a log line.

use std::net::SocketAddr;
use std::time::Duration;

pub use telemetry::TelemetryArgs;

/// Where NATS is and who this process is on it.
///
/// Every connection authenticates: the platform's nats-server lets nobody in without a
/// credential, and gives each user only the subjects its contract needs (see `pkg/trust`).
/// Replies come back through a private inbox prefix, `_INBOX_<user>`, which only that user may
/// subscribe to.
#[derive(clap::Args, Clone)]
pub struct NatsArgs {
    /// NATS server URL(s), comma separated. `tls://` requires TLS.
    #[arg(
        long = "nats-url",
        env = "NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats_url: String,
    /// A file holding this process's NKEY seed (`SU...`): its NATS identity. The dev stack and
    /// docker-compose generate one per service at start-up.
    #[arg(
        long = "nats-nkey-file",
        env = "NATS_NKEY_FILE",
        conflicts_with = "nats_creds_file"
    )]
    pub nats_nkey_file: Option<std::path::PathBuf>,
    /// A NATS credentials file (a user JWT and its seed), for servers run in operator mode.
    #[arg(long = "nats-creds-file", env = "NATS_CREDS_FILE")]
    pub nats_creds_file: Option<std::path::PathBuf>,
    /// PEM file of the certificate authorities to trust for TLS to NATS (implies TLS).
    #[arg(long = "nats-tls-ca-file", env = "NATS_TLS_CA_FILE")]
    pub nats_tls_ca_file: Option<std::path::PathBuf>,
    /// Client certificate (PEM) for servers that verify clients; with `--nats-tls-key-file`.
    #[arg(
        long = "nats-tls-cert-file",
        env = "NATS_TLS_CERT_FILE",
        requires = "nats_tls_key_file"
    )]
    pub nats_tls_cert_file: Option<std::path::PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(
        long = "nats-tls-key-file",
        env = "NATS_TLS_KEY_FILE",
        requires = "nats_tls_cert_file"
    )]
    pub nats_tls_key_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for NatsArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsArgs")
            .field("nats_url", &self.nats_url)
            .field("nats_nkey_file", &self.nats_nkey_file)
            .field("nats_creds_file", &self.nats_creds_file)
            .field("nats_tls_ca_file", &self.nats_tls_ca_file)
            .field("nats_tls_cert_file", &self.nats_tls_cert_file)
            .finish_non_exhaustive()
    }
}

/// The inbox prefix of the NATS user `user`: replies to its requests arrive under
/// `_INBOX_<user>.>`, which the server lets only that user subscribe to.
pub fn inbox_prefix(user: &str) -> String {
    format!("_INBOX_{user}")
}

impl NatsArgs {
    /// Args for `url` with no credential (a server without authorization, or a test that
    /// fills the credential in).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            nats_url: url.into(),
            nats_nkey_file: None,
            nats_creds_file: None,
            nats_tls_ca_file: None,
            nats_tls_cert_file: None,
            nats_tls_key_file: None,
        }
    }

    /// The NKEY seed in `--nats-nkey-file`, if one is configured: the process's identity, which
    /// the auth service also signs its key set with.
    pub fn nkey_seed(&self) -> anyhow::Result<Option<String>> {
        let Some(path) = &self.nats_nkey_file else {
            return Ok(None);
        };
        let seed = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading the NATS NKEY seed {}: {e}", path.display()))?;
        let seed = seed.trim().to_owned();
        anyhow::ensure!(
            seed.starts_with("SU"),
            "{} does not hold a NATS user NKEY seed (SU...)",
            path.display()
        );
        Ok(Some(seed))
    }

    /// Connects as NATS user `user` (its credential from the flags; replies through its private
    /// inbox prefix) with a client name (shown by `nats server report connections`), and
    /// retries the first connection for a while, so services can start before the server.
    pub async fn connect(
        &self,
        user: &str,
        client_name: &str,
    ) -> anyhow::Result<async_nats::Client> {
        let mut options = match (&self.nats_creds_file, self.nkey_seed()?) {
            (Some(path), _) => async_nats::ConnectOptions::with_credentials_file(path)
                .await
                .map_err(|e| anyhow::anyhow!("reading NATS credentials {}: {e}", path.display()))?,
            (None, Some(seed)) => async_nats::ConnectOptions::with_nkey(seed),
            (None, None) => async_nats::ConnectOptions::new(),
        };
        if let Some(ca) = &self.nats_tls_ca_file {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let (Some(cert), Some(key)) = (&self.nats_tls_cert_file, &self.nats_tls_key_file) {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        let options = options
            .name(client_name)
            .custom_inbox_prefix(inbox_prefix(user))
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
