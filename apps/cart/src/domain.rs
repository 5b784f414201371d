//! The rules of a cart: who it belongs to, what its lines may hold, how two carts merge, how a
//! cart is priced from the catalog's offers and how a voucher's discount is spread over shops.
//! Pure functions, no I/O: the handlers fetch the offers and the voucher's evaluation and hand
//! them in.

use std::collections::HashMap;

use api::cart::{CartLine, CurrencyTotal, ShopTotal};
use api::product::ProductOffer;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use vocab::{Currency, Money, Problem};

/// The most units of one product a cart line holds.
pub const MAX_QUANTITY: i32 = 99;
/// The most distinct products one cart holds.
pub const MAX_LINES: usize = 100;
/// How long a guest cart lives after its last write.
pub const GUEST_CART_DAYS: i64 = 30;

/// The line statuses of the contract; only [`STATUS_OK`] lines count in totals.
pub const STATUS_OK: &str = "ok";
pub const STATUS_INACTIVE: &str = "inactive";
pub const STATUS_UNAVAILABLE: &str = "unavailable";
pub const STATUS_OUT_OF_STOCK: &str = "out_of_stock";
pub const STATUS_INSUFFICIENT_STOCK: &str = "insufficient_stock";

/// Where a cart is stored: the signed-in user's, or a guest's by the hash of its token.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CartKey {
    User(String),
    /// The SHA-256 of the token, in lower-case hex.
    Guest(String),
}

impl CartKey {
    /// A user id that is a UUID is keyed in its canonical form, however it was spelled.
    pub fn user(user_id: &str) -> Self {
        match Uuid::try_parse(user_id) {
            Ok(id) => Self::User(id.to_string()),
            Err(_) => Self::User(user_id.to_owned()),
        }
    }

    /// The key of the guest cart `token` opens. Any string has one, so a guessed or mangled
    /// token simply names a cart that does not exist.
    pub fn guest(token: &str) -> Self {
        let digest = Sha256::digest(token.as_bytes());
        let hex = digest.iter().map(|byte| format!("{byte:02x}")).collect();
        Self::Guest(hex)
    }

    /// The stored form: `user:<id>` or `guest:<hash>`.
    pub fn as_stored(&self) -> String {
        match self {
            Self::User(id) => format!("user:{id}"),
            Self::Guest(hash) => format!("guest:{hash}"),
        }
    }

    pub fn user_id(&self) -> Option<&str> {
        match self {
            Self::User(id) => Some(id),
            Self::Guest(_) => None,
        }
    }
}

/// A new guest cart's token: 32 random bytes from the operating system, URL-safe base64
/// without padding (43 characters). Only its hash is ever stored.
pub fn new_cart_token() -> String {
    let mut bytes = [0_u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// An id of a request (a product, a user, an order).
pub fn uuid(value: &str) -> Result<Uuid, Problem> {
    Uuid::try_parse(value).map_err(|_| "must be a UUID".into())
}

/// A line's quantity: 0 (remove the line) to [`MAX_QUANTITY`].
pub fn quantity(value: i32) -> Result<i32, Problem> {
    if (0..=MAX_QUANTITY).contains(&value) {
        Ok(value)
    } else {
        Err(format!("must be 0 to {MAX_QUANTITY}").into())
    }
}

/// Parses the request field `field` with `parse`, or names it in an `invalid_argument`.
pub fn field<T>(field: &str, parsed: Result<T, Problem>) -> Result<T, rpc::Error> {
    parsed.map_err(|problem| rpc::Error::invalid_field(field, problem))
}

/// One line of a cart as stored: a product and how many of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub product_id: Uuid,
    pub quantity: i32,
}

/// What a cart holds: lines in the order they were first added, the currency they are priced
/// in (none while empty) and the voucher code applied to it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CartContents {
    pub lines: Vec<Line>,
    pub currency: Option<Currency>,
    pub voucher_code: Option<String>,
}

/// Why a line cannot be set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineRefused {
    /// The cart already holds [`MAX_LINES`] other products.
    TooManyLines,
    /// The cart's lines are priced in `cart`, the product in `product`.
    OtherCurrency { cart: Currency, product: Currency },
}

impl CartContents {
    pub fn quantity_of(&self, product_id: Uuid) -> i32 {
        self.lines
            .iter()
            .find(|line| line.product_id == product_id)
            .map_or(0, |line| line.quantity)
    }

