//! The real `tokendesk` binary as a process: graceful shutdown, and what it writes to its log.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use reqwest::StatusCode;
use tokendesk::domain::Role;

use crate::backend_tests;
use crate::helpers::{csrf_token, location, Api, Browser, Presented, TestApp, EVERY_WAY};
use crate::server::ServerProcess;

backend_tests!(
    sigterm_drains_and_writes_pending_last_used,
    no_secret_reaches_the_log,
    no_application_token_reaches_the_log,
    no_secret_of_an_overlap_or_an_allowlist_reaches_the_log,
    no_provisioning_token_or_password_reaches_the_log,
    no_client_secret_code_or_id_token_reaches_the_log,
    json_logs_follow_one_request_by_its_id,
);

async fn sigterm_drains_and_writes_pending_last_used(app: TestApp) {
    let user = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let (id, token) = app
        .token_for(user.id, "ci", &["personalAccessToken:write", "tag:read"])
        .await;
    // An hour between flushes: only the shutdown can write it.
    let server = ServerProcess::start(
        &app.database_url,
        &[
            ("RUST_LOG", "info"),
            ("TOKENDESK_LAST_USED_FLUSH_SECS", "3600"),
        ],
    )
    .await;

    // A request in flight when the signal comes: its body is only half sent.
    let body = r#"{"name":"sent across the shutdown","expires_in":"30","scopes":["tag:read"]}"#;
    let (first_half, second_half) = body.split_at(body.len() / 2);
    let mut in_flight = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    let head = format!(
        "POST /api/v1/personal-access-tokens HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Authorization: Bearer {token}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{first_half}",
        body.len()
    );
    in_flight.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        app.last_used_at(id).await.is_none(),
        "not written per request"
    );

    server.signal_terminate();
    // Once the signal is handled, new connections are refused.
    let refused_after = std::time::Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", server.port))
        .await
        .is_ok()
    {
        assert!(
            refused_after.elapsed() < Duration::from_secs(5),
            "still accepting 5 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    in_flight.write_all(second_half.as_bytes()).await.unwrap();
    let mut answer = String::new();
    in_flight.read_to_string(&mut answer).await.unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 201"),
        "the in-flight request was finished: {answer}"
    );

    let (status, _server) = server.wait_for_exit().await;
    assert!(status.success(), "clean exit: {status:?}");
    assert!(app.last_used_at(id).await.is_some(), "written on shutdown");
    let created = crate::helpers::stored_tokens(&app, user.id).await;
    assert!(created.iter().any(|t| t.name == "sent across the shutdown"));
    println!("graceful shutdown: 1 request in flight at SIGTERM answered 201, new connections refused, Last used written on exit");
}

/// Every flow that handles a secret, against the real binary at debug level; then the whole log
/// is searched for each secret: tokens (in every position and encoding a client might use), the
/// set-password link, passwords, session cookies and CSRF tokens. One test, as the one log must
/// have seen every flow.
async fn no_secret_reaches_the_log(app: TestApp) {
    let server = logging_at_debug(&app).await;
    let (admin, linus, mut secrets) = setup_then_a_member_by_one_time_link(&server.address).await;
    let linus_password = secrets[2].clone();
    secrets.extend(a_new_password_and_a_new_link(&admin, &linus, &linus_password).await);

    // A token made in the portal and revealed; used every way a client might present it.
    let token = linus
        .create_token("ci", "30", &["personalAccessToken:read", "tag:read"])
        .await;
    secrets.push(token.clone());
    secrets.push(present_every_way(&server.address, &token).await);
    admin_looks_up_the_leak(&admin, &token).await;

    // What a session holds: the cookie as sent, and the CSRF tokens of the pages.
    for person in [&admin, &linus] {
        let cookie = person.cookie_header();
        secrets.push(cookie.split_once('=').unwrap().1.to_owned());
        secrets.push(csrf_token(&person.page("/developer/access-tokens").await));
        person.sign_out().await;
    }

    let log = stop_and_search_the_log(server, &secrets, "").await;
    assert!(
        log.contains("/set-password/{secret}"),
        "routes are logged by pattern"
    );
}

