//! A real nginx (Debian's package) with `auth_request` in front of a small upstream, configured
//! as the README says: started per test on free ports, stopped when dropped.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::TestApp;

const NGINX: &str = "/usr/sbin/nginx";

pub struct Nginx {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Nginx {
    /// The gateway configuration (`fixtures/nginx.conf`) in front of tokendesk on that port.
    pub async fn start(tokendesk_port: u16) -> Self {
        let upstream = free_port().to_string();
        let tokendesk = tokendesk_port.to_string();
        Self::start_with(
            include_str!("fixtures/nginx.conf"),
            &[("{UPSTREAM}", &upstream), ("{TOKENDESK}", &tokendesk)],
        )
        .await
    }

    /// nginx on `template` with `{DIR}` and `{PORT}` filled in, and each of `fill`.
    pub async fn start_with(template: &str, fill: &[(&str, &str)]) -> Self {
        assert!(
            std::path::Path::new(NGINX).exists(),
            "nginx is required for the gateway test: apt-get install nginx-light (.ci/run does)"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut config = template
            .replace("{DIR}", &dir.path().display().to_string())
            .replace("{PORT}", &port.to_string());
        for (name, value) in fill {
            config = config.replace(name, value);
        }
        if is_root() {
            // Workers would otherwise run as nobody, who cannot use this temp dir.
            config = format!("user root;\n{config}");
        }
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, config).unwrap();
        let child = Command::new(NGINX)
            .args([
                "-p",
                &dir.path().display().to_string(),
                "-c",
                &path.display().to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start nginx");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "nginx did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Nginx {
            child,
            port,
            _dir: dir,
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false)
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn port_of(app: &TestApp) -> u16 {
    app.address.rsplit(':').next().unwrap().parse().unwrap()
}

/// Fails unless `fixture` (named `name`) holds the lines `shown` (trimmed), in a run.
#[allow(dead_code)] // tests/browser
pub fn assert_fixture_shows(shown: &[String], fixture: &str, name: &str) {
    let tested: Vec<String> = fixture.lines().map(|line| line.trim().to_owned()).collect();
    assert!(
        tested.windows(shown.len()).any(|run| run == shown),
        "{name} does not contain the README's snippet:\n{}",
        shown.join("\n")
    );
}
