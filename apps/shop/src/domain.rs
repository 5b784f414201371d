//! The rules of a shop, free of storage and transport.
//!
//! Requests are parsed here once, at the edge, into types that can only hold valid values
//! ("parse, don't validate"): a [`Slug`] is always 3 to 48 lower case letters, digits and
//! single hyphens that cannot be mistaken for an id, a [`ContactEmail`] always looks like an
//! address, a currency is always a real ISO 4217 one. Parsing a request names every bad field
//! at once (`vocab::Fields`), in the request's own field names.
//!
//! The life of a shop is one explicit state machine ([`ShopStatus::apply`]): every status
//! change goes through it, and the handlers record each change as a history row and an event.
//!
//! Nothing in this module does I/O, so it is all unit-tested in place.

use std::fmt;

use api::shop::{
    CreateShopRequest, ListMyShopsRequest, ListShopsRequest, SuspendShopRequest, UpdateShopRequest,
};
use uuid::Uuid;
use vocab::page::{self, Keyset, PageSize};
use vocab::{Currency, Fields, LineBreaks, Problem, bounded_text};

/// How many shops one seller may have, whatever their status.
pub const MAX_SHOPS_PER_OWNER: i64 = 20;

/// A stored shop: a UUID v7, so ids sort in creation order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShopId(Uuid);

impl ShopId {
    /// A new, time-ordered id.
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn parse(value: &str) -> Result<Self, Problem> {
        if value.is_empty() {
            return Err("is required".into());
        }
        Uuid::try_parse(value)
            .map(Self)
            .map_err(|_| "must be a UUID".into())
    }

    /// The id of a request that only names a shop (close, approve, shop access).
    pub fn parse_field(field: &str, value: &str) -> Result<Self, rpc::Error> {
        Self::parse(value).map_err(|problem| rpc::Error::invalid_field(field, problem))
    }

    pub fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for ShopId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Listings are in id (creation) order, so the last id of a page is where the next one starts.
impl Keyset for ShopId {
    const VERSION: u32 = 1;

    fn write(&self) -> String {
        self.0.to_string()
    }

    fn read(text: &str) -> Option<Self> {
        Uuid::try_parse(text).ok().map(Self)
    }
}

/// The user who owns a shop: the caller who opened it. Users live in the auth and user
/// services; here the id is only a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OwnerId(Uuid);

impl OwnerId {
    /// The caller's user id, which the platform issues as a UUID.
    pub fn parse(user_id: &str) -> Result<Self, Problem> {
        Uuid::try_parse(user_id)
            .map(Self)
            .map_err(|_| "the caller's user id is not a UUID".into())
    }

