//! Integration tests of the shop service: each test starts its own nats-server and
//! PostgreSQL database, runs the real service on them and calls it over NATS the way the
//! gateway and other services do.

mod access;
mod contract;
mod deadlines;
mod events;
mod helpers;
mod lifecycle;
mod limits;
mod listing;
mod seed;
mod validation;
