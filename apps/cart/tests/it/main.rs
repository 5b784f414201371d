//! Integration tests of the cart service: each test starts its own nats-server, PostgreSQL
//! database and Redis, runs the real cart service and the real product service beside it,
//! and calls the cart over NATS the way the gateway and the checkout do, as guests and as
//! signed-in users.

mod checkout;
mod contract;
mod durability;
mod faults;
mod guests;
mod helpers;
mod limits;
mod merge;
mod pricing;
mod vouchers;
