//! The time the service's own rules run on: when email links expire, and when sessions were
//! started and revoked.
//!
//! It is the system clock, plus an offset that only tests move ([`Clock::advance`]), so that a
//! test can prove a link expires after 30 minutes without waiting 30 minutes. The running
//! service never moves it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// The system clock, possibly moved forward; clones share the offset.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    /// The system clock as it is.
    pub fn system() -> Self {
        Self::default()
    }

    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        self.now().timestamp_millis()
    }

    /// Moves this clock, and every clone of it, `by` forward: for tests of expiry.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_every_clone() {
        let clock = Clock::system();
        let clone = clock.clone();
        let before = clone.now();
        clock.advance(Duration::from_secs(3_600));
        let moved = clone.now() - before;
        assert!(moved >= chrono::Duration::seconds(3_600), "{moved}");
        assert!(moved < chrono::Duration::seconds(3_660), "{moved}");
    }
}
