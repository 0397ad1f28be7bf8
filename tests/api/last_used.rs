use std::time::{Duration, Instant};

use chrono::Utc;
use diesel::prelude::*;
use reqwest::StatusCode;
use tokendesk::db::schema::token_last_uses as uses;
use tokendesk::domain::Role;
use tokendesk::notifications::Outbox;
use tokendesk::tokens::LastUsedRecorder;

use crate::backend_tests;
use crate::helpers::{cell, user_and_browser, Backend, TestApp};

backend_tests!(
    last_used_appears_after_the_flush_interval,
    last_used_never_moves_backwards,
);

async fn last_used_of(
    app: &TestApp,
    token_id: i64,
) -> (Option<chrono::NaiveDateTime>, Option<String>) {
    app.db
        .run(move |conn| {
            uses::table
                .find(token_id)
                .select((uses::last_used_at, uses::last_used_ip))
                .first(conn)
        })
        .await
        .unwrap()
}

async fn last_used_appears_after_the_flush_interval(app: TestApp) {
    let backend = if app.database_url.starts_with("postgres") {
        Backend::Postgres
    } else {
        Backend::Sqlite
    };
    drop(app);
    let app = TestApp::spawn_with(backend, |config| config.last_used_flush_secs = 0.3).await;
    let (user, browser) = user_and_browser(&app, "grace@example.com", Role::User).await;
    let (id, token) = app.token_for(user.id, "ci", &["tag:read"]).await;
    let list = browser.page("/developer/access-tokens").await;
    assert!(cell(&list, "last-used").contains(">Never<"));

    let used_at = Utc::now().naive_utc();
    assert_eq!(app.api().me(&token).await.status(), StatusCode::OK);
    // Not written per request, but within a few flush intervals.
    let started = Instant::now();
    let (at, ip) = loop {
        let (at, ip) = last_used_of(&app, id).await;
        if at.is_some() || started.elapsed() > Duration::from_secs(5) {
            break (at, ip);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let at = at.expect("Last used was written");
    assert!((at - used_at).num_seconds().abs() < 5);
    assert_eq!(ip.as_deref(), Some("127.0.0.1"));
    let list = browser.page("/developer/access-tokens").await;
    let last_used = cell(&list, "last-used");
    assert!(
        !last_used.contains(">Never<"),
        "no longer Never: {last_used}"
    );
    assert!(last_used.contains("just now") && last_used.contains(" from 127.0.0.1\""));
    let own_page = browser
        .page(&format!("/developer/access-tokens/{id}"))
        .await;
    assert!(
        own_page.contains("from <code>127.0.0.1</code>"),
        "{own_page}"
    );
}

async fn last_used_never_moves_backwards(app: TestApp) {
    let user = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let (id, _) = app.token_for(user.id, "ci", &["tag:read"]).await;
    // Two instances' recorders writing to one database, the later use first.
    let later = Utc::now().naive_utc();
    let earlier = later - chrono::Duration::minutes(10);
    let first = LastUsedRecorder::new(app.db.clone(), Outbox::Off);
    let second = LastUsedRecorder::new(app.db.clone(), Outbox::Off);
    first.record(
        id,
        tokendesk::tokens::SecretUsed::Current,
        later,
        "10.0.0.2",
        "test",
    );
    second.record(
        id,
        tokendesk::tokens::SecretUsed::Current,
        earlier,
        "10.0.0.1",
        "test",
    );
    // Within one recorder an older use does not replace a newer one either.
    first.record(
        id,
        tokendesk::tokens::SecretUsed::Current,
        earlier,
        "10.0.0.9",
        "test",
    );
    let (db1, db2) = (first.clone(), second.clone());
    tokio::task::spawn_blocking(move || {
        assert_eq!(db1.flush().unwrap(), 1);
        assert_eq!(db2.flush().unwrap(), 1);
    })
    .await
    .unwrap();
    let (at, ip) = last_used_of(&app, id).await;
    assert_eq!(
        at.unwrap().and_utc().timestamp_micros(),
        later.and_utc().timestamp_micros()
    );
    assert_eq!(ip.as_deref(), Some("10.0.0.2"));
}

/// Sessions of `database_url` waiting for a row lock whose statement mentions `table`.
async fn waiting_on(app: &TestApp, table: &str) -> i64 {
    #[derive(QueryableByName)]
    struct Waiting {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let sql = format!(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() \
         AND wait_event_type = 'Lock' AND query LIKE '%{table}%'"
    );
    app.db
        .run(move |conn| diesel::sql_query(sql).get_result::<Waiting>(conn))
        .await
        .unwrap()
        .n
}

/// Waits until `count` sessions wait for a lock on `table`.
async fn until_waiting(app: &TestApp, table: &str, count: i64) {
    let started = Instant::now();
    while waiting_on(app, table).await < count {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "nobody waits on {table}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// PostgreSQL (READ COMMITTED): another instance's flush writes a use of a token's secret, and
/// before it commits, the owner regenerates the token keeping the old secret for an hour. The
/// use was the old secret's: the replaced secret's Last used must show it, not the use before.
/// (The regenerate read the last-use row without waiting for the flush's uncommitted write,
/// then wiped the row once the flush committed: the use was lost.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_use_flushed_while_a_regenerate_reads_it_stays_with_the_replaced_secret() {
    // The server writes nothing itself during the test: the recorder below is the other instance.
    let app = TestApp::spawn_with(Backend::Postgres, |config| {
        config.last_used_flush_secs = 3600.0
    })
    .await;
    let user = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let (id, old) = app.token_for(user.id, "deploy-bot", &["tag:read"]).await;
    // A second token, regenerated with an overlap: a use from before that goes to its replaced
    // secret, which is how the flush below is held (its replaced-secret row is locked).
    let (held_id, held) = app.token_for(user.id, "held", &["tag:read"]).await;
    let held_used = Utc::now().naive_utc();
    tokio::time::sleep(Duration::from_millis(10)).await;
    let rotated = app
        .api()
        .post_as(
            crate::helpers::SELF_ROTATE,
            &held,
            Some(serde_json::json!({"overlap": "1h"})),
        )
        .await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let before = Utc::now().naive_utc() - chrono::Duration::hours(1);
    let times = crate::helpers::TokenTimes {
        last_used: Some((before, Some("10.0.0.1".into()))),
        ..Default::default()
    };
    app.set_token_times(id, times).await;
    let used = Utc::now().naive_utc();

    // Someone holds the held token's replaced-secret row.
    let (locked, release) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
    let url = app.database_url.clone();
    let holder = std::thread::spawn(move || {
        let mut conn = diesel::PgConnection::establish(&url).unwrap();
        diesel::sql_query("BEGIN").execute(&mut conn).unwrap();
        diesel::sql_query(format!(
            "SELECT token_id FROM token_previous_secrets WHERE token_id = {held_id} FOR UPDATE"
        ))
        .execute(&mut conn)
        .unwrap();
        locked.0.send(()).unwrap();
        release.1.recv().unwrap();
        diesel::sql_query("COMMIT").execute(&mut conn).unwrap();
    });
    locked.1.recv().unwrap();

    // The other instance flushes: the deploy bot's use is written, the held one's waits.
    let other = LastUsedRecorder::new(app.db.clone(), Outbox::Off);
    let current = tokendesk::tokens::SecretUsed::Current;
    other.record(id, current, used, "10.0.0.2", "test");
    other.record(held_id, current, held_used, "10.0.0.3", "test");
    let flush = tokio::task::spawn_blocking(move || other.flush());
    until_waiting(&app, "token_previous_secrets", 1).await;

    // Meanwhile the deploy bot is regenerated, keeping its old secret for an hour.
    let api = app.api();
    let regenerate = tokio::spawn(async move {
        api.post_as(
            crate::helpers::SELF_ROTATE,
            &old,
            Some(serde_json::json!({"overlap": "1h"})),
        )
        .await
        .status()
    });
    // It waits for the flush (at the latest when it writes the last-use row).
    until_waiting(&app, "token_", 2).await;
    release.0.send(()).unwrap();
    holder.join().unwrap();
    assert_eq!(flush.await.unwrap().unwrap(), 2);
    assert_eq!(regenerate.await.unwrap(), StatusCode::OK);

    let (previous, current_use) = app
        .db
        .run(move |conn| {
            use tokendesk::db::schema::token_previous_secrets as prev;
            Ok::<_, diesel::result::Error>((
                prev::table
                    .find(id)
                    .select((prev::last_used_at, prev::last_used_ip))
                    .first::<(Option<chrono::NaiveDateTime>, Option<String>)>(conn)?,
                uses::table
                    .find(id)
                    .select(uses::last_used_at)
                    .first::<Option<chrono::NaiveDateTime>>(conn)?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(current_use, None, "the new secret was not used");
    let micros = |at: chrono::NaiveDateTime| at.and_utc().timestamp_micros();
    assert_eq!(
        (previous.0.map(micros), previous.1.as_deref()),
        (Some(micros(used)), Some("10.0.0.2")),
        "the old secret's last use, flushed during the regenerate"
    );
}

/// Deadlocks PostgreSQL has reported so far (its log, where the test machine keeps it).
fn deadlocks_logged() -> usize {
    std::fs::read_to_string("/var/log/postgresql/postgresql-15-main.log")
        .map(|log| log.matches("deadlock detected").count())
        .unwrap_or(0)
}

/// PostgreSQL (READ COMMITTED): two instances' recorders flush uses of the same tokens, from
/// changing addresses, in a tight loop, while their owners regenerate them (with and without an
/// overlap), revoke them and make new ones, and an admin revokes in bulk and deactivates a
/// member. No flush fails, no page answers a 5xx, PostgreSQL detects no deadlock, and at the
/// end each token's Last used is its current secret's latest use: none of the replaced
/// secret's, none lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushes_and_token_changes_side_by_side_never_deadlock_nor_misplace_a_use() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let app = TestApp::spawn_with(Backend::Postgres, |config| {
        config.last_used_flush_secs = 3600.0
    })
    .await;
    let deadlocks = deadlocks_logged();
    let admin = app.setup_admin().await;
    let mut owners = Vec::new();
    let ids = Arc::new(Mutex::new(Vec::new()));
    for n in 0..3 {
        let email = format!("owner{n}@example.com");
        let (user, browser) = user_and_browser(&app, &email, Role::User).await;
        for t in 0..15 {
            let (id, _) = app
                .token_for(user.id, &format!("bot-{t}"), &["tag:read"])
                .await;
            ids.lock().unwrap().push(id);
        }
        owners.push((user, browser));
    }

    // The uses each recorder saw, as the recorder got them (to the microsecond, as stored).
    let seen: Arc<Mutex<Vec<(i64, chrono::NaiveDateTime)>>> = Default::default();
    let errors: Arc<Mutex<Vec<String>>> = Default::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut instances = Vec::new();
    for instance in 0..2 {
        let recorder = LastUsedRecorder::new(app.db.clone(), Outbox::Off);
        let (ids, seen, errors, stop) = (ids.clone(), seen.clone(), errors.clone(), stop.clone());
        instances.push(std::thread::spawn(move || {
            use rand::seq::IndexedRandom;
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) {
                round += 1;
                let picked: Vec<i64> = {
                    let ids = ids.lock().unwrap();
                    ids.choose_multiple(&mut rand::rng(), 20).copied().collect()
                };
                for id in picked {
                    let now = Utc::now().naive_utc();
                    let at =
                        chrono::DateTime::from_timestamp_micros(now.and_utc().timestamp_micros())
                            .unwrap()
                            .naive_utc();
                    let ip = format!("10.{instance}.{}.{}", round % 7, id % 5);
                    let secret = if round.is_multiple_of(3) {
                        tokendesk::tokens::SecretUsed::Previous
                    } else {
                        seen.lock().unwrap().push((id, at));
                        tokendesk::tokens::SecretUsed::Current
                    };
                    recorder.record(id, secret, at, &ip, &format!("agent-{}", round % 3));
                }
                if let Err(e) = recorder.flush() {
                    errors.lock().unwrap().push(format!("flush: {e}"));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            if let Err(e) = recorder.flush() {
                errors.lock().unwrap().push(format!("last flush: {e}"));
            }
        }));
    }

    let started = Instant::now();
    let mut round = 0;
    while started.elapsed() < Duration::from_secs(8) {
        round += 1;
        for (n, (user, browser)) in owners.iter().enumerate() {
            if n == 2 && round > 10 {
                // Deactivated: signed out.
                continue;
            }
            let tokens = crate::helpers::stored_tokens(&app, user.id).await;
            let live: Vec<_> = tokens.iter().filter(|t| t.revoked_at.is_none()).collect();
            let Some(token) = live.get(round % live.len().max(1)) else {
                continue;
            };
            let regenerate = format!("/developer/access-tokens/{}/regenerate", token.id);
            let overlap = if round % 2 == 0 { "1h" } else { "none" };
            let fields = [
                ("expires_in", "30"),
                ("overlap", overlap),
                ("allowed_addresses", ""),
            ];
            let response = browser.submit_form(&regenerate, &regenerate, &fields).await;
            assert!(
                !response.status().is_server_error(),
                "regenerate: {response:?}"
            );
            if round % 5 == n {
                let revoke = format!("/developer/access-tokens/{}/revoke", token.id);
                let response = browser
                    .submit_form(&revoke, &revoke, &[("confirm", "DELETE")])
                    .await;
                assert!(!response.status().is_server_error(), "revoke: {response:?}");
                let response = browser
                    .submit_new_token(&[
                        ("name", &format!("new-{round}")),
                        ("expires_in", "30"),
                        ("scopes", "tag:read"),
                    ])
                    .await;
                assert!(!response.status().is_server_error(), "create: {response:?}");
                let made = crate::helpers::stored_tokens(&app, user.id).await[0].id;
                ids.lock().unwrap().push(made);
            }
        }
        if round % 7 == 0 {
            let owner = owners[round % 3].0.id;
            let filters = format!("owner={owner}&never_used=1");
            let confirm = admin
                .page(&format!("/admin/access-tokens/bulk-revoke?{filters}"))
                .await;
            let count = confirm
                .split("Revoke ")
                .nth(1)
                .and_then(|s| s.split(' ').next())
                .unwrap_or("0")
                .to_owned();
            let fields = [
                ("csrf_token", crate::helpers::csrf_token(&confirm)),
                ("filters", filters),
                ("expected", count),
                ("confirm", "DELETE".to_owned()),
            ];
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let response = admin
                .post("/admin/access-tokens/bulk-revoke", &fields)
                .await;
            assert!(
                !response.status().is_server_error(),
                "bulk revoke: {response:?}"
            );
        }
        if round == 10 {
            let path = format!("/admin/members/{}/deactivate", owners[2].0.id);
            let response = admin.submit_form(&path, &path, &[]).await;
            assert!(
                !response.status().is_server_error(),
                "deactivate: {response:?}"
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    for instance in instances {
        instance.join().unwrap();
    }
    assert_eq!(*errors.lock().unwrap(), Vec::<String>::new());
    assert_eq!(
        deadlocks_logged(),
        deadlocks,
        "deadlocks in PostgreSQL's log"
    );
    assert!(round > 10, "the changes ran ({round} rounds)");

    // Each token's Last used: its current secret's latest use, nothing of the replaced ones'.
    let rows: Vec<(
        i64,
        Option<chrono::NaiveDateTime>,
        Option<chrono::NaiveDateTime>,
    )> = app
        .db
        .run(|conn| {
            uses::table
                .select((uses::token_id, uses::last_used_at, uses::secret_since))
                .load(conn)
        })
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    let mut wrong = Vec::new();
    for (id, last_used_at, secret_since) in rows {
        let expected = seen
            .iter()
            .filter(|(used, at)| *used == id && secret_since.is_none_or(|since| *at >= since))
            .map(|(_, at)| *at)
            .max();
        if last_used_at != expected {
            wrong.push((id, last_used_at, expected, secret_since));
        }
    }
    assert!(
        wrong.is_empty(),
        "(token, Last used, expected, secret since): {wrong:?}"
    );
}
