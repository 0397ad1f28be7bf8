//! Per-token address allowlists: a token with one is refused from anywhere else (403
//! `address_not_allowed`, counted as a bad token, audited once per address and day), on every
//! way of presenting it and through the gateway check.

use reqwest::StatusCode;
use tokendesk::domain::Role;

use crate::backend_tests;
use crate::helpers::{
    api_error, client_from, stored_tokens, user_and_browser, TestApp, EVERY_WAY, SELF_ROTATE,
};

backend_tests!(
    a_token_is_refused_from_a_real_address_outside_its_allowlist,
    refusals_are_audited_once_per_address_and_day_across_instances,
    ipv4_ipv6_and_range_edges_through_a_trusted_proxy,
    bad_allowlists_get_a_clear_field_error,
    the_policy_can_require_an_allowlist_for_write_scopes,
    regenerate_replaces_the_allowlist_and_the_list_shows_it,
    refused_addresses_count_toward_the_bad_token_limit,
    a_token_can_neither_widen_its_own_list_nor_make_one_outside_it,
);

/// Makes a token through the API with `allowed`; returns the answer.
async fn create(
    app: &TestApp,
    maker: &str,
    name: &str,
    scopes: &[&str],
    allowed: serde_json::Value,
) -> reqwest::Response {
    app.api()
        .client
        .post(format!("{}/api/v1/personal-access-tokens", app.address))
        .bearer_auth(maker)
        .json(&serde_json::json!({
            "name": name, "expires_in": "30", "scopes": scopes, "allowed_addresses": allowed,
        }))
        .send()
        .await
        .unwrap()
}

async fn made(app: &TestApp, maker: &str, name: &str, allowed: serde_json::Value) -> (i64, String) {
    let response = create(app, maker, name, &["tag:read"], allowed).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: serde_json::Value = response.json().await.unwrap();
    (
        body["token"]["id"].as_i64().unwrap(),
        body["secret"].as_str().unwrap().to_owned(),
    )
}

async fn me_from(app: &TestApp, client: &reqwest::Client, token: &str) -> reqwest::Response {
    me_at(&app.address, client, token).await
}

