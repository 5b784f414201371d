//! Sending emails: the sender loop that works through pending email rows, and the one-email
//! path link emails take from their consumer.
//!
//! The loop claims due rows with `FOR UPDATE SKIP LOCKED` and a lease (so any number of
//! replicas can run it, and a row whose sender died is taken again once its lease runs out),
//! renders each, sends it and marks it sent. A relay that is down or says "try later" puts the
//! row back with its next attempt after an exponential, jittered delay; attempts are counted
//! at the claim, so a crash mid-send counts too. After `max_attempts` the row is marked failed
//! (`notifications_failed_total`), never dropped silently: it stays in the table with its last
//! error. A refusal for good (a 5xx, an address the relay rejects) fails it at once.
//!
//! Metrics: `notifications_sent_total{kind, channel}`, `notifications_failed_total{kind,
//! channel}`, `notification_email_attempts_total{kind, outcome}` (sent, retry, failed) and,
//! sampled, `notification_emails_pending` and `notification_email_oldest_pending_age_seconds`.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::domain::{Backoff, Channel, Kind};
use crate::mailer::{Mailer, SendError};
use crate::render::{Content, Link, Renderer};
use crate::store::{self, ClaimedEmail, StoreError};

/// How the sender works.
#[derive(Clone, Copy, Debug)]
pub struct DeliverySettings {
    /// Rows claimed at once.
    pub batch: i64,
    /// How long a claim holds a row; longer than one SMTP send may take.
    pub lease: Duration,
    pub backoff: Backoff,
    /// Attempts before an email is marked failed.
    pub max_attempts: u32,
    /// How often the loop looks for due rows when nothing wakes it.
    pub poll: Duration,
}

/// What became of one attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    Sent,
    /// Not sent; the next attempt is due after this long.
    RetryIn(Duration),
    /// Not sent and never will be.
    Failed,
}

/// Everything needed to send: the database, the relay and the templates.
#[derive(Clone)]
pub struct Postman {
    pool: sqlx::PgPool,
    mailer: Mailer,
    renderer: Arc<Renderer>,
    settings: DeliverySettings,
    wake: Arc<Notify>,
}

impl Postman {
    pub fn new(
        pool: sqlx::PgPool,
        mailer: Mailer,
        renderer: Arc<Renderer>,
        settings: DeliverySettings,
    ) -> Self {
        Self {
            pool,
            mailer,
            renderer,
            settings,
            wake: Arc::new(Notify::new()),
        }
    }

    pub fn settings(&self) -> &DeliverySettings {
        &self.settings
    }

