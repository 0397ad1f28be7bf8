//! Auto-revoke of unused tokens (issue 19): with "revoke tokens not used for N days" in the token
//! policy, a background sweep revokes tokens nobody used for that long, audited once each, also
//! with two instances sweeping one database; owners are warned a week before and told why after.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use tokendesk::domain::{ApplicationInput, Role};
use tokendesk::tokens::TokenOwner;

use crate::backend_tests;
use crate::helpers::{
    api_error, days_ago, stored_tokens, user_and_browser, Browser, Presented, TestApp, TokenTimes,
    ADMIN_EMAIL, SELF_ROTATE,
};

backend_tests!(
    an_unused_token_is_refused_after_the_sweep_and_audited_once,
    a_recent_use_a_recent_making_and_a_new_secret_keep_a_token,
    a_use_not_yet_written_keeps_a_token,
    with_the_policy_off_no_token_is_revoked,
    the_policy_takes_1_to_3650_days_or_nothing,
    owners_are_warned_a_week_before_and_told_why_after,
    two_instances_sweeping_one_database_revoke_each_token_once,
    a_use_of_the_replaced_secret_keeps_a_token,
    turning_the_policy_off_stops_a_sweep_under_way,
    turning_the_rule_on_asks_before_revoking_tokens_already_unused,
);

/// How often the tests' servers sweep.
const SWEEP_SECS: f64 = 0.1;

/// `app`'s database under a server that sweeps every [`SWEEP_SECS`].
async fn sweeping(app: TestApp) -> TestApp {
    let backend = app.backend();
    drop(app);
    TestApp::spawn_with(backend, |config| {
        config.auto_revoke_interval_secs = SWEEP_SECS
    })
    .await
}

/// Sets "revoke tokens not used for `days` days" as an admin, through the form.
async fn revoke_unused_after(admin: &Browser, days: &str) {
    let response = admin
        .save_token_policy(&[("revoke_unused_after_days", days)])
        .await;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "the policy is saved"
    );
}

/// Makes `id` look made `days` days ago and never used since.
async fn made_days_ago(app: &TestApp, id: i64, days: i64) {
    let times = TokenTimes {
        created_at: Some(days_ago(days)),
        ..TokenTimes::default()
    };
    app.set_token_times(id, times).await;
}

