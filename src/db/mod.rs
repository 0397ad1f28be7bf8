//! Storage: one pooled connection type over SQLite and PostgreSQL, chosen by `DATABASE_URL`.

pub mod invalidation;
pub mod schema;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::r2d2::{self as r2d2, PoolError, R2D2Connection};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, QueryResult};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Applied to every pooled SQLite connection: WAL lets readers run beside the one writer,
/// busy_timeout makes a second writer wait instead of failing, and SQLite leaves
/// foreign keys off unless asked. The page cache is 512 KiB a connection instead of 2 MiB: the
/// operating system caches the file for all of them, and sixteen private 2 MiB copies were most
/// of the process's memory.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; \
     PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -512;";

#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

/// Where the data lives, parsed once from `DATABASE_URL`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if path.is_empty() || path.contains("://") {
            return Err(format!(
                "unsupported DATABASE_URL {url:?}: use sqlite://FILE or postgres://..."
            ));
        }
        Ok(Self::Sqlite(PathBuf::from(path)))
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    /// The folder that holds the SQLite file; instance files (the session key) go beside it.
    pub fn data_dir(&self) -> PathBuf {
        match self {
            Self::Sqlite(path) => path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(".")),
            Self::Postgres(_) => PathBuf::from("."),
        }
    }

    /// One plain connection, no pool and no background threads: what a command that runs and
    /// exits needs. (A pool thread still opening a PostgreSQL connection while the process runs
    /// OpenSSL's exit handlers crashed `migrate` with SIGSEGV.)
    pub fn connect(&self) -> Result<AnyConnection, diesel::ConnectionError> {
        match self {
            Self::Postgres(url) => PgConnection::establish(url).map(AnyConnection::Postgresql),
            Self::Sqlite(path) => {
                owner_only(path).map_err(|e| {
                    diesel::ConnectionError::BadConnection(format!(
                        "cannot create {}: {e}",
                        path.display()
                    ))
                })?;
                let mut conn = SqliteConnection::establish(&path.to_string_lossy())?;
                conn.batch_execute(SQLITE_PRAGMAS)
                    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                Ok(AnyConnection::Sqlite(conn))
            }
        }
    }
}

/// The SQLite file holds password hashes and token digests: it is created readable by its
/// owner only, and an older, wider file is narrowed. SQLite gives its `-wal` and `-shm` files
/// the database file's permissions, and they are narrowed here too when they exist.
///
/// An existing file is only looked at and changed by its path, never opened: closing any file
/// descriptor of the database drops every POSIX lock this process's SQLite connections hold
/// on it, and another process could then write beside them and corrupt it.
fn owner_only(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if path.as_os_str() == ":memory:" {
        return Ok(());
    }
    if !path.exists() {
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
        match created {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
    }
    let mut files = vec![path.to_path_buf()];
    for suffix in ["-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        files.push(PathBuf::from(name));
    }
    for file in files {
        match std::fs::metadata(&file) {
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?
            }
            _ => {}
        }
    }
    Ok(())
}

pub struct ConnectionManager {
    url: DatabaseUrl,
}

/// A pooled connection, marked when a query finds the server gone so the pool drops it
/// instead of handing it out again (diesel's `is_broken` only looks at transaction state).
pub struct PooledConn {
    conn: AnyConnection,
    lost: bool,
}

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = PooledConn;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<PooledConn, Self::Error> {
        let conn = self
            .url
            .connect()
            .map_err(diesel::r2d2::Error::ConnectionError)?;
        Ok(PooledConn { conn, lost: false })
    }

    fn is_valid(&self, pooled: &mut PooledConn) -> Result<(), Self::Error> {
        pooled.conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, pooled: &mut PooledConn) -> bool {
        pooled.lost || pooled.conn.is_broken()
    }
}

/// How long checkouts waited for a pooled connection, and how many gave up (for the metrics).
#[derive(Clone)]
pub struct PoolWaits {
    pub waits: prometheus::Histogram,
    pub timeouts: prometheus::IntCounter,
}

/// Whether the last attempt to open a connection failed. While it did, a request that finds no
/// idle connection fails at once instead of queueing for the pool's timeout; the pool keeps
/// retrying in the background and the first connection it opens clears the mark. Also where
/// checkout waits are measured, when they are.
#[derive(Clone, Default)]
struct ConnectHealth(Arc<AtomicBool>, Option<PoolWaits>);

