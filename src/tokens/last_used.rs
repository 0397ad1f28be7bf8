//! Last used, without a database write per request: the newest use of each token is kept in
//! memory and written in one batch every few seconds, and once more on shutdown. Uses of a
//! secret a regenerate replaced (during its overlap) are kept apart, on that secret's row.
//! The same batches carry how tokens are used (address and client pairs, scopes exercised:
//! see [`usage`]).

use std::collections::HashMap;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Text, Timestamp};
use prometheus::Histogram;

use crate::db::schema::token_previous_secrets as prev;
use crate::db::{write_transaction, AnyConnection, Db, DbError};
use crate::domain::Scope;
use crate::notifications::Outbox;
use crate::tokens::usage::{self, KnownAddresses, UsageBatch};
use crate::tokens::SecretUsed;

pub struct LastUsedRecorder {
    db: Db,
    /// Whether a use from a new address is mailed to the token's owner.
    outbox: Outbox,
    pending: Mutex<Pending>,
    /// Held through a flush: a flush returns once every use recorded before it is written,
    /// also those another thread's flush had taken (the unused-token sweep relies on it). It
    /// guards the addresses already written as known, so a flush skips them.
    flushing: Mutex<KnownAddresses>,
}

type Batch = HashMap<(i64, SecretUsed), (NaiveDateTime, String)>;

/// What was seen since the last flush.
#[derive(Default)]
pub(crate) struct Pending {
    last_used: Batch,
    pub(crate) usage: UsageBatch,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.last_used.is_empty() && self.usage.is_empty()
    }

    /// Puts back a batch that could not be written, merged with what arrived meanwhile.
    fn restore(&mut self, batch: Pending) {
        for (id, (at, ip)) in batch.last_used {
            merge(&mut self.last_used, id, at, &ip);
        }
        self.usage.restore(batch.usage);
    }
}

impl LastUsedRecorder {
    pub fn new(db: Db, outbox: Outbox) -> Arc<Self> {
        Arc::new(Self {
            db,
            outbox,
            pending: Mutex::new(Pending::default()),
            flushing: Mutex::new(KnownAddresses::default()),
        })
    }

    /// A use of a token: when, from which address, by which client (its `User-Agent`).
    pub fn record(
        &self,
        token_id: i64,
        secret: SecretUsed,
        at: NaiveDateTime,
        ip: &str,
        user_agent: &str,
    ) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        merge(&mut pending.last_used, (token_id, secret), at, ip);
        pending.usage.record_pair(token_id, ip, user_agent, at);
    }

    /// A scope a token exercised: a route demanded it, or a gateway asked about it, and the
    /// token had it.
    pub fn record_scope(&self, token_id: i64, scope: Scope, at: NaiveDateTime) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.usage.record_scope(token_id, scope, at);
    }

    /// Tokens whose use waits to be written.
    pub fn backlog(&self) -> usize {
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.last_used.len()
    }

    /// Writes what is pending; returns how many tokens were written. On failure the uses
    /// stay pending for the next try.
    pub fn flush(&self) -> Result<usize, DbError> {
        let mut known = self.flushing.lock().unwrap_or_else(|e| e.into_inner());
        let batch = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if batch.is_empty() {
            return Ok(0);
        }
        let count = batch.last_used.len();
        let written = self.db.run_blocking(|conn| {
            write_transaction(conn, |conn| {
                lock_tokens(conn, &batch)?;
                // The tokens' last-use rows first, as a regenerate takes its token's: then the
                // usage, the replaced-secret and the last-use rows of those tokens are this
                // flush's alone until it commits.
                let addresses = usage::write(conn, &batch.usage, &known, self.outbox)?;
                write_batch(conn, &batch.last_used)?;
                Ok(addresses)
            })
        });
        match written {
            Ok(addresses) => {
                known.remember(addresses);
                Ok(count)
            }
            Err(e) => {
                let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                pending.restore(batch);
                Err(e)
            }
        }
    }

    /// Starts the background writer; stopping it writes what is still pending. The time of each
    /// write goes to `flush_times`.
    pub fn start(self: &Arc<Self>, interval: Duration, flush_times: Histogram) -> LastUsedFlusher {
        let (stop, stopped) = mpsc::channel::<()>();
        let recorder = Arc::clone(self);
        let thread = std::thread::Builder::new()
            .name("last-used-flusher".into())
            .spawn(move || loop {
                let finished = match stopped.recv_timeout(interval) {
                    Err(RecvTimeoutError::Timeout) => false,
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => true,
                };
                let started = Instant::now();
                let flushed = recorder.flush();
                if !matches!(flushed, Ok(0)) {
                    flush_times.observe(started.elapsed().as_secs_f64());
                }
                match flushed {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(tokens = n, "wrote last-used times"),
                    Err(e) => {
                        tracing::warn!(error = %e, "writing last-used times failed; will retry")
                    }
                }
                if finished {
                    break;
                }
            })
            .expect("spawn the last-used flusher");
        LastUsedFlusher {
            stop,
            thread: Some(thread),
        }
    }
}

