//! A token renewing itself: `POST /api/v1/personal-access-tokens/self/rotate`, authenticated by
//! the token that is replaced.

use reqwest::StatusCode;
use tokendesk::domain::Role;

use crate::backend_tests;
use crate::helpers::{api_error, days_ago, TestApp, TokenTimes, SELF_ROTATE};

backend_tests!(
    a_token_rotates_itself_keeping_name_scopes_and_lifetime,
    a_rotation_may_choose_its_expiry_within_the_policy,
    a_revoked_token_cannot_rotate_and_a_bad_body_is_refused,
    an_application_token_rotates_itself_within_the_application_policy,
);

/// Rotates with `body` (None: no body at all), presenting `token`.
async fn rotate(app: &TestApp, token: &str, body: Option<serde_json::Value>) -> reqwest::Response {
    app.api().post_as(SELF_ROTATE, token, body).await
}

fn expires_in_days(rotated: &serde_json::Value) -> f64 {
    let at: chrono::DateTime<chrono::Utc> = rotated["token"]["expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    (at - chrono::Utc::now()).num_minutes() as f64 / (24.0 * 60.0)
}

async fn a_token_rotates_itself_keeping_name_scopes_and_lifetime(app: TestApp) {
    let grace = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let (id, old) = app
        .token_for(grace.id, "deploy-bot", &["tag:read", "license:read"])
        .await;
    // Given 30 days, ten days ago.
    let times = TokenTimes {
        created_at: Some(days_ago(10)),
        expires_at: Some(days_ago(10) + chrono::Duration::days(30)),
        ..TokenTimes::default()
    };
    app.set_token_times(id, times).await;

    let response = rotate(&app, &old, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let rotated: serde_json::Value = response.json().await.unwrap();
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_eq!(rotated["token"]["id"], id, "the same token");
    assert_eq!(rotated["token"]["name"], "deploy-bot");
    assert_eq!(
        rotated["token"]["scopes"],
        serde_json::json!(["license:read", "tag:read"])
    );
    let days = expires_in_days(&rotated);
    assert!(
        (29.9..=30.0).contains(&days),
        "30 days again, from now: {days}"
    );

    let api = app.api();
    assert_eq!(
        api.me(&old).await.status(),
        StatusCode::UNAUTHORIZED,
        "the old secret stops"
    );
    assert_eq!(api.me(&new).await.status(), StatusCode::OK);
    let events = app.audit_events("token.regenerated").await;
    assert_eq!(events.len(), 1, "audited");
}

async fn a_rotation_may_choose_its_expiry_within_the_policy(app: TestApp) {
    let admin = app.setup_admin().await;
    let (_, forever) = app.token_for(1, "forever", &["tag:read"]).await;
    let chosen = rotate(&app, &forever, Some(serde_json::json!({"expires_in": "7"}))).await;
    assert_eq!(chosen.status(), StatusCode::OK);
    let rotated: serde_json::Value = chosen.json().await.unwrap();
    let days = expires_in_days(&rotated);
    assert!((6.9..=7.0).contains(&days), "{days}");

    // A token that never expired keeps no expiry only where the policy allows it.
    let (_, never) = app.token_for(1, "never", &["tag:read"]).await;
    admin.set_token_policy("30", "7").await;
    let refused = rotate(&app, &never, None).await;
    let (status, code, _) = api_error(refused).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
    );
    let odd = rotate(&app, &never, Some(serde_json::json!({"expires_in": "45"}))).await;
    assert_eq!(odd.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.api().me(&never).await.status(),
        StatusCode::OK,
        "nothing changed"
    );
}

async fn a_revoked_token_cannot_rotate_and_a_bad_body_is_refused(app: TestApp) {
    let grace = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let (id, token) = app.token_for(grace.id, "ci", &["tag:read"]).await;
    let garbled = app
        .api()
        .client
        .post(format!(
            "{}/api/v1/personal-access-tokens/self/rotate",
            app.address
        ))
        .bearer_auth(&token)
        .body("{\"expires_in\": 7")
        .send()
        .await
        .unwrap();
    assert_eq!(garbled.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        app.api().me(&token).await.status(),
        StatusCode::OK,
        "not rotated"
    );

    let times = TokenTimes {
        revoked_at: Some(days_ago(0)),
        ..TokenTimes::default()
    };
    app.set_token_times(id, times).await;
    let refused = rotate(&app, &token, None).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

    // An expired token cannot rotate itself back to life either: its owner regenerates it.
    let (expired_id, expired) = app.token_for(grace.id, "expired", &["tag:read"]).await;
    let times = TokenTimes {
        expires_at: Some(days_ago(1)),
        ..TokenTimes::default()
    };
    app.set_token_times(expired_id, times).await;
    let (status, code, message) = api_error(rotate(&app, &expired, None).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_token")
    );
    assert!(message.contains("expired"), "{message}");
}

async fn an_application_token_rotates_itself_within_the_application_policy(app: TestApp) {
    let admin = app.setup_admin().await;
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
    let made = app
        .api()
        .client
        .post(format!("{}/api/v1/applications/{}/tokens", app.address, billing["id"]))
        .bearer_auth(&adas)
        .json(&serde_json::json!({"name": "nightly", "expires_in": "30", "scopes": ["license:write", "tag:read"]}))
        .send()
        .await
        .unwrap();
    let made: serde_json::Value = made.json().await.unwrap();
    let old = made["secret"].as_str().unwrap().to_owned();
    let rotate_application = |token: String, body: Option<serde_json::Value>| {
        let request = app
            .api()
            .client
            .post(format!(
                "{}/api/v1/application-tokens/self/rotate",
                app.address
            ))
            .bearer_auth(token);
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        async move { request.send().await.unwrap() }
    };

    let response = rotate_application(old.clone(), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let rotated: serde_json::Value = response.json().await.unwrap();
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert!(new.starts_with("tda_"));
    assert_eq!(
        rotated["token"]["id"], made["token"]["id"],
        "the same token"
    );
    assert_eq!(rotated["token"]["name"], "nightly");
    assert!(
        (29.9..=30.0).contains(&expires_in_days(&rotated)),
        "30 days again"
    );
    assert_eq!(app.api().me(&old).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.api().me(&new).await.status(), StatusCode::OK);
    let events = app.audit_events("application_token.regenerated").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].actor_id, None, "no person rotated it");
    assert!(events[0].details.contains("rotated by the token itself"));

    // Beyond the maximum for application tokens, or after the policy withdrew one of its
    // scopes, it cannot rotate; a personal token has its own route.
    let never = rotate_application(
        new.clone(),
        Some(serde_json::json!({"expires_in": "never"})),
    );
    assert_eq!(never.await.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let fields = [
        ("max_lifetime_days", ""),
        ("default_expiry", "30"),
        ("max_active_tokens", "100"),
        ("application_max_lifetime_days", "365"),
        ("application_scope_rule", "chosen"),
        ("application_scopes", "tag:read"),
    ];
    admin
        .submit_form("/admin/settings", "/admin/settings", &fields)
        .await;
    let narrowed = rotate_application(new.clone(), None).await;
    let (status, code, _) = api_error(narrowed).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
    );
    let personal = rotate_application(adas, None).await;
    assert_eq!(personal.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.api().me(&new).await.status(),
        StatusCode::OK,
        "unchanged by the refusals"
    );
}