/// The `token.auto_revoked` events, once there are `count` of them (within 10 s).
async fn auto_revoked(app: &TestApp, count: usize) -> Vec<tokendesk::audit::StoredEvent> {
    let started = Instant::now();
    loop {
        let events = app.audit_events("token.auto_revoked").await;
        if events.len() >= count || started.elapsed() > Duration::from_secs(10) {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for several sweeps to have run.
async fn a_few_sweeps() {
    tokio::time::sleep(Duration::from_secs_f64(SWEEP_SECS * 8.0)).await;
}

/// Ada (an admin, signed in) and Grace (a user, signed in), on a server that sweeps, with
/// tokens unused for 90 days revoked.
async fn a_policy_of_90_days(app: &TestApp) -> (Browser, tokendesk::users::User, Browser) {
    let admin = app.setup_admin().await;
    revoke_unused_after(&admin, "90").await;
    let (grace, browser) = user_and_browser(app, "grace@example.com", Role::User).await;
    (admin, grace, browser)
}

/// An application of Ada's (user 1) named `name`; returns its id.
async fn application(app: &TestApp, name: &str) -> i64 {
    let ada = tokendesk::audit::Actor {
        user_id: 1,
        email: ADMIN_EMAIL.to_owned(),
        client_ip: "127.0.0.1".to_owned(),
    };
    let details = ApplicationInput {
        name: name.to_owned(),
        description: String::new(),
    };
    let created = tokendesk::accounts::applications::create(&app.db, ada, details.parse().unwrap());
    created.await.unwrap().id
}

async fn an_unused_token_is_refused_after_the_sweep_and_audited_once(app: TestApp) {
    let app = sweeping(app).await;
    let (_, grace, _) = a_policy_of_90_days(&app).await;
    let (stale_id, stale) = app.token_for(grace.id, "stale", &["tag:read"]).await;
    made_days_ago(&app, stale_id, 91).await;
    let billing = application(&app, "Billing").await;
    let owner = TokenOwner::Application(billing);
    let (deploy_id, deploy) = app.token_of(owner, 1, "deploy", &["tag:read"]).await;
    made_days_ago(&app, deploy_id, 200).await;

    let events = auto_revoked(&app, 2).await;
    assert_eq!(events.len(), 2, "both revoked: {events:?}");
    for secret in [&stale, &deploy] {
        let (status, code, message) = api_error(app.api().me(secret).await).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNAUTHORIZED, "invalid_token")
        );
        assert!(message.contains("revoked"), "{message}");
    }
    let stale_event = events.iter().find(|e| e.target_id == Some(stale_id));
    let stale_event = stale_event.expect("the personal token's event");
    assert_eq!(stale_event.actor_id, None, "no person revoked it");
    assert_eq!(stale_event.target_label.as_deref(), Some("stale"));
    let details = &stale_event.details;
    assert!(details.contains("owner=grace@example.com"), "{details}");
    assert!(
        details.contains("; not used for 90 days; never used, created "),
        "{details}"
    );
    let deploy_event = events.iter().find(|e| e.target_id == Some(deploy_id));
    assert!(deploy_event
        .unwrap()
        .details
        .contains("application=Billing"));

    a_few_sweeps().await;
    assert_eq!(
        app.audit_events("token.auto_revoked").await.len(),
        2,
        "revoked and audited once, however many sweeps follow"
    );
}

async fn a_recent_use_a_recent_making_and_a_new_secret_keep_a_token(app: TestApp) {
    let app = sweeping(app).await;
    let (_, grace, _) = a_policy_of_90_days(&app).await;
    let (used_id, used) = app.token_for(grace.id, "used", &["tag:read"]).await;
    let times = TokenTimes {
        created_at: Some(days_ago(400)),
        last_used: Some((days_ago(89), Some("10.0.0.7".to_owned()))),
        ..TokenTimes::default()
    };
    app.set_token_times(used_id, times).await;
    let (_, fresh) = app.token_for(grace.id, "fresh", &["tag:read"]).await;
    // Made long ago and never used, but given a new secret today (by rotating itself).
    let (renewed_id, old_secret) = app.token_for(grace.id, "renewed", &["tag:read"]).await;
    let rotated = app.api().post_as(SELF_ROTATE, &old_secret, None).await;
    let rotated: Value = rotated.json().await.unwrap();
    let renewed = rotated["secret"].as_str().expect("a new secret").to_owned();
    made_days_ago(&app, renewed_id, 300).await;
    // The one that goes: once it is, a sweep has seen the others.
    let (stale_id, _) = app.token_for(grace.id, "stale", &["tag:read"]).await;
    made_days_ago(&app, stale_id, 90).await;

    let events = auto_revoked(&app, 1).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].target_id, Some(stale_id));
    a_few_sweeps().await;
    for secret in [&used, &fresh, &renewed] {
        assert_eq!(app.api().me(secret).await.status(), StatusCode::OK);
    }
    assert_eq!(app.audit_events("token.auto_revoked").await.len(), 1);
}

async fn a_use_not_yet_written_keeps_a_token(app: TestApp) {
    // Last used is written by nothing but the sweep's own flush.
    let backend = app.backend();
    drop(app);
    let app = TestApp::spawn_with(backend, |config| {
        config.auto_revoke_interval_secs = SWEEP_SECS;
        config.last_used_flush_secs = 3600.0;
    })
    .await;
    let (_, grace, _) = a_policy_of_90_days(&app).await;
    let (used_id, used) = app
        .token_for(grace.id, "used a moment ago", &["tag:read"])
        .await;
    made_days_ago(&app, used_id, 89).await;
    assert_eq!(app.api().me(&used).await.status(), StatusCode::OK);
    // Its use is in the instance's memory; as far as the database knows, it is now unused for
    // 100 days.
    made_days_ago(&app, used_id, 100).await;
    let (stale_id, _) = app.token_for(grace.id, "stale", &["tag:read"]).await;
    made_days_ago(&app, stale_id, 100).await;

    let events = auto_revoked(&app, 1).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].target_id, Some(stale_id), "only the unused one");
    assert_eq!(app.api().me(&used).await.status(), StatusCode::OK);
    assert!(
        app.last_used_at(used_id).await.is_some(),
        "the sweep wrote the use first"
    );
}

async fn with_the_policy_off_no_token_is_revoked(app: TestApp) {
    let app = sweeping(app).await;
    let admin = app.setup_admin().await;
    let (grace, _) = user_and_browser(&app, "grace@example.com", Role::User).await;
    let (stale_id, _) = app.token_for(grace.id, "stale", &["tag:read"]).await;
    made_days_ago(&app, stale_id, 3000).await;
    a_few_sweeps().await;
    assert!(app.audit_events("token.auto_revoked").await.is_empty());
    revoke_unused_after(&admin, "").await;
    a_few_sweeps().await;
    assert!(
        app.audit_events("token.auto_revoked").await.is_empty(),
        "empty is off"
    );
    assert_eq!(stored_tokens(&app, grace.id).await[0].revoked_at, None);

    // The sweeper was there all along: on, it takes the token.
    revoke_unused_after(&admin, "3000").await;
    assert_eq!(auto_revoked(&app, 1).await.len(), 1);
}

