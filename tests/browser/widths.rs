//! Every page at a phone's, a tablet's and a laptop's width, with the data a real organisation
//! has: 60 tokens, names and emails of 100 characters, 60 members. Each page must fit its
//! window, pass axe, and leave a screenshot in target/browser-artifacts/widths/ to look at.

use tokendesk::domain::{hash_password, Email, Role};
use tokendesk::users::{self, NewUser};

use crate::harness::{run, Browser};
use crate::helpers::{Backend, TestApp, TokenTimes};

const WIDTHS: [u32; 3] = [390, 768, 1280];
const PASSWORD: &str = "correct-horse-battery";

/// "Margaret Hamilton-Lovelace …" padded to exactly `len` characters, numbered.
fn long(prefix: &str, n: usize, len: usize) -> String {
    let head = format!("{prefix} {n:02} ");
    format!("{head}{}", "x".repeat(len - head.len()))
}

/// An address of 100 characters: a 64-character local part, the most an address may have.
fn long_email(n: usize) -> String {
    let local = format!("member{n:02}.{}", "l".repeat(64 - 9));
    let domain = format!("{}.example.com", "d".repeat(100 - 64 - 1 - 12));
    let email = format!("{local}@{domain}");
    assert_eq!(email.len(), 100);
    email
}

/// 60 members with long names and addresses (one password hash for all: hashing is slow on
/// purpose); the first is the admin who looks at the pages. Returns the admin's id and email.
async fn realistic_organisation(app: &TestApp) -> (i64, String) {
    let hash = hash_password(PASSWORD).unwrap();
    let mut admin = None;
    for n in 0..60 {
        let email = long_email(n);
        let name = long("Margaret Hamilton-Lovelace", n, 100);
        let role = if n == 0 { Role::Admin } else { Role::User };
        let hash = hash.clone();
        let parsed = Email::parse(&email).unwrap();
        let user = app
            .db
            .run(move |conn| {
                let user = users::create(
                    conn,
                    NewUser {
                        email: &parsed,
                        display_name: &name,
                        password_hash: Some(&hash),
                        role,
                    },
                )
                .expect("member created");
                // Some sign in through the identity provider too.
                if n % 4 == 1 {
                    users::link_provider(
                        conn,
                        user.id,
                        "https://login.example.com",
                        &format!("sub-{n}"),
                    )?;
                    users::confirm_by_provider(conn, user.id)?;
                }
                Ok(user)
            })
            .await
            .unwrap();
        admin.get_or_insert((user.id, email));
    }
    let (admin_id, email) = admin.unwrap();
    app.set_active_token_limit(1000).await;
    let scopes = ["license:read", "license:write", "tag:read", "webhook:write"];
    for n in 0..60 {
        let name = long(
            "nightly export of every licence for the billing team",
            n,
            100,
        );
        let (id, _) = app.token_for(admin_id, &name, &scopes[..1 + n % 4]).await;
        let times = TokenTimes {
            // Some made weeks ago and never used: within a week of going for being unused.
            created_at: (n % 5 == 1 && n % 3 != 0)
                .then(|| chrono::Utc::now().naive_utc() - chrono::Duration::days(25)),
            expires_at: Some(chrono::Utc::now().naive_utc() + chrono::Duration::days(n as i64 - 5)),
            last_used: (n % 3 == 0).then(|| {
                (
                    chrono::Utc::now().naive_utc() - chrono::Duration::hours(n as i64),
                    Some("2001:db8:ffff:ffff:ffff:ffff:ffff:fffe".to_owned()),
                )
            }),
            ..TokenTimes::default()
        };
        app.set_token_times(id, times).await;
    }
    rotated_and_pinned(app, admin_id).await;
    used_from_many_places(app, admin_id).await;
    // Tokens unused for 30 days are revoked: the list warns about those due within a week.
    app.db
        .write(|conn| {
            let mut policy = tokendesk::policy::load(conn)?;
            policy.revoke_unused_after_days = Some(30);
            tokendesk::policy::save(conn, &policy)
        })
        .await
        .unwrap();
    (admin_id, email)
}

