//! The rules of notifications: which kinds exist, on which channels, which may be turned off,
//! how a preference update and a listing request are parsed, how long a failed email waits
//! before its next attempt, and how money is written for a reader. Pure functions, no I/O.

use std::time::Duration;

use api::notification::{ListMyNotificationsRequest, UpdateMyNotificationPreferencesRequest};
use uuid::Uuid;
use vocab::page::{self, Keyset, PageSize};
use vocab::{Currency, Fields, Problem};

/// What a notification is about. Each kind is sent on a fixed set of channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Welcome,
    EmailVerification,
    PasswordReset,
    OrderConfirmation,
    OrderFailed,
    OrderShipped,
    OrderCancelled,
    OrderRefunded,
    /// Offers and news; nothing produces it yet, but a user may already turn it off.
    Marketing,
}

impl Kind {
    /// Every kind, in the order preferences are listed.
    pub const ALL: [Kind; 9] = [
        Kind::Welcome,
        Kind::EmailVerification,
        Kind::PasswordReset,
        Kind::OrderConfirmation,
        Kind::OrderFailed,
        Kind::OrderShipped,
        Kind::OrderCancelled,
        Kind::OrderRefunded,
        Kind::Marketing,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Welcome => "welcome",
            Kind::EmailVerification => "email_verification",
            Kind::PasswordReset => "password_reset",
            Kind::OrderConfirmation => "order_confirmation",
            Kind::OrderFailed => "order_failed",
            Kind::OrderShipped => "order_shipped",
            Kind::OrderCancelled => "order_cancelled",
            Kind::OrderRefunded => "order_refunded",
            Kind::Marketing => "marketing",
        }
    }

    pub fn parse(value: &str) -> Result<Self, Problem> {
        Kind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == value)
            .ok_or_else(|| "is not a kind of notification".into())
    }

    /// A message the user needs about something they did (an order, a link they asked for):
    /// it is always sent, whatever the preferences say.
    pub const fn is_transactional(self) -> bool {
        !matches!(self, Kind::Welcome | Kind::Marketing)
    }

    /// The channels this kind is sent on. Link emails carry a secret token, so they exist only
    /// as email (an in-app copy would have to store it).
    pub const fn channels(self) -> &'static [Channel] {
        match self {
            Kind::EmailVerification | Kind::PasswordReset => &[Channel::Email],
            _ => &[Channel::Email, Channel::InApp],
        }
    }

    /// Whether the email of this kind carries a single-use token, which is never stored: the
    /// consumer sends it while it holds the event, instead of the sender loop from a row.
    pub const fn carries_token(self) -> bool {
        matches!(self, Kind::EmailVerification | Kind::PasswordReset)
    }
}

/// How a notification reaches its user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    Email,
    InApp,
}

impl Channel {
    pub const fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::InApp => "in_app",
        }
    }

    pub fn parse(value: &str) -> Result<Self, Problem> {
        match value {
            "email" => Ok(Channel::Email),
            "in_app" => Ok(Channel::InApp),
            _ => Err("must be \"email\" or \"in_app\"".into()),
        }
    }
}

/// One preference: whether `kind` is sent on `channel`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preference {
    pub kind: Kind,
    pub channel: Channel,
    pub enabled: bool,
}

/// Whether `kind` goes out on `channel` given the user's stored choice (`None`: never chosen,
/// which means on). A transactional kind always goes out.
pub fn is_enabled(kind: Kind, channel: Channel, stored: Option<bool>) -> bool {
    kind.channels().contains(&channel) && (kind.is_transactional() || stored.unwrap_or(true))
}

/// A preference update, validated: every item names a kind and one of its channels, and none
/// turns a transactional kind off.
pub fn parse_preference_update(
    request: &UpdateMyNotificationPreferencesRequest,
) -> Result<Vec<Preference>, rpc::Error> {
    let mut fields = Fields::new();
    if request.preferences.is_empty() {
        fields.add("preferences", "is required");
    }
    let mut parsed = Vec::with_capacity(request.preferences.len());
    for (index, item) in request.preferences.iter().enumerate() {
        let kind = fields.parse(
            &format!("preferences[{index}].kind"),
            Kind::parse(item.kind.trim()),
        );
        let channel = fields.parse(
            &format!("preferences[{index}].channel"),
            Channel::parse(item.channel.trim()),
        );
        let (Some(kind), Some(channel)) = (kind, channel) else {
            continue;
        };
        if !kind.channels().contains(&channel) {
            fields.add(
                &format!("preferences[{index}].channel"),
                format!(
                    "{} notifications are not sent as {}",
                    kind.as_str(),
                    channel.as_str()
                ),
            );
        } else if kind.is_transactional() && !item.enabled {
            fields.add(
                &format!("preferences[{index}].enabled"),
                format!(
                    "{} notifications are transactional and cannot be turned off",
                    kind.as_str()
                ),
            );
        } else {
            parsed.push(Preference {
                kind,
                channel,
                enabled: item.enabled,
            });
        }
    }
    fields.finish(|| Some(parsed))
}

