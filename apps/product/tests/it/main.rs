//! Integration tests of the product service: each test starts its own nats-server, Redis and
//! PostgreSQL database, runs the real `Application` on them and calls it over NATS the way
//! other services and the gateway do.

mod catalog;
mod categories;
mod deadlines;
mod degraded;
mod events;
mod faults;
mod helpers;
mod inventory;
mod listing;
mod seed;
mod sellers;
mod transport;
