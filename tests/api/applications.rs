//! Application access tokens (issue 17): applications hold tokens of their own, made by admins
//! and maintainers through the API, which authenticate like personal ones, outlive the people
//! who made them, and stay within a policy of their own.

use futures_util::future::join_all;
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};
use tokendesk::accounts::applications as service;
use tokendesk::audit::Actor;
use tokendesk::domain::{ApplicationInput, Email, Role};

use crate::backend_tests;
use crate::helpers::{
    api_error, location, user_and_browser, Browser, TestApp, ADMIN_EMAIL, EVERY_WAY,
};

backend_tests!(
    an_admin_creates_an_application_whose_token_works_every_way_until_revoked,
    an_application_token_outlives_the_people_who_made_it,
    a_deactivated_or_removed_maintainer_can_no_longer_manage_its_tokens,
    a_member_who_neither_administers_nor_maintains_finds_no_application,
    refusals_name_the_missing_scope_the_admin_rule_and_the_personal_token_rule,
    application_tokens_must_expire_within_their_own_maximum,
    the_policy_narrows_what_application_tokens_may_hold_at_once,
    a_maintainer_grants_scopes_beyond_their_role_and_names_stay_unique,
    archiving_an_application_revokes_every_token_it_holds,
    creates_with_one_name_at_once_make_one_application_token,
    a_maintainer_removed_mid_burst_makes_no_token_after_the_removal,
    the_inventory_shows_application_tokens_by_kind_and_in_the_csv,
    two_admins_naming_applications_alike_at_once_make_one,
);

/// What a personal token needs to manage applications' tokens.
const MANAGES: [&str; 2] = ["applicationToken:read", "applicationToken:write"];

/// Ada, the admin `setup_admin` makes, acting through the services.
fn ada() -> Actor {
    Actor {
        user_id: 1,
        email: ADMIN_EMAIL.to_owned(),
        client_ip: "127.0.0.1".to_owned(),
    }
}

impl TestApp {
    /// Ada creates an application through the service (arranging a test); returns its id.
    async fn application(&self, name: &str) -> i64 {
        let details = ApplicationInput {
            name: name.to_owned(),
            description: String::new(),
        };
        let details = details.parse().unwrap();
        service::create(&self.db, ada(), details).await.unwrap().id
    }

    /// Ada names the member with `email` a maintainer of the application.
    async fn add_maintainer(&self, application_id: i64, email: &str) {
        let email = Email::parse(email).unwrap();
        let added = service::add_maintainer(&self.db, ada(), application_id, email).await;
        assert!(added.unwrap(), "a new maintainer");
    }