/// The newest token rotated with a day's overlap and pinned to three addresses; the one
/// before pinned to long IPv6 ranges: what the list's second lines look like.
async fn rotated_and_pinned(app: &TestApp, admin_id: i64) {
    use tokendesk::domain::{AddressAllowlist, Expiry, Overlap};
    use tokendesk::tokens::{store, Renewal, Tab, TokenOwner};
    app.db
        .write(move |conn| {
            let owner = TokenOwner::Person(admin_id);
            let newest = store::owned_rows(conn, owner, Tab::Current, 0, 2)?;
            let lists = [
                "203.0.113.0/24, 198.51.100.7, 192.0.2.0/28",
                "2001:db8:ffff:ffff::/64, 2001:db8:aaaa:bbbb:cccc:dddd:eeee:0/112",
            ];
            for (n, (token, list)) in newest.iter().zip(lists).enumerate() {
                let renewal = Renewal {
                    expiry: Expiry::At(chrono::Utc::now().naive_utc() + chrono::Duration::days(30)),
                    overlap: if n == 0 {
                        Overlap::OneDay
                    } else {
                        Overlap::None
                    },
                    allowed_addresses: AddressAllowlist::parse(list).unwrap(),
                    replacing: None,
                };
                store::regenerate(conn, token, &renewal).unwrap();
            }
            Ok(())
        })
        .await
        .unwrap();
}

/// The five newest tokens used from many addresses and clients with long user agents, then
/// from a new address (flagged); some of their scopes exercised.
async fn used_from_many_places(app: &TestApp, admin_id: i64) {
    use tokendesk::domain::Scope;
    use tokendesk::tokens::{LastUsedRecorder, SecretUsed};
    let tokens = crate::helpers::stored_tokens(app, admin_id).await;
    let recorder = LastUsedRecorder::new(app.db.clone(), tokendesk::notifications::Outbox::Off);
    let now = chrono::Utc::now().naive_utc();
    let agent = |n: usize| {
        format!(
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/156.0.8078.73 Safari/537.36 deploy-pipeline-{n:02}-{}",
            "x".repeat(120)
        )
    };
    for token in tokens.iter().take(5) {
        for n in 0..22 {
            let at = now - chrono::Duration::minutes(90 - n as i64);
            let address = format!("2001:db8:ffff:ffff:ffff:ffff:ffff:{n:04x}");
            recorder.record(token.id, SecretUsed::Current, at, &address, &agent(n));
        }
        recorder.record_scope(token.id, "license:read".parse::<Scope>().unwrap(), now);
    }
    recorder.flush().unwrap();
    for token in tokens.iter().take(5) {
        recorder.record(token.id, SecretUsed::Current, now, "198.51.100.254", "");
    }
    recorder.flush().unwrap();
}

/// An application with a 100-character name and description, a maintainer with a long name,
/// and 60 tokens of 100-character names. Returns the application's id and one token's.
async fn busy_application(app: &TestApp, admin_id: i64) -> (i64, i64) {
    use tokendesk::domain::{Expiry, ScopeSet, TokenRequest};
    use tokendesk::tokens::{store, TokenOwner};
    let name = long(
        "Billing and invoicing export to the finance warehouse",
        0,
        100,
    );
    let description = long(
        "Runs every night from the CI pipeline of the finance team",
        0,
        500,
    );
    let application = app
        .db
        .run(move |conn| {
            let application =
                tokendesk::applications::insert(conn, &name, &description, admin_id).unwrap();
            tokendesk::applications::add_maintainer(conn, application.id, admin_id + 1, admin_id)
                .unwrap();
            let mut token_id = 0;
            for n in 0..60 {
                let request = TokenRequest {
                    name: long("deploy key of the nightly finance export job", n, 100),
                    expiry: Expiry::At(
                        chrono::Utc::now().naive_utc() + chrono::Duration::days(1 + n as i64),
                    ),
                    scopes: ScopeSet::parse(["license:read", "license:write"]).unwrap(),
                    allowed_addresses: None,
                };
                let owner = TokenOwner::Application(application.id);
                token_id = store::create(conn, owner, admin_id, &request)
                    .unwrap()
                    .token
                    .id;
            }
            Ok((application.id, token_id))
        })
        .await
        .unwrap();
    application
}

/// Sets the window so the page is `width` CSS pixels wide.
async fn resize(b: &Browser, width: u32) {
    b.client.set_window_size(width, 900).await.unwrap();
    let inner = b.script("return window.innerWidth").await;
    assert_eq!(
        inner.as_u64(),
        Some(u64::from(width)),
        "the window is {width} px wide"
    );
}

/// Opens `path` (axe runs), checks nothing is wider than the window, and keeps a screenshot.
async fn look_at(b: &Browser, label: &str, path: &str, width: u32) {
    b.visit(path).await;
    assert_fits(b, label, width).await;
}