    pub fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for OwnerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A text field of a shop.
macro_rules! text_field {
    ($(#[$doc:meta])* $name:ident, $min:literal ..= $max:literal, $line_breaks:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub const MAX_CHARS: usize = $max;

            pub fn parse(value: &str) -> Result<Self, Problem> {
                bounded_text(value, $min..=$max, $line_breaks).map($name)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}

text_field!(
    /// What buyers see the shop as: 1 to 100 characters on one line.
    ShopName, 1..=100, LineBreaks::Refused
);
text_field!(
    /// Up to 2000 characters, paragraphs allowed.
    Description, 0..=2000, LineBreaks::Allowed
);
text_field!(
    /// Why an admin suspended a shop, as its owner reads it: 1 to 500 characters.
    StatusReason, 1..=500, LineBreaks::Refused
);

/// A shop's address in URLs: 3 to 48 lower case letters, digits and single hyphens between
/// them ("acme-tools"). Never shaped like a UUID, so that `GetShop` can tell an id from a slug.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slug(String);

impl Slug {
    pub const MIN_CHARS: usize = 3;
    pub const MAX_CHARS: usize = 48;

    pub fn parse(value: &str) -> Result<Self, Problem> {
        if value.is_empty() {
            return Err("is required".into());
        }
        let count = value.chars().count();
        if count < Self::MIN_CHARS {
            return Err(format!("must have at least {} characters", Self::MIN_CHARS).into());
        }
        if count > Self::MAX_CHARS {
            return Err(format!("must have at most {} characters", Self::MAX_CHARS).into());
        }
        let well_formed = value.split('-').all(|part| {
            !part.is_empty() && part.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9'))
        });
        if !well_formed {
            return Err(
                "may contain only lower case letters, digits and single hyphens between them"
                    .into(),
            );
        }
        if Uuid::try_parse(value).is_ok() {
            return Err("must not be a UUID".into());
        }
        Ok(Slug(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where buyers write to the shop: trimmed, at most 254 characters, a local part, an @ and a
/// domain with a dot, no white space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactEmail(String);

impl ContactEmail {
    pub const MAX_CHARS: usize = 254;

    pub fn parse(value: &str) -> Result<Self, Problem> {
        let value = value.trim();
        if value.is_empty() {
            return Err("is required".into());
        }
        if value.chars().count() > Self::MAX_CHARS {
            return Err(format!("must have at most {} characters", Self::MAX_CHARS).into());
        }
        let looks_like_an_address =
            value.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }) && !value.chars().any(|c| c.is_whitespace() || c.is_control());
        if !looks_like_an_address {
            return Err("must be an email address".into());
        }
        Ok(ContactEmail(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The shop's logo: an absolute http or https URL of at most 2048 characters, or none (the
/// empty string).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogoUrl(Option<String>);

impl LogoUrl {
    pub const MAX_CHARS: usize = 2048;

    pub fn parse(value: &str) -> Result<Self, Problem> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(LogoUrl(None));
        }
        if value.chars().count() > Self::MAX_CHARS {
            return Err(format!("must have at most {} characters", Self::MAX_CHARS).into());
        }
        let is_web_url = url::Url::parse(value).is_ok_and(|url| {
            matches!(url.scheme(), "http" | "https")
                && url.host_str().is_some_and(|host| !host.is_empty())
        });
        if !is_web_url {
            return Err("must be an absolute http or https URL".into());
        }
        Ok(LogoUrl(Some(value.to_owned())))
    }

    /// The contract's spelling: empty when there is no logo.
    pub fn as_str(&self) -> &str {
        self.0.as_deref().unwrap_or("")
    }
}

/// A valid `CreateShop` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewShop {
    pub name: ShopName,
    pub slug: Slug,
    pub description: Description,
    pub logo_url: LogoUrl,
    pub contact_email: ContactEmail,
    pub currency: Currency,
}

impl NewShop {
    pub fn parse(request: &CreateShopRequest) -> Result<Self, rpc::Error> {
        let mut fields = Fields::new();
        let name = fields.parse("name", ShopName::parse(&request.name));
        let slug = fields.parse("slug", Slug::parse(&request.slug));
        let description = fields.parse("description", Description::parse(&request.description));
        let logo_url = fields.parse("logo_url", LogoUrl::parse(&request.logo_url));
        let contact_email =
            fields.parse("contact_email", ContactEmail::parse(&request.contact_email));
        let currency = fields.parse("currency", Currency::parse(&request.currency));
        fields.finish(|| {
            Some(Self {
                name: name?,
                slug: slug?,
                description: description?,
                logo_url: logo_url?,
                contact_email: contact_email?,
                currency: currency?,
            })
        })
    }
}

/// The fields an update sets; `None` leaves a field as it is. The currency never changes:
/// the shop's products are priced in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShopChanges {
    pub id: ShopId,
    pub name: Option<ShopName>,
    pub slug: Option<Slug>,
    pub description: Option<Description>,
    pub logo_url: Option<LogoUrl>,
    pub contact_email: Option<ContactEmail>,
}

impl ShopChanges {
    pub fn parse(request: &UpdateShopRequest) -> Result<Self, rpc::Error> {
        let mut fields = Fields::new();
        let id = fields.parse("id", ShopId::parse(&request.id));
        let name = fields.optional("name", request.name.as_deref(), ShopName::parse);
        let slug = fields.optional("slug", request.slug.as_deref(), Slug::parse);
        let description = fields.optional(
            "description",
            request.description.as_deref(),
            Description::parse,
        );
        let logo_url = fields.optional("logo_url", request.logo_url.as_deref(), LogoUrl::parse);
        let contact_email = fields.optional(
            "contact_email",
            request.contact_email.as_deref(),
            ContactEmail::parse,
        );
        fields.finish(|| {
            Some(Self {
                id: id?,
                name: name?,
                slug: slug?,
                description: description?,
                logo_url: logo_url?,
                contact_email: contact_email?,
            })
        })
    }

    /// Whether the request changes nothing (only names the shop).
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.slug.is_none()
            && self.description.is_none()
            && self.logo_url.is_none()
            && self.contact_email.is_none()
    }
}

/// How `GetShop` names a shop: by id, or by slug when the value is not a UUID (slugs never
/// are). Slugs are stored in lower case, so the lookup is too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShopKey {
    Id(ShopId),
    Slug(String),
}

impl ShopKey {
    pub fn parse(value: &str) -> Result<Self, rpc::Error> {
        let value = value.trim();
        if value.is_empty() {
            return Err(rpc::Error::invalid_field("id", "is required"));
        }
        Ok(match Uuid::try_parse(value) {
            Ok(id) => ShopKey::Id(ShopId(id)),
            Err(_) => ShopKey::Slug(value.to_lowercase()),
        })
    }
}

impl fmt::Display for ShopKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShopKey::Id(id) => id.fmt(f),
            ShopKey::Slug(slug) => slug.fmt(f),
        }
    }
}

/// Where a shop is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShopStatus {
    /// Opened, waiting for an admin's approval; it does not trade.
    Pending,
    /// Trades.
    Active,
    /// Stopped by an admin, with a reason; an admin may approve it again.
    Suspended,
    /// Closed for good by its owner or an admin.
    Closed,
}

/// A status change someone asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusAction {
    Approve,
    Suspend,
    Close,
}