/// The same for application tokens (`tda_`): made and regenerated on an application's pages,
/// revealed, presented every way and in odd places, looked up as leaked; the whole log is
/// searched for every piece of each.
async fn no_application_token_reaches_the_log(app: TestApp) {
    let server = logging_at_debug(&app).await;
    let (admin, _, mut secrets) = setup_then_a_member_by_one_time_link(&server.address).await;
    let response = admin
        .submit_form(
            "/admin/applications",
            "/admin/applications",
            &[("name", "Billing"), ("description", "")],
        )
        .await;
    assert_eq!(location(&response), "/admin/applications/1");
    let base = "/developer/applications/1/tokens";
    let fields = [
        ("name", "deploy"),
        ("expires_in", "30"),
        ("scopes", "tag:read"),
    ];
    let response = admin
        .submit_form(&format!("{base}/new"), base, &fields)
        .await;
    assert_eq!(location(&response), format!("{base}/reveal"));
    let first = application_secret(&admin.page(&format!("{base}/reveal")).await);
    let path = format!("{base}/1/regenerate");
    let response = admin
        .submit_form(&path, &path, &[("expires_in", "30")])
        .await;
    assert_eq!(location(&response), format!("{base}/reveal"));
    let token = application_secret(&admin.page(&format!("{base}/reveal")).await);
    assert_ne!(first, token);
    secrets.extend([first.clone(), token.clone()]);
    secrets.push(present_every_way(&server.address, &token).await);
    // The replaced secret, presented: refused, and not logged either.
    let api = Api {
        address: server.address.clone(),
        client: reqwest::Client::new(),
    };
    let refused = api.get("/me", &first, Presented::PathSegment).send().await;
    assert_eq!(refused.unwrap().status(), StatusCode::UNAUTHORIZED);
    admin_looks_up_the_leak(&admin, &token).await;
    for fragment in [&token[..8], &token[30..]] {
        admin
            .submit_form(
                "/admin/access-tokens",
                "/admin/access-tokens/leaked",
                &[("fragment", fragment)],
            )
            .await;
    }

    stop_and_search_the_log(server, &secrets, " (application tokens)").await;
}

