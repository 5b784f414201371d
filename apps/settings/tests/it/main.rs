//! Integration tests of the settings service: each test starts its own nats-server and
//! PostgreSQL database, runs the real service on them, calls it over NATS the way the gateway
//! does, and reads the bucket the way every other service does (pkg/settings, on a
//! connection of its own under another service's identity).

mod changes;
mod distribution;
mod helpers;