/// What an action does to a shop in a given status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// The shop moves to this status.
    To(ShopStatus),
    /// The shop is already where the action leads: nothing changes.
    Unchanged,
    /// The action is not possible from this status.
    Refused,
}

impl ShopStatus {
    pub const ALL: [ShopStatus; 4] = [
        ShopStatus::Pending,
        ShopStatus::Active,
        ShopStatus::Suspended,
        ShopStatus::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ShopStatus::Pending => vocab::ownership::status::PENDING,
            ShopStatus::Active => vocab::ownership::status::ACTIVE,
            ShopStatus::Suspended => vocab::ownership::status::SUSPENDED,
            ShopStatus::Closed => vocab::ownership::status::CLOSED,
        }
    }

    pub fn parse(value: &str) -> Result<Self, Problem> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == value)
            .ok_or_else(|| "must be one of pending, active, suspended, closed".into())
    }

    /// The one rule for status changes: approving lets a pending or suspended shop trade;
    /// suspending stops a pending or active one; closing ends any shop. Nothing leaves
    /// `closed`. Asking for the status a shop already has changes nothing.
    pub fn apply(self, action: StatusAction) -> Transition {
        use ShopStatus::*;
        match (action, self) {
            (StatusAction::Close, Closed) => Transition::Unchanged,
            (_, Closed) => Transition::Refused,
            (StatusAction::Approve, Active) => Transition::Unchanged,
            (StatusAction::Approve, Pending | Suspended) => Transition::To(Active),
            (StatusAction::Suspend, Suspended) => Transition::Unchanged,
            (StatusAction::Suspend, Pending | Active) => Transition::To(Suspended),
            (StatusAction::Close, Pending | Active | Suspended) => Transition::To(Closed),
        }
    }
}

impl fmt::Display for ShopStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored status that no variant matches (only a schema drift can cause it).
#[derive(Debug, thiserror::Error)]
#[error("unknown shop status {0:?}")]
pub struct UnknownStatus(String);

impl TryFrom<String> for ShopStatus {
    type Error = UnknownStatus;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value).map_err(|_| UnknownStatus(value))
    }
}

