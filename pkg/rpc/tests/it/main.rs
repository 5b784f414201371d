//! The runtime against a real nats-server: one reply per request whatever the handler does,
//! access checks, deadlines (queued time included), bounded concurrency, discovery through $SRV, graceful drain, readiness.

mod support;

mod deadlines;
mod discovery;
mod metrics;
mod readiness;
mod replies;
mod shutdown;
