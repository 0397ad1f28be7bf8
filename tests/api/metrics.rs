//! Prometheus metrics on their own listener (`--metrics-listen`): scraped and parsed as
//! Prometheus would, they move with real requests, and never carry a token.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokendesk::domain::Role;

use crate::backend_tests;
use crate::helpers::{Backend, Presented, TestApp};
use crate::server::{free_port, ServerProcess};

backend_tests!(
    token_checks_cache_and_routes_are_counted_without_tokens,
    metrics_are_served_only_on_their_own_listener,
);

/// The server again, with metrics on a port of its own and the verified-token cache on.
async fn with_metrics(app: TestApp) -> TestApp {
    app.respawn_with(|config| {
        config.metrics_listen = Some("127.0.0.1:0".into());
        config.auth_cache_ms = 30_000;
    })
    .await
}

/// One scrape, parsed: each sample's name, labels and value.
struct Scrape {
    text: String,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Scrape {
    async fn of(app: &TestApp) -> Scrape {
        let address = app.metrics_address.as_ref().expect("metrics are on");
        let response = reqwest::get(format!("{address}/metrics")).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert_eq!(content_type, "text/plain; version=0.0.4");
        Scrape::parse(response.text().await.unwrap())
    }

    /// The text format: `# HELP`/`# TYPE` comments, then `name{label="value",...} number`.
    fn parse(text: String) -> Scrape {
        let samples = text
            .lines()
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| {
                let (series, value) = line.rsplit_once(' ').expect("a value");
                let value: f64 = value.parse().expect("a number");
                match series.split_once('{') {
                    None => (series.to_owned(), BTreeMap::new(), value),
                    Some((name, labels)) => {
                        let labels = labels.strip_suffix('}').expect("labels end");
                        (name.to_owned(), parse_labels(labels), value)
                    }
                }
            })
            .collect();
        Scrape { text, samples }
    }

    /// The value of the one sample of `name` with exactly these labels.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let wanted: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples
            .iter()
            .find(|(n, l, _)| n == name && *l == wanted)
            .map(|(_, _, value)| *value)
    }

    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels)
            .unwrap_or_else(|| panic!("no {name} {labels:?} in\n{}", self.text))
    }

    /// Every distinct value of `label` among the samples of `name`.
    fn label_values(&self, name: &str, label: &str) -> Vec<String> {
        let mut values: Vec<String> = self
            .samples
            .iter()
            .filter(|(n, _, _)| n == name)
            .filter_map(|(_, labels, _)| labels.get(label).cloned())
            .collect();
        values.sort();
        values.dedup();
        values
    }
}

/// `a="x",b="y \"quoted\""`: values are quoted, with `\\`, `\"` and `\n` escaped.
fn parse_labels(mut rest: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").expect("name=\"value\"");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().expect("the value ends") {
                (i, '"') => break i,
                (_, '\\') => match chars.next().expect("an escape").1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (_, c) => value.push(c),
            }
        };
        labels.insert(name.to_owned(), value);
        rest = after[end + 1..].trim_start_matches(',');
    }
    labels
}

const CHECKS: &str = "tokendesk_token_checks_total";
const REQUESTS: &str = "tokendesk_http_request_duration_seconds_count";

