//! The runtime against a real nats-server: one reply per request whatever the handler does,
//! access checks, deadlines, bounded concurrency, discovery through $SRV, graceful drain.

mod support;

mod discovery;
mod metrics;
mod replies;
mod shutdown;
