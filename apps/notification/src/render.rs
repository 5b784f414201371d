//! What a notification says: the content a consumer takes from an event ([`Content`], stored
//! as an email row's payload), and the tera templates that turn it into an email (subject,
//! HTML and plain text) or an in-app title and body, in the user's language.
//!
//! Templates live in `templates/` and are embedded at build time, named
//! `<kind>.<language>.<part>.tera`: `html` and `txt` for the email's two alternatives,
//! `summary` for the subject (its first line) and the in-app body (the rest). A new language
//! is a new set of files and an entry in [`crate::domain::LANGUAGES`].
//!
//! HTML templates are escaped automatically (names ending `.html.tera`), so product names,
//! failure reasons and tracking numbers cannot inject markup. Amounts are formatted here, at
//! render time, with the currency's minor units and the reader's language.

use serde::{Deserialize, Serialize};
use tera::Tera;

use crate::domain::{Kind, format_money, template_language};

/// Every template, embedded at build time.
macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../templates/", $name)))),*]
    };
}

const TEMPLATES: &[(&str, &str)] = templates![
    "layout.en.html.tera",
    "layout.en.txt.tera",
    "order_lines.en.html.tera",
    "order_lines.en.txt.tera",
    "welcome.en.html.tera",
    "welcome.en.txt.tera",
    "welcome.en.summary.tera",
    "email_verification.en.html.tera",
    "email_verification.en.txt.tera",
    "email_verification.en.summary.tera",
    "password_reset.en.html.tera",
    "password_reset.en.txt.tera",
    "password_reset.en.summary.tera",
    "order_confirmation.en.html.tera",
    "order_confirmation.en.txt.tera",
    "order_confirmation.en.summary.tera",
    "order_failed.en.html.tera",
    "order_failed.en.txt.tera",
    "order_failed.en.summary.tera",
    "order_shipped.en.html.tera",
    "order_shipped.en.txt.tera",
    "order_shipped.en.summary.tera",
    "order_cancelled.en.html.tera",
    "order_cancelled.en.txt.tera",
    "order_cancelled.en.summary.tera",
    "order_refunded.en.html.tera",
    "order_refunded.en.txt.tera",
    "order_refunded.en.summary.tera",
];

/// What a notification is about, taken from its event. Email rows store it as their payload,
/// so it must never hold a secret: link emails ([`Link`]) are rendered from the event and never
/// stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Content {
    Welcome,
    Order(OrderSummary),
    Shipment(ShipmentSummary),
}

/// An order's figures, in minor units of `currency`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderSummary {
    pub order_id: String,
    pub currency: String,
    pub lines: Vec<LineSummary>,
    pub subtotal: i64,
    pub discount: i64,
    pub shipping: i64,
    pub tax: i64,
    pub total: i64,
    /// Why it failed or was cancelled, in words; empty otherwise.
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineSummary {
    pub name: String,
    pub quantity: i64,
    pub unit_price: i64,
    pub line_total: i64,
}

/// A shipped sub-order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentSummary {
    pub order_id: String,
    pub sub_order_id: String,
    pub carrier: String,
    pub tracking_number: String,
    pub lines: Vec<LineSummary>,
}

/// A link email's link: rendered from the event, never stored.
#[derive(Clone, Debug)]
pub struct Link {
    pub url: String,
    /// "2026-12-02 14:00 UTC".
    pub expires_at: String,
}

/// A rendered email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedEmail {
    pub subject: String,
    pub html: String,
    pub text: String,
}

/// Why a notification could not be rendered: a template bug or a payload it cannot read,
/// which no retry fixes.
#[derive(Debug, thiserror::Error)]
#[error("rendering the {kind} notification: {message}")]
pub struct RenderError {
    kind: &'static str,
    message: String,
}

/// The templates, parsed once.
#[derive(Debug)]
pub struct Renderer {
    tera: Tera,
    platform: String,
}

impl Renderer {
    /// Parses every embedded template; fails only on a template that does not parse, which the
    /// unit tests catch.
    pub fn new(platform: &str) -> anyhow::Result<Self> {
        let mut tera = Tera::default();
        tera.autoescape_on(vec![".html.tera"]);
        tera.add_raw_templates(TEMPLATES.iter().copied())?;
        Ok(Self {
            tera,
            platform: platform.to_owned(),
        })
    }

    /// The email of `kind` to `email` about `content` (or `link`), in `language`.
    pub fn email(
        &self,
        kind: Kind,
        language: &str,
        email: &str,
        content: Option<&Content>,
        link: Option<&Link>,
    ) -> Result<RenderedEmail, RenderError> {
        let language = template_language(language);
        let context = self.context(language, email, content, link);
        let (subject, _) = self.summary(kind, language, &context)?;
        let mut context = context;
        context.insert("subject", &subject);
        let render = |part: &str| {
            self.tera
                .render(
                    &format!("{}.{language}.{part}.tera", kind.as_str()),
                    &context,
                )
                .map_err(|error| render_error(kind, &error))
        };
        Ok(RenderedEmail {
            html: render("html")?,
            text: render("txt")?,
            subject,
        })
    }

    /// The in-app title and body of `kind` about `content`, in `language`.
    pub fn in_app(
        &self,
        kind: Kind,
        language: &str,
        content: &Content,
    ) -> Result<(String, String), RenderError> {
        let language = template_language(language);
        let context = self.context(language, "", Some(content), None);
        self.summary(kind, language, &context)
    }