/// Takes the last-use rows of every token in the batch, by id, before anything else
/// (PostgreSQL): two instances writing the same tokens then take turns, token by token, as a
/// regenerate does (it takes its token's row first too). Without it, two flushes that had
/// each added a token's usage rows deadlocked trimming each other's, and a regenerate waiting
/// for a flush's foreign-key check held rows that flush went on to wait for.
fn lock_tokens(conn: &mut AnyConnection, batch: &Pending) -> QueryResult<()> {
    let AnyConnection::Postgresql(pg) = conn else {
        return Ok(());
    };
    let mut ids: Vec<i64> = batch
        .last_used
        .keys()
        .map(|(id, _)| *id)
        .chain(batch.usage.token_ids())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    for chunk in ids.chunks(usage::POSTGRES_ROWS_A_STATEMENT) {
        diesel::sql_query(
            "SELECT token_id FROM token_last_uses WHERE token_id = ANY($1) \
             ORDER BY token_id FOR UPDATE",
        )
        .bind::<Array<BigInt>, _>(chunk)
        .execute(pg)?;
    }
    Ok(())
}

/// Writes a batch into the narrow last-use rows (never a token's own row), never moving a time
/// backwards: another instance may have written a later use. A use from before the row's
/// `secret_since` (the token's last regenerate) was made with a secret since replaced, and is
/// not the new secret's: it goes to the replaced secret when an overlap keeps it.
fn write_batch(conn: &mut AnyConnection, batch: &Batch) -> QueryResult<()> {
    // Replaced secrets are few (only during an overlap): a statement each. A use from before
    // the secret was replaced belongs to an older one.
    // By token id, as the current secrets' uses: two instances writing the same tokens take
    // their rows in one order (in a hash map's, they deadlocked).
    let mut replaced: Vec<_> = batch
        .iter()
        .filter(|((_, secret), _)| *secret == SecretUsed::Previous)
        .collect();
    replaced.sort_unstable_by_key(|((id, _), _)| *id);
    for ((id, _), (at, ip)) in replaced {
        diesel::update(
            prev::table
                .filter(prev::token_id.eq(id))
                .filter(prev::replaced_at.le(at))
                .filter(prev::last_used_at.is_null().or(prev::last_used_at.lt(at))),
        )
        .set((prev::last_used_at.eq(at), prev::last_used_ip.eq(ip)))
        .execute(conn)?;
    }
    let current = batch
        .iter()
        .filter(|((_, secret), _)| *secret == SecretUsed::Current)
        .map(|((id, _), use_)| (id, use_));
    match conn {
        // A statement per chunk of the batch: with thousands of tokens in use, a round trip per
        // token made each flush a burst that competed with the token checks. Sorted by id, so
        // two instances flushing at once lock rows in the same order.
        AnyConnection::Postgresql(pg) => {
            let mut rows: Vec<_> = current.collect();
            rows.sort_unstable_by_key(|(id, _)| **id);
            for chunk in rows.chunks(usage::POSTGRES_ROWS_A_STATEMENT) {
                write_chunk(pg, chunk)?;
            }
        }
        // A statement per 500 tokens: diesel prepares an UPDATE anew every time, and a
        // statement per token spent most of a flush preparing (a third of a core with 20,000
        // tokens in use a second).
        AnyConnection::Sqlite(sqlite) => {
            let rows: Vec<_> = current.collect();
            let mut unwritten = Vec::new();
            for chunk in rows.chunks(usage::SQLITE_ROWS_A_STATEMENT) {
                let written = write_sqlite_chunk(sqlite, chunk)?;
                unwritten.extend(chunk.iter().filter(|(id, _)| !written.contains(id)));
            }
            for (id, (at, ip)) in unwritten {
                write_replaced_use(conn, *id, *at, ip)?;
            }
        }
    }
    Ok(())
}

