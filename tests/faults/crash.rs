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

/// What the creators saw: (id, secret) of every creation answered 201, and any other answer
/// given before the kill (each a failure).
#[derive(Default)]
struct Answers {
    answered: Mutex<Vec<(i64, String)>>,
    unexpected: Mutex<Vec<String>>,
}

/// `CLIENTS` tasks creating tokens through the API at `url` until the server is gone.
fn start_creators(
    http: &reqwest::Client,
    url: &str,
    manager: &str,
    answers: &Arc<Answers>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..CLIENTS)
        .map(|k| {
            let (http, url, manager) = (http.clone(), url.to_owned(), manager.to_owned());
            let answers = answers.clone();
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
                        let failure = format!("{status}: {text}");
                        answers.unexpected.lock().unwrap().push(failure);
                        continue;
                    }
                    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
                    let id = json["token"]["id"].as_i64().unwrap();
                    let secret = json["secret"].as_str().unwrap().to_owned();
                    answers.answered.lock().unwrap().push((id, secret));
                }
            })
        })
        .collect()
}

/// The stored rows (id, digest, hint, scopes) of the user's tokens but the manager, and the
/// target of every `token.created` event.
async fn stored_rows_and_events(
    app: &TestApp,
    user_id: i64,
    manager_id: i64,
) -> (Vec<(i64, String, String, String)>, Vec<Option<i64>>) {
    app.db
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
        .unwrap()
}

/// Each (id, secret) authenticates on `server` as its own token.
async fn assert_each_authenticates(
    http: &reqwest::Client,
    server: &ServerProcess,
    tokens: &[(i64, String)],
) {
    let me = format!("{}/api/v1/me", server.address);
    for (id, secret) in tokens {
        let response = http.get(&me).bearer_auth(secret).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "token {id} was lost");
        let json: serde_json::Value = response.json().await.unwrap();
        assert_eq!(json["token"]["id"].as_i64(), Some(*id));
    }
}

/// Kills the server with SIGKILL mid-stream, once it has answered a fair number (150, or after
/// 20 s).
async fn kill_mid_stream(server: &mut ServerProcess, answers: &Answers) {
    let started = Instant::now();
    while answers.answered.lock().unwrap().len() < 150
        && started.elapsed() < Duration::from_secs(20)
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(37)).await;
    server.kill_hard();
}

async fn a_kill_9_loses_no_token_it_answered_for(app: TestApp) {
    let _alone = ONE_AT_A_TIME.lock().await;
    let user = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let scopes = ["personalAccessToken:write", "tag:read"];
    let (manager_id, manager) = app.token_for(user.id, "manager", &scopes).await;
    // Hundreds of tokens for one person: past the policy's default limit.
    app.set_active_token_limit(100_000).await;
    let port = free_port();
    let settings = [("TOKENDESK_TOKEN_FAILURE_LIMIT", "0")];
    let mut server = ServerProcess::start_on(port, &app.database_url, &settings).await;
    let url = format!("{}/api/v1/personal-access-tokens", server.address);
    let http = client();
    let answers = Arc::new(Answers::default());
    let creators = start_creators(&http, &url, &manager, &answers);

    kill_mid_stream(&mut server, &answers).await;
    for creator in creators {
        creator.await.unwrap();
    }
    let answered = std::mem::take(&mut *answers.answered.lock().unwrap());
    let unexpected = std::mem::take(&mut *answers.unexpected.lock().unwrap());
    assert!(unexpected.is_empty(), "non-201 answers: {unexpected:?}");
    assert!(answered.len() >= 150, "only {} created", answered.len());

    // Restarted on the same database and port, every answered token works.
    let server = ServerProcess::start_on(port, &app.database_url, &settings).await;
    assert_each_authenticates(&http, &server, &answered).await;

    // What is stored is whole: each row complete, each with its audit event (one transaction);
    // the only extra rows are creations the kill cut off before they were answered.
    let (rows, events) = stored_rows_and_events(&app, user.id, manager_id).await;
    for (id, digest, hint, scopes) in &rows {
        assert_eq!(digest.len(), 64, "token {id} has a whole digest");
        assert!(hint.starts_with("tdk_"), "token {id} has its hint");
        assert_eq!(scopes, "tag:read", "token {id} has its scopes");
        let has_event = events.contains(&Some(*id));
        assert!(has_event, "token {id} has its audit event");
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
