//! The verified-token cache (on by default, 1 s) never delays a change made on this instance,
//! and delays one made by another instance by at most its lifetime.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokendesk::domain::Role;

use crate::backend_tests;
use crate::helpers::{user_and_browser, TestApp, TokenTimes};

backend_tests!(
    changes_here_apply_to_the_next_request,
    changes_elsewhere_apply_within_a_second,
    the_inventory_total_follows_changes_here_at_once_and_elsewhere_within_a_second,
);

async fn cached_app(app: TestApp) -> TestApp {
    let backend = app.backend();
    drop(app);
    TestApp::spawn_with(backend, |config| config.auth_cache_ms = 1000).await
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

async fn changes_elsewhere_apply_within_a_second(app: TestApp) {
    let app = cached_app(app).await;
    let user = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let (id, token) = app.token_for(user.id, "ci", &["tag:read"]).await;
    let api = app.api();
    assert_eq!(api.me(&token).await.status(), StatusCode::OK);
    // Another instance revokes it (straight in the shared database).
    app.db
        .write(move |c| tokendesk::tokens::store::revoke(c, id, user.id))
        .await
        .unwrap();
    let revoked_at = Instant::now();
    loop {
        // Judged by when each request was sent, so a slow response cannot fail the test.
        let sent = revoked_at.elapsed();
        if api.me(&token).await.status() != StatusCode::OK {
            println!("refused {sent:?} after another instance revoked it");
            break;
        }
        assert!(
            sent < Duration::from_millis(1100),
            "still accepted {sent:?} after the revocation"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Expiry needs no change at all: a cached token stops working the moment it expires.
    let (id, token) = app.token_for(user.id, "short", &["tag:read"]).await;
    let expires = chrono::Utc::now().naive_utc() + chrono::Duration::milliseconds(1500);
    let expiry = TokenTimes {
        expires_at: Some(expires),
        ..TokenTimes::default()
    };
    app.set_token_times(id, expiry).await;
    loop {
        let sent = chrono::Utc::now().naive_utc();
        let status = api.me(&token).await.status();
        if status == StatusCode::UNAUTHORIZED {
            let answered = chrono::Utc::now().naive_utc();
            assert!(answered >= expires, "refused before it expired");
            break;
        }
        assert!(
            sent < expires + chrono::Duration::milliseconds(50),
            "accepted a request sent after expiry"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The admin inventory keeps its total as long as a verified token: refreshed by any change on
/// this instance, and within the cache's lifetime after a change made elsewhere.
async fn the_inventory_total_follows_changes_here_at_once_and_elsewhere_within_a_second(
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

    // Made behind this instance's back, as another instance would: counted within a second.
    let changed_at = Instant::now();
    app.token_for(grace.id, "elsewhere", &["tag:read"]).await;
    loop {
        let seen = total(admin.page(inventory).await);
        if seen == "2" {
            break;
        }
        assert_eq!(seen, "1");
        assert!(
            changed_at.elapsed() < Duration::from_millis(1500),
            "the total is still {seen}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
