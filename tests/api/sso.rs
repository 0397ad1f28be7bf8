//! Sign-in through the company's identity provider (issue 21): against a real OpenID Connect
//! provider the tests run (tests/api/identity_provider.rs), over HTTP, on both backends.

use reqwest::{Response, StatusCode};
use tokendesk::domain::Role;

use crate::backend_tests;
use crate::helpers::{location, Browser, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};
use crate::identity_provider::{Minting, Person, Provider};

backend_tests!(
    a_new_member_signs_in_through_the_provider_and_the_members_page_says_so,
    an_existing_member_is_linked_once_by_verified_email,
    a_configured_claim_makes_a_new_member_an_admin,
    a_wrong_state_a_replayed_or_foreign_answer_signs_no_one_in,
    id_tokens_with_a_wrong_nonce_expiry_key_or_audience_are_refused,
    an_unverified_email_neither_makes_nor_links_a_member,
    the_provider_down_or_refusing_gives_a_clear_page_never_a_500,
    with_passwords_off_only_the_break_glass_admin_signs_in_with_one,
    a_deactivated_member_is_refused_by_the_provider_route_too,
    a_first_sign_in_from_two_browsers_at_once_makes_one_member,
    a_subject_at_another_issuer_is_someone_else,
    a_key_the_provider_rotates_in_is_read_when_it_first_signs,
);

/// Walks `browser` through a sign-in: tokendesk's start, the provider, back to tokendesk's
/// callback. Returns tokendesk's last answer (a redirect when it worked).
async fn sign_in_through(browser: &Browser, next: &str) -> Response {
    let back = answer_of(browser, next).await;
    browser.client.get(&back).send().await.unwrap()
}

/// The address the provider sends `browser` back to, not yet followed.
async fn answer_of(browser: &Browser, next: &str) -> String {
    let start = browser.get(&format!("/sign-in/sso{next}")).await;
    assert_eq!(start.status(), StatusCode::SEE_OTHER, "start");
    let to_provider = location(&start).to_owned();
    let at_provider = browser.client.get(&to_provider).send().await.unwrap();
    assert_eq!(at_provider.status(), StatusCode::FOUND, "{to_provider}");
    location(&at_provider).to_owned()
}

/// Whether `browser` is signed in (its Access Tokens page opens).
async fn signed_in(browser: &Browser) -> bool {
    browser.get("/developer/access-tokens").await.status() == StatusCode::OK
}

/// The server, pointed at a fresh provider (with `adjust` on top), and the admin Ada.
async fn with_provider(
    app: TestApp,
    adjust: impl FnOnce(&mut tokendesk::config::IdentityProviderArgs),
) -> (TestApp, Provider, Browser) {
    let provider = Provider::start().await;
    let mut settings = provider.settings();
    adjust(&mut settings);
    let app = app
        .respawn_with(|config| config.identity_provider = settings)
        .await;
    let admin = app.setup_admin().await;
    (app, provider, admin)
}

async fn member(app: &TestApp, email: &str) -> Option<tokendesk::users::User> {
    let email = tokendesk::domain::Email::parse(email).unwrap();
    app.db
        .run(move |conn| tokendesk::users::find_by_email(conn, &email))
        .await
        .unwrap()
}

async fn failures(app: &TestApp) -> Vec<String> {
    let events = app.audit_events("sign_in.failed").await;
    events.into_iter().map(|e| e.details).collect()
}

