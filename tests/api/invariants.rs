//! Invariants under requests sent at the same moment, on both backends (PostgreSQL at READ
//! COMMITTED): at least one active admin; one active token per name and person; a token is
//! checked against the owner's role, status and the policy as they are when it is written; at
//! most the policy's number of active tokens a person.

use futures_util::future::join_all;
use reqwest::StatusCode;
use tokendesk::domain::Role;

use crate::backend_tests;
use crate::helpers::{csrf_token, stored_tokens, Browser, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};

backend_tests!(
    admins_demoting_and_deactivating_each_other_at_once_leave_an_admin,
    creates_with_one_name_at_once_make_one_token,
    a_policy_lowered_mid_burst_binds_every_token_written_after_it,
    a_deactivation_mid_burst_stops_every_token_written_after_it,
    a_demotion_mid_burst_strips_admin_scopes_from_every_token_written_after_it,
    two_admins_saving_the_policy_at_once_both_succeed,
    creates_at_once_stop_at_the_active_token_limit,
);

const ROUNDS: usize = 12;
const BURST: usize = 24;

async fn active_admins(app: &TestApp) -> i64 {
    app.db
        .run(tokendesk::users::count_active_admins)
        .await
        .unwrap()
}

/// Puts a member back as an active admin (arranging the next round).
async fn restore_admin(app: &TestApp, id: i64) {
    app.db
        .write(move |conn| {
            tokendesk::users::set_role(conn, id, Role::Admin)?;
            tokendesk::users::set_active(conn, id, true)
        })
        .await
        .unwrap();
}

async fn signed_in(app: &TestApp, email: &str, password: &str) -> (Browser, String) {
    let browser = app.browser();
    let response = browser.sign_in(email, password).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{email} signs in");
    let csrf = csrf_token(&browser.page("/developer/access-tokens").await);
    (browser, csrf)
}

async fn admins_demoting_and_deactivating_each_other_at_once_leave_an_admin(app: TestApp) {
    app.setup_admin().await;
    let bob = app
        .create_user("bob@example.com", "bobs-password-1", Role::Admin)
        .await;
    let ada_id = 1;
    let change = |target: i64, round: usize, first: bool| match (round % 3, first) {
        (0, _) | (2, true) => (format!("/admin/members/{target}/role"), Some("user")),
        _ => (format!("/admin/members/{target}/deactivate"), None),
    };
    for round in 0..ROUNDS {
        restore_admin(&app, ada_id).await;
        restore_admin(&app, bob.id).await;
        let (ada, ada_csrf) = signed_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
        let (bob_browser, bob_csrf) = signed_in(&app, "bob@example.com", "bobs-password-1").await;
        let send = |browser: &Browser, csrf: &str, (path, role): (String, Option<&str>)| {
            let mut fields = vec![("csrf_token".to_owned(), csrf.to_owned())];
            if let Some(role) = role {
                fields.push(("role".to_owned(), role.to_owned()));
            }
            let request = browser.client.post(browser.url(&path)).form(&fields);
            async move { request.send().await.unwrap().status() }
        };
        let (a, b) = tokio::join!(
            send(&ada, &ada_csrf, change(bob.id, round, true)),
            send(&bob_browser, &bob_csrf, change(ada_id, round, false)),
        );
        assert!(a.is_redirection() || a == StatusCode::FORBIDDEN, "{a}");
        assert!(b.is_redirection() || b == StatusCode::FORBIDDEN, "{b}");
        assert_eq!(active_admins(&app).await, 1, "round {round}");
    }
    println!("last admin: {ROUNDS} rounds of two admins demoting/deactivating each other at once, one admin left each time");
}

/// A member signed in with a token that may create tokens; returns the API URL and the token.
async fn token_maker(app: &TestApp, user_id: i64, scopes: &[&str]) -> (String, String) {
    let mut all = vec!["personalAccessToken:write"];
    all.extend_from_slice(scopes);
    let (_, token) = app.token_for(user_id, "maker", &all).await;
    (
        format!("{}/api/v1/personal-access-tokens", app.address),
        token,
    )
}