impl std::fmt::Debug for ConnectHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ConnectHealth(down: {})", self.is_down())
    }
}

impl ConnectHealth {
    fn is_down(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

impl r2d2::HandleError<diesel::r2d2::Error> for ConnectHealth {
    fn handle_error(&self, error: diesel::r2d2::Error) {
        if !self.0.swap(true, Ordering::Relaxed) {
            tracing::warn!(%error, "cannot connect to the database; failing fast until it is back");
        }
    }
}

impl r2d2::HandleEvent for ConnectHealth {
    fn handle_acquire(&self, _: r2d2::event::AcquireEvent) {
        if self.0.swap(false, Ordering::Relaxed) {
            tracing::info!("connected to the database again");
        }
    }

    fn handle_checkout(&self, event: r2d2::event::CheckoutEvent) {
        if let Some(pool) = &self.1 {
            pool.waits.observe(event.duration().as_secs_f64());
        }
    }

    fn handle_timeout(&self, _: r2d2::event::TimeoutEvent) {
        if let Some(pool) = &self.1 {
            pool.timeouts.inc();
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("the blocking pool is gone")]
    Canceled,
}

impl From<PoolError> for DbError {
    fn from(e: PoolError) -> Self {
        DbError::Unavailable(e.to_string())
    }
}

/// The pool, shared by every worker. Queries run on actix's blocking threads so a slow
/// database never stalls the async executor.
#[derive(Clone)]
pub struct Db {
    pool: r2d2::Pool<ConnectionManager>,
    url: DatabaseUrl,
    /// Counts committed write transactions, here and (heard through [`invalidation`]) on other
    /// instances; caches of database state compare it to know they may be stale.
    writes: Arc<AtomicU64>,
    /// Until when (on [`invalidation::millis`]) every change another instance makes is known
    /// heard: `u64::MAX` on SQLite (one instance), 0 while the PostgreSQL listener is not
    /// connected, and while it is, a deadline each answered heartbeat moves on. A listening
    /// connection that hangs without failing (a partition, a hung host) moves it no more, and
    /// caches go off when it passes.
    heard_until: Arc<AtomicU64>,
    /// Names this process's changes to the others (and lets it ignore its own).
    instance: Arc<str>,
    health: ConnectHealth,
}

impl Db {
    pub fn connect(url: DatabaseUrl, max_connections: u32) -> Result<Self, DbError> {
        Self::connect_measured(url, max_connections, None)
    }

    /// Like [`Db::connect`], measuring how long checkouts wait into `waits`.
    pub fn connect_measured(
        url: DatabaseUrl,
        max_connections: u32,
        waits: Option<PoolWaits>,
    ) -> Result<Self, DbError> {
        let health = ConnectHealth(Arc::default(), waits);
        let pool = r2d2::Pool::builder()
            .max_size(max_connections)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(5))
            // A health query on every checkout doubles the round trips; broken connections are
            // caught by has_broken on return, and /readyz pings on its own.
            .test_on_check_out(false)
            .error_handler(Box::new(health.clone()))
            .event_handler(Box::new(health.clone()))
            .build(ConnectionManager { url: url.clone() })?;
        let alone = matches!(url, DatabaseUrl::Sqlite(_));
        Ok(Self {
            pool,
            url,
            writes: Default::default(),
            heard_until: Arc::new(AtomicU64::new(if alone { u64::MAX } else { 0 })),
            instance: format!("{:016x}", rand::random::<u64>()).into(),
            health,
        })
    }

    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// Connections open, and of them idle, right now.
    pub fn pool_state(&self) -> (u32, u32) {
        let state = self.pool.state();
        (state.connections, state.idle_connections)
    }

    pub fn migrate(&self) -> anyhow::Result<()> {
        let mut pooled = self.pool.get()?;
        run_migrations(&mut pooled.conn)
    }

    /// A pooled connection. While the database refuses connections, only an idle one, at once.
    fn checkout(
        pool: &r2d2::Pool<ConnectionManager>,
        health: &ConnectHealth,
    ) -> Result<r2d2::PooledConnection<ConnectionManager>, DbError> {
        if health.is_down() {
            return pool.try_get().ok_or_else(|| {
                DbError::Unavailable("the database cannot be reached; not waiting".into())
            });
        }
        Ok(pool.get()?)
    }

    /// Runs `f` on `pooled`. A connection that turns out to be lost is marked so the pool drops
    /// it, and the failure is reported as unavailability.
    fn run_on<T>(
        pooled: &mut PooledConn,
        f: impl FnOnce(&mut AnyConnection) -> QueryResult<T>,
    ) -> Result<T, DbError> {
        match f(&mut pooled.conn) {
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ClosedConnection,
                info,
            )) => {
                pooled.lost = true;
                Err(DbError::Unavailable(format!(
                    "the connection was lost: {}",
                    info.message()
                )))
            }
            result => Ok(result?),
        }
    }

