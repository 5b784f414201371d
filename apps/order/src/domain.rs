//! The rules of orders: their state machines, what a valid request looks like, and how an
//! order's figures are computed. Pure functions, no I/O; each parser returns a type that can
//! only hold a valid value, and names every bad field at once.

use std::collections::BTreeMap;
use std::fmt;

use api::order::{
    CheckoutRequest, ListOrdersRequest, ListSagasRequest, ListShopSubOrdersRequest,
    QuoteCheckoutRequest, ShipSubOrderRequest,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use vocab::page::{self, Keyset, PageSize};
use vocab::{Fields, Problem};

/// The id of a stored order or sub-order: a UUID v7, so ids sort in creation order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OrderId(pub Uuid);

impl OrderId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// Parses the request field `field`, or says why it is not an id.
    pub fn parse(field: &str, value: &str) -> Result<Self, rpc::Error> {
        parse_uuid(value)
            .map(Self)
            .map_err(|problem| rpc::Error::invalid_field(field, problem))
    }
}

impl Default for OrderId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

fn parse_uuid(value: &str) -> Result<Uuid, Problem> {
    Uuid::try_parse(value.trim()).map_err(|_| "must be a UUID".into())
}

/// Listings are newest first by id, so the last id of a page is where the next one starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct After(pub Uuid);

impl Keyset for After {
    const VERSION: u32 = 1;

    fn write(&self) -> String {
        self.0.to_string()
    }

    fn read(text: &str) -> Option<Self> {
        Uuid::try_parse(text).ok().map(Self)
    }
}

/// One page of a listing: at most `size` items with ids before `after` (newest first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub size: usize,
    pub after: Option<Uuid>,
}

impl Page {
    fn parse_fields(fields: &mut Fields, page_size: i32, cursor: &str) -> Option<Self> {
        let size = fields.parse("page_size", PageSize::parse(page_size));
        let after = fields.parse("cursor", page::parse_token::<After>(cursor));
        Some(Self {
            size: size?.get(),
            after: after?.map(|a| a.0),
        })
    }

    /// The `next_cursor` of a page whose last item is `last`.
    pub fn cursor_after(last: Uuid) -> String {
        page::encode_token(&After(last))
    }

    /// Cuts `items` (fetched with one more than the page holds) to the page, and the cursor of
    /// the next page (empty on the last).
    pub fn finish<T>(&self, mut items: Vec<T>, id: impl Fn(&T) -> Uuid) -> (Vec<T>, String) {
        if items.len() > self.size {
            items.truncate(self.size);
            let cursor = items.last().map(|i| Self::cursor_after(id(i)));
            (items, cursor.unwrap_or_default())
        } else {
            (items, String::new())
        }
    }
}

/// A listing of orders: the caller's, or (admins) another user's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderQuery {
    pub user_id: Option<Uuid>,
    pub status: Option<OrderStatus>,
    pub page: Page,
}

impl OrderQuery {
    pub fn parse(request: &ListOrdersRequest) -> Result<Self, rpc::Error> {
        let mut fields = Fields::new();
        let user_id = fields.optional(
            "user_id",
            Some(request.user_id.as_str()).filter(|s| !s.trim().is_empty()),
            parse_uuid,
        );
        let status = fields.optional(
            "status",
            Some(request.status.as_str()).filter(|s| !s.is_empty()),
            OrderStatus::parse,
        );
        let page = Page::parse_fields(&mut fields, request.page_size, &request.cursor);
        fields.finish(|| {
            Some(Self {
                user_id: user_id?,
                status: status?,
                page: page?,
            })
        })
    }
}

/// A listing of one shop's sub-orders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubOrderQuery {
    pub shop_id: Uuid,
    pub status: Option<SubOrderStatus>,
    pub page: Page,
}

impl SubOrderQuery {
    pub fn parse(request: &ListShopSubOrdersRequest) -> Result<Self, rpc::Error> {
        let mut fields = Fields::new();
        let shop_id = fields.parse("shop_id", parse_uuid(&request.shop_id));
        let status = fields.optional(
            "status",
            Some(request.status.as_str()).filter(|s| !s.is_empty()),
            SubOrderStatus::parse,
        );
        let page = Page::parse_fields(&mut fields, request.page_size, &request.cursor);
        fields.finish(|| {
            Some(Self {
                shop_id: shop_id?,
                status: status?,
                page: page?,
            })
        })
    }
}

