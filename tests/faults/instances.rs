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
async fn me(server: &ServerProcess, secret: &str) -> StatusCode {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_default_cache_another_instance_refuses_a_revoked_token_within_a_second() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let deployment = a_deployment_on_postgres().await;
    let app = &deployment.app;
    let (cached_id, cached) = app
        .token_for(deployment.user_id, "cached", &["tag:read"])
        .await;
    let a = ServerProcess::start(&app.database_url, &UNCACHED).await;
    // The default 1 s cache: C may serve a token it verified for up to a second more.
    let c = ServerProcess::start(&app.database_url, &[]).await;
    assert_eq!(me(&c, &cached).await, StatusCode::OK);
    // The change is made between sending the revoke and its answer; judge from the sending.
    let revoke_sent = Instant::now();
    let revoked = revoke_through(&a, &deployment.manager, cached_id).await;
    assert_eq!(revoked, StatusCode::NO_CONTENT);
    let mut last_accepted = Duration::ZERO;
    let refused_after = loop {
        let sent = revoke_sent.elapsed();
        match me(&c, &cached).await {
            StatusCode::UNAUTHORIZED => break sent,
            StatusCode::OK => last_accepted = sent,
            other => panic!("{other} from C"),
        }
        assert!(
            revoke_sent.elapsed() < Duration::from_millis(1500),
            "still accepted 1.5 s after the revoke"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        last_accepted < Duration::from_millis(1000),
        "accepted {last_accepted:?} after the revoke"
    );
    println!(
        "two instances on one PostgreSQL, default 1 s cache: last accepted {} ms after the revoke, refused from {} ms",
        last_accepted.as_millis(),
        refused_after.as_millis()
    );
}
