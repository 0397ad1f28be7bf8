//! 32 clients create, regenerate and revoke tokens while 32 others authenticate, for 30 s
//! (TOKENDESK_TEST_LOAD_SECS): no error but the expected 401s, and a revoked token is refused
//! from the moment its revoke returned. On SQLite this is the "database is locked" trap.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::seq::IndexedRandom;
use reqwest::StatusCode;
use tokendesk::domain::Role;

use crate::helpers::{csrf_token, location, revealed_secret, Browser, TestApp};
use crate::server::ServerProcess;
use crate::{backend_tests, client, percentile, ONE_AT_A_TIME};

backend_tests!(writers_and_readers_side_by_side);

const WRITERS: usize = 32;
const READERS: usize = 32;

fn load_duration() -> Duration {
    let secs = std::env::var("TOKENDESK_TEST_LOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    Duration::from_secs(secs)
}

/// What every client saw; anything in `errors` fails the test.
#[derive(Default)]
struct Tally {
    requests: AtomicU64,
    expected_401: AtomicU64,
    cycles: AtomicU64,
    errors: Mutex<Vec<String>>,
    read_latencies: Mutex<Vec<Duration>>,
    /// Secrets whose revoke (or regenerate) has returned: refused from then on.
    revoked: Mutex<Vec<String>>,
}

impl Tally {
    fn error(&self, what: String) {
        self.errors.lock().unwrap().push(what);
    }

    /// Checks an answer; `Err` ends the writer's cycle.
    fn expect(
        &self,
        what: &str,
        got: Result<StatusCode, String>,
        want: StatusCode,
    ) -> Result<(), ()> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        match got {
            Ok(status) if status == want => {
                if want == StatusCode::UNAUTHORIZED {
                    self.expected_401.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            }
            Ok(status) => {
                self.error(format!("{what}: {status}, expected {want}"));
                Err(())
            }
            Err(e) => {
                self.error(format!("{what}: {e}"));
                Err(())
            }
        }
    }
}

struct Writer {
    browser: Browser,
    csrf: String,
    manager: String,
    api: String,
}

async fn status_of(request: reqwest::RequestBuilder) -> Result<StatusCode, String> {
    request
        .send()
        .await
        .map(|r| r.status())
        .map_err(|e| crate::with_causes(&e))
}

impl Writer {
    /// Create (API), regenerate (the portal's form), revoke (API), checking each secret on the
    /// way: the old one refused as soon as it is replaced, the last one as soon as it is revoked.
    async fn cycle(
        &self,
        k: usize,
        i: u64,
        http: &reqwest::Client,
        tally: &Tally,
    ) -> Result<(), ()> {
        let me = |secret: &str| http.get(format!("{}/me", self.api)).bearer_auth(secret);
        let name = format!("w{k}-{i}");
        let response = http
            .post(format!("{}/personal-access-tokens", self.api))
            .bearer_auth(&self.manager)
            .json(&serde_json::json!({"name": name, "expires_in": "30", "scopes": ["tag:read"]}))
            .send()
            .await
            .map_err(|e| tally.error(format!("create: {}", crate::with_causes(&e))))?;
        tally.expect("create", Ok(response.status()), StatusCode::CREATED)?;
        let json: serde_json::Value = response
            .json()
            .await
            .map_err(|e| tally.error(e.to_string()))?;
        let (id, first) = (
            json["token"]["id"].as_i64().unwrap(),
            json["secret"].as_str().unwrap().to_owned(),
        );
        tally.expect("new token", status_of(me(&first)).await, StatusCode::OK)?;

        let response = self
            .browser
            .post(
                &format!("/developer/access-tokens/{id}/regenerate"),
                &[("csrf_token", &self.csrf), ("expires_in", "30")],
            )
            .await;
        tally.expect("regenerate", Ok(response.status()), StatusCode::SEE_OTHER)?;
        if location(&response) != "/developer/access-tokens/reveal" {
            tally.error(format!("regenerate led to {}", location(&response)));
            return Err(());
        }
        let reveal = self.browser.get("/developer/access-tokens/reveal").await;
        let html = reveal
            .text()
            .await
            .map_err(|e| tally.error(e.to_string()))?;
        let Some(second) = revealed_secret(&html) else {
            tally.error("the reveal page showed no token".into());
            return Err(());
        };
        tally.revoked.lock().unwrap().push(first.clone());
        tally.expect(
            "replaced token",
            status_of(me(&first)).await,
            StatusCode::UNAUTHORIZED,
        )?;
        let response = me(&second)
            .send()
            .await
            .map_err(|e| tally.error(e.to_string()))?;
        tally.expect("regenerated token", Ok(response.status()), StatusCode::OK)?;
        let json: serde_json::Value = response
            .json()
            .await
            .map_err(|e| tally.error(e.to_string()))?;
        let second_id = json["token"]["id"].as_i64().unwrap();

        let revoke = http
            .delete(format!("{}/personal-access-tokens/{second_id}", self.api))
            .bearer_auth(&self.manager);
        tally.expect("revoke", status_of(revoke).await, StatusCode::NO_CONTENT)?;
        tally.revoked.lock().unwrap().push(second.clone());
        tally.expect(
            "revoked token",
            status_of(me(&second)).await,
            StatusCode::UNAUTHORIZED,
        )?;
        tally.cycles.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// `WRITERS` people, each signed in at `server` with a token that manages tokens; returns them
/// as writers, and two live tokens of each for the readers.
async fn sign_up_writers(app: &TestApp, server: &ServerProcess) -> (Vec<Writer>, Vec<String>) {
    let mut writers = Vec::new();
    let mut live = Vec::new();
    for k in 0..WRITERS {
        let email = format!("writer{k}@example.com");
        let user = app
            .create_user(&email, "writer-password-1", Role::User)
            .await;
        let scopes = ["personalAccessToken:write", "tag:read"];
        let (_, manager) = app.token_for(user.id, "manager", &scopes).await;
        for n in 0..2 {
            let (_, secret) = app
                .token_for(user.id, &format!("live {n}"), &["tag:read"])
                .await;
            live.push(secret);
        }
        let mut browser = app.browser();
        browser.address = server.address.clone();
        let response = browser.sign_in(&email, "writer-password-1").await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{email} signs in");
        let csrf = csrf_token(&browser.page("/developer/access-tokens").await);
        let api = format!("{}/api/v1", server.address);
        writers.push(Writer {
            browser,
            csrf,
            manager,
            api,
        });
    }
    (writers, live)
}

/// A reader until `deadline`: checks live tokens, and one time in eight a secret already
/// revoked or replaced, which must be refused.
async fn read_until(
    deadline: Instant,
    http: reqwest::Client,
    api: String,
    live: Arc<Vec<String>>,
    tally: Arc<Tally>,
) {
    let mut latencies = Vec::new();
    let mut n = 0u64;
    while Instant::now() < deadline {
        n += 1;
        let revoked = n
            .is_multiple_of(8)
            .then(|| {
                let revoked = tally.revoked.lock().unwrap();
                revoked.choose(&mut rand::rng()).cloned()
            })
            .flatten();
        let (secret, want) = match revoked {
            Some(secret) => (secret, StatusCode::UNAUTHORIZED),
            None => (
                live.choose(&mut rand::rng()).unwrap().clone(),
                StatusCode::OK,
            ),
        };
        let sent = Instant::now();
        let got = status_of(http.get(format!("{api}/me")).bearer_auth(&secret)).await;
        latencies.push(sent.elapsed());
        let _ = tally.expect("read", got, want);
    }
    tally.read_latencies.lock().unwrap().extend(latencies);
}

async fn writers_and_readers_side_by_side(app: TestApp) {
    let _alone = ONE_AT_A_TIME.lock().await;
    // Readers present revoked tokens on purpose, all from 127.0.0.1: no 429 for them here.
    let server =
        ServerProcess::start(&app.database_url, &[("TOKENDESK_TOKEN_FAILURE_LIMIT", "0")]).await;
    let api = format!("{}/api/v1", server.address);
    let http = client();
    let (writers, live) = sign_up_writers(&app, &server).await;

    let tally = Arc::new(Tally::default());
    let live = Arc::new(live);
    let duration = load_duration();
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    for (k, writer) in writers.into_iter().enumerate() {
        let (http, tally) = (http.clone(), tally.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while Instant::now() < deadline {
                // A failed cycle is already counted; go on with the next.
                let _ = writer.cycle(k, i, &http, &tally).await;
                i += 1;
            }
        }));
    }
    for _ in 0..READERS {
        let reader = read_until(
            deadline,
            http.clone(),
            api.clone(),
            live.clone(),
            tally.clone(),
        );
        tasks.push(tokio::spawn(reader));
    }
    for task in tasks {
        task.await.unwrap();
    }

    report_and_check(&tally, app.backend(), duration);
}

/// Prints the figures; fails on any error, a writer that never finished a cycle, or starved
/// readers.
fn report_and_check(tally: &Tally, backend: crate::helpers::Backend, duration: Duration) {
    let errors = tally.errors.lock().unwrap();
    let mut latencies = std::mem::take(&mut *tally.read_latencies.lock().unwrap());
    let requests = tally.requests.load(Ordering::Relaxed);
    let reads = latencies.len();
    println!(
        "concurrency ({:?}, {} s, {WRITERS} writers + {READERS} readers): {requests} requests, {} create-regenerate-revoke cycles, {reads} token checks (p50 {:.1} ms, p99 {:.1} ms), {} expected 401s, {} errors",
        backend,
        duration.as_secs(),
        tally.cycles.load(Ordering::Relaxed),
        percentile(&mut latencies, 0.5),
        percentile(&mut latencies, 0.99),
        tally.expected_401.load(Ordering::Relaxed),
        errors.len()
    );
    assert!(
        errors.is_empty(),
        "{} errors, first: {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    assert!(
        tally.cycles.load(Ordering::Relaxed) >= WRITERS as u64,
        "every writer got through at least once"
    );
    assert!(reads > 1000, "the readers were starved: {reads}");
}