    /// Sends `method /api/v1{path}` with `token` as a Bearer token, and `body` as JSON.
    async fn call(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Response {
        let url = format!("{}/api/v1{path}", self.address);
        let request = self.api().client.request(method, url).bearer_auth(token);
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        request.send().await.unwrap()
    }

    /// Asks for a token for the application, presenting `token`.
    async fn new_app_token(&self, application_id: i64, token: &str, body: Value) -> Response {
        let path = format!("/applications/{application_id}/tokens");
        self.call(Method::POST, &path, token, Some(body)).await
    }

    /// Makes a 30-day token for the application that must succeed; returns its id and secret.
    async fn app_token(
        &self,
        application_id: i64,
        token: &str,
        name: &str,
        scopes: &[&str],
    ) -> (i64, String) {
        let response = self
            .new_app_token(application_id, token, asking(name, "30", scopes))
            .await;
        assert_eq!(response.status(), StatusCode::CREATED, "{name} is created");
        let created: Value = response.json().await.unwrap();
        let id = created["token"]["id"].as_i64().unwrap();
        (id, created["secret"].as_str().unwrap().to_owned())
    }

    /// The application's tokens as `token`'s owner may list them: the status, and the names.
    async fn app_tokens(&self, application_id: i64, token: &str) -> (StatusCode, Vec<String>) {
        let path = format!("/applications/{application_id}/tokens");
        let response = self.call(Method::GET, &path, token, None).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        let names = body["tokens"].as_array().into_iter().flatten();
        (
            status,
            names
                .map(|t| t["name"].as_str().unwrap().to_owned())
                .collect(),
        )
    }

    async fn revoke_app_token(&self, application_id: i64, token_id: i64, token: &str) -> Response {
        let path = format!("/applications/{application_id}/tokens/{token_id}");
        self.call(Method::DELETE, &path, token, None).await
    }

    /// The scopes `token` holds now, by `/api/v1/me`.
    async fn scopes_now(&self, token: &str) -> Vec<String> {
        let me: Value = self.api().me(token).await.json().await.unwrap();
        let scopes = me["token"]["scopes"].as_array().unwrap();
        scopes
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    }
}

/// A create request's body.
fn asking(name: &str, expires_in: &str, scopes: &[&str]) -> Value {
    json!({"name": name, "expires_in": expires_in, "scopes": scopes})
}

/// Saves the token policy through its form: the personal rules as by default, and for
/// application tokens a maximum lifetime and, if `scopes` is given, only those scopes.
async fn set_application_policy(admin: &Browser, max_days: &str, scopes: Option<&[&str]>) {
    let mut fields = vec![
        ("max_lifetime_days", ""),
        ("default_expiry", "30"),
        ("max_active_tokens", "100"),
        ("application_max_lifetime_days", max_days),
    ];
    match scopes {
        None => fields.push(("application_scope_rule", "any")),
        Some(scopes) => {
            fields.push(("application_scope_rule", "chosen"));
            fields.extend(scopes.iter().map(|s| ("application_scopes", *s)));
        }
    }
    let response = admin
        .submit_form("/admin/settings", "/admin/settings", &fields)
        .await;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "the policy is saved"
    );
}

/// A refusal's status and the field errors' keys.
async fn refused_fields(response: Response) -> (StatusCode, Vec<String>) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    let fields = body["fields"].as_object().into_iter().flatten();
    (status, fields.map(|(k, _)| k.clone()).collect())
}