async fn the_policy_takes_1_to_3650_days_or_nothing(app: TestApp) {
    let admin = app.setup_admin().await;
    for refused in ["0", "4000", "abc", "-5", "1.5"] {
        let response = admin
            .save_token_policy(&[("revoke_unused_after_days", refused)])
            .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{refused}"
        );
        let html = response.text().await.unwrap();
        assert!(
            html.contains("Enter a whole number of days from 1 to 3650, or leave it empty to keep unused tokens."),
            "{refused}: {html}"
        );
        assert!(
            html.contains(&format!("value=\"{refused}\"")),
            "kept as typed"
        );
    }
    assert!(app.audit_events("policy.changed").await.is_empty());

    for (days, saved, flash) in [
        (
            "1",
            "1",
            "tokens not used for 1 day are revoked from now on",
        ),
        ("3650", "3650", "tokens not used for 3650 days are revoked"),
        (" 90 ", "90", "tokens not used for 90 days are revoked"),
    ] {
        revoke_unused_after(&admin, days).await;
        let page = admin.page("/admin/settings").await;
        let field = format!("name=\"revoke_unused_after_days\" type=\"text\" inputmode=\"numeric\" value=\"{saved}\"");
        assert!(page.contains(&field), "{days}: {page}");
        assert!(page.contains(flash), "{days}: {page}");
    }
    revoke_unused_after(&admin, "").await;
    let changes = app.audit_events("policy.changed").await;
    let last = &changes.last().unwrap().details;
    assert!(
        last.ends_with("revoke tokens unused for 90 days -> no max lifetime; default expiry 30; max 100 active tokens a person; application tokens: max lifetime 365 days, any scope; keep unused tokens"),
        "{last}"
    );
}

async fn owners_are_warned_a_week_before_and_told_why_after(app: TestApp) {
    let app = sweeping(app).await;
    let (admin, grace, browser) = a_policy_of_90_days(&app).await;
    let list = browser.page("/developer/access-tokens").await;
    assert!(
        !list.contains("will be revoked within"),
        "no token, no banner"
    );
    let (soon_id, _) = app.token_for(grace.id, "soon", &["tag:read"]).await;
    made_days_ago(&app, soon_id, 87).await;
    let (sooner_id, _) = app.token_for(grace.id, "sooner", &["tag:read"]).await;
    made_days_ago(&app, sooner_id, 89).await;
    let (later_id, _) = app.token_for(grace.id, "later", &["tag:read"]).await;
    made_days_ago(&app, later_id, 80).await;

    let list = browser.page("/developer/access-tokens").await;
    assert!(
        list.contains("2 tokens will be revoked within 7 days unless they are used."),
        "{list}"
    );
    assert!(list.contains("Revoked in 3 days if unused"), "{list}");
    assert!(list.contains("Revoked in 1 day if unused"), "{list}");
    assert!(!list.contains("Revoked in 10 days"), "only within 7 days");
    let page = browser
        .page(&format!("/developer/access-tokens/{later_id}"))
        .await;
    assert!(page.contains("Revoked in 10 days if unused"), "{page}");
    assert!(
        page.contains(
            "unless it is used before: your organisation revokes tokens not used for 90 days."
        ),
        "{page}"
    );
    let inventory = admin.page("/admin/access-tokens").await;
    assert!(
        inventory.contains("Revoked in 3 days if unused"),
        "{inventory}"
    );

    // The same on an application's shelf.
    let billing = application(&app, "Billing").await;
    let owner = TokenOwner::Application(billing);
    let (deploy_id, _) = app.token_of(owner, 1, "deploy", &["tag:read"]).await;
    made_days_ago(&app, deploy_id, 88).await;
    let shelf = admin
        .page(&format!("/developer/applications/{billing}/tokens"))
        .await;
    assert!(
        shelf.contains("1 token will be revoked within 7 days unless it is used."),
        "{shelf}"
    );
    assert!(shelf.contains("Revoked in 2 days if unused"), "{shelf}");

    // The API says when.
    let (_, reader) = app
        .token_for(grace.id, "reader", &["personalAccessToken:read"])
        .await;
    let listed = app
        .api()
        .get("/personal-access-tokens", &reader, Presented::Bearer);
    let listed: Value = listed.send().await.unwrap().json().await.unwrap();
    let soon = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "soon")
        .expect("listed");
    let at = soon["idle_revocation_at"].as_str().expect("a deadline");
    let at = chrono::DateTime::parse_from_rfc3339(at)
        .unwrap()
        .naive_utc();
    assert!(
        (at - (days_ago(87) + chrono::Duration::days(90)))
            .num_seconds()
            .abs()
            < 60
    );
    assert_eq!(soon["revoked_reason"], Value::Null);

    // Past the deadline: revoked, and the owner is told why.
    made_days_ago(&app, soon_id, 95).await;
    assert_eq!(auto_revoked(&app, 1).await.len(), 1);
    let revoked = browser.page("/developer/access-tokens?tab=revoked").await;
    assert!(revoked.contains("Unused for 95 days"), "{revoked}");
    let page = browser
        .page(&format!("/developer/access-tokens/{soon_id}"))
        .await;
    assert!(
        page.contains("because it had not been used for 95 days"),
        "{page}"
    );
    let path = format!("/personal-access-tokens/{soon_id}");
    let shown = app.api().get(&path, &reader, Presented::Bearer);
    let shown: Value = shown.send().await.unwrap().json().await.unwrap();
    assert_eq!(shown["revoked_reason"], "unused");
    assert_eq!(shown["idle_revocation_at"], Value::Null);
    let list = browser.page("/developer/access-tokens").await;
    assert!(
        list.contains("1 token will be revoked within 7 days unless it is used."),
        "the revoked one no longer counts: {list}"
    );
}

