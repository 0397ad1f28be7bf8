//! Application tokens attacked from outside (issue 17): through the same web pages as personal
//! tokens (another shelf's ids, odd spellings of ids, withdrawn rights, archived applications),
//! the one-time reveal, races with archiving and maintainer removal, look-alike names, names
//! through the gateway headers, the leaked-token search, and the policy on regenerate.

use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokendesk::accounts::applications as service;
use tokendesk::audit::Actor;
use tokendesk::domain::{ApplicationInput, Email, Role};

use crate::backend_tests;
use crate::helpers::{
    api_error, csrf_token, location, user_and_browser, Browser, TestApp, ADMIN_EMAIL,
};

backend_tests!(
    a_shelf_reaches_only_its_own_tokens_however_the_id_is_spelled,
    people_without_the_right_find_no_application_pages,
    an_application_tokens_secret_shows_once_and_only_on_its_own_shelf,
    archiving_while_tokens_are_made_and_regenerated_leaves_none_alive,
    a_maintainer_removed_mid_burst_regenerates_and_revokes_nothing_after,
    look_alike_application_names_are_one_name,
    application_names_reach_the_gateway_intact,
    the_leaked_token_search_finds_application_tokens_and_relabels_never_work,
    regenerating_keeps_an_application_token_within_todays_policy,
);

fn ada() -> Actor {
    Actor {
        user_id: 1,
        email: ADMIN_EMAIL.to_owned(),
        client_ip: "127.0.0.1".to_owned(),
    }
}

/// Ada creates an application through the service; its id.
async fn application(app: &TestApp, name: &str) -> i64 {
    let details = ApplicationInput {
        name: name.to_owned(),
        description: String::new(),
    };
    let details = details.parse().unwrap();
    service::create(&app.db, ada(), details).await.unwrap().id
}

async fn add_maintainer(app: &TestApp, application_id: i64, email: &str) {
    let email = Email::parse(email).unwrap();
    let added = service::add_maintainer(&app.db, ada(), application_id, email).await;
    assert!(added.unwrap(), "a new maintainer");
}

/// A 30-day token of the application, made in the store (arranging a test): id and secret.
async fn app_token(
    app: &TestApp,
    application_id: i64,
    name: &str,
    scopes: &[&str],
) -> (i64, String) {
    let request = tokendesk::domain::TokenRequest {
        name: name.to_owned(),
        expiry: tokendesk::domain::Expiry::At(
            chrono::Utc::now().naive_utc() + chrono::Duration::days(30),
        ),
        scopes: tokendesk::domain::ScopeSet::parse(scopes.iter().copied()).unwrap(),
        allowed_addresses: None,
    };
    let created = app
        .db
        .write(move |conn| {
            Ok(tokendesk::tokens::store::create(
                conn,
                tokendesk::tokens::TokenOwner::Application(application_id),
                1,
                &request,
            )
            .unwrap())
        })
        .await
        .unwrap();
    (created.token.id, created.secret.expose().to_owned())
}

/// `count` tokens of the application (`seed-0`, `seed-1`…); their ids.
async fn seed_tokens(app: &TestApp, application_id: i64, count: usize) -> Vec<i64> {
    let mut ids = Vec::new();
    for n in 0..count {
        let name = format!("seed-{n}");
        ids.push(app_token(app, application_id, &name, &["tag:read"]).await.0);
    }
    ids
}

/// Every stored token as (id, digest, revoked, regenerated): what a page must not have changed.
async fn token_rows(app: &TestApp) -> Vec<(i64, String, bool, bool)> {
    use diesel::prelude::*;
    use tokendesk::db::schema::personal_access_tokens as pat;
    app.db
        .run(|conn| {
            pat::table
                .order(pat::id.asc())
                .select((pat::id, pat::digest, pat::revoked_at, pat::regenerated_at))
                .load::<(
                    i64,
                    String,
                    Option<chrono::NaiveDateTime>,
                    Option<chrono::NaiveDateTime>,
                )>(conn)
        })
        .await
        .unwrap()
        .into_iter()
        .map(|(id, digest, revoked, regenerated)| {
            (id, digest, revoked.is_some(), regenerated.is_some())
        })
        .collect()
}

