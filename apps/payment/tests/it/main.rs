//! Integration tests of the payment service: each test starts its own nats-server and
//! PostgreSQL database, runs the real service on them and calls it over NATS the way the
//! gateway and the checkout do.

mod access;
mod faults;
mod helpers;
mod idempotency;
mod methods;
mod payments;
