//! Walks every route tokendesk serves: as a signed-out visitor, as a user, as an admin and with
//! another person's object ids (access control), and every state-changing one without its
//! form's CSRF token. The walk's table is checked against the route tables the server registers
//! from, so a new route cannot be added without being walked.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::{Method, StatusCode};
use tokendesk::domain::Role;

use crate::backend_tests;
use crate::helpers::{csrf_token, location, user_and_browser, Browser, TestApp};

backend_tests!(
    signed_out_visitors_reach_only_the_open_routes,
    a_user_reaches_no_admin_route_and_no_one_elses_objects,
    an_admin_opens_every_admin_page_and_no_one_elses_developer_pages,
    every_state_changing_route_demands_its_forms_csrf_token,
    every_get_answers_head_alike_without_a_body,
    a_known_path_refuses_other_methods_with_405_naming_its_own,
);

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Guard {
    /// Anyone (health, assets, sign-in, setup, set-password links).
    Open,
    /// A signed-in person, on their own objects only.
    Person,
    /// A signed-in admin.
    Admin,
    /// A personal access token (the API and the gateway check).
    Token,
    /// A signed-in admin or maintainer of the application in the path.
    Maintainer,
    /// An API route open to anyone, with no session to forge a form for (the leak report).
    Public,
    /// An application token holding `scim:write` (provisioning).
    Provisioning,
}
use Guard::*;

