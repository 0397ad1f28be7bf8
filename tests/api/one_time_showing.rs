//! What is shown once stays shown once, even to someone replaying a copy of the cookie: a new
//! token's reveal and a new member's set-password link.

use reqwest::StatusCode;
use tokendesk::domain::Role;

use crate::backend_tests;
use crate::helpers::{location, revealed_secret, user_and_browser, Browser, TestApp};

backend_tests!(
    a_copied_cookie_does_not_reveal_a_token_again,
    a_copied_cookie_does_not_show_a_set_password_link_again,
);

/// A second browser holding a copy of `browser`'s cookies as they are now.
fn copy_of(app: &TestApp, browser: &Browser) -> Browser {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("cookie", browser.cookie_header().parse().unwrap());
    Browser::at(&app.address, headers)
}

async fn a_copied_cookie_does_not_reveal_a_token_again(app: TestApp) {
    let (kim_user, kim) = user_and_browser(&app, "kim@example.com", Role::User).await;
    kim.create_token_unseen("ci").await;
    // The attacker copies the cookie of the 303, before and after the owner sees the token.
    let copied_before = copy_of(&app, &kim);
    let html = kim.page("/developer/access-tokens/reveal").await;
    let secret = revealed_secret(&html).expect("the owner sees the token once");
    let copied_after = copy_of(&app, &kim);
    for replay in [&copied_before, &copied_after, &copied_before] {
        let response = replay.get("/developer/access-tokens/reveal").await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&response), "/developer/access-tokens");
        let list = replay.page("/developer/access-tokens").await;
        assert!(!list.contains(&secret[4..]), "the token is shown again");
    }
    // Regenerating reveals once too.
    let token_id = crate::helpers::stored_tokens(&app, kim_user.id).await[0].id;
    let page = format!("/developer/access-tokens/{token_id}/regenerate");
    let response = kim.submit_form(&page, &page, &[("expires_in", "30")]).await;
    assert_eq!(location(&response), "/developer/access-tokens/reveal");
    let copied = copy_of(&app, &kim);
    let html = kim.page("/developer/access-tokens/reveal").await;
    assert!(
        revealed_secret(&html).is_some(),
        "the new secret is shown once"
    );
    let response = copied.get("/developer/access-tokens/reveal").await;
    assert_eq!(location(&response), "/developer/access-tokens", "not twice");
}

async fn a_copied_cookie_does_not_show_a_set_password_link_again(app: TestApp) {
    let admin = app.setup_admin().await;
    let response = admin.invite_linus().await;
    assert_eq!(location(&response), "/admin/members/link");
    let copied = copy_of(&app, &admin);
    let html = admin.page("/admin/members/link").await;
    assert!(
        html.contains("/set-password/"),
        "the admin sees the link once"
    );
    let response = copied.get("/admin/members/link").await;
    assert_eq!(location(&response), "/admin/members", "not again");
}
