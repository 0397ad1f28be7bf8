//! Support for `bench/run`: seeding many users and tokens fast, and reading back what the
//! benchmark needs to check. Not part of the product's surface (`tokendesk bench` is hidden).

use std::io::Write;

use chrono::{Duration, NaiveDateTime, Utc};
use diesel::prelude::*;

use tokendesk::db::schema::{audit_events, personal_access_tokens as pat, token_last_uses, users};
use tokendesk::db::{AnyConnection, Db};
use tokendesk::domain::{hash_password, ScopeSet};
use tokendesk::tokens::{TokenKind, TokenSecret};

pub const BENCH_PASSWORD: &str = "bench-password-1";
const BATCH: usize = 1_000;

#[derive(Insertable)]
#[diesel(table_name = pat)]
struct TokenRow {
    user_id: Option<i64>,
    application_id: Option<i64>,
    name: String,
    digest: String,
    hint: String,
    scopes: String,
    created_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = users)]
struct UserRow {
    email: String,
    display_name: String,
    password_hash: Option<String>,
    role: String,
    is_active: bool,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

/// Inserts `rows` into `table` in one statement: multi-row INSERTs go through the concrete
/// connections, which support them natively.
macro_rules! insert_many {
    ($conn:expr, $table:expr, $rows:expr) => {
        match $conn {
            AnyConnection::Sqlite(c) => diesel::insert_into($table).values($rows).execute(c),
            AnyConnection::Postgresql(c) => diesel::insert_into($table).values($rows).execute(c),
        }
    };
}

fn insert_tokens(conn: &mut AnyConnection, rows: &[TokenRow]) -> QueryResult<usize> {
    insert_many!(conn, pat::table, rows)
}

fn insert_users(conn: &mut AnyConnection, rows: &[UserRow]) -> QueryResult<usize> {
    insert_many!(conn, users::table, rows)
}

#[derive(Insertable)]
#[diesel(table_name = audit_events)]
struct EventRow {
    created_at: NaiveDateTime,
    actor_id: Option<i64>,
    action: &'static str,
    target_type: Option<&'static str>,
    target_label: Option<String>,
    client_ip: Option<&'static str>,
    details: String,
}

/// Seeds `events` audit events, all made now: tokens created by the seeded people (one in
/// ten by nobody), details `bench-event-{n}`.
pub fn seed_audit(db: &Db, events: usize) -> anyhow::Result<()> {
    let actors: Vec<i64> = db.run_blocking(|conn| {
        users::table
            .order(users::id.asc())
            .select(users::id)
            .load(conn)
    })?;
    let now = Utc::now().naive_utc();
    let mut n = 0;
    while n < events {
        let end = (n + 50 * BATCH).min(events);
        let rows: Vec<EventRow> = (n..end)
            .map(|i| EventRow {
                created_at: now,
                actor_id: (i % 10 != 9).then(|| actors[i % actors.len().max(1)]),
                action: "token.created",
                target_type: Some("token"),
                target_label: Some(format!("bench-{i}")),
                client_ip: Some("127.0.0.1"),
                details: format!("bench-event-{i}"),
            })
            .collect();
        db.run_blocking(|conn| {
            tokendesk::db::write_transaction(conn, |conn| {
                for chunk in rows.chunks(BATCH) {
                    insert_many!(conn, audit_events::table, chunk)?;
                }
                Ok(())
            })
        })?;
        n = end;
    }
    Ok(())
}

/// What to seed: `users` users (the first an admin; every password is BENCH_PASSWORD) and
/// `tokens` active tokens spread over them, the first user getting `first_user_tokens` (for
/// the list-page case); `revoked` more tokens are created revoked.
#[derive(Clone, Copy)]
pub struct SeedPlan {
    pub users: usize,
    pub tokens: usize,
    pub first_user_tokens: usize,
    /// How many active tokens' plaintexts to write out, one a line.
    pub sample: usize,
    pub revoked: usize,
}

/// Where seeded plaintexts go, one a line.
pub struct SeedFiles<'a> {
    /// Sample active tokens of both kinds, in seeding order.
    pub active: &'a mut dyn Write,
    /// Every revoked token.
    pub revoked: &'a mut dyn Write,
    /// Sample active application tokens.
    pub application: Option<&'a mut dyn Write>,
}

/// One seeded token in ten (past the first user's) belongs to the application.
fn is_application_token(i: usize, first_user_tokens: usize) -> bool {
    i >= first_user_tokens && i % 10 == 9
}

