use crate::backend_tests;
use crate::helpers::{csrf_token, location, Backend, TestApp};
use reqwest::StatusCode;

backend_tests!(
    every_page_leads_to_setup_until_the_first_admin_exists,
    setup_creates_one_admin_signs_them_in_and_then_is_gone,
    setup_form_shows_every_field_error_and_keeps_input,
    setup_refuses_a_forged_form,
    unknown_pages_get_the_styled_404,
    pages_carry_security_headers_and_no_inline_script,
    static_assets_are_served_with_cache_headers,
    health_and_readiness,
);

async fn every_page_leads_to_setup_until_the_first_admin_exists(app: TestApp) {
    let browser = app.browser();
    for path in ["/", "/sign-in", "/developer/access-tokens"] {
        let response = browser.get(path).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(location(&response), "/setup", "{path}");
    }
    let html = browser.page("/setup").await;
    assert!(html.contains("Create administrator"));
}

async fn setup_creates_one_admin_signs_them_in_and_then_is_gone(app: TestApp) {
    let admin = app.setup_admin().await;
    let html = admin.page("/developer/access-tokens").await;
    assert!(html.contains("Ada Lovelace"), "the top bar names the admin");
    assert!(html.contains("No access tokens yet"), "empty state");
    assert!(html.contains("Sign out"));

    for browser in [&admin, &app.browser()] {
        let response = browser.get("/setup").await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert!(response.text().await.unwrap().contains("Page not found"));
    }
    // Replaying the form once setup is done creates nobody.
    let other = app.browser();
    let html = other.page("/sign-in").await;
    let response = other
        .post(
            "/setup",
            &[
                ("csrf_token", &csrf_token(&html)),
                ("display_name", "Mallory"),
                ("email", "mallory@example.com"),
                ("password", "mallory-password"),
                ("password_confirm", "mallory-password"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        other
            .sign_in("mallory@example.com", "mallory-password")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    let actions = app.audit_actions().await;
    assert_eq!(
        actions.iter().filter(|a| *a == "setup.completed").count(),
        1
    );
}

async fn setup_form_shows_every_field_error_and_keeps_input(app: TestApp) {
    let browser = app.browser();
    let response = browser
        .submit_form(
            "/setup",
            "/setup",
            &[
                ("display_name", "   "),
                ("email", "not-an-email"),
                ("password", "short"),
                ("password_confirm", "different"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(html.contains("Enter a name."));
    assert!(html.contains("Enter a valid email address"));
    assert!(html.contains("Use at least 10 characters."));
    assert!(html.contains("The passwords do not match."));
    assert!(html.contains("value=\"not-an-email\""), "input is kept");
    assert!(
        !html.contains("value=\"short\""),
        "passwords are never echoed"
    );
    // Nothing was created: setup is still open.
    assert_eq!(browser.get("/setup").await.status(), StatusCode::OK);

    // An empty submission is a set of field errors too, not a crash.
    let response = browser.submit_form("/setup", "/setup", &[]).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

async fn setup_refuses_a_forged_form(app: TestApp) {
    let browser = app.browser();
    browser.page("/setup").await;
    let fields = [
        ("display_name", "Mallory"),
        ("email", "mallory@example.com"),
        ("password", "mallory-password"),
        ("password_confirm", "mallory-password"),
    ];
    for csrf in [None, Some("wrong-token")] {
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        if let Some(csrf) = csrf {
            form.push(("csrf_token", csrf));
        }
        let response = browser.post("/setup", &form).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let html = response.text().await.unwrap();
        assert!(html.contains("This form has expired"), "styled 403 page");
        assert!(html.contains("<link rel=\"stylesheet\""));
    }
    assert_eq!(
        browser.get("/setup").await.status(),
        StatusCode::OK,
        "nothing changed"
    );
}

async fn unknown_pages_get_the_styled_404(app: TestApp) {
    let browser = app.setup_admin().await;
    let response = browser.get("/no/such/page").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let html = response.text().await.unwrap();
    assert!(html.contains("Page not found"));
    assert!(html.contains("/static/app.css"));
}

async fn pages_carry_security_headers_and_no_inline_script(app: TestApp) {
    let browser = app.setup_admin().await;
    for path in ["/developer/access-tokens", "/sign-in", "/no/such/page"] {
        let response = browser.get(path).await;
        let headers = response.headers().clone();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{path}"
        );
        assert!(csp.contains("frame-ancestors 'none'"));
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert_eq!(headers["cache-control"], "no-store");
        assert!(
            !headers.contains_key("strict-transport-security"),
            "no HSTS over plain HTTP"
        );
        let html = response.text().await.unwrap();
        assert!(!html.contains("<script>"), "{path} has an inline script");
        assert!(!html.contains(" onclick="), "{path} has an inline handler");
    }
}

async fn static_assets_are_served_with_cache_headers(app: TestApp) {
    let browser = app.browser();
    for (path, kind) in [
        ("/static/app.css", "text/css"),
        ("/static/app.js", "text/javascript"),
        ("/static/favicon.svg", "image/svg+xml"),
    ] {
        let response = browser.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with(kind));
        assert!(response.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age="));
    }
    assert_eq!(
        browser.get("/static/nope.js").await.status(),
        StatusCode::NOT_FOUND
    );
}

async fn health_and_readiness(app: TestApp) {
    let browser = app.browser();
    let health = browser.get("/healthz").await;
    assert_eq!(health.status(), StatusCode::OK);
    let ready = browser.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::OK);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ready");
}

/// PostgreSQL only: an outage is something a server-backed database has; a SQLite file
/// stays readable through the connections that hold it open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_when_postgres_is_gone() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let browser = app.browser();
    assert_eq!(browser.get("/readyz").await.status(), StatusCode::OK);
    app.drop_postgres_database();
    assert_eq!(
        browser.get("/healthz").await.status(),
        StatusCode::OK,
        "the process is up"
    );
    let started = std::time::Instant::now();
    let response = browser.get("/readyz").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "fails fast"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "not_ready");
}

/// Behind a TLS-terminating proxy (`--secure-cookies`): HSTS on every response, and the session
/// cookie marked Secure so a browser never sends it over plain HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_over_https_pages_carry_hsts_and_secure_cookies() {
    let app = TestApp::spawn_with(Backend::Sqlite, |config| config.secure_cookies = true).await;
    let browser = app.browser();
    for path in ["/setup", "/sign-in", "/healthz", "/no/such/page"] {
        let response = browser.get(path).await;
        assert_eq!(
            response.headers()["strict-transport-security"],
            "max-age=31536000",
            "{path}"
        );
    }
    let response = app.browser().get("/setup").await;
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
}
