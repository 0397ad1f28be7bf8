//! The real `tokendesk` binary as a child process, for what only a process can show: signals,
//! crashes, restarts, several instances on one database, and what it writes to its log.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct ServerProcess {
    child: Child,
    pub address: String,
    pub port: u16,
    pub log: std::path::PathBuf,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl ServerProcess {
    /// Starts `tokendesk serve` on `database_url` and waits until it answers. `settings` are
    /// extra environment variables (TOKENDESK_*, RUST_LOG) over quiet test defaults.
    pub async fn start(database_url: &str, settings: &[(&str, &str)]) -> Self {
        Self::start_on(free_port(), database_url, settings).await
    }

    /// Like [`ServerProcess::start`], on a given port (a restart keeps its address).
    pub async fn start_on(port: u16, database_url: &str, settings: &[(&str, &str)]) -> Self {
        let log = std::env::temp_dir().join(format!("tokendesk-{port}-{}.log", std::process::id()));
        let child = Command::new(env!("CARGO_BIN_EXE_tokendesk"))
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("TOKENDESK_LISTEN", format!("127.0.0.1:{port}"))
            .env(
                "TOKENDESK_SESSION_KEY",
                "a-session-key-for-this-test-only-0123456789",
            )
            .env("TOKENDESK_WORKERS", "2")
            .env("RUST_LOG", "warn")
            .envs(settings.iter().copied())
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
            port,
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`: no drain, no flush, no chance to tidy up.
    pub fn kill_hard(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// Sends SIGTERM without waiting.
    pub fn signal_terminate(&self) {
        let pid = self.pid().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
    }

    /// Waits (off the async executor) for the process to exit by itself.
    pub async fn wait_for_exit(mut self) -> (std::process::ExitStatus, Self) {
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            loop {
                if let Some(status) = self.child.try_wait().unwrap() {
                    return (status, self);
                }
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "no exit after SIGTERM"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        })
        .await
        .unwrap()
    }

    /// SIGTERM, then waits for the exit.
    pub async fn terminate(self) -> (std::process::ExitStatus, Self) {
        self.signal_terminate();
        self.wait_for_exit().await
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::env::var_os("TOKENDESK_TEST_KEEP_LOGS").is_none() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}
