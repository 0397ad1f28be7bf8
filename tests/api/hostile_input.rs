//! Hostile input through the real server: oversize, empty, control characters, invalid UTF-8,
//! markup, SQL metacharacters, unknown scopes, duplicate fields, impossible dates, and token
//! guesses. Every answer is a clear 4xx or a success, never a 5xx, and nothing is stored
//! half-way: what is refused leaves no trace, what is accepted is stored as typed and shown
//! escaped.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Response, StatusCode};
use tokendesk::domain::Role;

use crate::backend_tests;
use crate::helpers::{
    api_error, csrf_token, stored_tokens, user_and_browser, Browser, Presented, TestApp, EVERY_WAY,
};

backend_tests!(
    the_token_form_refuses_hostile_fields_and_stores_nothing,
    the_token_form_refuses_bodies_it_cannot_read,
    the_token_form_keeps_odd_names_as_typed_and_shows_them_escaped,
    the_api_refuses_hostile_bodies_with_json_errors,
    the_api_keeps_odd_names_as_typed,
    a_query_that_is_not_text_gets_the_apis_json_error,
    the_member_form_refuses_hostile_fields_and_escapes_what_it_keeps,
    role_and_policy_forms_change_nothing_on_hostile_values,
    admin_filters_and_ids_refuse_hostile_input,
    every_form_route_limits_its_body,
    over_http_only_the_real_token_authenticates,
);

const MEGABYTE: usize = 1024 * 1024;

/// Values no name may have, with the reason.
fn refused_names() -> Vec<(&'static str, String)> {
    vec![
        ("empty", String::new()),
        ("whitespace only", " \t  ".into()),
        ("bell", "ring\u{7}".into()),
        ("newline", "two\nlines".into()),
        ("101 characters", "x".repeat(101)),
    ]
}

/// Values a name may have, however they look.
const KEPT_NAMES: &[&str] = &[
    "<script>alert(1)</script>",
    "x'); DROP TABLE users; --",
    "\" OR 1=1 -- & <b>bold</b>",
    "日本語のトークン ✓",
    "%00%27 ${jndi:ldap://x}",
];

/// The New token form's fields: a name, an expiry (with its date, if any) and a scope (if any).
fn token_form(
    name: &str,
    expires_in: &str,
    expires_on: Option<&str>,
    scope: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("name", name.to_owned()),
        ("expires_in", expires_in.to_owned()),
    ];
    fields.extend(expires_on.map(|date| ("expires_on", date.to_owned())));
    fields.extend(scope.map(|scope| ("scopes", scope.to_owned())));
    fields
}