async fn assert_fits(b: &Browser, label: &str, width: u32) {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-artifacts/widths");
    std::fs::create_dir_all(&dir).unwrap();
    let png = b.client.screenshot().await.unwrap();
    std::fs::write(dir.join(format!("{label}-{width}.png")), png).unwrap();
    // WIDTHS_FULL_PAGE=1 also keeps the whole page, below the fold, as {label}-{width}-full.png.
    if std::env::var_os("WIDTHS_FULL_PAGE").is_some() {
        let chrome = b
            .script("return window.outerHeight - window.innerHeight")
            .await;
        let page = b
            .script("return document.documentElement.scrollHeight")
            .await;
        let height = page.as_u64().unwrap().min(8000) + chrome.as_u64().unwrap_or(0);
        b.client
            .set_window_size(width, height as u32)
            .await
            .unwrap();
        let png = b.client.screenshot().await.unwrap();
        std::fs::write(dir.join(format!("{label}-{width}-full.png")), png).unwrap();
        b.client.set_window_size(width, 900).await.unwrap();
    }
    let scroll = b
        .script("return document.documentElement.scrollWidth")
        .await;
    if scroll.as_u64().unwrap() > u64::from(width) {
        // Name the outermost elements that stick out, to say what to fix.
        let culprits = b
            .script(
                "const w = window.innerWidth; return [...document.querySelectorAll('body *')]
                   .filter(e => e.getBoundingClientRect().right > w + 1
                     && !(e.parentElement && e.parentElement.getBoundingClientRect().right > w + 1))
                   .slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right));",
            )
            .await;
        panic!("{label} at {width} px is {scroll} px wide: {culprits}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_fits_a_phone_a_tablet_and_a_laptop() {
    // An identity provider with a long name: its button on the sign-in page, its name on the
    // Members page.
    let provider = crate::identity_provider::Provider::start().await;
    let mut settings = provider.settings();
    settings.oidc_provider_name =
        "Contoso Corporation Microsoft Entra ID for every employee".into();
    let app = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.identity_provider = settings
    })
    .await;
    let (admin_id, email) = realistic_organisation(&app).await;
    let token_id = crate::helpers::stored_tokens(&app, admin_id).await[0].id;
    let member_id = admin_id + 1;
    let (application, app_token) = busy_application(&app, admin_id).await;
    run("widths", &app.address, move |journey| async move {
        let b = journey.browser().await;
        b.visit("/sign-in").await;
        for width in WIDTHS {
            resize(&b, width).await;
            assert_fits(&b, "sign-in", width).await;
        }
        b.fill("#email", &email).await;
        b.fill("#password", PASSWORD).await;
        b.submit("form[action='/sign-in'] button").await;
        let pages = [
            ("tokens", "/developer/access-tokens".to_owned()),
            ("tokens-page-2", "/developer/access-tokens?page=2".to_owned()),
            ("tokens-expired", "/developer/access-tokens?tab=expired".to_owned()),
            ("token", format!("/developer/access-tokens/{token_id}")),
            ("new-token", "/developer/access-tokens/new".to_owned()),
            ("regenerate", format!("/developer/access-tokens/{token_id}/regenerate")),
            ("revoke", format!("/developer/access-tokens/{token_id}/revoke")),
            ("members", "/admin/members".to_owned()),
            ("sign-in-refused", "/sign-in/sso/callback?code=x&state=y".to_owned()),
            ("member-new", "/admin/members/new".to_owned()),
            ("member-status", format!("/admin/members/{member_id}/deactivate")),
            ("inventory", "/admin/access-tokens".to_owned()),
            ("inventory-revoke", format!("/admin/access-tokens/{token_id}/revoke")),
            ("bulk-revoke", "/admin/access-tokens/bulk-revoke?name=nightly".to_owned()),
            ("audit", "/admin/audit".to_owned()),
            ("settings", "/admin/settings".to_owned()),
            ("account", "/account".to_owned()),
            ("member-link", format!("/admin/members/{member_id}/password-link")),
            ("applications", "/developer/applications".to_owned()),
            ("application-tokens", format!("/developer/applications/{application}/tokens")),
            ("application-token", format!("/developer/applications/{application}/tokens/{app_token}")),
            ("application-new-token", format!("/developer/applications/{application}/tokens/new")),
            ("application-regenerate", format!("/developer/applications/{application}/tokens/{app_token}/regenerate")),
            ("application-revoke", format!("/developer/applications/{application}/tokens/{app_token}/revoke")),
            ("admin-applications", "/admin/applications".to_owned()),
            ("admin-application", format!("/admin/applications/{application}")),
            ("admin-application-archive", format!("/admin/applications/{application}/archive")),
            ("inventory-applications", "/admin/access-tokens?kind=application".to_owned()),
            ("token-narrow", format!("/developer/access-tokens/{token_id}/narrow")),
            ("admin-token", format!("/admin/access-tokens/{token_id}")),
        ];
        for width in WIDTHS {
            resize(&b, width).await;
            for (label, path) in &pages {
                look_at(&b, label, path, width).await;
            }
            // A refused form, its error summary within the page.
            b.visit("/developer/access-tokens/new").await;
            b.submit("#create-token").await;
            assert_fits(&b, "new-token-refused", width).await;
            // The one-time reveal: the whole secret in view.
            b.fill("#name", &format!("reveal at {width}")).await;
            b.click("#scope-tag-read").await;
            b.submit("#create-token").await;
            assert_fits(&b, "reveal", width).await;
            let sizes = b
                .script("const f = document.getElementById('token-value'); return [f.scrollWidth, f.clientWidth]")
                .await;
            assert!(
                sizes[0].as_u64() <= sizes[1].as_u64(),
                "the whole token shows at {width} px: text {} px in a {} px field",
                sizes[0],
                sizes[1]
            );
            // An application's reveal, its long name in the heading and the field's label.
            b.visit(&format!("/developer/applications/{application}/tokens/new")).await;
            b.fill("#name", &format!("application reveal at {width}")).await;
            b.click("#scope-tag-read").await;
            b.submit("#create-token").await;
            assert_fits(&b, "application-reveal", width).await;
            // The details form refused: an empty name.
            b.visit(&format!("/admin/applications/{application}")).await;
            b.fill("#name", "").await;
            b.submit(&format!("form[action='/admin/applications/{application}'] button")).await;
            assert_fits(&b, "admin-application-refused", width).await;
        }
        // On a phone the navigation folds behind Menu, and opens from it.
        resize(&b, 390).await;
        b.visit("/developer/access-tokens").await;
        let nav_shown = "return getComputedStyle(document.getElementById('sidenav')).display !== 'none'";
        assert_eq!(b.script(nav_shown).await.as_bool(), Some(false), "folded");
        b.click(".nav-toggle").await;
        assert_eq!(b.script(nav_shown).await.as_bool(), Some(true), "opened by Menu");
        assert_fits(&b, "menu-open", 390).await;
    })
    .await;
}

