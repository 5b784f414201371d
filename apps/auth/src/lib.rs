//! The auth service: accounts and their credentials, sessions with rotating refresh tokens,
//! roles, and the keys access tokens are signed with.
//!
//! It serves the `auth` contract (`pkg/api/proto/emporium/auth/v1/auth.proto`) over NATS.
//! Accounts and signing keys live in its own PostgreSQL database; sessions, refresh tokens and
//! login attempt counters in Redis. A registration writes the account and its
//! `user.registered` event in one transaction (the outbox in `pkg/events`), which the relay
//! publishes to EVENTS_USER. A request flows handler (`handlers.rs`) -> domain (`domain.rs`,
//! pure rules) -> store (`store.rs`, SQL), `sessions.rs` (Redis), `login_limits.rs` (Redis),
//! `passwords.rs` (argon2id, bounded) and `keys.rs` (signing, key rotation). Email
//! verification and password reset links (`email_links.rs`) are random tokens stored hashed,
//! issued with their events (`user.email_verification_requested`,
//! `user.password_reset_requested`) through the same outbox, for the notification service to
//! email; `reset_limits.rs` (Redis) limits reset requests. The binary's
//! one-off commands, making the first admin and rotating a database key, are in
//! `commands.rs`; registering never makes an admin.
//!
//! It is the only service that mints access tokens; the gateway verifies them with the key set
//! this service publishes. It must never log a password, a token or a hash, speak HTTP, read
//! another service's data, or write a NATS subject by hand.

pub mod clock;
pub mod commands;
pub mod domain;
pub mod email_links;
mod error;
mod handlers;
pub mod keys;
pub mod login_limits;
pub mod passwords;
pub mod reset_limits;
pub mod sessions;
pub mod store;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

pub use error::Error;
pub use handlers::{
    AuthHandlers, PASSWORD_RESET_MESSAGE, REGISTERED_MESSAGE, RESET_REQUESTED_MESSAGE,
    TokenSettings, VERIFICATION_REQUESTED_MESSAGE,
};

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
    /// A key published in the key set for verification only, never used to sign, as
    /// `KID=PATH` (a PEM file: the public key, or the private key, of which only the public
    /// half is kept). Repeat it, or separate several with commas. Key rotation: the next key
    /// is published this way on every replica before any replica signs with it, and the
    /// retired key stays published this way until the tokens it signed have expired (see
    /// docs/runbooks/key-rotation.md). Only with `--signing-key-file`.
    #[arg(
        long = "verification-key-file",
        env = "AUTH_VERIFICATION_KEY_FILES",
        value_name = "KID=PATH",
        value_delimiter = ',',
        requires = "signing_key_file"
    )]
    pub verification_key_files: Vec<keys::VerificationKeyFile>,
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
    /// Removed: registering with a listed address no longer makes an admin (whoever registered
    /// first won). Make the first admin with `auth-service bootstrap-admin`. Still accepted,
    /// so that a deployment that sets it starts, and warned about at start-up.
    #[arg(
        long = "admin-emails",
        env = "AUTH_ADMIN_EMAILS",
        value_delimiter = ',',
        hide = true
    )]
    pub removed_admin_emails: Vec<String>,
    /// Password hashes computed at once; defaults to the available parallelism.
    #[arg(long, env = "AUTH_MAX_CONCURRENT_HASHES")]
    pub max_concurrent_hashes: Option<usize>,
    /// How long a request waits for a hashing slot before it is answered `unavailable`, in
    /// milliseconds.
    #[arg(long, env = "AUTH_HASH_QUEUE_TIMEOUT_MS", default_value_t = 2_000)]
    pub hash_queue_timeout_ms: u64,
    /// Failed logins one client (an IPv4 address, or an IPv6 /64) may make on one account
    /// within `--login-failure-window-secs`. Past it that client is refused for that account,
    /// even with the right password, until the window ends; other clients, the owner's among
    /// them, still log in.
    #[arg(
        long,
        env = "AUTH_LOGIN_FAILURES_PER_CLIENT_AND_ACCOUNT",
        default_value_t = 5
    )]
    pub login_failures_per_client_and_account: u32,
    /// The window of the failures counted per client and account, and per account, in
    /// seconds.
    #[arg(long, env = "AUTH_LOGIN_FAILURE_WINDOW_SECS", default_value_t = 900)]
    pub login_failure_window_secs: u64,
    /// Failed logins on one account, from all clients together, within
    /// `--login-failure-window-secs` after which every further attempt on it waits
    /// `--login-account-slowdown-ms`. An account is never locked: this only slows a guessing
    /// campaign spread over many clients (and logs a warning), and the owner still logs in.
    #[arg(long, env = "AUTH_LOGIN_ACCOUNT_SLOWDOWN_AFTER", default_value_t = 20)]
    pub login_account_slowdown_after: u32,
    /// How long each login attempt on an account past `--login-account-slowdown-after` waits
    /// before its password is checked, in milliseconds; 0 turns the slowdown off.
    #[arg(long, env = "AUTH_LOGIN_ACCOUNT_SLOWDOWN_MS", default_value_t = 1_000)]
    pub login_account_slowdown_ms: u64,
    /// Login attempts, on any accounts and whatever their outcome, one client (an IPv4
    /// address, or an IPv6 /64) may make within `--login-client-window-secs`; past it the
    /// client is refused. Requests that did not come through the gateway have no client and
    /// are not counted here.
    #[arg(long, env = "AUTH_LOGIN_ATTEMPTS_PER_CLIENT", default_value_t = 20)]
    pub login_attempts_per_client: u32,
    /// The window of the attempts counted per client, in seconds.
    #[arg(long, env = "AUTH_LOGIN_CLIENT_WINDOW_SECS", default_value_t = 300)]
    pub login_client_window_secs: u64,
    /// Password reset links that may be asked for one address (whether or not an account has
    /// it) within `--password-reset-window-secs`; past it requests are refused
    /// (rate_limited), the same for every address.
    #[arg(
        long,
        env = "AUTH_PASSWORD_RESET_REQUESTS_PER_EMAIL",
        default_value_t = 3
    )]
    pub password_reset_requests_per_email: u32,
    /// Password reset links one client (an IPv4 address, or an IPv6 /64) may ask for, for any
    /// addresses, within `--password-reset-window-secs`. Requests that did not come through
    /// the gateway have no client and are counted per address only.
    #[arg(
        long,
        env = "AUTH_PASSWORD_RESET_REQUESTS_PER_CLIENT",
        default_value_t = 10
    )]
    pub password_reset_requests_per_client: u32,
    /// The window of the password reset request limits, in seconds.
    #[arg(long, env = "AUTH_PASSWORD_RESET_WINDOW_SECS", default_value_t = 3_600)]
    pub password_reset_window_secs: u64,
    #[command(flatten)]
    pub outbox: config::OutboxArgs,
    /// Development only: at start-up, make the demo seller's account (the owner of the demo
    /// shop, `vocab::demo`) with this password, unless it exists. `make up` sets it and prints
    /// the login.
    #[arg(long, env = "AUTH_SEED_DEMO_SELLER_PASSWORD", hide_env_values = true)]
    pub seed_demo_seller_password: Option<String>,
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
            failures_per_client_and_account: self.login_failures_per_client_and_account,
            failure_window: Duration::from_secs(self.login_failure_window_secs),
            account_slowdown_after: self.login_account_slowdown_after,
            account_slowdown: Duration::from_millis(self.login_account_slowdown_ms),
            attempts_per_client: self.login_attempts_per_client,
            client_window: Duration::from_secs(self.login_client_window_secs),
        }
    }

    fn reset_limit_settings(&self) -> reset_limits::ResetLimitSettings {
        reset_limits::ResetLimitSettings {
            requests_per_email: self.password_reset_requests_per_email,
            requests_per_client: self.password_reset_requests_per_client,
            window: Duration::from_secs(self.password_reset_window_secs),
        }
    }

    fn max_concurrent_hashes(&self) -> usize {
        self.max_concurrent_hashes.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
    }
}