    /// Sets `product_id`'s line to `quantity` (0 removes it). `priced_in` is the product's
    /// currency; it must be the cart's unless the cart is empty or only this line is left.
    pub fn set_line(
        &mut self,
        product_id: Uuid,
        quantity: i32,
        priced_in: Currency,
    ) -> Result<(), LineRefused> {
        if quantity == 0 {
            self.remove_line(product_id);
            return Ok(());
        }
        let others = self
            .lines
            .iter()
            .filter(|line| line.product_id != product_id)
            .count();
        match self.currency {
            Some(cart) if cart != priced_in && others > 0 => {
                return Err(LineRefused::OtherCurrency {
                    cart,
                    product: priced_in,
                });
            }
            _ => {}
        }
        let quantity = quantity.min(MAX_QUANTITY);
        if let Some(line) = self
            .lines
            .iter_mut()
            .find(|line| line.product_id == product_id)
        {
            line.quantity = quantity;
        } else {
            if others >= MAX_LINES {
                return Err(LineRefused::TooManyLines);
            }
            self.lines.push(Line {
                product_id,
                quantity,
            });
        }
        self.currency = Some(priced_in);
        Ok(())
    }

    /// Removes `product_id`'s line, if there is one.
    pub fn remove_line(&mut self, product_id: Uuid) {
        self.lines.retain(|line| line.product_id != product_id);
        self.forget_currency_when_empty();
    }

    /// Every line and the voucher go.
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// Takes what an order bought out of the cart: each quantity is subtracted from its
    /// line (a line that reaches 0 goes; lines added since stay), and the voucher goes with the
    /// order.
    pub fn complete_checkout(&mut self, bought: &[Line]) {
        for sold in bought {
            if let Some(line) = self
                .lines
                .iter_mut()
                .find(|line| line.product_id == sold.product_id)
            {
                line.quantity -= sold.quantity.max(0);
            }
        }
        self.lines.retain(|line| line.quantity > 0);
        self.voucher_code = None;
        self.forget_currency_when_empty();
    }

    fn forget_currency_when_empty(&mut self) {
        if self.lines.is_empty() {
            self.currency = None;
        }
    }
}

/// The user's cart after a guest cart joins it: the user's lines first, in their order, then
/// the guest's new products while there is room for them ([`MAX_LINES`]); a product in both
/// adds the quantities (at most [`MAX_QUANTITY`]). The user's voucher stays, or the guest's
/// comes along when the user has none. A guest cart in another currency than the user's lines
/// cannot join (one cart holds one currency): only its voucher may come along.
pub fn merge(user: CartContents, guest: CartContents) -> CartContents {
    let mut merged = user;
    let same_currency = match (merged.currency, guest.currency) {
        (Some(user), Some(guest)) => user == guest,
        _ => true,
    };
    if same_currency {
        for line in guest.lines {
            if let Some(existing) = merged
                .lines
                .iter_mut()
                .find(|existing| existing.product_id == line.product_id)
            {
                existing.quantity = (existing.quantity + line.quantity).min(MAX_QUANTITY);
            } else if merged.lines.len() < MAX_LINES {
                merged.lines.push(Line {
                    quantity: line.quantity.min(MAX_QUANTITY),
                    ..line
                });
            }
        }
        if merged.currency.is_none() {
            merged.currency = guest.currency;
        }
    }
    if merged.voucher_code.is_none() {
        merged.voucher_code = guest.voucher_code;
    }
    merged
}

/// A cart priced from the catalog's offers: its lines as the contract shows them and the
/// subtotals of the lines that count, per shop in the order the shops first appear.
#[derive(Clone, Debug, PartialEq)]
pub struct PricedCart {
    pub lines: Vec<CartLine>,
    pub currency: Option<Currency>,
    pub shop_subtotals: Vec<(String, Money)>,
}

impl PricedCart {
    pub fn checkout_ready(&self) -> bool {
        !self.lines.is_empty() && self.lines.iter().all(|line| line.status == STATUS_OK)
    }

    /// The subtotal of every line that counts; `None` while none does.
    pub fn subtotal(&self) -> Option<Money> {
        let currency = self.currency?;
        if self.shop_subtotals.is_empty() {
            return None;
        }
        Money::sum(currency, self.shop_subtotals.iter().map(|(_, money)| money)).ok()
    }
}

