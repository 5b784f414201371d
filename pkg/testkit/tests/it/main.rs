//! The servers testkit starts are real, reachable and private.

mod nats;
mod otlp;
mod postgres;
mod redis;
