//! Integration tests of the user service: each test starts its own nats-server and PostgreSQL
//! database, runs the real `Application` on them, publishes `user.registered` events the way
//! the auth service's outbox relay does, and calls the service over NATS the way the gateway
//! does. `store` is the conformance suite of both profile stores.

mod admin;
mod events;
mod helpers;
mod profiles;
mod store;
