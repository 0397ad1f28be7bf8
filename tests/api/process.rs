//! The real `tokendesk` binary as a process: graceful shutdown, and what it writes to its log.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use reqwest::StatusCode;
use tokendesk::domain::Role;

use crate::backend_tests;
use crate::helpers::{Presented, TestApp, EVERY_WAY};
use crate::server::ServerProcess;

backend_tests!(
    sigterm_drains_and_writes_pending_last_used,
    no_log_line_contains_a_token,
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

async fn no_log_line_contains_a_token(app: TestApp) {
    let user = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let (_, token) = app.token_for(user.id, "ci", &["tag:read"]).await;
    let server = ServerProcess::start(
        &app.database_url,
        &[
            ("RUST_LOG", "debug"),
            ("TOKENDESK_LAST_USED_FLUSH_SECS", "0.2"),
        ],
    )
    .await;
    let api = crate::helpers::Api {
        address: server.address.clone(),
        client: reqwest::Client::new(),
    };
    for way in EVERY_WAY {
        let response = api.get("/me", &token, way).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{way:?}");
    }
    // The gateway forms, and a rejected token, too.
    let original = format!("/ext/bc/C/rpc/{token}");
    assert_eq!(
        api.verify("", &[("x-original-uri", &original)])
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let typo = format!("{}0", &token[..token.len() - 1]);
    api.get("/me", &typo, Presented::Query)
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, server) = server.terminate().await;

    let log = std::fs::read_to_string(&server.log).unwrap();
    assert!(log.contains("/api/v1/me"), "requests are logged: {log}");
    assert!(log.contains("[redacted]"), "the token's place is marked");
    let secret_part = &token[4..36];
    assert!(
        !log.contains(secret_part),
        "a token reached the log:\n{log}"
    );
    assert!(
        !log.contains(&typo[4..36]),
        "a rejected token reached the log"
    );
}
