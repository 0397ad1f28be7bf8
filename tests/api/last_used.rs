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
