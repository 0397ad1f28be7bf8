//! Faults and load against the real binary: kill -9 while tokens are created, 32 writers beside
//! 32 readers, two instances on one PostgreSQL, PostgreSQL stopped under load. Each test prints
//! its figures (`cargo test -- --show-output`).

// Shared with tests/api; this binary uses only part of them.
#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;
#[allow(dead_code)]
#[path = "../api/nginx.rs"]
mod nginx;
#[allow(dead_code)]
#[path = "../api/server.rs"]
mod server;

mod concurrency;
mod crash;
mod deployment;
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
/// It drops idle connections after 2 s, well before the server's 5 s keep-alive closes them: a
/// request sent on a connection the server is closing at that instant fails in transit, which
/// says nothing about the server.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(2))
        .build()
        .unwrap()
}

/// An error with its causes, so a transport error says what happened underneath.
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(&format!(": {inner}"));
        cause = inner.source();
    }
    text
}