/// Submissions of the New token form each refused with a field error, as (what, fields).
fn refused_token_forms() -> Vec<(String, Vec<(&'static str, String)>)> {
    let mut cases: Vec<_> = refused_names()
        .into_iter()
        .map(|(what, name)| {
            let fields = token_form(&name, "30", None, Some("tag:read"));
            (format!("name {what}"), fields)
        })
        .collect();
    for (what, expires_in, scope) in [
        ("unknown scope", "30", Some("nope:read")),
        ("no scope", "30", None),
        ("admin-only scope", "30", Some("license:write")),
        ("unknown expiry", "45", Some("tag:read")),
    ] {
        cases.push((what.into(), token_form("a", expires_in, None, scope)));
    }
    let today = chrono::Utc::now().date_naive().to_string();
    for (what, date) in [
        ("past date", "2000-01-01"),
        ("today", today.as_str()),
        ("far future", "9999-12-31"),
        ("impossible date", "2026-13-45"),
        ("not a date", "next tuesday"),
        ("huge year", "+275760-09-13"),
    ] {
        let fields = token_form("a", "custom", Some(date), Some("tag:read"));
        cases.push((what.into(), fields));
    }
    cases
}

/// Posts `body` to the New token form's action as it stands, with the form's CSRF token first.
async fn post_raw_token_form(browser: &Browser, body: &str) -> Response {
    let csrf = csrf_token(&browser.page("/developer/access-tokens/new").await);
    browser
        .client
        .post(browser.url("/developer/access-tokens"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf_token={csrf}&{body}"))
        .send()
        .await
        .unwrap()
}

// One test over a table: each case is one refused submission, and together they show that
// nothing refused is stored.
async fn the_token_form_refuses_hostile_fields_and_stores_nothing(app: TestApp) {
    let (grace, browser) = user_and_browser(&app, "grace@example.com", Role::User).await;
    let cases = refused_token_forms();
    for (what, fields) in &cases {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let response = browser.submit_new_token(&fields).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{what}"
        );
        let html = response.text().await.unwrap();
        assert!(html.contains("field-error"), "{what}: the field says why");
    }
    assert_eq!(
        stored_tokens(&app, grace.id).await.len(),
        0,
        "nothing refused was stored"
    );
    println!(
        "hostile input (token form): {} hostile submissions, none a 5xx, nothing half-stored",
        cases.len()
    );
}

async fn the_token_form_refuses_bodies_it_cannot_read(app: TestApp) {
    let (grace, browser) = user_and_browser(&app, "grace@example.com", Role::User).await;
    // Two values for a one-value field: refused as a whole, not half-read.
    let response = browser
        .submit_new_token(&[
            ("name", "first"),
            ("name", "second"),
            ("expires_in", "30"),
            ("scopes", "tag:read"),
        ])
        .await;
    let status = response.status();
    assert!(status.is_client_error(), "duplicate name: {status}");

    // Bytes that are not UTF-8 are refused, not stored as replacement characters.
    let body = "name=%FF%FEbad&expires_in=30&scopes=tag%3Aread";
    let response = post_raw_token_form(&browser, body).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "invalid UTF-8");
    let html = response.text().await.unwrap();
    assert!(html.contains("not text (invalid UTF-8, or NUL)"));

    // NUL is not text either (and PostgreSQL could not store it).
    let fields = [
        ("name", "a\u{0}b"),
        ("expires_in", "30"),
        ("scopes", "tag:read"),
    ];
    let response = browser.submit_new_token(&fields).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "NUL");

    // A megabyte name never reaches the handler.
    let big = "x".repeat(MEGABYTE);
    let fields = [
        ("name", big.as_str()),
        ("expires_in", "30"),
        ("scopes", "tag:read"),
    ];
    let response = browser.submit_new_token(&fields).await;
    assert_eq!(
        response.status(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "1 MB name"
    );
    assert_eq!(
        stored_tokens(&app, grace.id).await.len(),
        0,
        "nothing refused was stored"
    );
}

async fn the_token_form_keeps_odd_names_as_typed_and_shows_them_escaped(app: TestApp) {
    let (grace, browser) = user_and_browser(&app, "grace@example.com", Role::User).await;
    for name in KEPT_NAMES {
        let response = browser
            .submit_new_token(&[
                ("name", name),
                ("expires_in", "30"),
                ("scopes", "tag:read"),
                ("scopes", "tag:read"),
            ])
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{name}");
        browser.page("/developer/access-tokens/reveal").await;
    }
    let stored = stored_tokens(&app, grace.id).await;
    assert_eq!(stored.len(), KEPT_NAMES.len());
    for name in KEPT_NAMES {
        let token = stored
            .iter()
            .find(|t| t.name == *name)
            .expect("stored as typed");
        assert_eq!(token.scopes, "tag:read", "a repeated scope counts once");
    }
    let html = browser.page("/developer/access-tokens").await;
    assert!(!html.contains("<script>alert(1)"), "markup is escaped");
    assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"));
    assert!(!html.contains("<b>bold</b>"));
    assert!(html.contains("日本語のトークン ✓"));
}

/// Grace with a token that may manage her tokens through the API; returns her id and its secret.
async fn grace_with_a_manager_token(app: &TestApp) -> (i64, String) {
    let grace = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let scopes = ["personalAccessToken:write", "tag:read"];
    let (_, token) = app.token_for(grace.id, "manager", &scopes).await;
    (grace.id, token)
}

/// `POST /api/v1/personal-access-tokens` with this body, as it stands.
async fn post_token_body(
    app: &TestApp,
    token: &str,
    body: Vec<u8>,
    content_type: &str,
) -> Response {
    reqwest::Client::new()
        .post(format!("{}/api/v1/personal-access-tokens", app.address))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// A JSON body for the API's token creation.
fn token_json(name: &str, expires_in: &str, expires_on: Option<&str>, scopes: &[&str]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "name": name, "expires_in": expires_in, "expires_on": expires_on, "scopes": scopes,
    }))
    .unwrap()
}

