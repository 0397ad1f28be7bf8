//! The sign-in limit attacked as a guesser would: many guesses released at the same moment,
//! and a stranger trying to lock the owner out.

use std::net::IpAddr;

use futures_util::future::join_all;
use reqwest::StatusCode;
use tokendesk::domain::Role;

use crate::backend_tests;
use crate::helpers::{csrf_token, Backend, Browser, TestApp};

backend_tests!(
    a_burst_of_guesses_gets_five_password_checks,
    a_strangers_failures_do_not_lock_out_the_owner,
    what_is_typed_as_the_email_is_kept_only_when_it_is_an_address,
);

const OWNER: &str = "kim@example.com";
const PASSWORD: &str = "kims-right-password";

async fn behind_a_trusted_proxy(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |config| {
        config.trusted_proxies = vec!["127.0.0.1".parse::<IpAddr>().unwrap()];
    })
    .await
}

/// A browser that has opened the sign-in form: its CSRF token, ready to post.
async fn ready_to_guess(browser: Browser) -> (Browser, String) {
    let csrf = csrf_token(&browser.page("/sign-in").await);
    (browser, csrf)
}

async fn guess(browser: &Browser, csrf: &str, email: &str, password: &str) -> StatusCode {
    let fields = [
        ("csrf_token", csrf),
        ("email", email),
        ("password", password),
    ];
    browser.post("/sign-in", &fields).await.status()
}

async fn a_burst_of_guesses_gets_five_password_checks(app: TestApp) {
    app.setup_admin().await;
    app.create_user(OWNER, PASSWORD, Role::User).await;
    // 60 sessions, each with its form open; then 59 wrong passwords and the right one, all at
    // once, from one address.
    let guessers = join_all((0..60).map(|_| ready_to_guess(app.browser()))).await;
    let answers = join_all(guessers.iter().enumerate().map(|(i, (browser, csrf))| {
        let password = if i == 59 {
            PASSWORD.to_owned()
        } else {
            format!("guess-number-{i}")
        };
        async move { guess(browser, csrf, OWNER, &password).await }
    }))
    .await;
    let count = |status| answers.iter().filter(|s| **s == status).count();
    let (wrong, right, held) = (
        count(StatusCode::UNAUTHORIZED),
        count(StatusCode::SEE_OTHER),
        count(StatusCode::TOO_MANY_REQUESTS),
    );
    assert_eq!(
        wrong + right + held,
        60,
        "only 401, 303 and 429: {answers:?}"
    );
    assert!(
        wrong + right <= 5,
        "{wrong} wrong and {right} right passwords were checked"
    );
    let failures = app.audit_events("sign_in.failed").await.len();
    assert_eq!(
        failures, wrong,
        "each check that failed is in the audit trail"
    );
    // The window is still closed for this pair, right password or not.
    let (browser, csrf) = ready_to_guess(app.browser()).await;
    if right == 0 {
        assert_eq!(
            guess(&browser, &csrf, OWNER, PASSWORD).await,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    println!("sign-in burst: 60 at once → {wrong} checked and wrong, {right} signed in, {held} held back (429)");
}

async fn a_strangers_failures_do_not_lock_out_the_owner(app: TestApp) {
    let app = behind_a_trusted_proxy(app.backend()).await;
    app.setup_admin().await;
    app.create_user(OWNER, PASSWORD, Role::User).await;
    let (home, office) = ("198.51.100.7", "203.0.113.66");
    let owner = app.browser_from(home);
    assert_eq!(
        owner.sign_in(OWNER, PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    owner.sign_out().await;
    // A colleague signs in from the office, which one stranger shares with them.
    let colleague_email = "lee@example.com";
    app.create_user(colleague_email, "lees-own-password", Role::User)
        .await;
    let colleague = app.browser_from(office);
    let signed_in = colleague
        .sign_in(colleague_email, "lees-own-password")
        .await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);

    // A stranger spends the account's failures, then is held back.
    let (stranger, csrf) = ready_to_guess(app.browser_from(office)).await;
    for i in 0..5 {
        let status = guess(&stranger, &csrf, OWNER, &format!("guess-{i}")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "guess {i}");
    }
    assert_eq!(
        guess(&stranger, &csrf, OWNER, PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password is not checked for the stranger now"
    );
    // So is another stranger (from anywhere but the owner's addresses) for this account...
    let (other, other_csrf) = ready_to_guess(app.browser_from("203.0.113.99")).await;
    assert_eq!(
        guess(&other, &other_csrf, OWNER, "another-guess").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // ... and the stranger's address for every account.
    assert_eq!(
        guess(&stranger, &csrf, "ada@example.com", "a-guess-elsewhere").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The owner, from where they signed in before, is not held back.
    let owner = app.browser_from(home);
    assert_eq!(
        owner.sign_in(OWNER, PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );

    // Nor is the colleague in the stranger's office, at their own account.
    let colleague = app.browser_from(office);
    let signed_in = colleague
        .sign_in(colleague_email, "lees-own-password")
        .await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
}

async fn what_is_typed_as_the_email_is_kept_only_when_it_is_an_address(app: TestApp) {
    let admin = app.setup_admin().await;
    let (browser, csrf) = ready_to_guess(app.browser()).await;
    // A password typed into the email field, and a field far longer than any address.
    let password_as_email = "Adm1n-pass-word-xyz!";
    let long = "x".repeat(60_000);
    for typed in [password_as_email, long.as_str()] {
        assert_eq!(
            guess(&browser, &csrf, typed, "whatever-password").await,
            StatusCode::UNAUTHORIZED
        );
    }
    let failures = app.audit_events("sign_in.failed").await;
    assert_eq!(failures.len(), 2);
    let trail = admin.page("/admin/audit").await;
    let export = admin.get("/admin/audit.csv").await.text().await.unwrap();
    for shown in [trail, export] {
        assert!(!shown
            .to_lowercase()
            .contains(&password_as_email.to_lowercase()));
        assert!(shown.contains("(not an email address)"));
    }
}