/// Every route, as (method, path template, guard). `ANY` is a route for every method.
pub const ROUTES: &[(&str, &str, Guard)] = &[
    ("GET", "/healthz", Open),
    ("GET", "/readyz", Open),
    ("GET", "/static/{name}", Open),
    ("GET", "/", Open),
    ("GET", "/setup", Open),
    ("POST", "/setup", Open),
    ("GET", "/sign-in", Open),
    ("POST", "/sign-in", Open),
    ("GET", "/sign-in/sso", Open),
    ("GET", "/sign-in/sso/callback", Open),
    ("POST", "/sign-out", Person),
    ("GET", "/account", Person),
    ("POST", "/account/name", Person),
    ("POST", "/account/password", Person),
    ("GET", "/set-password/{secret}", Open),
    ("POST", "/set-password/{secret}", Open),
    ("GET", "/developer/access-tokens", Person),
    ("POST", "/developer/access-tokens", Person),
    ("GET", "/developer/access-tokens/new", Person),
    ("GET", "/developer/access-tokens/reveal", Person),
    ("GET", "/developer/access-tokens/{id}/revoke", Person),
    ("POST", "/developer/access-tokens/{id}/revoke", Person),
    ("GET", "/developer/access-tokens/{id}/regenerate", Person),
    ("POST", "/developer/access-tokens/{id}/regenerate", Person),
    ("GET", "/developer/access-tokens/{id}/end-overlap", Person),
    ("POST", "/developer/access-tokens/{id}/end-overlap", Person),
    (
        "POST",
        "/developer/access-tokens/{id}/dismiss-new-address",
        Person,
    ),
    ("GET", "/developer/access-tokens/{id}/narrow", Person),
    ("POST", "/developer/access-tokens/{id}/narrow", Person),
    ("GET", "/developer/access-tokens/{id}", Person),
    ("GET", "/developer/applications", Person),
    ("GET", "/developer/applications/{app}/tokens", Maintainer),
    ("POST", "/developer/applications/{app}/tokens", Maintainer),
    (
        "GET",
        "/developer/applications/{app}/tokens/new",
        Maintainer,
    ),
    (
        "GET",
        "/developer/applications/{app}/tokens/reveal",
        Maintainer,
    ),
    (
        "GET",
        "/developer/applications/{app}/tokens/{id}/revoke",
        Maintainer,
    ),
    (
        "POST",
        "/developer/applications/{app}/tokens/{id}/revoke",
        Maintainer,
    ),
    (
        "GET",
        "/developer/applications/{app}/tokens/{id}/regenerate",
        Maintainer,
    ),
    (
        "POST",
        "/developer/applications/{app}/tokens/{id}/regenerate",
        Maintainer,
    ),
    (
        "GET",
        "/developer/applications/{app}/tokens/{id}/end-overlap",
        Maintainer,
    ),
    (
        "POST",
        "/developer/applications/{app}/tokens/{id}/end-overlap",
        Maintainer,
    ),
    (
        "POST",
        "/developer/applications/{app}/tokens/{id}/dismiss-new-address",
        Maintainer,
    ),
    (
        "GET",
        "/developer/applications/{app}/tokens/{id}/narrow",
        Maintainer,
    ),
    (
        "POST",
        "/developer/applications/{app}/tokens/{id}/narrow",
        Maintainer,
    ),
    (
        "GET",
        "/developer/applications/{app}/tokens/{id}",
        Maintainer,
    ),
    ("GET", "/admin/applications", Admin),
    ("POST", "/admin/applications", Admin),
    ("GET", "/admin/applications/{app}", Admin),
    ("POST", "/admin/applications/{app}", Admin),
    ("POST", "/admin/applications/{app}/maintainers", Admin),
    (
        "POST",
        "/admin/applications/{app}/maintainers/{user}/remove",
        Admin,
    ),
    ("GET", "/admin/applications/{app}/archive", Admin),
    ("POST", "/admin/applications/{app}/archive", Admin),
    ("GET", "/admin", Admin),
    ("GET", "/admin/members", Admin),
    ("POST", "/admin/members", Admin),
    ("GET", "/admin/members/new", Admin),
    ("GET", "/admin/members/link", Admin),
    ("POST", "/admin/members/{id}/role", Admin),
    ("GET", "/admin/members/{id}/password-link", Admin),
    ("POST", "/admin/members/{id}/password-link", Admin),
    ("GET", "/admin/members/{id}/{change}", Admin),
    ("POST", "/admin/members/{id}/{change}", Admin),
    ("GET", "/admin/access-tokens", Admin),
    ("GET", "/admin/access-tokens.csv", Admin),
    ("POST", "/admin/access-tokens/leaked", Admin),
    ("GET", "/admin/access-tokens/bulk-revoke", Admin),
    ("POST", "/admin/access-tokens/bulk-revoke", Admin),
    ("GET", "/admin/access-tokens/{id}", Admin),
    ("GET", "/admin/access-tokens/{id}/revoke", Admin),
    ("POST", "/admin/access-tokens/{id}/revoke", Admin),
    ("GET", "/admin/settings", Admin),
    ("POST", "/admin/settings", Admin),
    ("GET", "/admin/audit", Admin),
    ("GET", "/admin/audit.csv", Admin),
    ("ANY", "/auth/verify", Token),
    ("GET", "/api/v1/me", Token),
    ("GET", "/api/v1/openapi.json", Open),
    ("POST", "/api/v1/credentials/revoke", Public),
    ("POST", "/api/v1/application-tokens/self/rotate", Token),
    ("GET", "/api/v1/personal-access-tokens", Token),
    ("POST", "/api/v1/personal-access-tokens", Token),
    ("GET", "/api/v1/personal-access-tokens/{id}", Token),
    ("DELETE", "/api/v1/personal-access-tokens/{id}", Token),
    ("POST", "/api/v1/personal-access-tokens/self/rotate", Token),
    ("GET", "/api/v1/applications", Token),
    ("POST", "/api/v1/applications", Token),
    ("GET", "/api/v1/applications/{id}/tokens", Token),
    ("POST", "/api/v1/applications/{id}/tokens", Token),
    (
        "DELETE",
        "/api/v1/applications/{id}/tokens/{token_id}",
        Token,
    ),
    ("GET", "/scim/v2/Users", Provisioning),
    ("POST", "/scim/v2/Users", Provisioning),
    ("GET", "/scim/v2/Users/{id}", Provisioning),
    ("PUT", "/scim/v2/Users/{id}", Provisioning),
    ("PATCH", "/scim/v2/Users/{id}", Provisioning),
    ("DELETE", "/scim/v2/Users/{id}", Provisioning),
    ("GET", "/scim/v2/ServiceProviderConfig", Provisioning),
];

