//! Integration tests of the telemetry crate: the admin port and the trace exporter, over real
//! HTTP and a real NATS server.

mod admin;
mod traces;
