//! The `tokendesk` binary's own commands.

use std::io::Write;
use std::process::{Command, Stdio};

use reqwest::StatusCode;

use crate::backend_tests;
use crate::helpers::{location, TestApp};

backend_tests!(user_create_reads_the_password_from_stdin_never_argv);

fn tokendesk(args: &[&str], database_url: &str, stdin: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tokendesk"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tokendesk");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

async fn user_create_reads_the_password_from_stdin_never_argv(app: TestApp) {
    let args = [
        "user",
        "create",
        "--email",
        "Linus@Example.com",
        "--name",
        "Linus",
        "--role",
        "admin",
    ];
    let output = tokendesk(&args, &app.database_url, "kernel-hacker-91\n");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("created linus@example.com (admin)"),
        "{stdout}"
    );

    // A user now exists, so setup is over and the new account signs in.
    let browser = app.browser();
    assert_eq!(browser.get("/setup").await.status(), StatusCode::NOT_FOUND);
    let response = browser
        .sign_in("linus@example.com", "kernel-hacker-91")
        .await;
    assert_eq!(location(&response), "/developer/access-tokens");

    // The same email twice is refused with a clear message; a weak password too.
    let output = tokendesk(&args, &app.database_url, "another-password-1\n");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("already exists"));
    let mut weak = args;
    weak[3] = "weak@example.com";
    let output = tokendesk(&weak, &app.database_url, "short\n");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("at least 10 characters"));
}
