//! PostgreSQL stopped under load, then started again. The test runs its own PostgreSQL server
//! (the machine's binaries, a throwaway data directory), so it can stop it for real without
//! touching the server every other test shares.

use std::path::PathBuf;
use std::process::Command;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_database_gives_fast_503s_and_tokendesk_recovers_alone() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let postgres = tokio::task::spawn_blocking(|| {
        let postgres = PrivatePostgres::init();
        postgres.start();
        postgres
    })
    .await
    .unwrap();
    let server =
        ServerProcess::start(&postgres.url(), &[("TOKENDESK_TOKEN_FAILURE_LIMIT", "0")]).await;

    // The server migrated the database; one member and a token per client.
    let db = Db::connect(DatabaseUrl::parse(&postgres.url()).unwrap(), 1).unwrap();
    let tokens = db
        .run(|conn| {
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
                    };
                    let created =
                        tokendesk::tokens::store::create(conn, user.id, &request).unwrap();
                    created.secret.expose().to_owned()
                })
                .collect::<Vec<_>>())
        })
        .await
        .unwrap();
    drop(db);

    let http = client();
    let samples: Arc<Mutex<Vec<Sample>>> = Default::default();
    let stop_load = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = tokens
        .into_iter()
        .map(|token| {
            let (http, samples, stop_load) = (http.clone(), samples.clone(), stop_load.clone());
            let url = format!("{}/api/v1/me", server.address);
            tokio::spawn(async move {
                while !stop_load.load(std::sync::atomic::Ordering::Relaxed) {
                    let sent = Instant::now();
                    let status = http
                        .get(&url)
                        .bearer_auth(&token)
                        .send()
                        .await
                        .map(|r| r.status())
                        .map_err(|e| e.to_string());
                    let sample = Sample {
                        sent,
                        took: sent.elapsed(),
                        status,
                    };
                    samples.lock().unwrap().push(sample);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();
    let readyz = || {
        let http = http.clone();
        let url = format!("{}/readyz", server.address);
        async move {
            let sent = Instant::now();
            let status = http.get(&url).send().await.unwrap().status();
            (status, sent.elapsed())
        }
    };

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stopping = Instant::now();
    let postgres = tokio::task::spawn_blocking(move || {
        postgres.stop();
        postgres
    })
    .await
    .unwrap();
    let stopped = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (ready_in_outage, readyz_took) = readyz().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let starting = Instant::now();
    let postgres = tokio::task::spawn_blocking(move || {
        postgres.start();
        postgres
    })
    .await
    .unwrap();
    let recovered = loop {
        if readyz().await.0 == StatusCode::OK {
            break starting.elapsed();
        }
        assert!(
            starting.elapsed() < Duration::from_secs(15),
            "not ready 15 s after PostgreSQL came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let ready_again = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop_load.store(true, std::sync::atomic::Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    drop(postgres);

    let samples = std::mem::take(&mut *samples.lock().unwrap());
    let answered_before = |s: &Sample, at: Instant| s.sent + s.took < at;
    let before: Vec<_> = samples
        .iter()
        .filter(|s| answered_before(s, stopping))
        .collect();
    let outage: Vec<_> = samples
        .iter()
        .filter(|s| s.sent >= stopped && answered_before(s, starting))
        .collect();
    let after: Vec<_> = samples
        .iter()
        .filter(|s| s.sent >= ready_again + Duration::from_millis(100))
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
    println!(
        "database outage (PostgreSQL stopped {} ms under {CLIENTS} clients): before, {} of {} answered 200; during, {} requests, {} answered 503 (p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms), the rest 200 from the 1 s cache; /readyz said {} in {} ms; ready again {} ms after PostgreSQL started; after, {} of {} answered 200; {} transport errors",
        (starting - stopped).as_millis(),
        count(&before, StatusCode::OK),
        before.len(),
        outage.len(),
        outage_503,
        percentile(&mut outage_latencies, 0.5),
        percentile(&mut outage_latencies, 0.99),
        outage_max.as_secs_f64() * 1000.0,
        ready_in_outage.as_u16(),
        readyz_took.as_millis(),
        recovered.as_millis(),
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