async fn a_new_member_signs_in_through_the_provider_and_the_members_page_says_so(app: TestApp) {
    let (app, provider, admin) = with_provider(app, |_| {}).await;
    let page = app.browser().page("/sign-in").await;
    assert!(page.contains("Sign in with Acme SSO"), "{page}");
    assert!(
        page.contains("name=\"password\""),
        "passwords stay on by default"
    );

    provider.at_the_keyboard(Person::new("sub-ann", "Ann@Example.com", "Ann Lee"));
    let browser = app.browser();
    let back = sign_in_through(&browser, "?next=%2Faccount").await;
    assert_eq!(back.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&back), "/account");
    assert!(browser.page("/account").await.contains("ann@example.com"));
    let ann = member(&app, "ann@example.com").await.expect("a new member");
    assert_eq!(
        (ann.role(), ann.display_name.as_str()),
        (Role::User, "Ann Lee")
    );
    assert_eq!(ann.provider_subject.as_deref(), Some("sub-ann"));
    assert!(ann.password_never_set() && ann.provider_confirmed_at.is_some());

    let created = app.audit_events("member.created").await;
    assert!(
        created[0].details.contains("first sign-in via Acme SSO"),
        "{}",
        created[0].details
    );
    let succeeded = app.audit_events("sign_in.succeeded").await;
    assert!(succeeded[0].details.contains("via Acme SSO"));

    // Again, from another browser: the same member.
    let again = app.browser();
    assert_eq!(
        sign_in_through(&again, "").await.status(),
        StatusCode::SEE_OTHER
    );
    assert!(signed_in(&again).await);
    assert_eq!(app.audit_events("member.created").await.len(), 1);

    let members = admin.page("/admin/members").await;
    assert!(
        members.contains("Acme SSO") && members.contains("confirmed"),
        "{members}"
    );
    assert!(
        !members.contains("Invited: password not set"),
        "a provider's member needs none"
    );
}

async fn an_existing_member_is_linked_once_by_verified_email(app: TestApp) {
    let (app, provider, admin) = with_provider(app, |_| {}).await;
    let bo = app
        .create_user("bo@example.com", ADMIN_PASSWORD, Role::User)
        .await;

    provider.at_the_keyboard(Person::new("sub-bo", "bo@example.com", "Bo"));
    let browser = app.browser();
    assert_eq!(
        sign_in_through(&browser, "").await.status(),
        StatusCode::SEE_OTHER
    );
    let linked = member(&app, "bo@example.com").await.unwrap();
    assert_eq!(
        (linked.id, linked.provider_subject.as_deref()),
        (bo.id, Some("sub-bo"))
    );
    assert_eq!(app.audit_events("member.linked_to_provider").await.len(), 1);

    // The provider's address for Bo changes: still Bo, by the subject.
    provider.at_the_keyboard(Person::new("sub-bo", "robert@example.com", "Bo"));
    let later = app.browser();
    assert_eq!(
        sign_in_through(&later, "").await.status(),
        StatusCode::SEE_OTHER
    );
    assert!(signed_in(&later).await);
    assert!(member(&app, "robert@example.com").await.is_none());

    // Someone else at the provider claiming Bo's address: refused, Bo untouched.
    provider.at_the_keyboard(Person::new("sub-mallory", "bo@example.com", "Mallory"));
    let mallory = app.browser();
    let refused = sign_in_through(&mallory, "").await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused.text().await.unwrap().contains("already linked"));
    assert!(!signed_in(&mallory).await);
    assert_eq!(
        member(&app, "bo@example.com")
            .await
            .unwrap()
            .provider_subject
            .as_deref(),
        Some("sub-bo")
    );
    assert!(failures(&app)
        .await
        .iter()
        .any(|d| d.contains("linked to another account")));

    // An admin's verified address at the provider does not make anyone that admin here.
    provider.at_the_keyboard(Person::new("sub-helpdesk", ADMIN_EMAIL, "Ada"));
    let helpdesk = app.browser();
    let refused = sign_in_through(&helpdesk, "").await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let page = refused.text().await.unwrap();
    assert!(page.contains("account is not linked to the identity provider by email address alone"));
    assert!(!signed_in(&helpdesk).await);
    assert!(member(&app, ADMIN_EMAIL)
        .await
        .unwrap()
        .provider_subject
        .is_none());

    // Bo's password still works (passwords are on), and the members page says both.
    assert_eq!(
        app.browser()
            .sign_in("bo@example.com", ADMIN_PASSWORD)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    assert!(admin
        .page("/admin/members")
        .await
        .contains("Password, Acme SSO"));
}

