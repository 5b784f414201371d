//! The notification service: email and in-app notifications made from domain events, each
//! user's notification preferences, and delivery over SMTP with retry.
//!
//! It serves the contract `pkg/api/proto/emporium/notification/v1/notification.proto` over NATS
//! and keeps its state in its own PostgreSQL database. The pipeline:
//!
//! 1. `consumer.rs`: each event (registration, email links, orders, shipments) becomes
//!    notification rows, one per enabled channel, in one transaction with the event's inbox
//!    record, so a redelivered event changes nothing.
//! 2. `delivery.rs`: the sender loop claims pending email rows under a lease, renders them
//!    (`render.rs`, tera templates from `templates/`) and sends them (`mailer.rs`, lettre), with
//!    exponential backoff while the relay is down. Link emails, whose token is never stored,
//!    are sent by their consumer instead.
//! 3. `handlers.rs`: each user's preferences and in-app notifications.
//!
//! It must never speak HTTP, read another service's data, write a NATS subject by hand, or
//! store or log the token of a link email.

pub mod consumer;
pub mod delivery;
pub mod domain;
mod handlers;
pub mod mailer;
pub mod render;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

pub use handlers::NotificationHandlers;

use crate::delivery::{DeliverySettings, Postman};
use crate::domain::Backoff;

/// Everything the service reads at start-up, from flags or environment variables.
#[derive(clap::Parser, Clone, Debug)]
#[command(name = "notification-service", version, about)]
pub struct Config {
    #[command(flatten)]
    pub postgres: config::PostgresArgs,
    #[command(flatten)]
    pub service: config::ServiceArgs,
    #[command(flatten)]
    pub mail: MailArgs,
}

/// Where and how emails go.
#[derive(clap::Args, Clone, Debug)]
pub struct MailArgs {
    /// The SMTP relay: smtp://host:port (plain), smtp://host:port?tls=required (STARTTLS),
    /// smtps://host:port (TLS); user:password@ before the host for AUTH.
    #[arg(long, env = "SMTP_URL", default_value = "smtp://127.0.0.1:2525")]
    pub smtp_url: mailer::SmtpUrl,
    /// The From of every email.
    #[arg(
        long,
        env = "MAIL_FROM",
        default_value = "Emporium <no-reply@emporium.test>"
    )]
    pub mail_from: String,
    /// The platform's name, as emails and notifications say it.
    #[arg(long, env = "PLATFORM_NAME", default_value = "Emporium")]
    pub platform_name: String,
    /// Where the links in emails point: <url>/verify-email?token=..., <url>/reset-password?token=....
    #[arg(long, env = "PUBLIC_BASE_URL", default_value = "http://localhost:8080")]
    pub public_base_url: url::Url,
    /// How long one SMTP exchange may take, in milliseconds.
    #[arg(long, env = "SMTP_TIMEOUT_MS", default_value_t = 10_000)]
    pub smtp_timeout_ms: u64,
    /// The wait after the first failed attempt of an email, in milliseconds; it doubles at
    /// each further failure (with jitter) up to --email-retry-max-ms.
    #[arg(long, env = "EMAIL_RETRY_BASE_MS", default_value_t = 2_000)]
    pub email_retry_base_ms: u64,
    #[arg(long, env = "EMAIL_RETRY_MAX_MS", default_value_t = 600_000)]
    pub email_retry_max_ms: u64,
    /// Attempts before an email is marked failed (with the defaults, about 24 hours).
    #[arg(long, env = "EMAIL_MAX_ATTEMPTS", default_value_t = 150)]
    pub email_max_attempts: u32,
    /// How often the sender looks for due emails, in milliseconds (new ones wake it at once).
    #[arg(long, env = "EMAIL_POLL_MS", default_value_t = 1_000)]
    pub email_poll_ms: u64,
}

/// Starts the service on what `config` names: NATS, its PostgreSQL database (created and
/// migrated) and the SMTP relay (connected at the first email). Requests are served, events
/// consumed and emails sent once this returns.
pub async fn start(config: Config) -> anyhow::Result<host::Serving> {
    let mail = &config.mail;
    anyhow::ensure!(
        matches!(mail.public_base_url.scheme(), "http" | "https"),
        "--public-base-url must be an http or https URL, not {}",
        mail.public_base_url
    );
    let renderer = Arc::new(render::Renderer::new(&mail.platform_name).context("the templates")?);
    let smtp_timeout = Duration::from_millis(mail.smtp_timeout_ms.max(1));
    let mailer = mailer::Mailer::new(&mail.smtp_url, &mail.mail_from, smtp_timeout)?;

    let mut host = host::Host::connect(&api::notification::SERVICE, &config.service).await?;
    let pool = host.postgres(&config.postgres, &store::MIGRATOR).await?;
    let mailer = mailer.with_settings(host.settings().await);
    events::migrate(&pool)
        .await
        .context("creating the events inbox table")?;

    let settings = DeliverySettings {
        batch: 16,
        // A send may take the SMTP timeout for each of its exchanges; the lease outlasts that.
        lease: (smtp_timeout * 6).max(Duration::from_secs(5)),
        backoff: Backoff {
            base: Duration::from_millis(mail.email_retry_base_ms.max(1)),
            max: Duration::from_millis(mail.email_retry_max_ms.max(mail.email_retry_base_ms)),
        },
        max_attempts: mail.email_max_attempts.max(1),
        poll: Duration::from_millis(mail.email_poll_ms.max(10)),
    };
    let postman = Postman::new(pool.clone(), mailer, renderer.clone(), settings);
    let notifier = consumer::Notifier {
        pool: pool.clone(),
        renderer,
        postman: postman.clone(),
        public_base_url: mail.public_base_url.clone(),
    };
    for consumer in consumer::consumers(&notifier) {
        host.consumer(consumer);
    }
    let sender = postman.clone();
    host.background("email sender", move |cancel| {
        tokio::spawn(sender.run(cancel))
    });
    host.every(
        "email backlog sampler",
        Duration::from_secs(5),
        "pending emails",
        move || {
            let postman = postman.clone();
            async move { postman.sample_backlog().await }
        },
    );
    // Inbox records only matter while their event can still be delivered: the streams keep
    // events 7 days, so a day more is safe.
    let inbox_pool = pool.clone();
    host.every(
        "inbox pruner",
        Duration::from_secs(3600),
        "pruned inbox records",
        move || {
            let pool = inbox_pool.clone();
            async move { events::inbox::prune(&pool, Duration::from_secs(8 * 24 * 3600)).await }
        },
    );
    let handlers = NotificationHandlers::new(pool);
    host.serve(api::notification::endpoints(Arc::new(handlers)))
        .await
}