    /// Like [`Db::run`] for a short indexed read. On SQLite it runs on the calling thread when
    /// a connection is idle: reading a local file takes microseconds, less than the hop to a
    /// blocking thread and back. PostgreSQL reads cross the network, so they always hop.
    pub async fn read<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> QueryResult<T> + Send + 'static,
    {
        if matches!(self.url, DatabaseUrl::Sqlite(_)) {
            if let Some(mut pooled) = self.pool.try_get() {
                return Self::run_on(&mut pooled, f);
            }
        }
        self.run(f).await
    }

    /// Runs `f` on a pooled connection, off the async executor.
    pub async fn run<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> QueryResult<T> + Send + 'static,
    {
        let (pool, health) = (self.pool.clone(), self.health.clone());
        actix_web::web::block(move || Self::run_on(&mut *Self::checkout(&pool, &health)?, f))
            .await
            .map_err(|_| DbError::Canceled)?
    }

    /// Runs `f` on a pooled connection on the calling thread (for threads of our own, not the executor).
    pub fn run_blocking<T>(
        &self,
        f: impl FnOnce(&mut AnyConnection) -> QueryResult<T>,
    ) -> Result<T, DbError> {
        Self::run_on(&mut *Self::checkout(&self.pool, &self.health)?, f)
    }

    /// Like [`Db::write`], on the calling thread (for threads of our own, not the executor).
    pub fn write_blocking<T>(
        &self,
        f: impl FnOnce(&mut AnyConnection) -> QueryResult<T>,
    ) -> Result<T, DbError> {
        let written =
            self.run_blocking(|conn| write_transaction(conn, announced(f, &self.instance)));
        self.writes.fetch_add(1, Ordering::AcqRel);
        written
    }

    /// Like [`Db::run`], inside a write transaction (see [`write_transaction`]). Every state
    /// change of the product goes through here, so [`Db::cache_generation`] moves after each,
    /// on this instance and on every other one.
    pub async fn write<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> QueryResult<T> + Send + 'static,
    {
        let (instance, writes) = (Arc::clone(&self.instance), Arc::clone(&self.writes));
        self.run(move |conn| {
            let written = write_transaction(conn, announced(f, &instance));
            // After the commit: a reader that saw the old generation re-reads. Here, on the
            // thread that committed, so that a request dropped while it waited still moves it.
            writes.fetch_add(1, Ordering::AcqRel);
            written
        })
        .await
    }

    /// Like [`Db::write`] for changes that can be refused: `f` returns [`Abort::Refused`] to
    /// roll the transaction back and hand its reason to the caller, or a query error as usual.
    pub async fn transact<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T, Abort<E>> + Send + 'static,
    {
        let refusal = Arc::new(std::sync::Mutex::new(None));
        let slot = refusal.clone();
        let keep = move |reason| *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
        let written = self.write(rolling_back(f, keep)).await;
        written.map_err(|e| {
            let reason = refusal.lock().unwrap_or_else(|e| e.into_inner()).take();
            reason.unwrap_or_else(|| E::from(e))
        })
    }

    /// Read before a lookup whose result is cached; a later write, here or elsewhere, makes the
    /// entry stale. `None` while changes made by other instances may go unheard: nothing may be
    /// served from a cache, or put in one, then.
    pub fn cache_generation(&self) -> Option<u64> {
        // The deadline first: a generation read after it was set is at least the one moved
        // when listening began.
        let hears = invalidation::millis() < self.heard_until.load(Ordering::Acquire);
        hears.then(|| self.writes.load(Ordering::Acquire))
    }

