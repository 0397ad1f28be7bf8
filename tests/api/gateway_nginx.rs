//! A real nginx (Debian's package) with `auth_request` in front of an upstream.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokendesk::domain::Role;

use crate::backend_tests;
use crate::helpers::TestApp;

backend_tests!(nginx_lets_through_only_what_tokendesk_accepts);

const NGINX: &str = "/usr/sbin/nginx";

struct Nginx {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Nginx {
    async fn start(tokendesk_port: u16) -> Self {
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

async fn nginx_lets_through_only_what_tokendesk_accepts(app: TestApp) {
    let port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
    let nginx = Nginx::start(port).await;
    let base = format!("http://127.0.0.1:{}", nginx.port);
    let client = reqwest::Client::new();

    let user = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let admin = app
        .create_user("root@example.com", "root-password-1", Role::Admin)
        .await;
    let (reader_id, reader) = app.token_for(user.id, "reader", &["license:read"]).await;
    let (_, writer) = app.token_for(admin.id, "writer", &["license:write"]).await;

    let get = |path: String, header: Option<(&'static str, String)>| {
        let mut request = client.get(format!("{base}{path}"));
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.text().await.unwrap())
        }
    };

    for (path, header) in [
        (
            "/service/a".to_owned(),
            Some(("authorization", format!("Bearer {reader}"))),
        ),
        (
            "/service/b".to_owned(),
            Some(("x-auth-token", reader.clone())),
        ),
        (format!("/service/c?token={reader}"), None),
        (format!("/{reader}/api/v0/add"), None),
        (format!("/ext/bc/C/rpc/{reader}"), None),
    ] {
        let (status, body) = get(path.clone(), header).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(body.contains("for grace@example.com"), "{path}: {body}");
    }

    assert_eq!(
        get("/service/a".into(), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let typo = format!("{}A", &reader[..reader.len() - 1]);
    assert_eq!(
        get("/service/a".into(), Some(("x-auth-token", typo)))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );

    // A required scope.
    let (status, _) = get("/licenses/1".into(), Some(("x-auth-token", reader.clone()))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = get("/licenses/1".into(), Some(("x-auth-token", writer.clone()))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("for root@example.com"));

    // Revocation is refused on the very next request.
    app.db
        .write(move |conn| tokendesk::tokens::store::revoke(conn, reader_id, user.id))
        .await
        .unwrap();
    let (status, _) = get("/service/a".into(), Some(("x-auth-token", reader.clone()))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