/// Prices `contents` with `offers` (the catalog's answer for its products, keyed by product
/// id). A line counts only when its product exists, is active, is priced in the cart's
/// currency and has at least the line's quantity available.
pub fn price(contents: &CartContents, offers: &HashMap<Uuid, ProductOffer>) -> PricedCart {
    let mut lines = Vec::with_capacity(contents.lines.len());
    let mut shop_subtotals: Vec<(String, Money)> = Vec::new();
    for line in &contents.lines {
        let mut priced = CartLine {
            product_id: line.product_id.to_string(),
            quantity: line.quantity,
            status: STATUS_UNAVAILABLE.to_owned(),
            ..Default::default()
        };
        let Some(offer) = offers.get(&line.product_id) else {
            lines.push(priced);
            continue;
        };
        let product = offer.product.clone().unwrap_or_default();
        let unit_price = product
            .price
            .as_ref()
            .and_then(|price| Money::try_from(price).ok());
        let line_total = unit_price.and_then(|price| price.checked_mul(line.quantity.into()).ok());
        priced.name = product.name;
        priced.shop_id = product.shop_id;
        priced.image_url = product.image_urls.into_iter().next().unwrap_or_default();
        priced.unit_price = unit_price.map(Into::into);
        priced.line_total = line_total.map(Into::into);
        priced.available = offer.available;
        let in_cart_currency = matches!(
            (unit_price, contents.currency),
            (Some(price), Some(currency)) if price.currency() == currency
        );
        let status = if product.status != "active" {
            STATUS_INACTIVE
        } else if !in_cart_currency || line_total.is_none() {
            // Repriced in another currency since it was added: it cannot be bought in this
            // cart any more.
            STATUS_UNAVAILABLE
        } else if offer.available <= 0 {
            STATUS_OUT_OF_STOCK
        } else if offer.available < i64::from(line.quantity) {
            STATUS_INSUFFICIENT_STOCK
        } else {
            STATUS_OK
        };
        priced.status = status.to_owned();
        if let (STATUS_OK, Some(total)) = (status, line_total) {
            match shop_subtotals
                .iter_mut()
                .find(|(shop, _)| *shop == priced.shop_id)
            {
                Some((_, subtotal)) => match subtotal.checked_add(total) {
                    Ok(sum) => *subtotal = sum,
                    // Beyond 92 quadrillion minor units: no real cart gets here.
                    Err(_) => priced.status = STATUS_UNAVAILABLE.to_owned(),
                },
                None => shop_subtotals.push((priced.shop_id.clone(), total)),
            }
        }
        lines.push(priced);
    }
    PricedCart {
        lines,
        currency: contents.currency,
        shop_subtotals,
    }
}

/// A voucher's evaluation as the cart uses it.
#[derive(Clone, Debug, PartialEq)]
pub struct VoucherOutcome {
    pub code: String,
    pub applies: bool,
    pub reason: String,
    pub message: String,
    /// What it takes off; `None` when it does not apply.
    pub discount: Option<Money>,
    /// The shop it discounts; `None` for a platform-wide voucher.
    pub shop_id: Option<String>,
}

impl VoucherOutcome {
    /// A code that does not apply, for `reason`, in words a customer can read.
    pub fn not_applying(code: &str, reason: &str, message: &str) -> Self {
        Self {
            code: code.to_owned(),
            applies: false,
            reason: reason.to_owned(),
            message: message.to_owned(),
            discount: None,
            shop_id: None,
        }
    }
}

/// The discount of each shop (same order as `subtotals`) when `discount` is taken off them:
/// all of it from `shop` when the voucher is a shop's, otherwise spread in proportion to the
/// subtotals by largest remainder, so the shares add up to the discount exactly. No shop is
/// discounted below zero; what cannot be taken off anywhere is not taken off at all.
pub fn spread_discount(
    subtotals: &[(String, Money)],
    discount: Money,
    shop: Option<&str>,
) -> Vec<Money> {
    let currency = discount.currency();
    let zero = Money::zero(currency);
    let mut shares = vec![zero; subtotals.len()];
    let wanted = discount.minor_units().max(0);
    if let Some(shop) = shop {
        if let Some(index) = subtotals.iter().position(|(id, _)| id == shop) {
            let cap = subtotals[index].1.minor_units().max(0);
            shares[index] = Money::new(wanted.min(cap), currency);
        }
        return shares;
    }
    let caps: Vec<i128> = subtotals
        .iter()
        .map(|(_, money)| i128::from(money.minor_units().max(0)))
        .collect();
    let total: i128 = caps.iter().sum();
    if total == 0 {
        return shares;
    }
    let wanted = i128::from(wanted).min(total);
    let mut given = 0_i128;
    let mut remainders = Vec::with_capacity(caps.len());
    let mut amounts = vec![0_i128; caps.len()];
    for (index, cap) in caps.iter().enumerate() {
        let exact = wanted * cap;
        amounts[index] = exact / total;
        given += amounts[index];
        remainders.push((exact % total, index));
    }
    // The largest remainders take the units that rounding down left over (at most one each,
    // and never beyond a shop's subtotal, which the floor of a share below it allows).
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, index) in remainders {
        if given >= wanted {
            break;
        }
        if amounts[index] < caps[index] {
            amounts[index] += 1;
            given += 1;
        }
    }
    for (share, amount) in shares.iter_mut().zip(amounts) {
        // Each amount is at most its shop's `i64` subtotal.
        *share = Money::new(amount as i64, currency);
    }
    shares
}

