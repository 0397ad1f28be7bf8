//! The public leak report, `POST /api/v1/credentials/revoke`: anyone sends what they found, every
//! live tokendesk token in it is revoked at once, and the answer reveals nothing.

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokendesk::domain::Role;

use crate::backend_tests;
use crate::helpers::{api_error, user_and_browser, TestApp};

backend_tests!(
    a_reported_token_is_revoked_at_once_and_its_owner_told_why,
    the_answer_is_the_same_whatever_was_sent,
    reports_of_one_token_at_once_revoke_and_audit_it_once,
    a_report_holds_at_most_100_items_and_one_address_30_reports_a_minute,
);

impl TestApp {
    /// Reports `tokens` as leaked, from this machine, as anyone may.
    async fn report_leaked(&self, tokens: Value) -> reqwest::Response {
        let url = format!("{}/api/v1/credentials/revoke", self.address);
        let body = json!({ "tokens": tokens });
        self.api()
            .client
            .post(url)
            .json(&body)
            .send()
            .await
            .unwrap()
    }
}

async fn a_reported_token_is_revoked_at_once_and_its_owner_told_why(app: TestApp) {
    let (grace, browser) = user_and_browser(&app, "grace@example.com", Role::User).await;
    let (_, leaked) = app
        .token_for(grace.id, "pasted in a gist", &["tag:read"])
        .await;
    let (_, kept) = app
        .token_for(grace.id, "still private", &["tag:read"])
        .await;
    let api = app.api();
    assert_eq!(api.me(&leaked).await.status(), StatusCode::OK);

    let found = format!("  {leaked}\n");
    let response = app
        .report_leaked(json!([found, "hello", "tdk_short"]))
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"received": 3}));

    assert_eq!(
        api.me(&leaked).await.status(),
        StatusCode::UNAUTHORIZED,
        "refused at once"
    );
    assert_eq!(
        api.me(&kept).await.status(),
        StatusCode::OK,
        "the others keep working"
    );
    let events = app.audit_events("token.revoked_leak_report").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].actor_id, None, "nobody who signs in");
    assert_eq!(
        events[0].client_ip.as_deref(),
        Some("127.0.0.1"),
        "the reporter's address"
    );
    assert_eq!(events[0].target_label.as_deref(), Some("pasted in a gist"));

    let list = browser.page("/developer/access-tokens").await;
    assert!(
        list.contains("A token was revoked because someone found it in public"),
        "{list}"
    );
    let revoked = browser.page("/developer/access-tokens?tab=revoked").await;
    assert!(revoked.contains("Reported leaked"));
}

async fn the_answer_is_the_same_whatever_was_sent(app: TestApp) {
    let ada = app
        .create_user("ada@example.com", "adas-password-1", Role::Admin)
        .await;
    let (_, real) = app.token_for(ada.id, "real", &["tag:read"]).await;
    let fake = tokendesk::tokens::TokenSecret::generate()
        .expose()
        .to_owned();
    let mut answers = Vec::new();
    for items in [
        json!([real.clone()]),
        json!([fake]),
        json!([real]),
        json!(["x"]),
    ] {
        let response = app.report_leaked(items).await;
        let status = response.status();
        answers.push((status, response.text().await.unwrap()));
    }
    assert!(
        answers.iter().all(|answer| *answer == answers[0]),
        "real, unknown, already revoked and junk answer alike: {answers:?}"
    );
    assert_eq!(app.audit_events("token.revoked_leak_report").await.len(), 1);
}

async fn reports_of_one_token_at_once_revoke_and_audit_it_once(app: TestApp) {
    let ada = app
        .create_user("ada@example.com", "adas-password-1", Role::Admin)
        .await;
    for round in 0..4 {
        let (_, leaked) = app
            .token_for(ada.id, &format!("leaked {round}"), &["tag:read"])
            .await;
        // 6 at once, 4 rounds: within one address's 30 reports a minute.
        let statuses = join_all((0..6).map(|_| {
            let (app, leaked) = (&app, leaked.clone());
            async move { app.report_leaked(json!([leaked])).await.status() }
        }))
        .await;
        assert!(
            statuses.iter().all(|s| *s == StatusCode::ACCEPTED),
            "{statuses:?}"
        );
        assert_eq!(
            app.api().me(&leaked).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let events = app.audit_events("token.revoked_leak_report").await;
    assert_eq!(
        events.len(),
        4,
        "one event a token, however many reported it at once"
    );
}

async fn a_report_holds_at_most_100_items_and_one_address_30_reports_a_minute(app: TestApp) {
    let items: Vec<String> = (0..101).map(|i| format!("item {i}")).collect();
    let response = app.report_leaked(json!(items)).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (_, code, message) = api_error(response).await;
    assert_eq!(code, "validation_failed");
    assert!(message.contains("not valid"), "{message}");
    // That was one report; 29 more are taken, the 31st waits.
    for _ in 0..29 {
        let status = app.report_leaked(json!(["x"])).await.status();
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    let limited = app.report_leaked(json!(["x"])).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key("retry-after"));
}

/// The README's offline check, run as written by Python on tokens of both kinds and near misses.
#[test]
fn the_readmes_offline_check_tells_real_tokens_from_near_misses() {
    use tokendesk::tokens::{TokenKind, TokenSecret};
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("```python\nimport zlib")
        .expect("the check in the README")
        + 10;
    let check = &readme[start..start + readme[start..].find("```").unwrap()];
    let personal = TokenSecret::generate().expose().to_owned();
    let application = TokenSecret::generate_kind(TokenKind::Application)
        .expose()
        .to_owned();
    let typo = format!(
        "{}{}",
        &personal[..20],
        if &personal[20..21] == "a" { "b" } else { "a" }
    ) + &personal[21..];
    let script = format!(
        "{check}\nprint([is_tokendesk_token(t) for t in {:?}])",
        [
            &personal,
            &application,
            &typo,
            &personal.replacen("tdk_", "tda_", 1)
        ]
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 (Debian's) runs the README's check");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "[True, True, False, False]",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
