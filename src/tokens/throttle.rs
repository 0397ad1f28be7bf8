//! Slows down token guessing: a client address that presents too many bad tokens within a
//! window is answered 429 until the window has passed, whatever it presents. Other addresses
//! are unaffected. Counts are per instance and in memory: a restart forgives, and N instances
//! allow N times the limit, which still turns guessing a 190-bit secret from hopeless into
//! more hopeless; the point is to keep scanners off the database.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Addresses tracked at most; past this, the oldest-windowed entries are dropped first.
const MAX_TRACKED: usize = 100_000;

pub struct FailureThrottle {
    /// Bad tokens allowed per address within `window`; 0 turns the throttle off.
    limit: u32,
    window: Duration,
    clients: Mutex<HashMap<IpAddr, Failures>>,
    /// Lets the common case (nobody has failed lately) skip the lock.
    any_tracked: AtomicBool,
}

#[derive(Clone, Copy)]
struct Failures {
    window_start: Instant,
    count: u32,
    blocked_until: Option<Instant>,
}

impl FailureThrottle {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            clients: Mutex::new(HashMap::new()),
            any_tracked: AtomicBool::new(false),
        }
    }

    /// How long `client` must still wait, if it is blocked.
    pub fn blocked_for(&self, client: IpAddr, now: Instant) -> Option<Duration> {
        if self.limit == 0 || !self.any_tracked.load(Ordering::Relaxed) {
            return None;
        }
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        let until = clients.get(&client)?.blocked_until?;
        (until > now).then(|| until - now)
    }

    /// Counts a bad token from `client`; the one that reaches the limit starts the block.
    pub fn record_failure(&self, client: IpAddr, now: Instant) {
        if self.limit == 0 {
            return;
        }
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if clients.len() >= MAX_TRACKED && !clients.contains_key(&client) {
            let window = self.window;
            clients.retain(|_, f| now.duration_since(f.window_start) < window);
            if clients.len() >= MAX_TRACKED {
                return;
            }
        }
        let entry = clients.entry(client).or_insert(Failures {
            window_start: now,
            count: 0,
            blocked_until: None,
        });
        if now.duration_since(entry.window_start) >= self.window {
            *entry = Failures {
                window_start: now,
                count: 0,
                blocked_until: entry.blocked_until.filter(|until| *until > now),
            };
        }
        entry.count += 1;
        if entry.count >= self.limit && entry.blocked_until.is_none() {
            entry.blocked_until = Some(now + self.window);
        }
        self.any_tracked.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn blocks_one_address_at_the_limit_for_one_window() {
        let throttle = FailureThrottle::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        throttle.record_failure(A, t0);
        throttle.record_failure(A, t0 + Duration::from_secs(1));
        assert_eq!(throttle.blocked_for(A, t0 + Duration::from_secs(2)), None);
        throttle.record_failure(A, t0 + Duration::from_secs(2));
        assert_eq!(
            throttle.blocked_for(A, t0 + Duration::from_secs(2)),
            Some(Duration::from_secs(60))
        );
        assert_eq!(throttle.blocked_for(B, t0), None, "others are unaffected");
        assert_eq!(throttle.blocked_for(A, t0 + Duration::from_secs(62)), None);
    }

    #[test]
    fn failures_spread_wider_than_the_window_never_block() {
        let throttle = FailureThrottle::new(3, Duration::from_secs(10));
        let t0 = Instant::now();
        for i in 0..10 {
            let at = t0 + Duration::from_secs(6 * i);
            throttle.record_failure(A, at);
            assert_eq!(throttle.blocked_for(A, at), None, "failure {i}");
        }
    }

    #[test]
    fn zero_turns_it_off() {
        let throttle = FailureThrottle::new(0, Duration::from_secs(10));
        let t0 = Instant::now();
        for _ in 0..100 {
            throttle.record_failure(A, t0);
        }
        assert_eq!(throttle.blocked_for(A, t0), None);
    }
}
