//! Redis: one multiplexed connection that reconnects by itself.

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

/// Connects to the Redis server in `url` (`redis://[:password@]host:port[/db]`), failing
/// within a few seconds when it is not there.
pub async fn connect(url: &str) -> anyhow::Result<ConnectionManager> {
    // Neither this error nor the ones below repeat the URL, so the password stays out of logs.
    let client = ::redis::Client::open(url).context("parsing the Redis URL")?;
    let address = client.get_connection_info().addr().to_string();
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_number_of_retries(RECONNECT_ATTEMPTS)
        .set_max_delay(MAX_RECONNECT_DELAY);
    let manager = tokio::time::timeout(
        CONNECT_TIMEOUT,
        ConnectionManager::new_with_config(client, config),
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

/// Readiness check: the server answers PING.
pub fn check(conn: ConnectionManager) -> Arc<dyn Check> {
    check_fn("redis", move || {
        let mut conn = conn.clone();
        async move {
            ::redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .map(|_| ())
                .map_err(|error| error.to_string())
        }
    })
}