/// The per-shop and per-currency totals of `priced` with `voucher`'s discount taken off.
pub fn totals(
    priced: &PricedCart,
    voucher: Option<&VoucherOutcome>,
) -> (Vec<ShopTotal>, Vec<CurrencyTotal>) {
    let Some(subtotal) = priced.subtotal() else {
        return (Vec::new(), Vec::new());
    };
    let currency = subtotal.currency();
    let discount = voucher
        .filter(|voucher| voucher.applies)
        .and_then(|voucher| voucher.discount.map(|discount| (discount, voucher)))
        .filter(|(discount, _)| discount.currency() == currency);
    let shares = match discount {
        Some((discount, voucher)) => {
            spread_discount(&priced.shop_subtotals, discount, voucher.shop_id.as_deref())
        }
        None => vec![Money::zero(currency); priced.shop_subtotals.len()],
    };
    let shops: Vec<ShopTotal> = priced
        .shop_subtotals
        .iter()
        .zip(&shares)
        .map(|((shop_id, subtotal), discount)| ShopTotal {
            shop_id: shop_id.clone(),
            subtotal: Some((*subtotal).into()),
            discount: Some((*discount).into()),
            total: subtotal.checked_sub(*discount).ok().map(Into::into),
        })
        .collect();
    let discount = Money::sum(currency, &shares).unwrap_or(Money::zero(currency));
    let total = CurrencyTotal {
        subtotal: Some(subtotal.into()),
        discount: Some(discount.into()),
        total: subtotal.checked_sub(discount).ok().map(Into::into),
    };
    (shops, vec![total])
}

#[cfg(test)]
mod tests {
    use api::product::Product;

    use super::*;

    fn usd() -> Currency {
        Currency::parse("USD").unwrap()
    }

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    fn ids(count: usize) -> Vec<Uuid> {
        (0..count).map(|_| Uuid::now_v7()).collect()
    }

    fn cart_with(lines: &[(Uuid, i32)]) -> CartContents {
        let mut cart = CartContents::default();
        for (id, quantity) in lines {
            cart.set_line(*id, *quantity, usd()).unwrap();
        }
        cart
    }

    fn offer(shop: &str, price: i64, currency: &str, status: &str, available: i64) -> ProductOffer {
        ProductOffer {
            product: Some(Product {
                shop_id: shop.into(),
                name: "Thing".into(),
                price: Some(api::common::Money {
                    minor_units: price,
                    currency: currency.into(),
                }),
                status: status.into(),
                ..Default::default()
            }),
            available,
        }
    }

    #[test]
    fn a_token_is_43_url_safe_characters_and_only_its_hash_is_a_key() {
        let token = new_cart_token();
        assert_eq!(token.len(), 43);
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(new_cart_token(), token);
        let key = CartKey::guest(&token).as_stored();
        assert!(key.starts_with("guest:"));
        assert!(!key.contains(&token));
        assert_eq!(key.len(), "guest:".len() + 64);
        assert_eq!(CartKey::guest(&token), CartKey::guest(&token));
    }

    #[test]
    fn quantities_are_0_to_99() {
        assert_eq!(quantity(0), Ok(0));
        assert_eq!(quantity(99), Ok(99));
        assert!(quantity(100).is_err());
        assert!(quantity(-1).is_err());
    }

