//! Integration tests of the voucher service: each test starts its own nats-server and
//! PostgreSQL database, runs the real service on them (and the real shop service beside it
//! where a test needs shops) and calls it over NATS the way the gateway and the checkout do.

mod checks;
mod helpers;
mod redemptions;
mod returns;
mod shops;
mod vouchers;
