//! The event consumers: each event becomes notification rows, written in one transaction with
//! the event's inbox record (`events::inbox`), so a redelivered event changes nothing.
//!
//! - `user.registered` keeps the account's email (later events carry only user ids) and
//!   makes the welcome notification.
//! - `order.paid`, `order.failed`, `order.cancelled`, `order.refunded` keep whose order it is
//!   and make the order's notification; `suborder.shipped` finds the order's user from that.
//!   An event about a user or order not known yet (its event is still on the way) is retried
//!   with the consumer's backoff, then lands in the dead letters to be redriven.
//! - `user.email_verification_requested` and `user.password_reset_requested` carry a
//!   single-use token, which is never written anywhere: the row holds no payload and the
//!   consumer sends the email itself while it holds the event, naking it (with the email
//!   backoff) while the relay is down, until the link expires.
//!
//! Which channels a notification goes to is decided when the event is consumed, from the
//! user's preferences at that moment.

use std::sync::Arc;

use api::auth::{EmailVerificationRequested, PasswordResetRequested, UserRegistered};
use api::order::{
    Order, OrderCancelled, OrderFailed, OrderLine, OrderPaid, OrderRefunded, SubOrderShipped,
};
use chrono::{DateTime, Utc};
use events::{Consumer, ConsumerConfig, Delivery, Outcome};
use sqlx::PgPool;
use uuid::Uuid;

use crate::delivery::{Attempt, Postman};
use crate::domain::{self, Channel, Kind, NotificationId};
use crate::render::{Content, LineSummary, Link, OrderSummary, Renderer, ShipmentSummary};
use crate::store::{self, NewNotification};

/// What the consumers share.
#[derive(Clone)]
pub struct Notifier {
    pub pool: PgPool,
    pub renderer: Arc<Renderer>,
    pub postman: Postman,
    /// Where the links of link emails point: `<base>/verify-email?token=...`.
    pub public_base_url: url::Url,
}

/// Every consumer of the service.
pub fn consumers(notifier: &Notifier) -> Vec<Consumer> {
    vec![
        consumer(notifier, |n, d: Delivery<UserRegistered>| async move {
            n.registered(&d).await
        }),
        consumer(notifier, |n, d: Delivery<OrderPaid>| async move {
            let order = d.payload.order.clone();
            n.order(&d, Kind::OrderConfirmation, order).await
        }),
        consumer(notifier, |n, d: Delivery<OrderFailed>| async move {
            let order = d.payload.order.clone();
            n.order(&d, Kind::OrderFailed, order).await
        }),
        consumer(notifier, |n, d: Delivery<OrderCancelled>| async move {
            let order = d.payload.order.clone();
            n.order(&d, Kind::OrderCancelled, order).await
        }),
        consumer(notifier, |n, d: Delivery<OrderRefunded>| async move {
            let order = d.payload.order.clone();
            n.order(&d, Kind::OrderRefunded, order).await
        }),
        consumer(notifier, |n, d: Delivery<SubOrderShipped>| async move {
            n.shipped(&d).await
        }),
        link_consumer(
            notifier,
            |n, d: Delivery<EmailVerificationRequested>| async move {
                let event = &d.payload;
                let link = LinkEvent {
                    kind: Kind::EmailVerification,
                    path: "/verify-email",
                    user_id: &event.user_id,
                    email: &event.email,
                    token: &event.token,
                    expires_at: event.expires_at.as_ref(),
                };
                n.link_email(&d, link).await
            },
        ),
        link_consumer(
            notifier,
            |n, d: Delivery<PasswordResetRequested>| async move {
                let event = &d.payload;
                let link = LinkEvent {
                    kind: Kind::PasswordReset,
                    path: "/reset-password",
                    user_id: &event.user_id,
                    email: &event.email,
                    token: &event.token,
                    expires_at: event.expires_at.as_ref(),
                };
                n.link_email(&d, link).await
            },
        ),
    ]
}

