use chrono::{Duration, Utc};
use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use tokendesk::domain::Role;

use crate::backend_tests;
use crate::helpers::{
    csrf_token, location, revealed_secret, stored_tokens, user_and_browser, TestApp,
};

backend_tests!(
    empty_state_offers_a_new_token,
    creates_tokens_with_each_kind_of_expiry,
    the_form_reports_every_error,
    the_form_keeps_the_input_it_refuses,
    names_are_unique_among_active_tokens,
    the_token_is_revealed_once_and_stored_only_as_a_digest,
    the_reveal_pages_path_example_runs_against_tokendesk,
    a_head_request_does_not_spend_the_one_time_reveal,
    refreshing_after_create_never_makes_a_second_token,
    fresh_tokens_show_never_used_and_their_details,
    revoking_needs_the_exact_word_delete,
    regenerating_replaces_the_secret,
    another_persons_token_is_not_found,
    the_server_refuses_scopes_beyond_the_role,
    the_list_is_paged_past_fifty,
);

async fn empty_state_offers_a_new_token(app: TestApp) {
    let admin = app.setup_admin().await;
    let html = admin.page("/developer/access-tokens").await;
    assert!(html.contains("No access tokens yet"));
    assert!(html.contains("href=\"/developer/access-tokens/new\""));
    let html = admin.page("/developer/access-tokens?tab=revoked").await;
    assert!(html.contains("No revoked tokens"));
}

async fn creates_tokens_with_each_kind_of_expiry(app: TestApp) {
    let (user, browser) = user_and_browser(&app, "grace@example.com", Role::User).await;
    let before = Utc::now().naive_utc();
    let presets = [
        ("d7", "7"),
        ("d30", "30"),
        ("d60", "60"),
        ("d90", "90"),
        ("y1", "365"),
        ("forever", "never"),
    ];
    for (name, expires_in) in presets {
        browser
            .create_token(name, expires_in, &["license:read"])
            .await;
    }
    let custom = (Utc::now() + Duration::days(45)).date_naive();
    let custom_text = custom.format("%Y-%m-%d").to_string();
    let response = browser
        .submit_new_token(&[
            ("name", "custom"),
            ("expires_in", "custom"),
            ("expires_on", &custom_text),
            ("scopes", "tag:read"),
        ])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    let tokens = stored_tokens(&app, user.id).await;
    assert_eq!(tokens.len(), 7);
    let expires_at = |name: &str| tokens.iter().find(|t| t.name == name).unwrap().expires_at;
    for (name, days) in [
        ("d7", 7),
        ("d30", 30),
        ("d60", 60),
        ("d90", 90),
        ("y1", 365),
    ] {
        let left = (expires_at(name).unwrap() - before).num_hours() as f64 / 24.0;
        assert!((left - days as f64).abs() < 0.1, "{name}: {left}");
    }
    assert_eq!(expires_at("forever"), None);
    assert_eq!(expires_at("custom").unwrap().date(), custom);

    let html = browser.page("/developer/access-tokens").await;
    for name in ["d7", "d30", "forever", "custom"] {
        assert!(html.contains(name), "{name} listed");
    }
    assert!(
        html.contains("Expires in 7 days"),
        "a 7-day token made a moment ago"
    );
    let actions = app.audit_actions().await;
    let created = actions.iter().filter(|a| *a == "token.created").count();
    assert_eq!(created, 7);
}

async fn the_form_reports_every_error(app: TestApp) {
    let admin = app.setup_admin().await;
    let response = admin.submit_new_token(&[]).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(html.contains("Enter a name."), "{html}");
    assert!(html.contains("Choose when the token expires."));
    assert!(html.contains("Choose at least one scope."));

    let long = "x".repeat(101);
    let custom = ("expires_in", "custom");
    for (fields, message) in [
        (
            &[("name", long.as_str()), ("expires_in", "30")][..],
            "Use at most 100 characters.",
        ),
        (
            &[("name", "ci"), custom, ("expires_on", "2001-01-01")][..],
            "Choose a date in the future.",
        ),
        (
            &[("name", "ci"), custom, ("expires_on", "tomorrow")][..],
            "Enter the date as YYYY-MM-DD.",
        ),
        (
            &[("name", "ci"), custom][..],
            "Choose the date the token expires.",
        ),
        (
            &[("name", "ci"), ("expires_in", "12")][..],
            "Choose when the token expires.",
        ),
        (
            &[
                ("name", "ci"),
                ("expires_in", "30"),
                ("scopes", "root:write"),
            ][..],
            "Unknown scope: root:write.",
        ),
    ] {
        let response = admin.submit_new_token(fields).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{message}"
        );
        assert!(
            response.text().await.unwrap().contains(message),
            "{message}"
        );
    }
    assert!(stored_tokens(&app, 1).await.is_empty(), "nothing stored");
}

