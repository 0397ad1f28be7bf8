//! What a person does, click by click.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokendesk::domain::Role;

use crate::backend_tests;
use crate::harness::{run, Browser};
use crate::helpers::TestApp;
use crate::nginx::{port_of, Nginx};

backend_tests!(
    first_run_to_a_used_and_revoked_token,
    the_form_shows_errors_then_succeeds,
    the_token_is_revealed_once,
    an_admin_finds_revokes_and_deactivates,
    the_new_token_form_works_from_the_keyboard,
    an_application_token_outlives_the_maintainer_who_made_it,
    a_rotation_overlaps_and_an_allowlist_refuses_another_address,
    a_new_address_is_flagged_and_a_token_narrowed_to_what_it_uses,
    a_member_signs_in_through_the_identity_provider,
);

const PASSWORD: &str = "correct-horse-battery";

async fn sign_in(browser: &Browser, email: &str) {
    browser.visit("/sign-in").await;
    browser.fill("#email", email).await;
    browser.fill("#password", PASSWORD).await;
    browser.submit("form[action='/sign-in'] button").await;
    assert_eq!(browser.path().await, "/developer/access-tokens");
}

async fn api_status(base: &str, token: &str) -> StatusCode {
    api_status_from(base, "127.0.0.1", token).await
}

async fn create_token(browser: &Browser, name: &str, scopes: &[&str]) -> String {
    browser.visit("/developer/access-tokens/new").await;
    browser.fill("#name", name).await;
    for scope in scopes {
        browser
            .click(&format!("#scope-{}", scope.replace(':', "-")))
            .await;
    }
    browser.submit("#create-token").await;
    assert_eq!(browser.path().await, "/developer/access-tokens/reveal");
    browser.value("#token-value").await
}

async fn first_run_to_a_used_and_revoked_token(app: TestApp) {
    let base = app.address.clone();
    run("first-run", &app.address, move |journey| async move {
        let b = journey.browser().await;
        b.visit("/").await;
        assert_eq!(b.path().await, "/setup");
        b.fill("#display_name", "Ada Lovelace").await;
        b.fill("#email", "ada@example.com").await;
        b.fill("#password", PASSWORD).await;
        b.fill("#password_confirm", PASSWORD).await;
        b.submit("form[action='/setup'] button").await;
        assert_eq!(b.path().await, "/developer/access-tokens");

        // Sign out from the avatar menu, and back in.
        b.click(".account-menu summary").await;
        b.submit(".menu-button").await;
        assert_eq!(b.path().await, "/sign-in");
        sign_in(&b, "ada@example.com").await;
        assert!(b.text("main").await.contains("No access tokens yet"));

        b.click(".empty-state a.button-primary").await;
        b.axe().await;
        assert_eq!(b.path().await, "/developer/access-tokens/new");
        assert_eq!(b.value("#expires_in").await, "30", "30 days by default");
        b.fill("#name", "CI deploys").await;
        b.click("#scope-license-read").await;
        b.click("#scope-tag-read").await;
        b.submit("#create-token").await;
        assert_eq!(b.path().await, "/developer/access-tokens/reveal");
        assert!(b.text("main").await.contains("It will not be shown again"));
        let token = b.value("#token-value").await;
        assert!(token.starts_with("tdk_") && token.len() == 42);

        // Copy: the token ends up on the clipboard, or at least selected for Ctrl+C.
        b.click("[data-copy-target]").await;
        // The clipboard answers asynchronously.
        let status = b.text_once_set("#copy-status").await;
        assert!(status == "Copied to the clipboard." || status == "Press Ctrl+C to copy.", "{status}");
        let selected = b.script("const f = document.getElementById('token-value'); return document.activeElement === f && f.selectionStart === 0 && f.selectionEnd === f.value.length").await;
        assert_eq!(selected, serde_json::json!(true), "the token is selected");

        assert_eq!(api_status(&base, &token).await, StatusCode::OK);
        let started = Instant::now();
        loop {
            b.visit("/developer/access-tokens").await;
            let last_used = b.text("td.last-used").await;
            if !last_used.contains("Never") {
                assert!(last_used.contains("just now"), "{last_used}");
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "Last used still says Never");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }

        b.click("a[aria-label='Revoke CI deploys']").await;
        b.axe().await;
        b.fill("#confirm", "delete").await;
        b.submit(".button-danger").await;
        assert!(b.text("main").await.contains("Type DELETE, in capital letters"));
        assert_eq!(api_status(&base, &token).await, StatusCode::OK, "not revoked yet");
        b.fill("#confirm", "DELETE").await;
        b.submit(".button-danger").await;
        assert_eq!(b.path().await, "/developer/access-tokens");
        assert!(b.text("main").await.contains("was revoked"));
        assert_eq!(api_status(&base, &token).await, StatusCode::UNAUTHORIZED);
        b.visit("/developer/access-tokens?tab=revoked").await;
        assert!(b.text("main").await.contains("CI deploys"));
    })
    .await;
}

