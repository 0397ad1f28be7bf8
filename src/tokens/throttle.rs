//! Slows down token guessing: a client that presents too many bad tokens within a window is
//! answered 429 until the window has passed, whatever it presents. A client is one IPv4
//! address, or one IPv6 /64: a single host is routinely given a whole /64 and can pick a new
//! address in it for every request. Other clients are unaffected. Counts are per instance and
//! in memory: a restart forgives, and N instances allow N times the limit, which still turns
//! guessing a 190-bit secret from hopeless into more hopeless; the point is to keep scanners
//! off the database.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Clients tracked at most. A full tracker forgets some clients to count a new one (see
/// `make_room`), so it stays bounded and never stops counting.
const MAX_TRACKED: usize = 100_000;

pub struct FailureThrottle {
    /// Bad tokens allowed per client within `window`; 0 turns the throttle off.
    limit: u32,
    window: Duration,
    capacity: usize,
    clients: Mutex<HashMap<IpAddr, Failures>>,
    /// Lets the common case (nobody has failed lately) skip the lock.
    any_tracked: AtomicBool,
}

#[derive(Clone, Copy)]
struct Failures {
    window_start: Instant,
    last_failure: Instant,
    count: u32,
    blocked_until: Option<Instant>,
}

impl Failures {
    fn is_blocked(&self, now: Instant) -> bool {
        self.blocked_until.is_some_and(|until| until > now)
    }

    /// Whether forgetting this entry would forgive something: a count still in its window,
    /// or a block still running.
    fn matters(&self, now: Instant, window: Duration) -> bool {
        now.duration_since(self.window_start) < window || self.is_blocked(now)
    }
}

/// Whom the counts are kept for: an IPv4 address, or the /64 an IPv6 address is in (a host is
/// usually given a whole /64). The sign-in limit counts by it too.
pub fn client_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        v4 => v4,
    }
}

