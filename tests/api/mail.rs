//! Mail notifications through a real SMTP server (tests/api/smtp.rs): each arrives once, to the
//! right person, with the token's name and never its secret; retried with backoff and audited;
//! across a restart and with two instances on one database. And the banner of tokens about to
//! expire, which works with no mail at all.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use reqwest::StatusCode;
use serde_json::json;
use tokendesk::config::SmtpUrl;
use tokendesk::db::schema::notifications as n;
use tokendesk::domain::Role;

use crate::backend_tests;
use crate::helpers::{
    days_ago, user_and_browser, Browser, TestApp, TokenTimes, ADMIN_EMAIL, USER_PASSWORD,
};
use crate::server::ServerProcess;
use crate::smtp::{Mail, SmtpServer};

backend_tests!(
    a_new_token_is_mailed_once_to_its_owner_without_its_secret,
    a_token_revoked_by_an_admin_is_mailed_to_its_owner_and_not_one_revoked_by_its_owner,
    tokens_revoked_in_bulk_or_for_going_unused_are_mailed_to_their_owner,
    a_token_reported_leaked_is_mailed_to_its_owner_without_its_secret,
    an_application_token_is_mailed_to_its_maintainers_but_not_to_who_revoked_it,
    a_reminder_for_an_expiry_a_regenerate_replaced_is_not_sent,
    expiry_reminders_come_30_7_and_1_days_before_each_once,
    a_refused_mail_is_retried_with_backoff_and_audited,
    two_instances_send_each_mail_once,
    a_mail_enqueued_before_a_restart_is_sent_once_after_it_and_no_secret_reaches_the_log,
    a_mail_whose_sender_was_killed_mid_send_is_sent_once_by_the_next_instance,
    tokens_expiring_within_a_week_are_listed_with_regenerate_without_mail,
    a_use_from_a_new_address_is_mailed_once_to_the_owner,
);

const PORTAL: &str = "https://tokens.example.com";
const FROM: &str = "tokendesk@tokens.example.com";

/// A server on `app`'s backend that mails through `smtp`, polling every 50 ms and retrying
/// after 0.2 s.
async fn mailing(app: TestApp, smtp: &SmtpServer) -> TestApp {
    mailing_with(app, smtp, |_| {}).await
}

/// [`mailing`], with `adjust` changing other settings.
async fn mailing_with(
    app: TestApp,
    smtp: &SmtpServer,
    adjust: impl FnOnce(&mut tokendesk::config::ServeConfig),
) -> TestApp {
    let backend = app.backend();
    drop(app);
    let url = smtp.url(None);
    TestApp::spawn_with(backend, |config| {
        mail_settings(config, &url);
        adjust(config);
    })
    .await
}

fn mail_settings(config: &mut tokendesk::config::ServeConfig, smtp_url: &str) {
    config.smtp_url = Some(SmtpUrl::new(smtp_url));
    config.public_url = Some(PORTAL.into());
    config.mail_from = format!("tokendesk <{FROM}>");
    config.mail_poll_secs = 0.05;
    config.mail_retry_secs = 0.2;
}

/// Linus, a member.
async fn linus(app: &TestApp) -> tokendesk::users::User {
    app.create_user("linus@example.com", USER_PASSWORD, Role::User)
        .await
}

/// Linus, and a token of his that makes tokens through the API (made in the store: no mail).
async fn linus_and_a_maker(app: &TestApp) -> (tokendesk::users::User, String) {
    let linus = linus(app).await;
    let scopes = ["personalAccessToken:write", "tag:read"];
    let (_, maker) = app.token_for(linus.id, "maker", &scopes).await;
    (linus, maker)
}

/// Notifications neither sent nor given up yet.
async fn pending(app: &TestApp) -> i64 {
    app.db
        .run(|conn| {
            n::table
                .filter(n::sent_at.is_null())
                .filter(n::abandoned_at.is_null())
                .count()
                .get_result(conn)
        })
        .await
        .unwrap()
}

/// Waits until `expected` mails arrived and nothing is left to send, then returns every mail:
/// any duplicate would have arrived by then (a mail is marked sent only after the server took it).
async fn settled(app: &TestApp, smtp: &SmtpServer, expected: usize) -> Vec<Mail> {
    smtp.wait_for(expected).await;
    let started = Instant::now();
    while pending(app).await > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "mail still pending"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    smtp.mails()
}

