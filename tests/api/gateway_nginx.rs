//! A real nginx (Debian's package) with `auth_request` in front of an upstream, configured
//! as the README says.

use std::net::IpAddr;

use reqwest::StatusCode;
use tokendesk::domain::Role;

use crate::backend_tests;
use crate::helpers::a_guess_at;
use crate::helpers::TestApp;
use crate::nginx::{free_port, port_of, Nginx};

backend_tests!(
    nginx_lets_through_only_what_tokendesk_accepts,
    one_guessing_client_does_not_lock_the_others_out_of_nginx,
);

async fn nginx_lets_through_only_what_tokendesk_accepts(app: TestApp) {
    let nginx = Nginx::start(port_of(&app)).await;
    let base = format!("http://127.0.0.1:{}", nginx.port);
    let client = reqwest::Client::new();

    let user = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let admin = app
        .create_user("root@example.com", "root-password-1", Role::Admin)
        .await;
    let (reader_id, reader) = app.token_for(user.id, "reader", &["license:read"]).await;
    let (_, writer) = app.token_for(admin.id, "writer", &["license:write"]).await;

    let get = |path: String, header: Option<(&'static str, String)>| {
        let mut request = client.get(format!("{base}{path}"));
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.text().await.unwrap())
        }
    };

    for (path, header) in [
        (
            "/service/a".to_owned(),
            Some(("authorization", format!("Bearer {reader}"))),
        ),
        (
            "/service/b".to_owned(),
            Some(("x-auth-token", reader.clone())),
        ),
        (format!("/service/c?token={reader}"), None),
        (format!("/{reader}/api/v0/add"), None),
        (format!("/ext/bc/C/rpc/{reader}"), None),
    ] {
        let (status, body) = get(path.clone(), header).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(body.contains("for grace@example.com"), "{path}: {body}");
    }

    assert_eq!(
        get("/service/a".into(), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let typo = crate::helpers::a_guess_at(&reader);
    assert_eq!(
        get("/service/a".into(), Some(("x-auth-token", typo)))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );

    // A required scope.
    let (status, _) = get("/licenses/1".into(), Some(("x-auth-token", reader.clone()))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = get("/licenses/1".into(), Some(("x-auth-token", writer.clone()))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("for root@example.com"));

    // Revocation is refused on the very next request.
    app.db
        .write(move |conn| tokendesk::tokens::store::revoke(conn, reader_id, user.id))
        .await
        .unwrap();
    let (status, _) = get("/service/a".into(), Some(("x-auth-token", reader.clone()))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// A client whose connections come from `ip`: any address of 127.0.0.0/8 is this machine on
/// Linux, so the test can be several clients that nginx tells apart by their real address.
fn client_at(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn one_guessing_client_does_not_lock_the_others_out_of_nginx(app: TestApp) {
    let backend = app.backend();
    drop(app);
    // Started as the README says to behind nginx; 20 bad tokens a minute is the default limit.
    let app = TestApp::spawn_with(backend, |config| {
        config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        config.token_failure_limit = 20;
        config.token_failure_window_secs = 60;
    })
    .await;
    let nginx = Nginx::start(port_of(&app)).await;
    let user = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let (_, good) = app.token_for(user.id, "reader", &["license:read"]).await;
    let guess = a_guess_at(&good);
    let url = format!("http://127.0.0.1:{}/service/a", nginx.port);
    let (guesser, bystander) = (client_at("127.0.0.2"), client_at("127.0.0.3"));
    let send = |client: &reqwest::Client, token: &str, forwarded_for: Option<&str>| {
        let mut request = client.get(&url).header("x-auth-token", token);
        if let Some(claimed) = forwarded_for {
            request = request.header("x-forwarded-for", claimed);
        }
        async move {
            let response = request.send().await.unwrap();
            let retry_after = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            (response.status(), retry_after)
        }
    };

    for n in 0..20 {
        let (status, _) = send(&guesser, &guess, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "guess {n}");
    }
    let (status, retry_after) = send(&guesser, &guess, None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "not nginx's 500");
    let retry_after: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!(
        (1..=61).contains(&retry_after),
        "Retry-After: {retry_after}"
    );
    println!("nginx: after 20 bad tokens the guesser gets 429, Retry-After: {retry_after}");
    assert_eq!(
        send(&guesser, &good, None).await.0,
        StatusCode::TOO_MANY_REQUESTS,
        "while blocked, even the good token"
    );
    assert_eq!(
        send(&guesser, &good, Some("127.0.0.3")).await.0,
        StatusCode::TOO_MANY_REQUESTS,
        "claiming the bystander's address does not help: nginx appends the real one"
    );

    let (status, retry_after) = send(&bystander, &good, None).await;
    assert_eq!(status, StatusCode::OK, "another client is served");
    assert_eq!(retry_after, None);
    assert_eq!(
        send(&bystander, &good, Some("127.0.0.2")).await.0,
        StatusCode::OK,
        "nor is it blocked by claiming the guesser's address"
    );
    assert_eq!(
        send(&bystander, &guess, None).await.0,
        StatusCode::UNAUTHORIZED,
        "and its own bad token is a plain 401"
    );
}

#[tokio::test]
async fn with_tokendesk_down_nginx_answers_a_plain_500() {
    // Nothing listens on tokendesk's port: auth_request fails, and no Retry-After was set.
    let nginx = Nginx::start(free_port()).await;
    let response = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/service/a", nginx.port))
        .header("x-auth-token", "tdk_anything")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(response.headers().get("retry-after").is_none());
}

/// The README's nginx snippet, with its example addresses, appears line for line in the
/// configuration these tests run.
#[test]
fn the_readme_shows_the_nginx_configuration_the_tests_run() {
    let readme = include_str!("../../README.md");
    let start = readme.find("```nginx\n").expect("an nginx block") + "```nginx\n".len();
    let end = readme[start..].find("```").unwrap() + start;
    let shown: Vec<String> = readme[start..end]
        .replace("127.0.0.1:8080", "127.0.0.1:{TOKENDESK}")
        .replace("http://my-service", "http://127.0.0.1:{UPSTREAM}")
        .lines()
        .map(|line| line.trim().to_owned())
        .collect();
    crate::nginx::assert_fixture_shows(
        &shown,
        include_str!("fixtures/nginx.conf"),
        "tests/api/fixtures/nginx.conf",
    );
}
