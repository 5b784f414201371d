//! PostgreSQL: a pool for the service's own database, created on first start, migrated on
//! every start.
//!
//! TLS is chosen by the URL, as with libpq: `sslmode=disable|prefer|require|verify-ca|verify-full`
//! (sqlx's default is `prefer`: TLS when the server offers it, unverified) and
//! `sslrootcert=<path>` for a private CA's certificate (PEM); without one, `verify-ca` and
//! `verify-full` check the server against the system's trusted roots. Managed servers that
//! require TLS need at least `sslmode=require`; use `verify-full` in production.
//!
//! Every connection of the pool runs with a `statement_timeout` ([`PoolSettings`]), so a
//! statement nobody waits for any more cannot run on for ever; a request's transaction is
//! bounded further by the time its caller has left ([`begin_within`]).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::{Connection as _, PgConnection, PgPool, Postgres, Transaction};
use telemetry::admin::{Check, check_fn};

/// How long a caller waits for a pooled connection (and start-up waits for a server that
/// refuses connections) before giving up.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The database every PostgreSQL server has, used to create the service's own.
const MAINTENANCE_DATABASE: &str = "postgres";

/// SQLSTATE invalid_catalog_name: the database in the URL does not exist.
const INVALID_CATALOG_NAME: &str = "3D000";
/// SQLSTATE duplicate_database: another replica created it first.
const DUPLICATE_DATABASE: &str = "42P04";
/// SQLSTATE unique_violation: what a CREATE DATABASE that loses a race on the catalog's unique
/// index reports instead of duplicate_database.
const UNIQUE_VIOLATION: &str = "23505";
/// SQLSTATE query_canceled: what a statement stopped by `statement_timeout` fails with.
const QUERY_CANCELED: &str = "57014";

/// The default `statement_timeout` of every pooled connection: the longest a request may take
/// by default (`--request-timeout-ms`), since no statement of a request is worth finishing
/// after the request has been answered.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);

/// How a service's pool is set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolSettings {
    /// Connections in the pool.
    pub max_connections: u32,
    /// The `statement_timeout` of every connection; zero turns it off. Migrations run on a
    /// connection of their own without it: a long index build must not be cut short.
    pub statement_timeout: Duration,
}

impl PoolSettings {
    /// `max_connections` connections with the [`DEFAULT_STATEMENT_TIMEOUT`].
    pub fn new(max_connections: u32) -> Self {
        Self {
            max_connections,
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
        }
    }
}

/// Connects to the database in `url` with [`PoolSettings::new`]`(max_connections)`; see
/// [`connect_with`].
pub async fn connect(
    url: &str,
    max_connections: u32,
    migrator: &'static Migrator,
) -> anyhow::Result<PgPool> {
    connect_with(url, &PoolSettings::new(max_connections), migrator).await
}

/// Connects to the database in `url`, creating it first if it does not exist, and runs
/// `migrator` (sqlx serialises concurrent runs from several replicas with an advisory lock).
pub async fn connect_with(
    url: &str,
    settings: &PoolSettings,
    migrator: &'static Migrator,
) -> anyhow::Result<PgPool> {
    // The parse error of sqlx does not repeat the URL, so the password stays out of logs.
    let options: PgConnectOptions = url.parse().context("parsing the PostgreSQL URL")?;
    // Without a database in the URL, PostgreSQL uses the one named after the user.
    let database = options
        .get_database()
        .unwrap_or(options.get_username())
        .to_owned();
    let server = format!("{}:{}", options.get_host(), options.get_port());
    let tls = ssl_mode_name(options.get_ssl_mode());
    let connecting =
        || format!("connecting to PostgreSQL database {database:?} on {server} (sslmode={tls})");

    create_database_if_missing(&options, &database, &server).await?;

    // Migrations first, on a connection without the statement timeout (and waiting as long as
    // another replica holds the migration lock).
    let migrations = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options.clone())
        .await
        .with_context(connecting)?;
    let migrated = migrator.run(&migrations).await;
    migrations.close().await;
    migrated
        .with_context(|| format!("running the migrations of database {database:?} on {server}"))?;

    let pool = PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options.options([(
            "statement_timeout",
            milliseconds(settings.statement_timeout),
        )]))
        .await
        .with_context(connecting)?;
    tracing::info!(%database, %server, sslmode = %tls, "connected to PostgreSQL");
    Ok(pool)
}

/// Begins a transaction whose statements are each cancelled by PostgreSQL once `remaining`
/// (the time the caller has left, e.g. the request's) has passed: `SET LOCAL
/// statement_timeout`, which ends with the transaction. (Waiting for a pooled connection costs
/// the server nothing; the caller's own deadline ends that wait.)
///
/// A statement cut short fails with SQLSTATE 57014 ([`is_statement_timeout`]). A budget that
/// is already spent still gets a millisecond, so the first statement fails clearly rather
/// than running without a bound (zero means none to PostgreSQL).
pub async fn begin_within(
    pool: &PgPool,
    remaining: Duration,
) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT set_config('statement_timeout', $1, true)")
        .bind(milliseconds(remaining.max(Duration::from_millis(1))))
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// Runs `batch` (one transaction that handles at most `size` rows: expiring what is due,
/// say) until one handles fewer than `size`; the rows handled in all. Short transactions
/// keep locks brief, and replicas sweeping at once (with `SKIP LOCKED`) share the work.
pub async fn in_batches<F, Fut, E>(size: u64, mut batch: F) -> Result<u64, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<u64, E>>,
{
    let mut total = 0;
    loop {
        let handled = batch().await?;
        total += handled;
        if handled < size {
            return Ok(total);
        }
    }
}