    #[test]
    fn lines_keep_the_order_they_were_first_added_and_0_removes() {
        let [a, b] = ids(2).try_into().unwrap();
        let mut cart = cart_with(&[(a, 1), (b, 2)]);
        cart.set_line(a, 5, usd()).unwrap();
        assert_eq!(
            cart.lines,
            [
                Line {
                    product_id: a,
                    quantity: 5
                },
                Line {
                    product_id: b,
                    quantity: 2
                }
            ]
        );
        cart.set_line(a, 0, usd()).unwrap();
        cart.remove_line(b);
        assert!(cart.lines.is_empty());
        assert_eq!(cart.currency, None, "an empty cart has no currency");
    }

    #[test]
    fn the_101st_product_is_refused_and_changes_nothing() {
        let products = ids(MAX_LINES + 1);
        let mut cart = CartContents::default();
        for id in &products[..MAX_LINES] {
            cart.set_line(*id, 1, usd()).unwrap();
        }
        let before = cart.clone();
        assert_eq!(
            cart.set_line(products[MAX_LINES], 1, usd()),
            Err(LineRefused::TooManyLines)
        );
        assert_eq!(cart, before);
        // A product already in the cart can still change.
        cart.set_line(products[0], 3, usd()).unwrap();
    }

    #[test]
    fn one_cart_holds_one_currency() {
        let [a, b] = ids(2).try_into().unwrap();
        let mut cart = cart_with(&[(a, 1)]);
        assert_eq!(
            cart.set_line(b, 1, eur()),
            Err(LineRefused::OtherCurrency {
                cart: usd(),
                product: eur()
            })
        );
        // The only line may be replaced by a product of another currency's price.
        cart.set_line(a, 2, eur()).unwrap();
        assert_eq!(cart.currency, Some(eur()));
    }

    #[test]
    fn merging_adds_quantities_caps_them_and_keeps_the_users_lines_first() {
        let [shared, mine, theirs] = ids(3).try_into().unwrap();
        let user = cart_with(&[(mine, 1), (shared, 60)]);
        let mut guest = cart_with(&[(theirs, 2), (shared, 60)]);
        guest.voucher_code = Some("GUEST".into());
        let merged = merge(user, guest);
        let lines: Vec<(Uuid, i32)> = merged
            .lines
            .iter()
            .map(|line| (line.product_id, line.quantity))
            .collect();
        assert_eq!(lines, [(mine, 1), (shared, 99), (theirs, 2)]);
        assert_eq!(merged.voucher_code.as_deref(), Some("GUEST"));
    }

    #[test]
    fn merging_keeps_the_users_voucher_and_stops_at_100_lines() {
        let user_products = ids(98);
        let mut user = CartContents::default();
        for id in &user_products {
            user.set_line(*id, 1, usd()).unwrap();
        }
        user.voucher_code = Some("MINE".into());
        let guest_products = ids(5);
        let mut guest = CartContents::default();
        for id in &guest_products {
            guest.set_line(*id, 1, usd()).unwrap();
        }
        guest.voucher_code = Some("GUEST".into());
        let merged = merge(user, guest);
        assert_eq!(merged.lines.len(), MAX_LINES);
        assert_eq!(merged.lines[98].product_id, guest_products[0]);
        assert_eq!(merged.lines[99].product_id, guest_products[1]);
        assert_eq!(merged.voucher_code.as_deref(), Some("MINE"));
    }

    #[test]
    fn a_guest_cart_in_another_currency_does_not_mix_in() {
        let [a, b] = ids(2).try_into().unwrap();
        let user = cart_with(&[(a, 1)]);
        let mut guest = CartContents::default();
        guest.set_line(b, 1, eur()).unwrap();
        let merged = merge(user.clone(), guest.clone());
        assert_eq!(merged, user);
        let merged = merge(CartContents::default(), guest.clone());
        assert_eq!(merged, guest, "an empty user cart takes the guest's");
    }

    #[test]
    fn completing_a_checkout_takes_what_was_bought_and_the_voucher() {
        let [a, b, later] = ids(3).try_into().unwrap();
        let mut cart = cart_with(&[(a, 2), (b, 5), (later, 1)]);
        cart.voucher_code = Some("SAVE".into());
        cart.complete_checkout(&[
            Line {
                product_id: a,
                quantity: 2,
            },
            Line {
                product_id: b,
                quantity: 3,
            },
        ]);
        let lines: Vec<(Uuid, i32)> = cart
            .lines
            .iter()
            .map(|line| (line.product_id, line.quantity))
            .collect();
        assert_eq!(lines, [(b, 2), (later, 1)]);
        assert_eq!(cart.voucher_code, None);
    }

