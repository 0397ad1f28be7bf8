use std::io::{BufRead, IsTerminal};

use anyhow::Context;
use clap::{Parser, Subcommand};

use tokendesk::accounts::members::{self, FirstPassword, NewMember};
use tokendesk::config::{DatabaseArgs, ServeConfig};
use tokendesk::db::{run_migrations, transact_on, AnyConnection, DatabaseUrl};
use tokendesk::domain::{hash_password, Email, PasswordRules, Role};
use tokendesk::startup::Application;
use tokendesk::telemetry::LogFormat;

/// A self-hosted portal where people manage their personal access tokens,
/// and where other services check those tokens.
#[derive(Parser)]
#[command(name = "tokendesk", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How log lines are written: text, or json (one object per line) for log shippers.
    #[arg(
        long,
        global = true,
        env = "TOKENDESK_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: LogFormat,
}

// Parsed once at start: the size of the serve settings costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the portal (creates and migrates the database first).
    Serve(ServeConfig),
    /// Apply pending database migrations and exit.
    Migrate(DatabaseArgs),
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account. The password is asked for at a prompt, or read from the first line of
    /// standard input when it is not a terminal; never from the command line.
    Create {
        /// Email address the account signs in with.
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// admin or user.
        #[arg(long, default_value = "user")]
        role: Role,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

// Most of a page view's time went to glibc's malloc and free (profiled under load);
// mimalloc's per-thread free lists cost a fraction of that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tokendesk::telemetry::init(cli.log_format);
    match cli.command {
        Command::Serve(config) => {
            let app = Application::build(config).await?;
            let served = app.run_until_stopped().await;
            if let Err(e) = &served {
                tracing::error!(error = %e, "the server failed");
            }
            exit_without_handlers(if served.is_ok() { 0 } else { 1 });
        }
        Command::Migrate(database) => {
            connect(&database)?;
            println!("migrations applied");
        }
        Command::User {
            command:
                UserCommand::Create {
                    email,
                    name,
                    role,
                    database,
                },
        } => {
            let email = Email::parse(&email).map_err(anyhow::Error::msg)?;
            let display_name = tokendesk::domain::clean_name(&name).map_err(anyhow::Error::msg)?;
            let password = read_password()?;
            PasswordRules::check(&password).map_err(anyhow::Error::msg)?;
            let new = NewMember {
                email,
                display_name,
                role,
                password: FirstPassword::Hash(hash_password(&password)?),
            };
            let mut conn = connect(&database)?;
            let user = transact_on(&mut conn, |conn| members::create(conn, &new, None))?.user;
            println!(
                "created {} ({}) with id {}",
                user.email,
                user.role(),
                user.id
            );
        }
    }
    Ok(())
}

/// One plain connection, migrated: a command that exits must leave no pool thread behind.
fn connect(database: &DatabaseArgs) -> anyhow::Result<AnyConnection> {
    let url = DatabaseUrl::parse(&database.database_url).map_err(anyhow::Error::msg)?;
    let mut conn = url.connect().context("cannot open the database")?;
    run_migrations(&mut conn)?;
    tokendesk::accounts::upgrade_stored_data(&mut conn)?;
    Ok(conn)
}

/// Ends the process without running C exit handlers. The database pool's threads may be
/// opening a PostgreSQL connection through libpq at any moment, and OpenSSL's exit cleanup
/// pulled from under one crashed the process (SIGSEGV) as it exited. Every pending write is done
/// by now (the server drained its requests and wrote Last used), so nothing is lost.
fn exit_without_handlers(code: i32) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: _exit ends the process at once; nothing runs after it.
    unsafe { libc::_exit(code) }
}

fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let password = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Password again: ")?;
        anyhow::ensure!(password == again, "the passwords do not match");
        return Ok(password);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
