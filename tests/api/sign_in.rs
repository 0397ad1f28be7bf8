use reqwest::StatusCode;
use tokendesk::domain::Role;

use crate::backend_tests;
use crate::helpers::{location, user_and_browser, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};

backend_tests!(
    signing_in_with_the_right_password_opens_the_portal,
    every_failure_gets_the_same_message,
    sign_in_follows_only_local_next_links,
    session_cookie_is_http_only_and_lax,
    sign_out_ends_the_session_and_needs_csrf,
    a_copied_cookie_dies_at_sign_out,
    a_session_planted_before_sign_in_is_worthless_after_it,
    deactivation_ends_every_session_of_the_member,
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

/// Replays a stolen `Cookie` header on a page; true when it still opens the portal.
async fn replay_opens_the_portal(app: &TestApp, cookie: &str) -> bool {
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/developer/access-tokens", app.address))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    response.status() == StatusCode::OK
}

async fn a_copied_cookie_dies_at_sign_out(app: TestApp) {
    let admin = app.setup_admin().await;
    let stolen = admin.cookie_header();
    assert!(
        replay_opens_the_portal(&app, &stolen).await,
        "a copy works while the session lives"
    );
    admin.sign_out().await;
    assert!(
        !replay_opens_the_portal(&app, &stolen).await,
        "the session is ended on the server, not only in this browser"
    );
    println!("sessions: a copied cookie was refused after sign-out");
}

async fn a_session_planted_before_sign_in_is_worthless_after_it(app: TestApp) {
    app.setup_admin().await;
    let victim = app.browser();
    victim.page("/sign-in").await;
    let planted = victim.cookie_header();
    assert!(
        !planted.is_empty(),
        "the sign-in page sets a session cookie"
    );
    victim.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let after = victim.cookie_header();
    assert_ne!(planted, after, "the session is renewed at sign-in");
    assert!(replay_opens_the_portal(&app, &after).await);
    assert!(
        !replay_opens_the_portal(&app, &planted).await,
        "the pre-sign-in cookie does not ride along"
    );
}

async fn deactivation_ends_every_session_of_the_member(app: TestApp) {
    let admin = app.setup_admin().await;
    let (grace, laptop) = user_and_browser(&app, "grace@example.com", Role::User).await;
    let phone = app.browser();
    phone
        .sign_in("grace@example.com", "correct-horse-battery")
        .await;
    let copied = laptop.cookie_header();
    let response = admin
        .submit_form(
            &format!("/admin/members/{}/deactivate", grace.id),
            &format!("/admin/members/{}/deactivate", grace.id),
            &[],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    for (who, browser) in [("laptop", &laptop), ("phone", &phone)] {
        let response = browser.get("/developer/access-tokens").await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{who}");
    }
    assert!(!replay_opens_the_portal(&app, &copied).await);
    let sessions_left: i64 = app
        .db
        .run(move |conn| {
            use diesel::prelude::*;
            use tokendesk::db::schema::sessions;
            sessions::table
                .filter(sessions::user_id.eq(grace.id))
                .count()
                .get_result(conn)
        })
        .await
        .unwrap();
    assert_eq!(sessions_left, 0, "no session rows remain for the member");
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