/// A listing of saga instances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SagaQuery {
    pub state: Option<String>,
    pub saga: Option<String>,
    pub page_size: usize,
    pub cursor: Option<String>,
}

impl SagaQuery {
    pub fn parse(request: &ListSagasRequest) -> Result<Self, rpc::Error> {
        let mut fields = Fields::new();
        let size = fields.parse("page_size", PageSize::parse(request.page_size));
        let nonempty = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        fields.finish(|| {
            Some(Self {
                state: nonempty(&request.state),
                saga: nonempty(&request.saga),
                page_size: size?.get(),
                cursor: nonempty(&request.cursor),
            })
        })
    }
}

/// What a state machine says about a transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// Already there: repeating a request changes nothing.
    AlreadyDone,
    Allowed,
    Refused,
}

/// An order's status.
///
/// ```text
/// pending ─┬─> paid ─┬─> partially_shipped ─> shipped ─> delivered
///          │         ├─> shipped ─────────────────────^
///          │         └─> cancelled ─> refunded | partially_refunded
///          └─> failed
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    Paid,
    PartiallyShipped,
    Shipped,
    Delivered,
    Failed,
    Cancelled,
    PartiallyRefunded,
    Refunded,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 9] = [
        Self::Pending,
        Self::Paid,
        Self::PartiallyShipped,
        Self::Shipped,
        Self::Delivered,
        Self::Failed,
        Self::Cancelled,
        Self::PartiallyRefunded,
        Self::Refunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Paid => "paid",
            Self::PartiallyShipped => "partially_shipped",
            Self::Shipped => "shipped",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::PartiallyRefunded => "partially_refunded",
            Self::Refunded => "refunded",
        }
    }

    pub fn parse(value: &str) -> Result<Self, Problem> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == value)
            .ok_or_else(|| format!("is not an order status: {value:?}").into())
    }

    /// Whether the order may go from `self` to `next`.
    pub fn to(self, next: OrderStatus) -> Transition {
        use OrderStatus::*;
        if self == next {
            return Transition::AlreadyDone;
        }
        let allowed = matches!(
            (self, next),
            (Pending, Paid | Failed)
                | (Paid, PartiallyShipped | Shipped | Delivered | Cancelled)
                | (PartiallyShipped, Shipped | Delivered)
                | (Shipped, Delivered)
                | (Cancelled, Refunded | PartiallyRefunded)
                | (PartiallyRefunded, Refunded)
        );
        if allowed {
            Transition::Allowed
        } else {
            Transition::Refused
        }
    }

    /// Whether the checkout is over for an order in this status.
    pub fn is_settled(self) -> bool {
        self != Self::Pending
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A sub-order's status: pending → paid → shipped → delivered, or failed, or cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubOrderStatus {
    Pending,
    Paid,
    Shipped,
    Delivered,
    Failed,
    Cancelled,
}

impl SubOrderStatus {
    pub const ALL: [SubOrderStatus; 6] = [
        Self::Pending,
        Self::Paid,
        Self::Shipped,
        Self::Delivered,
        Self::Failed,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Paid => "paid",
            Self::Shipped => "shipped",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(value: &str) -> Result<Self, Problem> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == value)
            .ok_or_else(|| format!("is not a sub-order status: {value:?}").into())
    }

    pub fn to(self, next: SubOrderStatus) -> Transition {
        use SubOrderStatus::*;
        if self == next {
            return Transition::AlreadyDone;
        }
        if matches!(
            (self, next),
            (Pending, Paid | Failed) | (Paid, Shipped | Cancelled) | (Shipped, Delivered)
        ) {
            Transition::Allowed
        } else {
            Transition::Refused
        }
    }
}

