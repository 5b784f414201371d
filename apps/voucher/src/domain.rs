//! The rules of a voucher, free of storage and transport: what a valid voucher looks like,
//! what a change may do to one, what a code saves on a cart (or why it does not apply), and
//! how a redemption moves between its states.
//!
//! Requests are parsed here once into types that can only hold valid values, naming every bad
//! field at once (`vocab::Fields`) with the request's own field names. Nothing here does I/O,
//! so it is all unit-tested in place.

use std::collections::BTreeMap;
use std::fmt;

use api::Timestamp;
use api::voucher::{
    CreateVoucherRequest, EvaluateVoucherRequest, ListVouchersRequest, ReserveVoucherRequest,
    ShopSubtotal, UpdateVoucherRequest,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;
use vocab::page::{self, Keyset, PageSize};
use vocab::{Currency, Fields, LineBreaks, Money, Problem, bounded_text};

pub const CODE_MIN_CHARS: usize = 3;
pub const CODE_MAX_CHARS: usize = 32;
pub const DESCRIPTION_MAX_CHARS: usize = 500;
/// The largest amount off, minimum order or cap a voucher may name (the contract's bound).
pub const MAX_AMOUNT_MINOR_UNITS: i64 = 1_000_000_000_000;
pub const MAX_USAGE_LIMIT: i32 = 100_000_000;
pub const MAX_PER_USER_LIMIT: i32 = 1000;

// ---------------------------------------------------------------------------------------------
// Identifiers
// ---------------------------------------------------------------------------------------------

/// The id of a stored voucher: a UUID v7, so ids sort in creation order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VoucherId(pub Uuid);

impl VoucherId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
}

impl Default for VoucherId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for VoucherId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Listings are newest first, in id order, so the last id of a page is where the next starts.
impl Keyset for VoucherId {
    const VERSION: u32 = 1;

    fn write(&self) -> String {
        self.0.to_string()
    }

    fn read(text: &str) -> Option<Self> {
        Uuid::try_parse(text).ok().map(Self)
    }
}

/// A UUID field (a shop, a user, an order).
pub fn uuid(value: &str) -> Result<Uuid, Problem> {
    if value.is_empty() {
        return Err("is required".into());
    }
    Uuid::try_parse(value).map_err(|_| "must be a UUID".into())
}

/// A UUID field that may be empty.
pub fn optional_uuid(value: &str) -> Result<Option<Uuid>, Problem> {
    if value.is_empty() {
        Ok(None)
    } else {
        uuid(value).map(Some)
    }
}

/// A signed-in caller's user id, as the user service issues it; `None` when it is not a UUID
/// (such a caller has no redemptions here).
pub fn user_id_of(principal: &rpc::Principal) -> Option<Uuid> {
    Uuid::try_parse(&principal.user_id).ok()
}

// ---------------------------------------------------------------------------------------------
// Codes
// ---------------------------------------------------------------------------------------------

/// A voucher code as its creator spelled it: 3 to 32 letters, digits, hyphens and underscores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Code(String);

