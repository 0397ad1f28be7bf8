//! Rules a hostile review found unenforced: a token minting tokens beyond itself, a regenerated
//! token inheriting its old secret's use, policy edges, errors that were not JSON, links built
//! from a header any client can send.

use std::time::Duration;

use chrono::Utc;
use reqwest::StatusCode;
use tokendesk::domain::Role;

use crate::backend_tests;
use crate::helpers::{
    api_error, days_ago, location, stored_tokens, user_and_browser, Presented, TestApp, TokenTimes,
};

backend_tests!(
    a_token_makes_no_token_beyond_its_own_scopes_or_life,
    a_regenerated_token_starts_never_used,
    short_maximum_lifetimes_and_custom_dates_hold_to_the_hour,
    regenerating_an_expired_token_keeps_names_unique,
    odd_api_queries_get_json_errors,
    odd_page_queries_get_a_page,
    links_are_built_from_the_configured_address_not_from_forwarded_headers,
);

async fn create_through_api(
    app: &TestApp,
    maker: &str,
    body: serde_json::Value,
) -> reqwest::Response {
    app.api()
        .client
        .post(format!("{}/api/v1/personal-access-tokens", app.address))
        .bearer_auth(maker)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn a_token_makes_no_token_beyond_its_own_scopes_or_life(app: TestApp) {
    let (kim, browser) = user_and_browser(&app, "kim@example.com", Role::User).await;
    let maker = browser
        .create_token("maker", "7", &["personalAccessToken:write", "tag:read"])
        .await;
    let refused = |scopes: &[&str], expires_in: &str| {
        let body =
            serde_json::json!({"name": "minted", "expires_in": expires_in, "scopes": scopes});
        let (app, maker) = (&app, &maker);
        async move {
            let response = create_through_api(app, maker, body).await;
            assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
            response.json::<serde_json::Value>().await.unwrap()["fields"].clone()
        }
    };
    let fields = refused(&["tag:read", "license:read"], "1").await;
    assert_eq!(
        fields["scopes"],
        "A token can only grant scopes it holds itself; this one lacks: license:read."
    );
    for longer in ["never", "30", "365"] {
        let fields = refused(&["tag:read"], longer).await;
        assert!(fields["expires_in"]
            .as_str()
            .unwrap()
            .starts_with("A token cannot make a token that outlives it"));
    }
    let body = serde_json::json!({"name": "minted", "expires_in": "1", "scopes": ["tag:read"]});
    let response = create_through_api(&app, &maker, body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(stored_tokens(&app, kim.id).await.len(), 2);
    let created = app.audit_events("token.created").await;
    let minted = created
        .iter()
        .find(|e| e.target_label.as_deref() == Some("minted"));
    assert!(
        minted.unwrap().details.contains("; made by token #"),
        "the trail says which token made it"
    );
}

async fn a_regenerated_token_starts_never_used(app: TestApp) {
    let app = TestApp::spawn_with(app.backend(), |config| config.last_used_flush_secs = 2.0).await;
    let (kim, browser) = user_and_browser(&app, "kim@example.com", Role::User).await;
    let old_secret = browser.create_token("ci", "30", &["tag:read"]).await;
    let id = stored_tokens(&app, kim.id).await[0].id;
    let used = app
        .api()
        .get("/me", &old_secret, Presented::Bearer)
        .send()
        .await;
    assert_eq!(used.unwrap().status(), StatusCode::OK);
    // Regenerated before the use is flushed.
    let page = format!("/developer/access-tokens/{id}/regenerate");
    let response = browser
        .submit_form(&page, &page, &[("expires_in", "30")])
        .await;
    assert_eq!(location(&response), "/developer/access-tokens/reveal");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        app.last_used_at(id).await,
        None,
        "the old secret's use is not the new one's"
    );
    assert!(browser
        .page("/developer/access-tokens")
        .await
        .contains("Never"));
}

async fn short_maximum_lifetimes_and_custom_dates_hold_to_the_hour(app: TestApp) {
    let admin = app.setup_admin().await;
    assert_eq!(
        location(&admin.set_token_policy("3", "1").await),
        "/admin/settings"
    );
    let form = admin.page("/developer/access-tokens/new").await;
    assert!(
        form.contains("value=\"1\" selected"),
        "1 day is the default"
    );
    assert!(!form.contains("value=\"7\""), "longer choices are hidden");
    assert!(
        form.contains("23:59:59 UTC"),
        "the form says when a custom date ends"
    );

    let day = |days: i64| {
        (Utc::now() + chrono::Duration::days(days))
            .format("%Y-%m-%d")
            .to_string()
    };
    let custom = |date: String| {
        let admin = &admin;
        async move {
            admin
                .submit_new_token(&[
                    ("name", "custom"),
                    ("expires_in", "custom"),
                    ("expires_on", &date),
                    ("scopes", "tag:read"),
                ])
                .await
        }
    };
    // The third day's end is more than 72 hours away; the second day's is not.
    let response = custom(day(3)).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("or earlier: a token works until the end of its day"));
    assert_eq!(
        location(&custom(day(2)).await),
        "/developer/access-tokens/reveal"
    );
    let stored = stored_tokens(&app, 1).await;
    let lifetime = stored[0].expires_at.unwrap() - Utc::now().naive_utc();
    assert!(lifetime <= chrono::Duration::days(3), "{lifetime}");
}