impl fmt::Display for SubOrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The order's status while it is being fulfilled, from its sub-orders' statuses (cancelled
/// sub-orders aside): every one delivered, every one on its way, some, or none yet.
pub fn fulfilment_status(sub_orders: &[SubOrderStatus]) -> OrderStatus {
    let live: Vec<_> = sub_orders
        .iter()
        .copied()
        .filter(|s| *s != SubOrderStatus::Cancelled)
        .collect();
    let moved =
        |s: &SubOrderStatus| matches!(s, SubOrderStatus::Shipped | SubOrderStatus::Delivered);
    if !live.is_empty() && live.iter().all(|s| *s == SubOrderStatus::Delivered) {
        OrderStatus::Delivered
    } else if !live.is_empty() && live.iter().all(moved) {
        OrderStatus::Shipped
    } else if live.iter().any(moved) {
        OrderStatus::PartiallyShipped
    } else {
        OrderStatus::Paid
    }
}

/// The carriers a sub-order ships with.
pub const CARRIERS: [&str; 4] = ["FedEx", "UPS", "DHL", "USPS"];

/// A shipment, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shipment {
    pub id: Uuid,
    pub carrier: &'static str,
    pub tracking_number: String,
}

impl Shipment {
    pub fn parse(request: &ShipSubOrderRequest) -> Result<Self, rpc::Error> {
        let mut fields = Fields::new();
        let id = fields.parse("id", parse_uuid(&request.id));
        let carrier = fields.parse(
            "carrier",
            CARRIERS
                .into_iter()
                .find(|c| *c == request.carrier.trim())
                .ok_or_else(|| Problem::from(format!("must be one of {}", CARRIERS.join(", ")))),
        );
        let tracking = request.tracking_number.trim();
        let tracking_number = fields.parse(
            "tracking_number",
            if tracking.is_empty() || tracking.chars().count() > 64 {
                Err(Problem::from("must be 1 to 64 characters"))
            } else if !tracking
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                Err(Problem::from(
                    "may contain only letters, digits and hyphens",
                ))
            } else {
                Ok(tracking.to_owned())
            },
        );
        fields.finish(|| {
            Some(Self {
                id: id?,
                carrier: carrier?,
                tracking_number: tracking_number?,
            })
        })
    }
}

/// Money as the order keeps it: minor units of the order's one currency.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Figures {
    pub subtotal: i64,
    pub discount: i64,
    pub shipping: i64,
    pub tax: i64,
    pub total: i64,
}

impl Figures {
    /// Whether the figures add up: total = subtotal - discount + shipping + tax.
    pub fn add_up(&self) -> bool {
        self.subtotal - self.discount + self.shipping + self.tax == self.total
            && self.discount <= self.subtotal
            && [
                self.subtotal,
                self.discount,
                self.shipping,
                self.tax,
                self.total,
            ]
            .iter()
            .all(|v| *v >= 0)
    }

    fn plus(self, other: Figures) -> Figures {
        Figures {
            subtotal: self.subtotal + other.subtotal,
            discount: self.discount + other.discount,
            shipping: self.shipping + other.shipping,
            tax: self.tax + other.tax,
            total: self.total + other.total,
        }
    }
}

/// A line of the cart as the checkout took it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub product_id: Uuid,
    pub shop_id: Uuid,
    pub name: String,
    pub unit_price: i64,
    pub quantity: i32,
}

impl Line {
    pub fn total(&self) -> i64 {
        self.unit_price * i64::from(self.quantity)
    }
}

/// One shop's part of an order, priced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricedSubOrder {
    pub id: Uuid,
    pub shop_id: Uuid,
    /// The shop's name as the shop service had it when the cart was priced (empty in a
    /// checkout priced before names were kept).
    #[serde(default)]
    pub shop_name: String,
    pub lines: Vec<Line>,
    pub figures: Figures,
}

/// An order's figures, computed once at checkout and stored with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricedOrder {
    pub currency: String,
    pub sub_orders: Vec<PricedSubOrder>,
    pub figures: Figures,
}

/// A voucher's discount on the order: on one shop's lines, or spread over all of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discount {
    pub code: String,
    pub shop_id: Option<Uuid>,
    pub amount: i64,
}