/// Days from now until a created token's `expires_at`.
fn expires_in_days(created: &Value) -> f64 {
    let at: chrono::DateTime<chrono::Utc> = created["token"]["expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    (at - chrono::Utc::now()).num_minutes() as f64 / (24.0 * 60.0)
}

async fn an_admin_creates_an_application_whose_token_works_every_way_until_revoked(app: TestApp) {
    app.setup_admin().await;
    let (_, ada_token) = app.token_for(1, "apps", &MANAGES).await;
    let body = json!({"name": "Billing", "description": "Invoices nightly"});
    let created = app
        .call(Method::POST, "/applications", &ada_token, Some(body))
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let billing: Value = created.json().await.unwrap();
    let id = billing["id"].as_i64().unwrap();
    let listed: Value = app
        .call(Method::GET, "/applications", &ada_token, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["applications"][0]["name"], "Billing");

    let response = app
        .new_app_token(id, &ada_token, asking("ci", "30", &["license:read"]))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        location(&response),
        format!("/api/v1/applications/{id}/tokens")
    );
    let made: Value = response.json().await.unwrap();
    let secret = made["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("tda_") && secret.len() == 42, "{secret}");
    assert_eq!(made["token"]["kind"], "application");

    let api = app.api();
    for way in EVERY_WAY {
        let me = api.get("/me", &secret, way).send().await.unwrap();
        assert_eq!(me.status(), StatusCode::OK, "{way:?}");
        let me: Value = me.json().await.unwrap();
        assert_eq!(me["kind"], "application", "{way:?}");
        assert_eq!(me["application"], json!({"id": id, "name": "Billing"}));
        assert!(me.get("user").is_none(), "no person behind it");
        assert_eq!(me["token"]["scopes"], json!(["license:read"]));
    }
    let verified = api
        .verify("?scope=license:read", &[("x-auth-token", &secret)])
        .await;
    assert_eq!(verified.status(), StatusCode::NO_CONTENT);
    let header = |name: &str| {
        verified
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(header("x-auth-kind").as_deref(), Some("application"));
    assert_eq!(header("x-auth-application-id"), Some(id.to_string()));
    assert_eq!(
        header("x-auth-application-name").as_deref(),
        Some("Billing")
    );
    assert_eq!(header("x-auth-user-id"), None);

    let token_id = made["token"]["id"].as_i64().unwrap();
    let revoked = app.revoke_app_token(id, token_id, &ada_token).await;
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    assert_eq!(api.me(&secret).await.status(), StatusCode::UNAUTHORIZED);
    for action in [
        "application.created",
        "application_token.created",
        "application_token.revoked",
    ] {
        let events = app.audit_events(action).await;
        assert_eq!(events.len(), 1, "{action}");
        assert_eq!(events[0].actor_id, Some(1), "{action} names Ada");
    }
}

async fn an_application_token_outlives_the_people_who_made_it(app: TestApp) {
    let admin = app.setup_admin().await;
    let billing = app.application("Billing").await;
    let grace = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    app.add_maintainer(billing, "grace@example.com").await;
    let (_, graces) = app.token_for(grace.id, "apps", &MANAGES).await;
    let (_, deploy) = app
        .app_token(billing, &graces, "deploy", &["license:write"])
        .await;

    // A second admin (Ada cannot deactivate herself) deactivates and demotes both makers.
    let (_, bob) = user_and_browser(&app, "bob@example.com", Role::Admin).await;
    for (person, browser) in [(grace.id, &admin), (1, &bob)] {
        let path = format!("/admin/members/{person}/deactivate");
        let response = browser.submit_form(&path, &path, &[]).await;
        assert_eq!(
            location(&response),
            "/admin/members",
            "{person} is deactivated"
        );
    }
    app.set_member(1, Role::User, false).await;

    let api = app.api();
    assert_eq!(
        api.me(&graces).await.status(),
        StatusCode::UNAUTHORIZED,
        "Grace's own token stops"
    );
    assert_eq!(
        app.scopes_now(&deploy).await,
        ["license:write"],
        "the application's does not"
    );
    let verified = api
        .verify(
            "?scope=license:write",
            &[("authorization", &format!("Bearer {deploy}"))],
        )
        .await;
    assert_eq!(verified.status(), StatusCode::NO_CONTENT);
}

async fn a_deactivated_or_removed_maintainer_can_no_longer_manage_its_tokens(app: TestApp) {
    app.setup_admin().await;
    let billing = app.application("Billing").await;
    let (_, adas) = app.token_for(1, "apps", &MANAGES).await;
    let grace = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let linus = app
        .create_user("linus@example.com", "linus-password-1", Role::User)
        .await;
    app.add_maintainer(billing, "grace@example.com").await;
    app.add_maintainer(billing, "linus@example.com").await;
    let (_, graces) = app.token_for(grace.id, "apps", &MANAGES).await;
    let (_, linuses) = app.token_for(linus.id, "apps", &MANAGES).await;
    let (deploy_id, deploy) = app
        .app_token(billing, &linuses, "deploy", &["tag:read"])
        .await;

    // Linus is removed as a maintainer: his personal token works, the application is gone to him.
    let removed = service::remove_maintainer(&app.db, ada(), billing, linus.id).await;
    assert!(removed.unwrap());
    assert_eq!(app.api().me(&linuses).await.status(), StatusCode::OK);
    assert_eq!(
        app.app_tokens(billing, &linuses).await.0,
        StatusCode::NOT_FOUND
    );
    let again = app
        .new_app_token(billing, &linuses, asking("more", "30", &["tag:read"]))
        .await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    let revoke = app.revoke_app_token(billing, deploy_id, &linuses).await;
    assert_eq!(revoke.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.api().me(&deploy).await.status(),
        StatusCode::OK,
        "not revoked"
    );
    let listed: Value = app
        .call(Method::GET, "/applications", &linuses, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["applications"], json!([]));

    // Grace is deactivated: her token, and with it her right to manage Billing, stops at once.
    assert_eq!(app.app_tokens(billing, &graces).await.0, StatusCode::OK);
    app.set_member(grace.id, Role::User, false).await;
    let refused = app
        .new_app_token(billing, &graces, asking("while-away", "30", &["tag:read"]))
        .await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.app_tokens(billing, &adas).await.1,
        ["deploy"],
        "nothing else was made"
    );
    assert_eq!(
        app.audit_events("application.maintainer_removed")
            .await
            .len(),
        1
    );
}

async fn a_member_who_neither_administers_nor_maintains_finds_no_application(app: TestApp) {
    app.setup_admin().await;
    let billing = app.application("Billing").await;
    let (_, adas) = app.token_for(1, "apps", &MANAGES).await;
    let (deploy_id, deploy) = app.app_token(billing, &adas, "deploy", &["tag:read"]).await;
    let mallory = app
        .create_user("mallory@example.com", "mallory-password-1", Role::User)
        .await;
    let (_, mallorys) = app.token_for(mallory.id, "apps", &MANAGES).await;

    assert_eq!(
        app.app_tokens(billing, &mallorys).await.0,
        StatusCode::NOT_FOUND
    );
    let create = app
        .new_app_token(billing, &mallorys, asking("mine", "30", &["tag:read"]))
        .await;
    assert_eq!(create.status(), StatusCode::NOT_FOUND);
    let revoke = app.revoke_app_token(billing, deploy_id, &mallorys).await;
    assert_eq!(revoke.status(), StatusCode::NOT_FOUND);
    // An id that does not exist answers exactly the same.
    assert_eq!(
        app.app_tokens(billing + 100, &mallorys).await.0,
        StatusCode::NOT_FOUND
    );
    let listed: Value = app
        .call(Method::GET, "/applications", &mallorys, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["applications"], json!([]));
    assert_eq!(
        app.api().me(&deploy).await.status(),
        StatusCode::OK,
        "untouched"
    );
    assert_eq!(
        app.app_tokens(billing, &adas).await.1,
        ["deploy"],
        "nothing was made"
    );
}

async fn refusals_name_the_missing_scope_the_admin_rule_and_the_personal_token_rule(app: TestApp) {
    app.setup_admin().await;
    let billing = app.application("Billing").await;
    let grace = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    app.add_maintainer(billing, "grace@example.com").await;
    let (_, graces) = app.token_for(grace.id, "apps", &MANAGES).await;

    let body = json!({"name": "Payroll"});
    let (status, code, _) = api_error(
        app.call(Method::POST, "/applications", &graces, Some(body))
            .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "forbidden"),
        "admins only"
    );
    let (_, reader) = app
        .token_for(grace.id, "reader", &["applicationToken:read"])
        .await;
    let refused = app
        .new_app_token(billing, &reader, asking("x", "30", &["tag:read"]))
        .await;
    let (status, code, _) = api_error(refused).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "insufficient_scope")
    );

    // An application token has no tokens or applications of its own, whatever scopes it holds.
    let everything = [
        "personalAccessToken:read",
        "personalAccessToken:write",
        "applicationToken:read",
        "applicationToken:write",
    ];
    let (_, held) = app
        .app_token(billing, &graces, "holds-all", &everything)
        .await;
    let (_, bare) = app
        .app_token(billing, &graces, "holds-none", &["tag:read"])
        .await;
    let new_token = json!({"name": "n", "expires_in": "30", "scopes": ["tag:read"]});
    let own_tokens = format!("/applications/{billing}/tokens");
    for (secret, holds) in [(&held, "every scope"), (&bare, "none of them")] {
        for (method, path, body) in [
            (Method::GET, "/personal-access-tokens", None),
            (
                Method::POST,
                "/personal-access-tokens",
                Some(new_token.clone()),
            ),
            (Method::GET, "/applications", None),
            (
                Method::POST,
                "/applications",
                Some(json!({"name": "Payroll"})),
            ),
            (Method::GET, own_tokens.as_str(), None),
            (Method::POST, own_tokens.as_str(), Some(new_token.clone())),
        ] {
            let what = format!("{method} {path}, holding {holds}");
            let (status, code, message) =
                api_error(app.call(method, path, secret, body).await).await;
            assert_eq!(
                (status, code.as_str()),
                (StatusCode::FORBIDDEN, "personal_token_required"),
                "{what}"
            );
            assert!(message.contains("application token"), "{what}: {message}");
        }
    }
}

