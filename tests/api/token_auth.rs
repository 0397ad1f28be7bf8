use reqwest::StatusCode;
use tokendesk::domain::Role;

use crate::backend_tests;
use crate::helpers::{
    api_error, days_ago, stored_tokens, user_and_browser, Backend, Presented, TestApp, TokenTimes,
    EVERY_WAY,
};

backend_tests!(
    a_token_works_in_each_of_the_four_ways,
    each_rejection_says_why_without_echoing_the_token,
    two_different_tokens_in_one_request_is_a_bad_request,
    scopes_are_limited_by_the_owners_role_at_this_moment,
    the_api_lists_tokens_without_secrets_to_a_token_that_may_read_them,
    a_token_created_through_the_api_works_until_revoked_through_it,
    a_created_tokens_location_reads_it_back_to_its_owner_only,
    without_expires_in_the_api_uses_the_organisations_default_expiry,
    by_default_a_token_made_by_a_token_lives_no_longer_than_it,
    the_path_form_reaches_a_token_by_its_id,
    the_api_finds_no_one_elses_token_and_no_unknown_route,
    api_bodies_are_validated_like_the_form,
    the_gateway_check_reads_the_original_uri,
    the_openapi_document_describes_the_api,
    bad_tokens_from_one_address_get_429_for_a_while,
);

async fn a_token_works_in_each_of_the_four_ways(app: TestApp) {
    let user = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let (_, token) = app
        .token_for(user.id, "ci", &["license:read", "tag:read"])
        .await;
    let api = app.api();
    for way in EVERY_WAY {
        let response = api.get("/me", &token, way).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{way:?}");
        let me: serde_json::Value = response.json().await.unwrap();
        assert_eq!(me["user"]["email"], "grace@example.com", "{way:?}");
        assert_eq!(me["user"]["role"], "user");
        assert_eq!(me["token"]["name"], "ci");
        assert_eq!(
            me["token"]["scopes"],
            serde_json::json!(["license:read", "tag:read"])
        );
        assert!(me["token"]["expires_at"].is_null());
    }
}

/// A 401 whose error, challenge and message say `reason`, and whose message does not repeat
/// the `token` presented.
async fn assert_refused_because(response: reqwest::Response, reason: &str, token: &str) {
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let (status, code, message) = api_error(response).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{reason}");
    assert_eq!(code, "invalid_token", "{reason}");
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\""),
        "{reason}: {challenge}"
    );
    assert!(message.contains(reason), "{reason}: {message}");
    // The part after the prefix, or a short token whole (its tail may be an ordinary word).
    let echoed = if token.len() >= 10 {
        &token[4..]
    } else {
        token
    };
    assert!(
        echoed.is_empty() || !message.contains(echoed),
        "the token was echoed: {message}"
    );
}

async fn each_rejection_says_why_without_echoing_the_token(app: TestApp) {
    let user = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let api = app.api();
    let missing = api.client.get(format!("{}/api/v1/me", app.address)).send();
    assert_refused_because(missing.await.unwrap(), "No token was presented", "").await;

    let (id, good) = app.token_for(user.id, "ci", &["tag:read"]).await;
    let mut typo = good.clone().into_bytes();
    typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    assert_refused_because(api.me(&typo).await, "malformed", &typo).await;
    assert_refused_because(api.me("tdk_short").await, "malformed", "tdk_short").await;

    let unknown = tokendesk::tokens::TokenSecret::generate();
    let unknown = unknown.expose();
    assert_refused_because(api.me(unknown).await, "not known", unknown).await;

    let expired = TokenTimes {
        expires_at: Some(days_ago(1)),
        ..TokenTimes::default()
    };
    app.set_token_times(id, expired).await;
    assert_refused_because(api.me(&good).await, "expired", &good).await;

    let (_, second) = app.token_for(user.id, "second", &["tag:read"]).await;
    assert_eq!(api.me(&second).await.status(), StatusCode::OK);
    app.set_member(user.id, Role::User, false).await;
    assert_refused_because(api.me(&second).await, "deactivated", &second).await;
    app.set_member(user.id, Role::User, true).await;
    let reactivated = api.me(&second).await.status();
    assert_eq!(reactivated, StatusCode::OK, "reactivated");

    let (third_id, third) = app.token_for(user.id, "third", &["tag:read"]).await;
    let revoked = TokenTimes {
        revoked_at: Some(days_ago(1)),
        ..TokenTimes::default()
    };
    app.set_token_times(third_id, revoked).await;
    assert_refused_because(api.me(&third).await, "revoked", &third).await;
}