async fn the_form_shows_errors_then_succeeds(app: TestApp) {
    app.create_user("grace@example.com", PASSWORD, Role::User)
        .await;
    run("validation", &app.address, move |journey| async move {
        let b = journey.browser().await;
        sign_in(&b, "grace@example.com").await;
        b.visit("/developer/access-tokens/new").await;
        b.submit("#create-token").await;
        let main = b.text("main").await;
        assert!(main.contains("Enter a name."), "{main}");
        assert!(main.contains("Choose at least one scope."));
        assert!(b.html().await.contains("aria-invalid=\"true\""));
        // The admin-only scopes are there, but cannot be ticked.
        let disabled = b
            .script("return document.getElementById('scope-license-write').disabled")
            .await;
        assert_eq!(disabled, serde_json::json!(true));
        b.fill("#name", "reports").await;
        b.click("#scope-analytics-read").await;
        b.submit("#create-token").await;
        assert_eq!(b.path().await, "/developer/access-tokens/reveal");
    })
    .await;
}

async fn the_token_is_revealed_once(app: TestApp) {
    app.create_user("grace@example.com", PASSWORD, Role::User)
        .await;
    run("reveal-once", &app.address, move |journey| async move {
        let b = journey.browser().await;
        sign_in(&b, "grace@example.com").await;
        let token = create_token(&b, "once", &["tag:read"]).await;
        b.client.refresh().await.unwrap();
        assert_eq!(
            b.path().await,
            "/developer/access-tokens",
            "a reload shows no token"
        );
        assert!(b.text("main").await.contains("A token is shown only once"));
        assert!(!b.html().await.contains(&token));
        b.client.back().await.unwrap();
        assert!(
            !b.html().await.contains(&token),
            "going back shows no token"
        );
        b.visit("/developer/access-tokens/reveal").await;
        assert!(
            !b.html().await.contains(&token),
            "nor does reopening the URL"
        );
    })
    .await;
}

async fn an_admin_finds_revokes_and_deactivates(app: TestApp) {
    app.create_user("ada@example.com", PASSWORD, Role::Admin)
        .await;
    let base = app.address.clone();
    run("admin", &app.address, move |journey| async move {
        let admin = journey.browser().await;
        sign_in(&admin, "ada@example.com").await;
        admin.visit("/admin/members/new").await;
        admin.fill("#display_name", "Grace Hopper").await;
        admin.fill("#email", "grace@example.com").await;
        admin.click("input[name=method][value=password]").await;
        admin.fill("#password", PASSWORD).await;
        admin.fill("#password_confirm", PASSWORD).await;
        admin.submit(".form-actions button").await;
        assert!(admin
            .text("main")
            .await
            .contains("Grace Hopper (grace@example.com) can now sign in."));

        let grace = journey.browser().await;
        sign_in(&grace, "grace@example.com").await;
        let token = create_token(&grace, "laptop", &["license:read"]).await;
        assert_eq!(api_status(&base, &token).await, StatusCode::OK);

        admin.visit("/admin/access-tokens?sort=last_used").await;
        assert!(admin.text("main").await.contains("laptop"));
        admin
            .click("a[aria-label='Revoke laptop of grace@example.com']")
            .await;
        admin.axe().await;
        admin.fill("#confirm", "DELETE").await;
        admin.submit(".button-danger").await;
        assert!(admin
            .text("main")
            .await
            .contains("Revoked “laptop” of grace@example.com."));
        assert_eq!(api_status(&base, &token).await, StatusCode::UNAUTHORIZED);

        for page in ["/admin/audit", "/admin/settings"] {
            admin.visit(page).await;
        }
        admin.visit("/admin/members").await;
        admin.click("a[aria-label='Deactivate Grace Hopper']").await;
        admin.axe().await;
        admin.submit(".button-danger").await;
        assert!(admin
            .text("main")
            .await
            .contains("Grace Hopper is deactivated"));
        grace.visit("/developer/access-tokens").await;
        assert!(
            grace.path().await.starts_with("/sign-in"),
            "her session ended"
        );
    })
    .await;
}

