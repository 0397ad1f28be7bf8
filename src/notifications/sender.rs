//! The background sender: on every instance, a thread that enqueues the expiry reminders due,
//! then claims due notifications one at a time and sends them over SMTP.
//!
//! A claim is a compare-and-swap: `UPDATE … SET claimed_until = now + lease WHERE id = ? AND
//! sent_at IS NULL AND (claimed_until IS NULL OR claimed_until < now)`, won by the one statement
//! that changed the row (on PostgreSQL at READ COMMITTED a second UPDATE waits for the first and
//! re-checks the condition). The winner sends, then marks the row sent. An instance stopped
//! gracefully finishes the mail it is sending; one killed mid-send leaves its claim to expire
//! after the lease (`TOKENDESK_MAIL_LEASE_SECS`), and the mail is sent again then (at least
//! once, never lost).

use std::collections::HashSet;
use std::sync::mpsc::{RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{Message, SmtpTransport, Transport};

use super::render::render;
use super::{enqueue, expiring, reminder_due, ExpiringToken, Facts, Notice, Outbox};
use crate::audit::{Action, Event};
use crate::background::BackgroundThread;
use crate::clock::Clock;
use crate::config::ServeConfig;
use crate::db::schema::{notifications as n, personal_access_tokens as pat};
use crate::db::{Db, DbError};

/// The longest one step of an SMTP exchange may take; less when the lease is short (an eighth
/// of it: a send has fewer steps), so no other instance takes a mail over while it is sent.
const SMTP_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest wait between two tries of one mail.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// The tokens are looked through for expiry reminders due every so many polls (a minute at
/// the default poll of 5 s).
const POLLS_PER_REMINDER_SCAN: u32 = 12;
/// Reminders enqueued a transaction.
const REMINDER_BATCH: usize = 200;
/// The longest error text kept in a row and the audit trail.
const ERROR_CHARS: usize = 300;

/// How this instance sends mail; built from the settings when `TOKENDESK_SMTP_URL` is set.
pub struct MailSettings {
    transport: SmtpTransport,
    /// `scheme://host:port` of the SMTP server: what logs name (never the credentials).
    server: String,
    /// The URL and its credentials: never let through into an error kept or logged.
    secrets: Vec<String>,
    from: Mailbox,
    public_url: String,
    poll: Duration,
    retry: Duration,
    /// How long a claimed mail is this instance's to send.
    lease: Duration,
    max_attempts: i32,
}

impl MailSettings {
    /// None when mail is off (no SMTP URL, or an empty one). Refuses a URL lettre cannot use, a
    /// From that is not an address, and mail without `TOKENDESK_PUBLIC_URL`: a mail's links need
    /// the portal's address, which no request is there to tell.
    pub fn from_config(config: &ServeConfig) -> anyhow::Result<Option<Self>> {
        let Some(url) = config
            .smtp_url
            .as_ref()
            .filter(|url| !url.expose().is_empty())
        else {
            return Ok(None);
        };
        let url = url.expose();
        let secrets = secrets_of(url);
        let lease = Duration::from_secs_f64(config.mail_lease_secs.max(0.05));
        let server = without_credentials(url);
        let transport = SmtpTransport::from_url(url)
            .map_err(|e| {
                anyhow::anyhow!(
                    "TOKENDESK_SMTP_URL ({server}) is not a usable SMTP URL: {}",
                    redact(&secrets, &e.to_string())
                )
            })?
            .timeout(Some(SMTP_TIMEOUT.min(lease / 8)))
            .build();
        let from: Mailbox = config.mail_from.parse().with_context(|| {
            format!(
                "TOKENDESK_MAIL_FROM {:?} is not an address",
                config.mail_from
            )
        })?;
        let public_url = config
            .public_url
            .as_deref()
            .map(|url| url.trim_end_matches('/').to_owned())
            .filter(|url| !url.is_empty())
            .context(
                "TOKENDESK_SMTP_URL is set but TOKENDESK_PUBLIC_URL is not: mails link to the \
                 portal, so they need its address",
            )?;
        Ok(Some(Self {
            transport,
            server,
            secrets,
            from,
            public_url,
            poll: Duration::from_secs_f64(config.mail_poll_secs.max(0.05)),
            retry: Duration::from_secs_f64(config.mail_retry_secs.max(0.05)),
            lease,
            max_attempts: i32::try_from(config.mail_max_attempts).unwrap_or(i32::MAX),
        }))
    }

    /// How long a mail waits after its `attempts`-th failed try: doubling from the retry
    /// setting, up to an hour.
    fn backoff(&self, attempts: i32) -> Duration {
        let doublings = u32::try_from(attempts.saturating_sub(1))
            .unwrap_or(0)
            .min(20);
        self.retry
            .saturating_mul(2u32.saturating_pow(doublings))
            .min(MAX_BACKOFF)
    }
}

/// Whether notices are enqueued: only when this instance has mail to send them with.
pub fn outbox_of(settings: Option<&MailSettings>) -> Outbox {
    match settings {
        Some(_) => Outbox::On,
        None => Outbox::Off,
    }
}

/// What may not leave this process from an SMTP URL: the URL, its user and password part, and
/// the password as written and percent-decoded.
fn secrets_of(url: &str) -> Vec<String> {
    let mut secrets = vec![url.to_owned()];
    let authority = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = authority.split(['/', '?', '#']).next().unwrap_or_default();
    if let Some((userinfo, _)) = authority.rsplit_once('@') {
        secrets.push(userinfo.to_owned());
        if let Some((_, password)) = userinfo.split_once(':') {
            secrets.push(password.to_owned());
            let decoded = percent_encoding::percent_decode_str(password).decode_utf8_lossy();
            secrets.push(decoded.into_owned());
        }
    }
    secrets.retain(|secret| !secret.is_empty());
    // The longest first: a password inside the URL is replaced with the URL.
    secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
    secrets
}

/// `scheme://host:port`, without credentials, path or query.
fn without_credentials(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("smtp", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}://{host}")
}

/// The portal's host name, for Message-IDs: `https://tokens.example.com:8443/x` gives
/// `tokens.example.com`; an IPv6 literal stays in its brackets.
fn message_id_domain(public_url: &str) -> String {
    let host = without_credentials(public_url);
    let host = host.split_once("://").map_or(host.as_str(), |(_, h)| h);
    match host.strip_prefix('[') {
        Some(literal) => format!("[{}]", literal.split(']').next().unwrap_or_default()),
        None => host.split(':').next().unwrap_or_default().to_owned(),
    }
}

/// `text` with every secret replaced, cut to [`ERROR_CHARS`].
fn redact(secrets: &[String], text: &str) -> String {
    let cleaned = secrets.iter().fold(text.to_owned(), |text, secret| {
        text.replace(secret.as_str(), "[redacted]")
    });
    cleaned.chars().take(ERROR_CHARS).collect()
}

/// The background sender; stopping it lets the mail being sent finish.
pub struct Mailer(BackgroundThread);

impl Mailer {
    pub fn start(db: Db, settings: MailSettings, clock: Clock) -> Self {
        tracing::info!(server = %settings.server, "mail notifications are on");
        Mailer(BackgroundThread::spawn("mail-sender", move |stopped| {
            let mut worker = Worker {
                db,
                settings,
                clock,
                reminded: HashSet::new(),
                next_scan: None,
            };
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(worker.settings.poll) {
                let stopping = || !matches!(stopped.try_recv(), Err(TryRecvError::Empty));
                if worker.run(stopping) == Run::Stopped {
                    break;
                }
            }
        }))
    }

    /// Stops after the mail being sent, if any.
    pub fn stop(self) {
        self.0.stop();
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Run {
    Done,
    Stopped,
}

/// A notification this instance has claimed.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = n)]
struct Claimed {
    id: i64,
    kind: String,
    recipient_email: String,
    token_id: Option<i64>,
    token_name: String,
    facts: String,
    attempts: i32,
    created_at: NaiveDateTime,
}

/// Why a claimed mail was not sent.
enum Failure {
    /// Worth another try later (the server was away, or said 4xx).
    Transient(String),
    /// Will fail the same way every time (a 5xx, an address lettre cannot take).
    Permanent(String),
    /// What it tells about no longer holds (a reminder for an expiry since changed).
    Stale(&'static str),
}

struct Worker {
    db: Db,
    settings: MailSettings,
    clock: Clock,
    /// Reminders this instance enqueued already: the table's dedupe key would refuse them
    /// again anyway, this saves asking.
    reminded: HashSet<(ExpiringToken, i64)>,
    next_scan: Option<Instant>,
}

impl Worker {
    /// Enqueues the reminders due (every [`POLLS_PER_REMINDER_SCAN`] polls), then sends every
    /// mail due.
    fn run(&mut self, stopping: impl Fn() -> bool) -> Run {
        if self.next_scan.is_none_or(|at| self.clock.instant() >= at) {
            match self.enqueue_reminders() {
                Ok(0) => {}
                Ok(n) => tracing::debug!(mails = n, "enqueued expiry reminders"),
                Err(e) => {
                    tracing::warn!(error = %e, "enqueuing expiry reminders failed; will retry")
                }
            }
            let every = self.settings.poll * POLLS_PER_REMINDER_SCAN;
            self.next_scan = Some(self.clock.instant() + every);
        }
        loop {
            if stopping() {
                return Run::Stopped;
            }
            let now = self.clock.now();
            let lease = self.settings.lease;
            match self.db.run_blocking(|conn| claim_next(conn, now, lease)) {
                Ok(Some(claimed)) => self.deliver(claimed),
                Ok(None) => return Run::Done,
                Err(e) => {
                    tracing::warn!(error = %e, "looking for mail to send failed; will retry");
                    return Run::Done;
                }
            }
        }
    }

    fn enqueue_reminders(&mut self) -> Result<usize, DbError> {
        let now = self.clock.now();
        let tokens = self.db.run_blocking(|conn| expiring(conn, now))?;
        self.reminded.retain(|(token, _)| token.expires_at > now);
        let due: Vec<(ExpiringToken, i64)> = tokens
            .into_iter()
            .filter_map(|token| {
                reminder_due(token.issued_at, token.expires_at, now).map(|days| (token, days))
            })
            .filter(|due| !self.reminded.contains(due))
            .collect();
        let mut written = 0;
        // A transaction a batch: turning mail on over many tokens near their expiry must not
        // hold the write lock (SQLite's one) for long.
        for batch in due.chunks(REMINDER_BATCH) {
            written += self.db.write_blocking(|conn| {
                let mut written = 0;
                for (token, days) in batch {
                    let notice = Notice::ExpiresSoon {
                        days: *days,
                        expires_at: token.expires_at,
                    };
                    written += enqueue(conn, Outbox::On, token.id, &notice, None, now)?;
                }
                Ok(written)
            })?;
            self.reminded.extend(batch.iter().copied());
        }
        Ok(written)
    }

    fn deliver(&self, claimed: Claimed) {
        let outcome = self.send(&claimed);
        let now = self.clock.now();
        let recorded = self.db.write_blocking(|conn| match &outcome {
            Ok(()) => diesel::update(n::table.find(claimed.id))
                .set((
                    n::sent_at.eq(now),
                    n::claimed_until.eq(None::<NaiveDateTime>),
                    n::last_error.eq(None::<String>),
                ))
                .execute(conn)
                .map(drop),
            Err(Failure::Stale(why)) => diesel::update(n::table.find(claimed.id))
                .set((
                    n::abandoned_at.eq(now),
                    n::claimed_until.eq(None::<NaiveDateTime>),
                    n::last_error.eq(format!("not sent: {why}")),
                ))
                .execute(conn)
                .map(drop),
            Err(Failure::Transient(error) | Failure::Permanent(error)) => {
                let give_up = matches!(outcome, Err(Failure::Permanent(_)))
                    || claimed.attempts >= self.settings.max_attempts;
                let retry_at = now
                    + chrono::Duration::from_std(self.settings.backoff(claimed.attempts))
                        .unwrap_or_else(|_| chrono::Duration::hours(1));
                diesel::update(n::table.find(claimed.id))
                    .set((
                        n::abandoned_at.eq(give_up.then_some(now)),
                        n::due_at.eq(if give_up { now } else { retry_at }),
                        n::claimed_until.eq(None::<NaiveDateTime>),
                        n::last_error.eq(error),
                    ))
                    .execute(conn)?;
                let what = format!(
                    "{} mail to {}, attempt {}: {error}",
                    claimed.kind, claimed.recipient_email, claimed.attempts
                );
                let (action, details) = if give_up {
                    (Action::MailAbandoned, format!("{what}; given up"))
                } else {
                    let at = retry_at.format("%Y-%m-%d %H:%M:%S UTC");
                    (Action::MailFailed, format!("{what}; next try at {at}"))
                };
                Event::new(action, None)
                    .target("token", claimed.token_id, &claimed.token_name)
                    .details(details)
                    .record(conn)
            }
        });
        match (&outcome, recorded) {
            (_, Err(e)) => tracing::warn!(
                notification = claimed.id,
                error = %e,
                "could not record a mail's outcome; another try may send it again"
            ),
            (Ok(()), Ok(())) => {
                tracing::info!(notification = claimed.id, kind = %claimed.kind, "sent a mail")
            }
            (Err(Failure::Stale(why)), Ok(())) => {
                tracing::debug!(notification = claimed.id, why, "a mail no longer applies")
            }
            (Err(Failure::Transient(e) | Failure::Permanent(e)), Ok(())) => tracing::warn!(
                notification = claimed.id,
                attempt = claimed.attempts,
                error = %e,
                "a mail was not sent"
            ),
        }
    }

    fn send(&self, claimed: &Claimed) -> Result<(), Failure> {
        let facts: Facts = serde_json::from_str(&claimed.facts)
            .map_err(|e| Failure::Permanent(format!("unreadable notification: {e}")))?;
        if let (Notice::ExpiresSoon { expires_at, .. }, Some(token_id)) =
            (&facts.notice, claimed.token_id)
        {
            let still = self
                .db
                .run_blocking(|conn| {
                    pat::table
                        .find(token_id)
                        .filter(pat::revoked_at.is_null())
                        .filter(pat::expires_at.eq(expires_at))
                        .count()
                        .get_result::<i64>(conn)
                })
                .map_err(|e| Failure::Transient(e.to_string()))?;
            if still == 0 {
                return Err(Failure::Stale(
                    "the token was revoked or given a new expiry",
                ));
            }
        }
        let mail = render(
            &facts,
            claimed.token_id.unwrap_or_default(),
            &claimed.token_name,
            claimed.created_at,
            &self.settings.public_url,
        );
        let to: Mailbox = claimed
            .recipient_email
            .parse()
            .map_err(|e| Failure::Permanent(format!("the address cannot be mailed: {e}")))?;
        // The same Message-ID on every try of one notification: a mail sent again after a crash
        // mid-send is recognisable as the same one.
        let host = message_id_domain(&self.settings.public_url);
        let message = Message::builder()
            .message_id(Some(format!("<notification-{}@{host}>", claimed.id)))
            .from(self.settings.from.clone())
            .to(to)
            .subject(mail.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body)
            .map_err(|e| Failure::Permanent(format!("the mail cannot be built: {e}")))?;
        self.settings
            .transport
            .send(&message)
            .map(drop)
            .map_err(|e| {
                let error = redact(&self.settings.secrets, &e.to_string());
                if e.is_permanent() {
                    Failure::Permanent(error)
                } else {
                    Failure::Transient(error)
                }
            })
    }
}

/// Claims the next due notification for this instance, if any (see the module's comment).
fn claim_next(
    conn: &mut crate::db::AnyConnection,
    now: NaiveDateTime,
    lease: Duration,
) -> QueryResult<Option<Claimed>> {
    let lease = chrono::Duration::from_std(lease).unwrap_or_else(|_| chrono::Duration::minutes(5));
    macro_rules! claimable {
        ($query:expr) => {
            $query
                .filter(n::sent_at.is_null())
                .filter(n::abandoned_at.is_null())
                .filter(n::due_at.le(now))
                .filter(n::claimed_until.is_null().or(n::claimed_until.lt(now)))
        };
    }
    let candidates: Vec<i64> = claimable!(n::table)
        .order((n::due_at.asc(), n::id.asc()))
        .select(n::id)
        .limit(8)
        .load(conn)?;
    for id in candidates {
        let won = diesel::update(claimable!(n::table.filter(n::id.eq(id))))
            .set((
                n::claimed_until.eq(now + lease),
                n::attempts.eq(n::attempts + 1),
            ))
            .execute(conn)?;
        if won == 1 {
            return n::table
                .find(id)
                .select(Claimed::as_select())
                .first(conn)
                .optional();
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_credential_survives_in_an_error() {
        let secrets = secrets_of("smtps://mailer:p%40ss%2Fword@mail.example.com:465/helo?x=1");
        let error = "auth failed for mailer:p%40ss%2Fword (p@ss/word) at \
                     smtps://mailer:p%40ss%2Fword@mail.example.com:465/helo?x=1";
        let cleaned = redact(&secrets, error);
        for secret in ["p%40ss%2Fword", "p@ss/word", "mailer:p"] {
            assert!(!cleaned.contains(secret), "{cleaned}");
        }
        assert_eq!(
            without_credentials("smtps://mailer:p%40ss@mail.example.com:465/helo?x=1"),
            "smtps://mail.example.com:465"
        );
        assert_eq!(
            without_credentials("smtp://127.0.0.1:2525"),
            "smtp://127.0.0.1:2525"
        );
        assert_eq!(
            secrets_of("smtp://127.0.0.1:2525"),
            ["smtp://127.0.0.1:2525"]
        );
        assert_eq!(
            message_id_domain("https://tokens.example.com:8443/portal"),
            "tokens.example.com"
        );
        assert_eq!(
            message_id_domain("http://[2001:db8::1]:8080"),
            "[2001:db8::1]"
        );
    }

    #[test]
    fn retries_back_off_by_doubling_up_to_an_hour() {
        let mut config = ServeConfig::with_database("sqlite://x.db");
        config.smtp_url = Some(crate::config::SmtpUrl::new("smtp://127.0.0.1:2525"));
        config.public_url = Some("https://tokens.example.com/".into());
        config.mail_retry_secs = 60.0;
        let settings = MailSettings::from_config(&config).unwrap().unwrap();
        assert_eq!(settings.public_url, "https://tokens.example.com");
        assert_eq!(settings.backoff(1), Duration::from_secs(60));
        assert_eq!(settings.backoff(3), Duration::from_secs(240));
        assert_eq!(settings.backoff(50), MAX_BACKOFF);
    }

    #[test]
    fn mail_needs_the_public_url_and_a_usable_smtp_url() {
        let mut config = ServeConfig::with_database("sqlite://x.db");
        assert!(MailSettings::from_config(&config).unwrap().is_none(), "off");
        config.smtp_url = Some(" ".parse().unwrap());
        assert!(
            MailSettings::from_config(&config).unwrap().is_none(),
            "empty: off"
        );
        config.smtp_url = Some(crate::config::SmtpUrl::new("smtp://127.0.0.1:2525"));
        let error = MailSettings::from_config(&config)
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("TOKENDESK_PUBLIC_URL"), "{error}");
        config.public_url = Some("https://tokens.example.com".into());
        config.smtp_url = Some(crate::config::SmtpUrl::new("imap://user:hunter2@host"));
        let error = MailSettings::from_config(&config)
            .err()
            .unwrap()
            .to_string();
        assert!(!error.contains("hunter2"), "{error}");
    }
}
