//! `cart-service`: reads its configuration, sets up telemetry and runs until SIGTERM or
//! SIGINT. Everything else is in the library, so tests run the same code.

use clap::Parser as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = cart_service::Config::parse();
    let _telemetry = telemetry::init("cart-service", &config.service.telemetry)?;
    let serving = cart_service::start(config).await?;
    serving.run_until(telemetry::shutdown_signal()).await
}
