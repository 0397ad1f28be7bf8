//! `tokendesk-bench`: what bench/run needs besides the server: seeding a database with
//! people, tokens and audit events, well-formed tokens that exist nowhere, and how many tokens
//! were used lately. Its own binary, so none of it is in the product.

mod revocation;
mod seed;

use clap::{Parser, Subcommand};
use tokendesk::config::DatabaseArgs;
use tokendesk::db::{DatabaseUrl, Db};

#[derive(Parser)]
#[command(name = "tokendesk-bench")]
struct Cli {
    #[command(subcommand)]
    command: BenchCommand,
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
        /// Where to write sample application tokens (every tenth seeded token past the first
        /// user's is an application's), for a case of their own.
        #[arg(long)]
        application_tokens_out: Option<std::path::PathBuf>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Seed audit events (for the CSV export case); run after `seed`, whose people act.
    SeedAudit {
        #[arg(long)]
        events: usize,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Print well-formed tokens that exist nowhere (for the "unknown token" case).
    FreshTokens {
        #[arg(long, default_value_t = 300)]
        count: usize,
    },
    /// Give every token the same address allowlist (the "allowlists on" case).
    AllowFrom {
        /// Addresses and CIDR ranges, as the New token form takes them.
        #[arg(long)]
        addresses: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Revoke tokens through instance A and time until instance B refuses each; prints the
    /// p50, p99 and slowest in milliseconds.
    Revocation {
        /// host:port of the instance revokes go through.
        #[arg(long)]
        through: String,
        /// host:port of the instance asked until it refuses.
        #[arg(long)]
        asking: String,
        #[arg(long, default_value_t = 200)]
        revokes: usize,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Print how many tokens were used within the last N seconds.
    RecentlyUsed {
        #[arg(long, default_value_t = 60)]
        seconds: i64,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

fn main() -> anyhow::Result<()> {
    tokendesk::telemetry::init(Default::default());
    bench(Cli::parse().command)
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
            application_tokens_out,
            database,
        } => {
            let db = open(&database)?;
            let mut out = std::io::BufWriter::new(std::fs::File::create(tokens_out)?);
            let mut revoked_file = std::io::BufWriter::new(std::fs::File::create(revoked_out)?);
            let mut application_file = match application_tokens_out {
                Some(path) => Some(std::io::BufWriter::new(std::fs::File::create(path)?)),
                None => None,
            };
            let plan = seed::SeedPlan {
                users,
                tokens,
                first_user_tokens,
                sample,
                revoked,
            };
            let files = seed::SeedFiles {
                active: &mut out,
                revoked: &mut revoked_file,
                application: application_file
                    .as_mut()
                    .map(|f| f as &mut dyn std::io::Write),
            };
            seed::seed(&db, &plan, files)?;
            println!("seeded {users} users and {tokens} tokens ({revoked} more revoked)");
        }
        BenchCommand::SeedAudit { events, database } => {
            seed::seed_audit(&open(&database)?, events)?;
            println!("seeded {events} audit events");
        }
        BenchCommand::FreshTokens { count } => {
            for _ in 0..count {
                println!("{}", tokendesk::tokens::TokenSecret::generate().expose());
            }
        }
        BenchCommand::AllowFrom {
            addresses,
            database,
        } => {
            let list = tokendesk::domain::AddressAllowlist::parse(&addresses)
                .map_err(anyhow::Error::msg)?
                .ok_or_else(|| anyhow::anyhow!("no addresses given"))?;
            let pinned = seed::allow_from(&open(&database)?, &list)?;
            println!("{pinned} tokens may be used only from {list}");
        }
        BenchCommand::Revocation {
            through,
            asking,
            revokes,
            database,
        } => {
            let mut waits = revocation::measure(&open(&database)?, &through, &asking, revokes)?;
            waits.sort_by(f64::total_cmp);
            let at = |p: f64| waits[((waits.len() - 1) as f64 * p).round() as usize];
            println!(
                "{} revokes: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                waits.len(),
                at(0.5),
                at(0.99),
                at(1.0)
            );
        }
        BenchCommand::RecentlyUsed { seconds, database } => {
            println!("{}", seed::recently_used(&open(&database)?, seconds)?);
        }
    }
    Ok(())
}

fn open(database: &DatabaseArgs) -> anyhow::Result<Db> {
    let url = DatabaseUrl::parse(&database.database_url).map_err(anyhow::Error::msg)?;
    let db = Db::connect(url, 2)?;
    db.migrate()?;
    Ok(db)
}
