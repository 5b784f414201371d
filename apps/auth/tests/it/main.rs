//! Integration tests of the auth service: each test starts its own nats-server, Redis and
//! PostgreSQL database, runs the real `Application` on them and calls it over NATS the way
//! the gateway does.

mod accounts;
mod admins;
mod degraded;
mod email_flows;
mod events;
mod helpers;
mod keys;
mod limits;
mod sessions;
mod trust;