    fn summary(
        &self,
        kind: Kind,
        language: &str,
        context: &tera::Context,
    ) -> Result<(String, String), RenderError> {
        let summary = self
            .tera
            .render(
                &format!("{}.{language}.summary.tera", kind.as_str()),
                context,
            )
            .map_err(|error| render_error(kind, &error))?;
        let mut lines = summary.trim().splitn(2, '\n');
        // A subject is one line without control characters, whatever the data held.
        let title: String = lines
            .next()
            .unwrap_or_default()
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let body = lines.next().unwrap_or_default().trim().to_owned();
        Ok((title.trim().to_owned(), body))
    }

    fn context(
        &self,
        language: &str,
        email: &str,
        content: Option<&Content>,
        link: Option<&Link>,
    ) -> tera::Context {
        let mut context = tera::Context::new();
        context.insert("platform", &self.platform);
        context.insert("language", language);
        context.insert("email", email);
        match content {
            Some(Content::Order(order)) => {
                context.insert("order", &order_view(order, language));
            }
            Some(Content::Shipment(shipment)) => {
                context.insert(
                    "order",
                    &serde_json::json!({ "number": order_number(&shipment.order_id) }),
                );
                context.insert(
                    "shipment",
                    &serde_json::json!({
                        "carrier": shipment.carrier,
                        "tracking_number": shipment.tracking_number,
                        "lines": shipment.lines.iter().map(|line| serde_json::json!({
                            "name": line.name, "quantity": line.quantity,
                        })).collect::<Vec<_>>(),
                    }),
                );
            }
            Some(Content::Welcome) | None => {}
        }
        if let Some(link) = link {
            context.insert("link", &link.url);
            context.insert("expires_at", &link.expires_at);
        }
        context
    }
}

/// The short number a customer recognises: the order id's last twelve hex digits, upper case.
pub fn order_number(order_id: &str) -> String {
    let hex: String = order_id.chars().filter(char::is_ascii_hexdigit).collect();
    hex[hex.len().saturating_sub(12)..].to_ascii_uppercase()
}

fn order_view(order: &OrderSummary, language: &str) -> serde_json::Value {
    let money = |minor: i64| format_money(minor, &order.currency, language);
    serde_json::json!({
        "id": order.order_id,
        "number": order_number(&order.order_id),
        "lines": order.lines.iter().map(|line| serde_json::json!({
            "name": line.name,
            "quantity": line.quantity,
            "unit_price": money(line.unit_price),
            "line_total": money(line.line_total),
        })).collect::<Vec<_>>(),
        "subtotal": money(order.subtotal),
        "has_discount": order.discount != 0,
        "discount": money(order.discount),
        "shipping": money(order.shipping),
        "tax": money(order.tax),
        "total": money(order.total),
        "reason": order.reason,
    })
}

fn render_error(kind: Kind, error: &tera::Error) -> RenderError {
    // tera's chain says which variable or template failed; keep all of it for the logs.
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    RenderError {
        kind: kind.as_str(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order() -> OrderSummary {
        OrderSummary {
            order_id: "0190f5c6-1e2b-7a1c-9d3e-4f5a6b7c8d9e".into(),
            currency: "USD".into(),
            lines: vec![LineSummary {
                name: "Mug <b>& co</b>".into(),
                quantity: 2,
                unit_price: 1250,
                line_total: 2500,
            }],
            subtotal: 2500,
            discount: 0,
            shipping: 499,
            tax: 200,
            total: 3199,
            reason: String::new(),
        }
    }

    #[test]
    fn every_kind_renders_in_every_language() {
        let renderer = Renderer::new("Emporium").unwrap();
        let link = Link {
            url: "https://shop.example/verify-email?token=abc".into(),
            expires_at: "2026-12-02 14:00 UTC".into(),
        };
        let shipment = Content::Shipment(ShipmentSummary {
            order_id: order().order_id,
            sub_order_id: "x".into(),
            carrier: "UPS".into(),
            tracking_number: "1Z999".into(),
            lines: order().lines,
        });
        for kind in Kind::ALL {
            if kind == Kind::Marketing {
                continue;
            }
            let content = match kind {
                Kind::Welcome => Content::Welcome,
                Kind::OrderShipped => shipment.clone(),
                _ => Content::Order(order()),
            };
            for language in crate::domain::LANGUAGES {
                let email = renderer
                    .email(
                        kind,
                        language,
                        "ada@example.com",
                        Some(&content),
                        Some(&link),
                    )
                    .unwrap();
                assert!(
                    email.subject.contains("Emporium"),
                    "{kind:?}: {}",
                    email.subject
                );
                assert!(email.text.contains("ada@example.com"), "{kind:?}");
                assert!(email.html.contains("<html"), "{kind:?}");
            }
        }
    }

    #[test]
    fn html_escapes_what_users_wrote_and_text_keeps_it() {
        let renderer = Renderer::new("Emporium").unwrap();
        let content = Content::Order(order());
        let email = renderer
            .email(
                Kind::OrderConfirmation,
                "en",
                "a@example.com",
                Some(&content),
                None,
            )
            .unwrap();
        assert!(!email.html.contains("<b>& co</b>"));
        assert!(email.html.contains("Mug &lt;b&gt;&amp; co&lt;&#x2F;b&gt;"));
        assert!(
            email
                .text
                .contains("2 x Mug <b>& co</b> at USD 12.50: USD 25.00")
        );
        assert!(email.text.contains("Total: USD 31.99"));
        assert!(!email.text.contains("Discount"));
        assert_eq!(
            email.subject,
            "Your Emporium order 4F5A6B7C8D9E is confirmed"
        );
    }

    #[test]
    fn in_app_has_a_title_and_a_body() {
        let renderer = Renderer::new("Emporium").unwrap();
        let (title, body) = renderer
            .in_app(Kind::OrderConfirmation, "en-US", &Content::Order(order()))
            .unwrap();
        assert_eq!(title, "Your Emporium order 4F5A6B7C8D9E is confirmed");
        assert!(body.contains("USD 31.99"), "{body}");
    }
}