/// Shipping methods and tax rates. They come from the platform settings
/// (`checkout.shipping_methods`, `checkout.tax_rates` through pkg/settings), read at each
/// use, so a change applies to the next checkout without a restart. The tables parsed from
/// `--shipping-rates` and `--tax-rates` are the fallback for a key the settings do not hold
/// (no settings service on this stack, or its bucket not reached yet).
#[derive(Clone, Debug)]
pub struct PricingRules {
    /// Fallback: per method, what one sub-order's shipping costs in minor units of the
    /// order's currency.
    pub shipping: BTreeMap<String, i64>,
    /// Fallback: per destination country (ISO 3166-1 alpha-2), in basis points (1900 = 19%).
    pub tax_rates: BTreeMap<String, i64>,
    /// The rate for a country not listed.
    pub default_tax_rate: i64,
    /// The live settings, when the service reads them.
    live: Option<settings::Settings>,
}

/// One shipping method's rate: minor units, in `currency` when the settings name one (the
/// command-line fallback applies in any currency).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShippingCost {
    pub amount: i64,
    pub currency: Option<String>,
}

/// The shipping method when the customer names none.
pub const DEFAULT_SHIPPING_METHOD: &str = "standard";

impl PricingRules {
    /// Parses "standard=499,express=1499" and "US=0,DE=1900".
    pub fn parse(shipping: &str, tax_rates: &str, default_tax_rate: i64) -> Result<Self, String> {
        let pairs = |text: &str, what: &str| -> Result<BTreeMap<String, i64>, String> {
            text.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (key, value) = pair
                        .split_once('=')
                        .ok_or_else(|| format!("{what}: {pair:?} is not name=value"))?;
                    let value: i64 = value
                        .trim()
                        .parse()
                        .map_err(|_| format!("{what}: {value:?} is not a whole number"))?;
                    if !(0..=1_000_000).contains(&value) {
                        return Err(format!("{what}: {value} is out of range"));
                    }
                    Ok((key.trim().to_owned(), value))
                })
                .collect()
        };
        let shipping = pairs(shipping, "shipping rates")?;
        if !shipping.contains_key(DEFAULT_SHIPPING_METHOD) {
            return Err(format!(
                "shipping rates must include the default method {DEFAULT_SHIPPING_METHOD:?}"
            ));
        }
        let tax_rates = pairs(tax_rates, "tax rates")?
            .into_iter()
            .map(|(k, v)| (k.to_ascii_uppercase(), v))
            .collect();
        if !(0..=10_000).contains(&default_tax_rate) {
            return Err("the default tax rate is out of range (0 to 10000 basis points)".into());
        }
        Ok(Self {
            shipping,
            tax_rates,
            default_tax_rate,
            live: None,
        })
    }

    /// These rules, reading the shipping and tax tables from `settings` first.
    pub fn with_settings(mut self, settings: settings::Settings) -> Self {
        self.live = Some(settings);
        self
    }

    fn live_value(&self, key: &str) -> Option<&settings::Settings> {
        self.live
            .as_ref()
            .filter(|live| live.stored(settings::Scope::Platform, key).is_some())
    }

    /// The shipping methods offered now, each with its cost.
    pub fn shipping_methods(&self) -> BTreeMap<String, ShippingCost> {
        match self.live_value(settings::catalogue::SHIPPING_METHODS) {
            Some(live) => live
                .shipping_methods()
                .into_iter()
                .map(|(method, rate)| {
                    let cost = ShippingCost {
                        amount: rate.amount_minor_units,
                        currency: Some(rate.currency),
                    };
                    (method, cost)
                })
                .collect(),
            None => self
                .shipping
                .iter()
                .map(|(method, amount)| {
                    let cost = ShippingCost {
                        amount: *amount,
                        currency: None,
                    };
                    (method.clone(), cost)
                })
                .collect(),
        }
    }

    /// How long a checkout holds stock and voucher uses: the setting, else `fallback`.
    pub fn reservation_hold(&self, fallback: std::time::Duration) -> std::time::Duration {
        match self.live_value(settings::catalogue::RESERVATION_EXPIRY_SECONDS) {
            Some(live) => live.reservation_expiry(),
            None => fallback,
        }
    }

    /// The tax rate of `country`, in basis points: the settings' table, else the fallback
    /// table; a country neither lists pays the default rate.
    pub fn tax_rate(&self, country: &str) -> i64 {
        let country = country.to_ascii_uppercase();
        let listed = match self.live_value(settings::catalogue::TAX_RATES) {
            Some(live) => live.tax_rates().get(&country).copied(),
            None => self.tax_rates.get(&country).copied(),
        };
        listed.unwrap_or(self.default_tax_rate)
    }

    /// Prices `lines` (one currency) into one sub-order per shop: each sub-order's subtotal,
    /// its share of the discount, its shipping by `method`, and tax at the destination's rate
    /// on what remains after the discount, plus shipping. Sub-orders are in the order shops
    /// first appear in `lines`. `None` when the method is not offered, or not in `currency`.
    pub fn price(
        &self,
        currency: &str,
        lines: &[Line],
        discount: Option<&Discount>,
        method: &str,
        country: &str,
    ) -> Option<PricedOrder> {
        let cost = self.shipping_methods().remove(method)?;
        if cost.currency.as_deref().is_some_and(|c| c != currency) {
            return None;
        }
        let shipping = cost.amount;
        let rate = self.tax_rate(country);
        let mut shops: Vec<(Uuid, Vec<Line>)> = Vec::new();
        for line in lines {
            match shops.iter_mut().find(|(shop, _)| *shop == line.shop_id) {
                Some((_, shop_lines)) => shop_lines.push(line.clone()),
                None => shops.push((line.shop_id, vec![line.clone()])),
            }
        }
        let subtotals: Vec<i64> = shops
            .iter()
            .map(|(_, lines)| lines.iter().map(Line::total).sum())
            .collect();
        let discounts = allocate(discount, &shops, &subtotals);
        let sub_orders: Vec<PricedSubOrder> = shops
            .into_iter()
            .zip(subtotals)
            .zip(discounts)
            .map(|(((shop_id, lines), subtotal), discount)| {
                let taxable = subtotal - discount + shipping;
                let tax = percent_of(taxable, rate);
                PricedSubOrder {
                    id: Uuid::now_v7(),
                    shop_id,
                    shop_name: String::new(),
                    lines,
                    figures: Figures {
                        subtotal,
                        discount,
                        shipping,
                        tax,
                        total: taxable + tax,
                    },
                }
            })
            .collect();
        let figures = sub_orders
            .iter()
            .fold(Figures::default(), |sum, s| sum.plus(s.figures));
        Some(PricedOrder {
            currency: currency.to_owned(),
            sub_orders,
            figures,
        })
    }
}