fn consumer<E, F, Fut>(notifier: &Notifier, handle: F) -> Consumer
where
    E: api::Event + Send + Sync + 'static,
    F: Fn(Notifier, Delivery<E>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let notifier = notifier.clone();
    Consumer::new(
        ConsumerConfig::new(api::notification::SERVICE_NAME),
        move |delivery: Delivery<E>| handle(notifier.clone(), delivery),
    )
}

/// A link email's consumer retries as long as the relay is down, so it needs far more
/// deliveries than the default, spaced like the sender loop's retries: its redelivery
/// schedule is the email backoff's (JetStream follows a consumer's backoff schedule rather
/// than a shorter delay given with a nak). The link's expiry ends it.
fn link_consumer<E, F, Fut>(notifier: &Notifier, handle: F) -> Consumer
where
    E: api::Event + Send + Sync + 'static,
    F: Fn(Notifier, Delivery<E>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let notifier = notifier.clone();
    let settings = notifier.postman.settings();
    let mut config = ConsumerConfig::new(api::notification::SERVICE_NAME);
    config.max_deliver = i64::from(settings.max_attempts) + 5;
    config.backoff = settings.backoff.schedule();
    Consumer::new(config, move |delivery: Delivery<E>| {
        handle(notifier.clone(), delivery)
    })
}

/// A link event's fields, whichever event it is.
struct LinkEvent<'a> {
    kind: Kind,
    path: &'static str,
    user_id: &'a str,
    email: &'a str,
    token: &'a str,
    expires_at: Option<&'a api::Timestamp>,
}

/// What writing an event's notifications came to.
enum Written {
    Done,
    /// The user's email is not known yet.
    NoRecipient(Uuid),
}

impl Notifier {
    async fn registered(&self, delivery: &Delivery<UserRegistered>) -> Outcome {
        let event = &delivery.payload;
        let Ok(user_id) = Uuid::try_parse(&event.user_id) else {
            return Outcome::give_up("user_id must be a UUID");
        };
        let email = event.email.trim();
        if email.len() < 3 || !email.contains('@') {
            return Outcome::give_up("email is not an email address");
        }
        let result = async {
            let mut conn = self.pool.acquire().await?;
            store::remember_recipient(&mut conn, user_id, email).await?;
            drop(conn);
            self.write(delivery, user_id, Kind::Welcome, &Content::Welcome, "")
                .await
        }
        .await;
        self.outcome(result)
    }

    async fn order<E>(&self, delivery: &Delivery<E>, kind: Kind, order: Option<Order>) -> Outcome {
        let Some(order) = order else {
            return Outcome::give_up("the event holds no order");
        };
        let (Ok(order_id), Ok(user_id)) =
            (Uuid::try_parse(&order.id), Uuid::try_parse(&order.user_id))
        else {
            return Outcome::give_up("the order's id and user_id must be UUIDs");
        };
        let summary = order_summary(&order);
        let result = async {
            let mut conn = self.pool.acquire().await?;
            store::remember_order(&mut conn, order_id, user_id, &order.currency).await?;
            drop(conn);
            self.write(delivery, user_id, kind, &Content::Order(summary), &order.id)
                .await
        }
        .await;
        self.outcome(result)
    }

    async fn shipped(&self, delivery: &Delivery<SubOrderShipped>) -> Outcome {
        let Some(sub_order) = &delivery.payload.sub_order else {
            return Outcome::give_up("the event holds no sub-order");
        };
        let Ok(order_id) = Uuid::try_parse(&sub_order.order_id) else {
            return Outcome::give_up("the sub-order's order_id must be a UUID");
        };
        let owner = async {
            let mut conn = self.pool.acquire().await?;
            store::order_owner(&mut conn, order_id).await
        }
        .await;
        let user_id = match owner {
            Ok(Some(user_id)) => user_id,
            Ok(None) => {
                return Outcome::retry(format!(
                    "order {order_id} is not known yet (its order.paid is still on the way)"
                ));
            }
            Err(error) => return Outcome::retry(error),
        };
        let content = Content::Shipment(ShipmentSummary {
            order_id: sub_order.order_id.clone(),
            sub_order_id: sub_order.id.clone(),
            carrier: sub_order.carrier.clone(),
            tracking_number: sub_order.tracking_number.clone(),
            lines: sub_order.lines.iter().map(line_summary).collect(),
        });
        let result = self
            .write(
                delivery,
                user_id,
                Kind::OrderShipped,
                &content,
                &sub_order.order_id,
            )
            .await;
        self.outcome(result)
    }