/// Mails whose subject holds `text`.
fn about<'a>(mails: &'a [Mail], text: &str) -> Vec<&'a Mail> {
    mails
        .iter()
        .filter(|m| m.subject().contains(text))
        .collect()
}

async fn a_new_token_is_mailed_once_to_its_owner_without_its_secret(app: TestApp) {
    let smtp = SmtpServer::start().await;
    let app = mailing(app, &smtp).await;
    app.setup_admin().await;
    let (linus, browser) = user_and_browser(&app, "linus@example.com", Role::User).await;

    let secret = browser
        .create_token("deploy-prod", "90", &["tag:read"])
        .await;

    let mails = settled(&app, &smtp, 1).await;
    assert_eq!(mails.len(), 1, "{mails:#?}");
    let mail = &mails[0];
    assert_eq!(mail.to, ["linus@example.com"]);
    assert_eq!(mail.from, FROM);
    let id = crate::helpers::stored_tokens(&app, linus.id).await[0].id;
    assert!(
        mail.raw
            .contains("Message-ID: <notification-1@tokens.example.com>"),
        "one Message-ID for every try: {}",
        mail.raw
    );
    assert!(
        mail.subject().contains("“deploy-prod” was created"),
        "{}",
        mail.subject()
    );
    let body = mail.body();
    assert!(body.contains("“deploy-prod”"), "{body}");
    assert!(
        body.contains(&format!("{PORTAL}/developer/access-tokens/{id}")),
        "{body}"
    );
    assert_no_secret(mail, &secret);
}

/// Neither the secret nor its hint's tail (the last four characters) is in the message, raw
/// or decoded.
fn assert_no_secret(mail: &Mail, secret: &str) {
    for text in [&mail.raw, &mail.body(), &mail.subject()] {
        assert!(!text.contains(secret), "the secret is in {text}");
        assert!(
            !text.contains(&secret[secret.len() - 4..]),
            "the hint is in {text}"
        );
    }
}

async fn a_token_revoked_by_an_admin_is_mailed_to_its_owner_and_not_one_revoked_by_its_owner(
    app: TestApp,
) {
    let smtp = SmtpServer::start().await;
    let app = mailing(app, &smtp).await;
    let admin = app.setup_admin().await;
    let (linus, browser) = user_and_browser(&app, "linus@example.com", Role::User).await;
    browser
        .create_token("own-revoke", "30", &["tag:read"])
        .await;
    browser
        .create_token("admin-revoke", "30", &["tag:read"])
        .await;
    let tokens = crate::helpers::stored_tokens(&app, linus.id).await;
    let id_of = |name: &str| tokens.iter().find(|t| t.name == name).unwrap().id;

    let path = format!("/developer/access-tokens/{}/revoke", id_of("own-revoke"));
    let response = browser
        .submit_form(&path, &path, &[("confirm", "DELETE")])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let path = format!("/admin/access-tokens/{}/revoke", id_of("admin-revoke"));
    let response = admin
        .submit_form(&path, &path, &[("confirm", "DELETE")])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    let mails = settled(&app, &smtp, 3).await;
    assert_eq!(about(&mails, "was created").len(), 2, "{mails:#?}");
    let revoked = about(&mails, "was revoked");
    assert_eq!(revoked.len(), 1, "{mails:#?}");
    assert_eq!(revoked[0].to, ["linus@example.com"]);
    assert!(revoked[0].subject().contains("“admin-revoke”"));
    assert!(
        revoked[0]
            .body()
            .contains(&format!("{ADMIN_EMAIL} revoked")),
        "{}",
        revoked[0].body()
    );
    assert_eq!(mails.len(), 3);
}