/// Every field any form takes, filled in plausibly: a refused request is refused for who
/// sent it or how, never for a missing field.
const EVERY_FIELD: &[(&str, &str)] = &[
    ("name", "walked"),
    ("expires_in", "30"),
    ("scopes", "tag:read"),
    ("confirm", "DELETE"),
    ("role", "admin"),
    ("email", "walker@example.com"),
    ("display_name", "Walker"),
    ("method", "password"),
    ("password", "walker-password-1"),
    ("password_confirm", "walker-password-1"),
    ("current_password", "walker-password-0"),
    ("max_lifetime_days", "1"),
    ("default_expiry", "7"),
    ("filters", ""),
    ("expected", "1"),
];

/// The routes as the server declares them: the route tables it registers from.
fn routes_served() -> BTreeSet<(String, String)> {
    let method = |name: &str| match name {
        "route" => "ANY".to_owned(),
        other => other.to_uppercase(),
    };
    let pages = [
        tokendesk::web::ROUTES,
        tokendesk::web::access_tokens::ROUTES,
        tokendesk::web::access_tokens::APPLICATION_ROUTES,
        tokendesk::web::admin::ROUTES,
        tokendesk::api::GATEWAY_ROUTES,
    ];
    let mut served: BTreeSet<(String, String)> = pages
        .iter()
        .flat_map(|table| table.iter())
        .map(|(m, path)| (method(m), (*path).to_owned()))
        .collect();
    served.extend(
        tokendesk::api::V1_ROUTES
            .iter()
            .map(|(m, path)| (method(m), format!("/api/v1{path}"))),
    );
    served.extend(
        tokendesk::api::SCIM_ROUTES
            .iter()
            .map(|(m, path)| (method(m), format!("/scim/v2{path}"))),
    );
    served
}

#[test]
fn every_route_served_is_walked() {
    let walked: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, t, _)| ((*m).to_owned(), (*t).to_owned()))
        .collect();
    let declared = routes_served();
    assert!(declared.len() > 30, "the route tables hold {declared:?}");
    assert_eq!(
        declared.difference(&walked).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "routes served but missing from ROUTES"
    );
    assert_eq!(
        walked.difference(&declared).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "routes in ROUTES no longer served"
    );
}

/// The objects the walk points at.
struct Ids {
    /// A token of the person walking (or, for the admin, of someone else).
    token: i64,
    member: i64,
    /// An application (0: none).
    application: i64,
}

fn fill(template: &str, ids: &Ids) -> String {
    let id = if template.starts_with("/admin/members/") || template.starts_with("/scim/") {
        ids.member
    } else {
        ids.token
    };
    template
        .replace("{id}", &id.to_string())
        .replace("{token_id}", &ids.token.to_string())
        .replace("{change}", "deactivate")
        .replace("{app}", &ids.application.to_string())
        .replace("{user}", &ids.member.to_string())
        .replace("{token_id}", &ids.token.to_string())
        .replace("{secret}", "0000000000000000000000000000000000")
        .replace("{name}", "app.css")
}

fn page_routes(guard: Guard) -> impl Iterator<Item = (&'static str, &'static str)> {
    ROUTES
        .iter()
        .filter(move |(_, _, g)| *g == guard)
        .map(|(m, t, _)| (*m, *t))
}

/// Routes that hold something: `/admin` only points at `/admin/members` (walked itself), so
/// it answers everyone with the same redirect.
fn guarded_routes(guard: Guard) -> impl Iterator<Item = (&'static str, &'static str)> {
    page_routes(guard).filter(|(_, t)| *t != "/admin")
}

async fn send(
    browser: &Browser,
    method: &str,
    path: &str,
    csrf: Option<&str>,
) -> reqwest::Response {
    match method {
        "GET" => browser.get(path).await,
        _ => {
            let mut fields = EVERY_FIELD.to_vec();
            if let Some(csrf) = csrf {
                fields.push(("csrf_token", csrf));
            }
            browser.post(path, &fields).await
        }
    }
}

fn assert_sent_to_sign_in(response: &reqwest::Response, what: &str) {
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{what}");
    assert!(location(response).starts_with("/sign-in"), "{what}");
}

