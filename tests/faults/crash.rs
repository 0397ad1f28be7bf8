//! `kill -9` while clients create tokens through the API: every token whose creation answered
//! 201 still authenticates after the restart, and no token exists half-made.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use reqwest::StatusCode;
use tokendesk::db::schema::{audit_events as audit, personal_access_tokens as pat};
use tokendesk::domain::Role;

use crate::helpers::TestApp;
use crate::server::{free_port, ServerProcess};
use crate::{backend_tests, client, ONE_AT_A_TIME};

backend_tests!(a_kill_9_loses_no_token_it_answered_for);

const CLIENTS: usize = 8;

async fn a_kill_9_loses_no_token_it_answered_for(app: TestApp) {
    let _alone = ONE_AT_A_TIME.lock().await;
    let user = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let (manager_id, manager) = app
        .token_for(
            user.id,
            "manager",
            &["personalAccessToken:write", "tag:read"],
        )
        .await;
    // Hundreds of tokens for one person: past the policy's default limit.
    app.set_active_token_limit(100_000).await;
    let port = free_port();
    let settings = [("TOKENDESK_TOKEN_FAILURE_LIMIT", "0")];
    let mut server = ServerProcess::start_on(port, &app.database_url, &settings).await;
    let url = format!("{}/api/v1/personal-access-tokens", server.address);

    // (id, secret) of every creation answered 201; any other answer before the kill is a failure.
    let answered: Arc<Mutex<Vec<(i64, String)>>> = Default::default();
    let unexpected: Arc<Mutex<Vec<String>>> = Default::default();
    let http = client();
    let creators: Vec<_> = (0..CLIENTS)
        .map(|k| {
            let (http, url, manager) = (http.clone(), url.clone(), manager.clone());
            let (answered, unexpected) = (answered.clone(), unexpected.clone());
            tokio::spawn(async move {
                for i in 0.. {
                    let body = serde_json::json!({
                        "name": format!("crash {k}-{i}"),
                        "expires_in": "30",
                        "scopes": ["tag:read"],
                    });
                    let sent = http.post(&url).bearer_auth(&manager).json(&body).send();
                    let Ok(response) = sent.await else {
                        return; // the server is gone
                    };
                    let status = response.status();
                    let Ok(text) = response.text().await else {
                        return; // killed while answering
                    };
                    if status != StatusCode::CREATED {
                        unexpected.lock().unwrap().push(format!("{status}: {text}"));
                        continue;
                    }
                    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
                    let id = json["token"]["id"].as_i64().unwrap();
                    let secret = json["secret"].as_str().unwrap().to_owned();
                    answered.lock().unwrap().push((id, secret));
                }
            })
        })
        .collect();

    // Kill it mid-stream, once it has answered a fair number.
    let started = Instant::now();
    while answered.lock().unwrap().len() < 150 && started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(37)).await;
    server.kill_hard();
    for creator in creators {
        creator.await.unwrap();
    }
    let answered = std::mem::take(&mut *answered.lock().unwrap());
    let unexpected = std::mem::take(&mut *unexpected.lock().unwrap());
    assert!(unexpected.is_empty(), "non-201 answers: {unexpected:?}");
    assert!(answered.len() >= 150, "only {} created", answered.len());

    // Restarted on the same database and port, every answered token works.
    let server = ServerProcess::start_on(port, &app.database_url, &settings).await;
    let me = format!("{}/api/v1/me", server.address);
    for (id, secret) in &answered {
        let response = http.get(&me).bearer_auth(secret).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "token {id} was lost");
        let json: serde_json::Value = response.json().await.unwrap();
        assert_eq!(json["token"]["id"].as_i64(), Some(*id));
    }

    // What is stored is whole: each row complete, each with its audit event (one transaction);
    // the only extra rows are creations the kill cut off before they were answered.
    let user_id = user.id;
    let (rows, events) = app
        .db
        .run(move |conn| {
            let rows = pat::table
                .filter(pat::user_id.eq(user_id))
                .filter(pat::id.ne(manager_id))
                .select((pat::id, pat::digest, pat::hint, pat::scopes))
                .load::<(i64, String, String, String)>(conn)?;
            let events = audit::table
                .filter(audit::action.eq("token.created"))
                .select(audit::target_id)
                .load::<Option<i64>>(conn)?;
            Ok((rows, events))
        })
        .await
        .unwrap();
    for (id, digest, hint, scopes) in &rows {
        assert_eq!(digest.len(), 64, "token {id} has a whole digest");
        assert!(hint.starts_with("tdk_"), "token {id} has its hint");
        assert_eq!(scopes, "tag:read", "token {id} has its scopes");
        assert!(
            events.contains(&Some(*id)),
            "token {id} has its audit event"
        );
    }
    assert_eq!(events.len(), rows.len(), "an event for each token, no more");
    let cut_off = rows.len() - answered.len();
    assert!(
        cut_off <= CLIENTS,
        "{cut_off} stored tokens were never answered for"
    );
    println!(
        "crash safety ({:?}): kill -9 after {} creations answered 201 by {CLIENTS} clients; after the restart all {} authenticate; {} rows stored, all whole ({} cut off before their answer, 0 half-made)",
        app.backend(),
        answered.len(),
        answered.len(),
        rows.len(),
        cut_off
    );
}