/// A body the API must refuse, and the error it must refuse it with.
struct HostileBody {
    what: String,
    body: Vec<u8>,
    content_type: &'static str,
    status: StatusCode,
    code: &'static str,
}

/// Every body the API must refuse: a data table, long as the list of cases is.
fn hostile_api_bodies() -> Vec<HostileBody> {
    let json = "application/json";
    let invalid = |what: &str, body: Vec<u8>| HostileBody {
        what: what.into(),
        body,
        content_type: json,
        status: StatusCode::UNPROCESSABLE_ENTITY,
        code: "validation_failed",
    };
    let unreadable = |what: &str, body: &[u8], content_type| HostileBody {
        what: what.into(),
        body: body.to_vec(),
        content_type,
        status: StatusCode::BAD_REQUEST,
        code: "invalid_request",
    };
    let mut cases: Vec<_> = refused_names()
        .into_iter()
        .map(|(what, name)| {
            invalid(
                &format!("name {what}"),
                token_json(&name, "30", None, &["tag:read"]),
            )
        })
        .collect();
    for (what, expires_in, expires_on, scopes) in [
        ("unknown scope", "30", None, &["nope:read"][..]),
        ("no scope", "30", None, &[][..]),
        ("past date", "custom", Some("2000-01-01"), &["tag:read"][..]),
        (
            "far future",
            "custom",
            Some("9999-12-31"),
            &["tag:read"][..],
        ),
        (
            "malformed date",
            "custom",
            Some("31/12/2027"),
            &["tag:read"][..],
        ),
        ("unknown expiry", "forever", None, &["tag:read"][..]),
    ] {
        cases.push(invalid(
            what,
            token_json("a", expires_in, expires_on, scopes),
        ));
    }
    for (what, body) in [
        ("truncated JSON", &b"{\"name\": \"a\""[..]),
        (
            "a number for the name",
            &br#"{"name": 1, "expires_in": "30", "scopes": ["tag:read"]}"#[..],
        ),
        (
            "a string for the scopes",
            &br#"{"name": "a", "expires_in": "30", "scopes": "tag:read"}"#[..],
        ),
        (
            "duplicate keys",
            &br#"{"name": "a", "name": "b", "expires_in": "30", "scopes": ["tag:read"]}"#[..],
        ),
        (
            "invalid UTF-8",
            &b"{\"name\": \"\xff\xfe\", \"expires_in\": \"30\", \"scopes\": [\"tag:read\"]}"[..],
        ),
        ("empty body", &b""[..]),
        ("a bare string", &b"\"name\""[..]),
    ] {
        cases.push(unreadable(what, body, json));
    }
    cases.push(unreadable(
        "form-encoded body",
        b"name=a&expires_in=30&scopes=tag:read",
        "application/x-www-form-urlencoded",
    ));
    let mut big = token_json("a", "30", None, &["tag:read"]);
    big.splice(10..10, vec![b' '; MEGABYTE]);
    cases.push(HostileBody {
        what: "1 MB body".into(),
        body: big,
        content_type: json,
        status: StatusCode::PAYLOAD_TOO_LARGE,
        code: "payload_too_large",
    });
    cases
}