/// The application's tokens that still work: neither revoked nor expired.
async fn live_tokens_of(app: &TestApp, application_id: i64) -> i64 {
    use diesel::prelude::*;
    use tokendesk::db::schema::personal_access_tokens as pat;
    let now = chrono::Utc::now().naive_utc();
    app.db
        .run(move |conn| {
            pat::table
                .filter(pat::application_id.eq(application_id))
                .filter(pat::revoked_at.is_null())
                .filter(pat::expires_at.is_null().or(pat::expires_at.gt(now)))
                .count()
                .get_result(conn)
        })
        .await
        .unwrap()
}

/// Every page of a token on a shelf, sent as a person would (a POST with the session's CSRF
/// token and a filled-in form); the statuses.
async fn every_token_page(
    browser: &Browser,
    csrf: &str,
    token_path: &str,
) -> Vec<(String, StatusCode)> {
    let mut answers = Vec::new();
    for page in ["", "/revoke", "/regenerate"] {
        let path = format!("{token_path}{page}");
        answers.push((format!("GET {path}"), browser.get(&path).await.status()));
    }
    for (page, fields) in [
        ("/revoke", vec![("confirm", "DELETE")]),
        ("/regenerate", vec![("expires_in", "30")]),
    ] {
        let path = format!("{token_path}{page}");
        let mut all = vec![("csrf_token", csrf)];
        all.extend(fields);
        answers.push((
            format!("POST {path}"),
            browser.post(&path, &all).await.status(),
        ));
    }
    answers
}

/// The pages of a shelf that name no token, GET and POST.
async fn every_shelf_page(browser: &Browser, csrf: &str, base: &str) -> Vec<(String, StatusCode)> {
    let mut answers = Vec::new();
    for page in ["", "/new", "/reveal"] {
        let path = format!("{base}{page}");
        answers.push((format!("GET {path}"), browser.get(&path).await.status()));
    }
    let fields = [
        ("csrf_token", csrf),
        ("name", "sneaked"),
        ("expires_in", "30"),
        ("scopes", "tag:read"),
    ];
    answers.push((
        format!("POST {base}"),
        browser.post(base, &fields).await.status(),
    ));
    answers
}