/// The id of a notification: a UUID v7, so ids sort in creation order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NotificationId(pub Uuid);

impl NotificationId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// Parses the request field `field`, or says why it is not an id.
    pub fn parse(field: &str, value: &str) -> Result<Self, rpc::Error> {
        Uuid::try_parse(value.trim())
            .map(Self)
            .map_err(|_| rpc::Error::invalid_field(field, "must be a UUID"))
    }
}

impl Default for NotificationId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for NotificationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Listings are newest first by id, so the last id of a page is where the next one starts.
impl Keyset for NotificationId {
    const VERSION: u32 = 1;

    fn write(&self) -> String {
        self.0.to_string()
    }

    fn read(text: &str) -> Option<Self> {
        Uuid::try_parse(text).ok().map(Self)
    }
}

/// Which in-app notifications a listing shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadFilter {
    All,
    Unread,
    Read,
}

/// One page of the caller's in-app notifications: at most `size`, older than `before`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub size: usize,
    pub before: Option<NotificationId>,
    pub filter: ReadFilter,
}

impl Page {
    pub fn parse(request: &ListMyNotificationsRequest) -> Result<Self, rpc::Error> {
        let mut fields = Fields::new();
        let size = fields.parse("page_size", PageSize::parse(request.page_size));
        let before = fields.parse("cursor", page::parse_token(&request.cursor));
        let filter = fields.parse(
            "filter",
            match request.filter.trim() {
                "" => Ok(ReadFilter::All),
                "unread" => Ok(ReadFilter::Unread),
                "read" => Ok(ReadFilter::Read),
                _ => Err("must be \"unread\", \"read\" or empty".into()),
            },
        );
        fields.finish(|| {
            Some(Self {
                size: size?.get(),
                before: before?,
                filter: filter?,
            })
        })
    }

    /// The `next_cursor` of a page whose last notification is `last`.
    pub fn cursor_after(last: NotificationId) -> String {
        page::encode_token(&last)
    }
}

/// How email retries are spaced: exponential from `base`, capped at `max`, with jitter so
/// replicas and many failed emails do not all retry at the same moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The wait after the `attempts`-th failed attempt (1-based). `jitter` is a number in
    /// [0, 1) from the caller's random source: the wait is between half and all of the
    /// exponential delay ("equal jitter"), so it never collapses to zero.
    pub fn delay(self, attempts: u32, jitter: f64) -> Duration {
        let exponent = attempts.saturating_sub(1).min(30);
        let full = self
            .base
            .saturating_mul(1u32 << exponent)
            .min(self.max)
            .max(Duration::from_millis(1));
        let jitter = jitter.clamp(0.0, 1.0);
        full.mul_f64(0.5 + jitter / 2.0)
    }

    /// The delays without jitter, from `base` doubling up to `max` (the last one repeats):
    /// a JetStream consumer's redelivery schedule.
    pub fn schedule(self) -> Vec<Duration> {
        let mut delays = vec![self.base.max(Duration::from_millis(1))];
        while delays.len() < 30 {
            let next = (delays[delays.len() - 1] * 2).min(self.max);
            if next <= delays[delays.len() - 1] {
                break;
            }
            delays.push(next);
        }
        delays
    }
}

/// `minor_units` of `currency` the way a reader of `language` writes it: "USD 1,234.50",
/// "JPY 1,200", "KWD 3.500". Only English is written today; any other language falls back to
/// it until its own rules are added here.
pub fn format_money(minor_units: i64, currency: &str, language: &str) -> String {
    let _ = language;
    let digits = Currency::find(currency)
        .map(|currency| currency.minor_unit_digits())
        .unwrap_or(2) as u32;
    let negative = minor_units < 0;
    let magnitude = minor_units.unsigned_abs();
    let scale = 10u64.pow(digits);
    let whole = group_thousands(magnitude / scale);
    let sign = if negative { "-" } else { "" };
    if digits == 0 {
        format!("{currency} {sign}{whole}")
    } else {
        let fraction = magnitude % scale;
        format!(
            "{currency} {sign}{whole}.{fraction:0width$}",
            width = digits as usize
        )
    }
}

fn group_thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

/// The link an email carries: `base` + `path` with the token as its query, encoded.
pub fn link_with_token(base: &url::Url, path: &str, token: &str) -> String {
    let mut link = base.clone();
    let base_path = link.path().trim_end_matches('/').to_owned();
    link.set_path(&format!("{base_path}{path}"));
    link.query_pairs_mut().clear().append_pair("token", token);
    link.to_string()
}

