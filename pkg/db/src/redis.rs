//! Redis: one multiplexed connection that reconnects by itself.
//!
//! URLs are `redis://[:password@]host:port[/db]`, or `rediss://` for TLS, verified against
//! the system's trusted roots or against a CA certificate the service is given
//! ([`client`]'s `ca_certificate`, `--redis-tls-ca-file`). `rediss://host:port/#insecure`
//! turns verification off: for a development server with a self-signed certificate only,
//! since anyone on the path can then read the traffic.
//!
//! [`connect`] fails when Redis is not there, for callers that cannot start without it.
//! [`connect_in_background`] never waits: the connection is made (and remade after an outage)
//! while the service runs, and commands fail quickly meanwhile, so a service whose Redis is
//! down still starts and reports it through its readiness check.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use anyhow::Context as _;
use telemetry::admin::{Check, check_fn};

/// How long start-up waits for Redis before failing.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one command may take before it fails; keeps callers from hanging on a server that
/// accepts connections but does not answer.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Reconnection attempts after the connection is lost, with exponential back-off capped at
/// [`MAX_RECONNECT_DELAY`]; the next command after they run out starts a new round.
const RECONNECT_ATTEMPTS: usize = 4;
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(1);
/// How long the readiness check waits for PING: less than the admin port's own limit, so a
/// Redis that is down is reported as such rather than as a check that timed out.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// A client for the server in `url` (nothing is connected yet). With `ca_certificate` (a PEM
/// file), a `rediss://` server is verified against that CA instead of the system's roots.
pub fn client(url: &str, ca_certificate: Option<&Path>) -> anyhow::Result<::redis::Client> {
    // Neither this error nor the ones below repeat the URL, so the password stays out of logs.
    let Some(ca_certificate) = ca_certificate else {
        return ::redis::Client::open(url).context("parsing the Redis URL");
    };
    let root_cert = std::fs::read(ca_certificate).with_context(|| {
        format!(
            "reading the Redis CA certificate {}",
            ca_certificate.display()
        )
    })?;
    ::redis::Client::build_with_tls(
        url,
        ::redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(root_cert),
        },
    )
    .context("configuring Redis TLS (a CA certificate needs a rediss:// URL)")
}

/// Connects to the Redis server in `url`, failing within a few seconds when it is not there.
pub async fn connect(url: &str) -> anyhow::Result<ConnectionManager> {
    connect_client(client(url, None)?).await
}

/// Connects `client`, failing within a few seconds when its server is not there.
pub async fn connect_client(client: ::redis::Client) -> anyhow::Result<ConnectionManager> {
    let address = address(&client);
    let manager = tokio::time::timeout(
        CONNECT_TIMEOUT,
        ConnectionManager::new_with_config(client, manager_config()),
    )
    .await
    .map_err(|_| {
        anyhow::anyhow!(
            "connecting to Redis at {address}: no connection within {} s",
            CONNECT_TIMEOUT.as_secs()
        )
    })?
    .with_context(|| format!("connecting to Redis at {address}"))?;
    tracing::info!(%address, "connected to Redis");
    Ok(manager)
}

/// A connection to `client`'s server that is made in the background: this returns at once,
/// whether the server is there or not. Commands sent while it is unreachable fail (within the
/// response timeout at most) and start a new connection attempt, so the manager comes back
/// by itself once the server does. Whether the first attempt worked is logged.
pub fn connect_in_background(client: ::redis::Client) -> anyhow::Result<ConnectionManager> {
    let address = address(&client);
    let manager = ConnectionManager::new_lazy_with_config(client, manager_config())
        .with_context(|| format!("configuring the Redis connection to {address}"))?;
    let mut first = manager.clone();
    tokio::spawn(async move {
        match ping(&mut first).await {
            Ok(()) => tracing::info!(%address, "connected to Redis"),
            Err(error) => tracing::warn!(
                %address,
                %error,
                "Redis is unavailable; running without it and reconnecting"
            ),
        }
    });
    Ok(manager)
}

fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_number_of_retries(RECONNECT_ATTEMPTS)
        .set_max_delay(MAX_RECONNECT_DELAY)
}

/// `host:port` of `client`'s server, for logs (never the URL: it may carry a password).
fn address(client: &::redis::Client) -> String {
    client.get_connection_info().addr().to_string()
}

async fn ping(conn: &mut ConnectionManager) -> Result<(), String> {
    match tokio::time::timeout(
        CHECK_TIMEOUT,
        ::redis::cmd("PING").query_async::<String>(conn),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!(
            "no answer to PING within {} ms",
            CHECK_TIMEOUT.as_millis()
        )),
    }
}

/// Readiness check: the server answers PING.
pub fn check(conn: ConnectionManager) -> Arc<dyn Check> {
    check_fn("redis", move || {
        let mut conn = conn.clone();
        async move { ping(&mut conn).await }
    })
}