async fn the_new_token_form_works_from_the_keyboard(app: TestApp) {
    app.create_user("grace@example.com", PASSWORD, Role::User)
        .await;
    run("keyboard", &app.address, move |journey| async move {
        let b = journey.browser().await;
        sign_in(&b, "grace@example.com").await;
        b.visit("/developer/access-tokens/new").await;
        const TAB: &str = "\u{E004}";
        const ENTER: &str = "\u{E007}";
        let tab_to = |id: &'static str| {
            let b = &b;
            async move {
                for _ in 0..80 {
                    if b.focused_id().await == id {
                        return;
                    }
                    b.keys(TAB).await;
                }
                panic!("Tab never reached #{id}");
            }
        };
        b.script("document.activeElement && document.activeElement.blur(); window.focus();")
            .await;
        b.client
            .find(fantoccini::Locator::Css("body"))
            .await
            .unwrap()
            .send_keys(TAB)
            .await
            .unwrap();
        tab_to("name").await;
        b.keys("keyboard only").await;
        tab_to("scope-account-read").await;
        b.keys(" ").await;
        tab_to("create-token").await;
        b.keys(ENTER).await;
        let started = Instant::now();
        while b.path().await != "/developer/access-tokens/reveal" {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "Enter did not submit"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        b.axe().await;
        assert!(b.text("main").await.contains("keyboard only"));
    })
    .await;
}