    /// Writes the notifications of one event, in one transaction with its inbox record.
    async fn write<E>(
        &self,
        delivery: &Delivery<E>,
        user_id: Uuid,
        kind: Kind,
        content: &Content,
        subject_id: &str,
    ) -> anyhow::Result<Written> {
        let mut tx = self.pool.begin().await?;
        if !events::inbox::record(&mut tx, &delivery.consumer, delivery.event_id).await? {
            // Applied before: a redelivery changes nothing.
            tx.commit().await?;
            return Ok(Written::Done);
        }
        let Some(recipient) = store::recipient(&mut tx, user_id).await? else {
            tx.rollback().await?;
            return Ok(Written::NoRecipient(user_id));
        };
        let stored = store::stored_preferences(&mut tx, user_id).await?;
        let mut created = Vec::new();
        for &channel in kind.channels() {
            let choice = stored
                .iter()
                .find(|(k, c, _)| k == kind.as_str() && c == channel.as_str())
                .map(|(_, _, enabled)| *enabled);
            if !domain::is_enabled(kind, channel, choice) {
                continue;
            }
            let (title, body) = match channel {
                Channel::InApp => self.renderer.in_app(kind, &recipient.language, content)?,
                Channel::Email => (String::new(), String::new()),
            };
            let new = NewNotification {
                id: NotificationId::new(),
                event_id: delivery.event_id,
                user_id,
                kind,
                channel,
                recipient: (channel == Channel::Email).then(|| recipient.email.clone()),
                language: recipient.language.clone(),
                subject_id: subject_id.to_owned(),
                title,
                body,
                payload: match channel {
                    Channel::Email => Some(serde_json::to_value(content)?),
                    Channel::InApp => None,
                },
                expires_at: None,
            };
            if store::insert_notification(&mut tx, &new).await? {
                created.push(channel);
            }
        }
        tx.commit().await?;
        for channel in created {
            metrics::counter!("notifications_created_total", "kind" => kind.as_str(), "channel" => channel.as_str())
                .increment(1);
            if channel == Channel::Email {
                self.postman.wake();
            }
        }
        Ok(Written::Done)
    }

    fn outcome(&self, result: anyhow::Result<Written>) -> Outcome {
        match result {
            Ok(Written::Done) => Outcome::Done,
            Ok(Written::NoRecipient(user_id)) => Outcome::retry(format!(
                "no email address is known for user {user_id} yet (its user.registered is still on the way)"
            )),
            Err(error) => match error.downcast_ref::<crate::render::RenderError>() {
                // No retry renders a broken template; the dead letter is redriven after a fix.
                Some(render) => Outcome::give_up(render),
                None => Outcome::retry(format!("{error:#}")),
            },
        }
    }

    /// A link email: its row (without the token) once, then an attempt to send it now.
    async fn link_email<E>(&self, delivery: &Delivery<E>, event: LinkEvent<'_>) -> Outcome {
        let Ok(user_id) = Uuid::try_parse(event.user_id) else {
            return Outcome::give_up("user_id must be a UUID");
        };
        let email = event.email.trim();
        if email.len() < 3 || !email.contains('@') {
            return Outcome::give_up("email is not an email address");
        }
        if event.token.is_empty() {
            return Outcome::give_up("the event holds no token");
        }
        let Some(expires_at) = event.expires_at.and_then(to_datetime) else {
            return Outcome::give_up("the event holds no expiry");
        };
        let written = self
            .write_link_row(delivery, user_id, event.kind, email, expires_at)
            .await;
        if let Err(error) = written {
            return Outcome::retry(format!("{error:#}"));
        }
        match self.send_link(delivery, &event, expires_at).await {
            Ok(outcome) => outcome,
            Err(error) => Outcome::retry(format!("{error:#}")),
        }
    }