/// POSTs `fields` to `path` (a future that owns what it sends, for bursts).
async fn post_owned(
    browser: Browser,
    path: String,
    fields: Vec<(&'static str, String)>,
) -> StatusCode {
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    browser.post(&path, &fields).await.status()
}

fn all_not_found(answers: &[(String, StatusCode)]) {
    for (what, status) in answers {
        assert_eq!(*status, StatusCode::NOT_FOUND, "{what}");
    }
}

async fn a_shelf_reaches_only_its_own_tokens_however_the_id_is_spelled(app: TestApp) {
    app.setup_admin().await;
    let billing = application(&app, "Billing").await;
    let payroll = application(&app, "Payroll").await;
    let (grace, browser) = user_and_browser(&app, "grace@example.com", Role::User).await;
    add_maintainer(&app, billing, "grace@example.com").await;
    let (billing_token, _) = app_token(&app, billing, "deploy", &["tag:read"]).await;
    let (payroll_token, _) = app_token(&app, payroll, "deploy", &["tag:read"]).await;
    let (personal, _) = app.token_for(grace.id, "laptop", &["tag:read"]).await;
    let (ada_personal, _) = app.token_for(1, "ada-laptop", &["tag:read"]).await;
    let before = token_rows(&app).await;
    let csrf = csrf_token(&browser.page("/developer/access-tokens").await);

    let mine = format!("/developer/applications/{billing}/tokens");
    let theirs = format!("/developer/applications/{payroll}/tokens");
    let mut answers = Vec::new();
    // Another application's token, a personal token (hers and someone else's) in her
    // application's path; her application's token on her personal shelf; the other application.
    for path in [
        format!("{mine}/{payroll_token}"),
        format!("{mine}/{personal}"),
        format!("{mine}/{ada_personal}"),
        format!("/developer/access-tokens/{billing_token}"),
        format!("/developer/access-tokens/{payroll_token}"),
        format!("{theirs}/{payroll_token}"),
        format!("{theirs}/{billing_token}"),
    ] {
        answers.extend(every_token_page(&browser, &csrf, &path).await);
    }
    // Odd spellings of the other application's token id, and of ids no token has.
    for odd in [
        format!("0{payroll_token}"),
        format!("+{payroll_token}"),
        format!("{payroll_token}.0"),
        format!("%3{payroll_token}"),
        format!("{payroll_token}%00"),
        format!("{payroll_token}%20"),
        "-1".to_owned(),
        "0".to_owned(),
        "9223372036854775807".to_owned(),
        "9223372036854775808".to_owned(),
        "99999999999999999999999999".to_owned(),
        "1e3".to_owned(),
        "0x1".to_owned(),
    ] {
        answers.extend(every_token_page(&browser, &csrf, &format!("{mine}/{odd}")).await);
    }
    // Odd spellings of the applications' ids.
    for odd_app in [
        format!("0{payroll}"),
        format!("+{payroll}"),
        format!("{payroll}.0"),
        "%3".to_owned() + &payroll.to_string(),
        "9223372036854775808".to_owned(),
        "-1".to_owned(),
    ] {
        let base = format!("/developer/applications/{odd_app}/tokens");
        answers.extend(every_shelf_page(&browser, &csrf, &base).await);
        answers.extend(every_token_page(&browser, &csrf, &format!("{base}/{payroll_token}")).await);
    }
    all_not_found(&answers);
    assert_eq!(
        token_rows(&app).await,
        before,
        "nothing was revoked or regenerated"
    );
    // Her own application's token answers, however its id is spelled, on her shelf only.
    for spelled in [billing_token.to_string(), format!("0{billing_token}")] {
        let page = browser.get(&format!("{mine}/{spelled}")).await;
        assert_eq!(page.status(), StatusCode::OK, "{spelled}");
    }
    println!(
        "{} requests at other shelves' tokens and odd ids: all 404, nothing changed",
        answers.len()
    );
}

async fn people_without_the_right_find_no_application_pages(app: TestApp) {
    let admin = app.setup_admin().await;
    let billing = application(&app, "Billing").await;
    let archived = application(&app, "Old billing").await;
    let (linus, linus_browser) = user_and_browser(&app, "linus@example.com", Role::User).await;
    let (_, bob) = user_and_browser(&app, "bob@example.com", Role::Admin).await;
    let (_, grace) = user_and_browser(&app, "grace@example.com", Role::User).await;
    add_maintainer(&app, billing, "linus@example.com").await;
    add_maintainer(&app, archived, "grace@example.com").await;
    let (billing_token, billing_secret) = app_token(&app, billing, "deploy", &["tag:read"]).await;
    let (archived_token, _) = app_token(&app, archived, "deploy", &["tag:read"]).await;
    // Each has opened a page (and so holds a CSRF token) while they still had the right.
    let linus_csrf = csrf_token(
        &linus_browser
            .page(&format!("/developer/applications/{billing}/tokens/new"))
            .await,
    );
    let bob_csrf = csrf_token(
        &bob.page(&format!("/developer/applications/{billing}/tokens/new"))
            .await,
    );
    let grace_csrf = csrf_token(
        &grace
            .page(&format!("/developer/applications/{archived}/tokens/new"))
            .await,
    );
    let ada_csrf = csrf_token(&admin.page("/developer/access-tokens").await);

    // Linus is removed as a maintainer; Bob is demoted; Old billing is archived.
    assert!(
        service::remove_maintainer(&app.db, ada(), billing, linus.id)
            .await
            .unwrap()
    );
    let path = "/admin/members/3/role";
    let demoted = admin
        .submit_form("/admin/members", path, &[("role", "user")])
        .await;
    assert_eq!(demoted.status(), StatusCode::SEE_OTHER, "Bob is demoted");
    service::archive(&app.db, ada(), archived).await.unwrap();
    let before = token_rows(&app).await;

    let billing_base = format!("/developer/applications/{billing}/tokens");
    let archived_base = format!("/developer/applications/{archived}/tokens");
    let mut answers = Vec::new();
    for (browser, csrf, base, token) in [
        (&linus_browser, &linus_csrf, &billing_base, billing_token),
        (&bob, &bob_csrf, &billing_base, billing_token),
        (&grace, &grace_csrf, &archived_base, archived_token),
        // An admin manages every live application, not an archived one.
        (&admin, &ada_csrf, &archived_base, archived_token),
    ] {
        answers.extend(every_shelf_page(browser, csrf, base).await);
        answers.extend(every_token_page(browser, csrf, &format!("{base}/{token}")).await);
    }
    all_not_found(&answers);
    assert_eq!(
        token_rows(&app).await,
        before,
        "nothing was revoked or regenerated"
    );
    assert_eq!(app.api().me(&billing_secret).await.status(), StatusCode::OK);

    // The admin pages, as a user holding a valid CSRF token: nothing changes.
    let admin_posts: [(String, Vec<(&str, &str)>); 5] = [
        ("/admin/applications".to_owned(), vec![("name", "Sneaky")]),
        (
            format!("/admin/applications/{billing}"),
            vec![("name", "Renamed")],
        ),
        (
            format!("/admin/applications/{billing}/maintainers"),
            vec![("email", "grace@example.com")],
        ),
        (
            format!("/admin/applications/{billing}/archive"),
            vec![("confirm", "DELETE")],
        ),
        (
            format!("/admin/applications/{billing}/maintainers/2/remove"),
            vec![("confirm", "DELETE")],
        ),
    ];
    for (path, fields) in admin_posts {
        for (browser, csrf) in [(&grace, &grace_csrf), (&bob, &bob_csrf)] {
            let mut all = vec![("csrf_token", csrf.as_str())];
            all.extend(fields.iter().copied());
            let status = browser.post(&path, &all).await.status();
            assert!(
                status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND,
                "POST {path}: {status}"
            );
        }
    }
    for path in [
        "/admin/applications".to_owned(),
        format!("/admin/applications/{billing}"),
        format!("/admin/applications/{billing}/archive"),
    ] {
        let status = grace.get(&path).await.status();
        assert!(
            status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND,
            "GET {path}: {status}"
        );
    }
    let listed = app
        .db
        .run(|conn| tokendesk::applications::list(conn, tokendesk::applications::Scope::All))
        .await
        .unwrap();
    let names: Vec<&str> = listed.iter().map(|l| l.application.name.as_str()).collect();
    assert_eq!(names, ["Billing"], "none made, renamed or archived");
    let maintainers = app
        .db
        .run(move |conn| tokendesk::applications::maintainers(conn, billing))
        .await
        .unwrap();
    assert!(maintainers.is_empty(), "no maintainer added");
}

/// The secret on a reveal page, of either kind.
fn shown_secret(html: &str) -> Option<String> {
    ["value=\"tdk_", "value=\"tda_"].iter().find_map(|marker| {
        let start = html.find(marker)? + "value=\"".len();
        let end = html[start..].find('"')? + start;
        Some(html[start..end].to_owned())
    })
}

/// Sends GET `path` and, while it redirects within the site, follows; the final response's
/// path and body.
async fn follow(browser: &Browser, path: &str) -> (String, StatusCode, String) {
    let mut path = path.to_owned();
    for _ in 0..5 {
        let response = browser.get(&path).await;
        if response.status() == StatusCode::SEE_OTHER {
            path = location(&response).to_owned();
            continue;
        }
        let status = response.status();
        return (path, status, response.text().await.unwrap());
    }
    panic!("too many redirects from {path}");
}

async fn an_application_tokens_secret_shows_once_and_only_on_its_own_shelf(app: TestApp) {
    app.setup_admin().await;
    let billing = application(&app, "Billing").await;
    let payroll = application(&app, "Payroll").await;
    let (_, grace) = user_and_browser(&app, "grace@example.com", Role::User).await;
    let (_, linus) = user_and_browser(&app, "linus@example.com", Role::User).await;
    for application in [billing, payroll] {
        add_maintainer(&app, application, "grace@example.com").await;
        add_maintainer(&app, application, "linus@example.com").await;
    }
    let billing_base = format!("/developer/applications/{billing}/tokens");
    let payroll_base = format!("/developer/applications/{payroll}/tokens");
    let fields = [
        ("name", "deploy"),
        ("expires_in", "30"),
        ("scopes", "tag:read"),
    ];
    let made = grace
        .submit_form(&format!("{billing_base}/new"), &billing_base, &fields)
        .await;
    assert_eq!(location(&made), format!("{billing_base}/reveal"));
    let copied_cookie = grace.cookie_header();

    // Another maintainer of the same application finds nothing on its reveal page.
    let (_, _, html) = follow(&linus, &format!("{billing_base}/reveal")).await;
    assert_eq!(
        shown_secret(&html),
        None,
        "Linus sees nothing of Grace's token"
    );

    // Grace on another shelf's reveal page: never Billing's secret under another name.
    for elsewhere in [
        format!("{payroll_base}/reveal"),
        "/developer/access-tokens/reveal".to_owned(),
    ] {
        let response = grace.get(&elsewhere).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{elsewhere}");
        assert_eq!(
            location(&response),
            format!("{billing_base}/reveal"),
            "{elsewhere} sends her to the token's own shelf"
        );
    }
    // On its own shelf, once.
    let html = grace.page(&format!("{billing_base}/reveal")).await;
    let secret = shown_secret(&html).expect("shown on Billing's reveal page");
    assert!(secret.starts_with("tda_"), "{secret}");
    assert!(
        html.contains("The application token<"),
        "labelled an application's"
    );
    assert!(
        html.contains(&format!(
            "href=\"{billing_base}\" title=\"Billing\">Billing</a>"
        )),
        "under Billing's name"
    );
    let (_, _, again) = follow(&grace, &format!("{billing_base}/reveal")).await;
    assert_eq!(shown_secret(&again), None, "not a second time");
    let copy = app.browser();
    let response = copy
        .client
        .get(copy.url(&format!("{billing_base}/reveal")))
        .header("cookie", &copied_cookie)
        .send()
        .await
        .unwrap();
    let body = response.text().await.unwrap();
    assert_eq!(shown_secret(&body), None, "nor to a copy of her cookie");

    // A personal token's reveal is not shown on an application's page either.
    let made = grace
        .submit_form(
            "/developer/access-tokens/new",
            "/developer/access-tokens",
            &[
                ("name", "laptop"),
                ("expires_in", "30"),
                ("scopes", "tag:read"),
            ],
        )
        .await;
    assert_eq!(location(&made), "/developer/access-tokens/reveal");
    let response = grace.get(&format!("{payroll_base}/reveal")).await;
    assert_eq!(location(&response), "/developer/access-tokens/reveal");
    let html = grace.page("/developer/access-tokens/reveal").await;
    let personal = shown_secret(&html).expect("shown on her own page");
    assert!(personal.starts_with("tdk_"));
    assert!(html.contains("Your personal access token"));
}

async fn archiving_while_tokens_are_made_and_regenerated_leaves_none_alive(app: TestApp) {
    let admin = app.setup_admin().await;
    let (grace, browser) = user_and_browser(&app, "grace@example.com", Role::User).await;
    let (_, graces) = app
        .token_for(
            grace.id,
            "apps",
            &["applicationToken:read", "applicationToken:write"],
        )
        .await;
    let csrf = csrf_token(&browser.page("/developer/access-tokens").await);
    let admin_csrf = csrf_token(&admin.page("/admin/applications").await);
    let mut refused = 0;
    for round in 0..4 {
        let id = application(&app, &format!("Round {round}")).await;
        add_maintainer(&app, id, "grace@example.com").await;
        let seeded = seed_tokens(&app, id, 4).await;
        let base = format!("/developer/applications/{id}/tokens");
        let api = app.api();
        let creates = (0..10).map(|n| {
            let url = format!("{}/api/v1/applications/{id}/tokens", app.address);
            let body =
                json!({"name": format!("made-{n}"), "expires_in": "30", "scopes": ["tag:read"]});
            let request = api.client.post(url).bearer_auth(&graces).json(&body);
            async move { request.send().await.unwrap().status() }
        });
        let web_creates = (0..4).map(|n| {
            let name = format!("page-{n}");
            let fields = vec![
                ("csrf_token", csrf.clone()),
                ("name", name),
                ("expires_in", "30".to_owned()),
                ("scopes", "tag:read".to_owned()),
            ];
            post_owned(browser.clone(), base.clone(), fields)
        });
        let regenerates = seeded.iter().map(|token| {
            let path = format!("{base}/{token}/regenerate");
            let fields = vec![
                ("csrf_token", csrf.clone()),
                ("expires_in", "30".to_owned()),
            ];
            post_owned(browser.clone(), path, fields)
        });
        let archive = async {
            let path = format!("/admin/applications/{id}/archive");
            let fields = [("csrf_token", admin_csrf.as_str()), ("confirm", "DELETE")];
            admin.post(&path, &fields).await.status()
        };
        let (a, b, c, archived) = tokio::join!(
            join_all(creates),
            join_all(web_creates),
            join_all(regenerates),
            archive
        );
        assert_eq!(archived, StatusCode::SEE_OTHER, "archived");
        for status in a.iter().chain(&b).chain(&c) {
            assert!(
                [
                    StatusCode::CREATED,
                    StatusCode::SEE_OTHER,
                    StatusCode::BAD_REQUEST,
                    StatusCode::NOT_FOUND,
                    StatusCode::FORBIDDEN,
                    StatusCode::UNPROCESSABLE_ENTITY,
                ]
                .contains(status),
                "no error: {status}"
            );
        }
        refused += a
            .iter()
            .chain(&b)
            .chain(&c)
            .filter(|s| s.is_client_error())
            .count();
        assert_eq!(
            live_tokens_of(&app, id).await,
            0,
            "round {round}: no live token remains"
        );
    }
    println!("4 archives against 18 token changes each: no live token remained; {refused} refused");
}

async fn a_maintainer_removed_mid_burst_regenerates_and_revokes_nothing_after(app: TestApp) {
    app.setup_admin().await;
    let billing = application(&app, "Billing").await;
    let (grace, browser) = user_and_browser(&app, "grace@example.com", Role::User).await;
    add_maintainer(&app, billing, "grace@example.com").await;
    let tokens = seed_tokens(&app, billing, 16).await;
    let csrf = csrf_token(&browser.page("/developer/access-tokens").await);
    let base = format!("/developer/applications/{billing}/tokens");
    let changes = tokens.iter().enumerate().map(|(n, token)| {
        let (path, fields) = if n % 2 == 0 {
            (
                format!("{base}/{token}/regenerate"),
                vec![
                    ("csrf_token", csrf.clone()),
                    ("expires_in", "30".to_owned()),
                ],
            )
        } else {
            (
                format!("{base}/{token}/revoke"),
                vec![
                    ("csrf_token", csrf.clone()),
                    ("confirm", "DELETE".to_owned()),
                ],
            )
        };
        post_owned(browser.clone(), path, fields)
    });
    let removal = async {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        service::remove_maintainer(&app.db, ada(), billing, grace.id)
            .await
            .unwrap()
    };
    let (statuses, removed) = tokio::join!(join_all(changes), removal);
    assert!(removed);
    for status in &statuses {
        assert!(
            [
                StatusCode::SEE_OTHER,
                StatusCode::NOT_FOUND,
                StatusCode::FORBIDDEN
            ]
            .contains(status),
            "no error: {status}"
        );
    }
    let done = statuses
        .iter()
        .filter(|s| **s == StatusCode::SEE_OTHER)
        .count();
    println!("16 changes racing a maintainer's removal: {done} done before it, the rest refused");
    let removed_at = app.audit_events("application.maintainer_removed").await[0].id;
    for action in ["application_token.regenerated", "application_token.revoked"] {
        for event in app.audit_events(action).await {
            assert!(
                event.id < removed_at,
                "{action} of token {:?} recorded after the removal",
                event.target_id
            );
        }
    }
}

async fn look_alike_application_names_are_one_name(app: TestApp) {
    let admin = app.setup_admin().await;
    let create = |name: &'static str| {
        let admin = admin.clone();
        async move {
            admin
                .submit_form(
                    "/admin/applications",
                    "/admin/applications",
                    &[("name", name)],
                )
                .await
                .status()
        }
    };
    assert_eq!(create("Billing").await, StatusCode::SEE_OTHER);
    assert_eq!(create("Café").await, StatusCode::SEE_OTHER);
    for same in [
        "BILLING",
        "  billing ",
        "\u{FF22}\u{FF49}\u{FF4C}\u{FF4C}\u{FF49}\u{FF4E}\u{FF47}", // fullwidth Ｂｉｌｌｉｎｇ
        "Cafe\u{301}",                                              // NFD
        "CAF\u{C9}",
        "Caf\u{FF45}\u{301}", // a fullwidth e with a combining acute
    ] {
        assert_eq!(
            create(same).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{same:?} is the name of an existing application"
        );
    }
    // Two admins at once, with spellings that differ only in width and case.
    for round in 0..6 {
        let names: [&'static str; 2] = match round % 2 {
            0 => ["Deploy", "\u{FF44}\u{FF45}\u{FF50}\u{FF4C}\u{FF4F}\u{FF59}"],
            _ => ["Nightly", "NIGHTLY"],
        };
        let statuses = join_all(names.map(&create)).await;
        let made = statuses
            .iter()
            .filter(|s| **s == StatusCode::SEE_OTHER)
            .count();
        let listed = app
            .db
            .run(|conn| tokendesk::applications::list(conn, tokendesk::applications::Scope::All))
            .await
            .unwrap();
        assert_eq!(made, 1, "round {round}: {statuses:?}");
        // Tidy up for the next round: archive what was made.
        for l in listed {
            if !["Billing", "Café"].contains(&l.application.name.as_str()) {
                service::archive(&app.db, ada(), l.application.id)
                    .await
                    .unwrap();
            }
        }
    }
    // Renaming onto a look-alike is refused too.
    let listed = app
        .db
        .run(|conn| tokendesk::applications::list(conn, tokendesk::applications::Scope::All))
        .await
        .unwrap();
    let cafe = listed
        .iter()
        .find(|l| l.application.name == "Café")
        .unwrap();
    let path = format!("/admin/applications/{}", cafe.application.id);
    let renamed = admin
        .submit_form(&path, &path, &[("name", "\u{FF42}illing")])
        .await;
    assert_eq!(renamed.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

/// `X-Auth-Application-Name` as the gateway receives it, decoded.
async fn gateway_name(app: &TestApp, secret: &str) -> String {
    let verified = app.api().verify("", &[("x-auth-token", secret)]).await;
    assert_eq!(verified.status(), StatusCode::NO_CONTENT);
    let raw = verified.headers()["x-auth-application-name"]
        .as_bytes()
        .to_vec();
    assert!(
        raw.iter().all(|b| (0x20..0x7f).contains(b)),
        "visible ASCII only: {raw:?}"
    );
    let raw = String::from_utf8(raw).unwrap();
    percent_encoding::percent_decode_str(&raw)
        .decode_utf8()
        .unwrap()
        .into_owned()
}

async fn application_names_reach_the_gateway_intact(app: TestApp) {
    app.setup_admin().await;
    let long = format!("{}é", "x".repeat(99));
    for name in [
        "Café ☕ billing",
        "100% \"quoted\" 'single' <b>&amp;</b>",
        "%41%0d%0aX-Auth-User-Id: 1",
        "تطبيق الفوترة",
        "a\\b;c,d",
        long.as_str(),
    ] {
        let id = application(&app, name).await;
        let (_, secret) = app_token(&app, id, "gw", &["tag:read"]).await;
        let stored = app
            .db
            .run(move |conn| tokendesk::applications::find(conn, id))
            .await
            .unwrap()
            .unwrap()
            .name;
        assert_eq!(gateway_name(&app, &secret).await, stored, "{name:?}");
        let me: Value = app.api().me(&secret).await.json().await.unwrap();
        assert_eq!(me["application"]["name"], stored.as_str());
        let verified = app.api().verify("", &[("x-auth-token", &secret)]).await;
        assert!(
            verified.headers().get("x-auth-user-id").is_none(),
            "{name:?}"
        );
    }
}

/// `token` with another kind's prefix and its own valid checksum: what a scanner or an attacker
/// relabelling it would send.
fn relabelled(token: &str, prefix: &str) -> String {
    const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let body = format!("{prefix}{}", &token[4..36]);
    let mut value = crc32fast::hash(body.as_bytes()) as u64;
    let mut check = [b'0'; 6];
    for slot in check.iter_mut().rev() {
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
    body + std::str::from_utf8(&check).unwrap()
}

async fn the_leaked_token_search_finds_application_tokens_and_relabels_never_work(app: TestApp) {
    let admin = app.setup_admin().await;
    let billing = application(&app, "Billing").await;
    let (_, leaked) = app_token(&app, billing, "leaked-deploy", &["tag:read"]).await;
    let (_, _other) = app_token(&app, billing, "innocent", &["tag:read"]).await;
    let (_, personal) = app.token_for(1, "ada-laptop", &["tag:read"]).await;
    let hint = format!("{}…{}", &leaked[..8], &leaked[38..]);
    for fragment in [
        leaked.clone(),
        format!("  {leaked}\n"),
        hint.clone(),
        leaked[..8].to_owned(),
        leaked[..20].to_owned(),
        format!("…{}", &leaked[38..]),
        leaked[30..].to_owned(),
    ] {
        let response = admin
            .submit_form(
                "/admin/access-tokens",
                "/admin/access-tokens/leaked",
                &[("fragment", &fragment)],
            )
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{fragment:?}");
        let results = location(&response).to_owned();
        assert!(
            !results.contains(&leaked[4..20]),
            "the address holds no secret: {results}"
        );
        let html = admin.page(&results).await;
        assert!(html.contains("leaked-deploy"), "{fragment:?} finds it");
        assert!(!html.contains("innocent"), "{fragment:?} finds only it");
        assert!(!html.contains("ada-laptop"), "{fragment:?} finds only it");
    }

    // Relabelled with a valid checksum, neither kind's secret is the other's.
    let api = app.api();
    for forged in [relabelled(&leaked, "tdk_"), relabelled(&personal, "tda_")] {
        let (status, code, _) = api_error(api.me(&forged).await).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNAUTHORIZED, "invalid_token")
        );
        let verified = api.verify("", &[("x-auth-token", &forged)]).await;
        assert_eq!(verified.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(api.me(&leaked).await.status(), StatusCode::OK);
}

async fn regenerating_keeps_an_application_token_within_todays_policy(app: TestApp) {
    let admin = app.setup_admin().await;
    let billing = application(&app, "Billing").await;
    let (id, secret) = app_token(&app, billing, "deploy", &["license:read", "tag:read"]).await;
    let base = format!("/developer/applications/{billing}/tokens");
    let regenerate = |expires_in: &'static str, expires_on: String| {
        let admin = admin.clone();
        let path = format!("{base}/{id}/regenerate");
        async move {
            admin
                .submit_form(
                    &path,
                    &path,
                    &[
                        ("expires_in", expires_in),
                        ("expires_on", expires_on.as_str()),
                    ],
                )
                .await
        }
    };
    // Beyond the application maximum (365 days by default), or never: refused.
    let far = (chrono::Utc::now() + chrono::Duration::days(400))
        .format("%Y-%m-%d")
        .to_string();
    for (choice, date) in [("never", String::new()), ("custom", far)] {
        let response = regenerate(choice, date).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{choice}"
        );
    }
    // The policy narrows: application tokens may hold tag:read only, and live 30 days.
    let fields = [
        ("max_lifetime_days", ""),
        ("default_expiry", "30"),
        ("max_active_tokens", "100"),
        ("application_max_lifetime_days", "30"),
        ("application_scope_rule", "chosen"),
        ("application_scopes", "tag:read"),
    ];
    let saved = admin
        .submit_form("/admin/settings", "/admin/settings", &fields)
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let me: Value = app.api().me(&secret).await.json().await.unwrap();
    assert_eq!(
        me["token"]["scopes"],
        json!(["tag:read"]),
        "narrowed at once"
    );
    // Regenerating it: refused while it holds what the policy no longer allows (its stored
    // scopes would come back if the policy widened), or for 90 days.
    for choice in ["30", "90"] {
        let response = regenerate(choice, String::new()).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{choice}"
        );
    }
    assert_eq!(
        app.api().me(&secret).await.status(),
        StatusCode::OK,
        "a refused regenerate leaves the old secret working"
    );
    // Through the API, the token may not rotate itself: it is no person's token.
    let rotated = app
        .api()
        .client
        .request(
            Method::POST,
            format!("{}/api/v1/personal-access-tokens/self/rotate", app.address),
        )
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    let (status, code, _) = api_error(rotated).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "personal_token_required")
    );
}
