//! Storage set-up shared by every service: PostgreSQL pools with embedded migrations, Redis
//! connections, MongoDB clients (feature `mongo`), and the cache-aside helper.
//!
//! Each `connect` fails start-up quickly and with a clear message when its server is missing,
//! and each `check` plugs into the admin port's readiness probe. This crate must never hold a
//! query or a table of any particular service, and must never print a connection URL (they
//! carry passwords): errors name the host, port and database only.

pub mod cache;
#[cfg(feature = "mongo")]
pub mod mongo;
pub mod postgres;
pub mod redis;