async fn a_configured_claim_makes_a_new_member_an_admin(app: TestApp) {
    let (app, provider, _) = with_provider(app, |settings| {
        settings.oidc_admin_claim = Some("groups".into());
        settings.oidc_admin_value = Some("tokendesk-admins".into());
    })
    .await;
    let mut cy = Person::new("sub-cy", "cy@example.com", "Cy");
    cy.groups = vec!["engineering".into(), "tokendesk-admins".into()];
    provider.at_the_keyboard(cy);
    let browser = app.browser();
    assert_eq!(
        sign_in_through(&browser, "").await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        member(&app, "cy@example.com").await.unwrap().role(),
        Role::Admin
    );
    assert_eq!(browser.get("/admin/members").await.status(), StatusCode::OK);

    let mut dee = Person::new("sub-dee", "dee@example.com", "Dee");
    dee.groups = vec!["tokendesk-admins-not".into()];
    provider.at_the_keyboard(dee);
    assert_eq!(
        sign_in_through(&app.browser(), "").await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        member(&app, "dee@example.com").await.unwrap().role(),
        Role::User
    );
}

async fn a_wrong_state_a_replayed_or_foreign_answer_signs_no_one_in(app: TestApp) {
    let (app, provider, _) = with_provider(app, |_| {}).await;
    provider.at_the_keyboard(Person::new("sub-eve", "eve@example.com", "Eve"));

    // The state changed on the way back.
    let browser = app.browser();
    let answer = answer_of(&browser, "").await;
    let (before, state) = answer.split_once("state=").unwrap();
    let forged = format!("{before}state=x{state}");
    let refused = browser.client.get(&forged).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(refused
        .text()
        .await
        .unwrap()
        .contains("does not belong to this sign-in"));
    // The sign-in was used up by that: its real answer no longer signs in either.
    let late = browser.client.get(&answer).send().await.unwrap();
    assert_eq!(late.status(), StatusCode::BAD_REQUEST);
    assert!(!signed_in(&browser).await);

    // An answer meant for one browser, opened in another (login CSRF): nothing to match it.
    let victim = app.browser();
    let answer = answer_of(&app.browser(), "").await;
    let refused = victim.client.get(&answer).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(refused
        .text()
        .await
        .unwrap()
        .contains("not started in this browser"));
    assert!(!signed_in(&victim).await);

    // A good answer, replayed after it signed in: refused, the first sign-in stands.
    let browser = app.browser();
    let answer = answer_of(&browser, "").await;
    assert_eq!(
        browser.client.get(&answer).send().await.unwrap().status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        browser.client.get(&answer).send().await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    assert!(signed_in(&browser).await);
    assert_eq!(app.audit_events("member.created").await.len(), 1);
    assert_eq!(failures(&app).await.len(), 4, "{:?}", failures(&app).await);
}

async fn id_tokens_with_a_wrong_nonce_expiry_key_or_audience_are_refused(app: TestApp) {
    let (app, provider, _) = with_provider(app, |_| {}).await;
    provider.at_the_keyboard(Person::new("sub-fay", "fay@example.com", "Fay"));
    for minting in [
        Minting::WrongNonce,
        Minting::Expired,
        Minting::WrongKey,
        Minting::WrongAudience,
    ] {
        provider.mint(minting);
        let browser = app.browser();
        let refused = sign_in_through(&browser, "").await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{minting:?}");
        let page = refused.text().await.unwrap();
        assert!(
            page.contains("could not be verified"),
            "{minting:?}: {page}"
        );
        assert!(!signed_in(&browser).await, "{minting:?}");
    }
    assert!(member(&app, "fay@example.com").await.is_none());
    let failed = failures(&app).await;
    assert_eq!(failed.len(), 4);
    assert!(
        failed.iter().all(|d| d.contains("ID token not verified")),
        "{failed:?}"
    );

    provider.mint(Minting::Honest);
    assert_eq!(
        sign_in_through(&app.browser(), "").await.status(),
        StatusCode::SEE_OTHER
    );
}

async fn an_unverified_email_neither_makes_nor_links_a_member(app: TestApp) {
    let (app, provider, _) = with_provider(app, |_| {}).await;
    let mut gus = Person::new("sub-gus", "gus@example.com", "Gus");
    gus.email_verified = false;
    provider.at_the_keyboard(gus);
    let refused = sign_in_through(&app.browser(), "").await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused
        .text()
        .await
        .unwrap()
        .contains("verified email address"));
    assert!(member(&app, "gus@example.com").await.is_none());

    // Nor does it take over an existing member's account.
    let mut not_ada = Person::new("sub-not-ada", ADMIN_EMAIL, "Ada?");
    not_ada.email_verified = false;
    provider.at_the_keyboard(not_ada);
    let browser = app.browser();
    assert_eq!(
        sign_in_through(&browser, "").await.status(),
        StatusCode::FORBIDDEN
    );
    assert!(!signed_in(&browser).await);
    assert!(member(&app, ADMIN_EMAIL)
        .await
        .unwrap()
        .provider_subject
        .is_none());
    assert_eq!(failures(&app).await.len(), 2);
}

