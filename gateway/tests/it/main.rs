//! The gateway end to end: real HTTP in front of the real product service, over a private
//! nats-server, Redis and PostgreSQL.

mod access;
mod catalog;
mod errors;
mod helpers;
mod limits;
mod platform;
mod tokens;
