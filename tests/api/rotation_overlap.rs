//! Rotation with an overlap: a regenerate may keep the replaced secret working for a while,
//! its uses recorded apart; the owner can end it early; at its end the old secret is refused.

use std::time::Duration;

use reqwest::StatusCode;
use tokendesk::domain::Role;

use crate::backend_tests;
use crate::helpers::{
    api_error, client_from, stored_tokens, user_and_browser, TestApp, SELF_ROTATE,
};

backend_tests!(
    both_secrets_work_during_the_overlap_and_the_old_one_stops_at_its_end,
    the_end_of_an_overlap_holds_for_a_cached_secret_too,
    ending_the_overlap_early_through_the_portal_stops_the_old_secret_at_once,
    a_replaced_secret_cannot_rotate_and_a_bad_overlap_is_refused,
    rotations_sent_at_the_same_moment_give_one_new_secret,
    regenerating_again_ends_the_earlier_overlap,
    revoking_or_a_leak_report_of_the_old_secret_stops_both,
    an_application_token_rotates_itself_with_an_overlap,
    the_replaced_secret_keeps_its_own_allowlist_and_expiry,
    a_use_just_before_the_regenerate_is_the_replaced_secrets,
    a_rotation_refused_because_the_token_was_revoked_elsewhere_is_a_401,
);

async fn rotate(
    app: &TestApp,
    path: &str,
    token: &str,
    body: serde_json::Value,
) -> reqwest::Response {
    app.api().post_as(path, token, Some(body)).await
}