impl Code {
    pub fn parse(value: &str) -> Result<Self, Problem> {
        let value = value.trim();
        let length = value.chars().count();
        if length == 0 {
            return Err("is required".into());
        }
        if !(CODE_MIN_CHARS..=CODE_MAX_CHARS).contains(&length) {
            return Err(
                format!("must have {CODE_MIN_CHARS} to {CODE_MAX_CHARS} characters").into(),
            );
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("may contain only letters, digits, hyphens and underscores".into());
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a code is looked up by: codes match without regard to case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeKey(String);

impl CodeKey {
    /// Any text may be asked for; one that is no code simply matches no voucher.
    pub fn of(value: &str) -> Self {
        Self(value.trim().to_lowercase())
    }

    pub fn parse(value: &str) -> Result<Self, Problem> {
        if value.trim().is_empty() {
            Err("is required".into())
        } else {
            Ok(Self::of(value))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// ---------------------------------------------------------------------------------------------
// Vouchers
// ---------------------------------------------------------------------------------------------

/// What a voucher takes off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Discount {
    /// 1 to 100 percent of the subtotal.
    Percent(i32),
    /// A fixed amount, in the voucher's currency, more than zero.
    Fixed(i64),
}

impl Discount {
    pub fn kind(self) -> &'static str {
        match self {
            Discount::Percent(_) => "percent",
            Discount::Fixed(_) => "fixed",
        }
    }

    pub fn percent_off(self) -> i32 {
        match self {
            Discount::Percent(percent) => percent,
            Discount::Fixed(_) => 0,
        }
    }

    pub fn amount_off_minor_units(self) -> i64 {
        match self {
            Discount::Percent(_) => 0,
            Discount::Fixed(amount) => amount,
        }
    }

    /// The stored columns back as a discount; `None` if they break the schema's CHECKs.
    pub fn from_columns(kind: &str, percent_off: i32, amount_off: i64) -> Option<Self> {
        match kind {
            "percent" if (1..=100).contains(&percent_off) => Some(Discount::Percent(percent_off)),
            "fixed" if amount_off > 0 => Some(Discount::Fixed(amount_off)),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoucherStatus {
    Active,
    Disabled,
}

impl VoucherStatus {
    pub fn parse(value: &str) -> Result<Self, Problem> {
        match value {
            "active" => Ok(VoucherStatus::Active),
            "disabled" => Ok(VoucherStatus::Disabled),
            _ => Err("must be \"active\" or \"disabled\"".into()),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            VoucherStatus::Active => "active",
            VoucherStatus::Disabled => "disabled",
        }
    }
}

/// The terms of a voucher an update may change, valid together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Terms {
    pub description: String,
    pub discount: Discount,
    /// 0: none.
    pub min_order_minor_units: i64,
    /// 0: no cap.
    pub max_discount_minor_units: i64,
    pub valid_from: DateTime<Utc>,
    pub valid_until: Option<DateTime<Utc>>,
    /// 0: unlimited.
    pub usage_limit: i32,
    /// 0: unlimited.
    pub per_user_limit: i32,
    pub status: VoucherStatus,
}

fn description(value: &str) -> Result<String, Problem> {
    bounded_text(value, 0..=DESCRIPTION_MAX_CHARS, LineBreaks::Refused)
}

fn amount(value: i64) -> Result<i64, Problem> {
    if value < 0 {
        Err("must not be negative".into())
    } else if value > MAX_AMOUNT_MINOR_UNITS {
        Err(format!("must be at most {MAX_AMOUNT_MINOR_UNITS}").into())
    } else {
        Ok(value)
    }
}

fn positive_amount(value: i64) -> Result<i64, Problem> {
    if value == 0 {
        Err("must be more than zero for a fixed voucher".into())
    } else {
        amount(value)
    }
}

fn percent(value: i32) -> Result<i32, Problem> {
    if (1..=100).contains(&value) {
        Ok(value)
    } else {
        Err("must be 1 to 100 for a percent voucher".into())
    }
}

fn limit(max: i32) -> impl Fn(i32) -> Result<i32, Problem> {
    move |value| {
        if value < 0 {
            Err("must not be negative".into())
        } else if value > max {
            Err(format!("must be at most {max}").into())
        } else {
            Ok(value)
        }
    }
}

/// A protobuf timestamp as a UTC instant.
pub fn instant(value: &Timestamp) -> Result<DateTime<Utc>, Problem> {
    u32::try_from(value.nanos)
        .ok()
        .and_then(|nanos| DateTime::from_timestamp(value.seconds, nanos))
        .ok_or_else(|| "is not a valid time".into())
}

/// A new voucher, valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewVoucher {
    pub code: Code,
    /// `None`: platform-wide.
    pub shop_id: Option<Uuid>,
    pub currency: Currency,
    pub terms: Terms,
}

impl NewVoucher {
    /// `now` is when a voucher without `valid_from` starts.
    pub fn parse(request: &CreateVoucherRequest, now: DateTime<Utc>) -> Result<Self, rpc::Error> {
        let mut fields = Fields::new();
        let code = fields.parse("code", Code::parse(&request.code));
        let description = fields.parse("description", description(&request.description));
        let shop_id = fields.parse("shop_id", optional_uuid(&request.shop_id));
        let discount = match request.kind.as_str() {
            "percent" => {
                let percent = fields.parse("percent_off", percent(request.percent_off));
                if request.amount_off_minor_units != 0 {
                    fields.add(
                        "amount_off_minor_units",
                        "must be 0 for a percent voucher (it takes percent_off)",
                    );
                }
                percent.map(Discount::Percent)
            }
            "fixed" => {
                if request.percent_off != 0 {
                    fields.add(
                        "percent_off",
                        "must be 0 for a fixed voucher (it takes amount_off_minor_units)",
                    );
                }
                fields
                    .parse(
                        "amount_off_minor_units",
                        positive_amount(request.amount_off_minor_units),
                    )
                    .map(Discount::Fixed)
            }
            "" => {
                fields.add("kind", "is required");
                None
            }
            _ => {
                fields.add("kind", "must be \"percent\" or \"fixed\"");
                None
            }
        };
        let currency = fields.parse("currency", Currency::parse(&request.currency));
        let min_order = fields.parse(
            "min_order_minor_units",
            amount(request.min_order_minor_units),
        );
        let max_discount = fields.parse(
            "max_discount_minor_units",
            amount(request.max_discount_minor_units),
        );
        let valid_from = match &request.valid_from {
            None => Some(now),
            Some(at) => fields.parse("valid_from", instant(at)),
        };
        let valid_until = fields.optional("valid_until", request.valid_until.as_ref(), instant);
        if let (Some(from), Some(Some(until))) = (valid_from, valid_until)
            && until <= from
        {
            fields.add("valid_until", "must be after valid_from");
        }
        let usage_limit = fields.parse("usage_limit", limit(MAX_USAGE_LIMIT)(request.usage_limit));
        let per_user_limit = fields.parse(
            "per_user_limit",
            limit(MAX_PER_USER_LIMIT)(request.per_user_limit),
        );
        fields.finish(|| {
            Some(Self {
                code: code?,
                shop_id: shop_id?,
                currency: currency?,
                terms: Terms {
                    description: description?,
                    discount: discount?,
                    min_order_minor_units: min_order?,
                    max_discount_minor_units: max_discount?,
                    valid_from: valid_from?,
                    valid_until: valid_until?,
                    usage_limit: usage_limit?,
                    per_user_limit: per_user_limit?,
                    status: VoucherStatus::Active,
                },
            })
        })
    }
}

/// The fields an update sets; `None` leaves a field as it is. Whether they fit the voucher
/// (a percent for a fixed voucher, an end before the start) is [`VoucherChanges::apply`]'s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoucherChanges {
    pub code: CodeKey,
    pub description: Option<String>,
    pub percent_off: Option<i32>,
    pub amount_off_minor_units: Option<i64>,
    pub min_order_minor_units: Option<i64>,
    pub max_discount_minor_units: Option<i64>,
    pub valid_from: Option<DateTime<Utc>>,
    /// `Some(None)`: remove the end date.
    pub valid_until: Option<Option<DateTime<Utc>>>,
    pub usage_limit: Option<i32>,
    pub per_user_limit: Option<i32>,
    pub status: Option<VoucherStatus>,
}

impl VoucherChanges {
    pub fn parse(request: &UpdateVoucherRequest) -> Result<Self, rpc::Error> {
        let mut fields = Fields::new();
        let code = fields.parse("code", CodeKey::parse(&request.code));
        let description =
            fields.optional("description", request.description.as_deref(), description);
        let percent_off =
            fields.optional("percent_off", request.percent_off.as_ref(), |p| percent(*p));
        let amount_off = fields.optional(
            "amount_off_minor_units",
            request.amount_off_minor_units.as_ref(),
            |a| positive_amount(*a),
        );
        let min_order = fields.optional(
            "min_order_minor_units",
            request.min_order_minor_units.as_ref(),
            |a| amount(*a),
        );
        let max_discount = fields.optional(
            "max_discount_minor_units",
            request.max_discount_minor_units.as_ref(),
            |a| amount(*a),
        );
        let valid_from = fields.optional("valid_from", request.valid_from.as_ref(), instant);
        let valid_until = match (&request.valid_until, request.clear_valid_until) {
            (Some(_), true) => {
                fields.add("clear_valid_until", "cannot be combined with valid_until");
                None
            }
            (None, true) => Some(Some(None)),
            (until, false) => fields
                .optional("valid_until", until.as_ref(), instant)
                .map(|until| until.map(Some)),
        };
        let usage_limit = fields.optional("usage_limit", request.usage_limit.as_ref(), |l| {
            limit(MAX_USAGE_LIMIT)(*l)
        });
        let per_user_limit =
            fields.optional("per_user_limit", request.per_user_limit.as_ref(), |l| {
                limit(MAX_PER_USER_LIMIT)(*l)
            });
        let status = fields.optional("status", request.status.as_deref(), VoucherStatus::parse);
        fields.finish(|| {
            Some(Self {
                code: code?,
                description: description?,
                percent_off: percent_off?,
                amount_off_minor_units: amount_off?,
                min_order_minor_units: min_order?,
                max_discount_minor_units: max_discount?,
                valid_from: valid_from?,
                valid_until: valid_until?,
                usage_limit: usage_limit?,
                per_user_limit: per_user_limit?,
                status: status?,
            })
        })
    }

    /// The terms after the changes, or `invalid_argument` naming each change that does not
    /// fit the voucher (its kind stays, and its end must stay after its start).
    pub fn apply(&self, current: &Terms) -> Result<Terms, rpc::Error> {
        let mut fields = Fields::new();
        let discount = match current.discount {
            Discount::Percent(percent) => {
                if self.amount_off_minor_units.is_some() {
                    fields.add(
                        "amount_off_minor_units",
                        "applies only to a fixed voucher; this one is a percent voucher",
                    );
                }
                Discount::Percent(self.percent_off.unwrap_or(percent))
            }
            Discount::Fixed(amount) => {
                if self.percent_off.is_some() {
                    fields.add(
                        "percent_off",
                        "applies only to a percent voucher; this one is a fixed voucher",
                    );
                }
                Discount::Fixed(self.amount_off_minor_units.unwrap_or(amount))
            }
        };
        let valid_from = self.valid_from.unwrap_or(current.valid_from);
        let valid_until = self.valid_until.unwrap_or(current.valid_until);
        if let Some(until) = valid_until
            && until <= valid_from
        {
            let field = if self.valid_until.is_some() {
                "valid_until"
            } else {
                "valid_from"
            };
            fields.add(
                field,
                "the end (valid_until) must be after the start (valid_from)",
            );
        }
        fields.finish(|| {
            Some(Terms {
                description: self
                    .description
                    .clone()
                    .unwrap_or_else(|| current.description.clone()),
                discount,
                min_order_minor_units: self
                    .min_order_minor_units
                    .unwrap_or(current.min_order_minor_units),
                max_discount_minor_units: self
                    .max_discount_minor_units
                    .unwrap_or(current.max_discount_minor_units),
                valid_from,
                valid_until,
                usage_limit: self.usage_limit.unwrap_or(current.usage_limit),
                per_user_limit: self.per_user_limit.unwrap_or(current.per_user_limit),
                status: self.status.unwrap_or(current.status),
            })
        })
    }
}

/// One page of a listing: at most `size` vouchers (of `shop_id`, or all) older than `after`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VoucherQuery {
    pub shop_id: Option<Uuid>,
    pub size: usize,
    pub after: Option<VoucherId>,
}

impl VoucherQuery {
    pub fn parse(request: &ListVouchersRequest) -> Result<Self, rpc::Error> {
        let mut fields = Fields::new();
        let shop_id = fields.parse("shop_id", optional_uuid(&request.shop_id));
        let size = fields.parse("page_size", PageSize::parse(request.page_size));
        let after = fields.parse("cursor", page::parse_token(&request.cursor));
        fields.finish(|| {
            Some(Self {
                shop_id: shop_id?,
                size: size?.get(),
                after: after?,
            })
        })
    }

    /// The `next_cursor` of a page whose last voucher is `last`.
    pub fn cursor_after(last: VoucherId) -> String {
        page::encode_token(&last)
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------------

/// Why a code does not apply, as the contract spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    NotFound,
    Disabled,
    NotStarted,
    Expired,
    Exhausted,
    AlreadyUsed,
    WrongCurrency,
    WrongShop,
    BelowMinimum,
    EmptyCart,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NotFound => "not_found",
            Reason::Disabled => "disabled",
            Reason::NotStarted => "not_started",
            Reason::Expired => "expired",
            Reason::Exhausted => "exhausted",
            Reason::AlreadyUsed => "already_used",
            Reason::WrongCurrency => "wrong_currency",
            Reason::WrongShop => "wrong_shop",
            Reason::BelowMinimum => "below_minimum",
            Reason::EmptyCart => "empty_cart",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What evaluation needs of a stored voucher.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    pub shop_id: Option<Uuid>,
    pub currency: Currency,
    pub terms: Terms,
    pub used_count: i32,
    pub reserved_count: i32,
}

impl Offer {
    /// Whether every use is taken (committed or held).
    pub fn is_exhausted(&self) -> bool {
        self.terms.usage_limit > 0
            && i64::from(self.used_count) + i64::from(self.reserved_count)
                >= i64::from(self.terms.usage_limit)
    }
}

/// The subtotals of a cart, per shop, in one currency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cart {
    /// `None` while the cart has no line that counts.
    pub currency: Option<Currency>,
    /// Per shop; a shop named twice is summed.
    pub subtotals: BTreeMap<Uuid, i64>,
}

impl Cart {
    pub fn empty() -> Self {
        Self {
            currency: None,
            subtotals: BTreeMap::new(),
        }
    }

    /// The cart the cart service answered with: its currency is empty while it has no lines.
    pub fn from_cart_service(
        currency: &str,
        subtotals: &[api::cart::ShopSubtotal],
    ) -> Result<Self, rpc::Error> {
        let as_voucher_subtotals: Vec<ShopSubtotal> = subtotals
            .iter()
            .map(|s| ShopSubtotal {
                shop_id: s.shop_id.clone(),
                subtotal_minor_units: s.subtotal_minor_units,
            })
            .collect();
        if as_voucher_subtotals.is_empty() {
            return Ok(Self::empty());
        }
        let mut fields = Fields::new();
        let currency = fields.parse("currency", Currency::parse(currency));
        let subtotals = Self::subtotals(&mut fields, &as_voucher_subtotals);
        fields.finish(|| {
            Some(Self {
                currency: Some(currency?),
                subtotals: subtotals?,
            })
        })
    }

    fn subtotals(fields: &mut Fields, subtotals: &[ShopSubtotal]) -> Option<BTreeMap<Uuid, i64>> {
        let mut by_shop = BTreeMap::new();
        let mut valid = true;
        for (index, subtotal) in subtotals.iter().enumerate() {
            let shop = fields.parse(
                &format!("subtotals[{index}].shop_id"),
                uuid(&subtotal.shop_id),
            );
            let amount = fields.parse(
                &format!("subtotals[{index}].subtotal_minor_units"),
                if subtotal.subtotal_minor_units < 0 {
                    Err("must not be negative".into())
                } else {
                    Ok(subtotal.subtotal_minor_units)
                },
            );
            match (shop, amount) {
                (Some(shop), Some(amount)) => {
                    let entry: &mut i64 = by_shop.entry(shop).or_default();
                    *entry = entry.saturating_add(amount);
                }
                _ => valid = false,
            }
        }
        valid.then_some(by_shop)
    }
}

/// An `EvaluateVoucher` request, valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvaluationRequest {
    pub code: CodeKey,
    /// `None`: a guest.
    pub user_id: Option<Uuid>,
    pub cart: Cart,
}

impl EvaluationRequest {
    pub fn parse(request: &EvaluateVoucherRequest) -> Result<Self, rpc::Error> {
        let mut fields = Fields::new();
        let code = fields.parse("code", CodeKey::parse(&request.code));
        let user_id = fields.parse("user_id", optional_uuid(&request.user_id));
        let currency = fields.parse("currency", Currency::parse(&request.currency));
        let subtotals = Cart::subtotals(&mut fields, &request.subtotals);
        fields.finish(|| {
            Some(Self {
                code: code?,
                user_id: user_id?,
                cart: Cart {
                    currency: Some(currency?),
                    subtotals: subtotals?,
                },
            })
        })
    }
}

/// Whether a voucher applies, and what it saves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It applies; with a cart, what it takes off (zero when no cart was considered).
    Applies(Money),
    DoesNot(Reason),
}

/// Whether `offer` can be used at `now` by a user who holds or has used it `user_uses` times
/// (`None`: a guest, the per-user limit is checked when the order is placed), on `cart`
/// (`None`: the code alone, whether it can be used at all).
///
/// The reasons are checked in the contract's order, the code's own state first (disabled,
/// not started, expired, exhausted, already used) and then the cart; of the cart's, an empty
/// cart is reported before the others, since it has no currency, no shop and no subtotal to
/// compare (a shop voucher on an empty cart is "empty_cart", not "wrong_shop").
pub fn evaluate(
    offer: &Offer,
    now: DateTime<Utc>,
    user_uses: Option<i32>,
    cart: Option<&Cart>,
) -> Verdict {
    let terms = &offer.terms;
    if terms.status == VoucherStatus::Disabled {
        return Verdict::DoesNot(Reason::Disabled);
    }
    if now < terms.valid_from {
        return Verdict::DoesNot(Reason::NotStarted);
    }
    if terms.valid_until.is_some_and(|until| now >= until) {
        return Verdict::DoesNot(Reason::Expired);
    }
    if offer.is_exhausted() {
        return Verdict::DoesNot(Reason::Exhausted);
    }
    if let Some(uses) = user_uses
        && terms.per_user_limit > 0
        && uses >= terms.per_user_limit
    {
        return Verdict::DoesNot(Reason::AlreadyUsed);
    }
    let Some(cart) = cart else {
        return Verdict::Applies(Money::zero(offer.currency));
    };
    if cart.subtotals.is_empty() {
        return Verdict::DoesNot(Reason::EmptyCart);
    }
    if cart.currency != Some(offer.currency) {
        return Verdict::DoesNot(Reason::WrongCurrency);
    }
    let subtotal = match offer.shop_id {
        Some(shop) => match cart.subtotals.get(&shop) {
            Some(subtotal) => Money::new(*subtotal, offer.currency),
            None => return Verdict::DoesNot(Reason::WrongShop),
        },
        None => {
            let amounts = cart
                .subtotals
                .values()
                .map(|subtotal| Money::new(*subtotal, offer.currency));
            // Subtotals are at most 10^14 each and at most 100 of them: no overflow.
            Money::sum(offer.currency, amounts).unwrap_or(Money::new(i64::MAX, offer.currency))
        }
    };
    if subtotal.minor_units() < terms.min_order_minor_units {
        return Verdict::DoesNot(Reason::BelowMinimum);
    }
    Verdict::Applies(discount_on(terms, subtotal))
}

/// What `terms` take off `subtotal`: a percentage rounded down to the minor unit, or the fixed
/// amount; never more than the cap (when there is one) nor the subtotal itself.
pub fn discount_on(terms: &Terms, subtotal: Money) -> Money {
    let currency = subtotal.currency();
    let raw = match terms.discount {
        Discount::Percent(percent) => {
            let off = i128::from(subtotal.minor_units()) * i128::from(percent) / 100;
            i64::try_from(off).unwrap_or(i64::MAX)
        }
        Discount::Fixed(amount) => amount,
    };
    let mut off = raw.min(subtotal.minor_units()).max(0);
    if terms.max_discount_minor_units > 0 {
        off = off.min(terms.max_discount_minor_units);
    }
    Money::new(off, currency)
}

/// The reason in words a customer can read.
pub fn reason_message(reason: Reason, offer: Option<&Offer>, cart: Option<&Cart>) -> String {
    match (reason, offer) {
        (Reason::NotFound, _) => "There is no voucher with this code.".into(),
        (Reason::Disabled, _) => "This voucher is no longer active.".into(),
        (Reason::NotStarted, Some(offer)) => format!(
            "This voucher can be used from {}.",
            offer.terms.valid_from.format("%Y-%m-%d %H:%M UTC")
        ),
        (Reason::Expired, _) => "This voucher has expired.".into(),
        (Reason::Exhausted, _) => "This voucher has been used up.".into(),
        (Reason::AlreadyUsed, Some(offer)) => format!(
            "You have already used this voucher {} time{}, as often as it allows.",
            offer.terms.per_user_limit,
            if offer.terms.per_user_limit == 1 {
                ""
            } else {
                "s"
            }
        ),
        (Reason::WrongCurrency, Some(offer)) => {
            format!("This voucher applies only to carts in {}.", offer.currency)
        }
        (Reason::WrongShop, _) => "Your cart has nothing from the shop this voucher is for.".into(),
        (Reason::BelowMinimum, Some(offer)) => {
            let minimum = Money::new(offer.terms.min_order_minor_units, offer.currency);
            let needs = match offer.shop_id {
                Some(_) => format!(
                    "This voucher needs at least {minimum} of this shop's items in your cart"
                ),
                None => format!("This voucher needs a subtotal of at least {minimum}"),
            };
            let subtotal = cart.map(|cart| match offer.shop_id {
                Some(shop) => cart.subtotals.get(&shop).copied().unwrap_or(0),
                None => cart.subtotals.values().sum(),
            });
            match subtotal {
                Some(subtotal) => format!(
                    "{needs}; you have {}.",
                    Money::new(subtotal, offer.currency)
                ),
                None => format!("{needs}."),
            }
        }
        (Reason::EmptyCart, _) => "Your cart is empty.".into(),
        (_, None) => "This voucher cannot be used.".into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Redemptions
// ---------------------------------------------------------------------------------------------

/// How long a redemption holds its use when the caller does not say.
pub const DEFAULT_HOLD_SECONDS: i32 = 900;
pub const MAX_HOLD_SECONDS: i32 = 86_400;

/// A request to hold one use of a code for an order, valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRedemption {
    pub code: CodeKey,
    pub user_id: Uuid,
    pub order_id: Uuid,
    pub amount: Money,
    pub hold_seconds: i32,
}

impl NewRedemption {
    pub fn parse(request: &ReserveVoucherRequest) -> Result<Self, rpc::Error> {
        let mut fields = Fields::new();
        let code = fields.parse("code", CodeKey::parse(&request.code));
        let user_id = fields.parse("user_id", uuid(&request.user_id));
        let order_id = fields.parse("order_id", uuid(&request.order_id));
        let amount = fields.money("amount", request.amount.as_ref(), amount);
        let hold_seconds = fields.parse(
            "ttl_seconds",
            match request.ttl_seconds {
                0 => Ok(DEFAULT_HOLD_SECONDS),
                seconds if (1..=MAX_HOLD_SECONDS).contains(&seconds) => Ok(seconds),
                _ => Err(format!(
                    "must be 1 to {MAX_HOLD_SECONDS} seconds, or 0 for {DEFAULT_HOLD_SECONDS}"
                )
                .into()),
            },
        );
        fields.finish(|| {
            Some(Self {
                code: code?,
                user_id: user_id?,
                order_id: order_id?,
                amount: amount?,
                hold_seconds: hold_seconds?,
            })
        })
    }
}

/// Where a redemption is: held until committed, released or expired; released and expired are
/// final, and a committed one may later be returned (its order was cancelled), which is final.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedemptionStatus {
    Held,
    Committed,
    Released,
    Expired,
    Returned,
}

/// What a request does to a redemption in a given status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// Move to this status.
    Apply(RedemptionStatus),
    /// The request was done before: answer with the redemption, change nothing.
    AlreadyDone,
    /// The redemption ended another way.
    Refused,
}

