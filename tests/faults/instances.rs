//! Two tokendesk processes on one PostgreSQL, as a deployment that outgrew one machine runs.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokendesk::domain::Role;

use crate::helpers::{Backend, TestApp};
use crate::server::ServerProcess;
use crate::{client, ONE_AT_A_TIME};

/// No verified-token cache: each instance asks the database on every request; Last used is
/// written only when an instance stops.
const UNCACHED: [(&str, &str); 2] = [
    ("TOKENDESK_AUTH_CACHE_MS", "0"),
    ("TOKENDESK_LAST_USED_FLUSH_SECS", "3600"),
];

/// Grace on a fresh PostgreSQL database with a token that manages tokens and one named `ci`.
struct Deployment {
    app: TestApp,
    user_id: i64,
    manager: String,
    ci_id: i64,
    ci: String,
}

async fn a_deployment_on_postgres() -> Deployment {
    let app = TestApp::spawn(Backend::Postgres).await;
    let user = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let scopes = ["personalAccessToken:write", "tag:read"];
    let (_, manager) = app.token_for(user.id, "manager", &scopes).await;
    let (ci_id, ci) = app.token_for(user.id, "ci", &["tag:read"]).await;
    Deployment {
        app,
        user_id: user.id,
        manager,
        ci_id,
        ci,
    }
}

/// The status `GET /api/v1/me` answers on `server` for `secret`.
pub async fn me(server: &ServerProcess, secret: &str) -> StatusCode {
    let url = format!("{}/api/v1/me", server.address);
    let response = client().get(url).bearer_auth(secret).send().await;
    response.unwrap().status()
}

