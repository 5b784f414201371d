//! The order service: orders with one sub-order per shop, the checkout and cancellation sagas
//! that settle them, and their fulfilment.
//!
//! It serves the contract `pkg/api/proto/emporium/order/v1/order.proto` over NATS and keeps
//! its state in its own PostgreSQL database: the orders, and the saga instances that drive
//! them (`pkg/saga`), so that an order and its saga are created in one transaction and every
//! step of a saga commits with what it changed here. Events go through the transactional
//! outbox (`pkg/events`).
//!
//! A request flows handler (`handlers.rs`: who may do what) -> domain (`domain.rs`, pure
//! rules: state machines, pricing) -> store (`store.rs`); the sagas are `checkout.rs` and
//! `cancellation.rs`, each a step table with its compensations. The lifecycle (admin port,
//! registration, background tasks, shutdown) is `pkg/host`'s.
//!
//! It must never speak HTTP, read another service's data, or write a NATS subject by hand:
//! cart, address, product, voucher, payment and shop are reached only through their
//! contracts, and only the methods its contract declares it calls.

pub mod cancellation;
pub mod checkout;
pub mod domain;
mod error;
mod handlers;
pub mod outbox;
pub mod store;
pub mod views;

use std::sync::Arc;
use std::time::Duration;

pub use error::Error;
pub use handlers::OrderHandlers;

/// Everything the service reads at start-up, from flags or environment variables.
#[derive(clap::Parser, Clone, Debug)]
#[command(name = "order-service", version, about)]
pub struct Config {
    #[command(flatten)]
    pub postgres: config::PostgresArgs,
    #[command(flatten)]
    pub service: config::ServiceArgs,
    #[command(flatten)]
    pub outbox: config::OutboxArgs,
    /// Shipping methods and what one sub-order's shipping costs, in minor units of the
    /// order's currency: "standard=499,express=1499". "standard" is the default method.
    /// The fallback when the platform settings hold no `checkout.shipping_methods`.
    #[arg(
        long,
        env = "SHIPPING_RATES",
        default_value = "standard=499,express=1499"
    )]
    pub shipping_rates: String,
    /// Tax rates by destination country, in basis points (1900 = 19%), charged on each
    /// sub-order's subtotal less its discount plus its shipping. The fallback when the
    /// platform settings hold no `checkout.tax_rates`.
    #[arg(
        long,
        env = "TAX_RATES",
        default_value = "US=0,CA=500,GB=2000,DE=1900,FR=2000,NL=2100,JP=1000"
    )]
    pub tax_rates: String,
    /// The tax rate, in basis points, of a country `--tax-rates` does not list.
    #[arg(long, env = "DEFAULT_TAX_RATE_BPS", default_value_t = 0)]
    pub default_tax_rate_bps: i64,
    /// How long stock and voucher uses are held for a checkout, in seconds. The fallback
    /// when the platform settings hold no `checkout.reservation_expiry_seconds`.
    #[arg(long, env = "CHECKOUT_HOLD_SECONDS", default_value_t = 900)]
    pub checkout_hold_seconds: u64,
    /// How long a checkout or cancellation request waits for its saga before answering 202,
    /// in milliseconds (never past the request's deadline).
    #[arg(long, env = "CHECKOUT_WAIT_MS", default_value_t = 8_000)]
    pub checkout_wait_ms: u64,
    /// The deadline of each call a saga step makes, in milliseconds.
    #[arg(long, env = "SAGA_CALL_TIMEOUT_MS", default_value_t = 5_000)]
    pub saga_call_timeout_ms: u64,
    /// How long a replica's claim on a saga instance lasts without being renewed: a dead
    /// replica's sagas are taken over after this, in milliseconds.
    #[arg(long, env = "SAGA_LEASE_MS", default_value_t = 10_000)]
    pub saga_lease_ms: u64,
    /// How often the runner looks for sagas that are due or orphaned, in milliseconds.
    #[arg(long, env = "SAGA_POLL_MS", default_value_t = 250)]
    pub saga_poll_ms: u64,
    /// Fault point for the crash-recovery tests: after committing this step
    /// ("checkout:reserve_stock", "checkout:open:compensate"), say so on stderr and stop
    /// driving the saga, so the process can be killed exactly there.
    #[arg(long, env = "SAGA_HOLD_AFTER", hide = true)]
    pub saga_hold_after: Option<String>,
}

/// Starts the service on what `config` names: NATS, its PostgreSQL database (created and
/// migrated, with the saga tables), the outbox relay and the saga runner. Requests are served
/// once this returns.
pub async fn start(config: Config) -> anyhow::Result<host::Serving> {
    let rules = domain::PricingRules::parse(
        &config.shipping_rates,
        &config.tax_rates,
        config.default_tax_rate_bps,
    )
    .map_err(anyhow::Error::msg)?;
    let mut host = host::Host::connect(&api::order::SERVICE, &config.service).await?;
    // Shipping, tax and the checkout's hold come from the platform settings, live; the flags
    // above are the fallback for a key the settings do not hold.
    let rules = Arc::new(rules.with_settings(host.settings().await));
    let pool = host.postgres(&config.postgres, &store::MIGRATOR).await?;
    host.outbox(&pool, &config.outbox).await?;
    saga::migrate(&pool).await?;

    let nats = rpc::Client::new(host.nats().clone());
    let call_timeout = Duration::from_millis(config.saga_call_timeout_ms);
    let checkout = Arc::new(checkout::Checkout {
        carts: api::cart::CartClient::new(nats.clone()),
        addresses: api::address::AddressClient::new(nats.clone()),
        products: api::product::ProductClient::new(nats.clone()),
        vouchers: api::voucher::VoucherClient::new(nats.clone()),
        payments: api::payment::PaymentClient::new(nats.clone()),
        shops: api::shop::ShopClient::new(nats.clone()),
        rules: (*rules).clone(),
        hold: Duration::from_secs(config.checkout_hold_seconds.clamp(1, 86_400)),
        call_timeout,
    });
    let cancellation = Arc::new(cancellation::Cancellation {
        products: api::product::ProductClient::new(nats.clone()),
        vouchers: api::voucher::VoucherClient::new(nats.clone()),
        payments: api::payment::PaymentClient::new(nats.clone()),
        call_timeout,
    });
    let mut orchestrator = saga::Orchestrator::new(
        pool.clone(),
        saga::Config {
            owner: format!(
                "order-{}-{}",
                std::process::id(),
                uuid::Uuid::now_v7().simple()
            ),
            lease: Duration::from_millis(config.saga_lease_ms.max(500)),
            poll_interval: Duration::from_millis(config.saga_poll_ms.max(10)),
            hold_after: config.saga_hold_after.clone(),
            ..saga::Config::default()
        },
    );
    orchestrator.register(checkout.clone().definition());
    orchestrator.register(cancellation.definition());
    let runner = orchestrator.clone();
    host.background("saga runner", move |cancel| {
        tokio::spawn(async move {
            if let Err(error) = runner.run(cancel).await {
                tracing::error!(error = ?error, "the saga runner stopped");
            }
        })
    });
    let handlers = OrderHandlers::new(
        pool,
        orchestrator,
        checkout,
        nats,
        rules,
        Duration::from_millis(config.checkout_wait_ms),
    );
    host.serve(api::order::endpoints(Arc::new(handlers))).await
}