/// A request through the real nginx gateway in front of a service, with `token` as a Bearer.
async fn through_gateway(nginx: &Nginx, token: &str) -> StatusCode {
    reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/service/nightly", nginx.port))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

async fn an_application_token_outlives_the_maintainer_who_made_it(app: TestApp) {
    for (email, role) in [
        ("ada@example.com", Role::Admin),
        ("kim@example.com", Role::User),
        ("linus@example.com", Role::User),
    ] {
        app.create_user(email, PASSWORD, role).await;
    }
    let nginx = Nginx::start(port_of(&app)).await;
    run("application", &app.address, move |journey| async move {
        // Ada creates the application and names two maintainers.
        let admin = journey.browser().await;
        sign_in(&admin, "ada@example.com").await;
        admin.visit("/admin/applications").await;
        admin.axe().await;
        admin.fill("#name", "Billing sync").await;
        admin
            .fill("#description", "Exports invoices every night")
            .await;
        admin
            .submit("form[action='/admin/applications'] button")
            .await;
        let page = admin.path().await;
        assert!(page.starts_with("/admin/applications/"), "{page}");
        for maintainer in ["kim@example.com", "linus@example.com"] {
            admin.fill("#email", maintainer).await;
            admin.submit("form[action$='/maintainers'] button").await;
            assert!(admin.text("main").await.contains("now maintains"));
        }
        admin.axe().await;

        // Kim, a user, gives it a token with a write scope her own role does not allow.
        let kim = journey.browser().await;
        sign_in(&kim, "kim@example.com").await;
        kim.visit("/developer/applications").await;
        kim.axe().await;
        kim.click("a.token-name").await;
        let tokens_page = kim.path().await;
        assert!(tokens_page.ends_with("/tokens"), "{tokens_page}");
        assert!(kim.text("main").await.contains("No application tokens yet"));
        kim.click(".page-header a.button-primary").await;
        kim.axe().await;
        kim.fill("#name", "nightly export").await;
        kim.click("#scope-license-write").await;
        kim.submit("#create-token").await;
        assert_eq!(kim.path().await, format!("{tokens_page}/reveal"));
        let token = kim.value("#token-value").await;
        assert!(token.starts_with("tda_") && token.len() == 42, "{token}");
        assert_eq!(through_gateway(&nginx, &token).await, StatusCode::OK);

        // Kim leaves: the token she made keeps working.
        admin.visit("/admin/members").await;
        admin.click("a[aria-label='Deactivate kim']").await;
        admin.submit(".button-danger").await;
        assert_eq!(
            through_gateway(&nginx, &token).await,
            StatusCode::OK,
            "the application's token survives its maker"
        );

        // Linus, the other maintainer, revokes it.
        let linus = journey.browser().await;
        sign_in(&linus, "linus@example.com").await;
        linus.visit(&tokens_page).await;
        assert!(linus.text("main").await.contains("nightly export"));
        linus.click("a[aria-label='Revoke nightly export']").await;
        linus.axe().await;
        linus.fill("#confirm", "DELETE").await;
        linus.submit(".button-danger").await;
        assert!(linus.text("main").await.contains("was revoked"));
        assert_eq!(
            through_gateway(&nginx, &token).await,
            StatusCode::UNAUTHORIZED
        );
    })
    .await;
}

/// `GET /api/v1/me` with `token`, the connection coming from `source` (any 127.x reaches the
/// server).
async fn api_status_from(base: &str, source: &str, token: &str) -> StatusCode {
    crate::helpers::client_from(source)
        .get(format!("{base}/api/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

async fn a_rotation_overlaps_and_an_allowlist_refuses_another_address(app: TestApp) {
    app.create_user("grace@example.com", PASSWORD, Role::User)
        .await;
    let base = app.address.clone();
    run(
        "overlap-allowlist",
        &app.address,
        move |journey| async move {
            let b = journey.browser().await;
            sign_in(&b, "grace@example.com").await;
            let old = create_token(&b, "deploy", &["tag:read"]).await;

            // Regenerate, keeping the old secret working for an hour.
            b.visit("/developer/access-tokens").await;
            b.click("a[aria-label='Regenerate deploy']").await;
            b.axe().await;
            b.script(
                "const s = document.getElementById('overlap'); s.value = '1h'; return s.value",
            )
            .await;
            b.submit("form[action$='/regenerate'] button[type=submit]")
                .await;
            assert_eq!(b.path().await, "/developer/access-tokens/reveal");
            assert!(b
                .text("main")
                .await
                .contains("The previous secret keeps working until"));
            let new = b.value("#token-value").await;
            assert_ne!(new, old);
            assert_eq!(
                api_status(&base, &old).await,
                StatusCode::OK,
                "the old secret still works"
            );
            assert_eq!(api_status(&base, &new).await, StatusCode::OK);

            b.visit("/developer/access-tokens").await;
            let row = b.text("td.cell-name").await;
            assert!(row.contains("Previous secret ends in"), "{row}");
            b.click("a.token-name").await;
            b.axe().await;
            assert!(b.text("main").await.contains("Previous secret still works"));
            b.click("a[href$='/end-overlap']").await;
            b.axe().await;
            assert!(b
                .text("main")
                .await
                .contains("Stop the previous secret now?"));
            b.submit("form[action$='/end-overlap'] button").await;
            assert!(b.text("main").await.contains("stopped working"));
            assert!(!b.text("main").await.contains("Previous secret still works"));
            assert_eq!(
                api_status(&base, &old).await,
                StatusCode::UNAUTHORIZED,
                "ended at once"
            );
            assert_eq!(api_status(&base, &new).await, StatusCode::OK);

            // A token that may be used from 127.0.0.2 only.
            b.visit("/developer/access-tokens/new").await;
            b.fill("#name", "pinned").await;
            b.click("#scope-tag-read").await;
            b.fill("#allowed_addresses", "127.0.0.2\n10.0.0.1/8").await;
            b.submit("#create-token").await;
            assert!(b
                .text("#allowed_addresses-error")
                .await
                .contains("did you mean 10.0.0.0/8"));
            b.fill("#allowed_addresses", "127.0.0.2").await;
            b.submit("#create-token").await;
            assert_eq!(b.path().await, "/developer/access-tokens/reveal");
            let pinned = b.value("#token-value").await;
            assert_eq!(
                api_status_from(&base, "127.0.0.2", &pinned).await,
                StatusCode::OK
            );
            assert_eq!(
                api_status_from(&base, "127.0.0.1", &pinned).await,
                StatusCode::FORBIDDEN,
                "refused from another address"
            );
            b.visit("/developer/access-tokens").await;
            assert!(b.text("main").await.contains("Only from 127.0.0.2"));
        },
    )
    .await;
}

/// The gateway check for `scope`, the connection coming from `source`.
async fn gateway_status_from(base: &str, source: &str, token: &str, scope: &str) -> StatusCode {
    crate::helpers::client_from(source)
        .get(format!("{base}/auth/verify?scope={scope}"))
        .header("x-auth-token", token)
        .send()
        .await
        .unwrap()
        .status()
}

/// Reloads `path` until its main text contains `text` (uses are written every 0.3 s here).
async fn until_shown(b: &Browser, path: &str, text: &str) -> String {
    let started = Instant::now();
    loop {
        b.visit(path).await;
        let main = b.text("main").await;
        if main.contains(text) {
            return main;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{path} never showed {text:?}: {main}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn a_new_address_is_flagged_and_a_token_narrowed_to_what_it_uses(app: TestApp) {
    app.create_user("grace@example.com", PASSWORD, Role::User)
        .await;
    let base = app.address.clone();
    run(
        "new-address-narrow",
        &app.address,
        move |journey| async move {
            let b = journey.browser().await;
            sign_in(&b, "grace@example.com").await;
            let token =
                create_token(&b, "deploy", &["tag:read", "tag:write", "license:read"]).await;

            // Its first use, from 127.0.0.1, through a gateway asking for tag:read: no news.
            assert_eq!(
                gateway_status_from(&base, "127.0.0.1", &token, "tag:read").await,
                StatusCode::NO_CONTENT
            );
            until_shown(&b, "/developer/access-tokens", "just now").await;
            assert!(!b.text("main").await.contains("New address"));

            // Then from 127.0.0.2: the row is flagged.
            assert_eq!(
                api_status_from(&base, "127.0.0.2", &token).await,
                StatusCode::OK
            );
            let list = until_shown(&b, "/developer/access-tokens", "New address").await;
            assert!(list.contains("first use from 127.0.0.2"), "{list}");
            b.axe().await;

            // Its page says what happened; the owner recognises it and dismisses it.
            b.click("a.token-name").await;
            b.axe().await;
            let page = b.text("main").await;
            assert!(page.contains("Used from a new address"), "{page}");
            assert!(page.contains("127.0.0.2"));
            assert!(page.contains("Usage"));
            b.submit("form[action$='/dismiss-new-address'] button")
                .await;
            let page = b.text("main").await;
            assert!(page.contains("Dismissed"), "{page}");
            assert!(!page.contains("Used from a new address"));

            // tag:read was exercised; license:read never was.
            assert!(page.contains("last exercised"), "{page}");
            assert!(page.contains("not exercised yet"), "{page}");
            b.click("a[href$='/narrow']").await;
            b.axe().await;
            let confirm = b.text("main").await;
            assert!(confirm.contains("Remove 1 scope"), "{confirm}");
            b.submit("form[action$='/narrow'] button[type=submit]")
                .await;
            let page = b.text("main").await;
            assert!(page.contains("no longer holds"), "{page}");
            assert!(!page.contains("Narrow to what is used"));
            assert_eq!(
                gateway_status_from(&base, "127.0.0.1", &token, "license:read").await,
                StatusCode::FORBIDDEN,
                "a removed scope is refused at once"
            );
            assert_eq!(
                gateway_status_from(&base, "127.0.0.1", &token, "tag:read").await,
                StatusCode::NO_CONTENT
            );
        },
    )
    .await;
}

/// Sign-in through the company's identity provider (a real OpenID Connect provider the tests
/// run): the button, the round trip, the new member on the Members page; axe on each page.
async fn a_member_signs_in_through_the_identity_provider(app: TestApp) {
    use crate::identity_provider::{Person, Provider};
    let provider = Provider::start().await;
    let settings = provider.settings();
    let app = app
        .respawn_with(|config| config.identity_provider = settings)
        .await;
    app.create_user("ada@example.com", PASSWORD, Role::Admin)
        .await;
    provider.at_the_keyboard(Person::new("sub-ann", "ann@example.com", "Ann Lee"));
    run(
        "identity provider",
        &app.address,
        move |journey| async move {
            let ann = journey.browser().await;
            ann.visit("/sign-in").await;
            assert!(ann.text("main").await.contains("Sign in with Acme SSO"));
            // The provider signs her in (the tests play the person) and sends her back.
            ann.submit("a[href='/sign-in/sso']").await;
            assert_eq!(ann.path().await, "/developer/access-tokens");
            assert!(ann.text("main").await.contains("Access Tokens"));
            ann.visit("/account").await;
            assert!(ann.text("main").await.contains("ann@example.com"));

            let admin = journey.browser().await;
            sign_in(&admin, "ada@example.com").await;
            admin.visit("/admin/members").await;
            let members = admin.text("main").await;
            assert!(
                members.contains("Ann Lee") && members.contains("Acme SSO"),
                "{members}"
            );
        },
    )
    .await;
}
