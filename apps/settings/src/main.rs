//! `settings-service`: reads its configuration, sets up telemetry and runs until SIGTERM or
//! SIGINT. Everything else is in the library, so tests run the same code.

use clap::Parser as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = settings_service::Config::parse();
    let _telemetry = telemetry::init("settings-service", &config.service.telemetry)?;
    let serving = settings_service::start(config).await?;
    serving.run_until(telemetry::shutdown_signal()).await
}