async fn sign_in(b: &Browser, email: &str) {
    b.visit("/sign-in").await;
    b.fill("#email", email).await;
    b.fill("#password", PASSWORD).await;
    b.submit("form[action='/sign-in'] button").await;
}

/// The application pages with nothing on them yet, and the New application form refused: an
/// organisation with no application, a member who maintains none, an application with no token
/// and no maintainer, an empty name and a taken one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_empty_states_and_refusals_fit() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.create_user("ada@example.com", PASSWORD, Role::Admin)
        .await;
    app.create_user("kim@example.com", PASSWORD, Role::User)
        .await;
    let name = long(
        "Billing and invoicing export to the finance warehouse",
        0,
        100,
    );
    run("widths-empty", &app.address, move |journey| async move {
        let admin = journey.browser().await;
        sign_in(&admin, "ada@example.com").await;
        let kim = journey.browser().await;
        sign_in(&kim, "kim@example.com").await;
        let create = "form[action='/admin/applications'] button";
        for width in WIDTHS {
            resize(&admin, width).await;
            look_at(
                &admin,
                "applications-none",
                "/developer/applications",
                width,
            )
            .await;
            look_at(
                &admin,
                "admin-applications-none",
                "/admin/applications",
                width,
            )
            .await;
            admin.submit(create).await;
            assert_fits(&admin, "admin-applications-refused-empty", width).await;
            resize(&kim, width).await;
            look_at(
                &kim,
                "applications-maintains-none",
                "/developer/applications",
                width,
            )
            .await;
        }
        admin.visit("/admin/applications").await;
        admin.fill("#name", &name).await;
        admin.submit(create).await;
        let page = admin.path().await;
        let id = page.rsplit('/').next().unwrap().to_owned();
        assert!(id.parse::<i64>().is_ok(), "created: {page}");
        for width in WIDTHS {
            resize(&admin, width).await;
            let tokens = format!("/developer/applications/{id}/tokens");
            look_at(&admin, "application-tokens-none", &tokens, width).await;
            let details = format!("/admin/applications/{id}");
            look_at(&admin, "admin-application-new", &details, width).await;
            admin.visit("/admin/applications").await;
            admin.click("#new-application > summary").await;
            admin.fill("#name", &name).await;
            admin.submit(create).await;
            assert_fits(&admin, "admin-applications-refused-taken", width).await;
        }
    })
    .await;
}