impl RedemptionStatus {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "held" => Some(Self::Held),
            "committed" => Some(Self::Committed),
            "released" => Some(Self::Released),
            "expired" => Some(Self::Expired),
            "returned" => Some(Self::Returned),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Held => "held",
            Self::Committed => "committed",
            Self::Released => "released",
            Self::Expired => "expired",
            Self::Returned => "returned",
        }
    }

    /// Committing twice changes nothing; a use given back (released, expired or returned)
    /// cannot be committed.
    pub fn commit(self) -> Transition {
        match self {
            Self::Held => Transition::Apply(Self::Committed),
            Self::Committed => Transition::AlreadyDone,
            Self::Released | Self::Expired | Self::Returned => Transition::Refused,
        }
    }

    /// Releasing a released or expired redemption changes nothing; a committed one is the
    /// order's (only returning gives it back), and a returned one was given back that way.
    pub fn release(self) -> Transition {
        match self {
            Self::Held => Transition::Apply(Self::Released),
            Self::Released | Self::Expired => Transition::AlreadyDone,
            Self::Committed | Self::Returned => Transition::Refused,
        }
    }

    /// Returning gives a committed use back once (its order was cancelled); a held,
    /// released or expired redemption was never used, so there is nothing to return.
    pub fn return_use(self) -> Transition {
        match self {
            Self::Committed => Transition::Apply(Self::Returned),
            Self::Returned => Transition::AlreadyDone,
            Self::Held | Self::Released | Self::Expired => Transition::Refused,
        }
    }
}