async fn two_different_tokens_in_one_request_is_a_bad_request(app: TestApp) {
    let user = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let (_, a) = app.token_for(user.id, "a", &["tag:read"]).await;
    let (_, b) = app.token_for(user.id, "b", &["tag:read"]).await;
    let api = app.api();
    let response = api
        .get("/me", &a, Presented::Query)
        .bearer_auth(&b)
        .send()
        .await
        .unwrap();
    let (status, code, _) = api_error(response).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    // The same token twice is one token.
    let response = api
        .get("/me", &a, Presented::Query)
        .bearer_auth(&a)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

async fn scopes_are_limited_by_the_owners_role_at_this_moment(app: TestApp) {
    let admin = app
        .create_user("root@example.com", "root-password-1", Role::Admin)
        .await;
    let (_, token) = app
        .token_for(admin.id, "ops", &["license:read", "license:write"])
        .await;
    let api = app.api();
    let bearer = format!("Bearer {token}");
    let verify = |scope: &'static str| {
        let api = &api;
        let bearer = bearer.clone();
        async move {
            api.verify(&format!("?scope={scope}"), &[("authorization", &bearer)])
                .await
        }
    };
    assert_eq!(
        verify("license:write").await.status(),
        StatusCode::NO_CONTENT
    );

    // Demotion applies to the very next request.
    app.set_member(admin.id, Role::User, true).await;
    let response = verify("license:write").await;
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("insufficient_scope") && challenge.contains("license:write"));
    let (status, code, message) = api_error(response).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "insufficient_scope")
    );
    assert!(message.contains("license:write"));
    assert_eq!(
        verify("license:read").await.status(),
        StatusCode::NO_CONTENT
    );
    let me: serde_json::Value = api.me(&token).await.json().await.unwrap();
    assert_eq!(me["token"]["scopes"], serde_json::json!(["license:read"]));
    assert_eq!(me["user"]["role"], "user");

    app.set_member(admin.id, Role::Admin, true).await;
    assert_eq!(
        verify("license:write").await.status(),
        StatusCode::NO_CONTENT,
        "promotion too"
    );
    let response = api
        .verify("?scope=nope:read", &[("authorization", &bearer)])
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

/// Grace, signed in, with a token that may only read licences and one that may manage her
/// tokens: (her id, her browser, the reader, the manager).
async fn grace_with_a_reader_and_a_manager(
    app: &TestApp,
) -> (i64, crate::helpers::Browser, String, String) {
    let (user, browser) = user_and_browser(app, "grace@example.com", Role::User).await;
    let (_, reader) = app.token_for(user.id, "reader", &["license:read"]).await;
    let scopes = [
        "personalAccessToken:read",
        "personalAccessToken:write",
        "tag:read",
    ];
    let (_, manager) = app.token_for(user.id, "manager", &scopes).await;
    (user.id, browser, reader, manager)
}

