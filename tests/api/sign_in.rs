use reqwest::StatusCode;
use tokendesk::domain::Role;

use crate::backend_tests;
use crate::helpers::{location, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};

backend_tests!(
    signing_in_with_the_right_password_opens_the_portal,
    every_failure_gets_the_same_message,
    sign_in_follows_only_local_next_links,
    session_cookie_is_http_only_and_lax,
    sign_out_ends_the_session_and_needs_csrf,
    five_failures_for_an_account_pause_its_sign_in,
    five_failures_from_an_address_pause_sign_in_from_it,
);

async fn signing_in_with_the_right_password_opens_the_portal(app: TestApp) {
    app.setup_admin().await;
    let browser = app.browser();
    let response = browser.get("/developer/access-tokens").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&response),
        "/sign-in?next=/developer/access-tokens"
    );

    let response = browser.sign_in(" ADA@example.com ", ADMIN_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/developer/access-tokens");
    let html = browser.page("/developer/access-tokens").await;
    assert!(html.contains("Ada Lovelace"));
    assert!(app
        .audit_actions()
        .await
        .contains(&"sign_in.succeeded".to_owned()));
}

async fn every_failure_gets_the_same_message(app: TestApp) {
    app.setup_admin().await;
    app.create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let browser = app.browser();
    for (email, password) in [
        (ADMIN_EMAIL, "wrong password!"),
        ("nobody@example.com", ADMIN_PASSWORD),
        ("not an email", "whatever"),
        ("", ""),
    ] {
        let response = browser.sign_in(email, password).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{email}");
        let html = response.text().await.unwrap();
        assert!(html.contains("Incorrect email or password."), "{email}");
        assert!(
            !html.contains(password) || password.is_empty(),
            "password echoed"
        );
    }
    assert_eq!(
        browser.get("/developer/access-tokens").await.status(),
        StatusCode::SEE_OTHER,
        "still signed out"
    );
    let failures = app
        .audit_actions()
        .await
        .iter()
        .filter(|a| *a == "sign_in.failed")
        .count();
    assert_eq!(failures, 4);
}

async fn sign_in_follows_only_local_next_links(app: TestApp) {
    app.setup_admin().await;
    for (next, expected) in [
        (
            "/developer/access-tokens?page=2",
            "/developer/access-tokens?page=2",
        ),
        ("https://evil.example/", "/developer/access-tokens"),
        ("//evil.example/", "/developer/access-tokens"),
        ("/\\evil.example", "/developer/access-tokens"),
    ] {
        let browser = app.browser();
        let response = browser
            .submit_form(
                "/sign-in",
                "/sign-in",
                &[
                    ("email", ADMIN_EMAIL),
                    ("password", ADMIN_PASSWORD),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(location(&response), expected, "next={next}");
    }
}

async fn session_cookie_is_http_only_and_lax(app: TestApp) {
    app.setup_admin().await;
    let browser = app.browser();
    browser.page("/sign-in").await;
    let response = browser.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("tokendesk_session="));
    assert!(cookie.contains("HttpOnly"));
    assert!(cookie.contains("SameSite=Lax"));
    assert!(
        !cookie.contains("Secure"),
        "Secure only when configured for HTTPS"
    );
}

async fn sign_out_ends_the_session_and_needs_csrf(app: TestApp) {
    let admin = app.setup_admin().await;
    // Without the form's token nothing happens.
    let response = admin.post("/sign-out", &[]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("This form has expired"));
    admin.page("/developer/access-tokens").await;

    let response = admin.sign_out().await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/sign-in");
    let response = admin.get("/developer/access-tokens").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(location(&response).starts_with("/sign-in"));
}

async fn five_failures_for_an_account_pause_its_sign_in(app: TestApp) {
    app.setup_admin().await;
    let attacker = app.browser();
    for _ in 0..5 {
        let response = attacker.sign_in(ADMIN_EMAIL, "guess-guess-guess").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    // Now even the right password is refused, with a clear message.
    let response = attacker.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let html = response.text().await.unwrap();
    assert!(html.contains("Too many failed sign-in attempts"), "{html}");
    assert!(html.contains("try again in 15 minutes"), "{html}");
    assert_eq!(
        attacker.get("/developer/access-tokens").await.status(),
        StatusCode::SEE_OTHER
    );
}

async fn five_failures_from_an_address_pause_sign_in_from_it(app: TestApp) {
    app.setup_admin().await;
    app.create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let browser = app.browser();
    for n in 0..5 {
        let response = browser
            .sign_in(&format!("nobody{n}@example.com"), "guess-guess-guess")
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    // A different account, from the same address: paused too.
    let response = browser
        .sign_in("grace@example.com", "grace-password-1")
        .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}
