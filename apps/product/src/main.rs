//! `product-service`: reads its configuration, sets up telemetry and runs until SIGTERM or
//! SIGINT. Everything else is in the library, so tests run the same code.

use clap::Parser as _;
use product_service::{Application, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let _telemetry = telemetry::init("product-service", &config.service.telemetry)?;
    let application = Application::build(config).await?;
    tracing::info!(admin_addr = %application.admin_addr(), "product service ready");
    application.run_until(telemetry::shutdown_signal()).await
}