impl fmt::Display for RedemptionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use testkit::bad_fields;

    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn ts(at: DateTime<Utc>) -> Option<Timestamp> {
        api::timestamp(at)
    }

    fn request() -> CreateVoucherRequest {
        CreateVoucherRequest {
            code: " Save10 ".into(),
            description: "Ten percent off".into(),
            kind: "percent".into(),
            percent_off: 10,
            currency: "USD".into(),
            ..Default::default()
        }
    }

    fn usd(minor_units: i64) -> Money {
        Money::new(minor_units, Currency::USD)
    }

    fn offer(discount: Discount) -> Offer {
        Offer {
            shop_id: None,
            currency: Currency::USD,
            terms: Terms {
                description: String::new(),
                discount,
                min_order_minor_units: 0,
                max_discount_minor_units: 0,
                valid_from: at(0),
                valid_until: None,
                usage_limit: 0,
                per_user_limit: 0,
                status: VoucherStatus::Active,
            },
            used_count: 0,
            reserved_count: 0,
        }
    }

    fn cart(currency: &str, subtotals: &[(Uuid, i64)]) -> Cart {
        Cart {
            currency: Currency::find(currency),
            subtotals: subtotals.iter().copied().collect(),
        }
    }

    #[test]
    fn a_new_voucher_is_trimmed_starts_now_and_is_active() {
        let parsed = NewVoucher::parse(&request(), at(5)).unwrap();
        assert_eq!(parsed.code.as_str(), "Save10");
        assert_eq!(parsed.shop_id, None);
        assert_eq!(parsed.terms.discount, Discount::Percent(10));
        assert_eq!(parsed.terms.valid_from, at(5));
        assert_eq!(parsed.terms.valid_until, None);
        assert_eq!(parsed.terms.status, VoucherStatus::Active);
    }

    #[test]
    fn every_bad_field_of_a_new_voucher_is_named_in_request_order() {
        let error = NewVoucher::parse(
            &CreateVoucherRequest {
                code: "a b".into(),
                description: "line\nbreak".into(),
                shop_id: "shop".into(),
                kind: "percent".into(),
                percent_off: 0,
                amount_off_minor_units: 5,
                currency: "usd".into(),
                min_order_minor_units: -1,
                max_discount_minor_units: -1,
                valid_from: ts(at(10)),
                valid_until: ts(at(10)),
                usage_limit: -1,
                per_user_limit: 1001,
            },
            at(0),
        )
        .unwrap_err();
        assert_eq!(
            bad_fields(&error),
            [
                "code",
                "description",
                "shop_id",
                "percent_off",
                "amount_off_minor_units",
                "currency",
                "min_order_minor_units",
                "max_discount_minor_units",
                "valid_until",
                "usage_limit",
                "per_user_limit"
            ]
        );
        let error = NewVoucher::parse(
            &CreateVoucherRequest {
                kind: "fixed".into(),
                percent_off: 10,
                ..request()
            },
            at(0),
        )
        .unwrap_err();
        assert_eq!(
            bad_fields(&error),
            ["percent_off", "amount_off_minor_units"]
        );
        let error = NewVoucher::parse(
            &CreateVoucherRequest {
                code: "ab".into(),
                kind: "bogus".into(),
                ..request()
            },
            at(0),
        )
        .unwrap_err();
        assert_eq!(bad_fields(&error), ["code", "kind"]);
    }

    #[test]
    fn an_update_keeps_the_kind_and_the_end_after_the_start() {
        let current = NewVoucher::parse(&request(), at(0)).unwrap().terms;
        let changes = VoucherChanges::parse(&UpdateVoucherRequest {
            code: "SAVE10".into(),
            percent_off: Some(20),
            valid_until: ts(at(100)),
            status: Some("disabled".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(changes.code.as_str(), "save10");
        let updated = changes.apply(&current).unwrap();
        assert_eq!(updated.discount, Discount::Percent(20));
        assert_eq!(updated.valid_until, Some(at(100)));
        assert_eq!(updated.status, VoucherStatus::Disabled);
        assert_eq!(updated.description, current.description);

        let changes = VoucherChanges::parse(&UpdateVoucherRequest {
            code: "SAVE10".into(),
            amount_off_minor_units: Some(500),
            valid_until: ts(at(-100)),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            bad_fields(&changes.apply(&current).unwrap_err()),
            ["amount_off_minor_units", "valid_until"]
        );

        let cleared = VoucherChanges::parse(&UpdateVoucherRequest {
            code: "SAVE10".into(),
            clear_valid_until: true,
            ..Default::default()
        })
        .unwrap()
        .apply(&updated)
        .unwrap();
        assert_eq!(cleared.valid_until, None);

        let error = VoucherChanges::parse(&UpdateVoucherRequest {
            code: String::new(),
            percent_off: Some(0),
            valid_until: ts(at(1)),
            clear_valid_until: true,
            status: Some("gone".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(
            bad_fields(&error),
            ["code", "percent_off", "clear_valid_until", "status"]
        );
    }

    #[test]
    fn listings_parse_shop_page_size_and_cursor() {
        let query = VoucherQuery::parse(&ListVouchersRequest::default()).unwrap();
        assert_eq!(query.size, PageSize::DEFAULT.get());
        assert_eq!((query.shop_id, query.after), (None, None));
        let error = VoucherQuery::parse(&ListVouchersRequest {
            shop_id: "x".into(),
            page_size: 101,
            cursor: "x".into(),
        })
        .unwrap_err();
        assert_eq!(bad_fields(&error), ["shop_id", "page_size", "cursor"]);
        let last = VoucherId::new();
        let query = VoucherQuery::parse(&ListVouchersRequest {
            cursor: VoucherQuery::cursor_after(last),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(query.after, Some(last));
    }

    #[test]
    fn percent_discounts_round_down_and_respect_the_cap_and_the_subtotal() {
        let shop = Uuid::now_v7();
        let ten = offer(Discount::Percent(10));
        assert_eq!(
            evaluate(&ten, at(1), None, Some(&cart("USD", &[(shop, 1999)]))),
            Verdict::Applies(usd(199)),
            "10% of 19.99 is 1.999, rounded down"
        );
        let mut capped = offer(Discount::Percent(50));
        capped.terms.max_discount_minor_units = 500;
        assert_eq!(
            evaluate(&capped, at(1), None, Some(&cart("USD", &[(shop, 5000)]))),
            Verdict::Applies(usd(500))
        );
        let all = offer(Discount::Percent(100));
        assert_eq!(
            evaluate(&all, at(1), None, Some(&cart("USD", &[(shop, 1234)]))),
            Verdict::Applies(usd(1234))
        );
    }

    #[test]
    fn fixed_discounts_never_exceed_the_subtotal_or_the_cap() {
        let shop = Uuid::now_v7();
        let five = offer(Discount::Fixed(500));
        assert_eq!(
            evaluate(&five, at(1), None, Some(&cart("USD", &[(shop, 2000)]))),
            Verdict::Applies(usd(500))
        );
        assert_eq!(
            evaluate(&five, at(1), None, Some(&cart("USD", &[(shop, 300)]))),
            Verdict::Applies(usd(300))
        );
        let mut capped = offer(Discount::Fixed(500));
        capped.terms.max_discount_minor_units = 200;
        assert_eq!(
            evaluate(&capped, at(1), None, Some(&cart("USD", &[(shop, 2000)]))),
            Verdict::Applies(usd(200))
        );
    }

    #[test]
    fn a_shop_voucher_discounts_its_shop_and_a_platform_voucher_the_whole_cart() {
        let (mine, other) = (Uuid::now_v7(), Uuid::now_v7());
        let mut shop_offer = offer(Discount::Percent(10));
        shop_offer.shop_id = Some(mine);
        shop_offer.terms.min_order_minor_units = 1000;
        let both = cart("USD", &[(mine, 1000), (other, 9000)]);
        assert_eq!(
            evaluate(&shop_offer, at(1), None, Some(&both)),
            Verdict::Applies(usd(100))
        );
        let little = cart("USD", &[(mine, 999), (other, 9000)]);
        assert_eq!(
            evaluate(&shop_offer, at(1), None, Some(&little)),
            Verdict::DoesNot(Reason::BelowMinimum),
            "the minimum is of the shop's subtotal"
        );
        let mut platform = offer(Discount::Percent(10));
        platform.terms.min_order_minor_units = 10_000;
        assert_eq!(
            evaluate(&platform, at(1), None, Some(&both)),
            Verdict::Applies(usd(1000))
        );
        assert_eq!(
            evaluate(&platform, at(1), None, Some(&little)),
            Verdict::DoesNot(Reason::BelowMinimum)
        );
    }

    #[test]
    fn every_reason_in_order() {
        let shop = Uuid::now_v7();
        let good_cart = cart("USD", &[(shop, 1000)]);
        let check =
            |offer: &Offer, now, uses, cart: Option<&Cart>| evaluate(offer, now, uses, cart);

        let mut disabled = offer(Discount::Percent(10));
        disabled.terms.status = VoucherStatus::Disabled;
        disabled.terms.valid_until = Some(at(1));
        assert_eq!(
            check(&disabled, at(5), None, Some(&good_cart)),
            Verdict::DoesNot(Reason::Disabled),
            "disabled comes before expired"
        );

        let base = offer(Discount::Percent(10));
        assert_eq!(
            check(&base, at(-1), None, None),
            Verdict::DoesNot(Reason::NotStarted)
        );
        let mut ending = base.clone();
        ending.terms.valid_until = Some(at(10));
        assert_eq!(check(&ending, at(9), None, None), Verdict::Applies(usd(0)));
        assert_eq!(
            check(&ending, at(10), None, None),
            Verdict::DoesNot(Reason::Expired)
        );

        let mut limited = base.clone();
        limited.terms.usage_limit = 3;
        limited.used_count = 2;
        limited.reserved_count = 1;
        limited.terms.per_user_limit = 1;
        assert_eq!(
            check(&limited, at(1), Some(1), None),
            Verdict::DoesNot(Reason::Exhausted),
            "held uses count"
        );
        limited.reserved_count = 0;
        assert_eq!(
            check(&limited, at(1), Some(1), None),
            Verdict::DoesNot(Reason::AlreadyUsed)
        );
        assert_eq!(
            check(&limited, at(1), None, Some(&good_cart)),
            Verdict::Applies(usd(100)),
            "a guest's per-user limit is checked at the order"
        );
        assert_eq!(
            check(
                &limited,
                at(1),
                Some(0),
                Some(&cart("EUR", &[(shop, 1000)]))
            ),
            Verdict::DoesNot(Reason::WrongCurrency)
        );

        let mut shop_offer = base.clone();
        shop_offer.shop_id = Some(Uuid::now_v7());
        assert_eq!(
            check(&shop_offer, at(1), None, Some(&good_cart)),
            Verdict::DoesNot(Reason::WrongShop)
        );
        assert_eq!(
            check(&shop_offer, at(1), None, Some(&Cart::empty())),
            Verdict::DoesNot(Reason::EmptyCart)
        );
        assert_eq!(
            check(&base, at(1), None, Some(&Cart::empty())),
            Verdict::DoesNot(Reason::EmptyCart)
        );
        let mut minimum = base.clone();
        minimum.terms.min_order_minor_units = 1001;
        assert_eq!(
            check(&minimum, at(1), None, Some(&good_cart)),
            Verdict::DoesNot(Reason::BelowMinimum)
        );
        let message = reason_message(Reason::BelowMinimum, Some(&minimum), Some(&good_cart));
        assert!(message.contains("10.01 USD"), "{message}");
        assert!(message.contains("10.00 USD"), "{message}");
    }

    #[test]
    fn evaluate_requests_name_bad_subtotals() {
        let error = EvaluationRequest::parse(&EvaluateVoucherRequest {
            code: "x".into(),
            user_id: "guest".into(),
            currency: "XXX".into(),
            subtotals: vec![
                ShopSubtotal {
                    shop_id: Uuid::now_v7().to_string(),
                    subtotal_minor_units: 1,
                },
                ShopSubtotal {
                    shop_id: "nope".into(),
                    subtotal_minor_units: -1,
                },
            ],
        })
        .unwrap_err();
        assert_eq!(
            bad_fields(&error),
            [
                "user_id",
                "currency",
                "subtotals[1].shop_id",
                "subtotals[1].subtotal_minor_units"
            ]
        );
        let shop = Uuid::now_v7().to_string();
        let twice = EvaluationRequest::parse(&EvaluateVoucherRequest {
            code: "x".into(),
            currency: "USD".into(),
            subtotals: vec![
                ShopSubtotal {
                    shop_id: shop.clone(),
                    subtotal_minor_units: 100,
                },
                ShopSubtotal {
                    shop_id: shop.clone(),
                    subtotal_minor_units: 50,
                },
            ],
            ..Default::default()
        })
        .unwrap()
        .cart;
        assert_eq!(twice.subtotals.values().copied().collect::<Vec<_>>(), [150]);
    }

    #[test]
    fn a_reservation_names_its_bad_fields_and_defaults_its_hold() {
        let parsed = NewRedemption::parse(&ReserveVoucherRequest {
            code: "Save10".into(),
            user_id: Uuid::now_v7().to_string(),
            order_id: Uuid::now_v7().to_string(),
            amount: Some(api::common::Money {
                minor_units: 100,
                currency: "USD".into(),
            }),
            ttl_seconds: 0,
        })
        .unwrap();
        assert_eq!(parsed.hold_seconds, DEFAULT_HOLD_SECONDS);
        assert_eq!(parsed.code.as_str(), "save10");
        let error = NewRedemption::parse(&ReserveVoucherRequest {
            code: String::new(),
            user_id: "u".into(),
            order_id: String::new(),
            amount: Some(api::common::Money {
                minor_units: -1,
                currency: "usd".into(),
            }),
            ttl_seconds: MAX_HOLD_SECONDS + 1,
        })
        .unwrap_err();
        assert_eq!(
            bad_fields(&error),
            [
                "code",
                "user_id",
                "order_id",
                "amount.minor_units",
                "amount.currency",
                "ttl_seconds"
            ]
        );
    }

    #[test]
    fn redemptions_end_from_held_and_only_committed_ones_return() {
        use RedemptionStatus::*;
        assert_eq!(Held.commit(), Transition::Apply(Committed));
        assert_eq!(Committed.commit(), Transition::AlreadyDone);
        assert_eq!(Released.commit(), Transition::Refused);
        assert_eq!(Expired.commit(), Transition::Refused);
        assert_eq!(Held.release(), Transition::Apply(Released));
        assert_eq!(Released.release(), Transition::AlreadyDone);
        assert_eq!(Expired.release(), Transition::AlreadyDone);
        assert_eq!(Committed.release(), Transition::Refused);
        assert_eq!(Committed.return_use(), Transition::Apply(Returned));
        assert_eq!(Returned.return_use(), Transition::AlreadyDone);
        assert_eq!(Held.return_use(), Transition::Refused);
        assert_eq!(Released.return_use(), Transition::Refused);
        assert_eq!(Expired.return_use(), Transition::Refused);
        assert_eq!(Returned.commit(), Transition::Refused);
        assert_eq!(Returned.release(), Transition::Refused);
        for status in [Held, Committed, Released, Expired, Returned] {
            assert_eq!(RedemptionStatus::parse(status.as_str()), Some(status));
        }
    }
}
