use chrono::{Duration, Utc};
use reqwest::StatusCode;
use tokendesk::domain::Role;

use crate::backend_tests;
use crate::helpers::{
    api_error, csrf_token, days_ago, location, user_and_browser, Browser, TestApp, TokenTimes,
};

backend_tests!(
    a_user_gets_403_on_every_admin_url,
    admins_add_a_member_with_a_password,
    the_member_form_says_what_is_wrong_per_field_and_refuses_a_taken_email,
    a_member_added_by_one_time_link_sets_a_password_once,
    the_members_list_searches_and_filters,
    demotion_applies_at_once_to_session_and_tokens,
    the_last_active_admin_cannot_be_demoted_or_deactivated,
    deactivation_ends_sessions_and_tokens_reactivation_revives_no_revoked_token,
    the_policy_form_refuses_a_default_beyond_its_maximum,
    a_maximum_lifetime_binds_the_new_token_form_until_lifted,
    a_maximum_lifetime_binds_the_api,
    the_inventory_sorts_never_used_and_oldest_use_first,
    the_inventory_filters_by_status_use_owner_scope_and_name,
    a_leaked_token_is_found_whole_or_in_part_and_not_repeated,
    the_inventory_pages_past_fifty,
    admins_revoke_anyones_token_after_typing_delete,
    admins_revoke_in_bulk_only_the_selection_they_confirmed,
    the_inventory_exports_csv,
    the_audit_trail_filters_and_exports_without_secrets,
);

const ADMIN_GETS: &[&str] = &[
    "/admin/members",
    "/admin/members/new",
    "/admin/members/1/deactivate",
    "/admin/members/1/reactivate",
    "/admin/members/1/password-link",
    "/admin/access-tokens",
    "/admin/access-tokens.csv",
    "/admin/access-tokens/bulk-revoke",
    "/admin/access-tokens/1/revoke",
    "/admin/settings",
    "/admin/audit",
    "/admin/audit.csv",
];
const ADMIN_POSTS: &[&str] = &[
    "/admin/members",
    "/admin/members/1/role",
    "/admin/members/1/deactivate",
    "/admin/members/1/reactivate",
    "/admin/members/1/password-link",
    "/admin/access-tokens/bulk-revoke",
    "/admin/access-tokens/1/revoke",
    "/admin/settings",
];

async fn a_user_gets_403_on_every_admin_url(app: TestApp) {
    app.setup_admin().await;
    let (_, user) = user_and_browser(&app, "grace@example.com", Role::User).await;
    let csrf = csrf_token(&user.page("/developer/access-tokens").await);
    assert!(
        !user
            .page("/developer/access-tokens")
            .await
            .contains("/admin/members"),
        "no Admin nav"
    );
    for path in ADMIN_GETS {
        let response = user.get(path).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "GET {path}");
        assert!(
            response.text().await.unwrap().contains("Access denied"),
            "styled 403 for {path}"
        );
    }
    for path in ADMIN_POSTS {
        let fields = [
            ("csrf_token", csrf.as_str()),
            ("role", "admin"),
            ("confirm", "DELETE"),
            ("max_lifetime_days", "1"),
        ];
        assert_eq!(
            user.post(path, &fields).await.status(),
            StatusCode::FORBIDDEN,
            "POST {path}"
        );
    }
    // Still a user; nothing changed.
    assert_eq!(
        user.get("/admin/members").await.status(),
        StatusCode::FORBIDDEN
    );
    // Signed out, admin pages lead to sign-in.
    let anonymous = app.browser();
    assert_eq!(
        anonymous.get("/admin/members").await.status(),
        StatusCode::SEE_OTHER
    );
}

async fn add_member(admin: &Browser, fields: &[(&str, &str)]) -> reqwest::Response {
    admin
        .submit_form("/admin/members/new", "/admin/members", fields)
        .await
}