/// What the walk walks among: Ada (admin), Grace (a user, signed in) and Linus (a user), each
/// with a token that may read and manage tokens.
struct World {
    admin: Browser,
    grace: Browser,
    grace_token: String,
    /// Grace's objects.
    own: Ids,
    /// Linus's objects: to Grace, another person's.
    others: Ids,
}

async fn the_walks_world(app: &TestApp) -> World {
    let admin = app.setup_admin().await;
    let (grace, grace_browser) = user_and_browser(app, "grace@example.com", Role::User).await;
    let linus = app
        .create_user("linus@example.com", "linus-password-1", Role::User)
        .await;
    let scopes = [
        "personalAccessToken:read",
        "personalAccessToken:write",
        "tag:read",
    ];
    let (grace_token_id, _) = app.token_for(grace.id, "grace-ci", &scopes).await;
    // Regenerated with an overlap, as arranged (no audit event), so its every page is there
    // to walk: the confirmation of ending the overlap too.
    let grace_token = app
        .db
        .write(move |conn| {
            use tokendesk::tokens::{store, Renewal, TokenOwner};
            let owner = TokenOwner::Person(grace.id);
            let token = store::find_owned(conn, owner, grace_token_id)?.expect("Grace's token");
            let renewal = Renewal {
                expiry: tokendesk::domain::Expiry::Never,
                overlap: tokendesk::domain::Overlap::OneDay,
                allowed_addresses: None,
                replacing: None,
            };
            let renewed = store::regenerate(conn, &token, &renewal).expect("regenerated");
            Ok(renewed.expect("active").secret.expose().to_owned())
        })
        .await
        .unwrap();
    let (linus_token_id, _) = app.token_for(linus.id, "linus-ci", &scopes).await;
    // An application nobody walking maintains (admins manage every one).
    let application = app
        .db
        .run(|conn| {
            Ok(tokendesk::applications::insert(conn, "walked-app", "", 1)
                .unwrap()
                .id)
        })
        .await
        .unwrap();
    World {
        admin,
        grace: grace_browser,
        grace_token,
        own: Ids {
            token: grace_token_id,
            member: grace.id,
            application,
        },
        others: Ids {
            token: linus_token_id,
            member: linus.id,
            application,
        },
    }
}

/// Nothing the walk was refused changed anything: each still holds one unrevoked token, and
/// the trail records no change to a member, a token or the policy.
async fn assert_the_walk_changed_nothing(app: &TestApp, world: &World) {
    for (user_id, name) in [
        (world.own.member, "grace-ci"),
        (world.others.member, "linus-ci"),
    ] {
        let tokens = crate::helpers::stored_tokens(app, user_id).await;
        assert_eq!(
            tokens.len(),
            1,
            "{name}: no token was created or regenerated"
        );
        assert!(tokens[0].revoked_at.is_none(), "{name} is not revoked");
    }
    let actions = app.audit_actions().await;
    assert!(
        !actions.iter().any(|a| a.starts_with("member.")
            || a.starts_with("token.")
            || a.starts_with("policy.")),
        "{actions:?}"
    );
}

