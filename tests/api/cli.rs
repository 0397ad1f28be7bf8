//! The `tokendesk` binary's own commands.

use std::io::Write;
use std::process::{Command, Stdio};

use reqwest::StatusCode;

use crate::backend_tests;
use crate::helpers::{location, Backend, TestApp};
use crate::server::ServerProcess;

backend_tests!(
    user_create_reads_the_password_from_stdin_never_argv,
    every_run_of_every_command_exits_cleanly,
);

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

/// A pool thread still opening a PostgreSQL connection while the process ran OpenSSL's exit
/// handlers crashed `migrate` and `user create` (SIGSEGV) in about one run in four.
async fn every_run_of_every_command_exits_cleanly(app: TestApp) {
    const RUNS: usize = 50;
    for run in 0..RUNS {
        let output = tokendesk(&["migrate"], &app.database_url, "");
        assert!(
            output.status.success(),
            "migrate run {run}: {:?}",
            output.status
        );
    }
    for run in 0..RUNS {
        let email = format!("member{run}@example.com");
        let args = [
            "user", "create", "--email", &email, "--name", "Member", "--role", "user",
        ];
        let output = tokendesk(&args, &app.database_url, "a-long-enough-password\n");
        assert!(
            output.status.success(),
            "user create run {run}: {:?}",
            output.status
        );
    }
    let created = app.audit_events("member.created").await;
    assert_eq!(
        created.len(),
        RUNS,
        "each account created on the command line is audited"
    );
    assert!(created
        .iter()
        .all(|e| e.actor_id.is_none() && e.details.contains("password=set on the command line")));
    for run in 0..10 {
        let server = ServerProcess::start(&app.database_url, &[]).await;
        let (status, _) = server.terminate().await;
        assert!(status.success(), "serve run {run} ended {status:?}");
    }
    println!("command exits: {RUNS} migrate, {RUNS} user create, 10 serve + SIGTERM, all exit 0");
}

/// The SQLite file holds password hashes and token digests: only its owner may read it.
#[tokio::test]
async fn sqlite_files_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.setup_admin().await;
    let path = app.database_url.trim_start_matches("sqlite://").to_owned();
    for file in [path.clone(), format!("{path}-wal"), format!("{path}-shm")] {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file} is {mode:o}");
    }
}

/// What `tokendesk [COMMAND...] --help` prints.
fn help_of(command: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_tokendesk"))
        .args(command)
        .arg("--help")
        .output()
        .expect("run tokendesk --help");
    assert!(output.status.success(), "{command:?} --help failed");
    String::from_utf8(output.stdout).unwrap()
}

/// The entries of a help section (`Options:`, `Commands:`), each with its description: the
/// text after its name (two spaces on) and the lines below it, without clap's own `[default:
/// ...]` and `[env: ...]` notes, which say nothing of what it is.
fn section_entries(help: &str, section: &str) -> Vec<(String, String)> {
    let is_entry = |line: &str| {
        let text = line.trim_start();
        let indent = line.len() - text.len();
        // `- text: ...` is a possible value in an option's description, not an option.
        let option = text.starts_with('-') && !text.starts_with("- ");
        option || (section == "Commands:" && indent == 2 && !text.is_empty())
    };
    let mut entries: Vec<(String, String)> = Vec::new();
    let lines = help
        .lines()
        .skip_while(|line| *line != section)
        .skip(1)
        .take_while(|line| line.is_empty() || line.starts_with(' '));
    for line in lines {
        if is_entry(line) {
            let (name, text) = line.trim().split_once("  ").unwrap_or((line.trim(), ""));
            entries.push((name.to_owned(), text.to_owned()));
        } else if let Some((_, description)) = entries.last_mut() {
            description.push(' ');
            description.push_str(line.trim());
        }
    }
    for (_, description) in &mut entries {
        while let Some(open) = description.find('[') {
            let close = description[open..]
                .find(']')
                .map_or(description.len(), |c| open + c + 1);
            description.replace_range(open..close, "");
        }
        *description = description.trim().to_owned();
    }
    entries
}

/// Every command's `--help`, down every subcommand: no option and no command is left
/// without a line saying what it is.
#[test]
fn every_option_and_command_has_help_text() {
    let mut to_visit: Vec<Vec<String>> = vec![vec![]];
    let mut options_checked = 0;
    while let Some(command) = to_visit.pop() {
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        let help = help_of(&args);
        for (option, description) in section_entries(&help, "Options:") {
            let at = format!("tokendesk {} {option}", args.join(" "));
            assert!(!description.is_empty(), "`{at}` has no help text");
            options_checked += 1;
        }
        for (sub, description) in section_entries(&help, "Commands:") {
            let at = format!("tokendesk {} {sub}", args.join(" "));
            assert!(!description.is_empty(), "`{at}` has no help text");
            if sub != "help" {
                to_visit.push(command.iter().cloned().chain([sub]).collect());
            }
        }
    }
    assert!(options_checked > 20, "only {options_checked} options seen");
}
