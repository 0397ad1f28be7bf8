//! Changes made by other instances, heard at once. Every [`super::Db::write`] on PostgreSQL sends
//! `NOTIFY tokendesk_changes` inside its transaction (delivered only if it commits), and each
//! instance keeps one session connection that `LISTEN`s: what it hears moves the instance's write
//! generation, so every cache entry read before the change is stale at once, as for a change
//! made here.
//!
//! While that connection is down an instance cannot know what others change, so its caches are
//! off (see [`super::Db::cache_generation`]) until it listens again and has dropped everything
//! cached before: slower for a while, never stale. A connection that hangs without failing (a
//! partition, a hung host: no reset ever arrives) counts as down once a heartbeat has gone
//! unanswered for [`DEAF_AFTER`]. SQLite is one instance and hears nothing.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::{Connection, QueryResult, RunQueryDsl};

use super::{AnyConnection, Db};

const CHANNEL: &str = "tokendesk_changes";
/// How often the listening connection is read: the most a notification waits once it arrived.
/// (diesel does not hand out the socket to wait on; 500 cheap reads a second cost nothing.)
const POLL: Duration = Duration::from_millis(2);
/// How often the listening connection is asked a question, to find a silently lost one.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long after a heartbeat was asked, unanswered, the instance counts itself deaf: a
/// connection that hangs without failing (no reset reaches it) stops being trusted.
const DEAF_AFTER: Duration = Duration::from_secs(3);
/// How long stopping waits for the listening thread.
const STOP_WAIT: Duration = Duration::from_secs(1);
/// Waits between attempts to listen again: short, since caches are off meanwhile.
const RETRY: Duration = Duration::from_millis(200);

/// Tells the other instances, when the transaction commits, that something changed. The
/// payload names this instance, which has moved its own generation already.
pub(super) fn announce(conn: &mut AnyConnection, instance: &str) -> QueryResult<()> {
    match conn {
        AnyConnection::Postgresql(_) => {
            diesel::sql_query("SELECT pg_notify($1, $2)")
                .bind::<diesel::sql_types::Text, _>(CHANNEL)
                .bind::<diesel::sql_types::Text, _>(instance)
                .execute(conn)?;
            Ok(())
        }
        AnyConnection::Sqlite(_) => Ok(()),
    }
}

/// The thread that listens for other instances' changes; stop it with [`Listener::stop`].
pub struct Listener {
    stop: mpsc::Sender<()>,
    /// Closed when the thread ends.
    ended: mpsc::Receiver<()>,
    thread: JoinHandle<()>,
}

impl Listener {
    /// Listens on `url` (a session connection: `LISTEN` does not survive a transaction-pooling
    /// proxy) and moves `db`'s write generation on every change heard, counting it in `heard`.
    pub fn start(db: Db, url: String, heard: prometheus::IntCounter) -> Self {
        let (stop, stopped) = mpsc::channel();
        let (ending, ended) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("invalidations".into())
            .spawn(move || {
                let _ending = ending;
                listen(&db, &url, &heard, &stopped)
            })
            .expect("a thread can be started");
        Self {
            stop,
            ended,
            thread,
        }
    }

    /// Stops the thread, waiting for it a moment at most: one blocked on a connection that
    /// hangs (no answer, no reset) would hold the shutdown, and the Last-used write after it,
    /// for as long as the hang lasts. Left behind, it ends with the process.
    pub fn stop(self) {
        let _ = self.stop.send(());
        match self.ended.recv_timeout(STOP_WAIT) {
            Err(RecvTimeoutError::Timeout) => {
                tracing::warn!(
                    "the connection that hears other instances' changes hangs; not waiting for it"
                )
            }
            Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                let _ = self.thread.join();
            }
        }
    }
}

fn listen(db: &Db, url: &str, heard: &prometheus::IntCounter, stopped: &mpsc::Receiver<()>) {
    let mut lost_since: Option<Instant> = None;
    loop {
        match subscribe(url) {
            Ok(mut conn) => {
                // Whatever changed while nobody listened: forgotten, then cached anew.
                db.hear_others(true);
                match lost_since.take() {
                    Some(at) => tracing::info!(
                        after_ms = at.elapsed().as_millis() as u64,
                        "listening for other instances' changes again after a reconnect; caches back on"
                    ),
                    None => tracing::info!("listening for other instances' changes"),
                }
                let ended = hear(db, &mut conn, heard, stopped);
                db.hear_others(false);
                match ended {
                    Ended::Stopped => return,
                    Ended::Lost(e) => {
                        tracing::warn!(error = %e, "lost the connection that hears other instances' changes; caches off until it is back");
                        lost_since = Some(Instant::now());
                    }
                }
            }
            Err(e) => {
                if lost_since.is_none() {
                    tracing::warn!(error = %e, "cannot listen for other instances' changes; caches off until it can");
                    lost_since = Some(Instant::now());
                }
            }
        }
        match stopped.recv_timeout(RETRY) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

fn subscribe(url: &str) -> Result<PgConnection, String> {
    let mut conn = PgConnection::establish(url).map_err(|e| e.to_string())?;
    conn.batch_execute(&format!(
        "SET application_name = 'tokendesk invalidations'; LISTEN {CHANNEL}"
    ))
    .map_err(|e| e.to_string())?;
    Ok(conn)
}

/// Milliseconds on a monotonic clock of this process.
pub(super) fn millis() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// Until when changes are known heard, for a heartbeat asked now.
pub(super) fn hearing_until() -> u64 {
    millis() + DEAF_AFTER.as_millis() as u64
}

enum Ended {
    Stopped,
    Lost(String),
}

/// Reads notifications until the connection fails or the listener is stopped.
fn hear(
    db: &Db,
    conn: &mut PgConnection,
    counted: &prometheus::IntCounter,
    stopped: &mpsc::Receiver<()>,
) -> Ended {
    let mut asked = Instant::now();
    loop {
        if let Err(e) = read_notifications(db, conn, counted) {
            return Ended::Lost(e);
        }
        if asked.elapsed() >= HEARTBEAT {
            let until = hearing_until();
            if let Err(e) = conn.batch_execute("SELECT 1") {
                return Ended::Lost(e.to_string());
            }
            // Changes committed before the question came before the answer: heard once read.
            if let Err(e) = read_notifications(db, conn, counted) {
                return Ended::Lost(e);
            }
            if db.still_hears(until) {
                tracing::info!(
                    after_ms = asked.elapsed().as_millis() as u64,
                    "the connection that hears other instances' changes answers again after a hang; caches back on"
                );
            }
            asked = Instant::now();
        }
        match stopped.recv_timeout(POLL) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return Ended::Stopped,
        }
    }
}

/// Moves the write generation if another instance's change arrived.
fn read_notifications(
    db: &Db,
    conn: &mut PgConnection,
    counted: &prometheus::IntCounter,
) -> Result<(), String> {
    let mut heard = false;
    for notification in conn.notifications_iter() {
        heard |= notification.map_err(|e| e.to_string())?.payload != db.instance();
    }
    if heard {
        db.changed_elsewhere();
        counted.inc();
    }
    Ok(())
}
