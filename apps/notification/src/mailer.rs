//! Email over SMTP to the configured relay, with lettre.
//!
//! Every email has a `Message-ID` made from its notification id (`<id@domain of --mail-from>`),
//! the same at every attempt. The one window where an email can go out twice is a crash (or a
//! lost database connection) after the relay accepted the message and before the row was marked
//! sent: the row's lease runs out and another attempt sends it again, with the same
//! Message-ID, so mail systems and readers see the second copy as a duplicate of the first.
//! SMTP offers no way to ask a relay whether it already took a message, so this window cannot
//! be closed from our side; it is as small as one database round trip.

use std::str::FromStr;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
use uuid::Uuid;

use crate::render::RenderedEmail;

/// The relay's URL: `smtp://host:port` (plain), `smtp://host:port?tls=required` (STARTTLS),
/// `smtps://host:port` (TLS), with `user:password@` for AUTH. Its Debug form hides the
/// password, so a logged configuration does not leak it.
#[derive(Clone)]
pub struct SmtpUrl(String);

impl SmtpUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for SmtpUrl {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let parsed = url::Url::parse(value).map_err(|error| format!("not a URL: {error}"))?;
        match parsed.scheme() {
            "smtp" | "smtps" => {}
            other => return Err(format!("the scheme must be smtp or smtps, not {other}")),
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err("names no host".into());
        }
        Ok(Self(value.to_owned()))
    }
}

impl std::fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match url::Url::parse(&self.0) {
            Ok(mut url) => {
                if url.password().is_some() {
                    let _ = url.set_password(Some("***"));
                }
                write!(f, "{url}")
            }
            Err(_) => f.write_str("(invalid)"),
        }
    }
}

/// SMTP connections kept open to the relay, and so emails sent at once by one sender.
pub const CONNECTIONS: u32 = 4;

/// Why an email was not sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The relay is down, slow or said "try later": the email is tried again.
    #[error("the relay did not take the email: {0}")]
    Transient(String),
    /// The relay refused this email for good (a 5xx reply, an address it cannot be sent to):
    /// retrying would only be refused again.
    #[error("the relay refused the email: {0}")]
    Permanent(String),
}

/// The SMTP relay and the sender's address.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    message_id_domain: String,
    /// The platform's settings: the sender (`notification.sender`, when the bucket holds one,
    /// wins over --mail-from) and the SMTP failure fault flag of dev and test stacks.
    settings: settings::Settings,
}

impl Mailer {
    /// A mailer for `url` sending as `from` ("Emporium <no-reply@emporium.test>"); no
    /// connection is made until the first email.
    pub fn new(url: &SmtpUrl, from: &str, timeout: Duration) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let from: Mailbox = from
            .parse()
            .with_context(|| format!("--mail-from {from:?} is not an email address"))?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.as_str())
            .context("configuring the SMTP relay from --smtp-url")?
            .timeout(Some(timeout))
            .pool_config(PoolConfig::new().max_size(CONNECTIONS))
            .build();
        Ok(Self {
            message_id_domain: from.email.domain().to_owned(),
            transport,
            from,
            settings: settings::Settings::defaults(),
        })
    }

    /// Reads the sender and the SMTP failure fault flag from `settings`.
    pub fn with_settings(mut self, settings: settings::Settings) -> Self {
        self.settings = settings;
        self
    }

    /// Who the email comes from: the platform's `notification.sender` setting when the
    /// settings bucket holds one, else --mail-from.
    fn sender(&self) -> Mailbox {
        let stored = self.settings.stored(
            settings::Scope::Platform,
            settings::catalogue::NOTIFICATION_SENDER,
        );
        if stored.is_none() {
            return self.from.clone();
        }
        let sender = self.settings.notification_sender(settings::Scope::Platform);
        match sender.address.parse() {
            Ok(address) => Mailbox::new(Some(sender.name), address),
            Err(error) => {
                tracing::warn!(%error, "the notification.sender setting is not an address; using --mail-from");
                self.from.clone()
            }
        }
    }

    /// The Message-ID of notification `id`'s email, the same at every attempt.
    pub fn message_id(&self, id: Uuid) -> String {
        format!("<{id}@{}>", self.message_id_domain)
    }

    /// Sends `email` (HTML and plain text as multipart/alternative) to `to`.
    pub async fn send(&self, id: Uuid, to: &str, email: &RenderedEmail) -> Result<(), SendError> {
        let to: Mailbox = to
            .parse()
            .map_err(|error| SendError::Permanent(format!("the address {to:?}: {error}")))?;
        if settings::Faults::strikes(self.settings.faults().notification_smtp_failure_percent()) {
            return Err(SendError::Transient(
                "the fault flag fault.notification.smtp_failure_percent failed this delivery"
                    .into(),
            ));
        }
        let message = Message::builder()
            .from(self.sender())
            .to(to)
            .subject(&email.subject)
            .message_id(Some(self.message_id(id)))
            .multipart(MultiPart::alternative_plain_html(
                email.text.clone(),
                email.html.clone(),
            ))
            .map_err(|error| SendError::Permanent(format!("building the message: {error}")))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(error) if error.is_permanent() => Err(SendError::Permanent(error.to_string())),
            Err(error) => Err(SendError::Transient(error.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_are_checked_and_their_passwords_never_shown() {
        let url: SmtpUrl = "smtp://mailer:s3cret@relay.example:587?tls=required"
            .parse()
            .unwrap();
        let shown = format!("{url:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("relay.example:587"));
        assert!("http://relay.example".parse::<SmtpUrl>().is_err());
        assert!("relay.example:25".parse::<SmtpUrl>().is_err());
    }

    // The pooled transport needs a runtime, even unused.
    #[tokio::test]
    async fn message_ids_follow_the_notification_id() {
        let mailer = Mailer::new(
            &"smtp://127.0.0.1:2525".parse().unwrap(),
            "Emporium <no-reply@emporium.test>",
            Duration::from_secs(1),
        )
        .unwrap();
        let id = Uuid::nil();
        assert_eq!(
            mailer.message_id(id),
            "<00000000-0000-0000-0000-000000000000@emporium.test>"
        );
    }
}
