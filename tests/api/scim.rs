//! SCIM 2.0 provisioning (issue 21): the requests Okta and Entra ID document, replayed against
//! the real server with an application token holding `scim:write`; deprovisioning under load;
//! a change racing the revoke of the token that makes it.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};
use tokendesk::accounts::applications as applications_service;
use tokendesk::audit::Actor;
use tokendesk::domain::{ApplicationInput, Role};
use tokendesk::tokens::TokenOwner;

use crate::backend_tests;
use crate::helpers::{location, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};

backend_tests!(
    okta_creates_finds_updates_and_deactivates_a_member,
    entra_id_patches_with_string_booleans_and_deletes,
    only_an_application_token_holding_scim_write_provisions,
    bad_requests_get_rfc_7644_errors_and_lists_page,
    a_member_deprovisioned_under_load_has_every_token_refused_on_the_next_request,
    a_change_racing_the_revoke_of_its_token_is_done_before_it_or_refused,
    two_creates_of_one_user_name_at_once_make_one_member,
);

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// Ada, the admin `setup_admin` makes, acting through the services.
fn ada() -> Actor {
    Actor {
        user_id: 1,
        email: ADMIN_EMAIL.to_owned(),
        client_ip: "127.0.0.1".to_owned(),
    }
}

/// A provisioning client: the server's address and the application token it presents.
struct Scim {
    address: String,
    token: String,
    client: reqwest::Client,
}

impl Scim {
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        let request = self
            .client
            .request(method, format!("{}/scim/v2{path}", self.address))
            .bearer_auth(&self.token);
        let request = match body {
            // As providers send it.
            Some(body) => request
                .header("content-type", "application/scim+json")
                .body(body.to_string()),
            None => request,
        };
        request.send().await.unwrap()
    }

    /// The status and the body, which must be SCIM's JSON.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let response = self.send(method, path, body).await;
        let status = response.status();
        if status == StatusCode::NO_CONTENT {
            return (status, Value::Null);
        }
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(content_type, "application/scim+json", "{status}");
        (status, response.json().await.unwrap())
    }

    async fn find(&self, filter: &str) -> Vec<Value> {
        let path = format!("/Users?filter={}", urlencoding(filter));
        let (status, body) = self.call(Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body["schemas"][0],
            "urn:ietf:params:scim:api:messages:2.0:ListResponse"
        );
        let found = body["Resources"].as_array().unwrap().clone();
        assert_eq!(body["totalResults"], found.len(), "{body}");
        found
    }

    async fn create(&self, user: Value) -> (StatusCode, Value) {
        self.call(Method::POST, "/Users", Some(user)).await
    }

    async fn patch(&self, id: &str, operations: Value) -> (StatusCode, Value) {
        let body = json!({"schemas": [PATCH_OP], "Operations": operations});
        self.call(Method::PATCH, &format!("/Users/{id}"), Some(body))
            .await
    }
}