async fn regenerating_an_expired_token_keeps_names_unique(app: TestApp) {
    let (kim, browser) = user_and_browser(&app, "kim@example.com", Role::User).await;
    browser.create_token("deploy", "30", &["tag:read"]).await;
    let old = stored_tokens(&app, kim.id).await[0].id;
    let expired = TokenTimes {
        expires_at: Some(days_ago(1)),
        ..TokenTimes::default()
    };
    app.set_token_times(old, expired).await;
    browser.create_token("deploy", "30", &["tag:read"]).await;
    let page = format!("/developer/access-tokens/{old}/regenerate");
    let response = browser
        .submit_form(&page, &page, &[("expires_in", "30")])
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("already have an active token named"));
    let active = stored_tokens(&app, kim.id)
        .await
        .into_iter()
        .filter(|t| t.expires_at.is_some_and(|at| at > Utc::now().naive_utc()))
        .count();
    assert_eq!(active, 1);
}

async fn odd_api_queries_get_json_errors(app: TestApp) {
    let kim = app
        .create_user("kim@example.com", "kims-password-1", Role::User)
        .await;
    let (_, token) = app
        .token_for(kim.id, "reader", &["personalAccessToken:read", "tag:read"])
        .await;
    let api = app.api();
    let list = |query: &str| {
        api.get(
            &format!("/personal-access-tokens?{query}"),
            &token,
            Presented::Bearer,
        )
    };
    let far = list("page=9223372036854775807").send().await.unwrap();
    assert_eq!(far.status(), StatusCode::OK);
    let body: serde_json::Value = far.json().await.unwrap();
    assert_eq!(body["tokens"], serde_json::json!([]));
    for query in ["page=abc", "page=-9223372036854775809", "revoked=perhaps"] {
        let (status, code, _) = api_error(list(query).send().await.unwrap()).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{query}"
        );
    }
    for unknown in [
        "/api/v2/me",
        "/api/",
        "/api//v1/me",
        "/auth/",
        "/auth/verify/",
    ] {
        let response = api
            .client
            .get(format!("{}{unknown}", app.address))
            .send()
            .await
            .unwrap();
        let (status, code, _) = api_error(response).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::NOT_FOUND, "not_found"),
            "{unknown}"
        );
    }
    let twice = api
        .verify(
            "?scope=tag:read&scope=tag:read",
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
    let (status, code, _) = api_error(twice).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
}

async fn links_are_built_from_the_configured_address_not_from_forwarded_headers(app: TestApp) {
    let add_linus = |admin: crate::helpers::Browser| async move {
        let html = admin.page("/admin/members/new").await;
        let csrf = crate::helpers::csrf_token(&html);
        let response = admin
            .client
            .post(admin.url("/admin/members"))
            .header("x-forwarded-host", "evil.example")
            .header("x-forwarded-proto", "https")
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("display_name", "Linus"),
                ("email", "linus@example.com"),
                ("role", "user"),
                ("method", "link"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(location(&response), "/admin/members/link");
        admin.page("/admin/members/link").await
    };
    let html = add_linus(app.setup_admin().await).await;
    assert!(
        !html.contains("evil.example"),
        "a stranger's header made the link"
    );
    assert!(html.contains(&format!("{}/set-password/", app.address)));

    let configured = TestApp::spawn_with(app.backend(), |config| {
        config.public_url = Some("https://tokens.example.com/".into());
    })
    .await;
    let admin = configured.setup_admin().await;
    let html = add_linus(admin.clone()).await;
    assert!(html.contains("https://tokens.example.com/set-password/"));
    let response = admin
        .submit_new_token(&[("name", "ci"), ("expires_in", "30"), ("scopes", "tag:read")])
        .await;
    assert_eq!(location(&response), "/developer/access-tokens/reveal");
    let reveal = admin.page("/developer/access-tokens/reveal").await;
    assert!(
        reveal.contains("https://tokens.example.com/api/v1/me"),
        "the examples use it"
    );
}

async fn odd_page_queries_get_a_page(app: TestApp) {
    let admin = app.setup_admin().await;
    // (A page number that is not one means the first page: pages::a_bad_page_number_….)
    for path in [
        "/admin/access-tokens?status=lost",
        "/admin/access-tokens?sort=sideways",
        "/admin/access-tokens?unused=45",
    ] {
        let response = admin.get(path).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        let html = response.text().await.unwrap();
        assert!(
            html.contains("<title>") && html.contains("Bad request"),
            "{path}: {html}"
        );
    }
    // The filters the form sends still work, empty ones included.
    let html = admin
        .page("/admin/access-tokens?status=&unused=&sort=last_used&never_used=1")
        .await;
    assert!(html.contains("All access tokens"));
}
