use std::io::{BufRead, IsTerminal};

use anyhow::Context;
use clap::{Parser, Subcommand};

use tokendesk::accounts::members::{self, FirstPassword, NewMember};
use tokendesk::config::{DatabaseArgs, ServeConfig};
use tokendesk::db::{run_migrations, transact_on, AnyConnection, DatabaseUrl, Db};
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
    /// Support for bench/run (seeding, checks).
    #[command(hide = true)]
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Seed users and tokens; write sample plaintext tokens to files.
    Seed {
        #[arg(long, default_value_t = 1000)]
        users: usize,
        #[arg(long)]
        tokens: usize,
        #[arg(long, default_value_t = 50)]
        first_user_tokens: usize,
        #[arg(long, default_value_t = 20_000)]
        sample: usize,
        #[arg(long, default_value_t = 1_000)]
        revoked: usize,
        #[arg(long)]
        tokens_out: std::path::PathBuf,
        #[arg(long)]
        revoked_out: std::path::PathBuf,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Print well-formed tokens that exist nowhere (for the "unknown token" case).
    FreshTokens {
        #[arg(long, default_value_t = 300)]
        count: usize,
    },
    /// Print how many tokens were used within the last N seconds.
    RecentlyUsed {
        #[arg(long, default_value_t = 60)]
        seconds: i64,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account. The password is asked for at a prompt, or read from the first line of
    /// standard input when it is not a terminal; never from the command line.
    Create {
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
        Command::Bench { command } => bench(command)?,
    }
    Ok(())
}

fn bench(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Seed {
            users,
            tokens,
            first_user_tokens,
            sample,
            revoked,
            tokens_out,
            revoked_out,
            database,
        } => {
            let db = open(&database)?;
            let mut out = std::io::BufWriter::new(std::fs::File::create(tokens_out)?);
            let mut revoked_file = std::io::BufWriter::new(std::fs::File::create(revoked_out)?);
            let plan = tokendesk::bench::SeedPlan {
                users,
                tokens,
                first_user_tokens,
                sample,
                revoked,
            };
            tokendesk::bench::seed(&db, &plan, &mut out, &mut revoked_file)?;
            println!("seeded {users} users and {tokens} tokens ({revoked} more revoked)");
        }
        BenchCommand::FreshTokens { count } => {
            for _ in 0..count {
                println!("{}", tokendesk::tokens::TokenSecret::generate().expose());
            }
        }
        BenchCommand::RecentlyUsed { seconds, database } => {
            println!(
                "{}",
                tokendesk::bench::recently_used(&open(&database)?, seconds)?
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
    members::canonicalise_stored_emails(&mut conn)?;
    Ok(conn)
}

fn open(database: &DatabaseArgs) -> anyhow::Result<Db> {
    let url = DatabaseUrl::parse(&database.database_url).map_err(anyhow::Error::msg)?;
    let db = Db::connect(url, 2).context("cannot open the database")?;
    db.migrate()?;
    Ok(db)
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
