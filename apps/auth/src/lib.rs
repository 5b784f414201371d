//! The auth service: accounts and their credentials, sessions with rotating refresh tokens,
//! roles, and the keys access tokens are signed with.
//!
//! It serves the `auth` contract (`pkg/api/proto/emporium/auth/v1/auth.proto`) over NATS.
//! Accounts and signing keys live in its own PostgreSQL database; sessions, refresh tokens and
//! login attempt counters in Redis. A registration writes the account and its
//! `user.registered` event in one transaction (the outbox in `pkg/events`), which the relay
//! publishes to EVENTS_USER. A request flows handler (`handlers.rs`) -> domain (`domain.rs`,
//! pure rules) -> store (`store.rs`, SQL), `sessions.rs` (Redis), `passwords.rs` (argon2id,
//! bounded) and `keys.rs` (signing).
//!
//! It is the only service that mints access tokens; the gateway verifies them with the key set
//! this service publishes. It must never log a password, a token or a hash, speak HTTP, read
//! another service's data, or write a NATS subject by hand.

pub mod domain;
mod error;
mod handlers;
pub mod keys;
pub mod login_limits;
pub mod passwords;
pub mod sessions;
pub mod store;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

pub use error::Error;
pub use handlers::{AuthHandlers, REGISTERED_MESSAGE, TokenSettings};

/// Everything the service reads at start-up, from flags or environment variables.
#[derive(clap::Parser, Clone, Debug)]
#[command(name = "auth-service", version, about)]
pub struct Config {
    #[command(flatten)]
    pub postgres: config::PostgresArgs,
    #[command(flatten)]
    pub redis: config::RedisArgs,
    #[command(flatten)]
    pub service: config::ServiceArgs,

    /// The Ed25519 private key (PKCS#8 PEM) that signs access tokens: the production path.
    /// Without it, keys are kept in the database (a development convenience).
    #[arg(long, env = "AUTH_SIGNING_KEY_FILE")]
    pub signing_key_file: Option<PathBuf>,
    /// The key id (`kid`) of the key in `--signing-key-file`.
    #[arg(long, env = "AUTH_SIGNING_KEY_ID", default_value = "auth-1")]
    pub signing_key_id: String,
    /// The `iss` of access tokens.
    #[arg(long, env = "AUTH_TOKEN_ISSUER", default_value = tokens::DEFAULT_ISSUER)]
    pub token_issuer: String,
    /// The `aud` of access tokens.
    #[arg(long, env = "AUTH_TOKEN_AUDIENCE", default_value = tokens::DEFAULT_AUDIENCE)]
    pub token_audience: String,
    /// How long an access token is valid, in seconds.
    #[arg(long, env = "AUTH_ACCESS_TOKEN_TTL_SECS", default_value_t = 900)]
    pub access_token_ttl_secs: u64,
    /// How long a refresh token is valid unless it is used, in seconds (30 days).
    #[arg(long, env = "AUTH_REFRESH_TOKEN_TTL_SECS", default_value_t = 2_592_000)]
    pub refresh_token_ttl_secs: u64,
    /// Addresses that get the admin role when they register, comma separated: how the first
    /// admin is made.
    #[arg(long, env = "AUTH_ADMIN_EMAILS", value_delimiter = ',')]
    pub admin_emails: Vec<String>,
    /// Password hashes computed at once; defaults to the available parallelism.
    #[arg(long, env = "AUTH_MAX_CONCURRENT_HASHES")]
    pub max_concurrent_hashes: Option<usize>,
    /// How long a request waits for a hashing slot before it is answered `unavailable`, in
    /// milliseconds.
    #[arg(long, env = "AUTH_HASH_QUEUE_TIMEOUT_MS", default_value_t = 2_000)]
    pub hash_queue_timeout_ms: u64,
    /// Failed logins per account within `--login-failure-window-secs` before further
    /// attempts are refused.
    #[arg(long, env = "AUTH_LOGIN_FAILURES_PER_ACCOUNT", default_value_t = 5)]
    pub login_failures_per_account: u32,
    #[arg(long, env = "AUTH_LOGIN_FAILURE_WINDOW_SECS", default_value_t = 900)]
    pub login_failure_window_secs: u64,
    /// Login attempts per client address within `--login-client-window-secs`.
    #[arg(long, env = "AUTH_LOGIN_ATTEMPTS_PER_CLIENT", default_value_t = 20)]
    pub login_attempts_per_client: u32,
    #[arg(long, env = "AUTH_LOGIN_CLIENT_WINDOW_SECS", default_value_t = 300)]
    pub login_client_window_secs: u64,
    #[command(flatten)]
    pub outbox: config::OutboxArgs,
}

impl Config {
    fn token_settings(&self) -> TokenSettings {
        TokenSettings {
            access_token_ttl: Duration::from_secs(self.access_token_ttl_secs.max(1)),
            issuer: self.token_issuer.clone(),
            audience: self.token_audience.clone(),
        }
    }

    fn login_limit_settings(&self) -> login_limits::LoginLimitSettings {
        login_limits::LoginLimitSettings {
            failures_per_account: self.login_failures_per_account,
            account_window: Duration::from_secs(self.login_failure_window_secs),
            attempts_per_client: self.login_attempts_per_client,
            client_window: Duration::from_secs(self.login_client_window_secs),
        }
    }

    fn max_concurrent_hashes(&self) -> usize {
        self.max_concurrent_hashes.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
    }

    /// The bootstrap admin addresses, normalised like registrations; a malformed one stops
    /// the start (it could never match, and would hide a typo).
    fn admin_emails(&self) -> anyhow::Result<Vec<domain::Email>> {
        self.admin_emails
            .iter()
            .filter(|e| !e.trim().is_empty())
            .map(|e| {
                domain::Email::parse(e)
                    .map_err(|problem| anyhow::anyhow!("--admin-emails: an address {problem}"))
            })
            .collect()
    }
}

/// Starts the service on what `config` names: NATS, its PostgreSQL database (created and
/// migrated) with the outbox relay, Redis for sessions and login limits, and the signing key
/// (the key file, or the one kept in the database). Requests are served once this returns.
pub async fn start(config: Config) -> anyhow::Result<host::Serving> {
    let admin_emails = config.admin_emails()?;
    let mut host = host::Host::connect(&api::auth::SERVICE, &config.service).await?;
    let pool = host.postgres(&config.postgres, &store::MIGRATOR).await?;
    let redis = host.redis(&config.redis).await?;
    host.outbox(&pool, &config.outbox).await?;
    let keys = match &config.signing_key_file {
        Some(path) => keys::Keys::from_file(path, &config.signing_key_id)?,
        None => keys::Keys::from_database(pool.clone())
            .await
            .context("loading the signing key from the database")?,
    };
    let hasher = passwords::PasswordHasher::new(
        config.max_concurrent_hashes(),
        Duration::from_millis(config.hash_queue_timeout_ms),
    )
    .context("setting up password hashing")?;
    let sessions = sessions::Sessions::new(
        redis.clone(),
        Duration::from_secs(config.refresh_token_ttl_secs.max(1)),
    );
    let login_limits = login_limits::LoginLimits::new(redis, config.login_limit_settings());
    let handlers = AuthHandlers::new(
        pool,
        sessions,
        login_limits,
        hasher,
        Arc::new(keys),
        config.token_settings(),
        admin_emails,
    );
    host.serve(api::auth::endpoints(Arc::new(handlers))).await
}