async fn the_form_keeps_the_input_it_refuses(app: TestApp) {
    let admin = app.setup_admin().await;
    let response = admin
        .submit_new_token(&[
            ("name", "deploy <bot>"),
            ("expires_in", "90"),
            ("scopes", "tag:write"),
            ("scopes", "nope:read"),
        ])
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("value=\"deploy &#60;bot&#62;\"")
            || html.contains("value=\"deploy &lt;bot&gt;\""),
        "name kept, escaped"
    );
    assert!(html.contains("value=\"90\" selected"), "expiry kept");
    assert!(
        html.contains("value=\"tag:write\" id=\"scope-tag-write\" checked"),
        "scope kept"
    );
    assert!(stored_tokens(&app, 1).await.is_empty(), "nothing stored");
}

async fn names_are_unique_among_active_tokens(app: TestApp) {
    let (user, browser) = user_and_browser(&app, "grace@example.com", Role::User).await;
    browser.create_token("ci", "30", &["tag:read"]).await;
    let response = browser
        .submit_new_token(&[
            ("name", " ci "),
            ("expires_in", "30"),
            ("scopes", "tag:read"),
        ])
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("You already have an active token named “ci”"));

    // Once revoked, the name is free again.
    let id = stored_tokens(&app, user.id).await[0].id;
    let path = format!("/developer/access-tokens/{id}/revoke");
    browser
        .submit_form(&path, &path, &[("confirm", "DELETE")])
        .await;
    browser.create_token("ci", "30", &["tag:read"]).await;
    assert_eq!(stored_tokens(&app, user.id).await.len(), 2);
}

async fn the_token_is_revealed_once_and_stored_only_as_a_digest(app: TestApp) {
    let (user, browser) = user_and_browser(&app, "grace@example.com", Role::User).await;
    let response = browser
        .submit_new_token(&[
            ("name", "ci"),
            ("expires_in", "30"),
            ("scopes", "license:read"),
        ])
        .await;
    assert_eq!(location(&response), "/developer/access-tokens/reveal");
    assert!(
        revealed_secret(&response.text().await.unwrap()).is_none(),
        "never in the redirect"
    );

    let response = browser.get("/developer/access-tokens/reveal").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let html = response.text().await.unwrap();
    let secret = revealed_secret(&html).unwrap();
    assert!(html.contains("It will not be shown again"));
    for usage in [
        format!("Authorization: Bearer {secret}"),
        format!("x-auth-token: {secret}"),
        format!("?token={secret}"),
        format!("/{secret}/api/v0/"),
        format!("/ext/bc/C/rpc/{secret}"),
    ] {
        assert!(html.contains(&usage), "usage example {usage}");
    }

    // Reloading or reopening the URL shows nothing, and explains why.
    let response = browser.get("/developer/access-tokens/reveal").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/developer/access-tokens");
    let html = browser.page("/developer/access-tokens").await;
    assert!(html.contains("A token is shown only once"));
    assert!(!html.contains(&secret));

    let stored = &stored_tokens(&app, user.id).await[0];
    assert_eq!(
        stored.digest,
        hex::encode(Sha256::digest(secret.as_bytes()))
    );
    assert_ne!(stored.digest, secret);
    assert!(!stored.hint.contains(&secret[4..20]) && secret.starts_with(&stored.hint[..8]));
    assert!(html.contains(&stored.hint), "the list shows the hint");
}

/// The path-segment example is one a person can paste: it answers. The gateway forms are
/// shown as the services' own paths.
async fn the_reveal_pages_path_example_runs_against_tokendesk(app: TestApp) {
    let (_, browser) = user_and_browser(&app, "grace@example.com", Role::User).await;
    browser.create_token_unseen("ci").await;
    let html = browser.page("/developer/access-tokens/reveal").await;
    let secret = revealed_secret(&html).unwrap();
    let example = format!("curl {}/{secret}/api/v1/me", app.address);
    assert!(html.contains(&example), "{example}");
    let url = example.trim_start_matches("curl ");
    let response = app.api().client.get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{url}");
    assert!(html.contains("Services behind the company's gateway"));
}

/// HEAD shows nothing (no body), so it must not use up the one showing.
async fn a_head_request_does_not_spend_the_one_time_reveal(app: TestApp) {
    let (_, browser) = user_and_browser(&app, "grace@example.com", Role::User).await;
    browser.create_token_unseen("ci").await;
    let head = browser
        .client
        .head(browser.url("/developer/access-tokens/reveal"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()["cache-control"], "no-store");
    assert!(head.bytes().await.unwrap().is_empty());
    let html = browser.page("/developer/access-tokens/reveal").await;
    assert!(
        revealed_secret(&html).is_some(),
        "still shown once after the HEAD"
    );
    let again = browser.get("/developer/access-tokens/reveal").await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER, "and only once");
}