/// Seeds the plan, writing sample active tokens and every revoked one to `files`.
pub fn seed(db: &Db, plan: &SeedPlan, files: SeedFiles<'_>) -> anyhow::Result<()> {
    let SeedFiles {
        active: out,
        revoked: revoked_out,
        application: mut application_out,
    } = files;
    let SeedPlan {
        users: users_count,
        tokens,
        first_user_tokens,
        sample,
        revoked,
    } = *plan;
    let hash = hash_password(BENCH_PASSWORD)?;
    let now = Utc::now().naive_utc();
    let user_rows: Vec<UserRow> = (0..users_count)
        .map(|i| UserRow {
            email: format!("bench-{i}@example.com"),
            display_name: format!("Bench User {i}"),
            password_hash: Some(hash.clone()),
            role: if i == 0 { "admin" } else { "user" }.to_owned(),
            is_active: true,
            created_at: now,
            updated_at: now,
        })
        .collect();
    db.run_blocking(|conn| {
        tokendesk::db::write_transaction(conn, |conn| {
            for chunk in user_rows.chunks(BATCH) {
                insert_users(conn, chunk)?;
            }
            Ok(())
        })
    })?;
    let ids: Vec<i64> = db.run_blocking(|conn| {
        users::table
            .order(users::id.asc())
            .select(users::id)
            .load(conn)
    })?;
    let application = db.run_blocking(|conn| {
        tokendesk::applications::insert(conn, "bench-app", "seeded by bench", ids[0])
    })?;
    let scopes = ScopeSet::parse(["license:read", "personalAccessToken:read", "tag:read"])
        .expect("catalogue")
        .to_stored();
    let total = tokens + revoked;
    let mut written = 0;
    let mut revoked_secrets = Vec::new();
    let mut n = 0;
    while n < total {
        let end = (n + 50 * BATCH).min(total);
        let mut rows = Vec::with_capacity(end - n);
        for i in n..end {
            let for_application = is_application_token(i, first_user_tokens);
            let secret = if for_application {
                TokenSecret::generate_kind(TokenKind::Application)
            } else {
                TokenSecret::generate()
            };
            let owner = if i < first_user_tokens {
                ids[0]
            } else {
                ids[1 + i % (ids.len() - 1).max(1)]
            };
            if i >= tokens {
                revoked_secrets.push(secret.clone());
            } else if written < sample {
                writeln!(out, "{}", secret.expose())?;
                written += 1;
                if let (true, Some(file)) = (for_application, application_out.as_mut()) {
                    writeln!(file, "{}", secret.expose())?;
                }
            }
            rows.push(TokenRow {
                user_id: (!for_application).then_some(owner),
                application_id: for_application.then_some(application.id),
                name: format!("bench-{i}"),
                digest: secret.digest().0,
                hint: secret.hint(),
                scopes: scopes.clone(),
                // Spread creation over a year, so sorting has work to do.
                created_at: now - Duration::minutes((i % 525_600) as i64),
            });
        }
        db.run_blocking(|conn| {
            tokendesk::db::write_transaction(conn, |conn| {
                for chunk in rows.chunks(BATCH) {
                    insert_tokens(conn, chunk)?;
                }
                Ok(())
            })
        })?;
        n = end;
    }
    // Every seeded token holds the same scopes: index them in one statement.
    let index = format!(
        "INSERT INTO token_scopes (scope, token_id) SELECT s.name, t.id \
         FROM personal_access_tokens t CROSS JOIN ({}) s WHERE true ON CONFLICT DO NOTHING",
        scopes
            .split(' ')
            .map(|name| format!("SELECT '{name}' AS name"))
            .collect::<Vec<_>>()
            .join(" UNION ALL ")
    );
    db.run_blocking(|conn| diesel::sql_query(index).execute(conn))?;
    let digests: Vec<String> = revoked_secrets.iter().map(|s| s.digest().0).collect();
    db.run_blocking(|conn| {
        diesel::update(pat::table.filter(pat::digest.eq_any(&digests)))
            .set(pat::revoked_at.eq(now))
            .execute(conn)
    })?;
    for secret in &revoked_secrets {
        writeln!(revoked_out, "{}", secret.expose())?;
    }
    // The state a database reaches soon after a bulk load: autovacuum (PostgreSQL) gathers
    // planner statistics and marks pages all-visible for index-only scans; on SQLite, an
    // operator's ANALYZE or `PRAGMA optimize` does. Without them the planners guess the tables
    // are tiny.
    let settle = match db.url() {
        tokendesk::db::DatabaseUrl::Postgres(_) => "VACUUM ANALYZE",
        tokendesk::db::DatabaseUrl::Sqlite(_) => "ANALYZE",
    };
    db.run_blocking(|conn| diesel::sql_query(settle).execute(conn))?;
    Ok(())
}

/// Tokens whose Last used is within the last `seconds`.
pub fn recently_used(db: &Db, seconds: i64) -> anyhow::Result<i64> {
    let since = Utc::now().naive_utc() - Duration::seconds(seconds);
    Ok(db.run_blocking(|conn| {
        token_last_uses::table
            .filter(token_last_uses::last_used_at.gt(since))
            .count()
            .get_result(conn)
    })?)
}

/// Gives every token the allowlist `list`.
pub fn allow_from(db: &Db, list: &tokendesk::domain::AddressAllowlist) -> anyhow::Result<usize> {
    let stored = list.to_stored();
    Ok(db.run_blocking(|conn| {
        diesel::update(pat::table)
            .set(pat::allowed_addresses.eq(stored))
            .execute(conn)
    })?)
}
