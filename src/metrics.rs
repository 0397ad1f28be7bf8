//! Prometheus metrics: one registry, built once at start and handed to the few places that
//! record (the authenticator, the Last-used writer, the pool, the request timer). Recording is
//! an atomic add on a handle resolved ahead of time; nothing formats a label per request.
//! Served only on `--metrics-listen`, by a server of its own (see `startup`).

use prometheus::core::Collector;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

use crate::db::PoolWaits;
use crate::http::timing::RequestTimes;

/// The content type of the text format served at `/metrics`.
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// Seconds, from half a millisecond (a cached token check) to five seconds (the pool's timeout).
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

pub struct Metrics {
    registry: Registry,
    /// By `result`: `ok`, or why the token was refused.
    pub token_checks: IntCounterVec,
    pub cache_hits: IntCounter,
    pub cache_misses: IntCounter,
    /// Moved by the PostgreSQL listener (`db::invalidation`) for each change heard.
    pub invalidations: IntCounter,
    pub last_used_flush: Histogram,
    last_used_backlog: IntGauge,
    caches_on: IntGauge,
    pool_in_use: IntGauge,
    pool_idle: IntGauge,
    pub pool: PoolWaits,
    requests: HistogramVec,
}

/// What is read when scraped rather than counted as it happens.
pub struct Levels {
    pub pool_connections: u32,
    pub pool_idle: u32,
    pub last_used_backlog: usize,
    /// Whether caches may serve (on PostgreSQL: while other instances' changes are heard).
    pub caches_on: bool,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| {
            register(
                &registry,
                IntCounter::new(name, help).expect("a valid counter"),
            )
        };
        let gauge = |name: &str, help: &str| {
            register(&registry, IntGauge::new(name, help).expect("a valid gauge"))
        };
        let histogram = |name: &str, help: &str| {
            let opts = HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec());
            register(
                &registry,
                Histogram::with_opts(opts).expect("a valid histogram"),
            )
        };
        let token_checks = register(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "tokendesk_token_checks_total",
                    "Token checks (API and /auth/verify) by result: ok, or why the token was refused.",
                ),
                &["result"],
            )
            .expect("a valid counter"),
        );
        let requests = register(
            &registry,
            HistogramVec::new(
                HistogramOpts::new(
                    "tokendesk_http_request_duration_seconds",
                    "Time to answer a request, by route pattern (unmatched: no route), method and \
                     status class.",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
                &["route", "method", "status"],
            )
            .expect("a valid histogram"),
        );
        Self {
            token_checks,
            cache_hits: counter(
                "tokendesk_token_cache_hits_total",
                "Token checks answered from the verified-token cache.",
            ),
            cache_misses: counter(
                "tokendesk_token_cache_misses_total",
                "Token checks that read the database while the verified-token cache is on.",
            ),
            invalidations: counter(
                "tokendesk_cache_invalidations_received_total",
                "Times changes made through other instances were heard (PostgreSQL NOTIFY; several at once count once), each dropping the caches.",
            ),
            last_used_flush: histogram(
                "tokendesk_last_used_flush_duration_seconds",
                "Time the background writer took to write a batch of Last-used times and usage.",
            ),
            last_used_backlog: gauge(
                "tokendesk_last_used_backlog_tokens",
                "Tokens whose Last-used time waits in memory for the next write.",
            ),
            caches_on: gauge(
                "tokendesk_caches_on",
                "1 while this instance may serve from its caches: always on SQLite; on PostgreSQL while it hears other instances' changes.",
            ),
            pool_in_use: gauge(
                "tokendesk_db_pool_connections_in_use",
                "Pooled database connections handed out.",
            ),
            pool_idle: gauge(
                "tokendesk_db_pool_connections_idle",
                "Pooled database connections open and waiting for work.",
            ),
            pool: PoolWaits {
                waits: histogram(
                    "tokendesk_db_pool_wait_duration_seconds",
                    "Time a checkout waited for a pooled database connection.",
                ),
                timeouts: counter(
                    "tokendesk_db_pool_timeouts_total",
                    "Checkouts that gave up waiting for a pooled database connection.",
                ),
            },
            requests,
            registry,
        }
    }

    pub fn request_times(&self) -> RequestTimes {
        RequestTimes::new(self.requests.clone())
    }

    /// Everything, in the Prometheus text format ([`CONTENT_TYPE`]).
    pub fn render(&self, levels: Levels) -> String {
        let in_use = levels.pool_connections.saturating_sub(levels.pool_idle);
        self.pool_in_use.set(i64::from(in_use));
        self.pool_idle.set(i64::from(levels.pool_idle));
        self.last_used_backlog
            .set(i64::try_from(levels.last_used_backlog).unwrap_or(i64::MAX));
        self.caches_on.set(i64::from(levels.caches_on));
        let mut text = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut text)
            .expect("the text format encodes any metric");
        String::from_utf8(text).expect("the text format is UTF-8")
    }
}

/// Registers `metric` (once: each is made once, in [`Metrics::new`]) and returns its handle.
fn register<M: Collector + Clone + 'static>(registry: &Registry, metric: M) -> M {
    registry
        .register(Box::new(metric.clone()))
        .expect("each metric is registered once");
    metric
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_named_for_tokendesk_and_explained() {
        let metrics = Metrics::new();
        metrics.token_checks.with_label_values(&["ok"]).inc();
        metrics
            .request_times()
            .series("/healthz", "GET", "2xx")
            .observe(0.001);
        let text = metrics.render(Levels {
            pool_connections: 3,
            pool_idle: 1,
            last_used_backlog: 7,
            caches_on: true,
        });
        let names: Vec<&str> = text
            .lines()
            .filter_map(|line| line.strip_prefix("# TYPE "))
            .filter_map(|rest| rest.split(' ').next())
            .collect();
        assert_eq!(names.len(), 12, "{text}");
        for name in names {
            assert!(name.starts_with("tokendesk_"), "{name}");
            assert!(text.contains(&format!("# HELP {name} ")), "{name}");
        }
        assert!(text.contains("tokendesk_db_pool_connections_in_use 2\n"));
        assert!(text.contains("tokendesk_db_pool_connections_idle 1\n"));
        assert!(text.contains("tokendesk_last_used_backlog_tokens 7\n"));
        assert!(text.contains("tokendesk_caches_on 1\n"));
    }
}
