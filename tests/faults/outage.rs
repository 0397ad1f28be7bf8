//! PostgreSQL stopped under load, then started again. The test runs its own PostgreSQL server
//! (the machine's binaries, a throwaway data directory), so it can stop it for real without
//! touching the server every other test shares.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokendesk::db::{DatabaseUrl, Db};
use tokendesk::domain::{Expiry, Role, ScopeSet, TokenRequest};

use crate::server::{free_port, ServerProcess};
use crate::{client, percentile, ONE_AT_A_TIME};

const CLIENTS: usize = 8;

/// A PostgreSQL server of this test's own.
struct PrivatePostgres {
    dir: tempfile::TempDir,
    port: u16,
    bin: PathBuf,
}

impl PrivatePostgres {
    fn init() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL's server binaries under /usr/lib/postgresql")
            .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
            .find(|bin| bin.join("pg_ctl").exists())
            .expect("pg_ctl");
        let dir = tempfile::tempdir().unwrap();
        let server = Self {
            dir,
            port: free_port(),
            bin,
        };
        if running_as_root() {
            // PostgreSQL refuses to run as root; its own account runs it.
            let owned = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(server.dir.path())
                .status()
                .unwrap();
            assert!(owned.success());
        }
        let data = server.data();
        server.run(
            "initdb",
            &["-D", &data, "-U", "postgres", "-A", "trust", "--no-sync"],
        );
        server
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn run(&self, program: &str, args: &[&str]) {
        let program = self.bin.join(program);
        let mut command = if running_as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        let output = command.args(args).output().expect("run a PostgreSQL tool");
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-o",
                &options,
                "-w",
                "start",
            ],
        );
    }

    /// `pg_ctl stop -m fast`: what an operator's restart or a failover does to clients.
    fn stop(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let pg_ctl = self.bin.join("pg_ctl").display().to_string();
        let data = self.data();
        let args = ["-D", data.as_str(), "-m", "immediate", "stop"];
        let _ = if running_as_root() {
            Command::new("runuser")
                .args(["-u", "postgres", "--", &pg_ctl])
                .args(args)
                .output()
        } else {
            Command::new(&pg_ctl).args(args).output()
        };
    }
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.trim_ascii() == b"0")
        .unwrap_or(false)
}

/// One answer (or failure) and when its request was sent.
struct Sample {
    sent: Instant,
    took: Duration,
    status: Result<StatusCode, String>,
}

impl PrivatePostgres {
    /// Initialised and started, off the async runtime.
    async fn started() -> Self {
        let postgres = tokio::task::spawn_blocking(|| {
            let postgres = PrivatePostgres::init();
            postgres.start();
            postgres
        });
        postgres.await.unwrap()
    }

    /// Runs `change` (start or stop) off the async runtime.
    async fn change(self, change: fn(&PrivatePostgres)) -> Self {
        let postgres = tokio::task::spawn_blocking(move || {
            change(&self);
            self
        });
        postgres.await.unwrap()
    }
}

/// Grace, with one token per client, straight into the database the server migrated.
async fn one_token_per_client(database_url: &str) -> Vec<String> {
    let db = Db::connect(DatabaseUrl::parse(database_url).unwrap(), 1).unwrap();
    db.run(|conn| {
        let email = tokendesk::domain::Email::parse("grace@example.com").unwrap();
        let user = tokendesk::users::create(
            conn,
            tokendesk::users::NewUser {
                email: &email,
                display_name: "Grace",
                password_hash: None,
                role: Role::User,
            },
        )
        .unwrap();
        Ok((0..CLIENTS)
            .map(|n| {
                let request = TokenRequest {
                    name: format!("client {n}"),
                    expiry: Expiry::Never,
                    scopes: ScopeSet::parse(["tag:read"]).unwrap(),
                    allowed_addresses: None,
                };
                let created = tokendesk::tokens::store::create(
                    conn,
                    tokendesk::tokens::TokenOwner::Person(user.id),
                    user.id,
                    &request,
                )
                .unwrap();
                created.secret.expose().to_owned()
            })
            .collect::<Vec<_>>())
    })
    .await
    .unwrap()
}

/// One client per token calling `/api/v1/me` every 5 ms, each answer a [`Sample`].
struct Load {
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(http: &reqwest::Client, address: &str, tokens: Vec<String>) -> Self {
        let samples: Arc<Mutex<Vec<Sample>>> = Default::default();
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = tokens
            .into_iter()
            .map(|token| {
                let (http, samples, stop) = (http.clone(), samples.clone(), stop.clone());
                let url = format!("{address}/api/v1/me");
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let sent = Instant::now();
                        let status = http.get(&url).bearer_auth(&token).send().await;
                        let status = status.map(|r| r.status()).map_err(|e| e.to_string());
                        let took = sent.elapsed();
                        samples.lock().unwrap().push(Sample { sent, took, status });
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                })
            })
            .collect();
        Load {
            samples,
            stop,
            tasks,
        }
    }

    async fn stop(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.unwrap();
        }
        let samples = std::mem::take(&mut *self.samples.lock().unwrap());
        samples
    }
}

