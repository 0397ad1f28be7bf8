//! tokendesk behind a proxy it trusts that adds an X-Forwarded-For line of its own below the
//! client's (HAProxy's `option forwardfor` does): the client writes the first line and can put
//! any address there; only the line the proxy added names the client.

use std::time::{Duration, Instant};

use reqwest::{RequestBuilder, StatusCode};
use tokendesk::domain::Role;

use crate::backend_tests;
use crate::helpers::{csrf_token, Presented, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};

backend_tests!(
    bad_tokens_and_last_used_go_to_the_address_the_proxy_added,
    sign_in_failures_go_to_the_address_the_proxy_added,
    an_ipv6_guesser_taking_a_new_address_for_each_guess_is_blocked_by_its_64,
);

/// The same backend again, behind a proxy at 127.0.0.1 (where the test's requests come from).
async fn behind_a_proxy(app: TestApp) -> TestApp {
    let backend = app.backend();
    drop(app);
    TestApp::spawn_with(backend, |config| {
        config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        config.token_failure_limit = 5;
        config.token_failure_window_secs = 60;
    })
    .await
}

/// `request` as the proxy passes it on: the client's own X-Forwarded-For line (which says
/// whatever the client likes), then the line the proxy adds with the client's real address.
fn through_the_proxy(request: RequestBuilder, client_says: &str, real: &str) -> RequestBuilder {
    request
        .header("x-forwarded-for", client_says)
        .header("x-forwarded-for", real)
}

async fn bad_tokens_and_last_used_go_to_the_address_the_proxy_added(app: TestApp) {
    let app = behind_a_proxy(app).await;
    let user = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let (id, good) = app
        .token_for(user.id, "ci", &["personalAccessToken:read"])
        .await;
    let api = app.api();
    let me = |token: &str, client_says: &str, real: &str| {
        let request = api.get("/me", token, Presented::Bearer);
        let request = through_the_proxy(request, client_says, real);
        async move { request.send().await.unwrap().status() }
    };

    // Last used records the address the proxy added, not the one the client wrote.
    assert_eq!(me(&good, "6.6.6.6", "203.0.113.7").await, StatusCode::OK);
    let started = Instant::now();
    let last_used_ip = loop {
        let list = through_the_proxy(
            api.get("/personal-access-tokens", &good, Presented::Bearer),
            "6.6.6.6",
            "203.0.113.7",
        );
        let body: serde_json::Value = list.send().await.unwrap().json().await.unwrap();
        let token = &body["tokens"].as_array().unwrap()[0];
        assert_eq!(token["id"], id);
        if !token["last_used_ip"].is_null() || started.elapsed() > Duration::from_secs(5) {
            break token["last_used_ip"].clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(last_used_ip, "203.0.113.7");

    // A guesser at 203.0.113.66 writes someone else's address in its own line each time.
    let guess = crate::helpers::a_guess_at(&good);
    let mut statuses = Vec::new();
    for n in 0..6 {
        let spoofed = format!("198.51.100.{n}");
        statuses.push(me(&guess, &spoofed, "203.0.113.66").await.as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429]);
    assert_eq!(
        me(&good, "198.51.100.200", "203.0.113.66").await,
        StatusCode::TOO_MANY_REQUESTS,
        "a fresh made-up line does not lift the guesser's block"
    );
    assert_eq!(
        me(&good, "198.51.100.0", "203.0.113.8").await,
        StatusCode::OK,
        "the address the guesser wrote is not blamed"
    );
}

/// Submits the sign-in form through the proxy: the client writes `client_says` in its own
/// X-Forwarded-For line, the proxy adds `real`.
async fn sign_in_through_the_proxy(
    app: &TestApp,
    email: &str,
    password: &str,
    client_says: &str,
    real: &str,
) -> StatusCode {
    let browser = app.browser();
    let csrf = csrf_token(&browser.page("/sign-in").await);
    let form = [
        ("csrf_token", csrf.as_str()),
        ("email", email),
        ("password", password),
    ];
    let request = browser.client.post(browser.url("/sign-in")).form(&form);
    let response = through_the_proxy(request, client_says, real);
    response.send().await.unwrap().status()
}

/// The client address the audit trail names for each failed sign-in.
async fn failed_sign_in_addresses(app: &TestApp) -> Vec<String> {
    let failures = app.audit_events("sign_in.failed").await;
    failures
        .into_iter()
        .map(|event| event.client_ip.unwrap_or_default())
        .collect()
}

async fn sign_in_failures_go_to_the_address_the_proxy_added(app: TestApp) {
    let app = behind_a_proxy(app).await;
    app.setup_admin().await;
    // Five wrong passwords from 203.0.113.7, each claiming another address in its own line.
    for n in 0..5 {
        let email = format!("nobody{n}@example.com");
        let claimed = format!("198.51.100.{n}");
        let status =
            sign_in_through_the_proxy(&app, &email, "guess-guess-guess", &claimed, "203.0.113.7")
                .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        failed_sign_in_addresses(&app).await,
        ["203.0.113.7"; 5],
        "the audit names the real address"
    );

    let (email, password) = (ADMIN_EMAIL, ADMIN_PASSWORD);
    let at_the_limit =
        sign_in_through_the_proxy(&app, email, password, "198.51.100.99", "203.0.113.7").await;
    assert_eq!(
        at_the_limit,
        StatusCode::TOO_MANY_REQUESTS,
        "the address is paused whatever its own line says"
    );
    let someone_else =
        sign_in_through_the_proxy(&app, email, password, "203.0.113.7", "203.0.113.8").await;
    assert_eq!(
        someone_else,
        StatusCode::SEE_OTHER,
        "another client is not paused by writing the paused address in its own line"
    );
}

async fn an_ipv6_guesser_taking_a_new_address_for_each_guess_is_blocked_by_its_64(app: TestApp) {
    let app = behind_a_proxy(app).await;
    let user = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let (_, good) = app.token_for(user.id, "ci", &["license:read"]).await;
    let guess = crate::helpers::a_guess_at(&good);
    let api = app.api();
    let me = |token: &str, real: String| {
        let request = api.get("/me", token, Presented::Bearer);
        let request = through_the_proxy(request, "6.6.6.6", &real);
        async move { request.send().await.unwrap().status().as_u16() }
    };

    let mut statuses = Vec::new();
    for n in 1..=6 {
        statuses.push(me(&guess, format!("2001:db8:1:2:{n:x}::{n:x}")).await);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429]);
    assert_eq!(
        me(&good, "2001:db8:1:2:ffff:ffff:ffff:ffff".into()).await,
        429,
        "any address of that /64"
    );
    assert_eq!(
        me(&good, "2001:db8:1:3::1".into()).await,
        200,
        "the next /64"
    );
}
