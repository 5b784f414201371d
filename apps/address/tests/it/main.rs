//! Integration tests of the address service: each test starts its own nats-server and
//! PostgreSQL database, runs the real `Application` on them and calls it over NATS the way
//! the gateway does, as different users.

mod concurrency;
mod crud;
mod database;
mod deadlines;
mod defaults;
mod helpers;
mod isolation;
mod validation;