/// Sends `n` create requests at once; returns their statuses.
async fn burst(
    app: &TestApp,
    url: &str,
    token: &str,
    n: usize,
    body: impl Fn(usize) -> serde_json::Value,
) -> Vec<StatusCode> {
    let client = app.api().client;
    join_all((0..n).map(|i| {
        let request = client.post(url).bearer_auth(token).json(&body(i));
        async move { request.send().await.unwrap().status() }
    }))
    .await
}

async fn creates_with_one_name_at_once_make_one_token(app: TestApp) {
    let kim = app
        .create_user("kim@example.com", "kims-password-1", Role::User)
        .await;
    let (url, token) = token_maker(&app, kim.id, &["tag:read"]).await;
    for round in 0..ROUNDS {
        let name = format!("deploy-{round}");
        let statuses = burst(
            &app,
            &url,
            &token,
            8,
            |_| serde_json::json!({"name": name, "expires_in": "30", "scopes": ["tag:read"]}),
        )
        .await;
        let created = statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count();
        assert_eq!(created, 1, "round {round}: {statuses:?}");
        assert!(statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::UNPROCESSABLE_ENTITY));
        let stored = stored_tokens(&app, kim.id).await;
        assert_eq!(stored.iter().filter(|t| t.name == name).count(), 1);
    }
}

fn never_expiring(i: usize) -> serde_json::Value {
    serde_json::json!({"name": format!("t{i}"), "expires_in": "never", "scopes": ["tag:read"]})
}

/// When the one event of `action` was recorded: inside its transaction, after its locks.
async fn event_time(app: &TestApp, action: &str) -> chrono::NaiveDateTime {
    let events = app.audit_events(action).await;
    assert_eq!(events.len(), 1, "{action}");
    events[0].created_at
}

async fn a_policy_lowered_mid_burst_binds_every_token_written_after_it(app: TestApp) {
    let admin = app.setup_admin().await;
    let kim = app
        .create_user("kim@example.com", "kims-password-1", Role::User)
        .await;
    let (url, token) = token_maker(&app, kim.id, &["tag:read"]).await;
    let csrf = csrf_token(&admin.page("/admin/settings").await);
    let fields = [
        ("csrf_token", csrf.as_str()),
        ("max_lifetime_days", "7"),
        ("default_expiry", "7"),
        ("max_active_tokens", "1000"),
        ("application_max_lifetime_days", "365"),
        ("application_scope_rule", "any"),
    ];
    let (statuses, saved) = tokio::join!(
        burst(&app, &url, &token, BURST, never_expiring),
        admin.post("/admin/settings", &fields),
    );
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let lowered = event_time(&app, "policy.changed").await;
    let tokens = stored_tokens(&app, kim.id).await;
    let never: Vec<_> = tokens.iter().filter(|t| t.expires_at.is_none()).collect();
    for t in &never {
        assert!(
            t.created_at < lowered,
            "{} never expires and was written after the policy",
            t.name
        );
    }
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNPROCESSABLE_ENTITY)
        .count();
    assert_eq!(
        never.len() - 1 + refused,
        BURST,
        "each was written or refused"
    );
    println!(
        "policy mid-burst: {} written before the change, {refused} refused after it",
        never.len() - 1
    );
}

async fn a_deactivation_mid_burst_stops_every_token_written_after_it(app: TestApp) {
    let admin = app.setup_admin().await;
    let kim = app
        .create_user("kim@example.com", "kims-password-1", Role::User)
        .await;
    let (url, token) = token_maker(&app, kim.id, &["tag:read"]).await;
    let page = format!("/admin/members/{}/deactivate", kim.id);
    let csrf = csrf_token(&admin.page(&page).await);
    let fields = [("csrf_token", csrf.as_str())];
    let (_, deactivated) = tokio::join!(
        burst(&app, &url, &token, BURST, never_expiring),
        admin.post(&page, &fields),
    );
    assert_eq!(deactivated.status(), StatusCode::SEE_OTHER);
    let at = event_time(&app, "member.deactivated").await;
    for t in stored_tokens(&app, kim.id).await {
        assert!(
            t.created_at < at,
            "{} written after the deactivation",
            t.name
        );
    }
}