/// The languages templates exist for; any other falls back to the first.
pub const LANGUAGES: [&str; 1] = ["en"];

/// The template language for a user's language tag: "en-GB" is "en", an unknown one is
/// English.
pub fn template_language(tag: &str) -> &'static str {
    let primary = tag.split('-').next().unwrap_or("").to_ascii_lowercase();
    LANGUAGES
        .into_iter()
        .find(|language| *language == primary)
        .unwrap_or(LANGUAGES[0])
}

#[cfg(test)]
mod tests {
    use api::notification::NotificationPreference;
    use testkit::bad_fields;

    use super::*;

    fn update(items: &[(&str, &str, bool)]) -> UpdateMyNotificationPreferencesRequest {
        UpdateMyNotificationPreferencesRequest {
            preferences: items
                .iter()
                .map(|(kind, channel, enabled)| NotificationPreference {
                    kind: (*kind).into(),
                    channel: (*channel).into(),
                    enabled: *enabled,
                    required: false,
                })
                .collect(),
        }
    }

    #[test]
    fn marketing_may_be_turned_off_but_transactional_kinds_may_not() {
        let parsed = parse_preference_update(&update(&[("marketing", "email", false)])).unwrap();
        assert_eq!(
            parsed,
            [Preference {
                kind: Kind::Marketing,
                channel: Channel::Email,
                enabled: false
            }]
        );
        let error = parse_preference_update(&update(&[
            ("marketing", "in_app", false),
            ("order_confirmation", "email", false),
            ("password_reset", "in_app", true),
            ("nope", "email", true),
        ]))
        .unwrap_err();
        assert_eq!(
            bad_fields(&error),
            [
                "preferences[1].enabled",
                "preferences[2].channel",
                "preferences[3].kind"
            ]
        );
        // Turning a transactional kind on is allowed (it changes nothing).
        assert!(parse_preference_update(&update(&[("order_shipped", "email", true)])).is_ok());
    }

    #[test]
    fn stored_choices_apply_only_to_kinds_that_may_be_turned_off() {
        assert!(is_enabled(Kind::Marketing, Channel::Email, None));
        assert!(!is_enabled(Kind::Marketing, Channel::Email, Some(false)));
        assert!(is_enabled(Kind::OrderShipped, Channel::Email, Some(false)));
        assert!(!is_enabled(Kind::PasswordReset, Channel::InApp, None));
    }

    #[test]
    fn retries_grow_exponentially_with_jitter_and_a_cap() {
        let backoff = Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(60),
        };
        assert_eq!(backoff.delay(1, 0.0), Duration::from_millis(500));
        assert_eq!(backoff.delay(1, 0.999_999).as_millis(), 999);
        assert_eq!(backoff.delay(3, 0.0), Duration::from_secs(2));
        assert_eq!(backoff.delay(20, 0.0), Duration::from_secs(30));
        assert_eq!(backoff.delay(u32::MAX, 1.0), Duration::from_secs(60));
        let schedule: Vec<u64> = backoff.schedule().iter().map(Duration::as_secs).collect();
        assert_eq!(schedule, [1, 2, 4, 8, 16, 32, 60]);
    }

    #[test]
    fn money_is_written_with_the_currency_minor_units() {
        assert_eq!(format_money(123_450, "USD", "en"), "USD 1,234.50");
        assert_eq!(format_money(1200, "JPY", "en"), "JPY 1,200");
        assert_eq!(format_money(3500, "KWD", "en"), "KWD 3.500");
        assert_eq!(format_money(-5, "EUR", "en"), "EUR -0.05");
        assert_eq!(
            format_money(100_000_000_000, "USD", "en"),
            "USD 1,000,000,000.00"
        );
    }

    #[test]
    fn links_carry_the_token_encoded_under_the_base_path() {
        let base = url::Url::parse("https://shop.example/app/").unwrap();
        assert_eq!(
            link_with_token(&base, "/verify-email", "a b&c"),
            "https://shop.example/app/verify-email?token=a+b%26c"
        );
    }

    #[test]
    fn languages_fall_back_to_english() {
        assert_eq!(template_language("en-GB"), "en");
        assert_eq!(template_language("fr"), "en");
    }

    #[test]
    fn listing_requests_are_checked() {
        let page = Page::parse(&ListMyNotificationsRequest {
            filter: "unread".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(page.filter, ReadFilter::Unread);
        assert_eq!(page.size, PageSize::DEFAULT.get());
        let error = Page::parse(&ListMyNotificationsRequest {
            filter: "x".into(),
            cursor: "y".into(),
            page_size: 1000,
        })
        .unwrap_err();
        assert_eq!(bad_fields(&error), ["page_size", "cursor", "filter"]);
    }
}