/// Revokes token `id` through `server`'s API, presenting `manager`.
async fn revoke_through(server: &ServerProcess, manager: &str, id: i64) -> StatusCode {
    let url = format!("{}/api/v1/personal-access-tokens/{id}", server.address);
    let response = client().delete(url).bearer_auth(manager).send().await;
    response.unwrap().status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_keep_the_later_last_used() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let deployment = a_deployment_on_postgres().await;
    let url = &deployment.app.database_url;
    let a = ServerProcess::start(url, &UNCACHED).await;
    let b = ServerProcess::start(url, &UNCACHED).await;

    // B sees the token first, A later; B writes last (its shutdown flush), and the stored time
    // is still A's later one.
    assert_eq!(me(&b, &deployment.ci).await, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let before_a = chrono::Utc::now().naive_utc();
    assert_eq!(me(&a, &deployment.ci).await, StatusCode::OK);
    let (status, a) = a.terminate().await;
    assert!(status.success());
    let (status, b) = b.terminate().await;
    assert!(status.success());
    drop((a, b));
    let last_used = deployment.app.last_used_at(deployment.ci_id).await;
    let last_used = last_used.expect("written by the flushes");
    // Stored with microsecond precision on PostgreSQL.
    assert!(
        last_used >= before_a - chrono::Duration::microseconds(1),
        "the later use wins: stored {last_used}, A's use after {before_a}"
    );
    println!("two instances on one PostgreSQL: the later Last used kept ({last_used})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_through_one_instance_is_refused_by_the_other_at_once() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let deployment = a_deployment_on_postgres().await;
    let url = &deployment.app.database_url;
    let a = ServerProcess::start(url, &UNCACHED).await;
    let b = ServerProcess::start(url, &UNCACHED).await;
    assert_eq!(me(&b, &deployment.ci).await, StatusCode::OK);
    let revoked = revoke_through(&a, &deployment.manager, deployment.ci_id).await;
    assert_eq!(revoked, StatusCode::NO_CONTENT);
    assert_eq!(
        me(&b, &deployment.ci).await,
        StatusCode::UNAUTHORIZED,
        "B refuses at once"
    );
}

/// A minute: long enough that only a change heard explains a refusal.
const CACHED: [(&str, &str); 2] = [
    ("TOKENDESK_AUTH_CACHE_MS", "60000"),
    ("RUST_LOG", "tokendesk=info"),
];

pub const LISTENING: &str = "listening for other instances' changes";
const LOST: &str = "lost the connection that hears other instances' changes";
const RECONNECTED: &str = "changes again after a reconnect; caches back on";
const ANSWERS_AGAIN: &str = "answers again after a hang; caches back on";

/// Waits until `server`'s log holds `line` `times` times.
pub async fn logged(server: &ServerProcess, line: &str, times: usize) {
    let started = Instant::now();
    loop {
        let log = std::fs::read_to_string(&server.log).unwrap_or_default();
        if log.matches(line).count() >= times {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never logged {line:?}:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Revokes token `id` in the database as a hand-made change would: no instance is told.
async fn revoke_unannounced(app: &TestApp, id: i64, by: i64) {
    app.db
        .run(move |conn| tokendesk::tokens::store::revoke(conn, id, by))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_cache_on_another_instance_refuses_a_revoked_token_as_soon_as_it_hears() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let deployment = a_deployment_on_postgres().await;
    let app = &deployment.app;
    let (probe_id, probe) = app
        .token_for(deployment.user_id, "probe", &["tag:read"])
        .await;
    let a = ServerProcess::start(&app.database_url, &CACHED).await;
    let b = ServerProcess::start(&app.database_url, &CACHED).await;
    logged(&b, LISTENING, 1).await;

    // B caches: a change nobody announces is not seen for the cache's minute.
    assert_eq!(me(&b, &deployment.ci).await, StatusCode::OK);
    assert_eq!(me(&b, &probe).await, StatusCode::OK);
    revoke_unannounced(app, probe_id, deployment.user_id).await;
    assert_eq!(
        me(&b, &probe).await,
        StatusCode::OK,
        "served from B's cache"
    );

    // A revoke through A is announced: B refuses it as soon as it hears, well inside the minute.
    let revoke_sent = Instant::now();
    let revoked = revoke_through(&a, &deployment.manager, deployment.ci_id).await;
    assert_eq!(revoked, StatusCode::NO_CONTENT);
    let answered = revoke_sent.elapsed();
    let refused_after = refused_by(&b, &deployment.ci, revoke_sent).await;
    println!(
        "two instances on one PostgreSQL, 60 s cache: the revoke answered in {} ms, B refused from {} ms",
        answered.as_millis(),
        refused_after.as_millis()
    );
}

/// Waits until `server` refuses `secret` (revoked at `revoked`), at most 10 s; how long it took.
async fn refused_by(server: &ServerProcess, secret: &str, revoked: Instant) -> Duration {
    loop {
        match me(server, secret).await {
            StatusCode::UNAUTHORIZED => return revoked.elapsed(),
            StatusCode::OK => {}
            other => panic!("{other} from {}", server.address),
        }
        assert!(
            revoked.elapsed() < Duration::from_secs(10),
            "{} still accepts the token 10 s after the revoke",
            server.address
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// `server` caches again: a token it checked is served after a revoke nobody announced.
async fn caches_again(app: &TestApp, server: &ServerProcess, user: i64) {
    let (heard_id, heard) = app.token_by_hand(user, "heard again", &["tag:read"]).await;
    assert_eq!(me(server, &heard).await, StatusCode::OK);
    revoke_unannounced(app, heard_id, user).await;
    assert_eq!(me(server, &heard).await, StatusCode::OK, "cached again");
}

/// Postgres URL `url` as another role.
fn as_role(url: &str, role: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let rest = rest.split_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{role}@{rest}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_cannot_hear_the_others_serves_nothing_from_its_cache() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let deployment = a_deployment_on_postgres().await;
    let app = &deployment.app;
    let user = deployment.user_id;
    // B listens as a role of its own, so the test can cut that connection and keep it cut.
    let role = format!(
        "tokendesk_listener_{}",
        app.database_url.rsplit('_').next().unwrap()
    );
    let admin = |sql: String| {
        let url = app.database_url.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                use diesel::{Connection, RunQueryDsl};
                let mut conn = diesel::PgConnection::establish(&url).unwrap();
                diesel::sql_query(sql).execute(&mut conn).unwrap();
            })
            .await
            .unwrap()
        }
    };
    admin(format!("CREATE ROLE {role} LOGIN")).await;
    let listen_url = as_role(&app.database_url, &role);
    let metrics = format!("127.0.0.1:{}", crate::server::free_port());
    let mut settings = CACHED.to_vec();
    settings.push(("TOKENDESK_LISTEN_DATABASE_URL", &listen_url));
    settings.push(("TOKENDESK_METRICS_LISTEN", &metrics));
    let b = ServerProcess::start(&app.database_url, &settings).await;
    logged(&b, LISTENING, 1).await;
    let caches_on = || async {
        let scrape = client()
            .get(format!("http://{metrics}/metrics"))
            .send()
            .await;
        let text = scrape.unwrap().text().await.unwrap();
        let line = text.lines().find(|l| l.starts_with("tokendesk_caches_on "));
        line.expect("the gauge").ends_with(" 1")
    };
    assert!(caches_on().await);
    assert_eq!(me(&b, &deployment.ci).await, StatusCode::OK);

    // The listening connection is cut and cannot come back.
    admin(format!("ALTER ROLE {role} NOLOGIN")).await;
    admin(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'"
    ))
    .await;
    logged(&b, LOST, 1).await;
    assert!(!caches_on().await, "the scrape says the caches are off");

    // Deaf, B asks the database on every request: changes nobody announced apply at once.
    revoke_unannounced(app, deployment.ci_id, user).await;
    assert_eq!(me(&b, &deployment.ci).await, StatusCode::UNAUTHORIZED);
    let (deaf_id, deaf) = app.token_for(user, "while deaf", &["tag:read"]).await;
    assert_eq!(me(&b, &deaf).await, StatusCode::OK);
    assert_eq!(me(&b, &deaf).await, StatusCode::OK);
    revoke_unannounced(app, deaf_id, user).await;
    assert_eq!(me(&b, &deaf).await, StatusCode::UNAUTHORIZED);
    let log = std::fs::read_to_string(&b.log).unwrap();
    assert!(
        !log.contains(&listen_url) && !log.contains(&app.database_url),
        "the log names no database address:\n{log}"
    );

    // Back: B listens again and caches again.
    admin(format!("ALTER ROLE {role} LOGIN")).await;
    logged(&b, RECONNECTED, 1).await;
    assert!(caches_on().await);
    caches_again(app, &b, user).await;

    let (status, b) = b.terminate().await;
    assert!(status.success());
    drop(b);
    admin(format!("DROP ROLE {role}")).await;
}

/// A TCP relay to PostgreSQL that can go silent: frozen, it passes no byte either way and keeps
/// every connection open, as a network partition or a hung database host does (no reset, no
/// error: the peer's kernel still acknowledges what is sent).
struct Relay {
    port: u16,
    frozen: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Relay {
    async fn to(upstream: String) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let frozen = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let gate = frozen.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = tokio::net::TcpStream::connect(&upstream).await.unwrap();
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(Self::pass(client_read, server_write, gate.clone()));
                tokio::spawn(Self::pass(server_read, client_write, gate.clone()));
            }
        });
        Relay { port, frozen }
    }

    async fn pass(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        frozen: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut buffer = vec![0; 16 * 1024];
        loop {
            let read = match from.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(read) => read,
            };
            while frozen.load(std::sync::atomic::Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            if to.write_all(&buffer[..read]).await.is_err() {
                return;
            }
        }
    }

    fn freeze(&self, frozen: bool) {
        self.frozen
            .store(frozen, std::sync::atomic::Ordering::SeqCst);
    }

    /// `url` (a PostgreSQL URL on 127.0.0.1) through this relay.
    fn url(&self, url: &str) -> String {
        let (user, rest) = url.split_once('@').unwrap();
        let (_, database) = rest.split_once('/').unwrap();
        format!("{user}@127.0.0.1:{}/{database}", self.port)
    }
}

/// An instance with `settings` that listens through a relay the test can freeze.
async fn listening_through_a_relay(
    app: &TestApp,
    settings: &[(&str, &str)],
) -> (Relay, ServerProcess) {
    let postgres = app.database_url.split_once('@').unwrap().1;
    let relay = Relay::to(postgres.split_once('/').unwrap().0.to_owned()).await;
    let listen_url = relay.url(&app.database_url);
    let mut settings = settings.to_vec();
    settings.push(("TOKENDESK_LISTEN_DATABASE_URL", &listen_url));
    let server = ServerProcess::start(&app.database_url, &settings).await;
    logged(&server, LISTENING, 1).await;
    (relay, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_whose_listening_connection_hangs_stops_serving_from_its_cache() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let deployment = a_deployment_on_postgres().await;
    let app = &deployment.app;
    let a = ServerProcess::start(&app.database_url, &CACHED).await;
    let (relay, b) = listening_through_a_relay(app, &CACHED).await;
    assert_eq!(me(&b, &deployment.ci).await, StatusCode::OK, "cached");

    // B's listening connection goes silent without failing; B cannot hear A's revoke.
    relay.freeze(true);
    let revoked = revoke_through(&a, &deployment.manager, deployment.ci_id).await;
    assert_eq!(revoked, StatusCode::NO_CONTENT);
    refused_by(&b, &deployment.ci, Instant::now()).await;

    // Heard again: B caches again.
    relay.freeze(false);
    logged(&b, ANSWERS_AGAIN, 1).await;
    let user = deployment.user_id;
    caches_again(app, &b, user).await;
    let (status, b) = b.terminate().await;
    assert!(status.success());
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_whose_listening_connection_hangs_still_stops_and_writes_last_used() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let deployment = a_deployment_on_postgres().await;
    let app = &deployment.app;
    let mut settings = UNCACHED.to_vec();
    settings.push(("RUST_LOG", "tokendesk=info"));
    let (relay, b) = listening_through_a_relay(app, &settings).await;
    assert_eq!(me(&b, &deployment.ci).await, StatusCode::OK);

    // The listening connection hangs; SIGTERM still drains, writes Last used and exits.
    relay.freeze(true);
    // Past the listener's next heartbeat (each second), which now waits for its answer.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let (status, b) = b.terminate().await;
    assert!(status.success());
    drop(b);
    assert!(app.last_used_at(deployment.ci_id).await.is_some());
    relay.freeze(false);
}