// One test over a table: each case is one refused body, and together they show that nothing
// refused is stored.
async fn the_api_refuses_hostile_bodies_with_json_errors(app: TestApp) {
    let (grace_id, token) = grace_with_a_manager_token(&app).await;
    let cases = hostile_api_bodies();
    for case in &cases {
        let response = post_token_body(&app, &token, case.body.clone(), case.content_type).await;
        let (status, code, message) = api_error(response).await;
        assert_eq!(
            (status, code.as_str()),
            (case.status, case.code),
            "{}: {message}",
            case.what
        );
        assert!(!message.is_empty(), "{}", case.what);
    }
    assert_eq!(
        stored_tokens(&app, grace_id).await.len(),
        1,
        "only the manager token exists"
    );
    println!(
        "hostile input (API): {} hostile bodies answered with the right JSON error",
        cases.len()
    );
}

async fn the_api_keeps_odd_names_as_typed(app: TestApp) {
    let (grace_id, token) = grace_with_a_manager_token(&app).await;
    for name in KEPT_NAMES {
        let body = token_json(name, "30", None, &["tag:read"]);
        let response = post_token_body(&app, &token, body, "application/json").await;
        assert_eq!(response.status(), StatusCode::CREATED, "{name}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["token"]["name"], *name);
    }
    assert_eq!(
        stored_tokens(&app, grace_id).await.len(),
        1 + KEPT_NAMES.len()
    );
}

async fn a_query_that_is_not_text_gets_the_apis_json_error(app: TestApp) {
    let (_, token) = grace_with_a_manager_token(&app).await;
    // On every form of API address.
    for path in [
        "/api/v1/personal-access-tokens?page=%00".to_owned(),
        "/api/v1/me?x=%FF%FE".to_owned(),
        format!("/{token}/api/v1/me?x=%00"),
        "/auth/verify?x=%C3".to_owned(),
    ] {
        let response = reqwest::Client::new()
            .get(format!("{}{path}", app.address))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let (status, code, message) = api_error(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(code, "invalid_request", "{path}");
        assert!(message.contains("not text"), "{path}: {message}");
    }
}

/// Adds a member with a password through the Members form; the answer's status.
async fn add_member(admin: &Browser, email: &str, name: &str, role: &str) -> StatusCode {
    admin
        .submit_form(
            "/admin/members/new",
            "/admin/members",
            &[
                ("email", email),
                ("display_name", name),
                ("role", role),
                ("method", "password"),
                ("password", "member-password-1"),
                ("password_confirm", "member-password-1"),
            ],
        )
        .await
        .status()
}

async fn the_member_form_refuses_hostile_fields_and_escapes_what_it_keeps(app: TestApp) {
    let admin = app.setup_admin().await;
    app.create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    // Bad emails, names and roles are field errors.
    for (what, email, name, role) in [
        ("no at sign", "grace.example.com", "G", "user"),
        ("empty email", "", "G", "user"),
        ("SQL in the email", "x' OR '1'='1@example.com", "G", "user"),
        ("control in the name", "n1@example.com", "a\u{7}b", "user"),
        ("empty name", "n2@example.com", "  ", "user"),
        ("taken email", "grace@example.com", "G", "user"),
        (
            "unknown role",
            "mallory@example.com",
            "<img src=x onerror=alert(1)>",
            "superuser",
        ),
    ] {
        let status = add_member(&admin, email, name, role).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{what}");
    }
    // Markup in a name is kept, and shown escaped.
    let status = add_member(
        &admin,
        "mallory@example.com",
        "<img src=x onerror=alert(1)>",
        "user",
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "markup in a name is allowed");
    let html = admin.page("/admin/members").await;
    assert!(!html.contains("<img src=x"), "and shown escaped");
    assert!(html.contains("&#60;img src=x onerror=alert(1)&#62;"));
}

async fn role_and_policy_forms_change_nothing_on_hostile_values(app: TestApp) {
    let admin = app.setup_admin().await;
    let grace = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    // Role changes to something that is not a role change nothing.
    let path = format!("/admin/members/{}/role", grace.id);
    for role in ["superuser", "", "ADMIN'--"] {
        let response = admin
            .submit_form("/admin/members", &path, &[("role", role)])
            .await;
        let status = response.status();
        assert!(
            status.is_client_error() || status == StatusCode::SEE_OTHER,
            "role {role}: {status}"
        );
    }
    let grace_now = app
        .db
        .run(move |c| tokendesk::users::find(c, grace.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(grace_now.role(), Role::User);

    // The lifetime policy takes whole days only.
    for days in [
        "-1",
        "0",
        "abc",
        "1e3",
        "99999999999999999999",
        "<script>",
        "3650000",
    ] {
        let fields = [("max_lifetime_days", days), ("default_expiry", "30")];
        let response = admin
            .submit_form("/admin/settings", "/admin/settings", &fields)
            .await;
        let status = response.status();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "max {days}");
    }
    let policy = app.db.run(tokendesk::policy::load).await.unwrap();
    assert_eq!(policy.max_lifetime_days, None, "the policy is unchanged");
}

/// Every filter and paging key of `page`, each with every hostile value: a page (perhaps
/// empty) or a 400, never a 5xx, and nothing typed comes back unescaped. Returns how many.
async fn assert_filters_withstand_hostile_values(admin: &Browser, page: &str) -> usize {
    let hostile = [
        "-1",
        "99999999999999999999",
        "'; DROP TABLE personal_access_tokens; --",
        "<script>alert(1)</script>",
        "%00",
        "%FF%FE",
        "%",
        "_",
        "\\",
    ];
    let keys = [
        "page", "sort", "status", "q", "owner", "scope", "unused", "role", "action", "actor", "tab",
    ];
    for key in keys {
        for value in hostile {
            let value = value.replace(' ', "+").replace(';', "%3B");
            let path = format!("{page}?{key}={value}");
            let response = admin.get(&path).await;
            let status = response.status();
            assert!(
                status == StatusCode::OK || status == StatusCode::BAD_REQUEST,
                "GET {path}: {status}"
            );
            let html = response.text().await.unwrap();
            assert!(
                !html.contains("<script>alert(1)"),
                "GET {path} reflects markup"
            );
        }
    }
    keys.len() * hostile.len()
}

async fn admin_filters_and_ids_refuse_hostile_input(app: TestApp) {
    let admin = app.setup_admin().await;
    let grace = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    app.token_for(grace.id, "ci", &["tag:read"]).await;
    let mut tried = 0;
    for page in [
        "/admin/access-tokens",
        "/admin/members",
        "/admin/audit",
        "/developer/access-tokens",
    ] {
        tried += assert_filters_withstand_hostile_values(&admin, page).await;
    }
    // A query that is not text is refused before any page reads it, with the page's 400.
    for path in ["/admin/access-tokens?owner=%00", "/admin/members?q=%FF%FE"] {
        let response = admin.get(path).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        let html = response.text().await.unwrap();
        assert!(html.contains("not text (invalid UTF-8, or NUL)"), "{path}");
        tried += 1;
    }
    // Ids that are not ids are pages that do not exist.
    for id in [
        "abc",
        "-1",
        "0",
        "99999999999999999999999",
        "1.5",
        "%00",
        "1%20OR%201=1",
    ] {
        for path in [
            format!("/developer/access-tokens/{id}/revoke"),
            format!("/developer/access-tokens/{id}/regenerate"),
            format!("/admin/access-tokens/{id}/revoke"),
            format!("/admin/members/{id}/deactivate"),
        ] {
            let status = admin.get(&path).await.status();
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
            tried += 1;
        }
    }
    assert!(stored_tokens(&app, grace.id).await[0].revoked_at.is_none());
    println!("hostile input (admin): {tried} hostile requests, none a 5xx");
}

async fn every_form_route_limits_its_body(app: TestApp) {
    let admin = app.setup_admin().await;
    let csrf = csrf_token(&admin.page("/developer/access-tokens").await);
    let big = "x".repeat(MEGABYTE);
    let (_, token) = app
        .token_for(1, "t", &["personalAccessToken:write", "tag:read"])
        .await;
    let mut checked = 0;
    for (method, template, _) in crate::route_walk::ROUTES {
        if *method != "POST" {
            continue;
        }
        let path = template
            .replace("{id}", "1")
            .replace("{change}", "deactivate")
            .replace("{secret}", "0000");
        let response = if path.starts_with("/api/") {
            reqwest::Client::new()
                .post(format!("{}{path}", app.address))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(format!("{{\"name\": \"{big}\"}}"))
                .send()
                .await
                .unwrap()
        } else {
            admin
                .post(&path, &[("csrf_token", &csrf), ("name", &big)])
                .await
        };
        assert_eq!(
            response.status(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "POST {path}"
        );
        checked += 1;
    }
    // Long query strings are served or refused, never a 5xx; a megabyte header is refused.
    // (60 KB: the HTTP client itself will not build a longer URI.)
    let long_query = format!("/admin/access-tokens?q={}", "x".repeat(60_000));
    let status = admin.get(&long_query).await.status();
    assert!(!status.is_server_error(), "60 KB query: {status}");
    let status = app
        .api()
        .client
        .get(format!("{}/auth/verify", app.address))
        .header("x-auth-token", &big)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    assert!(
        status == 0 || (400..500).contains(&status),
        "1 MB header: {status}"
    );
    println!("body limits: {checked} POST routes answered 413 to a 1 MB body");
}

async fn over_http_only_the_real_token_authenticates(app: TestApp) {
    let grace = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let (_, real) = app.token_for(grace.id, "real", &["tag:read"]).await;
    let api = app.api();
    let mut rng = StdRng::seed_from_u64(9);
    const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut candidates: Vec<String> = vec![
        real.to_uppercase(),
        real[..41].to_owned(),
        format!("{real}0"),
        real.replacen("tdk_", "tdk-", 1),
        real.replacen("tdk_", "", 1),
        format!("tdk_{}", &real[4..].chars().rev().collect::<String>()),
    ];
    while candidates.len() < 400 {
        let mut bytes = real.clone().into_bytes();
        for _ in 0..rng.random_range(1..4) {
            let at = rng.random_range(4..42);
            let replacement = BASE62[rng.random_range(0..62)];
            bytes[at] = replacement;
        }
        let candidate = String::from_utf8(bytes).unwrap();
        if candidate != real {
            candidates.push(candidate);
        }
    }
    let mut statuses = std::collections::BTreeMap::new();
    for (i, candidate) in candidates.iter().enumerate() {
        let way = EVERY_WAY[i % EVERY_WAY.len()];
        // A path segment only counts when it looks like a token; send the rest in a header.
        let way = if matches!(way, Presented::PathSegment) && candidate.contains('/') {
            Presented::Bearer
        } else {
            way
        };
        let status = api
            .get("/me", candidate, way)
            .send()
            .await
            .unwrap()
            .status();
        assert_ne!(
            status,
            StatusCode::OK,
            "{candidate} authenticated ({way:?})"
        );
        *statuses.entry(status.as_u16()).or_insert(0) += 1;
    }
    assert_eq!(
        api.me(&real).await.status(),
        StatusCode::OK,
        "the real one does"
    );
    println!(
        "token guessing over HTTP: {} near-misses of a real token sent, 0 authenticated; statuses {statuses:?}",
        candidates.len()
    );
}