async fn refreshing_after_create_never_makes_a_second_token(app: TestApp) {
    let (user, browser) = user_and_browser(&app, "grace@example.com", Role::User).await;
    let html = browser.page("/developer/access-tokens/new").await;
    let form = [
        ("csrf_token", csrf_token(&html)),
        ("name", "ci".to_owned()),
        ("expires_in", "30".to_owned()),
        ("scopes", "license:read".to_owned()),
    ];
    let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let created = browser.post("/developer/access-tokens", &fields).await;
    assert_eq!(location(&created), "/developer/access-tokens/reveal");
    // Refreshing the reveal page, and going back and sending the form again as a browser's
    // "resend" does: the same body, the same CSRF token.
    for _ in 0..2 {
        browser.get("/developer/access-tokens/reveal").await;
        let resent = browser.post("/developer/access-tokens", &fields).await;
        assert_eq!(resent.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(resent
            .text()
            .await
            .unwrap()
            .contains("You already have an active token named “ci”"));
    }
    assert_eq!(stored_tokens(&app, user.id).await.len(), 1);
}

async fn fresh_tokens_show_never_used_and_their_details(app: TestApp) {
    let admin = app.setup_admin().await;
    let scopes = [
        "account:read",
        "license:read",
        "license:write",
        "tag:read",
        "webhook:write",
    ];
    admin.create_token("deploys", "30", &scopes).await;
    let html = admin.page("/developer/access-tokens").await;
    assert!(html.contains("deploys"));
    let last_used = crate::helpers::cell(&html, "last-used");
    assert!(
        last_used.contains("Never"),
        "Last used says Never: {last_used}"
    );
    assert!(
        html.contains("<summary>5 scopes</summary>"),
        "the scopes fold into a count"
    );
    for scope in scopes {
        assert!(html.contains(scope), "{scope}");
    }
}

async fn revoking_needs_the_exact_word_delete(app: TestApp) {
    let (user, browser) = user_and_browser(&app, "grace@example.com", Role::User).await;
    browser.create_token("ci", "30", &["license:read"]).await;
    let token = &stored_tokens(&app, user.id).await[0];
    let path = format!("/developer/access-tokens/{}/revoke", token.id);
    let html = browser.page(&path).await;
    assert!(html.contains("ci") && html.contains(&token.hint) && html.contains("Never"));

    for wrong in ["", "delete", "Delete", "DELETE ", "yes"] {
        let response = browser
            .submit_form(&path, &path, &[("confirm", wrong)])
            .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{wrong:?}"
        );
        assert!(response
            .text()
            .await
            .unwrap()
            .contains("Type DELETE, in capital letters"));
        assert!(
            stored_tokens(&app, user.id).await[0].revoked_at.is_none(),
            "{wrong:?} revoked it"
        );
    }
    let response = browser
        .submit_form(&path, &path, &[("confirm", "DELETE")])
        .await;
    assert_eq!(location(&response), "/developer/access-tokens");
    let stored = &stored_tokens(&app, user.id).await[0];
    assert!(stored.revoked_at.is_some());
    assert_eq!(stored.revoked_by, Some(user.id));
    assert!(browser
        .page("/developer/access-tokens")
        .await
        .contains("“ci” was revoked"));
    let revoked_tab = browser.page("/developer/access-tokens?tab=revoked").await;
    assert!(revoked_tab.contains(&stored.hint));
    assert!(
        !revoked_tab.contains("/regenerate"),
        "revoked tokens offer no actions"
    );
    assert!(app
        .audit_actions()
        .await
        .contains(&"token.revoked".to_owned()));

    // The confirmation page of a revoked token just says so.
    let response = browser.get(&path).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

async fn regenerating_replaces_the_secret(app: TestApp) {
    let (user, browser) = user_and_browser(&app, "grace@example.com", Role::User).await;
    let old_secret = browser
        .create_token("ci", "7", &["license:read", "tag:read"])
        .await;
    let before = stored_tokens(&app, user.id).await.remove(0);
    let path = format!("/developer/access-tokens/{}/regenerate", before.id);
    let html = browser.page(&path).await;
    assert!(html.contains("stops working as soon as you confirm"));

    let response = browser
        .submit_form(&path, &path, &[("expires_in", "never")])
        .await;
    assert_eq!(location(&response), "/developer/access-tokens/reveal");
    let html = browser.page("/developer/access-tokens/reveal").await;
    assert!(html.contains("Token regenerated"));
    let new_secret = revealed_secret(&html).unwrap();
    assert_ne!(new_secret, old_secret);

    let after = stored_tokens(&app, user.id).await.remove(0);
    assert_eq!(
        (after.id, &after.name, &after.scopes),
        (before.id, &before.name, &before.scopes)
    );
    assert_eq!(
        after.digest,
        hex::encode(Sha256::digest(new_secret.as_bytes()))
    );
    assert_ne!(
        after.digest, before.digest,
        "the old secret's digest is gone"
    );
    assert_eq!(after.expires_at, None, "the newly chosen expiry");
    assert!(app
        .audit_actions()
        .await
        .contains(&"token.regenerated".to_owned()));

    let response = browser
        .submit_form(
            &path,
            &path,
            &[("expires_in", "custom"), ("expires_on", "1999-01-01")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("Choose a date in the future."));
}

async fn another_persons_token_is_not_found(app: TestApp) {
    let (owner, owner_browser) = user_and_browser(&app, "grace@example.com", Role::User).await;
    owner_browser
        .create_token("mine", "30", &["license:read"])
        .await;
    let id = stored_tokens(&app, owner.id).await[0].id;
    let (_, other) = user_and_browser(&app, "mallory@example.com", Role::Admin).await;

    for action in ["revoke", "regenerate"] {
        let path = format!("/developer/access-tokens/{id}/{action}");
        assert_eq!(
            other.get(&path).await.status(),
            StatusCode::NOT_FOUND,
            "GET {action}"
        );
        let fields = [("confirm", "DELETE"), ("expires_in", "30")];
        let response = other
            .submit_form("/developer/access-tokens", &path, &fields)
            .await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "POST {action}");
    }
    for bad in ["abc", "99999", "-1", "1.5"] {
        let path = format!("/developer/access-tokens/{bad}/revoke");
        assert_eq!(
            other.get(&path).await.status(),
            StatusCode::NOT_FOUND,
            "{bad}"
        );
    }
    let stored = &stored_tokens(&app, owner.id).await[0];
    assert!(stored.revoked_at.is_none());
    assert!(!other
        .page("/developer/access-tokens")
        .await
        .contains("mine"));
}

async fn the_server_refuses_scopes_beyond_the_role(app: TestApp) {
    let (user, browser) = user_and_browser(&app, "grace@example.com", Role::User).await;
    let html = browser.page("/developer/access-tokens/new").await;
    assert!(
        html.contains("value=\"license:write\" id=\"scope-license-write\" disabled"),
        "offered disabled"
    );
    assert!(html.contains("value=\"personalAccessToken:write\" id=\"scope-personalAccessToken-write\" aria-describedby"), "allowed for users");

    // A crafted POST asking for a write scope anyway.
    let response = browser
        .submit_new_token(&[
            ("name", "sneaky"),
            ("expires_in", "30"),
            ("scopes", "license:read"),
            ("scopes", "license:write"),
        ])
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("Your role (user) does not allow: license:write."));
    assert!(stored_tokens(&app, user.id).await.is_empty());
}

