//! Faults and load against the real binary: kill -9 while tokens are created, 32 writers beside
//! 32 readers, two instances on one PostgreSQL, PostgreSQL stopped under load. Each test prints
//! its figures (`cargo test -- --show-output`).

// Shared with tests/api; this binary uses only part of them.
#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;
#[allow(dead_code)]
#[path = "../api/server.rs"]
mod server;

mod concurrency;
mod crash;
mod instances;
mod outage;

use std::time::Duration;

/// These tests measure under load on a 2-core machine: one at a time, so none skews another.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Latency percentiles of a set of samples, in milliseconds.
pub fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort_unstable();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index].as_secs_f64() * 1000.0
}

/// A client that gives up on a request after 10 s, so a hang shows as an error, not a stall.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}