/// Secrets in their overlap (old and new, each presented every way, the rotation's answer) and
/// a token refused for its address (presented every way, audited) leave nothing in the log.
async fn no_secret_of_an_overlap_or_an_allowlist_reaches_the_log(app: TestApp) {
    let server = logging_at_debug(&app).await;
    let (admin, _, mut secrets) = setup_then_a_member_by_one_time_link(&server.address).await;
    let base = "/developer/access-tokens";
    let fields = [
        ("name", "pinned"),
        ("expires_in", "30"),
        ("scopes", "tag:read"),
        ("allowed_addresses", "10.0.0.0/8"),
    ];
    let response = admin
        .submit_form(&format!("{base}/new"), base, &fields)
        .await;
    assert_eq!(location(&response), format!("{base}/reveal"));
    let pinned = crate::helpers::revealed_secret(&admin.page(&format!("{base}/reveal")).await)
        .expect("shown once");
    let api = Api {
        address: server.address.clone(),
        client: reqwest::Client::new(),
    };
    for way in EVERY_WAY {
        let response = api.get("/me", &pinned, way).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{way:?}");
    }
    let original = format!("/ext/bc/C/rpc/{pinned}");
    let refused = api.verify("", &[("x-original-uri", &original)]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    let fields = [
        ("name", "rotating"),
        ("expires_in", "30"),
        ("scopes", "tag:read"),
    ];
    admin
        .submit_form(&format!("{base}/new"), base, &fields)
        .await;
    let old = crate::helpers::revealed_secret(&admin.page(&format!("{base}/reveal")).await)
        .expect("shown once");
    let overlap = Some(serde_json::json!({"overlap": "1h"}));
    let rotated = api
        .post_as(crate::helpers::SELF_ROTATE, &old, overlap)
        .await;
    let rotated: serde_json::Value = rotated.json().await.unwrap();
    let new = rotated["secret"].as_str().expect("a new secret").to_owned();
    let old_typo = present_every_way(&server.address, &old).await;
    let new_typo = present_every_way(&server.address, &new).await;
    // The replaced secret trying to rotate: refused, and not logged either.
    let refused = api
        .client
        .post(format!(
            "{}/api/v1/personal-access-tokens/self/rotate",
            server.address
        ))
        .header("x-auth-token", &old)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    secrets.extend([pinned, old, new, old_typo, new_typo]);

    stop_and_search_the_log(server, &secrets, " (overlaps, allowlists)").await;
}

/// The application token a reveal page shows.
fn application_secret(html: &str) -> String {
    let start = html
        .find("value=\"tda_")
        .expect("an application token is shown")
        + 7;
    let end = start + html[start..].find('"').unwrap();
    html[start..end].to_owned()
}

/// First run (Ada), a member (Linus) added with a one-time link, Linus setting his password
/// and signing in: their browsers, and the secrets they typed or were given.
async fn setup_then_a_member_by_one_time_link(address: &str) -> (Browser, Browser, Vec<String>) {
    let admin = Browser::at(address, Default::default());
    let admin_password = "analytical-engine-1843";
    let response = admin
        .submit_form(
            "/setup",
            "/setup",
            &[
                ("display_name", "Ada"),
                ("email", "ada@example.com"),
                ("password", admin_password),
                ("password_confirm", admin_password),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let response = admin.invite_linus().await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let html = admin.page("/admin/members/link").await;
    let start = html.find("/set-password/").expect("the link is shown");
    let link = html[start..start + html[start..].find('"').unwrap()].to_owned();
    let linus = Browser::at(address, Default::default());
    let linus_password = "kernel-hacker-91";
    let fields = [
        ("password", linus_password),
        ("password_confirm", linus_password),
    ];
    let response = linus.submit_form(&link, &link, &fields).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let response = linus.sign_in("linus@example.com", linus_password).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let secrets = vec![
        admin_password.to_owned(),
        link["/set-password/".len()..].to_owned(),
        linus_password.to_owned(),
    ];
    (admin, linus, secrets)
}

/// Linus changes his password on My account, and Ada gives him a set-password link for when
/// he forgets it: the new password and the link.
async fn a_new_password_and_a_new_link(
    admin: &Browser,
    linus: &Browser,
    linus_password: &str,
) -> Vec<String> {
    let new_password = "penguin-keeper-1991";
    let response = linus.change_password(linus_password, new_password).await;
    assert_eq!(location(&response), "/account");
    let path = "/admin/members/2/password-link";
    let response = admin.submit_form(path, path, &[]).await;
    assert_eq!(location(&response), "/admin/members/link");
    let link = admin.set_password_link_shown().await;
    vec![
        new_password.to_owned(),
        link["/set-password/".len()..].to_owned(),
    ]
}

/// Presents `token` every way a client does, in odd places a client might put it, through the
/// gateway check, and one character off; returns that near-miss (a secret too).
async fn present_every_way(address: &str, token: &str) -> String {
    let api = Api {
        address: address.to_owned(),
        client: reqwest::Client::new(),
    };
    for way in EVERY_WAY {
        let response = api.get("/me", token, way).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{way:?}");
    }
    for odd in [
        format!("{address}/api/v1/me?access_token={token}"),
        format!("{address}/api/v1/me?tok%65n={token}"),
        format!("{address}/api/v1/me;token={token}"),
        format!("{address}/api/v1/me/{token}.json"),
        format!("{address}/api/v1/me?{token}"),
        format!("{address}/sign-in?next=%2Fapi%2Fv1%2Fme%3Ftoken%3D{token}"),
        format!("{address}/{}/api/v1/me", token.replace('_', "%5F")),
        format!(
            "{address}/api/v1/me?{}=1&a=1&{}",
            &token[..24],
            &token[16..]
        ),
    ] {
        api.client.get(&odd).send().await.unwrap();
    }
    let original = format!("/ext/bc/C/rpc/{token}");
    let verified = api.verify("", &[("x-original-uri", &original)]).await;
    assert_eq!(verified.status(), StatusCode::NO_CONTENT);
    let typo = crate::helpers::a_guess_at(token);
    api.get("/me", &typo, Presented::Query)
        .send()
        .await
        .unwrap();
    typo
}

/// The admin looks the leaked token up, and opens its CSV and bulk-revoke pages.
async fn admin_looks_up_the_leak(admin: &Browser, token: &str) {
    let response = admin
        .submit_form(
            "/admin/access-tokens",
            "/admin/access-tokens/leaked",
            &[("fragment", token)],
        )
        .await;
    let results = location(&response).to_owned();
    let html = admin.page(&results).await;
    for link in [
        "/admin/access-tokens.csv?",
        "/admin/access-tokens/bulk-revoke?",
    ] {
        let start = html.find(link).expect("the link is on the results page");
        let end = start + html[start..].find('"').unwrap();
        let response = admin.get(&html[start..end].replace("&amp;", "&")).await;
        assert_eq!(response.status(), StatusCode::OK, "{link}");
    }
}

/// The real binary on `app`'s database, logging at debug level.
async fn logging_at_debug(app: &TestApp) -> ServerProcess {
    ServerProcess::start(
        &app.database_url,
        &[
            ("RUST_LOG", "debug"),
            ("TOKENDESK_LAST_USED_FLUSH_SECS", "0.2"),
        ],
    )
    .await
}

/// Stops the server and searches its whole log: requests are there by route pattern, and no
/// piece of any of `secrets`. Returns the log.
async fn stop_and_search_the_log(server: ServerProcess, secrets: &[String], what: &str) -> String {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, server) = server.terminate().await;
    let log = std::fs::read_to_string(&server.log).unwrap();
    assert!(
        log.contains("/{token}/api/v1/me"),
        "requests are logged: {log}"
    );
    assert_no_piece_of_a_secret_in(&log, secrets);
    println!(
        "log at debug level: {} lines, none holding any of {} secrets{what}",
        log.lines().count(),
        secrets.len()
    );
    log
}

/// No 12 characters in a row of any secret (the whole of a shorter one) are in `log`.
fn assert_no_piece_of_a_secret_in(log: &str, secrets: &[String]) {
    for secret in secrets {
        assert!(!secret.is_empty(), "a secret was collected empty");
        let chars: Vec<char> = secret.chars().collect();
        for piece in chars.windows(12.min(chars.len())) {
            let piece: String = piece.iter().collect();
            assert!(
                !log.contains(&piece),
                "12 characters of a secret ({} long) reached the log:\n{log}",
                secret.len()
            );
        }
    }
}

/// A provisioning client's token (presented as a header, in the query and in odd places) and
/// the password Okta sends along with a new user (which tokendesk ignores) leave nothing in the
/// log, whatever the request: made, found, changed, refused.
async fn no_provisioning_token_or_password_reaches_the_log(app: TestApp) {
    use serde_json::json;
    let server = logging_at_debug(&app).await;
    let (_, _, mut secrets) = setup_then_a_member_by_one_time_link(&server.address).await;
    let application = app
        .db
        .write(|conn| tokendesk::applications::insert(conn, "Identity provider", "", 1))
        .await
        .unwrap();
    let owner = tokendesk::tokens::TokenOwner::Application(application.id);
    let (_, token) = app.token_of(owner, 1, "scim", &["scim:write"]).await;
    let password = "okta-sends-this-password-7f3k".to_owned();
    secrets.extend([token.clone(), password.clone()]);
    secrets.push(present_every_way(&server.address, &token).await);

    let client = reqwest::Client::new();
    let users = format!("{}/scim/v2/Users", server.address);
    let okta = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "pat@example.com", "name": {"givenName": "Pat", "familyName": "Ode"},
        "password": password, "active": true});
    let created = client
        .post(&users)
        .bearer_auth(&token)
        .header("content-type", "application/scim+json");
    let created = created.body(okta.to_string()).send().await.unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let id = created.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let found = client
        .get(format!(
            "{users}?filter=userName%20eq%20%22pat%40example.com%22&token={token}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(found.status(), StatusCode::OK);
    let patch = json!({"Operations": [{"op": "replace", "path": "password", "value": password},
        {"op": "replace", "value": {"active": false}}]});
    let patched = client.patch(format!("{users}/{id}")).bearer_auth(&token);
    let patched = patched.body(patch.to_string()).send().await.unwrap();
    assert_eq!(patched.status(), StatusCode::OK);
    // Refused: a body that is no JSON but holds the password, and a guess at the token.
    let refused = client
        .post(&users)
        .bearer_auth(&token)
        .body(format!("{{{password}"))
        .send();
    assert_eq!(refused.await.unwrap().status(), StatusCode::BAD_REQUEST);
    let guess = format!("{}x", &token[..token.len() - 1]);
    let refused = client.get(&users).bearer_auth(&guess).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    secrets.push(guess);

    let log = stop_and_search_the_log(server, &secrets, " (provisioning)").await;
    assert!(
        log.contains("/scim/v2/Users/{id}"),
        "provisioning is logged by pattern"
    );
}

/// Sign-in through the identity provider, at debug level in the real binary: its client secret,
/// the codes and ID tokens the provider handed out, and the session that came of it leave
/// nothing in the log; nor do the answers refused (a forged state, a replayed code).
async fn no_client_secret_code_or_id_token_reaches_the_log(app: TestApp) {
    use crate::identity_provider::{Person, Provider, CLIENT_ID, CLIENT_SECRET};
    let provider = Provider::start().await;
    let server = ServerProcess::start(
        &app.database_url,
        &[
            ("RUST_LOG", "debug"),
            ("TOKENDESK_OIDC_ISSUER", provider.issuer.as_str()),
            ("TOKENDESK_OIDC_CLIENT_ID", CLIENT_ID),
            ("TOKENDESK_OIDC_CLIENT_SECRET", CLIENT_SECRET),
            ("TOKENDESK_OIDC_PROVIDER_NAME", "Acme SSO"),
        ],
    )
    .await;
    let (_, _, mut secrets) = setup_then_a_member_by_one_time_link(&server.address).await;
    provider.at_the_keyboard(Person::new("sub-lou", "lou@example.com", "Lou"));
    let browser = Browser::at(&server.address, Default::default());
    let start = browser.get("/sign-in/sso").await;
    let at_provider = browser.client.get(location(&start)).send().await.unwrap();
    let answer = location(&at_provider).to_owned();
    // A forged state first (it uses the sign-in up), then the real sign-in, then its replay.
    let forged = answer.replace("state=", "state=x");
    assert_eq!(
        browser.client.get(&forged).send().await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    let start = browser.get("/sign-in/sso").await;
    let at_provider = browser.client.get(location(&start)).send().await.unwrap();
    let answer = location(&at_provider).to_owned();
    let back = browser.client.get(&answer).send().await.unwrap();
    assert_eq!(back.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        browser.get("/developer/access-tokens").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        browser.client.get(&answer).send().await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    secrets.push(CLIENT_SECRET.to_owned());
    secrets.extend(provider.handed_out());
    let cookie = browser.cookie_header();
    secrets.push(cookie.split_once('=').unwrap().1.to_owned());
    let (_, token) = app.token_for(1, "ci", &["tag:read"]).await;
    secrets.push(token.clone());
    secrets.push(present_every_way(&server.address, &token).await);
    let log = stop_and_search_the_log(server, &secrets, " (identity provider)").await;
    assert!(
        log.contains("/sign-in/sso/callback"),
        "the callback is logged by its path"
    );
}

/// With `--log-format json` every line is one JSON object, and a request's lines carry the id
/// its response names in `X-Request-Id`.
async fn json_logs_follow_one_request_by_its_id(app: TestApp) {
    let server = ServerProcess::start(
        &app.database_url,
        &[("RUST_LOG", "info"), ("TOKENDESK_LOG_FORMAT", "json")],
    )
    .await;
    let response = reqwest::get(format!("{}/healthz", server.address))
        .await
        .unwrap();
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let (_, server) = server.terminate().await;
    let log = std::fs::read_to_string(&server.log).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let access = lines
        .iter()
        .find(|line| line["span"]["id"] == id.as_str())
        .unwrap_or_else(|| panic!("no line of request {id}:\n{log}"));
    assert_eq!(access["fields"]["route"], "/healthz");
    assert_eq!(access["fields"]["status"], 200);
}
