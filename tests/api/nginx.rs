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
    pub async fn start(tokendesk_port: u16) -> Self {
        assert!(
            std::path::Path::new(NGINX).exists(),
            "nginx is required for the gateway test: apt-get install nginx-light (.ci/run does)"
        );
        let dir = tempfile::tempdir().unwrap();
        let (port, upstream) = (free_port(), free_port());
        let mut config = include_str!("fixtures/nginx.conf")
            .replace("{DIR}", &dir.path().display().to_string())
            .replace("{PORT}", &port.to_string())
            .replace("{UPSTREAM}", &upstream.to_string())
            .replace("{TOKENDESK}", &tokendesk_port.to_string());
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