async fn the_list_is_paged_past_fifty(app: TestApp) {
    let (user, browser) = user_and_browser(&app, "grace@example.com", Role::User).await;
    let request = tokendesk::domain::TokenRequest {
        name: String::new(),
        expiry: tokendesk::domain::Expiry::Never,
        scopes: tokendesk::domain::ScopeSet::parse(["tag:read"]).unwrap(),
        allowed_addresses: None,
    };
    app.db
        .write(move |conn| {
            for n in 0..55 {
                let request = tokendesk::domain::TokenRequest {
                    name: format!("token-{n:02}"),
                    ..request.clone()
                };
                tokendesk::tokens::store::create(
                    conn,
                    tokendesk::tokens::TokenOwner::Person(user.id),
                    user.id,
                    &request,
                )
                .unwrap();
            }
            Ok(())
        })
        .await
        .unwrap();
    let html = browser.page("/developer/access-tokens").await;
    assert!(html.contains("Showing 1–50 of 55"));
    assert_eq!(html.matches("/revoke\"").count(), 50);
    assert!(html.contains("href=\"/developer/access-tokens?page=2\""));
    let html = browser.page("/developer/access-tokens?page=2").await;
    assert!(html.contains("Showing 51–55 of 55"));
    assert_eq!(html.matches("/revoke\"").count(), 5);
    assert!(html.contains("token-00"), "oldest last");
    let html = browser.page("/developer/access-tokens?page=99").await;
    assert!(
        html.contains("Page 2 of 2"),
        "past the end clamps to the last page"
    );
}