/// `POST /api/v1/personal-access-tokens` with this JSON, presenting `token`.
async fn create_through_the_api(
    app: &TestApp,
    token: &str,
    body: serde_json::Value,
) -> reqwest::Response {
    app.api()
        .client
        .post(format!("{}/api/v1/personal-access-tokens", app.address))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// `DELETE /api/v1/personal-access-tokens/{target}`, presenting `token`.
async fn revoke_through_the_api(app: &TestApp, token: &str, target: &str) -> reqwest::Response {
    app.api()
        .client
        .delete(format!(
            "{}/api/v1/personal-access-tokens/{target}",
            app.address
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn the_api_lists_tokens_without_secrets_to_a_token_that_may_read_them(app: TestApp) {
    let (_, _, reader, manager) = grace_with_a_reader_and_a_manager(&app).await;
    let api = app.api();
    let list = |token: &str| {
        api.get("/personal-access-tokens", token, Presented::Bearer)
            .send()
    };

    let (status, code, message) = api_error(list(&reader).await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "insufficient_scope")
    );
    assert!(message.contains("personalAccessToken:read"));

    let list: serde_json::Value = list(&manager).await.unwrap().json().await.unwrap();
    assert_eq!(list["total"], 2);
    let names: Vec<&str> = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["manager", "reader"]);
    assert!(
        !list.to_string().contains(&reader[4..]),
        "no secrets in the list"
    );
    let hint = list["tokens"][0]["hint"].as_str().unwrap();
    assert!(hint.starts_with("tdk_"));
}

async fn a_token_created_through_the_api_works_until_revoked_through_it(app: TestApp) {
    let (_, browser, _, manager) = grace_with_a_reader_and_a_manager(&app).await;
    let api = app.api();
    let body = serde_json::json!({"name": "from-api", "expires_in": "7", "scopes": ["tag:read"]});
    let response = create_through_the_api(&app, &manager, body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: serde_json::Value = response.json().await.unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert_eq!(created["token"]["name"], "from-api");
    let expires_at = created["token"]["expires_at"].as_str().unwrap();
    assert!(expires_at.ends_with('Z'));
    let me: serde_json::Value = api.me(&secret).await.json().await.unwrap();
    assert_eq!(me["token"]["name"], "from-api");
    let page = browser.page("/developer/access-tokens").await;
    assert!(page.contains("from-api"), "the page lists it");

    // Revoke through the API: refused on the next request.
    let id = created["token"]["id"].as_i64().unwrap().to_string();
    let response = revoke_through_the_api(&app, &manager, &id).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (status, _, message) = api_error(api.me(&secret).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(message.contains("revoked"));
    let actions = app.audit_actions().await;
    assert!(
        actions.contains(&"token.created".to_owned())
            && actions.contains(&"token.revoked".to_owned())
    );
}

/// `GET` of an API address (`/api/v1/...` or a `Location`), presenting `token`.
async fn get_through_the_api(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    let url = format!("{}{path}", app.address);
    let request = app.api().client.get(url).bearer_auth(token);
    request.send().await.unwrap()
}

async fn a_created_tokens_location_reads_it_back_to_its_owner_only(app: TestApp) {
    let (_, _, reader, manager) = grace_with_a_reader_and_a_manager(&app).await;
    let body = serde_json::json!({"name": "from-api", "expires_in": "7", "scopes": ["tag:read"]});
    let response = create_through_the_api(&app, &manager, body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let token_location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: serde_json::Value = response.json().await.unwrap();
    let id = created["token"]["id"].as_i64().unwrap();
    assert_eq!(
        token_location,
        format!("/api/v1/personal-access-tokens/{id}")
    );

    let response = get_through_the_api(&app, &manager, &token_location).await;
    assert_eq!(response.status(), StatusCode::OK);
    let token: serde_json::Value = response.json().await.unwrap();
    // The same token, without its secret; one token's view adds how it is used.
    for (field, value) in created["token"].as_object().unwrap() {
        assert_eq!(&token[field], value, "{field}");
    }
    assert!(token["usage"].is_array() && token["scopes_exercised"].is_array());

    // The scope of listing; and another's token, or no token, is not found.
    let (status, code, _) =
        api_error(get_through_the_api(&app, &reader, &token_location).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "insufficient_scope")
    );
    let other = app
        .create_user("mallory@example.com", "mallory-password", Role::Admin)
        .await;
    let (other_id, _) = app.token_for(other.id, "theirs", &["tag:read"]).await;
    for target in [other_id.to_string(), "999999".into(), "abc".into()] {
        let path = format!("/api/v1/personal-access-tokens/{target}");
        let (status, code, _) = api_error(get_through_the_api(&app, &manager, &path).await).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::NOT_FOUND, "not_found"),
            "{target}"
        );
    }
}

async fn without_expires_in_the_api_uses_the_organisations_default_expiry(app: TestApp) {
    let admin = app.setup_admin().await;
    let saved = admin.set_token_policy("60", "7").await;
    assert_eq!(crate::helpers::location(&saved), "/admin/settings");
    let scopes = ["personalAccessToken:write", "tag:read"];
    let (_, manager) = app.token_for(1, "manager", &scopes).await;
    let body = serde_json::json!({"name": "defaulted", "scopes": ["tag:read"]});
    let response = create_through_the_api(&app, &manager, body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let expires_at = created_expiry(response).await;
    let days = (expires_at - chrono::Utc::now()).num_hours() as f64 / 24.0;
    assert!((6.9..=7.0).contains(&days), "expires in {days} days");

    // A value the form does not offer is a field error naming the ones it does.
    let body = serde_json::json!({"name": "odd", "expires_in": "45", "scopes": ["tag:read"]});
    let response = create_through_the_api(&app, &manager, body).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "validation_failed");
    assert_eq!(
        body["fields"]["expires_in"],
        "Choose when the token expires. Allowed values: 1, 7, 30, 60, 90, 365, custom, never."
    );
}

async fn the_api_finds_no_one_elses_token_and_no_unknown_route(app: TestApp) {
    let (_, _, _, manager) = grace_with_a_reader_and_a_manager(&app).await;
    let other = app
        .create_user("mallory@example.com", "mallory-password", Role::Admin)
        .await;
    let (other_id, _) = app.token_for(other.id, "theirs", &["tag:read"]).await;
    for target in [other_id.to_string(), "999999".into(), "abc".into()] {
        let response = revoke_through_the_api(&app, &manager, &target).await;
        let (status, code, _) = api_error(response).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::NOT_FOUND, "not_found"),
            "{target}"
        );
    }
    assert!(stored_tokens(&app, other.id).await[0].revoked_at.is_none());
    let response = app
        .api()
        .client
        .get(format!("{}/api/v1/nope", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(api_error(response).await.1, "not_found");
}

async fn api_bodies_are_validated_like_the_form(app: TestApp) {
    let user = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let scopes = ["personalAccessToken:write", "tag:read"];
    let (_, manager) = app.token_for(user.id, "manager", &scopes).await;
    let post = |body| create_through_the_api(&app, &manager, body);

    let response = post(serde_json::json!({})).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "validation_failed");
    assert_eq!(body["fields"]["name"], "Enter a name.");
    assert_eq!(body["fields"]["scopes"], "Choose at least one scope.");

    let beyond_the_role =
        serde_json::json!({"name": "x", "expires_in": "30", "scopes": ["license:write"]});
    let body: serde_json::Value = post(beyond_the_role).await.json().await.unwrap();
    assert_eq!(
        body["fields"]["scopes"],
        "Your role (user) does not allow: license:write."
    );

    let taken = serde_json::json!({"name": "manager", "expires_in": "30", "scopes": ["tag:read"]});
    let body: serde_json::Value = post(taken).await.json().await.unwrap();
    let message = body["fields"]["name"].as_str().unwrap();
    assert!(message.contains("already have an active token"));

    let raw = |body: String| {
        app.api()
            .client
            .post(format!("{}/api/v1/personal-access-tokens", app.address))
            .bearer_auth(&manager)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let response = raw("{not json".into()).await.unwrap();
    assert_eq!(api_error(response).await.1, "invalid_request");
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(100_000));
    let response = raw(huge).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        stored_tokens(&app, user.id).await.len(),
        1,
        "nothing stored"
    );
}

