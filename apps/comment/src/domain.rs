//! The rules of a review, as pure functions: what a valid review, reply or report looks like
//! ([`review`]), which reviews wait for a moderator and which status changes are legal
//! ([`moderation`]), and how listings are ordered and paged ([`listing`]). No I/O; each parser
//! returns a type that can only hold a valid value and names every bad field at once.

pub mod listing;
pub mod moderation;
pub mod review;

pub use listing::{Cursor, Page, QueuePage, Sort};
pub use moderation::{Action, ModerationRules, Queue, Status, Verdict};
pub use review::{Draft, Rating, Reply, Report};

use uuid::Uuid;
use vocab::Problem;

/// Parses the UUID in request field `field`, or names the field.
pub fn uuid(field: &str, value: &str) -> Result<Uuid, rpc::Error> {
    parse_uuid(value).map_err(|problem| rpc::Error::invalid_field(field, problem))
}

pub(crate) fn parse_uuid(value: &str) -> Result<Uuid, Problem> {
    Uuid::try_parse(value).map_err(|_| "must be a UUID".into())
}