    #[test]
    fn pricing_flags_lines_and_counts_only_the_ok_ones() {
        let [ok, gone, inactive, out, short, euro] = ids(6).try_into().unwrap();
        let cart = cart_with(&[
            (ok, 2),
            (gone, 1),
            (inactive, 1),
            (out, 1),
            (short, 5),
            (euro, 1),
        ]);
        let offers = HashMap::from([
            (ok, offer("shop-a", 250, "USD", "active", 10)),
            (inactive, offer("shop-a", 100, "USD", "inactive", 10)),
            (out, offer("shop-b", 100, "USD", "active", 0)),
            (short, offer("shop-b", 100, "USD", "active", 4)),
            (euro, offer("shop-b", 100, "EUR", "active", 4)),
        ]);
        let priced = price(&cart, &offers);
        let statuses: Vec<&str> = priced.lines.iter().map(|l| l.status.as_str()).collect();
        assert_eq!(
            statuses,
            [
                STATUS_OK,
                STATUS_UNAVAILABLE,
                STATUS_INACTIVE,
                STATUS_OUT_OF_STOCK,
                STATUS_INSUFFICIENT_STOCK,
                STATUS_UNAVAILABLE
            ]
        );
        assert_eq!(
            priced.lines[0].line_total.as_ref().unwrap().minor_units,
            500
        );
        assert_eq!(
            priced.lines[1].name, "",
            "a product that is gone has no name"
        );
        assert_eq!(
            priced.shop_subtotals,
            [("shop-a".to_owned(), Money::new(500, usd()))]
        );
        assert!(!priced.checkout_ready());
    }

    #[test]
    fn a_platform_discount_is_spread_in_proportion_and_adds_up() {
        let subtotals = [
            ("a".to_owned(), Money::new(100, usd())),
            ("b".to_owned(), Money::new(100, usd())),
            ("c".to_owned(), Money::new(100, usd())),
        ];
        let shares = spread_discount(&subtotals, Money::new(100, usd()), None);
        let units: Vec<i64> = shares.iter().map(|m| m.minor_units()).collect();
        assert_eq!(units.iter().sum::<i64>(), 100);
        assert_eq!(units, [34, 33, 33]);

        let uneven = [
            ("a".to_owned(), Money::new(1000, usd())),
            ("b".to_owned(), Money::new(1, usd())),
        ];
        let shares = spread_discount(&uneven, Money::new(5000, usd()), None);
        let units: Vec<i64> = shares.iter().map(|m| m.minor_units()).collect();
        assert_eq!(units, [1000, 1], "never more than a shop's subtotal");
    }

    #[test]
    fn a_shop_voucher_discounts_only_its_shop() {
        let subtotals = [
            ("a".to_owned(), Money::new(1000, usd())),
            ("b".to_owned(), Money::new(500, usd())),
        ];
        let shares = spread_discount(&subtotals, Money::new(200, usd()), Some("b"));
        let units: Vec<i64> = shares.iter().map(|m| m.minor_units()).collect();
        assert_eq!(units, [0, 200]);
    }

    #[test]
    fn totals_take_the_discount_off_each_shop_and_the_currency() {
        let [a, b] = ids(2).try_into().unwrap();
        let cart = cart_with(&[(a, 1), (b, 1)]);
        let offers = HashMap::from([
            (a, offer("shop-a", 300, "USD", "active", 10)),
            (b, offer("shop-b", 100, "USD", "active", 10)),
        ]);
        let priced = price(&cart, &offers);
        let voucher = VoucherOutcome {
            code: "TEN".into(),
            applies: true,
            reason: String::new(),
            message: String::new(),
            discount: Some(Money::new(101, usd())),
            shop_id: None,
        };
        let (shops, totals) = totals(&priced, Some(&voucher));
        let discounts: Vec<i64> = shops
            .iter()
            .map(|shop| shop.discount.as_ref().unwrap().minor_units)
            .collect();
        assert_eq!(discounts, [76, 25]);
        assert_eq!(totals[0].subtotal.as_ref().unwrap().minor_units, 400);
        assert_eq!(totals[0].discount.as_ref().unwrap().minor_units, 101);
        assert_eq!(totals[0].total.as_ref().unwrap().minor_units, 299);
        assert!(priced.checkout_ready());
    }
}
