//! PostgreSQL: a pool for the service's own database, created on first start, migrated on
//! every start.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection as _, PgConnection, PgPool};
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

/// Connects to the database in `url`, creating it first if it does not exist, and runs
/// `migrator` (sqlx serialises concurrent runs from several replicas with an advisory lock).
pub async fn connect(
    url: &str,
    max_connections: u32,
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

    create_database_if_missing(&options, &database, &server).await?;

    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await
        .with_context(|| format!("connecting to PostgreSQL database {database:?} on {server}"))?;
    migrator
        .run(&pool)
        .await
        .with_context(|| format!("running the migrations of database {database:?} on {server}"))?;
    tracing::info!(%database, %server, "connected to PostgreSQL");
    Ok(pool)
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
