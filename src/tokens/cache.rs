//! Short-lived caches of what the database said. The one of verified tokens keeps the hot path
//! of a token check off the database; the one of admin inventory totals spares a count over
//! every token of the organisation on each page view. Correctness rules (tested in
//! tests/api/auth_cache.rs):
//! - a change made on this instance (revoke, regenerate, role change, deactivation) goes through
//!   `Db::write`, which moves the write generation: every entry cached before it is stale at once;
//! - a change made by another instance through `Db::write` moves it too, as soon as it is heard
//!   (PostgreSQL `NOTIFY`, see `db::invalidation`); while it may go unheard, nothing is cached;
//! - anything else (a change made in the database by hand) is seen within `ttl` (30 s by default);
//! - expiry is checked on every hit against the cached expiry time.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::clock::Clock;

use crate::tokens::Authenticated;

/// Beyond this many entries, stale ones are dropped before adding (and all, if none are stale).
const MAX_ENTRIES: usize = 200_000;

/// Verified tokens by digest.
pub type AuthCache = FreshCache<Authenticated>;

/// Values by key, each good until `ttl` has passed or the database's write generation moved.
pub struct FreshCache<V> {
    ttl: Duration,
    clock: Clock,
    entries: RwLock<HashMap<String, Entry<V>>>,
}

/// The value is behind an `Arc` so that the table's slots stay small: the table has room for
/// more entries than it holds, and growing it moves only the slots.
struct Entry<V> {
    value: Arc<V>,
    generation: u64,
    cached_at: Instant,
}

impl<V: Clone> FreshCache<V> {
    /// A zero `ttl` turns caching off.
    pub fn new(ttl: Duration, clock: Clock) -> Self {
        Self {
            ttl,
            clock,
            entries: RwLock::new(HashMap::new()),
        }
    }

    pub fn is_on(&self) -> bool {
        !self.ttl.is_zero()
    }

    /// `generation` is `Db::cache_generation`: `None` serves nothing.
    pub fn get(&self, key: &str, generation: Option<u64>) -> Option<V> {
        let generation = generation.filter(|_| !self.ttl.is_zero())?;
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(key)?;
        let age = self
            .clock
            .instant()
            .saturating_duration_since(entry.cached_at);
        (entry.generation == generation && age < self.ttl).then(|| V::clone(&entry.value))
    }

    /// `generation` must have been read before the lookup that produced `value`; `None` keeps
    /// nothing.
    pub fn put(&self, key: String, value: V, generation: Option<u64>) {
        let Some(generation) = generation.filter(|_| !self.ttl.is_zero()) else {
            return;
        };
        let now = self.clock.instant();
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            entries.retain(|_, e| {
                e.generation == generation && now.saturating_duration_since(e.cached_at) < ttl
            });
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(
            key,
            Entry {
                value: Arc::new(value),
                generation,
                cached_at: now,
            },
        );
    }
}