async fn the_gateway_check_reads_the_original_uri(app: TestApp) {
    let user = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let (_, token) = app.token_for(user.id, "ci", &["license:read"]).await;
    let api = app.api();
    for (header, uri) in [
        ("x-original-uri", format!("/ipfs/{token}/api/v0/add")),
        ("x-original-uri", format!("/ext/bc/C/rpc/{token}")),
        ("x-forwarded-uri", format!("/anything?x=1&token={token}")),
    ] {
        let response = api.verify("", &[(header, &uri)]).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT, "{header}: {uri}");
        let h = response.headers();
        assert_eq!(h["x-auth-user-id"], user.id.to_string().as_str());
        assert_eq!(h["x-auth-user-email"], "grace@example.com");
        assert_eq!(h["x-auth-role"], "user");
        assert_eq!(h["x-auth-scopes"], "license:read");
    }
    assert_eq!(
        api.verify("", &[("x-original-uri", "/no/token/here")])
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let response = api
        .verify("?scope=tag:read", &[("x-auth-token", &token)])
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

async fn bad_tokens_from_one_address_get_429_for_a_while(app: TestApp) {
    let backend = app.backend();
    drop(app);
    let app = TestApp::spawn_with(backend, |config| {
        config.token_failure_limit = 5;
        config.token_failure_window_secs = 60;
        config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let user = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let (_, good) = app.token_for(user.id, "ci", &["license:read"]).await;
    let guesser = "203.0.113.7";
    let bystander = "203.0.113.8";
    let api = app.api();
    let me_from = |ip: &'static str, token: String| {
        let request = api
            .get("/me", &token, Presented::Bearer)
            .header("x-forwarded-for", ip);
        async move { request.send().await.unwrap() }
    };
    let mut guess = good.clone();
    guess.replace_range(6..7, if &good[6..7] == "A" { "B" } else { "A" });

    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(me_from(guesser, guess.clone()).await.status().as_u16());
    }
    println!("429 throttle: 7 bad tokens from one address answered {statuses:?}");
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429]);

    let blocked = me_from(guesser, good.clone()).await;
    assert_eq!(
        blocked.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "while blocked even a good token is refused, so a lucky guess teaches nothing"
    );
    let retry_after: u64 = blocked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (58..=60).contains(&retry_after),
        "Retry-After {retry_after}"
    );
    let (_, code, _) = api_error(blocked).await;
    assert_eq!(code, "too_many_requests");
    let verify = api
        .verify("", &[("x-auth-token", &good), ("x-forwarded-for", guesser)])
        .await;
    assert_eq!(
        verify.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the gateway check too"
    );

    assert_eq!(
        me_from(bystander, good.clone()).await.status(),
        StatusCode::OK,
        "another client is unaffected"
    );
    app.clock.advance(std::time::Duration::from_secs(59));
    assert_eq!(
        me_from(guesser, good.clone()).await.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "a second before the window ends, still blocked"
    );
    app.clock.advance(std::time::Duration::from_secs(1));
    assert_eq!(
        me_from(guesser, good.clone()).await.status(),
        StatusCode::OK,
        "the block lifts after the window"
    );
}