async fn the_provider_down_or_refusing_gives_a_clear_page_never_a_500(app: TestApp) {
    let (app, provider, _) = with_provider(app, |_| {}).await;
    provider.at_the_keyboard(Person::new("sub-hal", "hal@example.com", "Hal"));

    // A code the provider no longer honours (expired).
    let browser = app.browser();
    let answer = answer_of(&browser, "").await;
    provider.expire_codes();
    let refused = browser.client.get(&answer).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(refused
        .text()
        .await
        .unwrap()
        .contains("did not accept the sign-in: invalid_grant"));

    // The provider says no (the person cancelled at it).
    let browser = app.browser();
    let answer = answer_of(&browser, "").await;
    let (callback, query) = answer.split_once('?').unwrap();
    let state = query.split('&').find(|p| p.starts_with("state=")).unwrap();
    let cancelled = format!("{callback}?error=access_denied&{state}");
    let refused = browser.client.get(&cancelled).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(refused.text().await.unwrap().contains("access_denied"));

    // Down between the start and the answer, then down at the start.
    let browser = app.browser();
    let answer = answer_of(&browser, "").await;
    provider.stop().await;
    let down = browser.client.get(&answer).send().await.unwrap();
    assert_eq!(down.status(), StatusCode::BAD_GATEWAY);
    assert!(down.text().await.unwrap().contains("cannot be reached"));
    let app = app
        .respawn_with(|config| config.identity_provider = provider.settings())
        .await;
    app.setup_admin().await;
    let start = app.browser().get("/sign-in/sso").await;
    assert_eq!(start.status(), StatusCode::BAD_GATEWAY);
    assert!(start.text().await.unwrap().contains("cannot be reached"));
    assert!(failures(&app).await[0].contains("provider unreachable"));
    // Passwords still sign in meanwhile.
    assert_eq!(
        app.browser()
            .sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
}

async fn with_passwords_off_only_the_break_glass_admin_signs_in_with_one(app: TestApp) {
    let (app, provider, _) = with_provider(app, |settings| {
        settings.password_sign_in = false;
        settings.break_glass_admin = Some(ADMIN_EMAIL.into());
    })
    .await;
    let page = app.browser().page("/sign-in").await;
    assert!(page.contains("Break-glass admin"), "{page}");
    app.create_user("ivy@example.com", ADMIN_PASSWORD, Role::User)
        .await;
    let ivy = app.browser();
    let refused = ivy.sign_in("ivy@example.com", ADMIN_PASSWORD).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused
        .text()
        .await
        .unwrap()
        .contains("Sign in with Acme SSO"));
    assert!(!signed_in(&ivy).await);
    assert!(failures(&app).await[0].contains("password sign-in is off"));
    let ada = app.browser();
    assert_eq!(
        ada.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    assert!(signed_in(&ada).await);
    // Ivy signs in through the provider instead.
    provider.at_the_keyboard(Person::new("sub-ivy", "ivy@example.com", "Ivy"));
    assert_eq!(
        sign_in_through(&ivy, "").await.status(),
        StatusCode::SEE_OTHER
    );
    assert!(signed_in(&ivy).await);
}

async fn a_deactivated_member_is_refused_by_the_provider_route_too(app: TestApp) {
    let (app, provider, _) = with_provider(app, |_| {}).await;
    provider.at_the_keyboard(Person::new("sub-jo", "jo@example.com", "Jo"));
    let browser = app.browser();
    assert_eq!(
        sign_in_through(&browser, "").await.status(),
        StatusCode::SEE_OTHER
    );
    let jo = member(&app, "jo@example.com").await.unwrap();
    app.set_member(jo.id, Role::User, false).await;
    assert!(!signed_in(&browser).await);
    let refused = sign_in_through(&app.browser(), "").await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused.text().await.unwrap().contains("deactivated"));
    assert!(failures(&app).await[0].contains("account deactivated"));
}