/// Signed out: every page sends to sign-in, every form is refused, the API wants a token.
async fn signed_out_visitors_reach_only_the_open_routes(app: TestApp) {
    let world = the_walks_world(&app).await;
    let visitor = app.browser();
    let visitor_csrf = csrf_token(&visitor.page("/sign-in").await);
    let mut checked = 0;
    for guard in [Person, Admin, Maintainer] {
        for (method, template) in guarded_routes(guard) {
            let path = fill(template, &world.own);
            let response = send(&visitor, method, &path, Some(&visitor_csrf)).await;
            assert_sent_to_sign_in(&response, &format!("signed out: {method} {path}"));
            checked += 1;
        }
    }
    let api = app.api();
    for (method, template) in page_routes(Token) {
        let method = if method == "ANY" { "GET" } else { method };
        let url = format!("{}{}", app.address, fill(template, &world.own));
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let response = api
            .client
            .request(method.clone(), &url)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {url}"
        );
        checked += 1;
    }
    // Provisioning: no token is 401, a person's token (even one that may manage tokens) 403.
    for (method, template) in page_routes(Provisioning) {
        let url = format!("{}{}", app.address, fill(template, &world.own));
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        for (token, expected) in [
            (None, StatusCode::UNAUTHORIZED),
            (Some(&world.grace_token), StatusCode::FORBIDDEN),
        ] {
            let request = api.client.request(method.clone(), &url);
            let request = match token {
                Some(token) => request.bearer_auth(token),
                None => request,
            };
            let response = request.json(&serde_json::json!({})).send().await.unwrap();
            assert_eq!(response.status(), expected, "{method} {url}");
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(
                body["status"],
                expected.as_u16().to_string(),
                "{method} {url}"
            );
            checked += 1;
        }
    }
    for (method, template) in page_routes(Public) {
        let url = format!("{}{}", app.address, fill(template, &world.own));
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let body = serde_json::json!({"tokens": ["not a token"]});
        let response = api.client.request(method, &url).json(&body).send();
        let status = response.await.unwrap().status();
        assert_eq!(status, StatusCode::ACCEPTED, "public route {url}");
        checked += 1;
    }
    for (method, template) in page_routes(Open) {
        let path = fill(template, &world.own);
        let response = send(&visitor, method, &path, Some(&visitor_csrf)).await;
        let status = response.status();
        assert!(
            !status.is_server_error() && status != StatusCode::FORBIDDEN,
            "open route {method} {path}: {status}"
        );
        checked += 1;
    }
    assert_the_walk_changed_nothing(&app, &world).await;
    println!("route walk (signed out): {checked} refusals and admissions checked");
}

/// A user: no admin route, and another person's objects do not exist, in the pages or the API.
async fn a_user_reaches_no_admin_route_and_no_one_elses_objects(app: TestApp) {
    let world = the_walks_world(&app).await;
    let grace = &world.grace;
    let grace_csrf = csrf_token(&grace.page("/developer/access-tokens").await);
    let mut checked = 0;
    for (method, template) in guarded_routes(Admin) {
        let path = fill(template, &world.others);
        let response = send(grace, method, &path, Some(&grace_csrf)).await;
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "user: {method} {path}"
        );
        checked += 1;
    }
    for (method, template) in page_routes(Person).filter(|(_, t)| t.contains("{id}")) {
        let path = fill(template, &world.others);
        let response = send(grace, method, &path, Some(&grace_csrf)).await;
        assert_eq!(
            response.status(),
            StatusCode::NOT_FOUND,
            "another's: {method} {path}"
        );
        let own = fill(template, &world.own);
        if method == "GET" {
            assert_eq!(grace.get(&own).await.status(), StatusCode::OK, "own: {own}");
        }
        checked += 2;
    }
    let tokens_url = format!("{}/api/v1/personal-access-tokens", app.address);
    let client = &app.api().client;
    for method in [Method::GET, Method::DELETE] {
        let response = client
            .request(
                method.clone(),
                format!("{tokens_url}/{}", world.others.token),
            )
            .bearer_auth(&world.grace_token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::NOT_FOUND,
            "API: {method} another's token"
        );
    }
    let listed = client
        .get(&tokens_url)
        .bearer_auth(&world.grace_token)
        .send();
    let listed = listed.await.unwrap().text().await.unwrap();
    assert!(
        listed.contains("grace-ci") && !listed.contains("linus-ci"),
        "{listed}"
    );
    checked += 2;
    assert_the_walk_changed_nothing(&app, &world).await;
    println!("route walk (a user): {checked} refusals and admissions checked");
}