/// Starts the service on what `config` names: NATS, its PostgreSQL database (created and
/// migrated) with the outbox relay, Redis for sessions and login limits, and the signing key
/// (the key file, or the one kept in the database). Requests are served once this returns.
pub async fn start(config: Config) -> anyhow::Result<host::Serving> {
    start_with_clock(config, clock::Clock::system()).await
}

/// [`start`] with the clock email links expire and sessions are dated by: tests pass one they
/// move forward instead of waiting.
pub async fn start_with_clock(
    config: Config,
    clock: clock::Clock,
) -> anyhow::Result<host::Serving> {
    if !config.removed_admin_emails.is_empty() {
        tracing::warn!(
            "--admin-emails (AUTH_ADMIN_EMAILS) was removed and is ignored: registering never \
             makes an admin; make the first admin with `auth-service bootstrap-admin`"
        );
    }
    let mut host = host::Host::connect(&api::auth::SERVICE, &config.service).await?;
    let pool = host.postgres(&config.postgres, &store::MIGRATOR).await?;
    // Sessions and sign-in limits: without Redis, sign-in answers `unavailable` and the rest
    // of the service (keys, registration, accounts) keeps working.
    let redis = host.redis_optional(&config.redis)?;
    host.outbox(&pool, &config.outbox).await?;
    let token_settings = config.token_settings();
    let keys = Arc::new(match &config.signing_key_file {
        Some(path) => {
            keys::Keys::from_files(path, &config.signing_key_id, &config.verification_key_files)?
        }
        None => keys::Keys::from_database(pool.clone(), token_settings.access_token_ttl)
            .await
            .context("loading the signing key from the database")?,
    });
    if keys.follows_database() {
        let keys = keys.clone();
        host.background("signing key refresh", move |cancel| {
            tokio::spawn(keys.follow_database(cancel))
        });
    }
    let hasher = passwords::PasswordHasher::new(
        config.max_concurrent_hashes(),
        Duration::from_millis(config.hash_queue_timeout_ms),
    )
    .context("setting up password hashing")?;
    if let Some(password) = &config.seed_demo_seller_password {
        commands::seed_demo_seller(&pool, &hasher, password)
            .await
            .context("seeding the demo seller")?;
    }
    let sessions = sessions::Sessions::new(
        redis.clone(),
        Duration::from_secs(config.refresh_token_ttl_secs.max(1)),
    )
    .with_clock(clock.clone());
    let login_limits = login_limits::LoginLimits::new(redis.clone(), config.login_limit_settings());
    let reset_limits = reset_limits::ResetLimits::new(redis, config.reset_limit_settings());
    let handlers = AuthHandlers::new(
        pool,
        sessions,
        login_limits,
        reset_limits,
        hasher,
        keys,
        token_settings,
        clock,
    )
    .with_key_set_signer(
        config
            .service
            .nats
            .nkey_seed()?
            .map(|seed| nkeys::KeyPair::from_seed(&seed))
            .transpose()
            .context("reading the NATS NKEY seed")?,
    );
    host.serve(api::auth::endpoints(Arc::new(handlers))).await
}