/// Rotates `token` with `overlap`; returns the new secret and the answer's token JSON.
async fn rotated(app: &TestApp, token: &str, overlap: &str) -> (String, serde_json::Value) {
    let response = rotate(
        app,
        SELF_ROTATE,
        token,
        serde_json::json!({ "overlap": overlap }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    (
        body["secret"].as_str().unwrap().to_owned(),
        body["token"].clone(),
    )
}

/// The token as the API shows it to its owner.
async fn token_json(app: &TestApp, reader: &str, id: i64) -> serde_json::Value {
    let (status, shown) = app
        .api()
        .json(&format!("/personal-access-tokens/{id}"), reader)
        .await;
    assert_eq!(status, StatusCode::OK);
    shown
}

/// Waits for the Last-used flusher (every 0.3 s in tests) to write what `check` looks for.
async fn eventually(mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..50 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not written within 5 s");
}

async fn both_secrets_work_during_the_overlap_and_the_old_one_stops_at_its_end(app: TestApp) {
    let grace = grace(&app).await;
    let (id, old) = app.token_for(grace.id, "deploy-bot", &["tag:read"]).await;
    let (_, reader) = app
        .token_for(grace.id, "reader", &["personalAccessToken:read"])
        .await;
    let (new, token) = rotated(&app, &old, "1h").await;
    let until: chrono::DateTime<chrono::Utc> = token["previous_secret"]["valid_until"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let left = until - chrono::Utc::now();
    assert!(
        (59..=60).contains(&left.num_minutes()),
        "an hour of overlap: {left}"
    );

    let api = app.api();
    assert_eq!(
        api.me(&old).await.status(),
        StatusCode::OK,
        "old still works"
    );
    assert_eq!(api.me(&new).await.status(), StatusCode::OK, "new works");
    // Uses of each secret are recorded apart: the old one's on the previous secret.
    eventually(async || {
        let shown = token_json(&app, &reader, id).await;
        !shown["previous_secret"]["last_used_at"].is_null() && !shown["last_used_at"].is_null()
    })
    .await;
    let shown = token_json(&app, &reader, id).await;
    assert_eq!(shown["previous_secret"]["last_used_ip"], "127.0.0.1");
    let events = app.audit_events("token.regenerated").await;
    assert_eq!(events.len(), 1);
    assert!(
        events[0].details.contains("previous secret valid until"),
        "{}",
        events[0].details
    );

    app.clock.advance(Duration::from_secs(61 * 60));
    let (status, code, message) = api_error(api.me(&old).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_token")
    );
    assert!(message.contains("replaced"), "{message}");
    assert_eq!(api.me(&new).await.status(), StatusCode::OK);
}

async fn the_end_of_an_overlap_holds_for_a_cached_secret_too(app: TestApp) {
    let app = caching_for_an_hour(app).await;
    let grace = grace(&app).await;
    let (_, old) = app.token_for(grace.id, "deploy-bot", &["tag:read"]).await;
    let (new, _) = rotated(&app, &old, "24h").await;
    let api = app.api();
    // Both now in the cache, which would keep them for an hour.
    assert_eq!(api.me(&old).await.status(), StatusCode::OK);
    assert_eq!(api.me(&new).await.status(), StatusCode::OK);
    app.clock.advance(Duration::from_secs(24 * 3600 + 1));
    assert_eq!(api.me(&old).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(api.me(&new).await.status(), StatusCode::OK);
}

async fn ending_the_overlap_early_through_the_portal_stops_the_old_secret_at_once(app: TestApp) {
    let (grace, browser) = user_and_browser(&app, "grace@example.com", Role::User).await;
    let old = browser
        .create_token("deploy-bot", "30", &["tag:read"])
        .await;
    let id = stored_tokens(&app, grace.id).await[0].id;
    let regenerate = format!("/developer/access-tokens/{id}/regenerate");
    let form = browser.page(&regenerate).await;
    assert!(form.contains("Keep the current secret working for"));
    let response = browser
        .submit_form(
            &regenerate,
            &regenerate,
            &[
                ("expires_in", "30"),
                ("overlap", "24h"),
                ("allowed_addresses", ""),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let reveal = browser.page("/developer/access-tokens/reveal").await;
    assert!(
        reveal.contains("The previous secret keeps working until"),
        "{reveal}"
    );
    let new = crate::helpers::revealed_secret(&reveal).unwrap();
    let api = app.api();
    assert_eq!(api.me(&old).await.status(), StatusCode::OK);
    assert_eq!(api.me(&new).await.status(), StatusCode::OK);

    let list = browser.page("/developer/access-tokens").await;
    assert!(list.contains("Previous secret ends in 23 hours"), "{list}");
    let token_page = format!("/developer/access-tokens/{id}");
    let page = browser.page(&token_page).await;
    assert!(page.contains("Previous secret still works"));
    let end = format!("/developer/access-tokens/{id}/end-overlap");
    // Without the form's CSRF token, nothing ends.
    let forged = browser.post(&end, &[]).await;
    assert_ne!(forged.status(), StatusCode::SEE_OTHER);
    assert_eq!(api.me(&old).await.status(), StatusCode::OK);

    let confirm = browser.page(&end).await;
    assert!(
        confirm.contains("Stop the previous secret now?"),
        "{confirm}"
    );
    assert!(confirm.contains("Never since it was replaced"));
    let ended = browser.submit_form(&end, &end, &[]).await;
    assert_eq!(ended.status(), StatusCode::SEE_OTHER);
    let (status, _, message) = api_error(api.me(&old).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "at once");
    assert!(message.contains("overlap has ended"), "{message}");
    assert_eq!(api.me(&new).await.status(), StatusCode::OK);
    let page = browser.page(&token_page).await;
    assert!(page.contains("stopped working"), "the flash says so");
    assert!(!page.contains("Previous secret still works"));
    let again = browser.submit_form(&token_page, &end, &[]).await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    assert!(browser.page(&token_page).await.contains("nothing changed"));
    // With nothing left to stop, the confirmation sends the person back to the token.
    let gone = browser.get(&end).await;
    assert_eq!(crate::helpers::location(&gone), token_page);
    let events = app.audit_events("token.overlap_ended").await;
    assert_eq!(events.len(), 1, "audited once");

    // Someone else cannot end it: the id is simply not found for them.
    let (_, mallory) = user_and_browser(&app, "mallory@example.com", Role::User).await;
    let mine = mallory.page("/developer/access-tokens").await;
    let csrf = crate::helpers::csrf_token(&mine);
    let theirs = mallory.post(&end, &[("csrf_token", &csrf)]).await;
    assert_eq!(theirs.status(), StatusCode::NOT_FOUND);
}

async fn a_replaced_secret_cannot_rotate_and_a_bad_overlap_is_refused(app: TestApp) {
    let grace = grace(&app).await;
    let (_, old) = app.token_for(grace.id, "deploy-bot", &["tag:read"]).await;
    for bad in ["2h", "forever", "1H"] {
        let refused = rotate(
            &app,
            SELF_ROTATE,
            &old,
            serde_json::json!({ "overlap": bad }),
        )
        .await;
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        let body: serde_json::Value = refused.json().await.unwrap();
        assert!(body["fields"]["overlap"]
            .as_str()
            .unwrap()
            .contains("1h, 24h, 7d"));
    }
    assert_eq!(
        app.api().me(&old).await.status(),
        StatusCode::OK,
        "unchanged"
    );

    let (new, _) = rotated(&app, &old, "7d").await;
    let refused = rotate(&app, SELF_ROTATE, &old, serde_json::json!({})).await;
    let (status, code, _) = api_error(refused).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "previous_secret")
    );
    assert_eq!(
        app.api().me(&old).await.status(),
        StatusCode::OK,
        "still in its overlap"
    );
    assert_eq!(
        app.api().me(&new).await.status(),
        StatusCode::OK,
        "not replaced"
    );
}

async fn rotations_sent_at_the_same_moment_give_one_new_secret(app: TestApp) {
    let grace = grace(&app).await;
    for overlap in ["none", "1h"] {
        let name = format!("bot-{overlap}");
        let (_, old) = app.token_for(grace.id, &name, &["tag:read"]).await;
        let attempts = (0..8).map(|_| {
            rotate(
                &app,
                SELF_ROTATE,
                &old,
                serde_json::json!({ "overlap": overlap }),
            )
        });
        let answers = futures_util::future::join_all(attempts).await;
        let mut secrets = Vec::new();
        for answer in answers {
            match answer.status() {
                StatusCode::OK => {
                    let body: serde_json::Value = answer.json().await.unwrap();
                    secrets.push(body["secret"].as_str().unwrap().to_owned());
                }
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {}
                other => panic!("unexpected {other}"),
            }
        }
        assert_eq!(secrets.len(), 1, "one rotation wins ({overlap})");
        assert_eq!(app.api().me(&secrets[0]).await.status(), StatusCode::OK);
    }
    assert_eq!(app.audit_events("token.regenerated").await.len(), 2);
}

async fn regenerating_again_ends_the_earlier_overlap(app: TestApp) {
    let grace = grace(&app).await;
    let (_, first) = app.token_for(grace.id, "deploy-bot", &["tag:read"]).await;
    let (second, _) = rotated(&app, &first, "7d").await;
    let (third, token) = rotated(&app, &second, "1h").await;
    assert!(token["previous_secret"]["valid_until"].is_string());
    let api = app.api();
    assert_eq!(
        api.me(&first).await.status(),
        StatusCode::UNAUTHORIZED,
        "ended"
    );
    assert_eq!(api.me(&second).await.status(), StatusCode::OK);
    assert_eq!(api.me(&third).await.status(), StatusCode::OK);
    let (fourth, token) = rotated(&app, &third, "none").await;
    assert!(token.get("previous_secret").is_none());
    assert_eq!(api.me(&second).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(api.me(&third).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(api.me(&fourth).await.status(), StatusCode::OK);
}

async fn revoking_or_a_leak_report_of_the_old_secret_stops_both(app: TestApp) {
    let grace = grace(&app).await;
    let (_, old) = app.token_for(grace.id, "leaky", &["tag:read"]).await;
    let (new, _) = rotated(&app, &old, "7d").await;
    let report = app
        .api()
        .client
        .post(format!("{}/api/v1/credentials/revoke", app.address))
        .json(&serde_json::json!({ "tokens": [old] }))
        .send()
        .await
        .unwrap();
    assert_eq!(report.status(), StatusCode::ACCEPTED);
    let api = app.api();
    assert_eq!(api.me(&old).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        api.me(&new).await.status(),
        StatusCode::UNAUTHORIZED,
        "the token is revoked"
    );
    assert_eq!(app.audit_events("token.revoked_leak_report").await.len(), 1);

    // An admin's leaked-token search finds a token by its replaced secret while that works.
    let (_, admin) = user_and_browser(&app, "ada@example.com", Role::Admin).await;
    let (_, found) = app.token_for(grace.id, "found", &["tag:read"]).await;
    let (_, _) = rotated(&app, &found, "24h").await;
    let search = admin
        .submit_form(
            "/admin/access-tokens",
            "/admin/access-tokens/leaked",
            &[("fragment", &found)],
        )
        .await;
    let results = admin.page(crate::helpers::location(&search)).await;
    assert!(
        results.contains(">found<"),
        "the replaced secret finds its token"
    );

    let (id, other) = app.token_for(grace.id, "other", &["tag:read"]).await;
    let (other_new, _) = rotated(&app, &other, "7d").await;
    let (_, writer) = app
        .token_for(grace.id, "writer", &["personalAccessToken:write"])
        .await;
    let revoked = app
        .api()
        .client
        .delete(format!(
            "{}/api/v1/personal-access-tokens/{id}",
            app.address
        ))
        .bearer_auth(&writer)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    assert_eq!(api.me(&other).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(api.me(&other_new).await.status(), StatusCode::UNAUTHORIZED);
}

async fn an_application_token_rotates_itself_with_an_overlap(app: TestApp) {
    let _admin = app.setup_admin().await;
    let (_, adas) = app
        .token_for(
            1,
            "apps",
            &["applicationToken:read", "applicationToken:write"],
        )
        .await;
    let created = app
        .api()
        .client
        .post(format!("{}/api/v1/applications", app.address))
        .bearer_auth(&adas)
        .json(&serde_json::json!({"name": "Billing"}))
        .send()
        .await
        .unwrap();
    let billing: serde_json::Value = created.json().await.unwrap();
    let made: serde_json::Value = app
        .api()
        .client
        .post(format!(
            "{}/api/v1/applications/{}/tokens",
            app.address, billing["id"]
        ))
        .bearer_auth(&adas)
        .json(&serde_json::json!({"name": "nightly", "expires_in": "30", "scopes": ["tag:read"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let old = made["secret"].as_str().unwrap().to_owned();
    let path = "/api/v1/application-tokens/self/rotate";
    let response = rotate(&app, path, &old, serde_json::json!({"overlap": "1h"})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    let new = body["secret"].as_str().unwrap().to_owned();
    assert!(new.starts_with("tda_"));
    let api = app.api();
    assert_eq!(api.me(&old).await.status(), StatusCode::OK);
    assert_eq!(api.me(&new).await.status(), StatusCode::OK);
    let again = rotate(&app, path, &old, serde_json::json!({})).await;
    assert_eq!(
        again.status(),
        StatusCode::FORBIDDEN,
        "the replaced secret may not rotate"
    );
    app.clock.advance(Duration::from_secs(3601));
    assert_eq!(api.me(&old).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(api.me(&new).await.status(), StatusCode::OK);
}

async fn the_replaced_secret_keeps_its_own_allowlist_and_expiry(app: TestApp) {
    let (grace, browser) = user_and_browser(&app, "grace@example.com", Role::User).await;
    let created = browser
        .submit_new_token(&[
            ("name", "pinned"),
            ("expires_in", "30"),
            ("scopes", "tag:read"),
            ("allowed_addresses", "127.0.0.1"),
        ])
        .await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    let reveal = browser.page("/developer/access-tokens/reveal").await;
    let old = crate::helpers::revealed_secret(&reveal).unwrap();
    let id = stored_tokens(&app, grace.id).await[0].id;
    // Its secret was due to expire in an hour.
    let soon = crate::helpers::TokenTimes {
        expires_at: Some(chrono::Utc::now().naive_utc() + chrono::Duration::hours(1)),
        ..Default::default()
    };
    app.set_token_times(id, soon).await;
    let regenerate = format!("/developer/access-tokens/{id}/regenerate");
    let fields = [
        ("expires_in", "30"),
        ("overlap", "7d"),
        ("allowed_addresses", "127.0.0.2"),
    ];
    let response = browser.submit_form(&regenerate, &regenerate, &fields).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let reveal = browser.page("/developer/access-tokens/reveal").await;
    let new = crate::helpers::revealed_secret(&reveal).unwrap();
    let (one, two) = (client_from("127.0.0.1"), client_from("127.0.0.2"));
    let me = |client: &reqwest::Client, token: &str| {
        client
            .get(format!("{}/api/v1/me", app.address))
            .bearer_auth(token.to_owned())
            .send()
    };
    let status = |response: reqwest::Result<reqwest::Response>| response.unwrap().status();
    assert_eq!(
        status(me(&one, &old).await),
        StatusCode::OK,
        "where it was allowed"
    );
    assert_eq!(
        status(me(&two, &old).await),
        StatusCode::FORBIDDEN,
        "not from the new list"
    );
    assert_eq!(status(me(&two, &new).await), StatusCode::OK);
    assert_eq!(status(me(&one, &new).await), StatusCode::FORBIDDEN);
    // The overlap does not outlive the old secret's own expiry.
    app.clock.advance(Duration::from_secs(2 * 3600));
    let (code, _, message) = api_error(me(&one, &old).await.unwrap()).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert!(message.contains("expired"), "{message}");
    assert_eq!(status(me(&two, &new).await), StatusCode::OK);
}

async fn a_use_just_before_the_regenerate_is_the_replaced_secrets(app: TestApp) {
    let grace = grace(&app).await;
    let (id, old) = app.token_for(grace.id, "deploy-bot", &["tag:read"]).await;
    let (_, reader) = app
        .token_for(grace.id, "reader", &["personalAccessToken:read"])
        .await;
    // Used, and replaced before the use is written (the flusher runs every 0.3 s).
    assert_eq!(app.api().me(&old).await.status(), StatusCode::OK);
    let (_, _) = rotated(&app, &old, "24h").await;
    eventually(async || {
        !token_json(&app, &reader, id).await["previous_secret"]["last_used_at"].is_null()
    })
    .await;
    let shown = token_json(&app, &reader, id).await;
    assert!(shown["last_used_at"].is_null(), "not the new secret's use");
}

async fn a_rotation_refused_because_the_token_was_revoked_elsewhere_is_a_401(app: TestApp) {
    // This instance keeps the token verified for an hour; another revokes it meanwhile.
    let app = caching_for_an_hour(app).await;
    let grace = grace(&app).await;
    let (id, token) = app.token_for(grace.id, "deploy-bot", &["tag:read"]).await;
    assert_eq!(app.api().me(&token).await.status(), StatusCode::OK);
    let elsewhere = crate::helpers::TokenTimes {
        revoked_at: Some(chrono::Utc::now().naive_utc()),
        ..Default::default()
    };
    app.set_token_times(id, elsewhere).await;
    let refused = rotate(&app, SELF_ROTATE, &token, serde_json::json!({})).await;
    let (status, code, message) = api_error(refused).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_token")
    );
    assert!(message.contains("revoked"), "{message}");
}

/// `app`'s backend again, under a server that keeps verified tokens for an hour.
async fn caching_for_an_hour(app: TestApp) -> TestApp {
    let backend = app.backend();
    drop(app);
    TestApp::spawn_with(backend, |config| config.auth_cache_ms = 3_600_000).await
}

/// Grace, a user.
async fn grace(app: &TestApp) -> tokendesk::users::User {
    app.create_user("grace@example.com", "grace-password-1", Role::User)
        .await
}