async fn a_demotion_mid_burst_strips_admin_scopes_from_every_token_written_after_it(app: TestApp) {
    let admin = app.setup_admin().await;
    let bob = app
        .create_user("bob@example.com", "bobs-password-1", Role::Admin)
        .await;
    let (url, token) = token_maker(&app, bob.id, &["license:write"]).await;
    let page = format!("/admin/members/{}/role", bob.id);
    let csrf = csrf_token(&admin.page("/admin/members").await);
    let fields = [("csrf_token", csrf.as_str()), ("role", "user")];
    let (statuses, demoted) = tokio::join!(
        burst(&app, &url, &token, BURST, |i| {
            serde_json::json!({"name": format!("t{i}"), "expires_in": "30", "scopes": ["license:write"]})
        }),
        admin.post(&page, &fields),
    );
    assert_eq!(demoted.status(), StatusCode::SEE_OTHER);
    let at = event_time(&app, "member.role_changed").await;
    let with_admin_scope = stored_tokens(&app, bob.id)
        .await
        .into_iter()
        .filter(|t| t.name != "maker" && t.scopes.contains("license:write"))
        .collect::<Vec<_>>();
    for t in &with_admin_scope {
        assert!(
            t.created_at < at,
            "{} holds license:write, written after the demotion",
            t.name
        );
    }
    // After the demotion the maker token itself lacks license:write: 403, or 422 if checked
    // inside the write.
    assert!(statuses.iter().all(|s| [
        StatusCode::CREATED,
        StatusCode::FORBIDDEN,
        StatusCode::UNPROCESSABLE_ENTITY
    ]
    .contains(s)));
}

async fn two_admins_saving_the_policy_at_once_both_succeed(app: TestApp) {
    let ada = app.setup_admin().await;
    app.create_user("bob@example.com", "bobs-password-1", Role::Admin)
        .await;
    let (bob, _) = signed_in(&app, "bob@example.com", "bobs-password-1").await;
    for round in 0..ROUNDS {
        let save = |admin: &Browser, days: &'static str| {
            let admin = admin.clone();
            async move {
                let csrf = csrf_token(&admin.page("/admin/settings").await);
                admin
                    .post(
                        "/admin/settings",
                        &[
                            ("csrf_token", &csrf),
                            ("max_lifetime_days", days),
                            ("default_expiry", "7"),
                            ("max_active_tokens", "100"),
                            ("application_max_lifetime_days", "365"),
                            ("application_scope_rule", "any"),
                        ],
                    )
                    .await
                    .status()
            }
        };
        let (a, b) = tokio::join!(save(&ada, "30"), save(&bob, "60"));
        assert_eq!(
            (a, b),
            (StatusCode::SEE_OTHER, StatusCode::SEE_OTHER),
            "round {round}"
        );
    }
    let html = ada.page("/admin/settings").await;
    assert!(html.contains("value=\"30\"") || html.contains("value=\"60\""));
}

async fn creates_at_once_stop_at_the_active_token_limit(app: TestApp) {
    let admin = app.setup_admin().await;
    let kim = app
        .create_user("kim@example.com", "kims-password-1", Role::User)
        .await;
    let csrf = csrf_token(&admin.page("/admin/settings").await);
    let saved = admin
        .post(
            "/admin/settings",
            &[
                ("csrf_token", csrf.as_str()),
                ("max_lifetime_days", ""),
                ("default_expiry", "30"),
                ("max_active_tokens", "5"),
                ("application_max_lifetime_days", "365"),
                ("application_scope_rule", "any"),
            ],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    // The maker is one of the five.
    let (url, token) = token_maker(&app, kim.id, &["tag:read"]).await;
    let statuses = burst(&app, &url, &token, 12, never_expiring).await;
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 4, "{statuses:?}");
    assert_eq!(stored_tokens(&app, kim.id).await.len(), 5);
    let response = app
        .api()
        .client
        .post(&url)
        .bearer_auth(&token)
        .json(&never_expiring(99))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["fields"]["form"]
        .as_str()
        .unwrap()
        .contains("You hold 5 active tokens, and your organisation allows 5."));
}