/// `amount` × `basis_points` / 10000, rounded half up.
fn percent_of(amount: i64, basis_points: i64) -> i64 {
    (i128::from(amount) * i128::from(basis_points) + 5_000).div_euclid(10_000) as i64
}

/// Each shop's share of the discount: all of it for a shop voucher (at most that shop's
/// subtotal); for a platform-wide one, in proportion to the subtotals, the rounding remainder
/// to the largest shares, so the shares add up to the discount exactly.
fn allocate(
    discount: Option<&Discount>,
    shops: &[(Uuid, Vec<Line>)],
    subtotals: &[i64],
) -> Vec<i64> {
    let mut shares = vec![0; shops.len()];
    let Some(discount) = discount else {
        return shares;
    };
    let total: i64 = subtotals.iter().sum();
    let amount = discount.amount.clamp(0, total);
    match discount.shop_id {
        Some(shop) => {
            if let Some(i) = shops.iter().position(|(id, _)| *id == shop) {
                shares[i] = amount.min(subtotals[i]);
            }
        }
        None if total > 0 => {
            let mut given = 0;
            let mut remainders = Vec::with_capacity(shops.len());
            for (i, subtotal) in subtotals.iter().enumerate() {
                let exact = i128::from(amount) * i128::from(*subtotal);
                shares[i] = (exact / i128::from(total)) as i64;
                given += shares[i];
                remainders.push((exact % i128::from(total), i));
            }
            remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            for (_, i) in remainders.into_iter().take((amount - given) as usize) {
                shares[i] += 1;
            }
        }
        None => {}
    }
    shares
}

