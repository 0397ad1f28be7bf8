//! A request let in when it began must not act on rights lost before it writes: an attacker
//! holds its body back, the rights go, then the body arrives.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use reqwest::StatusCode;
use tokendesk::domain::Role;

use crate::backend_tests;
use crate::helpers::{csrf_token, location, Browser, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};

backend_tests!(
    a_demoted_admins_held_request_changes_nothing,
    a_revoked_tokens_held_request_makes_no_token,
);

/// A request whose head and first bytes of body are sent; [`Held::finish`] sends the rest.
struct Held {
    stream: TcpStream,
    rest: String,
}

impl Held {
    async fn start(app: &TestApp, head: &str, body: &str) -> Held {
        let port = app.address.rsplit(':').next().unwrap();
        let mut stream = TcpStream::connect(format!("127.0.0.1:{port}"))
            .await
            .unwrap();
        let (first, rest) = body.split_at(5);
        let request = format!(
            "{head}Content-Length: {}\r\nConnection: close\r\n\r\n{first}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        // Let the server read the head and start the handler before the rights change.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        Held {
            stream,
            rest: rest.to_owned(),
        }
    }

    /// The status line of the answer.
    async fn finish(mut self) -> String {
        self.stream.write_all(self.rest.as_bytes()).await.unwrap();
        let mut answer = String::new();
        self.stream.read_to_string(&mut answer).await.unwrap();
        answer.lines().next().unwrap_or_default().to_owned()
    }
}

async fn a_demoted_admins_held_request_changes_nothing(app: TestApp) {
    let ada = app.setup_admin().await;
    let bob = app
        .create_user("bob@example.com", "bobs-password-1", Role::Admin)
        .await;
    let bob_browser = Browser::at(&app.address, Default::default());
    let signed_in = bob_browser
        .sign_in("bob@example.com", "bobs-password-1")
        .await;
    assert_eq!(location(&signed_in), "/developer/access-tokens");
    let csrf = csrf_token(&bob_browser.page("/admin/members").await);
    let head = |path: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\n",
            bob_browser.cookie_header()
        )
    };
    // Bob holds two requests: make a new admin, and change the token policy.
    let new_admin = format!(
        "csrf_token={csrf}&display_name=Mallory&email=mallory%40example.com&role=admin\
         &method=password&password=mallorys-password&password_confirm=mallorys-password"
    );
    let add = Held::start(&app, &head("/admin/members"), &new_admin).await;
    let policy = format!(
        "csrf_token={csrf}&max_lifetime_days=&default_expiry=never&max_active_tokens=10000\
         &application_max_lifetime_days=365&application_scope_rule=any"
    );
    let save = Held::start(&app, &head("/admin/settings"), &policy).await;

    let csrf_ada = csrf_token(&ada.page("/admin/members").await);
    let page = format!("/admin/members/{}/role", bob.id);
    let demoted = ada
        .post(
            &page,
            &[("csrf_token", csrf_ada.as_str()), ("role", "user")],
        )
        .await;
    assert_eq!(demoted.status(), StatusCode::SEE_OTHER);

    assert!(add.finish().await.contains("403"), "the member was made");
    assert!(save.finish().await.contains("403"), "the policy was saved");
    let mallory = app
        .db
        .run(|conn| {
            let email = tokendesk::domain::Email::parse("mallory@example.com").unwrap();
            tokendesk::users::find_by_email(conn, &email)
        })
        .await
        .unwrap();
    assert!(mallory.is_none(), "a demoted admin made an account");
    assert!(app.audit_events("policy.changed").await.is_empty());
    let signed_in = app.browser().sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
}

async fn a_revoked_tokens_held_request_makes_no_token(app: TestApp) {
    let kim = app
        .create_user("kim@example.com", "kims-password-1", Role::User)
        .await;
    let (maker_id, maker) = app
        .token_for(kim.id, "maker", &["personalAccessToken:write", "tag:read"])
        .await;
    let head = format!(
        "POST /api/v1/personal-access-tokens HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Authorization: Bearer {maker}\r\nContent-Type: application/json\r\n"
    );
    let body = r#"{"name":"made after the revoke","expires_in":"never","scopes":["tag:read"]}"#;
    let held = Held::start(&app, &head, body).await;
    let revoke = app
        .api()
        .client
        .delete(format!(
            "{}/api/v1/personal-access-tokens/{maker_id}",
            app.address
        ))
        .bearer_auth(&maker)
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), StatusCode::NO_CONTENT);
    let answer = held.finish().await;
    assert!(answer.contains("401"), "{answer}");
    let tokens = crate::helpers::stored_tokens(&app, kim.id).await;
    assert_eq!(tokens.len(), 1, "only the revoked maker exists");
}