async fn application_tokens_must_expire_within_their_own_maximum(app: TestApp) {
    let admin = app.setup_admin().await;
    let billing = app.application("Billing").await;
    let (_, adas) = app.token_for(1, "apps", &MANAGES).await;

    let never = app
        .new_app_token(billing, &adas, asking("forever", "never", &["tag:read"]))
        .await;
    assert_eq!(
        refused_fields(never).await,
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["expires_in".to_owned()]
        )
    );
    // Left out, the expiry is the organisation's default (30 days).
    let defaulted = app
        .new_app_token(
            billing,
            &adas,
            json!({"name": "default", "scopes": ["tag:read"]}),
        )
        .await;
    assert_eq!(defaulted.status(), StatusCode::CREATED);
    let days = expires_in_days(&defaulted.json().await.unwrap());
    assert!((29.9..=30.0).contains(&days), "{days}");
    let year = app
        .new_app_token(billing, &adas, asking("a-year", "365", &["tag:read"]))
        .await;
    assert_eq!(year.status(), StatusCode::CREATED);

    set_application_policy(&admin, "60", None).await;
    let longer = app
        .new_app_token(billing, &adas, asking("ninety", "90", &["tag:read"]))
        .await;
    assert_eq!(
        refused_fields(longer).await,
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["expires_in".to_owned()]
        )
    );
    let within = app
        .new_app_token(billing, &adas, asking("sixty", "60", &["tag:read"]))
        .await;
    assert_eq!(within.status(), StatusCode::CREATED);
    // Personal tokens keep their own rules: no maximum, so "never" is fine for Ada.
    let personal = app
        .call(
            Method::POST,
            "/personal-access-tokens",
            &app.token_for(1, "maker", &["personalAccessToken:write", "tag:read"])
                .await
                .1,
            Some(asking("mine", "never", &["tag:read"])),
        )
        .await;
    assert_eq!(personal.status(), StatusCode::CREATED);
}

