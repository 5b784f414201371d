//! The gateway end to end: real HTTP in front of the real services (product; auth, user and
//! address in `journey`), over a private nats-server, Redis and PostgreSQL.

mod access;
mod catalog;
mod checkout;
mod cookies;
mod dead_letters;
mod discovery;
mod edge;
mod emails;
mod errors;
mod helpers;
mod idempotency;
mod journey;
mod limits;
mod live;
mod marketplace;
mod observability;
mod platform;
mod robustness;
mod storefront;
mod streams;
mod tokens;
mod traces;
mod web;