async fn two_instances_sweeping_one_database_revoke_each_token_once(app: TestApp) {
    let app = sweeping(app).await;
    let admin = app.setup_admin().await;
    let (grace, _) = user_and_browser(&app, "grace@example.com", Role::User).await;
    // More than one batch each.
    let mut ids = Vec::new();
    for n in 0..450 {
        let (id, _) = app
            .token_for(grace.id, &format!("t{n}"), &["tag:read"])
            .await;
        ids.push(id);
    }
    backdate_all(&app, grace.id, 100).await;
    let _second = app
        .another_instance(|config| config.auto_revoke_interval_secs = SWEEP_SECS)
        .await;
    // Both sweep from the moment the policy is on.
    revoke_unused_after(&admin, "90").await;

    let events = auto_revoked(&app, ids.len()).await;
    a_few_sweeps().await;
    let events_now = app.audit_events("token.auto_revoked").await;
    assert_eq!(events_now.len(), events.len(), "nothing more after");
    let mut revoked: Vec<i64> = events.iter().filter_map(|e| e.target_id).collect();
    revoked.sort_unstable();
    assert_eq!(revoked, ids, "one event a token, no token twice");
}

/// Makes every token of a person look made `days` days ago and never used.
async fn backdate_all(app: &TestApp, user_id: i64, days: i64) {
    use diesel::prelude::*;
    use tokendesk::db::schema::personal_access_tokens as pat;
    let made = days_ago(days);
    app.db
        .write(move |conn| {
            diesel::update(pat::table.filter(pat::user_id.eq(user_id)))
                .set(pat::created_at.eq(made))
                .execute(conn)
        })
        .await
        .unwrap();
}

async fn a_use_of_the_replaced_secret_keeps_a_token(app: TestApp) {
    let app = sweeping(app).await;
    let (_, grace, _) = a_policy_of_90_days(&app).await;
    let (id, old) = app.token_for(grace.id, "rotating", &["tag:read"]).await;
    let overlap = Some(serde_json::json!({"overlap": "7d"}));
    let rotated = app.api().post_as(SELF_ROTATE, &old, overlap).await;
    assert_eq!(rotated.status(), StatusCode::OK);
    // Only clients still on the old secret use the token.
    assert_eq!(app.api().me(&old).await.status(), StatusCode::OK);
    let long_ago = TokenTimes {
        created_at: Some(days_ago(200)),
        regenerated_at: Some(days_ago(100)),
        ..TokenTimes::default()
    };
    app.set_token_times(id, long_ago).await;
    let (stale_id, _) = app.token_for(grace.id, "stale", &["tag:read"]).await;
    made_days_ago(&app, stale_id, 100).await;

    let events = auto_revoked(&app, 1).await;
    a_few_sweeps().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].target_id, Some(stale_id), "only the unused one");
    assert_eq!(
        app.api().me(&old).await.status(),
        StatusCode::OK,
        "in use, kept"
    );
}

