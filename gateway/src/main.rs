//! The gateway binary: reads its settings, sets up telemetry and serves until SIGTERM/SIGINT.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = gateway::Config::parse();
    let _telemetry = telemetry::init("gateway", &config.telemetry)?;
    let application = gateway::Application::build(config).await?;
    application.run_until(telemetry::shutdown_signal()).await
}