/// What `/readyz` answers, and how long it took.
async fn readyz(http: &reqwest::Client, address: &str) -> (StatusCode, Duration) {
    let sent = Instant::now();
    let status = http.get(format!("{address}/readyz")).send().await;
    (status.unwrap().status(), sent.elapsed())
}

/// How long after `since` `/readyz` first answers 200 (at most 15 s).
async fn ready_again_after(http: &reqwest::Client, address: &str, since: Instant) -> Duration {
    loop {
        if readyz(http, address).await.0 == StatusCode::OK {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < Duration::from_secs(15),
            "not ready 15 s after PostgreSQL came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// When the outage began and ended, as the test saw it.
struct Timeline {
    stopping: Instant,
    stopped: Instant,
    starting: Instant,
    ready_again: Instant,
    /// What `/readyz` answered in the outage, and how fast.
    ready_in_outage: (StatusCode, Duration),
    /// From starting PostgreSQL until `/readyz` said 200.
    recovered: Duration,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_database_gives_fast_503s_and_tokendesk_recovers_alone() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let postgres = PrivatePostgres::started().await;
    let server =
        ServerProcess::start(&postgres.url(), &[("TOKENDESK_TOKEN_FAILURE_LIMIT", "0")]).await;
    let tokens = one_token_per_client(&postgres.url()).await;
    let http = client();
    let address = server.address.as_str();
    let load = Load::start(&http, address, tokens);

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stopping = Instant::now();
    let postgres = postgres.change(PrivatePostgres::stop).await;
    let stopped = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let ready_in_outage = readyz(&http, address).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let starting = Instant::now();
    let postgres = postgres.change(PrivatePostgres::start).await;
    let recovered = ready_again_after(&http, address, starting).await;
    let ready_again = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let samples = load.stop().await;
    drop(postgres);
    let timeline = Timeline {
        stopping,
        stopped,
        starting,
        ready_again,
        ready_in_outage,
        recovered,
    };
    report_and_check(&samples, &timeline);
}

/// Sorts the samples into before, during and after the outage, prints the figures, and checks
/// them: 200s before, only fast 503s (or a cached 200) during, 200s after, nothing dropped.
fn report_and_check(samples: &[Sample], t: &Timeline) {
    let answered_before = |s: &Sample, at: Instant| s.sent + s.took < at;
    let before: Vec<_> = samples
        .iter()
        .filter(|s| answered_before(s, t.stopping))
        .collect();
    let outage: Vec<_> = samples
        .iter()
        .filter(|s| s.sent >= t.stopped && answered_before(s, t.starting))
        .collect();
    let after: Vec<_> = samples
        .iter()
        .filter(|s| s.sent >= t.ready_again + Duration::from_millis(100))
        .collect();
    let count = |set: &[&Sample], status: StatusCode| {
        set.iter()
            .filter(|s| s.status.as_ref() == Ok(&status))
            .count()
    };
    let transport_errors: Vec<_> = samples
        .iter()
        .filter_map(|s| s.status.as_ref().err())
        .collect();
    let mut outage_latencies: Vec<_> = outage.iter().map(|s| s.took).collect();
    let outage_503 = count(&outage, StatusCode::SERVICE_UNAVAILABLE);
    let outage_max = outage_latencies.iter().max().copied().unwrap_or_default();
    let (ready_in_outage, readyz_took) = t.ready_in_outage;
    println!(
        "database outage (PostgreSQL stopped {} ms under {CLIENTS} clients): before, {} of {} answered 200; during, {} requests, {} answered 503 (p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms), the rest 200 from the 1 s cache; /readyz said {} in {} ms; ready again {} ms after PostgreSQL started; after, {} of {} answered 200; {} transport errors",
        (t.starting - t.stopped).as_millis(),
        count(&before, StatusCode::OK),
        before.len(),
        outage.len(),
        outage_503,
        percentile(&mut outage_latencies, 0.5),
        percentile(&mut outage_latencies, 0.99),
        outage_max.as_secs_f64() * 1000.0,
        ready_in_outage.as_u16(),
        readyz_took.as_millis(),
        t.recovered.as_millis(),
        count(&after, StatusCode::OK),
        after.len(),
        transport_errors.len()
    );
    assert!(
        transport_errors.is_empty(),
        "no request hung or was dropped: {transport_errors:?}"
    );
    assert!(before.len() > 50 && count(&before, StatusCode::OK) == before.len());
    assert!(outage_503 > 50, "the outage showed as 503s");
    assert_eq!(
        outage_503 + count(&outage, StatusCode::OK),
        outage.len(),
        "during the outage only 503 (or a cached 200)"
    );
    assert!(
        outage_max < Duration::from_millis(1000),
        "fast, not hanging: {outage_max:?}"
    );
    assert_eq!(ready_in_outage, StatusCode::SERVICE_UNAVAILABLE);
    assert!(readyz_took < Duration::from_millis(1000));
    assert!(
        after.len() > 50 && count(&after, StatusCode::OK) == after.len(),
        "recovered by itself"
    );
}