async fn tokens_revoked_in_bulk_or_for_going_unused_are_mailed_to_their_owner(app: TestApp) {
    let smtp = SmtpServer::start().await;
    let app = mailing_with(app, &smtp, |config| config.auto_revoke_interval_secs = 0.1).await;
    let admin = app.setup_admin().await;
    let linus = linus(&app).await;
    // Made in the store: no "created" mail.
    for name in ["bulk-1", "bulk-2"] {
        app.token_for(linus.id, name, &["tag:read"]).await;
    }
    let (idle, _) = app.token_for(linus.id, "idle", &["tag:read"]).await;
    let times = TokenTimes {
        created_at: Some(days_ago(40)),
        ..TokenTimes::default()
    };
    app.set_token_times(idle, times).await;

    let html = admin
        .page("/admin/access-tokens/bulk-revoke?name=bulk")
        .await;
    let csrf = crate::helpers::csrf_token(&html);
    let fields = [
        ("csrf_token", csrf.as_str()),
        ("filters", "name=bulk"),
        ("expected", "2"),
        ("confirm", "DELETE"),
    ];
    let response = admin
        .post("/admin/access-tokens/bulk-revoke", &fields)
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let mails = settled(&app, &smtp, 2).await;
    assert_eq!(mails.len(), 2, "{mails:#?}");
    for name in ["bulk-1", "bulk-2"] {
        let revoked = about(&mails, &format!("“{name}” was revoked"));
        assert_eq!(revoked.len(), 1, "{name}");
        assert_eq!(revoked[0].to, ["linus@example.com"]);
        assert!(
            revoked[0]
                .body()
                .contains("with other tokens matching a search"),
            "{}",
            revoked[0].body()
        );
    }

    let policy = [("revoke_unused_after_days", "30")];
    let response = admin.save_token_policy(&policy).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let mails = settled(&app, &smtp, 3).await;
    assert_eq!(mails.len(), 3, "{mails:#?}");
    let revoked = about(&mails, "“idle” was revoked");
    assert_eq!(revoked.len(), 1);
    assert!(
        revoked[0].body().contains("it was not used for 30 days"),
        "{}",
        revoked[0].body()
    );
}

