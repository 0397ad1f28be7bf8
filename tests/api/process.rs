//! The real `tokendesk` binary as a process: graceful shutdown, and what it writes to its log.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use reqwest::StatusCode;
use tokendesk::db::schema::personal_access_tokens as pat;
use tokendesk::domain::Role;

use crate::backend_tests;
use crate::helpers::{Presented, TestApp, EVERY_WAY};

backend_tests!(
    sigterm_drains_and_writes_pending_last_used,
    no_log_line_contains_a_token,
);

struct ServerProcess {
    child: Child,
    address: String,
    log: std::path::PathBuf,
}

impl ServerProcess {
    async fn start(app: &TestApp, rust_log: &str, flush_secs: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::env::temp_dir().join(format!("tokendesk-{port}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_tokendesk"))
            .arg("serve")
            .env("DATABASE_URL", &app.database_url)
            .env("TOKENDESK_LISTEN", format!("127.0.0.1:{port}"))
            .env(
                "TOKENDESK_SESSION_KEY",
                "a-session-key-for-this-test-only-0123456789",
            )
            .env("TOKENDESK_LAST_USED_FLUSH_SECS", flush_secs)
            .env("TOKENDESK_WORKERS", "2")
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start tokendesk");
        let address = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while reqwest::get(format!("{address}/healthz")).await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "tokendesk did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self {
            child,
            address,
            log,
        }
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

async fn sigterm_drains_and_writes_pending_last_used(app: TestApp) {
    let user = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let (id, token) = app.token_for(user.id, "ci", &["tag:read"]).await;
    // An hour between flushes: only the shutdown can write it.
    let mut server = ServerProcess::start(&app, "info", "3600").await;
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/me", server.address))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let last_used = |app: &TestApp| {
        let db = app.db.clone();
        async move {
            db.run(move |c| {
                pat::table
                    .find(id)
                    .select(pat::last_used_at)
                    .first::<Option<chrono::NaiveDateTime>>(c)
            })
            .await
            .unwrap()
        }
    };
    assert!(last_used(&app).await.is_none(), "not written per request");
    let status = tokio::task::spawn_blocking(move || {
        let status = server.terminate();
        drop(server);
        status
    })
    .await
    .unwrap();
    assert!(status.success(), "clean exit: {status:?}");
    assert!(last_used(&app).await.is_some(), "written on shutdown");
}

async fn no_log_line_contains_a_token(app: TestApp) {
    let user = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let (_, token) = app.token_for(user.id, "ci", &["tag:read"]).await;
    let mut server = ServerProcess::start(&app, "debug", "0.2").await;
    let api = crate::helpers::Api {
        address: server.address.clone(),
        client: reqwest::Client::new(),
    };
    for way in EVERY_WAY {
        let response = api.get("/me", &token, way).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{way:?}");
    }
    // The gateway forms, and a rejected token, too.
    let original = format!("/ext/bc/C/rpc/{token}");
    assert_eq!(
        api.verify("", &[("x-original-uri", &original)])
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let typo = format!("{}0", &token[..token.len() - 1]);
    api.get("/me", &typo, Presented::Query)
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let server = tokio::task::spawn_blocking(move || {
        server.terminate();
        server
    })
    .await
    .unwrap();

    let log = std::fs::read_to_string(&server.log).unwrap();
    assert!(log.contains("/api/v1/me"), "requests are logged: {log}");
    assert!(log.contains("[redacted]"), "the token's place is marked");
    let secret_part = &token[4..36];
    assert!(
        !log.contains(secret_part),
        "a token reached the log:\n{log}"
    );
    assert!(
        !log.contains(&typo[4..36]),
        "a rejected token reached the log"
    );
}