    /// Tells the loop that new rows are waiting, so it does not wait for its next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The sender loop, until `cancel`.
    pub async fn run(self, cancel: CancellationToken) {
        loop {
            let more = match self.send_due().await {
                Ok(claimed) => claimed as i64 >= self.settings.batch,
                Err(error) => {
                    tracing::warn!(error = %error, "claiming pending emails failed; trying again at the next poll");
                    false
                }
            };
            if more {
                // A full batch: there may be more due right now.
                if cancel.is_cancelled() {
                    break;
                }
                continue;
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.settings.poll) => {}
            }
        }
        tracing::debug!("the email sender stopped");
    }

    /// Claims the due emails and attempts each; how many it claimed.
    pub async fn send_due(&self) -> Result<usize, StoreError> {
        let claimed =
            store::claim_due_emails(&self.pool, self.settings.batch, self.settings.lease).await?;
        let count = claimed.len();
        // A few at once, as many as the SMTP connection pool keeps open.
        futures::stream::iter(claimed)
            .for_each_concurrent(crate::mailer::CONNECTIONS as usize, |email| async move {
                let id = email.id;
                if let Err(error) = self.attempt(email, None).await {
                    // The lease runs out and the row is claimed again.
                    tracing::warn!(notification_id = %id, error = %error, "recording an email attempt failed");
                }
            })
            .await;
        Ok(count)
    }

    /// Claims the pending email `id` now, for its consumer; `None` when it is not pending or
    /// another sender holds it.
    pub async fn claim(&self, id: Uuid) -> Result<Option<ClaimedEmail>, StoreError> {
        store::claim_email(&self.pool, id, self.settings.lease).await
    }

    /// Renders and sends one claimed email (`link` for a link email), and records the outcome.
    pub async fn attempt(
        &self,
        email: ClaimedEmail,
        link: Option<&Link>,
    ) -> Result<Attempt, StoreError> {
        let kind_label = email.kind.clone();
        let outcome = match self.try_send(&email, link).await {
            Ok(()) => {
                store::mark_sent(&self.pool, email.id).await?;
                tracing::info!(notification_id = %email.id, kind = %email.kind, attempts = email.attempts, "email sent");
                metrics::counter!("notifications_sent_total", "kind" => kind_label.clone(), "channel" => Channel::Email.as_str())
                    .increment(1);
                Attempt::Sent
            }
            Err(SendError::Transient(reason))
                if (email.attempts.max(0) as u32) < self.settings.max_attempts =>
            {
                let delay = self
                    .settings
                    .backoff
                    .delay(email.attempts.max(1) as u32, rand::random::<f64>());
                store::retry_later(&self.pool, email.id, email.lease_until, delay, &reason).await?;
                tracing::warn!(notification_id = %email.id, kind = %email.kind, attempts = email.attempts, retry_in_ms = delay.as_millis() as u64, %reason, "email not sent; it will be tried again");
                Attempt::RetryIn(delay)
            }
            Err(error) => {
                let reason = error.to_string();
                store::give_up(&self.pool, email.id, "failed", &reason).await?;
                tracing::error!(notification_id = %email.id, kind = %email.kind, attempts = email.attempts, %reason, "email failed for good");
                metrics::counter!("notifications_failed_total", "kind" => kind_label.clone(), "channel" => Channel::Email.as_str())
                    .increment(1);
                Attempt::Failed
            }
        };
        let label = match outcome {
            Attempt::Sent => "sent",
            Attempt::RetryIn(_) => "retry",
            Attempt::Failed => "failed",
        };
        metrics::counter!("notification_email_attempts_total", "kind" => kind_label, "outcome" => label)
            .increment(1);
        Ok(outcome)
    }

    async fn try_send(&self, email: &ClaimedEmail, link: Option<&Link>) -> Result<(), SendError> {
        let kind = Kind::parse(&email.kind)
            .map_err(|problem| SendError::Permanent(format!("kind {:?} {problem}", email.kind)))?;
        let content: Option<Content> = match &email.payload {
            Some(payload) => Some(serde_json::from_value(payload.clone()).map_err(|error| {
                SendError::Permanent(format!("reading the stored content: {error}"))
            })?),
            None => None,
        };
        if kind.carries_token() && link.is_none() {
            return Err(SendError::Permanent(
                "a link email can only be sent by its consumer, which holds the link".into(),
            ));
        }
        let recipient = email
            .recipient
            .as_deref()
            .ok_or_else(|| SendError::Permanent("no recipient".into()))?;
        let rendered = self
            .renderer
            .email(kind, &email.language, recipient, content.as_ref(), link)
            .map_err(|error| SendError::Permanent(error.to_string()))?;
        self.mailer.send(email.id, recipient, &rendered).await
    }

    /// Samples the email backlog for the metrics; how many are pending.
    pub async fn sample_backlog(&self) -> Result<u64, StoreError> {
        let (pending, oldest_age) = store::email_backlog(&self.pool).await?;
        metrics::gauge!("notification_emails_pending").set(pending as f64);
        metrics::gauge!("notification_email_oldest_pending_age_seconds").set(oldest_age);
        // Logged by the host only when above zero; the gauge is the signal, not the log.
        Ok(0)
    }
}
