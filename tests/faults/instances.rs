//! Two tokendesk processes on one PostgreSQL, as a deployment that outgrew one machine runs.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokendesk::domain::Role;

use crate::helpers::{Backend, TestApp};
use crate::server::ServerProcess;
use crate::{client, ONE_AT_A_TIME};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_agree_on_revocation_and_last_used() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let app = TestApp::spawn(Backend::Postgres).await;
    let user = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let (_, manager) = app
        .token_for(
            user.id,
            "manager",
            &["personalAccessToken:write", "tag:read"],
        )
        .await;
    let (id, token) = app.token_for(user.id, "ci", &["tag:read"]).await;
    // No verified-token cache: each instance asks the database on every request.
    let uncached = [
        ("TOKENDESK_AUTH_CACHE_MS", "0"),
        ("TOKENDESK_LAST_USED_FLUSH_SECS", "3600"),
    ];
    let a = ServerProcess::start(&app.database_url, &uncached).await;
    let b = ServerProcess::start(&app.database_url, &uncached).await;
    let http = client();
    let me = |server: &ServerProcess, secret: &str| {
        http.get(format!("{}/api/v1/me", server.address))
            .bearer_auth(secret)
            .send()
    };

    // Last used: B sees the token first, A later; B writes last (its shutdown flush), and the
    // stored time is still A's later one.
    assert_eq!(me(&b, &token).await.unwrap().status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let before_a = chrono::Utc::now().naive_utc();
    assert_eq!(me(&a, &token).await.unwrap().status(), StatusCode::OK);
    let (status, a) = a.terminate().await;
    assert!(status.success());
    let (status, b) = b.terminate().await;
    assert!(status.success());
    drop((a, b));
    let last_used = app.last_used_at(id).await.expect("written by the flushes");
    // Stored with microsecond precision on PostgreSQL.
    assert!(
        last_used >= before_a - chrono::Duration::microseconds(1),
        "the later use wins: stored {last_used}, A's use after {before_a}"
    );

    // Revocation: revoked through A, refused by B on its very next request.
    let a = ServerProcess::start(&app.database_url, &uncached).await;
    let b = ServerProcess::start(&app.database_url, &uncached).await;
    assert_eq!(me(&b, &token).await.unwrap().status(), StatusCode::OK);
    let revoke = http
        .delete(format!("{}/api/v1/personal-access-tokens/{id}", a.address))
        .bearer_auth(&manager)
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        me(&b, &token).await.unwrap().status(),
        StatusCode::UNAUTHORIZED,
        "B refuses at once"
    );

    // With the default 1 s cache, B may serve a token it verified for up to a second more.
    let (cached_id, cached) = app.token_for(user.id, "cached", &["tag:read"]).await;
    let c = ServerProcess::start(&app.database_url, &[]).await;
    assert_eq!(me(&c, &cached).await.unwrap().status(), StatusCode::OK);
    // The change is made between sending the revoke and its answer; judge from the sending.
    let revoke_sent = Instant::now();
    let revoke = http
        .delete(format!(
            "{}/api/v1/personal-access-tokens/{cached_id}",
            a.address
        ))
        .bearer_auth(&manager)
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), StatusCode::NO_CONTENT);
    let mut last_accepted = Duration::ZERO;
    let refused_after = loop {
        let sent = revoke_sent.elapsed();
        match me(&c, &cached).await.unwrap().status() {
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
        "two instances on one PostgreSQL: the later Last used kept ({last_used}); a revoke through one refused by the other on its next request (cache off); with the default 1 s cache last accepted {} ms after the revoke, refused from {} ms",
        last_accepted.as_millis(),
        refused_after.as_millis()
    );
}