/// One chunk of a SQLite flush; returns the tokens whose last use it wrote.
fn write_sqlite_chunk(
    sqlite: &mut diesel::SqliteConnection,
    rows: &[(&i64, &(NaiveDateTime, String))],
) -> QueryResult<std::collections::HashSet<i64>> {
    #[derive(QueryableByName)]
    struct Written {
        #[diesel(sql_type = BigInt)]
        token_id: i64,
    }
    let values = vec!["(?, ?, ?)"; rows.len()].join(", ");
    let mut query = diesel::sql_query(format!(
        "WITH u(id, at, ip) AS (VALUES {values}) \
         UPDATE token_last_uses AS l SET last_used_at = u.at, last_used_ip = u.ip \
         FROM u WHERE l.token_id = u.id \
         AND (l.secret_since IS NULL OR l.secret_since <= u.at) \
         AND (l.last_used_at IS NULL OR l.last_used_at < u.at) \
         RETURNING token_id"
    ))
    .into_boxed::<diesel::sqlite::Sqlite>();
    for (id, (at, ip)) in rows {
        query = query
            .bind::<BigInt, _>(**id)
            .bind::<Timestamp, _>(*at)
            .bind::<Text, _>(ip.clone());
    }
    let written: Vec<Written> = query.load(sqlite)?;
    Ok(written.into_iter().map(|w| w.token_id).collect())
}

/// One chunk of a PostgreSQL flush, sorted by token id.
fn write_chunk(
    pg: &mut diesel::PgConnection,
    rows: &[(&i64, &(NaiveDateTime, String))],
) -> QueryResult<()> {
    let (ids, (ats, ips)): (Vec<i64>, (Vec<NaiveDateTime>, Vec<&str>)) = rows
        .iter()
        .map(|(id, (at, ip))| (**id, (*at, ip.as_str())))
        .unzip();
    #[derive(QueryableByName)]
    #[allow(dead_code)] // counted, not read
    struct Written {
        #[diesel(sql_type = BigInt)]
        token_id: i64,
    }
    let written: Vec<Written> = diesel::sql_query(
        "UPDATE token_last_uses AS l \
         SET last_used_at = u.at, last_used_ip = u.ip \
         FROM unnest($1, $2, $3) AS u(id, at, ip) \
         WHERE l.token_id = u.id \
         AND (l.secret_since IS NULL OR l.secret_since <= u.at) \
         AND (l.last_used_at IS NULL OR l.last_used_at < u.at) \
         RETURNING l.token_id",
    )
    .bind::<Array<BigInt>, _>(&ids)
    .bind::<Array<Timestamp>, _>(&ats)
    .bind::<Array<Text>, _>(&ips)
    .load(pg)?;
    // Usually every use was written; the rest may be the replaced secret's.
    if written.len() < ids.len() {
        diesel::sql_query(
            "UPDATE token_previous_secrets AS p \
             SET last_used_at = u.at, last_used_ip = u.ip \
             FROM unnest($1, $2, $3) AS u(id, at, ip) \
             WHERE p.token_id = u.id AND p.replaced_at > u.at \
             AND (p.last_used_at IS NULL OR p.last_used_at < u.at)",
        )
        .bind::<Array<BigInt>, _>(&ids)
        .bind::<Array<Timestamp>, _>(&ats)
        .bind::<Array<Text>, _>(&ips)
        .execute(pg)?;
    }
    Ok(())
}

/// A use of a token's current secret from before a regenerate replaced it (the regenerate
/// came within a flush interval): it belongs to the replaced secret, if that is kept.
fn write_replaced_use(
    conn: &mut AnyConnection,
    token_id: i64,
    at: NaiveDateTime,
    ip: &str,
) -> QueryResult<usize> {
    diesel::update(
        prev::table
            .filter(prev::token_id.eq(token_id))
            .filter(prev::replaced_at.gt(at))
            .filter(prev::last_used_at.is_null().or(prev::last_used_at.lt(at))),
    )
    .set((prev::last_used_at.eq(at), prev::last_used_ip.eq(ip)))
    .execute(conn)
}

fn merge(pending: &mut Batch, id: (i64, SecretUsed), at: NaiveDateTime, ip: &str) {
    match pending.get_mut(&id) {
        Some((seen, _)) if *seen >= at => {}
        Some(entry) => *entry = (at, ip.to_owned()),
        None => {
            pending.insert(id, (at, ip.to_owned()));
        }
    }
}

pub struct LastUsedFlusher {
    stop: mpsc::Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl LastUsedFlusher {
    /// Writes the pending uses and stops.
    pub fn stop(mut self) {
        let _ = self.stop.send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