/// A valid `SuspendShop` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suspension {
    pub id: ShopId,
    pub reason: StatusReason,
}

impl Suspension {
    pub fn parse(request: &SuspendShopRequest) -> Result<Self, rpc::Error> {
        let mut fields = Fields::new();
        let id = fields.parse("id", ShopId::parse(&request.id));
        let reason = fields.parse("reason", StatusReason::parse(&request.reason));
        fields.finish(|| {
            Some(Self {
                id: id?,
                reason: reason?,
            })
        })
    }
}

/// One page of a listing: at most `size` shops with ids after `after`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub size: PageSize,
    pub after: Option<ShopId>,
}

impl Page {
    fn parse(fields: &mut Fields, page_size: i32, cursor: &str) -> Option<Self> {
        let size = fields.parse("page_size", PageSize::parse(page_size));
        let after = fields.parse("cursor", page::parse_token(cursor));
        Some(Self {
            size: size?,
            after: after?,
        })
    }

    /// The `next_cursor` of a page whose last shop is `last`.
    pub fn cursor_after(last: ShopId) -> String {
        page::encode_token(&last)
    }
}

/// A valid `ListShops` request: the status listed (active unless an admin asks for another)
/// and the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShopQuery {
    pub status: ShopStatus,
    pub page: Page,
}

impl ShopQuery {
    pub fn parse(request: &ListShopsRequest) -> Result<Self, rpc::Error> {
        let mut fields = Fields::new();
        let status = match request.status.as_str() {
            "" => Some(ShopStatus::Active),
            status => fields.parse("status", ShopStatus::parse(status)),
        };
        let page = Page::parse(&mut fields, request.page_size, &request.cursor);
        fields.finish(|| {
            Some(Self {
                status: status?,
                page: page?,
            })
        })
    }
}

/// The page of a `ListMyShops` request.
pub fn parse_my_shops(request: &ListMyShopsRequest) -> Result<Page, rpc::Error> {
    let mut fields = Fields::new();
    let page = Page::parse(&mut fields, request.page_size, &request.cursor);
    fields.finish(|| page)
}

#[cfg(test)]
mod tests {
    use testkit::bad_fields;

    use super::*;

    fn valid() -> CreateShopRequest {
        CreateShopRequest {
            name: "  Acme Tools ".into(),
            slug: "acme-tools".into(),
            description: "Hammers.\nNails.".into(),
            logo_url: "https://img.example.com/acme.png".into(),
            contact_email: " sales@acme.example ".into(),
            currency: "EUR".into(),
        }
    }

    #[test]
    fn a_new_shop_is_trimmed_and_keeps_its_currency() {
        let shop = NewShop::parse(&valid()).unwrap();
        assert_eq!(shop.name.as_str(), "Acme Tools");
        assert_eq!(shop.contact_email.as_str(), "sales@acme.example");
        assert_eq!(shop.currency.code(), "EUR");
        assert_eq!(shop.logo_url.as_str(), "https://img.example.com/acme.png");
        let without_logo = NewShop::parse(&CreateShopRequest {
            logo_url: String::new(),
            ..valid()
        })
        .unwrap();
        assert_eq!(without_logo.logo_url.as_str(), "");
    }

    #[test]
    fn every_bad_field_is_named_at_once() {
        let error = NewShop::parse(&CreateShopRequest {
            name: " ".into(),
            slug: "Acme Tools".into(),
            description: "x".repeat(2001),
            logo_url: "ftp://example.com/logo.png".into(),
            contact_email: "nobody".into(),
            currency: "usd".into(),
        })
        .unwrap_err();
        assert_eq!(
            bad_fields(&error),
            [
                "name",
                "slug",
                "description",
                "logo_url",
                "contact_email",
                "currency"
            ]
        );
    }