    fn instance(&self) -> &str {
        &self.instance
    }

    /// Another instance changed something: every entry cached before is stale.
    fn changed_elsewhere(&self) {
        self.writes.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether other instances' changes are heard from now on. Turned on only once listening,
    /// it also drops what was cached while they could have gone unheard.
    fn hear_others(&self, hears: bool) {
        if hears {
            self.changed_elsewhere();
            self.heard_until
                .store(invalidation::hearing_until(), Ordering::Release);
        } else {
            self.heard_until.store(0, Ordering::Release);
        }
    }

    /// The listener's heartbeat was answered: every change committed before it was asked has
    /// been heard. One answered after caches went off drops what was cached before the hang,
    /// and says so.
    fn still_hears(&self, until: u64) -> bool {
        let was_deaf = invalidation::millis() >= self.heard_until.load(Ordering::Acquire);
        if was_deaf {
            self.changed_elsewhere();
        }
        self.heard_until.store(until, Ordering::Release);
        was_deaf
    }

    /// For readiness checks: a cheap round trip that fails fast when the database is gone.
    pub async fn ping(&self) -> Result<(), DbError> {
        self.run(|conn| conn.ping().map(|_| ())).await
    }
}

pub fn run_migrations(conn: &mut AnyConnection) -> anyhow::Result<()> {
    let applied = match conn {
        AnyConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS),
        AnyConnection::Postgresql(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS),
    }
    .map_err(|e| anyhow::anyhow!("migrations failed: {e}"))?;
    for version in applied {
        tracing::info!(%version, "applied migration");
    }
    Ok(())
}

/// A transaction for work that writes. On SQLite it starts with `BEGIN IMMEDIATE`, taking the
/// write lock up front: a deferred transaction that reads and then writes can fail with
/// "database is locked" without ever waiting on busy_timeout.
pub fn write_transaction<T, F>(conn: &mut AnyConnection, f: F) -> QueryResult<T>
where
    F: FnOnce(&mut AnyConnection) -> QueryResult<T>,
{
    match conn {
        AnyConnection::Sqlite(c) => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?;
        }
        AnyConnection::Postgresql(c) => AnsiTransactionManager::begin_transaction(c)?,
    }
    match f(conn) {
        Ok(value) => {
            <AnyConnection as Connection>::TransactionManager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(error) => {
            <AnyConnection as Connection>::TransactionManager::rollback_transaction(conn)?;
            Err(error)
        }
    }
}

/// `f`, then a word to the other instances that something changed (see [`invalidation`]).
fn announced<'a, T>(
    f: impl FnOnce(&mut AnyConnection) -> QueryResult<T> + 'a,
    instance: &'a str,
) -> impl FnOnce(&mut AnyConnection) -> QueryResult<T> + 'a {
    move |conn| {
        let value = f(conn)?;
        invalidation::announce(conn, instance)?;
        Ok(value)
    }
}

/// Why a [`Db::transact`] body stopped: a refusal of the caller's kind, or a failed query.
#[derive(Debug)]
pub enum Abort<E> {
    Refused(E),
    Query(diesel::result::Error),
}

impl<E> From<diesel::result::Error> for Abort<E> {
    fn from(e: diesel::result::Error) -> Self {
        Abort::Query(e)
    }
}

/// `f` as a transaction body for diesel, which rolls back on an error of its own type: a
/// refusal is handed to `keep` and rolls back as such an error.
fn rolling_back<T, E>(
    f: impl FnOnce(&mut AnyConnection) -> Result<T, Abort<E>>,
    mut keep: impl FnMut(E),
) -> impl FnOnce(&mut AnyConnection) -> QueryResult<T> {
    move |conn| match f(conn) {
        Ok(value) => Ok(value),
        Err(Abort::Query(e)) => Err(e),
        Err(Abort::Refused(reason)) => {
            keep(reason);
            Err(diesel::result::Error::RollbackTransaction)
        }
    }
}