async fn a_token_reported_leaked_is_mailed_to_its_owner_without_its_secret(app: TestApp) {
    let smtp = SmtpServer::start().await;
    let app = mailing(app, &smtp).await;
    let linus = linus(&app).await;
    let (_, secret) = app.token_for(linus.id, "leaky", &["tag:read"]).await;
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/credentials/revoke", app.address))
        .json(&json!({ "tokens": [secret] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);

    let mails = settled(&app, &smtp, 1).await;
    assert_eq!(mails.len(), 1, "{mails:#?}");
    assert_eq!(mails[0].to, ["linus@example.com"]);
    assert!(mails[0].subject().contains("“leaky” was revoked"));
    assert!(
        mails[0].body().contains("was reported as leaked"),
        "{}",
        mails[0].body()
    );
    assert_no_secret(&mails[0], &secret);
}

async fn an_application_token_is_mailed_to_its_maintainers_but_not_to_who_revoked_it(app: TestApp) {
    use tokendesk::accounts::applications as service;
    let smtp = SmtpServer::start().await;
    let app = mailing(app, &smtp).await;
    app.setup_admin().await;
    let ada = tokendesk::audit::Actor {
        user_id: 1,
        email: ADMIN_EMAIL.into(),
        client_ip: "127.0.0.1".into(),
    };
    let details = tokendesk::domain::ApplicationInput {
        name: "Billing".into(),
        description: String::new(),
    };
    let billing = service::create(&app.db, ada.clone(), details.parse().unwrap())
        .await
        .unwrap()
        .id;
    let linus = linus(&app).await;
    app.create_user("grace@example.com", USER_PASSWORD, Role::User)
        .await;
    for email in ["linus@example.com", "grace@example.com"] {
        let email = tokendesk::domain::Email::parse(email).unwrap();
        service::add_maintainer(&app.db, ada.clone(), billing, email)
            .await
            .unwrap();
    }
    let manages = ["applicationToken:read", "applicationToken:write"];
    let (_, linuses) = app.token_for(linus.id, "apps", &manages).await;
    let tokens = format!("{}/api/v1/applications/{billing}/tokens", app.address);
    let client = reqwest::Client::new();
    let response = client
        .post(&tokens)
        .bearer_auth(&linuses)
        .json(&json!({"name": "deploy", "expires_in": "30", "scopes": ["tag:read"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: serde_json::Value = response.json().await.unwrap();
    let id = created["token"]["id"].as_i64().unwrap();
    let response = client
        .delete(format!("{tokens}/{id}"))
        .bearer_auth(&linuses)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());

    let mails = settled(&app, &smtp, 3).await;
    assert_eq!(mails.len(), 3, "{mails:#?}");
    let mut told: Vec<&str> = about(&mails, "“deploy” was created")
        .iter()
        .map(|m| m.to[0].as_str())
        .collect();
    told.sort();
    assert_eq!(told, ["grace@example.com", "linus@example.com"]);
    let revoked = about(&mails, "“deploy” was revoked");
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].to, ["grace@example.com"]);
    assert!(revoked[0].subject().starts_with("Billing's access token"));
    let body = revoked[0].body();
    assert!(
        body.contains(&format!(
            "{PORTAL}/developer/applications/{billing}/tokens/{id}"
        )),
        "{body}"
    );
    assert!(
        body.contains("linus@example.com revoked the application token"),
        "{body}"
    );
}

/// A reminder enqueued for an expiry that a regenerate then replaced is dropped, not sent; the
/// new expiry gets reminders of its own.
async fn a_reminder_for_an_expiry_a_regenerate_replaced_is_not_sent(app: TestApp) {
    let smtp = SmtpServer::start().await;
    let app = mailing(app, &smtp).await;
    let linus = linus(&app).await;
    let (id, _) = app.token_for(linus.id, "nightly", &["tag:read"]).await;
    let first_expiry = days_ago(-3);
    let times = TokenTimes {
        created_at: Some(days_ago(60)),
        expires_at: Some(first_expiry),
        ..TokenTimes::default()
    };
    // The server refuses every try until the expiry has moved: the reminder is still waiting.
    smtp.refuse_next(usize::MAX);
    app.set_token_times(id, times).await;
    let started = Instant::now();
    while app.audit_events("mail.failed").await.is_empty() {
        assert!(started.elapsed() < Duration::from_secs(20), "no try");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let times = TokenTimes {
        expires_at: Some(days_ago(-6)),
        ..TokenTimes::default()
    };
    app.set_token_times(id, times).await;
    smtp.refuse_next(0);

    // The new expiry's 7-day reminder arrives; the old one never does.
    let mails = settled(&app, &smtp, 1).await;
    let dropped: Vec<Option<String>> = app
        .db
        .run(|conn| {
            n::table
                .filter(n::abandoned_at.is_not_null())
                .select(n::last_error)
                .load(conn)
        })
        .await
        .unwrap();
    assert_eq!(dropped.len(), 1, "{dropped:?}");
    assert!(dropped[0].as_deref().unwrap().contains("new expiry"));
    assert_eq!(mails.len(), 1, "{mails:#?}");
    let expected = first_expiry + chrono::Duration::days(3);
    let date = expected.format("%Y-%m-%d").to_string();
    assert!(mails[0].body().contains(&date), "{}", mails[0].body());
}

async fn expiry_reminders_come_30_7_and_1_days_before_each_once(app: TestApp) {
    let smtp = SmtpServer::start().await;
    let app = mailing(app, &smtp).await;
    app.setup_admin().await;
    let linus = linus(&app).await;
    // Made in the store: no "created" mail, only reminders. 90 days to live.
    let (id, _) = app.token_for(linus.id, "nightly", &["tag:read"]).await;
    let expires_at = chrono::Utc::now().naive_utc() + chrono::Duration::days(90);
    let times = TokenTimes {
        expires_at: Some(expires_at),
        ..TokenTimes::default()
    };
    app.set_token_times(id, times).await;
    let day = Duration::from_secs(86_400);

    let mut expected = 0;
    for (move_by, subject) in [
        (61, "expires in 30 days"),
        (23, "expires in 7 days"),
        (5, "expires in 1 day"),
    ] {
        app.clock.advance(day * move_by);
        expected += 1;
        let mails = settled(&app, &smtp, expected).await;
        assert_eq!(mails.len(), expected, "{mails:#?}");
        let last = mails.last().unwrap();
        assert_eq!(last.to, ["linus@example.com"]);
        assert!(last.subject().contains(subject), "{}", last.subject());
        assert!(last.subject().contains("“nightly”"));
        assert!(
            last.body()
                .contains(&format!("{PORTAL}/developer/access-tokens/{id}/regenerate")),
            "{}",
            last.body()
        );
    }
}

async fn a_refused_mail_is_retried_with_backoff_and_audited(app: TestApp) {
    let smtp = SmtpServer::start().await;
    let app = mailing_with(app, &smtp, |config| config.mail_max_attempts = 3).await;
    let admin = app.setup_admin().await;
    let (_, browser) = user_and_browser(&app, "linus@example.com", Role::User).await;

    // Refused twice, then taken: it arrives once, at its third attempt.
    smtp.refuse_next(2);
    browser.create_token("flaky", "30", &["tag:read"]).await;
    let mails = settled(&app, &smtp, 1).await;
    assert_eq!(mails.len(), 1);
    let attempts: Vec<(i32, Option<String>)> = app
        .db
        .run(|conn| n::table.select((n::attempts, n::last_error)).load(conn))
        .await
        .unwrap();
    assert_eq!(attempts, [(3, None)]);
    let failed = app.audit_events("mail.failed").await;
    assert_eq!(failed.len(), 2, "{failed:#?}");
    assert_eq!(failed[0].target_label.as_deref(), Some("flaky"));
    assert!(
        failed[0].details.contains("linus@example.com") && failed[0].details.contains("451"),
        "{}",
        failed[0].details
    );
    // Admins see it in the audit trail.
    let html = admin.page("/admin/audit?action=mail.failed").await;
    assert!(html.contains("Mail failed"), "{html}");
    assert!(html.contains("next try at"));

    // Refused every time: given up after 3 attempts, audited, never sent.
    smtp.refuse_next(usize::MAX);
    browser.create_token("doomed", "30", &["tag:read"]).await;
    let mails = settled(&app, &smtp, 1).await;
    assert_eq!(mails.len(), 1);
    let abandoned = app.audit_events("mail.abandoned").await;
    assert_eq!(abandoned.len(), 1, "{abandoned:#?}");
    assert_eq!(abandoned[0].target_label.as_deref(), Some("doomed"));
    assert_eq!(app.audit_events("mail.failed").await.len(), 4);
    let html = admin.page("/admin/audit?action=mail.abandoned").await;
    assert!(html.contains("given up"), "{html}");
}

async fn two_instances_send_each_mail_once(app: TestApp) {
    let smtp = SmtpServer::start().await;
    let app = mailing(app, &smtp).await;
    let url = smtp.url(None);
    let second = app
        .another_instance(|config| mail_settings(config, &url))
        .await;
    let (linus, maker) = linus_and_a_maker(&app).await;
    // Five tokens about to expire, found by both instances' reminder scans.
    for i in 0..5 {
        let (id, _) = app
            .token_for(linus.id, &format!("expiring-{i}"), &["tag:read"])
            .await;
        let times = TokenTimes {
            created_at: Some(days_ago(60)),
            expires_at: Some(days_ago(-5)),
            ..TokenTimes::default()
        };
        app.set_token_times(id, times).await;
    }
    // Twelve made through the API, on one instance and the other.
    let api = app.api();
    let mut secrets = Vec::new();
    for i in 0..12 {
        let address = if i % 2 == 0 { &app.address } else { &second };
        let response = api
            .client
            .post(format!("{address}/api/v1/personal-access-tokens"))
            .bearer_auth(&maker)
            .json(&json!({"name": format!("made-{i}"), "expires_in": "30", "scopes": ["tag:read"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: serde_json::Value = response.json().await.unwrap();
        secrets.push(body["secret"].as_str().unwrap_or_default().to_owned());
    }

    let mails = settled(&app, &smtp, 17).await;
    assert_eq!(mails.len(), 17, "{mails:#?}");
    for i in 0..12 {
        let name = format!("“made-{i}” was created");
        assert_eq!(about(&mails, &name).len(), 1, "{name}");
    }
    for i in 0..5 {
        let name = format!("“expiring-{i}” expires in 7 days");
        assert_eq!(about(&mails, &name).len(), 1, "{name}");
    }
    for mail in &mails {
        assert_eq!(mail.to, ["linus@example.com"]);
        for secret in secrets.iter().chain([&maker]) {
            assert!(!secret.is_empty() && !mail.raw.contains(secret.as_str()));
        }
    }
}

/// The real binary, with the SMTP password in its URL and logging at debug level: a mail
/// enqueued by an instance stopped before it could send is sent once by the next one; neither
/// log holds the password or a secret.
async fn a_mail_enqueued_before_a_restart_is_sent_once_after_it_and_no_secret_reaches_the_log(
    app: TestApp,
) {
    const PASSWORD: &str = "smtp-Pa55word-never-logged";
    let smtp = SmtpServer::start().await;
    let url = smtp.url(Some(("mailer", PASSWORD)));
    let (_, maker) = linus_and_a_maker(&app).await;
    let settings = |poll: &'static str| {
        vec![
            ("RUST_LOG", "debug"),
            ("TOKENDESK_SMTP_URL", url.as_str()),
            ("TOKENDESK_PUBLIC_URL", PORTAL),
            ("TOKENDESK_MAIL_POLL_SECS", poll),
        ]
    };
    // The first instance would look for mail only after an hour: it is stopped before.
    let first = ServerProcess::start(&app.database_url, &settings("3600")).await;
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/personal-access-tokens", first.address))
        .bearer_auth(&maker)
        .json(&json!({"name": "across-restart", "expires_in": "30", "scopes": ["tag:read"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: serde_json::Value = response.json().await.unwrap();
    let secret = body["secret"].as_str().unwrap().to_owned();
    let (status, first) = first.terminate().await;
    assert!(status.success());
    assert!(smtp.mails().is_empty(), "nothing sent before the restart");
    assert_eq!(pending(&app).await, 1, "the mail waits in the database");

    let second = ServerProcess::start(&app.database_url, &settings("0.05")).await;
    let mails = settled(&app, &smtp, 1).await;
    assert_eq!(mails.len(), 1, "{mails:#?}");
    assert!(mails[0].subject().contains("“across-restart”"));
    assert_no_secret(&mails[0], &secret);
    let (status, second) = second.terminate().await;
    assert!(status.success());

    for server in [&first, &second] {
        let log = std::fs::read_to_string(&server.log).unwrap();
        assert!(log.contains("mail notifications are on"), "{log}");
        for secret in [PASSWORD, secret.as_str(), maker.as_str()] {
            assert!(!log.contains(secret), "{secret} is in the log");
        }
        assert!(!log.contains(&url));
    }
    assert!(std::fs::read_to_string(&second.log)
        .unwrap()
        .contains("sent a mail"));
}

/// The real binary killed with SIGKILL while the mail server has the message but has not
/// answered: the claim's lease runs out and the next instance sends it; it arrives once.
async fn a_mail_whose_sender_was_killed_mid_send_is_sent_once_by_the_next_instance(app: TestApp) {
    let smtp = SmtpServer::start().await;
    let url = smtp.url(None);
    let (_, maker) = linus_and_a_maker(&app).await;
    let settings = [
        ("TOKENDESK_SMTP_URL", url.as_str()),
        ("TOKENDESK_PUBLIC_URL", PORTAL),
        ("TOKENDESK_MAIL_POLL_SECS", "0.05"),
        ("TOKENDESK_MAIL_RETRY_SECS", "0.05"),
        ("TOKENDESK_MAIL_LEASE_SECS", "4"),
    ];
    smtp.hold(true);
    let mut first = ServerProcess::start(&app.database_url, &settings).await;
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/personal-access-tokens", first.address))
        .bearer_auth(&maker)
        .json(&json!({"name": "mid-send", "expires_in": "30", "scopes": ["tag:read"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let started = Instant::now();
    while smtp.held() == 0 {
        assert!(started.elapsed() < Duration::from_secs(20), "no send began");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.kill_hard();
    smtp.hold(false);
    assert!(smtp.mails().is_empty());

    let _second = ServerProcess::start(&app.database_url, &settings).await;
    let mails = settled(&app, &smtp, 1).await;
    assert_eq!(mails.len(), 1, "{mails:#?}");
    assert!(mails[0].subject().contains("“mid-send” was created"));
    let attempts: Vec<i32> = app
        .db
        .run(|conn| n::table.select(n::attempts).load(conn))
        .await
        .unwrap();
    assert_eq!(attempts.len(), 1);
    assert!(attempts[0] >= 2, "tried again after the kill: {attempts:?}");
}

async fn tokens_expiring_within_a_week_are_listed_with_regenerate_without_mail(app: TestApp) {
    let (linus, browser) = user_and_browser(&app, "linus@example.com", Role::User).await;
    let mut ids = Vec::new();
    for (name, expires_in_days, revoked) in [
        ("soon-a", 3, false),
        ("soon-b", 6, false),
        ("later", 20, false),
        ("revoked-soon", 2, true),
        ("expired", -1, false),
    ] {
        let (id, _) = app.token_for(linus.id, name, &["tag:read"]).await;
        let times = TokenTimes {
            expires_at: Some(days_ago(-expires_in_days) + chrono::Duration::hours(1)),
            revoked_at: revoked.then(|| days_ago(0)),
            ..TokenTimes::default()
        };
        app.set_token_times(id, times).await;
        ids.push(id);
    }
    let html = browser.page("/developer/access-tokens").await;
    let banner = section(&html, "class=\"alert alert-warning expiring\"");
    assert!(banner.contains("Tokens expire within 7 days"), "{banner}");
    for (i, name) in [(0, "soon-a"), (1, "soon-b")] {
        assert!(banner.contains(name), "{banner}");
        let regenerate = format!("href=\"/developer/access-tokens/{}/regenerate\"", ids[i]);
        assert!(banner.contains(&regenerate), "{banner}");
    }
    assert!(banner.contains("Expires in 3 days"), "{banner}");
    for absent in ["later", "revoked-soon", "expired"] {
        assert!(!banner.contains(absent), "{absent} in {banner}");
    }
    // The soonest first.
    assert!(banner.find("soon-a") < banner.find("soon-b"));
    // Without any token near its expiry, no banner.
    let (_, grace) = user_and_browser(&app, "grace@example.com", Role::User).await;
    quiet_list(&grace).await;
}

async fn quiet_list(browser: &Browser) {
    let html = browser.page("/developer/access-tokens").await;
    assert!(!html.contains("expiring-title"), "{html}");
}

/// The element starting at `marker` in `html`, up to its `</section>`.
fn section<'a>(html: &'a str, marker: &str) -> &'a str {
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} in {html}"));
    let rest = &html[start..];
    &rest[..rest.find("</section>").expect("the section ends")]
}

async fn a_use_from_a_new_address_is_mailed_once_to_the_owner(app: TestApp) {
    let smtp = SmtpServer::start().await;
    let app = mailing(app, &smtp).await;
    let linus = linus(&app).await;
    // Made in the store: no mail about its creation.
    let (_, secret) = app.token_for(linus.id, "deploy-prod", &["tag:read"]).await;
    let use_from = |source: &'static str, agent: &'static str| {
        let (address, secret) = (app.address.clone(), secret.clone());
        async move {
            let me = crate::helpers::client_from(source)
                .get(format!("{address}/api/v1/me"))
                .bearer_auth(secret)
                .header("user-agent", agent)
                .send()
                .await
                .unwrap();
            assert_eq!(me.status(), StatusCode::OK);
        }
    };
    // The very first use is no news; the same address again neither.
    use_from("127.0.0.1", "deploy-bot/1.0").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    use_from("127.0.0.1", "deploy-bot/1.0").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(smtp.mails().is_empty(), "{:#?}", smtp.mails());

    for _ in 0..3 {
        use_from("127.0.0.2", "stranger/0.1").await;
    }
    let mails = settled(&app, &smtp, 1).await;
    // Any second mail would have been enqueued by the same write, or the next one.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(pending(&app).await, 0);
    let mails = if smtp.mails().len() > mails.len() {
        smtp.mails()
    } else {
        mails
    };
    assert_eq!(mails.len(), 1, "{mails:#?}");
    let mail = &mails[0];
    assert_eq!(mail.to, ["linus@example.com"]);
    assert!(
        mail.subject()
            .contains("“deploy-prod” was used from a new address"),
        "{}",
        mail.subject()
    );
    let body = mail.body();
    assert!(
        body.contains("127.0.0.2") && body.contains("stranger/0.1"),
        "{body}"
    );
    assert_no_secret(mail, &secret);
}
