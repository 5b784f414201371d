//! Integration tests of the host: a real nats-server, a real admin port, and the order in
//! which a service's parts stop.

mod lifecycle;
mod redis;