/// [`Db::transact`] on a connection of the caller's (the command line's).
pub fn transact_on<T, E: From<DbError>>(
    conn: &mut AnyConnection,
    f: impl FnOnce(&mut AnyConnection) -> Result<T, Abort<E>>,
) -> Result<T, E> {
    let mut refusal = None;
    let written = write_transaction(conn, rolling_back(f, |reason| refusal = Some(reason)));
    written.map_err(|e| refusal.unwrap_or_else(|| E::from(DbError::from(e))))
}

/// Refuses inside a [`Db::transact`] body: `return refuse(Reason::X)`.
pub fn refuse<T, E>(reason: E) -> Result<T, Abort<E>> {
    Err(Abort::Refused(reason))
}

/// The serialisation points of invariants that span rows (one active admin at least, unique
/// names among a person's active tokens, the token policy, the sign-in limit). PostgreSQL runs
/// at READ COMMITTED, where "count, then change" races; a transaction that takes the lock first
/// reads everything committed by the one before it. On SQLite every write transaction already
/// holds the database's one write lock (`BEGIN IMMEDIATE`), so there is nothing more to take.
#[derive(Clone, Copy, Debug)]
pub enum Lock {
    /// Who is an active admin: role changes, (de)activations, and every admin action, which
    /// re-reads its actor under it.
    Members,
    /// One person's tokens and the facts they are checked against (role, active, the token
    /// that makes another).
    TokensOf(i64),
    /// One application: its maintainers, its archiving, and the tokens made for it.
    Application(i64),
    /// The token policy: saving it (exclusive) and tokens made under it (shared).
    Policy,
    /// The failed sign-in counts.
    SignIn,
}

impl Lock {
    fn key(self) -> i64 {
        const CLASS: u32 = 56;
        match self {
            Lock::Members => 1 << CLASS,
            Lock::Policy => 2 << CLASS,
            Lock::SignIn => 3 << CLASS,
            Lock::TokensOf(user_id) => (4 << CLASS) | (user_id & ((1 << CLASS) - 1)),
            Lock::Application(id) => (5 << CLASS) | (id & ((1 << CLASS) - 1)),
        }
    }
}

/// Takes `lock` until the transaction ends. A transaction that takes several takes them in the
/// order of [`Lock`]'s variants, so no two can wait on each other.
pub fn lock(conn: &mut AnyConnection, lock: Lock) -> QueryResult<()> {
    advisory_lock(conn, lock, "pg_advisory_xact_lock")
}

/// Takes `lock` shared with other shared holders, exclusive of [`lock`].
pub fn lock_shared(conn: &mut AnyConnection, lock: Lock) -> QueryResult<()> {
    advisory_lock(conn, lock, "pg_advisory_xact_lock_shared")
}

fn advisory_lock(conn: &mut AnyConnection, lock: Lock, function: &str) -> QueryResult<()> {
    match conn {
        AnyConnection::Postgresql(pg) => {
            use diesel::RunQueryDsl;
            diesel::sql_query(format!("SELECT {function}($1)"))
                .bind::<diesel::sql_types::BigInt, _>(lock.key())
                .execute(pg)
                .map(drop)
        }
        AnyConnection::Sqlite(_) => Ok(()),
    }
}

/// `%` and `_` typed by a person are literal characters in a LIKE pattern, not wildcards.
pub fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

pub fn is_unique_violation(error: &diesel::result::Error) -> bool {
    matches!(
        error,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_database_urls() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://tokendesk.db").unwrap(),
            DatabaseUrl::Sqlite("tokendesk.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///var/lib/td/x.db").unwrap(),
            DatabaseUrl::Sqlite("/var/lib/td/x.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("postgres://u@h/db").unwrap(),
            DatabaseUrl::Postgres("postgres://u@h/db".into())
        );
        assert!(DatabaseUrl::parse("mysql://h/db").is_err());
        assert!(DatabaseUrl::parse("").is_err());
    }

    #[test]
    fn sqlite_data_dir_is_the_files_folder() {
        let url = DatabaseUrl::parse("sqlite://tokendesk.db").unwrap();
        assert_eq!(url.data_dir(), PathBuf::from("."));
        let url = DatabaseUrl::parse("sqlite:///srv/td/t.db").unwrap();
        assert_eq!(url.data_dir(), PathBuf::from("/srv/td"));
    }
}