async fn a_first_sign_in_from_two_browsers_at_once_makes_one_member(app: TestApp) {
    let (app, provider, _) = with_provider(app, |_| {}).await;
    provider.at_the_keyboard(Person::new("sub-kai", "kai@example.com", "Kai"));
    let mut answers = Vec::new();
    for _ in 0..6 {
        let browser = app.browser();
        let answer = answer_of(&browser, "").await;
        answers.push((browser, answer));
    }
    let backs = futures_util::future::join_all(
        answers
            .iter()
            .map(|(browser, answer)| browser.client.get(answer).send()),
    )
    .await;
    for back in backs {
        assert_eq!(back.unwrap().status(), StatusCode::SEE_OTHER);
    }
    assert_eq!(app.audit_events("member.created").await.len(), 1);
    assert_eq!(app.audit_events("sign_in.succeeded").await.len(), 6);
}

/// A subject is unique within its issuer only: the same `sub` at another provider (the issuer
/// setting changed, or a second instance pointed elsewhere) is someone else.
async fn a_subject_at_another_issuer_is_someone_else(app: TestApp) {
    let (app, first, _) = with_provider(app, |_| {}).await;
    first.at_the_keyboard(Person::new("42", "mia@example.com", "Mia"));
    assert_eq!(
        sign_in_through(&app.browser(), "").await.status(),
        StatusCode::SEE_OTHER
    );

    let second = Provider::start().await;
    let settings = second.settings();
    let elsewhere = app
        .another_instance(|config| config.identity_provider = settings)
        .await;
    second.at_the_keyboard(Person::new("42", "noa@example.com", "Noa"));
    let browser = Browser::at(&elsewhere, Default::default());
    assert_eq!(
        sign_in_through(&browser, "").await.status(),
        StatusCode::SEE_OTHER
    );
    let page = browser.page("/account").await;
    assert!(
        page.contains("noa@example.com") && !page.contains("mia@example.com"),
        "{page}"
    );
    let noa = member(&app, "noa@example.com")
        .await
        .expect("a member of her own");
    assert_eq!(noa.provider_subject.as_deref(), Some("42"));
    assert_eq!(noa.provider_issuer.as_deref(), Some(second.issuer.as_str()));
}

/// The provider's keys are kept for minutes; one it rotates in and signs with at once is read
/// then (once), not after the keys are next read.
async fn a_key_the_provider_rotates_in_is_read_when_it_first_signs(app: TestApp) {
    let (app, provider, _) = with_provider(app, |_| {}).await;
    provider.at_the_keyboard(Person::new("sub-ola", "ola@example.com", "Ola"));
    assert_eq!(
        sign_in_through(&app.browser(), "").await.status(),
        StatusCode::SEE_OTHER
    );
    provider.rotate_keys();
    let browser = app.browser();
    assert_eq!(
        sign_in_through(&browser, "").await.status(),
        StatusCode::SEE_OTHER
    );
    assert!(signed_in(&browser).await);
    // A token signed by a key it does not publish is still refused.
    provider.mint(Minting::WrongKey);
    let refused = sign_in_through(&app.browser(), "").await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
}
