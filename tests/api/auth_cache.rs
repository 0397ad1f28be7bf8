//! The verified-token cache (on by default, 30 s) never delays a change made through tokendesk,
//! on this instance or (on PostgreSQL, heard through NOTIFY) on another, and delays one made in
//! the database by hand by at most its lifetime. The tests that wait for the
//! lifetime give it 30 s and move the server's clock, so a slow machine cannot fail them.

use std::time::Duration;

use reqwest::StatusCode;
use tokendesk::domain::Role;

use crate::backend_tests;
use crate::helpers::{user_and_browser, TestApp, TokenTimes};

backend_tests!(
    changes_here_apply_to_the_next_request,
    changes_made_by_hand_apply_within_the_cache_lifetime,
    the_inventory_total_follows_changes_here_at_once_and_by_hand_within_the_lifetime,
);

const LIFETIME: Duration = Duration::from_secs(30);

/// A write whose request goes away while it commits (its future dropped) still makes what this
/// instance cached stale: the generation moves on the thread that committed.
#[actix_web::test]
async fn a_write_abandoned_while_it_commits_still_makes_the_cache_stale() {
    use tokendesk::db::{DatabaseUrl, Db};
    let dir = tempfile::tempdir().unwrap();
    let db = Db::connect(DatabaseUrl::Sqlite(dir.path().join("abandoned.db")), 2).unwrap();
    db.migrate().unwrap();
    let before = db.cache_generation().expect("SQLite hears every change");
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let mut write = Box::pin(db.write(move |_conn| {
        wait.recv().ok();
        Ok(())
    }));
    // Under way on a blocking thread (held there), the write's request goes away.
    let unfinished = tokio::time::timeout(Duration::from_millis(50), &mut write).await;
    assert!(
        unfinished.is_err(),
        "the write finished before its commit was let go"
    );
    drop(write);
    go.send(()).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while db.cache_generation() == Some(before) {
        assert!(
            std::time::Instant::now() < deadline,
            "the abandoned write never made the cache stale"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn cached_app(app: TestApp) -> TestApp {
    let backend = app.backend();
    drop(app);
    TestApp::spawn_with(backend, |config| {
        config.auth_cache_ms = LIFETIME.as_millis() as u64;
    })
    .await
}

async fn changes_here_apply_to_the_next_request(app: TestApp) {
    let app = cached_app(app).await;
    let admin = app.setup_admin().await;
    let (grace, grace_browser) = user_and_browser(&app, "grace@example.com", Role::Admin).await;
    let api = app.api();
    let (_, manager) = app
        .token_for(
            grace.id,
            "manager",
            &["personalAccessToken:write", "license:write"],
        )
        .await;
    let (doomed_id, doomed) = app.token_for(grace.id, "doomed", &["tag:read"]).await;

    // Revoked through the API: refused on the very next request, though it was just cached.
    assert_eq!(api.me(&doomed).await.status(), StatusCode::OK);
    let url = format!("{}/api/v1/personal-access-tokens/{doomed_id}", app.address);
    assert_eq!(
        api.client
            .delete(url)
            .bearer_auth(&manager)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(api.me(&doomed).await.status(), StatusCode::UNAUTHORIZED);

    // Regenerated on the page: the old secret is refused at once.
    let old = grace_browser
        .create_token("rotating", "30", &["tag:read"])
        .await;
    assert_eq!(api.me(&old).await.status(), StatusCode::OK);
    let id = crate::helpers::stored_tokens(&app, grace.id).await[0].id;
    let path = format!("/developer/access-tokens/{id}/regenerate");
    grace_browser
        .submit_form(&path, &path, &[("expires_in", "30")])
        .await;
    assert_eq!(api.me(&old).await.status(), StatusCode::UNAUTHORIZED);

    // Demoted by an admin: the write scope goes at once.
    let verify = |token: String| {
        let api = &api;
        async move {
            api.verify("?scope=license:write", &[("x-auth-token", &token)])
                .await
                .status()
        }
    };
    assert_eq!(verify(manager.clone()).await, StatusCode::NO_CONTENT);
    admin
        .submit_form(
            "/admin/members",
            &format!("/admin/members/{}/role", grace.id),
            &[("role", "user")],
        )
        .await;
    assert_eq!(verify(manager.clone()).await, StatusCode::FORBIDDEN);

    // Deactivated: every token refused at once.
    assert_eq!(api.me(&manager).await.status(), StatusCode::OK);
    let path = format!("/admin/members/{}/deactivate", grace.id);
    admin.submit_form(&path, &path, &[]).await;
    assert_eq!(api.me(&manager).await.status(), StatusCode::UNAUTHORIZED);
}

async fn changes_made_by_hand_apply_within_the_cache_lifetime(app: TestApp) {
    let app = cached_app(app).await;
    let user = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let (id, token) = app.token_by_hand(user.id, "ci", &["tag:read"]).await;
    let api = app.api();
    assert_eq!(api.me(&token).await.status(), StatusCode::OK);
    // Revoked in the database by hand, telling no instance: this instance may answer from its
    // cache until the entry is as old as the cache's lifetime, and not a moment longer.
    app.db
        .run(move |c| tokendesk::tokens::store::revoke(c, id, user.id))
        .await
        .unwrap();
    assert_eq!(api.me(&token).await.status(), StatusCode::OK, "cached");
    app.clock.advance(LIFETIME);
    assert_eq!(api.me(&token).await.status(), StatusCode::UNAUTHORIZED);

    // Expiry needs no change at all: a cached token stops working the moment it expires,
    // though its cache entry is younger than the lifetime.
    let (id, token) = app.token_for(user.id, "short", &["tag:read"]).await;
    let expires = app.clock.now() + chrono::Duration::seconds(20);
    let expiry = TokenTimes {
        expires_at: Some(expires),
        ..TokenTimes::default()
    };
    app.set_token_times(id, expiry).await;
    assert_eq!(api.me(&token).await.status(), StatusCode::OK);
    app.clock.advance(Duration::from_secs(20));
    let refused = api.me(&token).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused.text().await.unwrap().contains("expired"));
}

/// The admin inventory keeps its total as long as a verified token: refreshed by any change on
/// this instance, and within the cache's lifetime after a change made by hand.
async fn the_inventory_total_follows_changes_here_at_once_and_by_hand_within_the_lifetime(
    app: TestApp,
) {
    let app = cached_app(app).await;
    let admin = app.setup_admin().await;
    let (grace, grace_browser) = user_and_browser(&app, "grace@example.com", Role::User).await;
    let total = |html: String| {
        let marker = "<p class=\"result-bar\"><span class=\"muted\">";
        let start = html.find(marker).expect("the result bar") + marker.len();
        let end = start + html[start..].find(' ').unwrap();
        html[start..end].to_owned()
    };
    let inventory = "/admin/access-tokens";
    admin.page(inventory).await;

    // Made through this instance: counted on the next view.
    grace_browser.create_token("ci", "30", &["tag:read"]).await;
    assert_eq!(total(admin.page(inventory).await), "1");

    // Made in the database by hand, telling no instance: counted within the lifetime.
    app.token_by_hand(grace.id, "by hand", &["tag:read"]).await;
    assert_eq!(total(admin.page(inventory).await), "1", "cached");
    app.clock.advance(LIFETIME);
    assert_eq!(total(admin.page(inventory).await), "2");
}