/// Why a checkout failed, as the order and its `order.failed` event say.
pub mod failure {
    pub const OUT_OF_STOCK: &str = "out_of_stock";
    pub const PAYMENT_DECLINED: &str = "payment_declined";
    pub const PAYMENT_FAILED: &str = "payment_failed";
    pub const VOUCHER_UNAVAILABLE: &str = "voucher_unavailable";
    pub const PRICE_CHANGED: &str = "price_changed";
    pub const EMPTY_CART: &str = "empty_cart";
    pub const CART_NOT_READY: &str = "cart_not_ready";
    pub const ADDRESS_NOT_FOUND: &str = "address_not_found";
    pub const SHIPPING_UNAVAILABLE: &str = "shipping_unavailable";
    pub const ABORTED: &str = "aborted";
    pub const CANCELLED_BY_CUSTOMER: &str = "cancelled_by_customer";
}

/// A configured shipping method; the default one when `value` is empty.
fn shipping_method(value: &str, rules: &PricingRules) -> Result<String, Problem> {
    let method = match value.trim() {
        "" => DEFAULT_SHIPPING_METHOD,
        method => method,
    };
    let offered = rules.shipping_methods();
    if offered.contains_key(method) {
        Ok(method.to_owned())
    } else {
        Err(Problem::from(format!(
            "must be one of {}",
            offered.keys().cloned().collect::<Vec<_>>().join(", ")
        )))
    }
}

/// A quote request, validated: the fields a checkout prices with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuoteOrder {
    pub shipping_address_id: Uuid,
    pub shipping_method: String,
    pub voucher_code: Option<String>,
}

impl QuoteOrder {
    pub fn parse(request: &QuoteCheckoutRequest, rules: &PricingRules) -> Result<Self, rpc::Error> {
        let mut fields = Fields::new();
        let shipping_address_id = fields.parse(
            "shipping_address_id",
            parse_uuid(&request.shipping_address_id),
        );
        let shipping_method = fields.parse(
            "shipping_method",
            shipping_method(&request.shipping_method, rules),
        );
        let code = request.voucher_code.trim();
        fields.finish(|| {
            Some(Self {
                shipping_address_id: shipping_address_id?,
                shipping_method: shipping_method?,
                voucher_code: Some(code.to_owned()).filter(|c| !c.is_empty()),
            })
        })
    }
}

/// A checkout request, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckoutOrder {
    pub idempotency_key: String,
    pub shipping_address_id: Uuid,
    pub shipping_method: String,
    pub voucher_code: Option<String>,
    pub payment_method_id: String,
    /// The total the customer was shown: minor units and currency.
    pub expected_total: Option<(i64, String)>,
}

