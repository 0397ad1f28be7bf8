//! Identities and names that deceive: a second account under an address that looks like (or
//! reaches the same mailbox as) an existing one, and names that read as something else.

use diesel::prelude::*;
use reqwest::StatusCode;
use tokendesk::db::schema::users;
use tokendesk::domain::Role;

use crate::backend_tests;
use crate::helpers::{location, stored_tokens, user_and_browser, Browser, TestApp};

backend_tests!(
    look_alike_addresses_are_the_existing_member_or_refused,
    a_member_signs_in_with_any_spelling_of_their_address,
    names_with_invisible_characters_are_refused,
);

const INVISIBLE: &str =
    "Remove invisible characters (such as zero-width spaces or direction marks)";
const PASSWORD: &str = "correct-horse-battery";

/// Submits the admin's Add member form; returns the status and the page.
async fn add_member(admin: &Browser, name: &str, email: &str) -> (StatusCode, String) {
    let response = admin
        .submit_form(
            "/admin/members/new",
            "/admin/members",
            &[
                ("display_name", name),
                ("email", email),
                ("role", "admin"),
                ("method", "password"),
                ("password", PASSWORD),
                ("password_confirm", PASSWORD),
            ],
        )
        .await;
    (response.status(), response.text().await.unwrap())
}

async fn stored_emails(app: &TestApp) -> Vec<String> {
    app.db
        .run(|conn| {
            users::table
                .select(users::email)
                .order(users::id)
                .load(conn)
        })
        .await
        .unwrap()
}

async fn look_alike_addresses_are_the_existing_member_or_refused(app: TestApp) {
    let admin = app.setup_admin().await;
    for email in ["kim@example.com", "noor@bu\u{308}cher.example"] {
        assert_eq!(
            add_member(&admin, "Kim", email).await.0,
            StatusCode::SEE_OTHER
        );
    }
    let before = stored_emails(&app).await;
    assert_eq!(
        before[1..],
        ["kim@example.com", "noor@xn--bcher-kva.example"],
        "stored in one spelling: the domain in its ASCII form"
    );

    const TAKEN: &str = "A member with this email already exists.";
    for (what, email, refusal) in [
        ("fullwidth letter", "kim@ｅxample.com", TAKEN),
        ("fullwidth capitals", "KIM@ＥＸＡＭＰＬＥ.COM", TAKEN),
        ("ideographic full stop", "kim@example。com", TAKEN),
        ("fullwidth full stop", "kim@example．com", TAKEN),
        ("NFC of an NFD domain", "noor@b\u{fc}cher.example", TAKEN),
        (
            "punycode of a Unicode domain",
            "noor@xn--bcher-kva.example",
            TAKEN,
        ),
        ("upper-case punycode", "NOOR@XN--BCHER-KVA.EXAMPLE", TAKEN),
        (
            "soft hyphen in the domain",
            "kim@exam\u{ad}ple.com",
            INVISIBLE,
        ),
        (
            "zero-width space in the domain",
            "kim@example\u{200b}.com",
            INVISIBLE,
        ),
        (
            "zero-width space before the @",
            "kim\u{200b}@example.com",
            INVISIBLE,
        ),
        (
            "right-to-left override",
            "kim@\u{202e}moc.elpmaxe",
            INVISIBLE,
        ),
    ] {
        let (status, html) = add_member(&admin, "Kim", email).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{what}");
        assert!(html.contains(refusal), "{what}: {html}");
    }
    assert_eq!(stored_emails(&app).await, before, "no second account");
}

async fn a_member_signs_in_with_any_spelling_of_their_address(app: TestApp) {
    let admin = app.setup_admin().await;
    let nfd = "noor@bu\u{308}cher.example";
    let nfc = "sam@b\u{fc}cher.example";
    for email in [nfd, nfc] {
        assert_eq!(
            add_member(&admin, "Kim", email).await.0,
            StatusCode::SEE_OTHER
        );
    }
    for (created_as, typed) in [
        (nfd, "noor@b\u{fc}cher.example"),
        (nfd, "noor@xn--bcher-kva.example"),
        (nfd, "Noor@BU\u{308}CHER.example"),
        (nfc, "sam@bu\u{308}cher.example"),
        (nfc, "sam@ｂüｃｈｅｒ。example"),
    ] {
        let response = app.browser().sign_in(typed, PASSWORD).await;
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "created as {created_as:?}, signing in as {typed:?}"
        );
        assert_eq!(location(&response), "/developer/access-tokens");
    }
}

async fn names_with_invisible_characters_are_refused(app: TestApp) {
    let admin = app.setup_admin().await;
    let (grace, browser) = user_and_browser(&app, "grace@example.com", Role::User).await;
    let deceptive = [
        ("right-to-left override", "Mallory \u{202e}nimda"),
        ("zero-width space", "de\u{200b}ploy"),
    ];
    for (what, name) in deceptive {
        let response = browser
            .submit_new_token(&[("name", name), ("expires_in", "30"), ("scopes", "tag:read")])
            .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{what}"
        );
        let html = response.text().await.unwrap();
        assert!(html.contains(INVISIBLE), "{what}: {html}");
    }

    let (_, manager) = app
        .token_for(grace.id, "manager", &["personalAccessToken:write"])
        .await;
    for (what, name) in deceptive {
        let response = app
            .api()
            .client
            .post(format!("{}/api/v1/personal-access-tokens", app.address))
            .bearer_auth(&manager)
            .json(&serde_json::json!({
                "name": name, "expires_in": "30", "scopes": ["tag:read"],
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{what}"
        );
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"], "validation_failed", "{what}");
        let field = body["fields"]["name"].as_str().unwrap_or_default();
        assert!(field.starts_with(INVISIBLE), "{what}: {body}");
    }
    let names: Vec<_> = stored_tokens(&app, grace.id)
        .await
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["manager"], "nothing else was stored");

    // A member's display name is a name too.
    let (status, html) = add_member(&admin, "Mallory \u{202e}nimda", "mallory@example.com").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains(INVISIBLE), "{html}");
    assert!(!stored_emails(&app)
        .await
        .contains(&"mallory@example.com".to_owned()));
}
