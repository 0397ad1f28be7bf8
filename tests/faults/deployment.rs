//! Three tokendesk processes on one PostgreSQL behind a real nginx (round robin), set up as the
//! README's deployment section says, under a steady load: no request fails, a revoke through any
//! of them is refused by all three as soon as they hear of it, and Last used never moves back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokendesk::domain::Role;

use crate::helpers::{Backend, TestApp};
use crate::instances::me;
use crate::nginx::Nginx;
use crate::server::ServerProcess;
use crate::{client, percentile, with_causes, ONE_AT_A_TIME};

/// Each instance: behind nginx on this host, a cache of a minute (so only a change heard explains
/// a refusal), Last used written often, and no limit on bad tokens (the load presents revoked ones).
const INSTANCE: [(&str, &str); 5] = [
    ("TOKENDESK_TRUSTED_PROXIES", "127.0.0.1"),
    ("TOKENDESK_AUTH_CACHE_MS", "60000"),
    ("TOKENDESK_LAST_USED_FLUSH_SECS", "0.2"),
    ("TOKENDESK_TOKEN_FAILURE_LIMIT", "0"),
    ("RUST_LOG", "tokendesk=info"),
];
const TOKENS: usize = 60;
const REVOKES: usize = 20;
const CLIENTS: usize = 24;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_behind_nginx_refuse_a_revoked_token_everywhere_under_load() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let app = TestApp::spawn(Backend::Postgres).await;
    let user = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let (_, manager) = app
        .token_for(user.id, "manager", &["personalAccessToken:write"])
        .await;
    let mut tokens = Vec::new();
    for i in 0..TOKENS {
        tokens.push(
            app.token_for(user.id, &format!("load {i}"), &["tag:read"])
                .await,
        );
    }
    let instances = [
        ServerProcess::start(&app.database_url, &INSTANCE).await,
        ServerProcess::start(&app.database_url, &INSTANCE).await,
        ServerProcess::start(&app.database_url, &INSTANCE).await,
    ];
    for instance in &instances {
        crate::instances::logged(instance, crate::instances::LISTENING, 1).await;
    }
    let ports: Vec<String> = instances.iter().map(|i| i.port.to_string()).collect();
    let nginx = Nginx::start_with(
        include_str!("../api/fixtures/nginx-instances.conf"),
        &[("{A}", &ports[0]), ("{B}", &ports[1]), ("{C}", &ports[2])],
    )
    .await;
    let front = format!("http://127.0.0.1:{}", nginx.port);

    // The load: every client cycles through every token, through nginx.
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let secrets: Arc<Vec<String>> = Arc::new(tokens.iter().map(|(_, s)| s.clone()).collect());
    let mut load = Vec::new();
    for c in 0..CLIENTS {
        let (stop, failures, secrets) = (stop.clone(), failures.clone(), secrets.clone());
        let url = format!("{front}/api/v1/me");
        load.push(tokio::spawn(async move {
            let http = client();
            let (mut answered, mut next) = (0_u64, c);
            while !stop.load(Ordering::Relaxed) {
                let sent = http.get(&url).bearer_auth(&secrets[next % TOKENS]).send();
                match sent.await.map(|r| r.status()) {
                    Ok(StatusCode::OK | StatusCode::UNAUTHORIZED) => answered += 1,
                    Ok(other) => failures.lock().unwrap().push(format!("status {other}")),
                    Err(e) => failures.lock().unwrap().push(with_causes(&e)),
                }
                next += 1;
            }
            answered
        }));
    }

    // Last used of a few tokens, read from the database throughout: never earlier than before.
    let sampler = {
        let (stop, db) = (stop.clone(), app.db.clone());
        let watched: Vec<i64> = tokens[REVOKES..REVOKES + 5]
            .iter()
            .map(|(id, _)| *id)
            .collect();
        tokio::spawn(async move {
            use diesel::prelude::*;
            use tokendesk::db::schema::token_last_uses as uses;
            let mut seen = std::collections::HashMap::new();
            let (mut reads, mut backwards) = (0, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                let ids = watched.clone();
                let now: Vec<(i64, Option<chrono::NaiveDateTime>)> = db
                    .run(move |c| {
                        uses::table
                            .filter(uses::token_id.eq_any(ids))
                            .select((uses::token_id, uses::last_used_at))
                            .load(c)
                    })
                    .await
                    .unwrap();
                for (id, at) in now {
                    if let Some(before) = seen.insert(id, at) {
                        if at < before {
                            backwards.push(format!("token {id}: {before:?} then {at:?}"));
                        }
                    }
                }
                reads += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (reads, seen, backwards)
        })
    };

    // Revokes through nginx (whichever instance it picks), each then asked of all three directly.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let http = client();
    let mut heard_after = Vec::new();
    for (id, secret) in &tokens[..REVOKES] {
        let url = format!("{front}/api/v1/personal-access-tokens/{id}");
        let revoked = http.delete(url).bearer_auth(&manager).send().await.unwrap();
        assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
        let answered = Instant::now();
        let (a, b, c) = tokio::join!(
            refused_by(&instances[0], secret, answered),
            refused_by(&instances[1], secret, answered),
            refused_by(&instances[2], secret, answered),
        );
        heard_after.extend([a, b, c]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let mut answered = 0;
    for client in load {
        answered += client.await.unwrap();
    }
    let (reads, last_seen, backwards) = sampler.await.unwrap();

    let failures = failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "{} failed requests: {:?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    assert!(backwards.is_empty(), "Last used moved back: {backwards:?}");
    assert!(
        last_seen.values().all(Option::is_some),
        "Last used written under load ({reads} reads): {last_seen:?}"
    );
    // Afterwards, every instance agrees on every token.
    for instance in &instances {
        for (i, (_, secret)) in tokens.iter().enumerate() {
            let status = me(instance, secret).await;
            let expected = if i < REVOKES {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::OK
            };
            assert_eq!(status, expected, "token {i} at {}", instance.address);
        }
    }
    for instance in instances {
        let log = std::fs::read_to_string(&instance.log).unwrap();
        assert!(!log.contains(" ERROR "), "{log}");
        for (_, secret) in &tokens {
            assert!(!log.contains(secret.as_str()), "a token in the log");
        }
        let (status, _) = instance.terminate().await;
        assert!(status.success());
    }
    println!(
        "three instances behind nginx: {answered} requests answered, none failed; {REVOKES} revokes \
         refused by all three instances after p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms from the revoke's \
         answer; Last used read {reads} times, never backwards",
        percentile(&mut heard_after, 0.5),
        percentile(&mut heard_after, 0.99),
        percentile(&mut heard_after, 1.0),
    );
}

/// How long after `since` `instance` first refuses `secret`.
async fn refused_by(instance: &ServerProcess, secret: &str, since: Instant) -> Duration {
    loop {
        match me(instance, secret).await {
            StatusCode::UNAUTHORIZED => return since.elapsed(),
            status => assert_eq!(status, StatusCode::OK),
        }
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "{} still accepts a token 10 s after its revoke",
            instance.address
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The README's deployment snippet is the configuration this test runs.
#[test]
fn the_readme_shows_the_deployment_configuration_the_tests_run() {
    let readme = include_str!("../../README.md");
    let section = readme.find("## Deployment").expect("a deployment section");
    let start = section
        + readme[section..]
            .find("```nginx\n")
            .expect("an nginx block")
        + "```nginx\n".len();
    let end = readme[start..].find("```").unwrap() + start;
    let shown: Vec<String> = readme[start..end]
        .replace("127.0.0.1:8081", "127.0.0.1:{A}")
        .replace("127.0.0.1:8082", "127.0.0.1:{B}")
        .replace("127.0.0.1:8083", "127.0.0.1:{C}")
        .replace("listen 443 ssl;", "listen 127.0.0.1:{PORT};")
        .lines()
        .map(|line| line.trim().to_owned())
        .filter(|line| !line.starts_with("server_name") && !line.starts_with("ssl_"))
        .collect();
    crate::nginx::assert_fixture_shows(
        &shown,
        include_str!("../api/fixtures/nginx-instances.conf"),
        "tests/api/fixtures/nginx-instances.conf",
    );
}