async fn the_policy_narrows_what_application_tokens_may_hold_at_once(app: TestApp) {
    let admin = app.setup_admin().await;
    let billing = app.application("Billing").await;
    let (_, adas) = app.token_for(1, "apps", &MANAGES).await;
    let (_, wide) = app
        .app_token(billing, &adas, "wide", &["license:read", "license:write"])
        .await;

    set_application_policy(&admin, "365", Some(&["license:read", "tag:read"])).await;
    assert_eq!(
        app.scopes_now(&wide).await,
        ["license:read"],
        "license:write is gone now"
    );
    let verified = app
        .api()
        .verify("?scope=license:write", &[("x-auth-token", &wide)])
        .await;
    assert_eq!(verified.status(), StatusCode::FORBIDDEN);
    let refused = app
        .new_app_token(billing, &adas, asking("writer", "30", &["license:write"]))
        .await;
    assert_eq!(
        refused_fields(refused).await,
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["scopes".to_owned()])
    );
    app.app_token(billing, &adas, "tagger", &["tag:read"]).await;
    // Ada's own tokens are not bound by it.
    assert!(app
        .scopes_now(&adas)
        .await
        .contains(&"applicationToken:write".to_owned()));

    set_application_policy(&admin, "365", None).await;
    assert_eq!(
        app.scopes_now(&wide).await,
        ["license:read", "license:write"],
        "back"
    );
}

async fn a_maintainer_grants_scopes_beyond_their_role_and_names_stay_unique(app: TestApp) {
    app.setup_admin().await;
    let billing = app.application("Billing").await;
    let payroll = app.application("Payroll").await;
    let grace = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    app.add_maintainer(billing, "grace@example.com").await;
    app.add_maintainer(payroll, "grace@example.com").await;
    let (_, graces) = app.token_for(grace.id, "apps", &MANAGES).await;

    let (_, deploy) = app
        .app_token(billing, &graces, "deploy", &["license:write"])
        .await;
    assert_eq!(
        app.scopes_now(&deploy).await,
        ["license:write"],
        "not bounded by Grace's role"
    );
    let twin = app
        .new_app_token(billing, &graces, asking("deploy", "30", &["tag:read"]))
        .await;
    assert_eq!(
        refused_fields(twin).await,
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["name".to_owned()])
    );
    // Another application, or Grace herself, may use the name.
    app.app_token(payroll, &graces, "deploy", &["tag:read"])
        .await;
    let (_, maker) = app
        .token_for(
            grace.id,
            "maker",
            &["personalAccessToken:write", "tag:read"],
        )
        .await;
    let own = app
        .call(
            Method::POST,
            "/personal-access-tokens",
            &maker,
            Some(asking("deploy", "30", &["tag:read"])),
        )
        .await;
    assert_eq!(own.status(), StatusCode::CREATED);
    let listed: Value = app
        .call(Method::GET, "/applications", &graces, None)
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = listed["applications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Billing", "Payroll"]);
    assert_eq!(listed["applications"][0]["active_tokens"], 1);
}