async fn the_openapi_document_describes_the_api(app: TestApp) {
    let doc: serde_json::Value = app
        .api()
        .client
        .get(format!("{}/api/v1/openapi.json", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/me",
        "/api/v1/personal-access-tokens",
        "/api/v1/personal-access-tokens/{id}",
        "/auth/verify",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path}");
    }
    assert!(doc["paths"]["/api/v1/personal-access-tokens"]["post"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    assert!(doc["components"]["schemas"]["MeResponse"].is_object());
}

/// PostgreSQL only (a database can be taken away under the server): a malformed token is
/// refused from its checksum alone, while a well-formed one needs the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_checksum_never_reaches_the_database() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let api = app.api();
    let good = tokendesk::tokens::TokenSecret::generate()
        .expose()
        .to_owned();
    let bad = crate::helpers::a_guess_at(&good);
    app.drop_postgres_database();
    let (status, code, _) = api_error(api.me(&bad).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_token")
    );
    let (status, code, _) = api_error(api.me(&good).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    );
}

async fn by_default_a_token_made_by_a_token_lives_no_longer_than_it(app: TestApp) {
    app.setup_admin().await;
    let scopes = ["personalAccessToken:write", "tag:read"];
    let (maker_id, maker) = app.token_for(1, "maker", &scopes).await;
    let maker_expiry = (chrono::Utc::now() + chrono::Duration::days(3)).naive_utc();
    let times = crate::helpers::TokenTimes {
        expires_at: Some(maker_expiry),
        ..Default::default()
    };
    app.set_token_times(maker_id, times).await;
    let body = serde_json::json!({"name": "child", "scopes": ["tag:read"]});
    let response = create_through_the_api(&app, &maker, body).await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "the 30-day default is cut to fit"
    );
    let expires_at = created_expiry(response).await;
    let gap = (expires_at.naive_utc() - maker_expiry).num_seconds().abs();
    assert!(gap <= 1, "the child expires with its maker ({gap} s apart)");
}

async fn the_path_form_reaches_a_token_by_its_id(app: TestApp) {
    let user = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let scopes = ["personalAccessToken:read", "personalAccessToken:write"];
    let (id, token) = app.token_for(user.id, "manager", &scopes).await;
    let client = reqwest::Client::new();
    let url = format!("{}/{token}/api/v1/personal-access-tokens/{id}", app.address);
    let read = client.get(&url).send().await.unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    let json: serde_json::Value = read.json().await.unwrap();
    assert_eq!(json["id"], id);
    let revoked = client.delete(&url).send().await.unwrap();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
}

/// When the token a 201 describes expires.
async fn created_expiry(response: reqwest::Response) -> chrono::DateTime<chrono::Utc> {
    let created: serde_json::Value = response.json().await.unwrap();
    created["token"]["expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}