async fn turning_the_policy_off_stops_a_sweep_under_way(app: TestApp) {
    const TOKENS: usize = 4000;
    let app = sweeping(app).await;
    let admin = app.setup_admin().await;
    let (grace, _) = user_and_browser(&app, "grace@example.com", Role::User).await;
    app.set_active_token_limit(TOKENS as i64 + 10).await;
    let owner = grace.id;
    app.db
        .write(move |conn| {
            let request = tokendesk::domain::TokenRequest {
                name: String::new(),
                expiry: tokendesk::domain::Expiry::Never,
                scopes: tokendesk::domain::ScopeSet::parse(["tag:read"]).unwrap(),
                allowed_addresses: None,
            };
            for n in 0..TOKENS {
                let request = tokendesk::domain::TokenRequest {
                    name: format!("t{n}"),
                    ..request.clone()
                };
                tokendesk::tokens::store::create(conn, TokenOwner::Person(owner), owner, &request)
                    .unwrap();
            }
            Ok(())
        })
        .await
        .unwrap();
    backdate_all(&app, grace.id, 100).await;
    // The form is open before the sweep starts, so turning it off is one request.
    let settings = admin.page("/admin/settings").await;
    let csrf = crate::helpers::csrf_token(&settings);
    revoke_unused_after(&admin, "90").await;
    let started = Instant::now();
    while count_auto_revoked(&app).await == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the sweep never started"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut off = crate::helpers::policy_fields(&[("revoke_unused_after_days", "")]);
    off.insert(0, ("csrf_token", csrf.as_str()));
    let saved = admin.post("/admin/settings", &off).await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    a_few_sweeps().await;

    let changed = app.audit_events("policy.changed").await;
    let turned_off = changed.last().expect("the policy change").id;
    let revoked = app.audit_events("token.auto_revoked").await;
    let after: Vec<_> = revoked.iter().filter(|e| e.id > turned_off).collect();
    println!(
        "revoked {} of {TOKENS} tokens before the policy was turned off, {} after",
        revoked.len(),
        after.len()
    );
    assert!(
        after.is_empty(),
        "{} revoked after the policy was off",
        after.len()
    );
    assert!(
        revoked.len() < TOKENS,
        "the sweep ended before the policy changed: nothing was tested"
    );
}

/// How many tokens were auto-revoked so far (a count, cheap to poll).
async fn count_auto_revoked(app: &TestApp) -> i64 {
    use diesel::prelude::*;
    use tokendesk::db::schema::audit_events;
    app.db
        .run(|conn| {
            audit_events::table
                .filter(audit_events::action.eq("token.auto_revoked"))
                .count()
                .get_result(conn)
        })
        .await
        .unwrap()
}

async fn turning_the_rule_on_asks_before_revoking_tokens_already_unused(app: TestApp) {
    let app = sweeping(app).await;
    let admin = app.setup_admin().await;
    let (grace, _) = user_and_browser(&app, "grace@example.com", Role::User).await;
    let (stale_id, stale) = app.token_for(grace.id, "stale", &["tag:read"]).await;
    made_days_ago(&app, stale_id, 100).await;

    let unconfirmed = [
        ("revoke_unused_after_days", "90"),
        ("confirm_revoke_now", ""),
    ];
    let asked = admin.save_token_policy(&unconfirmed).await;
    assert_eq!(asked.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = asked.text().await.unwrap();
    assert!(
        page.contains("1 token has not been used for 90 days"),
        "{page}"
    );
    assert!(
        page.contains("name=\"confirm_revoke_now\""),
        "a box to confirm it"
    );
    a_few_sweeps().await;
    assert!(
        app.audit_events("policy.changed").await.is_empty(),
        "nothing saved"
    );
    assert_eq!(stored_tokens(&app, grace.id).await[0].revoked_at, None);
    // More days than the token has been unused: nothing to confirm.
    let later = admin
        .save_token_policy(&[
            ("revoke_unused_after_days", "120"),
            ("confirm_revoke_now", ""),
        ])
        .await;
    assert_eq!(later.status(), StatusCode::SEE_OTHER);
    // Confirmed: it goes.
    revoke_unused_after(&admin, "90").await;
    assert_eq!(auto_revoked(&app, 1).await.len(), 1);
    assert_eq!(
        app.api().me(&stale).await.status(),
        StatusCode::UNAUTHORIZED
    );
}