async fn archiving_an_application_revokes_every_token_it_holds(app: TestApp) {
    app.setup_admin().await;
    let billing = app.application("Billing").await;
    let payroll = app.application("Payroll").await;
    let (_, adas) = app.token_for(1, "apps", &MANAGES).await;
    let (_, ci) = app.app_token(billing, &adas, "ci", &["tag:read"]).await;
    let (_, deploy) = app.app_token(billing, &adas, "deploy", &["tag:read"]).await;
    let (_, other) = app.app_token(payroll, &adas, "ci", &["tag:read"]).await;

    let revoked = service::archive(&app.db, ada(), billing).await.unwrap();
    assert_eq!(revoked, 2);
    for secret in [&ci, &deploy] {
        assert_eq!(
            app.api().me(secret).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        app.api().me(&other).await.status(),
        StatusCode::OK,
        "another application's"
    );
    assert_eq!(app.audit_events("application.archived").await.len(), 1);
    assert_eq!(app.audit_events("application_token.revoked").await.len(), 2);
    assert_eq!(
        app.app_tokens(billing, &adas).await.0,
        StatusCode::NOT_FOUND,
        "archived"
    );
    let again = app
        .new_app_token(billing, &adas, asking("new", "30", &["tag:read"]))
        .await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    // Its name is free for a new application.
    app.application("Billing").await;
}

async fn creates_with_one_name_at_once_make_one_application_token(app: TestApp) {
    app.setup_admin().await;
    let billing = app.application("Billing").await;
    for email in ["grace@example.com", "linus@example.com"] {
        app.create_user(email, "a-password-1", Role::User).await;
        app.add_maintainer(billing, email).await;
    }
    // Ada and two maintainers, each with a token, all at once.
    let mut makers = vec![app.token_for(1, "apps", &MANAGES).await.1];
    for user_id in [2, 3] {
        makers.push(app.token_for(user_id, "apps", &MANAGES).await.1);
    }
    for round in 0..4 {
        let name = format!("deploy-{round}");
        let statuses = join_all((0..20).map(|i| {
            let body = asking(&name, "30", &["tag:read"]);
            let maker = makers[i % makers.len()].clone();
            let app = &app;
            async move { app.new_app_token(billing, &maker, body).await.status() }
        }))
        .await;
        let made = statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count();
        let refused = statuses
            .iter()
            .filter(|s| **s == StatusCode::UNPROCESSABLE_ENTITY)
            .count();
        assert_eq!((made, refused), (1, 19), "round {round}: {statuses:?}");
    }
}

async fn a_maintainer_removed_mid_burst_makes_no_token_after_the_removal(app: TestApp) {
    app.setup_admin().await;
    let billing = app.application("Billing").await;
    let grace = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let (_, graces) = app.token_for(grace.id, "apps", &MANAGES).await;
    let mut made_before = 0;
    for round in 0..3 {
        app.add_maintainer(billing, "grace@example.com").await;
        // The removal starts once the first token of the burst is made, the rest in flight.
        let first_made = tokio::sync::Notify::new();
        let creates = join_all((0..24).map(|i| {
            let (app, graces, first_made) = (&app, &graces, &first_made);
            let body = asking(&format!("r{round}-t{i}"), "30", &["tag:read"]);
            async move {
                let status = app.new_app_token(billing, graces, body).await.status();
                if status == StatusCode::CREATED {
                    first_made.notify_one();
                }
                status
            }
        }));
        let removal = async {
            first_made.notified().await;
            service::remove_maintainer(&app.db, ada(), billing, grace.id)
                .await
                .unwrap()
        };
        let (statuses, removed) = tokio::join!(creates, removal);
        assert!(removed);
        let allowed = [
            StatusCode::CREATED,
            StatusCode::NOT_FOUND,
            StatusCode::FORBIDDEN,
        ];
        assert!(statuses.iter().all(|s| allowed.contains(s)), "{statuses:?}");
        made_before += statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count();
    }
    let removals = app.audit_events("application.maintainer_removed").await;
    let made = app.audit_events("application_token.created").await;
    assert_eq!(made.len(), made_before, "each token made is audited");
    for (round, removal) in removals.iter().enumerate() {
        let prefix = format!("r{round}-");
        for event in made.iter().filter(|e| {
            e.target_label
                .as_deref()
                .unwrap_or_default()
                .starts_with(&prefix)
        }) {
            assert!(
                event.created_at < removal.created_at,
                "{:?} made after the removal",
                event.target_label
            );
        }
    }
    println!("maintainer removal mid-burst: {made_before} of 72 tokens made before it, none after");
}

async fn the_inventory_shows_application_tokens_by_kind_and_in_the_csv(app: TestApp) {
    let admin = app.setup_admin().await;
    let billing = app.application("Billing").await;
    let (_, adas) = app.token_for(1, "ada-personal", &MANAGES).await;
    app.app_token(billing, &adas, "billing-deploy", &["tag:read"])
        .await;

    let page = admin.page("/admin/access-tokens?kind=application").await;
    assert!(
        page.contains("billing-deploy"),
        "the application's token is listed"
    );
    assert!(!page.contains("ada-personal"), "a personal one is not");
    let by_owner = admin.page("/admin/access-tokens?owner=billing").await;
    assert!(by_owner.contains("billing-deploy") && !by_owner.contains("ada-personal"));
    let personal = admin.page("/admin/access-tokens?kind=personal").await;
    assert!(personal.contains("ada-personal") && !personal.contains("billing-deploy"));

    let csv = admin
        .get("/admin/access-tokens.csv")
        .await
        .text()
        .await
        .unwrap();
    let cells = |name: &str| -> Vec<String> {
        let line = csv.lines().find(|line| line.contains(name)).expect("a row");
        line.split(',').map(str::to_owned).collect()
    };
    let (application, personal) = (cells("billing-deploy"), cells("ada-personal"));
    assert_eq!(
        &application[1..4],
        ["application", "", "Billing"],
        "kind, then the application as owner"
    );
    assert_eq!(&personal[1..3], ["personal", "ada@example.com"]);
}

async fn two_admins_naming_applications_alike_at_once_make_one(app: TestApp) {
    app.setup_admin().await;
    let bob = app
        .create_user("bob@example.com", "bobs-password-1", Role::Admin)
        .await;
    let (_, adas) = app.token_for(1, "apps", &MANAGES).await;
    let (_, bobs) = app.token_for(bob.id, "apps", &MANAGES).await;
    let mut taken = 0;
    for round in 0..6 {
        // One name in any case: "Billing 0", "BILLING 0", "billing 0", ...
        let statuses = join_all((0..12).map(|i| {
            let name = match i % 3 {
                0 => format!("Billing {round}"),
                1 => format!("BILLING {round}"),
                _ => format!("billing {round}"),
            };
            let (app, token) = (&app, if i % 2 == 0 { &adas } else { &bobs });
            let body = json!({"name": name, "description": ""});
            async move {
                app.call(Method::POST, "/applications", token, Some(body))
                    .await
            }
        }))
        .await;
        let mut made = 0;
        for response in statuses {
            match response.status() {
                StatusCode::CREATED => made += 1,
                StatusCode::UNPROCESSABLE_ENTITY => {
                    let (_, fields) = refused_fields(response).await;
                    assert_eq!(fields, ["name"], "round {round}: refused for its name");
                    taken += 1;
                }
                other => panic!("round {round}: {other}"),
            }
        }
        assert_eq!(made, 1, "round {round}: one application of that name");
    }
    println!("same-name applications at once: 6 made, {taken} refused as taken");
}