/// An admin: every admin page opens, with the security headers; the developer pages stay
/// personal even for an admin.
async fn an_admin_opens_every_admin_page_and_no_one_elses_developer_pages(app: TestApp) {
    let world = the_walks_world(&app).await;
    let admin = &world.admin;
    let mut checked = 0;
    for (_, template) in page_routes(Admin).filter(|(m, _)| *m == "GET") {
        let path = fill(template, &world.others);
        let response = admin.get(&path).await;
        let status = response.status();
        let expected_redirect = path == "/admin" || path == "/admin/members/link";
        assert!(
            status == StatusCode::OK || (expected_redirect && status == StatusCode::SEE_OTHER),
            "admin: GET {path}: {status}"
        );
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"));
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(headers["cache-control"], "no-store", "{path}");
        checked += 1;
    }
    for (method, template) in page_routes(Person).filter(|(m, t)| *m == "GET" && t.contains("{id}"))
    {
        let path = fill(template, &world.others);
        assert_eq!(
            admin.get(&path).await.status(),
            StatusCode::NOT_FOUND,
            "admin: {method} {path}"
        );
        checked += 1;
    }
    assert_the_walk_changed_nothing(&app, &world).await;
    println!(
        "route walk (an admin): {checked} admissions checked over {} routes",
        ROUTES.len()
    );
}

/// Where a forged post goes: the developer pages act on Ada's own token, the admin pages on
/// Grace's (and Grace is the member).
/// Where a forged form goes: Ada's own objects on the developer pages, Grace's on the admin
/// pages, and an application Ada may manage (so only the missing CSRF token is wrong).
fn forged_target(
    template: &str,
    adas_token: i64,
    graces_token: i64,
    grace: i64,
    application: i64,
) -> String {
    let developer = template.starts_with("/developer/");
    let token = if developer { adas_token } else { graces_token };
    let ids = Ids {
        token,
        member: grace,
        application,
    };
    fill(template, &ids)
}

/// The trail grew by nothing, Ada and Grace each still hold one unrevoked token, and Ada is
/// still signed in.
async fn assert_no_forged_post_changed_anything(
    app: &TestApp,
    admin: &Browser,
    grace: i64,
    audit_before: usize,
) {
    assert_eq!(
        app.audit_actions().await.len(),
        audit_before,
        "no refused form changed anything"
    );
    for user_id in [1, grace] {
        let tokens = crate::helpers::stored_tokens(app, user_id).await;
        assert!(tokens.iter().all(|t| t.revoked_at.is_none()));
        assert_eq!(tokens.len(), 1);
    }
    assert!(
        admin
            .page("/developer/access-tokens")
            .await
            .contains("Ada Lovelace"),
        "still signed in"
    );
}

async fn every_state_changing_route_demands_its_forms_csrf_token(app: TestApp) {
    let admin = app.setup_admin().await;
    let grace = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let (admins_token_id, _) = app.token_for(1, "admins-own", &["tag:read"]).await;
    let (graces_token_id, _) = app.token_for(grace.id, "grace-ci", &["tag:read"]).await;
    let application = app
        .db
        .run(|conn| {
            Ok(tokendesk::applications::insert(conn, "forged-at", "", 1)
                .unwrap()
                .id)
        })
        .await
        .unwrap();
    let foreign_csrf = csrf_token(&app.browser().page("/sign-in").await);
    let audit_before = app.audit_actions().await.len();
    let mut refused = 0;

    for (method, template, guard) in ROUTES {
        if *method != "POST" || matches!(guard, Token | Public | Provisioning) {
            continue;
        }
        let path = forged_target(
            template,
            admins_token_id,
            graces_token_id,
            grace.id,
            application,
        );
        for (how, csrf) in [
            ("without a token", None),
            ("with another session's token", Some(foreign_csrf.as_str())),
            ("with an empty token", Some("")),
        ] {
            let status = send(&admin, method, &path, csrf).await.status();
            assert_eq!(status, StatusCode::FORBIDDEN, "POST {path} {how}");
            refused += 1;
        }
    }
    assert_no_forged_post_changed_anything(&app, &admin, grace.id, audit_before).await;

    // The same form with its own token goes through: the refusals above were the CSRF check.
    let path = format!("/admin/access-tokens/{graces_token_id}/revoke");
    let response = admin
        .submit_form(&path, &path, &[("confirm", "DELETE")])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(crate::helpers::stored_tokens(&app, grace.id).await[0]
        .revoked_at
        .is_some());
    println!("CSRF walk: {refused} forged posts refused");
}

