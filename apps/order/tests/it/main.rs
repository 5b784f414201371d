//! Integration tests of the order service: each test starts its own nats-server, with the
//! order service and every service it calls on their own PostgreSQL databases, and calls
//! them over NATS the way the gateway does.

mod cancellation;
mod chaos;
mod checkout;
mod fulfilment;
mod helpers;
mod idempotency;
mod operations;
mod pricing;
mod quote;
mod recovery;