async fn token_checks_cache_and_routes_are_counted_without_tokens(app: TestApp) {
    let app = with_metrics(app).await;
    app.setup_admin().await;
    let grace = app
        .create_user("grace@example.com", "a-long-enough-password-1", Role::User)
        .await;
    // Made by hand, so no change is announced to this instance's cache while it is measured.
    let (_, good) = app.token_by_hand(grace.id, "good", &["tag:read"]).await;
    let (revoked_id, revoked) = app.token_by_hand(grace.id, "revoked", &["tag:read"]).await;
    app.db
        .run(move |c| tokendesk::tokens::store::revoke(c, revoked_id, grace.id))
        .await
        .unwrap();
    let before = Scrape::of(&app).await;
    let me_by_path = "/{token}/api/v1/me";
    let ok_before = before.counter(CHECKS, &[("result", "ok")]);
    let revoked_before = before.counter(CHECKS, &[("result", "revoked")]);
    let hits_before = before.counter("tokendesk_token_cache_hits_total", &[]);
    let misses_before = before.counter("tokendesk_token_cache_misses_total", &[]);
    let labels = [("route", me_by_path), ("method", "GET"), ("status", "2xx")];
    let by_path_before = before.value(REQUESTS, &labels).unwrap_or(0.0);

    // The good token twice in the path (the second from the cache), the revoked one once.
    let api = app.api();
    for _ in 0..2 {
        let response = api.get("/me", &good, Presented::PathSegment).send().await;
        assert_eq!(response.unwrap().status(), StatusCode::OK);
    }
    assert_eq!(api.me(&revoked).await.status(), StatusCode::UNAUTHORIZED);

    let after = Scrape::of(&app).await;
    assert_eq!(after.counter(CHECKS, &[("result", "ok")]) - ok_before, 2.0);
    assert_eq!(
        after.counter(CHECKS, &[("result", "revoked")]) - revoked_before,
        1.0
    );
    let hits = after.counter("tokendesk_token_cache_hits_total", &[]) - hits_before;
    let misses = after.counter("tokendesk_token_cache_misses_total", &[]) - misses_before;
    assert_eq!((hits, misses), (1.0, 2.0), "the repeat is a hit");
    assert_eq!(after.counter(REQUESTS, &labels) - by_path_before, 2.0);

    // Results and routes are a fixed set; neither token, nor its id, is in any label.
    assert!(after.label_values(CHECKS, "result").len() <= 11);
    assert!(after
        .label_values(REQUESTS, "route")
        .iter()
        .all(|route| route.starts_with('/') || route == "unmatched"));
    for secret in [&good, &revoked] {
        assert!(!after.text.contains(secret.as_str()));
        assert!(!after.text.contains(&secret[4..16]));
    }
    assert!(!after.text.contains(tokendesk::tokens::TOKEN_PREFIX));

    // The pool's levels are read when scraped; the Last-used writer's run every 0.3 s here.
    let in_use = after.counter("tokendesk_db_pool_connections_in_use", &[]);
    let idle = after.counter("tokendesk_db_pool_connections_idle", &[]);
    assert!(in_use + idle >= 1.0, "the pool holds a connection");
    after.counter("tokendesk_db_pool_wait_duration_seconds_count", &[]);
    after.counter("tokendesk_db_pool_timeouts_total", &[]);
    after.counter("tokendesk_last_used_backlog_tokens", &[]);
    let heard = after.counter("tokendesk_cache_invalidations_received_total", &[]);
    // Caches serve: SQLite always, PostgreSQL once listening (from its first moments).
    crate::usage::eventually("caches on", || async {
        let scrape = Scrape::of(&app).await;
        (scrape.counter("tokendesk_caches_on", &[]) == 1.0).then_some(())
    })
    .await;
    if app.backend() == Backend::Postgres {
        // A change announced by another instance (the test's own connection) is heard.
        app.token_for(grace.id, "elsewhere", &["tag:read"]).await;
        crate::usage::eventually("the change to be heard", || async {
            let scrape = Scrape::of(&app).await;
            (scrape.counter("tokendesk_cache_invalidations_received_total", &[]) > heard)
                .then_some(())
        })
        .await;
    }
    let started = Instant::now();
    loop {
        let scrape = Scrape::of(&app).await;
        if scrape.counter("tokendesk_last_used_flush_duration_seconds_count", &[]) >= 1.0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the good token's use is written"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn metrics_are_served_only_on_their_own_listener(app: TestApp) {
    let app = with_metrics(app).await;
    app.setup_admin().await;
    let client = reqwest::Client::new();
    let main = client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(main.status(), StatusCode::NOT_FOUND);

    // The metrics listener serves /metrics and nothing else: no page, no API, no other method.
    let metrics = app.metrics_address.as_ref().unwrap();
    for path in ["/", "/healthz", "/api/v1/me", "/metrics/x"] {
        let response = client.get(format!("{metrics}{path}")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let post = client.post(format!("{metrics}/metrics")).send().await;
    assert_eq!(post.unwrap().status(), StatusCode::NOT_FOUND);
    // The main listener's /metrics is an unknown path there, like any other.
    let routes = Scrape::of(&app).await.label_values(REQUESTS, "route");
    assert!(routes.contains(&"unmatched".to_owned()), "{routes:?}");
    assert!(!routes.contains(&"/metrics".to_owned()), "{routes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_setting_nothing_more_listens() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("tokendesk.db").display());
    let plain = ServerProcess::start(&url, &[]).await;
    assert_eq!(listening_ports(plain.pid()), vec![plain.port]);
    drop(plain);

    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let metered = ServerProcess::start(&url, &[("TOKENDESK_METRICS_LISTEN", &listen)]).await;
    let mut expected = vec![metered.port, port];
    expected.sort();
    assert_eq!(listening_ports(metered.pid()), expected);
    let scraped = reqwest::get(format!("http://{listen}/metrics"))
        .await
        .unwrap();
    assert_eq!(scraped.status(), StatusCode::OK);
    let text = scraped.text().await.unwrap();
    assert!(text.contains("# HELP tokendesk_token_checks_total "));
}

/// The TCP ports process `pid` listens on, from its file descriptors and /proc/net/tcp.
fn listening_ports(pid: u32) -> Vec<u16> {
    let sockets: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            let inode = target.strip_prefix("socket:[")?.strip_suffix(']')?;
            Some(inode.to_owned())
        })
        .collect();
    let mut ports: Vec<u16> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    // local address, state (0A: listening), inode
                    let (local, state, inode) = (fields[1], fields[3], fields[9]);
                    let port = local.rsplit_once(':')?.1;
                    (state == "0A" && sockets.iter().any(|s| s == inode))
                        .then(|| u16::from_str_radix(port, 16).unwrap())
                })
                .collect::<Vec<_>>()
        })
        .collect();
    ports.sort();
    ports.dedup();
    ports
}