/// Whether `error` is a statement PostgreSQL cancelled, which is what `statement_timeout`
/// (the pool's, or [`begin_within`]'s) does.
pub fn is_statement_timeout(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(error) if error.code().as_deref() == Some(QUERY_CANCELED))
}

/// The `sslmode` URL parameter's spelling of `mode`, for logs and errors.
fn ssl_mode_name(mode: PgSslMode) -> &'static str {
    match mode {
        PgSslMode::Disable => "disable",
        PgSslMode::Allow => "allow",
        PgSslMode::Prefer => "prefer",
        PgSslMode::Require => "require",
        PgSslMode::VerifyCa => "verify-ca",
        PgSslMode::VerifyFull => "verify-full",
    }
}

/// A duration as PostgreSQL's integer milliseconds (its unit for `statement_timeout`), within
/// the range the setting accepts.
fn milliseconds(duration: Duration) -> String {
    duration.as_millis().min(i32::MAX as u128).to_string()
}

async fn create_database_if_missing(
    options: &PgConnectOptions,
    database: &str,
    server: &str,
) -> anyhow::Result<()> {
    match PgConnection::connect_with(options).await {
        Ok(connection) => {
            let _ = connection.close().await;
            return Ok(());
        }
        Err(sqlx::Error::Database(error))
            if error.code().as_deref() == Some(INVALID_CATALOG_NAME) => {}
        // Anything else (the server still starting, say) is for the pool to retry and report.
        Err(_) => return Ok(()),
    }

    tracing::info!(%database, %server, "database does not exist; creating it");
    // A one-connection pool rather than a bare connection: queries on `&mut PgConnection` make
    // the future fail to prove it is Send, and callers may build services inside spawned tasks.
    let maintenance = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options.clone().database(MAINTENANCE_DATABASE))
        .await
        .with_context(|| {
            format!("connecting to the {MAINTENANCE_DATABASE:?} database on {server} to create {database:?}")
        })?;
    let created = sqlx::raw_sql(&format!("CREATE DATABASE {}", quote_identifier(database)))
        .execute(&maintenance)
        .await;
    maintenance.close().await;
    match created {
        Ok(_) => {
            tracing::info!(%database, %server, "database created");
            Ok(())
        }
        Err(sqlx::Error::Database(error))
            if matches!(
                error.code().as_deref(),
                Some(DUPLICATE_DATABASE | UNIQUE_VIOLATION)
            ) =>
        {
            tracing::info!(%database, %server, "database was created concurrently");
            Ok(())
        }
        Err(error) => Err(error).with_context(|| {
            format!(
                "creating database {database:?} on {server} (the user needs the CREATEDB privilege)"
            )
        }),
    }
}

/// `name` as a PostgreSQL quoted identifier: in double quotes, inner double quotes doubled.
/// Quoting keeps the exact spelling (case, dashes) and makes injection impossible.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Readiness check: the pool can run `SELECT 1`.
pub fn check(pool: PgPool) -> Arc<dyn Check> {
    check_fn("postgres", move || {
        let pool = pool.clone();
        async move {
            sqlx::query("SELECT 1")
                .execute(&pool)
                .await
                .map(|_| ())
                .map_err(|error| error.to_string())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn batches_run_until_one_is_not_full() {
        let mut sizes = vec![3, 3, 1, 3].into_iter();
        let mut calls = 0;
        let total: Result<u64, ()> = in_batches(3, || {
            calls += 1;
            let size = sizes.next().unwrap();
            async move { Ok(size) }
        })
        .await;
        assert_eq!((total, calls), (Ok(7), 3));
        let failed: Result<u64, &str> = in_batches(3, || async { Err("down") }).await;
        assert_eq!(failed, Err("down"));
    }

    #[test]
    fn timeouts_are_whole_milliseconds_within_the_setting_range() {
        assert_eq!(milliseconds(Duration::from_millis(1500)), "1500");
        assert_eq!(milliseconds(Duration::from_micros(2_999)), "2");
        assert_eq!(milliseconds(Duration::from_secs(u64::MAX)), "2147483647");
    }

    #[test]
    fn identifiers_are_quoted_and_inner_quotes_doubled() {
        assert_eq!(quote_identifier("product"), "\"product\"");
        assert_eq!(quote_identifier("Order-Service"), "\"Order-Service\"");
        assert_eq!(
            quote_identifier("x\"; DROP DATABASE postgres; --"),
            "\"x\"\"; DROP DATABASE postgres; --\""
        );
    }
}