/// `method path` from `browser`, with `token` as a bearer when given.
async fn request(
    browser: &Browser,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> reqwest::Response {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let request = browser.client.request(method, browser.url(path));
    let request = match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    request.send().await.unwrap()
}

/// HEAD of every GET route answers as GET does (status, redirect, content type), without a
/// body: as a signed-out visitor (the pages send to sign-in), as Grace on her own pages, and
/// with Grace's token on the API.
async fn every_get_answers_head_alike_without_a_body(app: TestApp) {
    let world = the_walks_world(&app).await;
    let visitor = app.browser();
    let mut checked = 0;
    for (_, template, guard) in ROUTES.iter().filter(|(m, _, _)| *m == "GET") {
        let path = fill(template, &world.own);
        let token = (*guard == Token).then_some(world.grace_token.as_str());
        let mut who = vec![("signed out", &visitor)];
        if *guard == Person {
            who.push(("Grace", &world.grace));
        }
        for (who, browser) in who {
            let get = request(browser, "GET", &path, token).await;
            let head = request(browser, "HEAD", &path, token).await;
            let what = format!("{who}: HEAD {path}");
            assert_eq!(head.status(), get.status(), "{what}");
            for header in ["location", "content-type", "allow"] {
                assert_eq!(
                    head.headers().get(header),
                    get.headers().get(header),
                    "{what}"
                );
            }
            assert!(head.bytes().await.unwrap().is_empty(), "{what} has a body");
            checked += 1;
        }
    }
    println!("route walk (HEAD): {checked} HEADs answered as their GETs");
}

/// The methods `template` takes, by the walk's table: HEAD beside GET.
fn allowed(template: &str) -> BTreeSet<&'static str> {
    let mut methods: BTreeSet<&str> = ROUTES
        .iter()
        .filter(|(_, t, _)| *t == template)
        .map(|(m, _, _)| *m)
        .collect();
    if methods.contains("GET") {
        methods.insert("HEAD");
    }
    methods
}

/// A path the server has, asked with a method it does not take, is a 405 whose `Allow` lists
/// the methods it does: JSON `method_not_allowed` under the API (also with the token in the
/// path), a page elsewhere. A path it does not have stays a 404 for every method.
async fn a_known_path_refuses_other_methods_with_405_naming_its_own(app: TestApp) {
    let world = the_walks_world(&app).await;
    let visitor = app.browser();
    let templates: BTreeMap<&str, BTreeSet<&str>> =
        ROUTES.iter().map(|(_, t, _)| (*t, allowed(t))).collect();
    let mut checked = 0;
    for (template, methods) in templates.iter().filter(|(_, m)| !m.contains("ANY")) {
        let path = fill(template, &world.own);
        let token_path = format!("/{}{path}", world.grace_token);
        let mut paths = vec![path.clone()];
        if path.starts_with("/api/") {
            paths.push(token_path);
        }
        for path in &paths {
            for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
                if methods.contains(method) {
                    continue;
                }
                let response = request(&visitor, method, path, None).await;
                let what = format!("{method} {path}");
                assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{what}");
                let allow = response.headers()["allow"].to_str().unwrap();
                let allow: BTreeSet<&str> = allow.split(", ").collect();
                assert_eq!(&allow, methods, "{what}");
                let body = response.text().await.unwrap();
                if path.contains("/api/") {
                    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
                    assert_eq!(body["error"], "method_not_allowed", "{what}");
                } else if path.starts_with("/scim/") {
                    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
                    assert_eq!(body["status"], "405", "{what}");
                } else {
                    assert!(body.contains("Method not allowed"), "{what}: {body}");
                }
                checked += 1;
            }
        }
    }
    for method in ["GET", "HEAD", "POST", "DELETE", "PATCH"] {
        for path in [
            "/nope",
            "/api/v1/nope",
            "/developer/nope",
            "/ext/bc/C/rpc/x",
            "/scim/v2/Groups",
        ] {
            let response = request(&visitor, method, path, None).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method} {path}");
        }
    }
    assert_the_walk_changed_nothing(&app, &world).await;
    println!("route walk (405): {checked} other methods refused with Allow");
}