    async fn write_link_row<E>(
        &self,
        delivery: &Delivery<E>,
        user_id: Uuid,
        kind: Kind,
        email: &str,
        expires_at: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        if events::inbox::record(&mut tx, &delivery.consumer, delivery.event_id).await? {
            let language = store::recipient(&mut tx, user_id)
                .await?
                .map(|recipient| recipient.language)
                .unwrap_or_else(|| "en".to_owned());
            let new = NewNotification {
                id: NotificationId::new(),
                event_id: delivery.event_id,
                user_id,
                kind,
                channel: Channel::Email,
                recipient: Some(email.to_owned()),
                language,
                subject_id: String::new(),
                title: String::new(),
                body: String::new(),
                payload: None,
                expires_at: Some(expires_at),
            };
            if store::insert_notification(&mut tx, &new).await? {
                metrics::counter!("notifications_created_total", "kind" => kind.as_str(), "channel" => Channel::Email.as_str())
                    .increment(1);
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn send_link<E>(
        &self,
        delivery: &Delivery<E>,
        event: &LinkEvent<'_>,
        expires_at: DateTime<Utc>,
    ) -> anyhow::Result<Outcome> {
        let Some((id, status)) =
            store::email_of_event(&self.pool, delivery.event_id, event.kind).await?
        else {
            return Ok(Outcome::give_up("the link email's row is missing"));
        };
        if status != "pending" {
            return Ok(Outcome::Done);
        }
        if expires_at <= Utc::now() {
            store::give_up(
                &self.pool,
                id,
                "expired",
                "the link expired before it could be sent",
            )
            .await?;
            metrics::counter!("notifications_failed_total", "kind" => event.kind.as_str(), "channel" => Channel::Email.as_str())
                .increment(1);
            return Ok(Outcome::Done);
        }
        let Some(claimed) = self.postman.claim(id).await? else {
            // Another replica holds it (a redelivery while the first is still sending).
            return Ok(Outcome::Retry {
                reason: "another sender holds the link email".into(),
                after: Some(self.postman.settings().lease),
            });
        };
        let link = Link {
            url: domain::link_with_token(&self.public_base_url, event.path, event.token),
            expires_at: expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        };
        Ok(match self.postman.attempt(claimed, Some(&link)).await? {
            Attempt::Sent | Attempt::Failed => Outcome::Done,
            Attempt::RetryIn(_) => Outcome::retry("the relay did not take the link email"),
        })
    }
}

fn to_datetime(timestamp: &api::Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(timestamp.seconds, timestamp.nanos.max(0) as u32)
}

fn amount(money: Option<&api::common::Money>) -> i64 {
    money.map(|money| money.minor_units).unwrap_or(0)
}

fn line_summary(line: &OrderLine) -> LineSummary {
    LineSummary {
        name: line.name.clone(),
        quantity: i64::from(line.quantity),
        unit_price: amount(line.unit_price.as_ref()),
        line_total: amount(line.line_total.as_ref()),
    }
}

/// The figures of `order` as the customer reads them: every sub-order's lines, the order's
/// totals, and why it failed or was cancelled.
fn order_summary(order: &Order) -> OrderSummary {
    let reason = order
        .failure
        .as_ref()
        .map(|failure| {
            if failure.message.trim().is_empty() {
                failure.code.replace('_', " ")
            } else {
                failure.message.trim().to_owned()
            }
        })
        .unwrap_or_default();
    OrderSummary {
        order_id: order.id.clone(),
        currency: order.currency.clone(),
        lines: order
            .sub_orders
            .iter()
            .flat_map(|sub_order| sub_order.lines.iter().map(line_summary))
            .collect(),
        subtotal: amount(order.subtotal.as_ref()),
        discount: amount(order.discount.as_ref()),
        shipping: amount(order.shipping.as_ref()),
        tax: amount(order.tax.as_ref()),
        total: amount(order.total.as_ref()),
        reason,
    }
}
