//! The servers testkit starts are real, reachable and private.

mod nats;
mod postgres;
mod redis;