impl FailureThrottle {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self::with_capacity(limit, window, MAX_TRACKED)
    }

    pub fn with_capacity(limit: u32, window: Duration, capacity: usize) -> Self {
        Self {
            limit,
            window,
            capacity: capacity.max(1),
            clients: Mutex::new(HashMap::new()),
            any_tracked: AtomicBool::new(false),
        }
    }

    /// How long the client at `ip` must still wait, if it is blocked.
    pub fn blocked_for(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        if self.limit == 0 || !self.any_tracked.load(Ordering::Relaxed) {
            return None;
        }
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        let until = clients.get(&client_of(ip))?.blocked_until?;
        (until > now).then(|| until - now)
    }

    /// Counts a bad token from `ip`; the one that reaches the limit starts the block.
    pub fn record_failure(&self, ip: IpAddr, now: Instant) {
        if self.limit == 0 {
            return;
        }
        let client = client_of(ip);
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if clients.len() >= self.capacity && !clients.contains_key(&client) {
            self.make_room(&mut clients, now);
        }
        let entry = clients.entry(client).or_insert(Failures {
            window_start: now,
            last_failure: now,
            count: 0,
            blocked_until: None,
        });
        if now.duration_since(entry.window_start) >= self.window {
            *entry = Failures {
                window_start: now,
                last_failure: now,
                count: 0,
                blocked_until: entry.blocked_until.filter(|until| *until > now),
            };
        }
        entry.count += 1;
        entry.last_failure = now;
        if entry.count >= self.limit && entry.blocked_until.is_none() {
            entry.blocked_until = Some(now + self.window);
        }
        self.any_tracked.store(true, Ordering::Relaxed);
    }

    /// Frees at least one place in a full tracker. First it forgets whatever no longer
    /// matters; if everything still does, it forgets the tenth of the clients that failed least
    /// recently, counting clients before blocked ones. So a flood of new addresses is counted
    /// like anyone else, and it cannot free a blocked client unless blocked clients fill
    /// nine tenths of the tracker. The tenth at a time keeps the cost of a flood per failure
    /// constant rather than a scan of the whole tracker each time.
    fn make_room(&self, clients: &mut HashMap<IpAddr, Failures>, now: Instant) {
        clients.retain(|_, f| f.matters(now, self.window));
        if clients.len() < self.capacity {
            return;
        }
        let mut eldest: Vec<_> = clients
            .iter()
            .map(|(client, f)| (f.is_blocked(now), f.last_failure, *client))
            .collect();
        let forget = (self.capacity / 10).max(1);
        eldest.select_nth_unstable(forget - 1);
        for (_, _, client) in &eldest[..forget] {
            clients.remove(client);
        }
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

    fn v6(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_ipv6_client_is_its_whole_64() {
        let throttle = FailureThrottle::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        // A new address of the same /64 for every guess.
        for host in [
            "2001:db8:1:2::1",
            "2001:db8:1:2::2",
            "2001:db8:1:2:ffff:ffff:ffff:ffff",
        ] {
            throttle.record_failure(v6(host), t0);
        }
        assert_eq!(
            throttle.blocked_for(v6("2001:db8:1:2:abcd::9"), t0),
            Some(Duration::from_secs(60)),
            "every address of the /64 is blocked"
        );
        assert_eq!(
            throttle.blocked_for(v6("2001:db8:1:3::1"), t0),
            None,
            "the next /64 is someone else"
        );
    }

    #[test]
    fn ipv4_counts_per_address_also_when_it_arrives_as_ipv6() {
        let throttle = FailureThrottle::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d, all in one /64.
        for _ in 0..3 {
            throttle.record_failure(v6("::ffff:10.0.0.1"), t0);
        }
        assert!(throttle.blocked_for(A, t0).is_some());
        assert_eq!(throttle.blocked_for(v6("::ffff:10.0.0.2"), t0), None);
        assert_eq!(throttle.blocked_for(B, t0), None);
    }

    fn address(i: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(0x0a01_0000 + i))
    }

    #[test]
    fn a_full_tracker_still_counts_a_new_attacker() {
        let throttle = FailureThrottle::with_capacity(3, Duration::from_secs(60), 10);
        let t0 = Instant::now();
        for i in 0..1000 {
            throttle.record_failure(address(i), t0 + Duration::from_millis(u64::from(i)));
        }
        let later = t0 + Duration::from_secs(2);
        for _ in 0..3 {
            throttle.record_failure(A, later);
        }
        assert!(
            throttle.blocked_for(A, later).is_some(),
            "1000 addresses did not make room for uncounted guessing"
        );
        assert!(throttle.clients.lock().unwrap().len() <= 10, "bounded");
    }

    #[test]
    fn a_flood_of_new_addresses_does_not_free_a_blocked_client() {
        let throttle = FailureThrottle::with_capacity(3, Duration::from_secs(60), 10);
        let t0 = Instant::now();
        for _ in 0..3 {
            throttle.record_failure(A, t0);
        }
        for i in 0..1000 {
            throttle.record_failure(address(i), t0 + Duration::from_millis(u64::from(i) + 1));
        }
        assert!(throttle
            .blocked_for(A, t0 + Duration::from_secs(2))
            .is_some());
    }

    #[test]
    fn a_full_tracker_forgets_what_no_longer_matters_first() {
        let throttle = FailureThrottle::with_capacity(3, Duration::from_secs(60), 3);
        let t0 = Instant::now();
        let at = |secs| t0 + Duration::from_secs(secs);
        // A is blocked at 50 s for 60 s, though its window (from 0 s) ends at 60 s.
        for secs in [0, 40, 50] {
            throttle.record_failure(A, at(secs));
        }
        let (c, d, e) = (address(3), address(4), address(5));
        throttle.record_failure(B, at(10)); // its window ends at 70 s
        throttle.record_failure(c, at(30));
        throttle.record_failure(c, at(30));
        // Full at 75 s: B's count has expired and goes; blocked A and counting C stay.
        throttle.record_failure(d, at(75));
        assert!(throttle.blocked_for(A, at(75)).is_some());
        throttle.record_failure(c, at(76));
        assert!(
            throttle.blocked_for(c, at(76)).is_some(),
            "C's count was kept"
        );
        // Full again at 80 s with all three mattering: D, the client that failed least
        // recently and is not blocked, is forgotten for E.
        throttle.record_failure(e, at(80));
        let clients = throttle.clients.lock().unwrap();
        assert!(clients.contains_key(&A) && clients.contains_key(&c) && clients.contains_key(&e));
        assert!(!clients.contains_key(&d));
    }
}