    #[test]
    fn slugs_are_lower_case_words_joined_by_single_hyphens_and_never_ids() {
        for good in ["abc", "acme-tools", "a1-b2-c3", &"a".repeat(48)] {
            assert!(Slug::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "ab",
            "-abc",
            "abc-",
            "a--b",
            "Abc",
            "a b",
            "ä-shop",
            &"a".repeat(49),
            "01900000-0000-7000-8000-00000000d001",
        ] {
            assert!(Slug::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn contact_emails_need_a_local_part_and_a_dotted_domain() {
        assert!(ContactEmail::parse("a@b.co").is_ok());
        for bad in ["", "a@b", "@b.co", "a@@b.co", "a b@c.co", "a@.co", "a@co."] {
            assert!(ContactEmail::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_update_changes_only_the_fields_present() {
        let id = ShopId::generate();
        let changes = ShopChanges::parse(&UpdateShopRequest {
            id: id.to_string(),
            description: Some("new".into()),
            logo_url: Some(String::new()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(changes.id, id);
        assert_eq!(changes.name, None);
        assert_eq!(
            changes.description.as_ref().map(|d| d.as_str()),
            Some("new")
        );
        assert_eq!(
            changes.logo_url,
            Some(LogoUrl(None)),
            "empty removes the logo"
        );
        assert!(!changes.is_empty());
        let error = ShopChanges::parse(&UpdateShopRequest {
            id: "nope".into(),
            name: Some(String::new()),
            slug: Some("x".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(bad_fields(&error), ["id", "name", "slug"]);
    }

    #[test]
    fn a_shop_is_named_by_id_or_by_slug() {
        let id = ShopId::generate();
        assert_eq!(ShopKey::parse(&id.to_string()).unwrap(), ShopKey::Id(id));
        assert_eq!(
            ShopKey::parse("Acme-Tools").unwrap(),
            ShopKey::Slug("acme-tools".into())
        );
        assert_eq!(bad_fields(&ShopKey::parse("  ").unwrap_err()), ["id"]);
    }

    #[test]
    fn the_status_machine() {
        use ShopStatus::*;
        use StatusAction::*;
        let table = [
            (Pending, Approve, Transition::To(Active)),
            (Active, Approve, Transition::Unchanged),
            (Suspended, Approve, Transition::To(Active)),
            (Closed, Approve, Transition::Refused),
            (Pending, Suspend, Transition::To(Suspended)),
            (Active, Suspend, Transition::To(Suspended)),
            (Suspended, Suspend, Transition::Unchanged),
            (Closed, Suspend, Transition::Refused),
            (Pending, Close, Transition::To(Closed)),
            (Active, Close, Transition::To(Closed)),
            (Suspended, Close, Transition::To(Closed)),
            (Closed, Close, Transition::Unchanged),
        ];
        for (from, action, expected) in table {
            assert_eq!(from.apply(action), expected, "{action:?} from {from}");
        }
        for status in ShopStatus::ALL {
            assert_eq!(ShopStatus::parse(status.as_str()).unwrap(), status);
        }
    }

    #[test]
    fn listings_default_to_active_shops_and_twenty_a_page() {
        let query = ShopQuery::parse(&ListShopsRequest::default()).unwrap();
        assert_eq!(query.status, ShopStatus::Active);
        assert_eq!(query.page.size, PageSize::DEFAULT);
        assert_eq!(query.page.after, None);

        let error = ShopQuery::parse(&ListShopsRequest {
            status: "gone".into(),
            page_size: 101,
            cursor: "x".into(),
        })
        .unwrap_err();
        assert_eq!(bad_fields(&error), ["status", "page_size", "cursor"]);

        let last = ShopId::generate();
        let page = parse_my_shops(&ListMyShopsRequest {
            page_size: 5,
            cursor: Page::cursor_after(last),
        })
        .unwrap();
        assert_eq!(page.after, Some(last));
        assert_eq!(page.size.get(), 5);
    }

    #[test]
    fn a_suspension_needs_a_reason() {
        let error = Suspension::parse(&SuspendShopRequest {
            id: ShopId::generate().to_string(),
            reason: "  ".into(),
        })
        .unwrap_err();
        assert_eq!(bad_fields(&error), ["reason"]);
    }
}