async fn admins_add_a_member_with_a_password(app: TestApp) {
    let admin = app.setup_admin().await;
    let response = add_member(
        &admin,
        &[
            ("display_name", "Grace Hopper"),
            ("email", "grace@example.com"),
            ("role", "user"),
            ("method", "password"),
            ("password", "cobol-forever-59"),
            ("password_confirm", "cobol-forever-59"),
        ],
    )
    .await;
    assert_eq!(location(&response), "/admin/members");
    assert!(admin
        .page("/admin/members")
        .await
        .contains("Grace Hopper (grace@example.com) can now sign in."));
    let grace = app.browser();
    let signed_in = grace.sign_in("grace@example.com", "cobol-forever-59").await;
    assert_eq!(location(&signed_in), "/developer/access-tokens");
    assert!(app
        .audit_actions()
        .await
        .contains(&"member.created".to_owned()));
}

async fn the_member_form_says_what_is_wrong_per_field_and_refuses_a_taken_email(app: TestApp) {
    let admin = app.setup_admin().await;
    app.create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let response = add_member(
        &admin,
        &[
            ("display_name", ""),
            ("email", "grace@example.com"),
            ("role", "user"),
            ("method", "password"),
            ("password", "short"),
            ("password_confirm", "other"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    for message in [
        "Enter a name.",
        "Use at least 10 characters.",
        "The passwords do not match.",
    ] {
        assert!(html.contains(message), "{message}");
    }
    let response = add_member(
        &admin,
        &[
            ("display_name", "Again"),
            ("email", "GRACE@example.com"),
            ("role", "user"),
            ("method", "link"),
        ],
    )
    .await;
    let html = response.text().await.unwrap();
    assert!(html.contains("A member with this email already exists."));
}

async fn a_member_added_by_one_time_link_sets_a_password_once(app: TestApp) {
    let admin = app.setup_admin().await;
    let fields = [
        ("display_name", "Linus"),
        ("email", "linus@example.com"),
        ("role", "admin"),
        ("method", "link"),
    ];
    let response = add_member(&admin, &fields).await;
    assert_eq!(location(&response), "/admin/members/link");
    let link = admin.set_password_link_shown().await;
    assert!(
        !link.contains("tdk_"),
        "the link is not shaped like an access token"
    );
    let again = admin.get("/admin/members/link").await;
    assert_eq!(location(&again), "/admin/members", "shown once");

    let linus = app.browser();
    let no_password_yet = linus.sign_in("linus@example.com", "anything-at-all").await;
    assert_eq!(no_password_yet.status(), StatusCode::UNAUTHORIZED);
    let fields = [
        ("password", "kernel-hacker-91"),
        ("password_confirm", "kernel-hacker-91"),
    ];
    let response = linus.submit_form(&link, &link, &fields).await;
    assert_eq!(location(&response), "/sign-in");
    let html = linus.page("/sign-in").await;
    assert!(html.contains("Your password is set."));
    let signed_in = linus.sign_in("linus@example.com", "kernel-hacker-91").await;
    assert_eq!(location(&signed_in), "/developer/access-tokens");
    assert!(
        linus.page("/admin/members").await.contains("Members"),
        "linus is an admin"
    );
    // Used once, the link is gone; so is a made-up one.
    for dead in [link.as_str(), "/set-password/nonsense"] {
        let response = app.browser().get(dead).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let html = response.text().await.unwrap();
        assert!(html.contains("This link cannot be used"));
    }
    let actions = app.audit_actions().await;
    for action in ["member.created", "password_link.created", "password.set"] {
        assert!(actions.contains(&action.to_owned()), "{action}");
    }
}

async fn the_members_list_searches_and_filters(app: TestApp) {
    let admin = app.setup_admin().await;
    let grace = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    app.create_user("linus@example.com", "linus-password-1", Role::Admin)
        .await;
    app.token_for(grace.id, "one", &["tag:read"]).await;
    app.token_for(grace.id, "two", &["tag:read"]).await;
    let html = admin.page("/admin/members").await;
    for who in ["Ada Lovelace", "grace@example.com", "linus@example.com"] {
        assert!(html.contains(who), "{who}");
    }
    let row = &html[html.find("grace@example.com").unwrap()..];
    assert!(
        row[..row.find("</tr>").unwrap()].contains("<td data-label=\"Active tokens\">2</td>"),
        "two active tokens"
    );

    let only = |html: &str, present: &[&str], absent: &[&str]| {
        for p in present {
            assert!(html.contains(p), "{p} missing");
        }
        for a in absent {
            assert!(!html.contains(a), "{a} present");
        }
    };
    only(
        &admin.page("/admin/members?q=GRA").await,
        &["grace@example.com"],
        &["linus@example.com"],
    );
    only(
        &admin.page("/admin/members?role=admin").await,
        &["linus@example.com", "ada@example.com"],
        &["grace@example.com"],
    );
    app.set_member(grace.id, Role::User, false).await;
    only(
        &admin.page("/admin/members?status=deactivated").await,
        &["grace@example.com"],
        &["linus@example.com"],
    );
    assert!(admin
        .page("/admin/members?q=nobody")
        .await
        .contains("No members match"));
}

async fn change_role(admin: &Browser, user_id: i64, role: &str) -> reqwest::Response {
    admin
        .submit_form(
            "/admin/members",
            &format!("/admin/members/{user_id}/role"),
            &[("role", role)],
        )
        .await
}

async fn demotion_applies_at_once_to_session_and_tokens(app: TestApp) {
    let admin = app.setup_admin().await;
    let (linus, linus_browser) = user_and_browser(&app, "linus@example.com", Role::Admin).await;
    let (_, token) = app
        .token_for(linus.id, "ops", &["license:write", "license:read"])
        .await;
    let api = app.api();
    assert_eq!(
        api.verify("?scope=license:write", &[("x-auth-token", &token)])
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        linus_browser.get("/admin/members").await.status(),
        StatusCode::OK
    );

    change_role(&admin, linus.id, "user").await;
    assert!(admin
        .page("/admin/members")
        .await
        .contains("linus is now a user."));
    assert_eq!(
        linus_browser.get("/admin/members").await.status(),
        StatusCode::FORBIDDEN,
        "the session lost admin at once"
    );
    assert_eq!(
        api.verify("?scope=license:write", &[("x-auth-token", &token)])
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        api.verify("?scope=license:read", &[("x-auth-token", &token)])
            .await
            .status(),
        StatusCode::NO_CONTENT
    );

    change_role(&admin, linus.id, "admin").await;
    assert_eq!(
        linus_browser.get("/admin/members").await.status(),
        StatusCode::OK
    );
    assert!(app
        .audit_actions()
        .await
        .contains(&"member.role_changed".to_owned()));
}

async fn the_last_active_admin_cannot_be_demoted_or_deactivated(app: TestApp) {
    let admin = app.setup_admin().await;
    let ada_id = 1;
    let ada = app
        .db
        .run(|c| {
            tokendesk::users::find_by_email(
                c,
                &tokendesk::domain::Email::parse("ada@example.com").unwrap(),
            )
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ada.id > 0, ada_id > 0);

    change_role(&admin, ada.id, "user").await;
    assert!(admin
        .page("/admin/members")
        .await
        .contains("Ada Lovelace is the last active admin."));
    assert_eq!(
        admin.get("/admin/members").await.status(),
        StatusCode::OK,
        "still admin"
    );

    let path = format!("/admin/members/{}/deactivate", ada.id);
    admin.submit_form(&path, &path, &[]).await;
    assert!(admin
        .page("/admin/members")
        .await
        .contains("You cannot deactivate your own account."));

    // With a second admin, Ada may step down; then Linus is the last one.
    let (linus, linus_browser) = user_and_browser(&app, "linus@example.com", Role::Admin).await;
    change_role(&admin, ada.id, "user").await;
    assert_eq!(
        admin.get("/admin/members").await.status(),
        StatusCode::FORBIDDEN,
        "Ada stepped down"
    );
    change_role(&linus_browser, linus.id, "user").await;
    assert!(linus_browser
        .page("/admin/members")
        .await
        .contains("linus is the last active admin."));
}

async fn deactivation_ends_sessions_and_tokens_reactivation_revives_no_revoked_token(app: TestApp) {
    let admin = app.setup_admin().await;
    let (grace, grace_browser) = user_and_browser(&app, "grace@example.com", Role::User).await;
    let (_, live) = app.token_for(grace.id, "live", &["tag:read"]).await;
    let (revoked_id, revoked) = app.token_for(grace.id, "revoked", &["tag:read"]).await;
    app.db
        .write(move |c| tokendesk::tokens::store::revoke(c, revoked_id, 1))
        .await
        .unwrap();
    let api = app.api();
    assert_eq!(api.me(&live).await.status(), StatusCode::OK);

    let path = format!("/admin/members/{}/deactivate", grace.id);
    assert!(admin.page(&path).await.contains("signed out everywhere"));
    let response = admin.submit_form(&path, &path, &[]).await;
    assert_eq!(location(&response), "/admin/members");
    let (status, _, message) = api_error(api.me(&live).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(message.contains("deactivated"));
    let response = grace_browser.get("/developer/access-tokens").await;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "her session is over"
    );
    assert!(location(&response).starts_with("/sign-in"));
    assert_eq!(
        app.browser()
            .sign_in("grace@example.com", "correct-horse-battery")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    let path = format!("/admin/members/{}/reactivate", grace.id);
    admin.submit_form(&path, &path, &[]).await;
    assert_eq!(
        api.me(&live).await.status(),
        StatusCode::OK,
        "unrevoked tokens work again"
    );
    assert_eq!(
        api.me(&revoked).await.status(),
        StatusCode::UNAUTHORIZED,
        "revoked stays revoked"
    );
    let actions = app.audit_actions().await;
    assert!(
        actions.contains(&"member.deactivated".to_owned())
            && actions.contains(&"member.reactivated".to_owned())
    );
}

async fn the_policy_form_refuses_a_default_beyond_its_maximum(app: TestApp) {
    let admin = app.setup_admin().await;
    for (max, default, message) in [
        ("0", "30", "Enter a whole number of days from 1 to 3650"),
        ("abc", "30", "Enter a whole number of days"),
        (
            "60",
            "never",
            "The default must fit within the maximum lifetime.",
        ),
        (
            "60",
            "90",
            "The default must fit within the maximum lifetime.",
        ),
    ] {
        let response = admin.set_token_policy(max, default).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{max} {default}"
        );
        assert!(
            response.text().await.unwrap().contains(message),
            "{message}"
        );
    }
    assert_eq!(
        location(&admin.set_token_policy("60", "7").await),
        "/admin/settings"
    );
}

/// The page a New token form answers with, for these fields.
async fn new_token_answer(browser: &Browser, fields: &[(&str, &str)]) -> String {
    browser.submit_new_token(fields).await.text().await.unwrap()
}

async fn a_maximum_lifetime_binds_the_new_token_form_until_lifted(app: TestApp) {
    let admin = app.setup_admin().await;
    assert_eq!(
        location(&admin.set_token_policy("60", "7").await),
        "/admin/settings"
    );
    let form = admin.page("/developer/access-tokens/new").await;
    assert!(
        !form.contains("No expiration"),
        "no 'never' under a maximum"
    );
    assert!(!form.contains("value=\"90\""), "longer choices hidden");
    assert!(
        form.contains("value=\"7\" selected"),
        "the default is preselected"
    );
    assert!(form.contains("at most 60 days"));
    let never = [
        ("name", "x"),
        ("expires_in", "never"),
        ("scopes", "tag:read"),
    ];
    assert!(new_token_answer(&admin, &never)
        .await
        .contains("Your organisation requires tokens to expire within 60 days."));
    let far = (Utc::now() + Duration::days(100)).format("%Y-%m-%d");
    let far = far.to_string();
    let custom = [
        ("name", "x"),
        ("expires_in", "custom"),
        ("expires_on", &far),
        ("scopes", "tag:read"),
    ];
    assert!(new_token_answer(&admin, &custom)
        .await
        .contains("your organisation allows at most 60 days"));
    admin.create_token("fits", "60", &["tag:read"]).await;

    // Lifting the maximum brings "No expiration" back.
    admin.set_token_policy("", "30").await;
    let form = admin.page("/developer/access-tokens/new").await;
    assert!(form.contains("No expiration"));
    assert!(app
        .audit_actions()
        .await
        .contains(&"policy.changed".to_owned()));
}

async fn a_maximum_lifetime_binds_the_api(app: TestApp) {
    let admin = app.setup_admin().await;
    assert_eq!(
        location(&admin.set_token_policy("60", "7").await),
        "/admin/settings"
    );
    let (_, token) = app
        .token_for(1, "manager", &["personalAccessToken:write", "tag:read"])
        .await;
    let year = serde_json::json!({"name": "api", "expires_in": "365", "scopes": ["tag:read"]});
    let response = app
        .api()
        .client
        .post(format!("{}/api/v1/personal-access-tokens", app.address))
        .bearer_auth(&token)
        .json(&year)
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body["fields"]["expires_in"],
        "Your organisation requires tokens to expire within 60 days."
    );
}

/// The tokens of [`assortment`]: (id, name, secret).
struct Assortment(Vec<(i64, &'static str, String)>);

impl Assortment {
    fn id(&self, name: &str) -> i64 {
        self.0.iter().find(|(_, n, _)| *n == name).unwrap().0
    }

    fn secret(&self, name: &str) -> &str {
        &self.0.iter().find(|(_, n, _)| *n == name).unwrap().2
    }
}

/// Ada (admin) and Grace (user) with an assortment of tokens: fresh, stale (unused for 200
/// days), used yesterday from 10.2.2.2, never used in 100 days, expired and revoked. Long as
/// a table of six tokens is.
async fn assortment(app: &TestApp) -> Assortment {
    let grace = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let used = |days, ip: Option<&str>| Some((days_ago(days), ip.map(str::to_owned)));
    let none = TokenTimes::default;
    let mut made = Vec::new();
    for (owner, name, scopes, times) in [
        (
            1,
            "ada-fresh",
            &["tag:read"][..],
            TokenTimes {
                last_used: used(0, None),
                ..none()
            },
        ),
        (
            1,
            "ada-stale",
            &["license:write"][..],
            TokenTimes {
                created_at: Some(days_ago(400)),
                last_used: used(200, Some("10.1.1.1")),
                ..none()
            },
        ),
        (
            grace.id,
            "grace-used",
            &["license:read", "tag:read"][..],
            TokenTimes {
                last_used: used(1, Some("10.2.2.2")),
                ..none()
            },
        ),
        (
            grace.id,
            "grace-never",
            &["webhook:read"][..],
            TokenTimes {
                created_at: Some(days_ago(100)),
                ..none()
            },
        ),
        (
            grace.id,
            "grace-expired",
            &["tag:read"][..],
            TokenTimes {
                expires_at: Some(days_ago(2)),
                ..none()
            },
        ),
        (
            grace.id,
            "grace-revoked",
            &["tag:read"][..],
            TokenTimes {
                revoked_at: Some(days_ago(3)),
                ..none()
            },
        ),
    ] {
        let (id, secret) = app.token_for(owner, name, scopes).await;
        app.set_token_times(id, times).await;
        made.push((id, name, secret));
    }
    Assortment(made)
}

/// The token names of the inventory page, in order.
fn names_in(html: &str) -> Vec<String> {
    html.match_indices("class=\"truncate token-name\" ")
        .map(|(i, m)| {
            let rest = &html[i + m.len()..];
            let rest = &rest[rest.find("title=\"").unwrap() + "title=\"".len()..];
            rest[..rest.find('"').unwrap()].to_owned()
        })
        .collect()
}

/// The token names the inventory lists for `query`, in order.
async fn listed(admin: &Browser, query: &str) -> Vec<String> {
    names_in(&admin.page(&format!("/admin/access-tokens?{query}")).await)
}

/// The same, sorted by name.
async fn listed_sorted(admin: &Browser, query: &str) -> Vec<String> {
    let mut names = listed(admin, query).await;
    names.sort();
    names
}

async fn the_inventory_sorts_never_used_and_oldest_use_first(app: TestApp) {
    let admin = app.setup_admin().await;
    assortment(&app).await;
    let all = listed(&admin, "").await;
    assert_eq!(all.len(), 6);
    assert_eq!(
        &all[..3]
            .iter()
            .filter(|n| n.contains("never") || n.contains("expired") || n.contains("revoked"))
            .count(),
        &3
    );
    assert_eq!(&all[3..], ["ada-stale", "grace-used", "ada-fresh"]);
    let by_created = listed(&admin, "sort=created").await;
    assert_eq!(by_created[5], "ada-stale", "oldest created last");
    let by_expiry = listed(&admin, "sort=expires").await;
    assert_eq!(by_expiry[0], "grace-expired", "soonest expiry first");
    let html = admin.page("/admin/access-tokens").await;
    assert!(
        html.contains(" from 10.2.2.2\"") && html.contains("<span class=\"muted\">Never</span>")
    );
}

async fn the_inventory_filters_by_status_use_owner_scope_and_name(app: TestApp) {
    let admin = app.setup_admin().await;
    assortment(&app).await;
    for (query, names) in [
        (
            "status=active",
            &["ada-fresh", "ada-stale", "grace-never", "grace-used"][..],
        ),
        ("status=expired", &["grace-expired"][..]),
        ("status=revoked", &["grace-revoked"][..]),
        ("unused=90", &["ada-stale", "grace-never"][..]),
        ("unused=180", &["ada-stale"][..]),
        ("never_used=1&status=active", &["grace-never"][..]),
        ("owner=ada%40", &["ada-fresh", "ada-stale"][..]),
        ("scope=license%3Aread", &["grace-used"][..]),
        (
            "scope=tag%3Aread&status=active",
            &["ada-fresh", "grace-used"][..],
        ),
        ("name=stale", &["ada-stale"][..]),
    ] {
        assert_eq!(listed_sorted(&admin, query).await, names, "{query}");
    }
    assert!(admin
        .page("/admin/access-tokens?name=zzz")
        .await
        .contains("No tokens match"));
}

/// Looks a leaked token (or a piece of one) up; the results' address (and so the CSV and
/// bulk-revoke links on that page) and the page hold no more of `secret` than the hint shows.
async fn find_leaked(admin: &Browser, fragment: &str, secret: &str) -> Vec<String> {
    let response = admin
        .submit_form(
            "/admin/access-tokens",
            "/admin/access-tokens/leaked",
            &[("fragment", fragment)],
        )
        .await;
    let results = location(&response).to_owned();
    assert!(!results.contains(&secret[4..12]), "{results}");
    let html = admin.page(&results).await;
    assert!(
        !html.contains(&secret[4..12]),
        "the page repeats the secret"
    );
    names_in(&html)
}

async fn a_leaked_token_is_found_whole_or_in_part_and_not_repeated(app: TestApp) {
    let admin = app.setup_admin().await;
    let tokens = assortment(&app).await;
    let secret = tokens.secret("grace-used");
    for fragment in [
        secret[..12].to_owned(),
        format!("xxxx{}", &secret[secret.len() - 4..]),
        crate::helpers::a_guess_at(secret),
        format!("{secret}…"),
    ] {
        let found = find_leaked(&admin, &fragment, secret).await;
        assert!(
            found.contains(&"grace-used".to_owned()),
            "fragment {fragment}"
        );
    }
    assert_eq!(
        find_leaked(&admin, secret, secret).await,
        ["grace-used"],
        "a whole token finds exactly one"
    );
}

async fn the_inventory_pages_past_fifty(app: TestApp) {
    let admin = app.setup_admin().await;
    assortment(&app).await;
    app.db
        .write(|conn| {
            for n in 0..60 {
                let request = tokendesk::domain::TokenRequest {
                    name: format!("bulk-{n}"),
                    expiry: tokendesk::domain::Expiry::Never,
                    scopes: tokendesk::domain::ScopeSet::parse(["tag:read"]).unwrap(),
                    allowed_addresses: None,
                };
                tokendesk::tokens::store::create(
                    conn,
                    tokendesk::tokens::TokenOwner::Person(1),
                    1,
                    &request,
                )
                .unwrap();
            }
            Ok(())
        })
        .await
        .unwrap();
    let html = admin.page("/admin/access-tokens?name=bulk").await;
    assert!(html.contains("Showing 1–50 of 60"));
    assert_eq!(listed(&admin, "name=bulk&page=2").await.len(), 10);
}

/// How many tokens the audit trail records as revoked.
async fn revocations(app: &TestApp) -> usize {
    let actions = app.audit_actions().await;
    actions.iter().filter(|a| *a == "token.revoked").count()
}

async fn admins_revoke_anyones_token_after_typing_delete(app: TestApp) {
    let admin = app.setup_admin().await;
    let tokens = assortment(&app).await;
    let api = app.api();
    let path = format!("/admin/access-tokens/{}/revoke", tokens.id("grace-used"));
    let html = admin.page(&path).await;
    assert!(html.contains("grace@example.com") && html.contains("grace-used"));
    let response = admin
        .submit_form(&path, &path, &[("confirm", "delete")])
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let still = api.me(tokens.secret("grace-used")).await;
    assert_eq!(still.status(), StatusCode::OK);
    let response = admin
        .submit_form(&path, &path, &[("confirm", "DELETE")])
        .await;
    assert_eq!(location(&response), "/admin/access-tokens");
    let revoked = api.me(tokens.secret("grace-used")).await;
    assert_eq!(revoked.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(revocations(&app).await, 1);
}

/// Posts the bulk-revoke confirmation as its form would.
async fn bulk_revoke(
    admin: &Browser,
    csrf: &str,
    filters: &str,
    expected: &str,
    confirm: &str,
) -> reqwest::Response {
    let fields = [
        ("csrf_token", csrf),
        ("filters", filters),
        ("expected", expected),
        ("confirm", confirm),
    ];
    admin
        .post("/admin/access-tokens/bulk-revoke", &fields)
        .await
}

async fn admins_revoke_in_bulk_only_the_selection_they_confirmed(app: TestApp) {
    let admin = app.setup_admin().await;
    let tokens = assortment(&app).await;
    let status_of = |name: &'static str| {
        let api = app.api();
        let secret = tokens.secret(name).to_owned();
        async move { api.me(&secret).await.status() }
    };
    // Everything unused for 90 days (ada-stale and grace-never).
    let confirm = admin
        .page("/admin/access-tokens/bulk-revoke?unused=90")
        .await;
    assert!(
        confirm.contains("Revoke 2 tokens?"),
        "count in the confirmation"
    );
    let csrf = csrf_token(&confirm);
    let response = bulk_revoke(&admin, &csrf, "unused=90", "2", "nope").await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(status_of("ada-stale").await, StatusCode::OK);
    let response = bulk_revoke(&admin, &csrf, "unused=90", "2", "DELETE").await;
    assert_eq!(location(&response), "/admin/access-tokens?unused=90");
    assert!(admin
        .page("/admin/access-tokens?unused=90")
        .await
        .contains("Revoked 2 tokens."));
    for name in ["ada-stale", "grace-never"] {
        assert_eq!(status_of(name).await, StatusCode::UNAUTHORIZED, "{name}");
    }
    let fresh = status_of("ada-fresh").await;
    assert_eq!(fresh, StatusCode::OK, "others untouched");
    // A selection that grew after confirming revokes nothing.
    let response = bulk_revoke(&admin, &csrf, "", "0", "DELETE").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(status_of("ada-fresh").await, StatusCode::OK);
    assert_eq!(revocations(&app).await, 2);
}

async fn the_inventory_exports_csv(app: TestApp) {
    let admin = app.setup_admin().await;
    assortment(&app).await;
    app.token_for(1, "=cmd|' /C calc'!A0, \"quoted\"", &["tag:read"])
        .await;
    let response = admin.get("/admin/access-tokens.csv?owner=grace").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert!(response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("access-tokens.csv"));
    let body = response.text().await.unwrap();
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines[0], "id,kind,owner_email,owner_name,name,hint,scopes,status,created_at,expires_at,last_used_at,last_used_ip,revoked_at");
    assert_eq!(lines.len(), 5, "header + grace's four tokens: {body}");
    let used = lines.iter().find(|l| l.contains(",grace-used,")).unwrap();
    assert!(
        used.contains("license:read tag:read")
            && used.contains(",active,")
            && used.contains("10.2.2.2")
    );
    assert!(lines
        .iter()
        .any(|l| l.contains(",grace-revoked,") && l.contains(",revoked,")));
    let body = admin
        .get("/admin/access-tokens.csv?name=cmd")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        body.contains("\"'=cmd|' /C calc'!A0, \"\"quoted\"\"\""),
        "escaped and defused: {body}"
    );
}

async fn the_audit_trail_filters_and_exports_without_secrets(app: TestApp) {
    let admin = app.setup_admin().await;
    let (_, grace) = user_and_browser(&app, "grace@example.com", Role::User).await;
    let secret = grace.create_token("ci", "30", &["tag:read"]).await;
    app.browser()
        .sign_in("grace@example.com", "wrong-password!")
        .await;
    let page = admin.page("/admin/audit").await;
    // Each row names its action for people, with the stored name on hover.
    let row = |action: &str| format!("title=\"{action}\">");
    assert!(page.contains("title=\"sign_in.succeeded\">Sign in succeeded</td>"));
    for action in [
        "setup.completed",
        "sign_in.succeeded",
        "sign_in.failed",
        "token.created",
    ] {
        assert!(page.contains(&row(action)), "{action}");
    }
    let html = admin.page("/admin/audit?actor=grace").await;
    assert!(html.contains(&row("token.created")) && !html.contains(&row("setup.completed")));
    let html = admin.page("/admin/audit?action=sign_in.failed").await;
    assert!(html.contains(&row("sign_in.failed")) && !html.contains(&row("token.created")));
    let today = Utc::now().format("%Y-%m-%d").to_string();
    assert!(admin
        .page(&format!("/admin/audit?from={today}&to={today}"))
        .await
        .contains(&row("token.created")));
    assert!(admin
        .page("/admin/audit?to=2001-01-01")
        .await
        .contains("No events match"));
    let unreadable = admin.get("/admin/audit?from=yesterday").await;
    assert_eq!(unreadable.status(), StatusCode::OK);
    assert!(unreadable
        .text()
        .await
        .unwrap()
        .contains("<p class=\"field-error\" id=\"from-error\">Enter the date as YYYY-MM-DD.</p>"));
    let backwards = admin
        .page("/admin/audit?from=2026-02-01&to=2026-01-01")
        .await;
    assert!(backwards.contains(
        "<p class=\"field-error\" id=\"to-error\">The end date is before the start date.</p>"
    ));
    assert!(!backwards.contains("No events match"), "{backwards}");
    let csv = admin
        .get("/admin/audit.csv?action=token.created")
        .await
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with("time_utc,actor,action,target,client_ip,details"));
    assert!(csv.contains("grace@example.com,token.created,token: ci,127.0.0.1"));
    let everything = admin.get("/admin/audit.csv").await.text().await.unwrap();
    assert!(!everything.contains(&secret[4..]), "no token in the trail");
    assert!(
        !everything.contains("correct-horse-battery") && !everything.contains("wrong-password!"),
        "no password"
    );
}
