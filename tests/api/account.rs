//! My account: a member changes their own display name and password.

use reqwest::StatusCode;
use tokendesk::accounts::sign_in::MAX_FAILURES;
use tokendesk::domain::Role;

use crate::backend_tests;
use crate::helpers::{location, user_and_browser, Browser, TestApp, USER_PASSWORD};

backend_tests!(
    a_new_display_name_shows_in_the_header,
    a_wrong_current_password_changes_nothing,
    wrong_current_passwords_count_toward_the_sign_in_limit,
    a_new_password_signs_out_every_other_session,
    a_copy_of_the_changing_browsers_cookie_stops_working,
    two_changes_at_once_from_the_same_password_make_one,
);

const GRACE: &str = "grace@example.com";
const NEW_PASSWORD: &str = "compiler-pioneer-1952";

async fn a_new_display_name_shows_in_the_header(app: TestApp) {
    app.setup_admin().await;
    let (_, grace) = user_and_browser(&app, GRACE, Role::User).await;
    let tokens_page = grace.page("/developer/access-tokens").await;
    assert!(
        tokens_page.contains("href=\"/account\""),
        "the menu links it"
    );
    assert!(!tokens_page.contains("Grace Hopper"));

    let invisible = [("display_name", "Grace \u{202e}reppoH")];
    let refused = grace
        .submit_form("/account", "/account/name", &invisible)
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused
        .text()
        .await
        .unwrap()
        .contains("invisible characters"));

    let spaced = [("display_name", "  Grace   Hopper ")];
    let renamed = grace
        .submit_form("/account", "/account/name", &spaced)
        .await;
    assert_eq!(location(&renamed), "/account");
    assert!(grace
        .page("/account")
        .await
        .contains("Your name is now Grace Hopper."));
    let header = grace.page("/developer/access-tokens").await;
    assert!(header.contains("Grace Hopper") && header.contains(">GH<"));
    let events = app.audit_events("account.display_name_changed").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].details, "grace -> Grace Hopper");
}

async fn a_wrong_current_password_changes_nothing(app: TestApp) {
    app.setup_admin().await;
    let (_, grace) = user_and_browser(&app, GRACE, Role::User).await;
    assert!(grace
        .page("/account")
        .await
        .contains("At least 10 characters"));

    let wrong = grace.change_password("not-my-password", NEW_PASSWORD).await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = wrong.text().await.unwrap();
    assert!(html.contains("This is not your current password."));
    assert!(!html.contains(NEW_PASSWORD), "no password is sent back");
    let too_short = grace.change_password(USER_PASSWORD, "short").await;
    assert_eq!(too_short.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(too_short.text().await.unwrap().contains("Use at least 10"));

    assert!(app.audit_events("password.changed").await.is_empty());
    let refused = app.audit_events("password.change_refused").await;
    assert_eq!(refused.len(), 1, "the wrong guess is in the trail");
    assert_eq!(refused[0].details, "wrong current password");
    let with_new = app.browser().sign_in(GRACE, NEW_PASSWORD).await;
    assert_eq!(with_new.status(), StatusCode::UNAUTHORIZED);
    let with_old = app.browser().sign_in(GRACE, USER_PASSWORD).await;
    assert_eq!(with_old.status(), StatusCode::SEE_OTHER);
}

/// The current-password check is a sign-in check: no unlimited guessing from an open session.
async fn wrong_current_passwords_count_toward_the_sign_in_limit(app: TestApp) {
    app.setup_admin().await;
    let (_, grace) = user_and_browser(&app, GRACE, Role::User).await;
    for guess in 0..MAX_FAILURES {
        let wrong = grace
            .change_password(&format!("guess-{guess}-x"), NEW_PASSWORD)
            .await;
        assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    let held = grace.change_password(USER_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(held.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(held
        .text()
        .await
        .unwrap()
        .contains("Too many wrong passwords"));
    let sign_in = app.browser().sign_in(GRACE, USER_PASSWORD).await;
    assert_eq!(sign_in.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(app.audit_events("password.changed").await.is_empty());
}

async fn a_new_password_signs_out_every_other_session(app: TestApp) {
    app.setup_admin().await;
    let (grace_user, grace) = user_and_browser(&app, GRACE, Role::User).await;
    let laptop = app.browser();
    assert_eq!(
        laptop.sign_in(GRACE, USER_PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );

    let changed = grace.change_password(USER_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(location(&changed), "/account");
    let notice = grace.page("/account").await;
    assert!(
        notice.contains("your other session is signed out"),
        "{notice}"
    );
    grace.page("/developer/access-tokens").await;
    let elsewhere = laptop.get("/developer/access-tokens").await;
    assert!(
        location(&elsewhere).starts_with("/sign-in"),
        "the laptop is signed out"
    );

    let with_old = app.browser().sign_in(GRACE, USER_PASSWORD).await;
    assert_eq!(with_old.status(), StatusCode::UNAUTHORIZED);
    let with_new = app.browser().sign_in(GRACE, NEW_PASSWORD).await;
    assert_eq!(with_new.status(), StatusCode::SEE_OTHER);
    let events = app.audit_events("password.changed").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].target_id, Some(grace_user.id));
    assert_eq!(events[0].details, "other sessions ended: 1");
}

/// Changing the password from a browser whose cookie was copied: the copy is signed out, the
/// browser carries on.
async fn a_copy_of_the_changing_browsers_cookie_stops_working(app: TestApp) {
    app.setup_admin().await;
    let (_, grace) = user_and_browser(&app, GRACE, Role::User).await;
    let mut stolen_headers = reqwest::header::HeaderMap::new();
    stolen_headers.insert("cookie", grace.cookie_header().parse().unwrap());
    let thief = Browser::at(&app.address, stolen_headers);
    assert_eq!(thief.get("/account").await.status(), StatusCode::OK);

    let changed = grace.change_password(USER_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(location(&changed), "/account");
    let after = thief.get("/developer/access-tokens").await;
    assert!(
        location(&after).starts_with("/sign-in"),
        "the copy is signed out"
    );
    assert_eq!(
        grace.get("/developer/access-tokens").await.status(),
        StatusCode::OK
    );
}

/// Two sessions change the password at the same moment from the same old one: one change is
/// made, and its password is the one that works.
async fn two_changes_at_once_from_the_same_password_make_one(app: TestApp) {
    app.setup_admin().await;
    let (_, first) = user_and_browser(&app, GRACE, Role::User).await;
    let second = app.browser();
    assert_eq!(
        second.sign_in(GRACE, USER_PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    let (a, b) = ("first-choice-pass-1", "second-choice-pass-2");
    let (first_done, second_done) = tokio::join!(
        first.change_password(USER_PASSWORD, a),
        second.change_password(USER_PASSWORD, b)
    );
    let made: Vec<&str> = [(first_done, a), (second_done, b)]
        .iter()
        .filter(|(response, _)| {
            let to = response.headers().get("location");
            to.and_then(|v| v.to_str().ok()) == Some("/account")
        })
        .map(|(_, password)| *password)
        .collect();
    assert_eq!(made.len(), 1, "one change is made");
    assert_eq!(app.audit_events("password.changed").await.len(), 1);
    let works = app.browser().sign_in(GRACE, made[0]).await;
    assert_eq!(
        works.status(),
        StatusCode::SEE_OTHER,
        "the reported password works"
    );
}
