//! The domain vocabulary the services share: words that mean exactly the same thing in every
//! service, written once so that they cannot drift apart.
//!
//! - [`Problem`] and [`Fields`]: what is wrong with one request field, and the collector that
//!   parses a whole request and names every bad field in one `invalid_argument`.
//! - [`bounded_text`]: the one rule for free text (trimmed, counted in characters, no control
//!   characters), so a "200 characters" limit means the same in every service and in
//!   PostgreSQL's `char_length`.
//! - [`Currency`]: ISO 4217, one table, with each currency's minor-unit digits.
//! - [`Money`]: integer minor units plus a currency; arithmetic that refuses to mix currencies
//!   or overflow, and the conversions to and from the contracts' `api::common::Money`.
//! - [`page`]: opaque, versioned keyset page tokens and the page size every listing accepts.
//! - [`ownership`]: who may act on a shop's things (admins, its owner while it trades), from
//!   the shop service's answer.
//!
//! Everything here is pure (no I/O, no clock, no randomness) and unit-tested in place.
//!
//! It must never hold a rule that belongs to one service (a price ceiling, the currencies a
//! customer may prefer, a name's length), depend on anything but the contracts (`api`) and the
//! runtime's error type (`rpc`), or grow into a "common" crate: a word goes here only when two
//! services already use it with the same meaning.

pub mod currency;
pub mod demo;
pub mod fields;
pub mod money;
pub mod ownership;
pub mod page;
pub mod text;

pub use currency::Currency;
pub use fields::{Fields, Problem};
pub use money::{Money, MoneyError};
pub use text::{LineBreaks, bounded_text};