fn urlencoding(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl TestApp {
    /// An admin, an application "Identity provider" and its token holding `scopes`.
    async fn provisioning(&self, scopes: &[&str]) -> (i64, i64, Scim) {
        self.setup_admin().await;
        let details = ApplicationInput {
            name: "Identity provider".to_owned(),
            description: String::new(),
        };
        let details = details.parse().unwrap();
        let application = applications_service::create(&self.db, ada(), details)
            .await
            .unwrap()
            .id;
        let owner = TokenOwner::Application(application);
        let (token_id, token) = self.token_of(owner, 1, "scim", scopes).await;
        let scim = Scim {
            address: self.address.clone(),
            token,
            client: reqwest::Client::new(),
        };
        (application, token_id, scim)
    }
}

/// What Okta sends to create a user (its SCIM 2.0 guide).
fn okta_user(user_name: &str, given: &str, family: &str) -> Value {
    json!({
        "schemas": [USER],
        "userName": user_name,
        "name": {"givenName": given, "familyName": family},
        "emails": [{"primary": true, "value": user_name, "type": "work"}],
        "displayName": format!("{given} {family}"),
        "locale": "en-US",
        "externalId": format!("00u-{given}"),
        "groups": [],
        "password": "1mz050nq",
        "active": true
    })
}

/// What Entra ID sends to create a user (its SCIM provisioning reference).
fn entra_user(user_name: &str, external_id: &str) -> Value {
    json!({
        "schemas": [USER, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "externalId": external_id,
        "userName": user_name,
        "active": true,
        "emails": [{"primary": true, "type": "work", "value": user_name}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "roles": [],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701984", "department": "Tour Operations"}
    })
}

async fn okta_creates_finds_updates_and_deactivates_a_member(app: TestApp) {
    let (_, _, scim) = app.provisioning(&["scim:write"]).await;
    // Okta looks the user up before creating them.
    assert!(scim
        .find(r#"userName eq "ann@example.com""#)
        .await
        .is_empty());
    let (status, ann) = scim
        .create(okta_user("Ann@Example.com", "Ann", "Lee"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ann}");
    assert_eq!(ann["schemas"][0], USER);
    assert_eq!(ann["userName"], "ann@example.com");
    assert_eq!(ann["displayName"], "Ann Lee");
    assert_eq!(ann["active"], true);
    assert_eq!(ann["externalId"], "00u-Ann");
    assert_eq!(ann["emails"][0]["value"], "ann@example.com");
    let id = ann["id"].as_str().unwrap().to_owned();
    assert!(ann["meta"]["location"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/scim/v2/Users/{id}")));
    // Found by userName in any case, by the id, and by externalId.
    let found = scim.find(r#"userName eq "ANN@example.com""#).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["id"], id.as_str());
    assert_eq!(scim.find(r#"externalId eq "00u-Ann""#).await.len(), 1);
    let (status, shown) = scim.call(Method::GET, &format!("/Users/{id}"), None).await;
    assert_eq!(
        (status, &shown["userName"]),
        (StatusCode::OK, &json!("ann@example.com"))
    );

    // A member an admin made with a password, whom Okta then manages: signed in, with a token.
    let bo = app
        .create_user("bo@example.com", ADMIN_PASSWORD, Role::User)
        .await;
    let browser = app.browser();
    browser.sign_in("bo@example.com", ADMIN_PASSWORD).await;
    assert_eq!(
        browser.get("/developer/access-tokens").await.status(),
        StatusCode::OK
    );
    let (_, token) = app.token_for(bo.id, "ci", &["tag:read"]).await;
    assert_eq!(app.api().me(&token).await.status(), StatusCode::OK);
    let bo_id = scim.find(r#"userName eq "bo@example.com""#).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Okta deactivates with a PATCH replacing active.
    let (status, deactivated) = scim
        .patch(
            &bo_id,
            json!([{"op": "replace", "value": {"active": false}}]),
        )
        .await;
    assert_eq!(
        (status, &deactivated["active"]),
        (StatusCode::OK, &json!(false))
    );
    assert_eq!(
        app.api().me(&token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let page = browser.get("/developer/access-tokens").await;
    assert_eq!(page.status(), StatusCode::SEE_OTHER, "the session ended");

    // Okta's PUT sends the whole user: renamed, and active again.
    let mut put = okta_user("bo@example.com", "Bo", "Ek");
    put["id"] = json!(bo_id);
    let (status, replaced) = scim
        .call(Method::PUT, &format!("/Users/{bo_id}"), Some(put))
        .await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(
        (&replaced["displayName"], &replaced["active"]),
        (&json!("Bo Ek"), &json!(true))
    );
    assert_eq!(app.api().me(&token).await.status(), StatusCode::OK);

    // Each change is in the audit trail, by the application, never with a secret.
    let created = app.audit_events("member.created").await;
    assert!(
        created[0]
            .details
            .contains("by SCIM: application Identity provider"),
        "{}",
        created[0].details
    );
    assert_eq!(created[0].actor_id, None);
    assert_eq!(app.audit_events("member.deactivated").await.len(), 1);
    assert_eq!(app.audit_events("member.reactivated").await.len(), 1);
    let updated = app.audit_events("member.updated").await;
    assert!(
        updated[0].details.contains("display name"),
        "{}",
        updated[0].details
    );
}

async fn entra_id_patches_with_string_booleans_and_deletes(app: TestApp) {
    let (_, _, scim) = app.provisioning(&["scim:write"]).await;
    assert!(scim
        .find(r#"userName eq "cy@contoso.example""#)
        .await
        .is_empty());
    let (status, cy) = scim.create(entra_user("cy@contoso.example", "cy")).await;
    assert_eq!(status, StatusCode::CREATED, "{cy}");
    assert_eq!(cy["displayName"], "givenName familyName");
    let id = cy["id"].as_str().unwrap().to_owned();
    let (_, token) = app
        .token_for(id.parse().unwrap(), "ci", &["tag:read"])
        .await;
    assert_eq!(app.api().me(&token).await.status(), StatusCode::OK);

    // Entra ID capitalises ops, sends booleans as strings, and paths tokendesk does not keep.
    let (status, changed) = scim
        .patch(
            &id,
            json!([
                {"op": "Replace", "path": "displayName", "value": "Cy Young"},
                {"op": "Add", "path": "emails[type eq \"work\"].value", "value": "cy@contoso.example"},
                {"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Sales"},
                {"op": "Replace", "path": "externalId", "value": "cy-2"},
                {"op": "Replace", "path": "active", "value": "False"}
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["displayName"], "Cy Young");
    // Entra ID's name parts, each an operation of its own; a removed name falls back to the
    // address.
    let (_, renamed) = scim
        .patch(
            &id,
            json!([
                {"op": "Replace", "path": "name.givenName", "value": "Cyrus"},
                {"op": "Replace", "path": "name.familyName", "value": "Young"}
            ]),
        )
        .await;
    assert_eq!(renamed["displayName"], "Cyrus Young");
    let (_, unnamed) = scim
        .patch(&id, json!([{"op": "Remove", "path": "displayName"}]))
        .await;
    assert_eq!(unnamed["displayName"], "cy@contoso.example");
    assert_eq!(changed["externalId"], "cy-2");
    assert_eq!(changed["active"], false);
    assert_eq!(
        app.api().me(&token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let (_, back) = scim
        .patch(
            &id,
            json!([{"op": "Replace", "path": "active", "value": "True"}]),
        )
        .await;
    assert_eq!(back["active"], true);
    assert_eq!(app.api().me(&token).await.status(), StatusCode::OK);

    // DELETE deactivates: the member stays (with their audit trail), refused everywhere.
    let (status, _) = scim
        .call(Method::DELETE, &format!("/Users/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.api().me(&token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let (status, after) = scim.call(Method::GET, &format!("/Users/{id}"), None).await;
    assert_eq!((status, &after["active"]), (StatusCode::OK, &json!(false)));
    // Deleting again changes nothing and says so the same way.
    let (status, _) = scim
        .call(Method::DELETE, &format!("/Users/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.audit_events("member.deactivated").await.len(), 2);
}

async fn only_an_application_token_holding_scim_write_provisions(app: TestApp) {
    let (application, scim_token_id, scim) = app.provisioning(&["scim:write"]).await;
    let client = reqwest::Client::new();
    let users = format!("{}/scim/v2/Users", app.address);

    let none = client.get(&users).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert!(none.headers().contains_key("www-authenticate"));
    let body: Value = none.json().await.unwrap();
    assert_eq!(
        (&body["schemas"][0], &body["status"]),
        (&json!(ERROR), &json!("401"))
    );

    // An admin's personal token, holding every scope a person can: not a provisioning client.
    let every: Vec<&str> = tokendesk::domain::CATALOGUE
        .iter()
        .map(|s| s.name)
        .filter(|name| *name != "scim:write")
        .collect();
    let (_, admin_token) = app.token_for(1, "everything", &every).await;
    let personal = client
        .get(&users)
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(personal.status(), StatusCode::FORBIDDEN);

    // A person cannot hold scim:write at all, admin or not.
    let asked = client
        .post(format!("{}/api/v1/personal-access-tokens", app.address))
        .bearer_auth(&admin_token)
        .json(&json!({"name": "scim", "expires_in": "30", "scopes": ["scim:write"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(asked
        .text()
        .await
        .unwrap()
        .contains("Only an application token can hold scim:write"));

    // Only an admin signed in to the portal gives an application scim:write: not a maintainer
    // who is no admin, nor a token through the API, even an admin's.
    let maintainer = app
        .create_user("mo@example.com", ADMIN_PASSWORD, Role::User)
        .await;
    let email = tokendesk::domain::Email::parse("mo@example.com").unwrap();
    applications_service::add_maintainer(&app.db, ada(), application, email)
        .await
        .unwrap();
    let (_, maintainer_token) = app
        .token_for(
            maintainer.id,
            "manage",
            &["applicationToken:read", "applicationToken:write"],
        )
        .await;
    for token in [maintainer_token, admin_token.clone()] {
        let refused = client
            .post(format!(
                "{}/api/v1/applications/{application}/tokens",
                app.address
            ))
            .bearer_auth(token)
            .json(&json!({"name": "scim 2", "expires_in": "30", "scopes": ["scim:write"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let text = refused.text().await.unwrap();
        assert!(
            text.contains("Only an admin, signed in to the portal"),
            "{text}"
        );
    }
    let base = format!("/developer/applications/{application}/tokens");
    let admin = app.browser();
    admin.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let offered =
        |page: &str| !page.contains(r#"value="scim:write" id="scope-scim-write" disabled"#);
    assert!(offered(&admin.page(&format!("{base}/new")).await));
    let fields = [
        ("name", "scim 2"),
        ("expires_in", "30"),
        ("scopes", "scim:write"),
    ];
    let made = admin
        .submit_form(&format!("{base}/new"), &base, &fields)
        .await;
    assert_eq!(location(&made), format!("{base}/reveal"));
    // The maintainer in the portal: no such checkbox, and no new secret for the admin's token
    // (the reveal would show it to them).
    let mo = app.browser();
    mo.sign_in("mo@example.com", ADMIN_PASSWORD).await;
    let form = mo.page(&format!("{base}/new")).await;
    assert!(!offered(&form) && form.contains("Only an admin gives it."));
    let regenerate = format!("{base}/{scim_token_id}/regenerate");
    let refused = mo
        .submit_form(&regenerate, &regenerate, &[("expires_in", "30")])
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused
        .text()
        .await
        .unwrap()
        .contains("Only an admin, signed in to the portal"));
    let (status, _) = scim.call(Method::GET, "/Users", None).await;
    assert_eq!(status, StatusCode::OK, "the token's secret is unchanged");

    // An application token without the scope.
    let owner = TokenOwner::Application(application);
    let (_, reader) = app.token_of(owner, 1, "reader", &["user:read"]).await;
    let lacking = client
        .get(&users)
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(lacking.status(), StatusCode::FORBIDDEN);
    let body: Value = lacking.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("scim:write"),
        "{body}"
    );

    // The policy stops letting application tokens hold it: refused at once.
    let (status, _) = scim.call(Method::GET, "/Users", None).await;
    assert_eq!(status, StatusCode::OK);
    app.db
        .write(|conn| {
            let mut policy = tokendesk::policy::load(conn)?;
            policy.application_scopes = tokendesk::domain::ScopeSet::parse(["user:read"]).unwrap();
            tokendesk::policy::save(conn, &policy)
        })
        .await
        .unwrap();
    let (status, _) = scim.call(Method::GET, "/Users", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Revoked: refused.
    let revoked = client
        .delete(format!(
            "{}/api/v1/applications/{application}/tokens/{scim_token_id}",
            app.address
        ))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    assert!(revoked.status().is_success(), "{}", revoked.status());
    let (status, body) = scim.call(Method::GET, "/Users", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

async fn bad_requests_get_rfc_7644_errors_and_lists_page(app: TestApp) {
    let (_, _, scim) = app.provisioning(&["scim:write"]).await;
    let error = |body: &Value, status: &str, scim_type: Option<&str>| {
        assert_eq!(body["schemas"][0], ERROR, "{body}");
        assert_eq!(body["status"], status, "{body}");
        if let Some(scim_type) = scim_type {
            assert_eq!(body["scimType"], scim_type, "{body}");
        }
        assert!(!body["detail"].as_str().unwrap().is_empty());
    };
    let raw = scim
        .client
        .post(format!("{}/scim/v2/Users", scim.address))
        .bearer_auth(&scim.token)
        .header("content-type", "application/scim+json")
        .body("{\"userName\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    error(&raw.json().await.unwrap(), "400", Some("invalidSyntax"));

    let (status, body) = scim.create(json!({"userName": "not an address"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    error(&body, "400", Some("invalidValue"));
    let (status, body) = scim
        .create(json!({"userName": "dee@example.com", "displayName": "x".repeat(101)}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    error(&body, "400", Some("invalidValue"));

    let (status, _) = scim.create(json!({"userName": "dee@example.com"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = scim.create(json!({"userName": "DEE@example.com"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    error(&body, "409", Some("uniqueness"));

    let (status, body) = scim
        .call(Method::GET, "/Users?filter=userName%20co%20%22d%22", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    error(&body, "400", Some("invalidFilter"));
    let (status, body) = scim
        .call(Method::GET, "/Users?startIndex=first", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    error(&body, "400", Some("invalidValue"));
    for missing in [
        "/Users/abc",
        "/Users/99999",
        "/Users/1%00",
        "/Groups",
        "/Users/1/extra",
    ] {
        let (status, body) = scim.call(Method::GET, missing, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{missing}: {body}");
        error(&body, "404", None);
    }
    let (status, body) = scim.call(Method::PUT, "/Users", Some(json!({}))).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    error(&body, "405", None);
    let (status, body) = scim
        .patch("2", json!([{"op": "move", "path": "active"}]))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    error(&body, "400", Some("invalidSyntax"));
    // An escaped NUL in a filter (PostgreSQL refuses NUL in text): a 400, not a 500.
    let (status, body) = scim
        .call(
            Method::GET,
            "/Users?filter=externalId%20eq%20%22a%5Cu0000b%22",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    error(&body, "400", Some("invalidFilter"));
    // An externalId names one member.
    let (status, _) = scim
        .create(json!({"userName": "x1@example.com", "externalId": "x-1"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = scim
        .create(json!({"userName": "x2@example.com", "externalId": "x-1"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    error(&body, "409", Some("uniqueness"));
    let (status, body) = scim
        .patch(
            "2",
            json!([{"op": "replace", "path": "externalId", "value": "x-1"}]),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    error(&body, "409", Some("uniqueness"));
    // A filter for a userName that is no address finds nobody, rather than failing.
    assert!(scim.find(r#"userName eq "nobody""#).await.is_empty());

    // Ada is the last active admin: not deactivated, whoever asks.
    let (status, body) = scim
        .patch(
            "1",
            json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    error(&body, "400", Some("mutability"));
    // Another member's address is taken.
    let (status, body) = scim
        .patch(
            "2",
            json!([{"op": "replace", "path": "userName", "value": ADMIN_EMAIL}]),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    error(&body, "409", Some("uniqueness"));

    // Pages: 1-based startIndex, oldest first, the total of all.
    for n in 0..4 {
        let body = json!({"userName": format!("p{n}@example.com")});
        assert_eq!(scim.create(body).await.0, StatusCode::CREATED);
    }
    let (_, page) = scim
        .call(Method::GET, "/Users?startIndex=4&count=2", None)
        .await;
    assert_eq!(
        (
            &page["totalResults"],
            &page["startIndex"],
            &page["itemsPerPage"]
        ),
        (&json!(7), &json!(4), &json!(2))
    );
    let names: Vec<&str> = page["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["p0@example.com", "p1@example.com"]);
    let (_, none) = scim.call(Method::GET, "/Users?count=0", None).await;
    assert_eq!(
        (&none["totalResults"], &none["Resources"]),
        (&json!(7), &json!([]))
    );
}

async fn a_member_deprovisioned_under_load_has_every_token_refused_on_the_next_request(
    app: TestApp,
) {
    let (_, _, scim) = app.provisioning(&["scim:write"]).await;
    let (_, eve) = scim.create(okta_user("eve@example.com", "Eve", "Ng")).await;
    let eve_id: i64 = eve["id"].as_str().unwrap().parse().unwrap();
    let mut tokens = Vec::new();
    for n in 0..3 {
        tokens.push(
            app.token_for(eve_id, &format!("t{n}"), &["tag:read"])
                .await
                .1,
        );
    }
    // On PostgreSQL a second instance shares the database and hears the change.
    let mut addresses = vec![app.address.clone()];
    if app.backend() == crate::helpers::Backend::Postgres {
        addresses.push(app.another_instance(|_| {}).await);
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for worker in 0..8 {
        let (address, token) = (
            addresses[worker % addresses.len()].clone(),
            tokens[worker % 3].clone(),
        );
        let stop = stop.clone();
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let sent = Instant::now();
                let status = client
                    .get(format!("{address}/api/v1/me"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap()
                    .status();
                seen.push((sent, address.clone(), status));
            }
            seen
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _) = scim
        .patch(
            &eve_id.to_string(),
            json!([{"op": "replace", "value": {"active": false}}]),
        )
        .await;
    let answered = Instant::now();
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(400)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen: Vec<_> = join_all(workers)
        .await
        .into_iter()
        .flat_map(Result::unwrap)
        .collect();
    let before = seen
        .iter()
        .filter(|(sent, _, s)| *sent < answered && *s == StatusCode::OK)
        .count();
    assert!(before > 0, "the tokens worked under load before");
    for (sent, address, status) in &seen {
        // Its own instance refuses from the answer on; another within 100 ms of it.
        let settled = if *address == app.address {
            answered
        } else {
            answered + Duration::from_millis(100)
        };
        if *sent >= settled {
            assert_eq!(
                *status,
                StatusCode::UNAUTHORIZED,
                "{address}, {:?} after",
                *sent - answered
            );
        }
    }
    let after = seen
        .iter()
        .filter(|(sent, _, _)| *sent >= answered + Duration::from_millis(100))
        .count();
    assert!(after > 10, "requests after the change: {after}");
}

async fn a_change_racing_the_revoke_of_its_token_is_done_before_it_or_refused(app: TestApp) {
    let (application, scim_token_id, scim) = app.provisioning(&["scim:write"]).await;
    let mut ids = Vec::new();
    for n in 0..16 {
        let body = json!({"userName": format!("r{n}@example.com"), "displayName": "Before"});
        let (_, user) = scim.create(body).await;
        ids.push(user["id"].as_str().unwrap().to_owned());
    }
    let (_, admin_token) = app
        .token_for(
            1,
            "admin",
            &["applicationToken:read", "applicationToken:write"],
        )
        .await;
    let scim = std::sync::Arc::new(scim);
    let renames = ids.iter().map(|id| {
        let (scim, id) = (scim.clone(), id.clone());
        async move {
            let ops = json!([{"op": "replace", "path": "displayName", "value": "After"}]);
            (id.clone(), scim.patch(&id, ops).await.0)
        }
    });
    let revoke = async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        reqwest::Client::new()
            .delete(format!(
                "{}/api/v1/applications/{application}/tokens/{scim_token_id}",
                app.address
            ))
            .bearer_auth(&admin_token)
            .send()
            .await
            .unwrap()
            .status()
    };
    let (results, revoked) = tokio::join!(join_all(renames), revoke);
    assert!(revoked.is_success(), "{revoked}");
    let revoked_at = app.audit_events("application_token.revoked").await[0].id;
    let updates = app.audit_events("member.updated").await;
    for (id, status) in &results {
        let id: i64 = id.parse().unwrap();
        let event = updates.iter().find(|e| e.target_id == Some(id));
        let member = app
            .db
            .run(move |conn| tokendesk::users::find(conn, id))
            .await;
        let name = member.unwrap().unwrap().display_name;
        match *status {
            StatusCode::OK => {
                assert!(event.unwrap().id < revoked_at, "a change after the revoke");
                assert_eq!(name, "After");
            }
            StatusCode::UNAUTHORIZED => {
                assert!(event.is_none());
                assert_eq!(name, "Before", "a refused change left nothing behind");
            }
            other => panic!("{other}"),
        }
    }
    let done = results.iter().filter(|(_, s)| *s == StatusCode::OK).count();
    println!(
        "{done} changes before the revoke, {} refused",
        results.len() - done
    );
    // After the revoke, nothing more.
    let (status, _) = scim
        .patch(
            &ids[0],
            json!([{"op": "replace", "path": "displayName", "value": "Late"}]),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn two_creates_of_one_user_name_at_once_make_one_member(app: TestApp) {
    let (_, _, scim) = app.provisioning(&["scim:write"]).await;
    let scim = std::sync::Arc::new(scim);
    let creates = (0..6).map(|n| {
        let scim = scim.clone();
        async move {
            let body = json!({"userName": "twin@example.com", "displayName": format!("Twin {n}")});
            scim.create(body).await.0
        }
    });
    let statuses = join_all(creates).await;
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let conflicts = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((created, conflicts), (1, 5), "{statuses:?}");
    assert_eq!(
        scim.find(r#"userName eq "twin@example.com""#).await.len(),
        1
    );
    assert_eq!(app.audit_events("member.created").await.len(), 1);
}
