//! The NATS service runtime every service runs on.
//!
//! A service is a set of [`Endpoint`]s (generated from its contract) registered as one NATS
//! micro service, so `nats micro ls|info|stats` describe it and replicas share its queue group.
//! The runtime guarantees one reply per request (panics and deadlines included), bounds the
//! requests in flight per endpoint, and wraps every handler in tracing, metrics and deadline
//! layers. [`Client`] is the other side: typed calls between services, raw calls for the
//! gateway.
//!
//! It must never know about a particular service, HTTP, or any storage.

mod client;
mod codec;
mod context;
mod error;
pub mod headers;
pub mod layers;
mod method;
mod request;
pub mod rules;
mod server;

pub use client::{Client, RawReply};
pub use codec::{Codec, Message};
pub use context::{Context, Principal, roles};
pub use error::{Error, ErrorBody, ErrorCode, FieldViolation, Violations};
pub use method::{Access, Method, MethodDescriptor, ServiceDescriptor};
pub use request::{Reply, Request};
pub use server::{BoxService, Endpoint, Limits, RunningService, Service};