impl CheckoutOrder {
    pub fn parse(request: &CheckoutRequest, rules: &PricingRules) -> Result<Self, rpc::Error> {
        let mut fields = Fields::new();
        let key = request.idempotency_key.trim();
        let idempotency_key = fields.parse(
            "idempotency_key",
            if key.is_empty() {
                Err(Problem::from(
                    "is required: send the Idempotency-Key header",
                ))
            } else {
                Ok(key.to_owned())
            },
        );
        let shipping_address_id = fields.parse(
            "shipping_address_id",
            parse_uuid(&request.shipping_address_id),
        );
        let shipping_method = fields.parse(
            "shipping_method",
            shipping_method(&request.shipping_method, rules),
        );
        let code = request.voucher_code.trim();
        let payment_method_id = fields.parse(
            "payment_method_id",
            match request.payment_method_id.trim() {
                "" => Err(Problem::from("is required")),
                id => Ok(id.to_owned()),
            },
        );
        let expected_total = request
            .expected_total
            .as_ref()
            .map(|m| (m.minor_units, m.currency.trim().to_owned()));
        fields.finish(|| {
            Some(Self {
                idempotency_key: idempotency_key?,
                shipping_address_id: shipping_address_id?,
                shipping_method: shipping_method?,
                voucher_code: Some(code.to_owned()).filter(|c| !c.is_empty()),
                payment_method_id: payment_method_id?,
                expected_total,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> PricingRules {
        PricingRules::parse("standard=500,express=1500", "US=0,DE=1900", 1000).unwrap()
    }

    fn line(shop: Uuid, price: i64, quantity: i32) -> Line {
        Line {
            product_id: Uuid::now_v7(),
            shop_id: shop,
            name: "x".into(),
            unit_price: price,
            quantity,
        }
    }

    #[test]
    fn an_order_has_one_sub_order_per_shop_and_its_figures_add_up() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let lines = [line(a, 1000, 2), line(b, 333, 3), line(a, 1, 1)];
        let discount = Discount {
            code: "TEN".into(),
            shop_id: None,
            amount: 1001,
        };
        let order = rules()
            .price("EUR", &lines, Some(&discount), "standard", "de")
            .unwrap();
        assert_eq!(order.sub_orders.len(), 2);
        assert_eq!(order.sub_orders[0].shop_id, a);
        assert_eq!(order.sub_orders[0].figures.subtotal, 2001);
        assert_eq!(order.sub_orders[1].figures.subtotal, 999);
        // The shares of a platform-wide discount add up to it exactly.
        assert_eq!(
            order
                .sub_orders
                .iter()
                .map(|s| s.figures.discount)
                .sum::<i64>(),
            1001
        );
        for sub in &order.sub_orders {
            assert!(sub.figures.add_up(), "{:?}", sub.figures);
            assert_eq!(sub.figures.shipping, 500);
        }
        assert!(order.figures.add_up());
        assert_eq!(order.figures.subtotal, 3000);
        assert_eq!(order.figures.shipping, 1000);
        // 1001 split as 667.67 and 333.33: the remainder to the larger fraction.
        let shares: Vec<i64> = order
            .sub_orders
            .iter()
            .map(|s| s.figures.discount)
            .collect();
        assert_eq!(shares, [668, 333]);
        // 19% on (2001 - 668 + 500) and on (999 - 333 + 500), rounded half up.
        let taxes: Vec<i64> = order.sub_orders.iter().map(|s| s.figures.tax).collect();
        assert_eq!(taxes, [348, 222]);
    }

    #[test]
    fn a_shop_voucher_discounts_only_its_shop_and_never_more_than_its_lines() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let lines = [line(a, 1000, 1), line(b, 500, 1)];
        let discount = Discount {
            code: "B".into(),
            shop_id: Some(b),
            amount: 800,
        };
        let order = rules()
            .price("USD", &lines, Some(&discount), "express", "US")
            .unwrap();
        assert_eq!(order.sub_orders[0].figures.discount, 0);
        assert_eq!(order.sub_orders[1].figures.discount, 500);
        assert_eq!(order.figures.tax, 0);
        assert_eq!(order.figures.total, 1000 + 1500 + 1500);
        assert!(rules().price("USD", &lines, None, "drone", "US").is_none());
    }

    #[test]
    fn the_default_rate_applies_to_unlisted_countries() {
        let lines = [line(Uuid::now_v7(), 1000, 1)];
        let order = rules()
            .price("USD", &lines, None, "standard", "JP")
            .unwrap();
        assert_eq!(order.figures.tax, 150);
        assert!(PricingRules::parse("express=1", "", 0).is_err());
        assert!(PricingRules::parse("standard=x", "", 0).is_err());
    }

    #[test]
    fn the_settings_tables_win_over_the_fallback_and_apply_in_their_currency_only() {
        let settings = settings::Settings::defaults();
        let rules = rules().with_settings(settings.clone());
        let lines = [line(Uuid::now_v7(), 1000, 1)];
        // Nothing in the bucket yet: the fallback tables (any currency).
        let order = rules.price("EUR", &lines, None, "standard", "DE").unwrap();
        assert_eq!((order.figures.shipping, order.figures.tax), (500, 285));

        settings.set_locally(
            settings::Scope::Platform,
            settings::catalogue::SHIPPING_METHODS,
            2,
            serde_json::json!({"standard": {"amount_minor_units": 700, "currency": "USD"}}),
        );
        settings.set_locally(
            settings::Scope::Platform,
            settings::catalogue::TAX_RATES,
            2,
            serde_json::json!({"US": 1000}),
        );
        let order = rules.price("USD", &lines, None, "standard", "US").unwrap();
        assert_eq!((order.figures.shipping, order.figures.tax), (700, 170));
        // A country the settings do not list pays the default rate, not the fallback's.
        let order = rules.price("USD", &lines, None, "standard", "DE").unwrap();
        assert_eq!(order.figures.tax, 170);
        assert!(rules.price("EUR", &lines, None, "standard", "US").is_none());
        assert!(rules.price("USD", &lines, None, "express", "US").is_none());
        assert_eq!(
            rules.shipping_methods().keys().collect::<Vec<_>>(),
            ["standard"]
        );
    }

    #[test]
    fn order_statuses_follow_the_state_machine() {
        use OrderStatus::*;
        assert_eq!(Pending.to(Paid), Transition::Allowed);
        assert_eq!(Pending.to(Failed), Transition::Allowed);
        assert_eq!(Paid.to(Paid), Transition::AlreadyDone);
        assert_eq!(Failed.to(Paid), Transition::Refused);
        assert_eq!(Shipped.to(Cancelled), Transition::Refused);
        assert_eq!(PartiallyShipped.to(Cancelled), Transition::Refused);
        assert_eq!(Cancelled.to(Refunded), Transition::Allowed);
        assert_eq!(Delivered.to(Shipped), Transition::Refused);
        for status in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(status.as_str()).unwrap(), status);
        }
        use SubOrderStatus as S;
        assert_eq!(S::Paid.to(S::Shipped), Transition::Allowed);
        assert_eq!(S::Shipped.to(S::Cancelled), Transition::Refused);
        assert_eq!(S::Pending.to(S::Shipped), Transition::Refused);
    }

    #[test]
    fn the_order_status_follows_its_sub_orders() {
        use SubOrderStatus::*;
        assert_eq!(fulfilment_status(&[Paid, Paid]), OrderStatus::Paid);
        assert_eq!(
            fulfilment_status(&[Shipped, Paid]),
            OrderStatus::PartiallyShipped
        );
        assert_eq!(
            fulfilment_status(&[Shipped, Delivered]),
            OrderStatus::Shipped
        );
        assert_eq!(
            fulfilment_status(&[Delivered, Delivered]),
            OrderStatus::Delivered
        );
        assert_eq!(
            fulfilment_status(&[Delivered, Paid]),
            OrderStatus::PartiallyShipped
        );
    }

    #[test]
    fn a_shipment_names_a_known_carrier_and_a_plain_tracking_number() {
        let ok = Shipment::parse(&ShipSubOrderRequest {
            id: Uuid::now_v7().to_string(),
            carrier: "DHL".into(),
            tracking_number: " JD0146-0001 ".into(),
        })
        .unwrap();
        assert_eq!(ok.tracking_number, "JD0146-0001");
        let error = Shipment::parse(&ShipSubOrderRequest {
            id: "x".into(),
            carrier: "Pigeon".into(),
            tracking_number: "a b".into(),
        })
        .unwrap_err();
        assert_eq!(
            testkit::bad_fields(&error),
            ["id", "carrier", "tracking_number"]
        );
    }

    #[test]
    fn a_quote_takes_the_checkouts_address_method_and_voucher_rules() {
        let address = Uuid::now_v7();
        let quote = QuoteOrder::parse(
            &QuoteCheckoutRequest {
                shipping_address_id: address.to_string(),
                shipping_method: String::new(),
                voucher_code: "  ".into(),
            },
            &rules(),
        )
        .unwrap();
        assert_eq!(
            quote,
            QuoteOrder {
                shipping_address_id: address,
                shipping_method: DEFAULT_SHIPPING_METHOD.into(),
                voucher_code: None,
            }
        );
        let error = QuoteOrder::parse(
            &QuoteCheckoutRequest {
                shipping_address_id: "nope".into(),
                shipping_method: "drone".into(),
                voucher_code: "SAVE5".into(),
            },
            &rules(),
        )
        .unwrap_err();
        assert_eq!(
            testkit::bad_fields(&error),
            ["shipping_address_id", "shipping_method"]
        );
    }
}
