//! What time it is, for the parts of the server that act on time windows (the verified-token
//! cache, expiry checks, the bad-token limit). They read one `Clock`, so a test can move time
//! forward instead of sleeping through a window.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{NaiveDateTime, Utc};

/// The system clock, or one a test moves forward (`Clock::adjustable`).
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// Milliseconds added to the system clock; `None` for the plain system clock, so the hot
    /// path pays nothing for being testable.
    ahead_ms: Option<Arc<AtomicU64>>,
}

impl Clock {
    pub fn system() -> Self {
        Self::default()
    }

    /// The system clock, which `advance` moves ahead.
    pub fn adjustable() -> Self {
        Self {
            ahead_ms: Some(Arc::new(AtomicU64::new(0))),
        }
    }

    fn ahead(&self) -> Duration {
        self.ahead_ms.as_ref().map_or(Duration::ZERO, |ms| {
            Duration::from_millis(ms.load(Ordering::Relaxed))
        })
    }

    /// Now, in UTC, as the database stores times.
    pub fn now(&self) -> NaiveDateTime {
        let now = Utc::now().naive_utc();
        match &self.ahead_ms {
            None => now,
            Some(_) => now + self.ahead(),
        }
    }

    /// Now, for measuring how long ago something happened on this instance.
    pub fn instant(&self) -> Instant {
        Instant::now() + self.ahead()
    }

    /// Moves an adjustable clock ahead by `by`.
    ///
    /// # Panics
    /// On the system clock: only a test moves time.
    pub fn advance(&self, by: Duration) {
        let ms = self.ahead_ms.as_ref().expect("an adjustable clock");
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        ms.fetch_add(by, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_adjustable_clock_moves_both_readings_ahead() {
        let clock = Clock::adjustable();
        let (before, before_instant) = (Utc::now().naive_utc(), Instant::now());
        clock.advance(Duration::from_secs(3600));
        assert!(clock.now() >= before + chrono::Duration::hours(1));
        assert!(clock.instant() >= before_instant + Duration::from_secs(3600));
        let copy = clock.clone();
        copy.advance(Duration::from_secs(60));
        assert!(
            clock.now() >= before + chrono::Duration::minutes(61),
            "copies share one time"
        );
    }

    #[test]
    fn the_system_clock_is_not_ahead() {
        let clock = Clock::system();
        let now = clock.now();
        assert!((now - Utc::now().naive_utc()).num_seconds().abs() < 2);
    }
}
