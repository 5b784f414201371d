//! MongoDB, for services that keep documents (enabled by the crate feature `mongo`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use mongodb::bson::doc;
use mongodb::options::ClientOptions;
use telemetry::admin::{Check, check_fn};

/// How long start-up waits for a server to answer before failing.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to the deployment in `url` and pings it, failing within a few seconds when it is
/// not there. The client is named after the running executable, so server logs and
/// `db.currentOp()` show which service a connection belongs to.
pub async fn connect(url: &str) -> anyhow::Result<mongodb::Client> {
    // Like the others, this error does not repeat the URL, which may carry a password.
    let mut options = ClientOptions::parse(url)
        .await
        .context("parsing the MongoDB URL")?;
    let hosts = options
        .hosts
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    options.app_name = Some(app_name());
    options.connect_timeout = Some(CONNECT_TIMEOUT);
    options.server_selection_timeout = Some(CONNECT_TIMEOUT);
    let client = mongodb::Client::with_options(options)
        .with_context(|| format!("configuring the MongoDB client for {hosts}"))?;
    ping(&client)
        .await
        .with_context(|| format!("connecting to MongoDB at {hosts}"))?;
    tracing::info!(%hosts, "connected to MongoDB");
    Ok(client)
}

fn app_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|path| {
            path.file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "emporium".to_owned())
}

async fn ping(client: &mongodb::Client) -> anyhow::Result<()> {
    tokio::time::timeout(
        CONNECT_TIMEOUT,
        client.database("admin").run_command(doc! { "ping": 1 }),
    )
    .await
    .map_err(|_| anyhow::anyhow!("no answer to ping within {} s", CONNECT_TIMEOUT.as_secs()))??;
    Ok(())
}

/// Readiness check: the deployment answers `ping`.
pub fn check(client: mongodb::Client) -> Arc<dyn Check> {
    check_fn("mongodb", move || {
        let client = client.clone();
        async move { ping(&client).await.map_err(|error| format!("{error:#}")) }
    })
}