/// `GET /api/v1/me` on the server at `address`.
async fn me_at(address: &str, client: &reqwest::Client, token: &str) -> reqwest::Response {
    client
        .get(format!("{address}/api/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn maker(app: &TestApp) -> String {
    let grace = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    app.token_for(
        grace.id,
        "maker",
        &[
            "personalAccessToken:write",
            "personalAccessToken:read",
            "tag:read",
        ],
    )
    .await
    .1
}

async fn a_token_is_refused_from_a_real_address_outside_its_allowlist(app: TestApp) {
    let maker = maker(&app).await;
    let (_, token) = made(&app, &maker, "from-two", serde_json::json!(["127.0.0.2"])).await;
    let inside = client_from("127.0.0.2");
    let outside = client_from("127.0.0.1");
    assert_eq!(
        me_from(&app, &inside, &token).await.status(),
        StatusCode::OK
    );
    let (status, code, message) = api_error(me_from(&app, &outside, &token).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "address_not_allowed")
    );
    assert!(message.contains("127.0.0.1"), "{message}");
    assert!(!message.contains(&token), "the secret is never echoed");

    // Every way of presenting it, and the gateway check, refuse it alike.
    let api = app.api();
    for way in EVERY_WAY {
        let response = api.get("/me", &token, way).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{way:?}");
    }
    let verify = api
        .verify("", &[("authorization", &format!("Bearer {token}"))])
        .await;
    assert_eq!(verify.status(), StatusCode::FORBIDDEN);
    let through_uri = api
        .verify("", &[("x-original-uri", &format!("/rpc/{token}"))])
        .await;
    assert_eq!(through_uri.status(), StatusCode::FORBIDDEN);
    let from_inside = inside
        .get(format!("{}/auth/verify", app.address))
        .header("x-auth-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(from_inside.status(), StatusCode::NO_CONTENT);

    // A token without a list works from anywhere; the API shows each token's list.
    let (id, open) = made(&app, &maker, "anywhere", serde_json::json!([])).await;
    assert_eq!(
        me_from(&app, &outside, &open).await.status(),
        StatusCode::OK
    );
    let (_, shown) = app
        .api()
        .json(&format!("/personal-access-tokens/{id}"), &maker)
        .await;
    assert!(shown["allowed_addresses"].is_null());
}

async fn refusals_are_audited_once_per_address_and_day_across_instances(app: TestApp) {
    let maker = maker(&app).await;
    let (id, token) = made(&app, &maker, "from-two", serde_json::json!(["127.0.0.2"])).await;
    // A second instance on the same database.
    let second = app.another_instance(|_| {}).await;
    let outside = client_from("127.0.0.1");
    let elsewhere = client_from("127.0.0.3");
    let mut attempts = Vec::new();
    for instance in [&app.address, &second] {
        for _ in 0..10 {
            attempts.push(me_at(instance, &outside, &token));
        }
        attempts.push(me_at(instance, &elsewhere, &token));
    }
    for response in futures_util::future::join_all(attempts).await {
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
    let events = app.audit_events("token.address_refused").await;
    let mut addresses: Vec<_> = events
        .iter()
        .map(|e| (e.target_id, e.client_ip.clone().unwrap_or_default()))
        .collect();
    addresses.sort();
    assert_eq!(
        addresses,
        vec![
            (Some(id), "127.0.0.1".to_owned()),
            (Some(id), "127.0.0.3".to_owned())
        ],
        "one event per address"
    );
    // The next day, once more.
    app.clock.advance(std::time::Duration::from_secs(24 * 3600));
    assert_eq!(
        me_from(&app, &outside, &token).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.audit_events("token.address_refused").await.len(), 3);
}

async fn ipv4_ipv6_and_range_edges_through_a_trusted_proxy(app: TestApp) {
    let backend = app.backend();
    drop(app);
    let app = TestApp::spawn_with(backend, |config| {
        config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let maker = maker(&app).await;
    let (_, token) = made(
        &app,
        &maker,
        "ranges",
        serde_json::json!(["203.0.113.0/24", "2001:db8::/64", "198.51.100.7"]),
    )
    .await;
    let cases = [
        ("203.0.113.0", true),
        ("203.0.113.255", true),
        ("203.0.112.255", false),
        ("203.0.114.0", false),
        ("198.51.100.7", true),
        ("198.51.100.8", false),
        ("2001:db8::1", true),
        ("2001:db8:0:0:ffff:ffff:ffff:ffff", true),
        ("2001:db8:0:1::", false),
        ("::ffff:203.0.113.9", true),
        ("::ffff:198.51.100.8", false),
        ("2001:db9::1", false),
    ];
    for (address, allowed) in cases {
        let response = app
            .api()
            .client
            .get(format!("{}/api/v1/me", app.address))
            .bearer_auth(&token)
            .header("x-forwarded-for", address)
            .send()
            .await
            .unwrap();
        let expected = if allowed {
            StatusCode::OK
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(response.status(), expected, "{address}");
    }
}

async fn bad_allowlists_get_a_clear_field_error(app: TestApp) {
    let maker = maker(&app).await;
    let many: Vec<String> = (0..21).map(|i| format!("10.0.0.{i}")).collect();
    let cases = [
        (serde_json::json!(["10.0.0.1/8"]), "did you mean 10.0.0.0/8"),
        (
            serde_json::json!(["300.1.1.1"]),
            "“300.1.1.1” is not an IPv4 or IPv6 address",
        ),
        (serde_json::json!(["10.0.0.0/33"]), "“10.0.0.0/33”"),
        (serde_json::json!(["0.0.0.0/0"]), "allows every address"),
        (serde_json::json!(many), "at most 20"),
        (
            serde_json::json!("10.0.0.1, fe80::1%eth0"),
            "“fe80::1%eth0”",
        ),
    ];
    for (allowed, expected) in cases {
        let response = create(&app, &maker, "bad", &["tag:read"], allowed.clone()).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{allowed}"
        );
        let body: serde_json::Value = response.json().await.unwrap();
        let field = body["fields"]["allowed_addresses"]
            .as_str()
            .unwrap_or_default();
        assert!(field.contains(expected), "{allowed}: {field}");
    }
    // The form says so beside the field, keeps what was typed, and makes nothing.
    let (grace, browser) = user_and_browser(&app, "linus@example.com", Role::User).await;
    let response = browser
        .submit_new_token(&[
            ("name", "ci"),
            ("expires_in", "30"),
            ("scopes", "tag:read"),
            ("allowed_addresses", "10.1.2.3\n10.9.0.0/8"),
        ])
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = response.text().await.unwrap();
    assert!(
        page.contains("id=\"allowed_addresses-error\""),
        "a field error"
    );
    assert!(page.contains("did you mean 10.0.0.0/8"));
    assert!(
        page.contains("10.1.2.3\n10.9.0.0/8"),
        "what was typed stays"
    );
    assert!(
        page.contains("href=\"#allowed_addresses\""),
        "the summary links to it"
    );
    assert!(stored_tokens(&app, grace.id).await.is_empty());
}

async fn the_policy_can_require_an_allowlist_for_write_scopes(app: TestApp) {
    let admin = app.setup_admin().await;
    let saved = admin
        .save_token_policy(&[("write_requires_allowlist", "on")])
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    assert!(admin
        .page("/admin/settings")
        .await
        .contains("name=\"write_requires_allowlist\" value=\"on\" checked"));
    let (grace, browser) = user_and_browser(&app, "grace@example.com", Role::Admin).await;
    let refused = browser
        .submit_new_token(&[
            ("name", "writer"),
            ("expires_in", "30"),
            ("scopes", "license:write"),
        ])
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = refused.text().await.unwrap();
    assert!(
        page.contains("requires a token holding license:write to list the addresses"),
        "{page}"
    );
    let reader = browser
        .submit_new_token(&[
            ("name", "reader"),
            ("expires_in", "30"),
            ("scopes", "license:read"),
        ])
        .await;
    assert_eq!(
        reader.status(),
        StatusCode::SEE_OTHER,
        "read scopes need no list"
    );
    let listed = browser
        .submit_new_token(&[
            ("name", "writer"),
            ("expires_in", "30"),
            ("scopes", "license:write"),
            ("allowed_addresses", "10.0.0.0/8"),
        ])
        .await;
    assert_eq!(listed.status(), StatusCode::SEE_OTHER);
    // Regenerating a write token takes the list away only against the policy.
    let grace_id = grace.id;
    let writer = stored_tokens(&app, grace_id).await[0].id;
    let regenerate = format!("/developer/access-tokens/{writer}/regenerate");
    let emptied = browser
        .submit_form(
            &regenerate,
            &regenerate,
            &[
                ("expires_in", "30"),
                ("overlap", "none"),
                ("allowed_addresses", ""),
            ],
        )
        .await;
    assert_eq!(emptied.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // The API and application tokens follow the same rule.
    let (_, api_maker) = app
        .token_for(
            grace_id,
            "maker",
            &["personalAccessToken:write", "license:write"],
        )
        .await;
    let response = create(
        &app,
        &api_maker,
        "api-writer",
        &["license:write"],
        serde_json::json!([]),
    )
    .await;
    let (status, _, _) = api_error(response).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let events = app.audit_events("policy.changed").await;
    assert!(events
        .last()
        .unwrap()
        .details
        .contains("address allowlist required for write scopes"));
}

async fn regenerate_replaces_the_allowlist_and_the_list_shows_it(app: TestApp) {
    let (grace, browser) = user_and_browser(&app, "grace@example.com", Role::User).await;
    let created = browser
        .submit_new_token(&[
            ("name", "ci"),
            ("expires_in", "30"),
            ("scopes", "tag:read"),
            ("allowed_addresses", "10.0.0.0/8, 192.0.2.1\n2001:db8::/32"),
        ])
        .await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    let list = browser.page("/developer/access-tokens").await;
    assert!(
        list.contains("Only from <code>10.0.0.0/8</code> and 2 more"),
        "{list}"
    );
    let id = stored_tokens(&app, grace.id).await[0].id;
    let page = browser
        .page(&format!("/developer/access-tokens/{id}"))
        .await;
    assert!(page.contains("<code>2001:db8::/32</code>"));
    let regenerate = format!("/developer/access-tokens/{id}/regenerate");
    let form = browser.page(&regenerate).await;
    assert!(
        form.contains("10.0.0.0/8\n192.0.2.1\n2001:db8::/32"),
        "the form starts from the list"
    );
    let response = browser
        .submit_form(
            &regenerate,
            &regenerate,
            &[
                ("expires_in", "30"),
                ("overlap", "none"),
                ("allowed_addresses", "127.0.0.1"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let reveal = browser.page("/developer/access-tokens/reveal").await;
    let secret = crate::helpers::revealed_secret(&reveal).unwrap();
    assert_eq!(
        app.api().me(&secret).await.status(),
        StatusCode::OK,
        "from 127.0.0.1 now"
    );
    assert!(browser
        .page("/developer/access-tokens")
        .await
        .contains("Only from <code>127.0.0.1</code>"));
    // A token rotating itself keeps its list unless it sends one.
    let rotated: serde_json::Value = app
        .api()
        .post_as(SELF_ROTATE, &secret, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        rotated["token"]["allowed_addresses"],
        serde_json::json!(["127.0.0.1"])
    );
    let new = rotated["secret"].as_str().unwrap();
    // Moving it elsewhere is its owner's to do, in the portal (tested above).
    let moved = app
        .api()
        .post_as(
            SELF_ROTATE,
            new,
            Some(serde_json::json!({"allowed_addresses": ["127.0.0.2"]})),
        )
        .await;
    assert_eq!(moved.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.api().me(new).await.status(),
        StatusCode::OK,
        "not rotated"
    );
}

async fn refused_addresses_count_toward_the_bad_token_limit(app: TestApp) {
    let backend = app.backend();
    drop(app);
    let app = TestApp::spawn_with(backend, |config| config.token_failure_limit = 3).await;
    let maker = maker(&app).await;
    let (_, token) = made(&app, &maker, "from-two", serde_json::json!(["127.0.0.2"])).await;
    let outside = client_from("127.0.0.1");
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(me_from(&app, &outside, &token).await.status());
    }
    assert_eq!(&statuses[..3], &[StatusCode::FORBIDDEN; 3]);
    assert_eq!(statuses[4], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    // The allowed address is not held back by another's guesses.
    assert_eq!(
        me_from(&app, &client_from("127.0.0.2"), &token)
            .await
            .status(),
        StatusCode::OK
    );
}

async fn a_token_can_neither_widen_its_own_list_nor_make_one_outside_it(app: TestApp) {
    let grace = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let scopes = ["personalAccessToken:write", "tag:read"];
    let (_, open) = app.token_for(grace.id, "maker", &scopes).await;
    let pinned_to = serde_json::json!(["127.0.0.0/24"]);
    let response = create(&app, &open, "pinned", &scopes, pinned_to).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let pinned: serde_json::Value = response.json().await.unwrap();
    let pinned_id = pinned["token"]["id"].as_i64().unwrap();
    let pinned = pinned["secret"].as_str().unwrap().to_owned();
    // It lives a year, so what it makes for 30 days does not outlive it.
    let a_year = crate::helpers::TokenTimes {
        expires_at: Some(crate::helpers::days_ago(-365)),
        ..Default::default()
    };
    app.set_token_times(pinned_id, a_year).await;

    // Halves that add up to every address are no list at all.
    let halves = serde_json::json!(["0.0.0.0/1", "128.0.0.0/1", "::/1", "8000::/1"]);
    let response = create(&app, &open, "everywhere", &["tag:read"], halves).await;
    let body: serde_json::Value = response.json().await.unwrap();
    let field = body["fields"]["allowed_addresses"]
        .as_str()
        .unwrap_or_default();
    assert!(field.contains("is wider than a /8"), "{field}");

    // A token rotating itself may narrow its list, never widen or drop it.

    for wider in [
        serde_json::json!([]),
        serde_json::json!(["127.0.0.0/16"]),
        serde_json::json!(["127.0.0.0/24", "10.0.0.0/8"]),
    ] {
        let body = serde_json::json!({"overlap": "7d", "allowed_addresses": wider});
        let response = app.api().post_as(SELF_ROTATE, &pinned, Some(body)).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{wider}"
        );
        let body: serde_json::Value = response.json().await.unwrap();
        let field = body["fields"]["allowed_addresses"]
            .as_str()
            .unwrap_or_default();
        assert!(field.contains("can only narrow"), "{field}");
    }
    assert_eq!(
        app.api().me(&pinned).await.status(),
        StatusCode::OK,
        "not rotated"
    );

    // What it makes is used from within its list: by default its list, else within it.
    let writer = &pinned;
    let child = create(
        &app,
        writer,
        "child",
        &["tag:read"],
        serde_json::Value::Null,
    )
    .await;
    assert_eq!(child.status(), StatusCode::CREATED);
    let child: serde_json::Value = child.json().await.unwrap();
    assert_eq!(
        child["token"]["allowed_addresses"],
        serde_json::json!(["127.0.0.0/24"])
    );
    let outside = create(
        &app,
        writer,
        "outside",
        &["tag:read"],
        serde_json::json!(["10.0.0.0/8"]),
    )
    .await;
    let body: serde_json::Value = outside.json().await.unwrap();
    let field = body["fields"]["allowed_addresses"]
        .as_str()
        .unwrap_or_default();
    assert!(field.contains("within 127.0.0.0/24"), "{field}");

    let body = serde_json::json!({"allowed_addresses": ["127.0.0.1"]});
    let narrower = app.api().post_as(SELF_ROTATE, &pinned, Some(body)).await;
    assert_eq!(narrower.status(), StatusCode::OK);
    let narrower: serde_json::Value = narrower.json().await.unwrap();
    assert_eq!(
        narrower["token"]["allowed_addresses"],
        serde_json::json!(["127.0.0.1"])
    );
}
