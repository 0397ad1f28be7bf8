//! Mail notifications about tokens: when one is made, revoked by someone else, about to expire,
//! or used from a new address. Off until `TOKENDESK_SMTP_URL` is set.
//!
//! A notice is written to the `notifications` table by [`enqueue`], inside the transaction of
//! what it tells about, so it is sent if and only if that commits. A background [`Mailer`] on
//! every instance claims due rows one at a time (a lease in `claimed_until`, taken by a
//! compare-and-swap `UPDATE`), sends, and marks them sent: a restart or a second instance never
//! sends one twice and none is lost. A failed send is retried with exponential backoff and
//! audited as `mail.failed` (`mail.abandoned` when it gives up). No secret is stored or mailed:
//! a row holds the token's name and the facts of what happened, rendered when it is sent.

mod render;
mod sender;

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};
use serde::{Deserialize, Serialize};

use crate::db::schema::{applications, personal_access_tokens as pat, users};
use crate::db::AnyConnection;

pub use render::Rendered;
pub use sender::{outbox_of, MailSettings, Mailer};

/// Whether this instance sends mail. Notices are enqueued only when it does: with mail off,
/// nothing would ever send them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outbox {
    Off,
    On,
}

/// What a mail tells its recipient about one token. Kept as JSON in the row and rendered when
/// the mail is sent; nothing in it is secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Notice {
    /// A token was made (the owner hears of every token made in their name).
    TokenCreated,
    /// Someone other than its holder revoked it: an admin, the unused-token sweep, or a leak
    /// report.
    TokenRevokedByAdmin { how: Revocation },
    /// It expires within `days` (30, 7 or 1), at `expires_at`.
    ExpiresSoon {
        days: i64,
        expires_at: NaiveDateTime,
    },
    /// It was used from an address it had not been used from before.
    NewAddress {
        address: String,
        user_agent: Option<String>,
        seen_at: NaiveDateTime,
    },
}

/// How a token was revoked by someone other than its holder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Revocation {
    /// An admin revoked this one token (`email`: the admin's).
    Admin { email: String },
    /// An admin revoked every token a filter of the inventory matched.
    Bulk { email: String },
    /// The token policy's sweep of tokens unused for `days` days.
    Unused { days: i64 },
    /// Someone (a secret scanner, say) reported it as leaked, from `reporter_ip`.
    LeakReport { reporter_ip: String },
}

impl Notice {
    /// The `kind` column: what the mail is about, for a person reading the table.
    pub fn kind(&self) -> &'static str {
        match self {
            Notice::TokenCreated => "token_created",
            Notice::TokenRevokedByAdmin { .. } => "token_revoked",
            Notice::ExpiresSoon { .. } => "expires_soon",
            Notice::NewAddress { .. } => "new_address",
        }
    }

    /// What makes two notices the same one: enqueuing it again (from another instance, or a
    /// second sweep) writes nothing. A new expiry (after a regenerate) makes new reminders.
    fn dedupe_key(&self, token_id: i64) -> String {
        let at = |t: &NaiveDateTime| t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string();
        match self {
            Notice::TokenCreated => format!("created:{token_id}"),
            Notice::TokenRevokedByAdmin { .. } => format!("revoked:{token_id}"),
            Notice::ExpiresSoon { days, expires_at } => {
                format!("expires:{token_id}:{}:{days}", at(expires_at))
            }
            Notice::NewAddress {
                address, seen_at, ..
            } => format!("new_address:{token_id}:{address}:{}", at(seen_at)),
        }
    }
}

/// Whose token a notice is about, as the mail names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplicationRef {
    pub id: i64,
    pub name: String,
}

/// What a row's `facts` column holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Facts {
    notice: Notice,
    /// Set for an application's token; None for a person's.
    application: Option<ApplicationRef>,
}

/// Enqueues `notice` about token `token_id` for the people it concerns, inside the caller's
/// transaction: the token's owner when active, or for an application's token its active
/// maintainers; never `actor`, the person whose own action it reports (an owner revoking their
/// own token hears nothing). Returns how many mails were enqueued: 0 with mail off, when the
/// same notice was enqueued before (see [`Notice`]'s dedupe key), or when nobody is to be told.
///
/// For a new-address use, from the Last-used flush (inside its write transaction):
///
/// ```text
/// notifications::enqueue(
///     conn,
///     outbox,
///     token_id,
///     &Notice::NewAddress { address: ip.into(), user_agent, seen_at },
///     None,
///     now,
/// )?;
/// ```
pub fn enqueue(
    conn: &mut AnyConnection,
    outbox: Outbox,
    token_id: i64,
    notice: &Notice,
    actor: Option<i64>,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    if outbox == Outbox::Off {
        return Ok(0);
    }
    let Some((name, user_id, application_id)) = pat::table
        .find(token_id)
        .select((pat::name, pat::user_id, pat::application_id))
        .first::<(String, Option<i64>, Option<i64>)>(conn)
        .optional()?
    else {
        return Ok(0);
    };
    let (recipients, application) = match (user_id, application_id) {
        (Some(user_id), _) => (
            users::table
                .filter(users::id.eq(user_id))
                .filter(users::is_active.eq(true))
                .select((users::id, users::email))
                .load::<(i64, String)>(conn)?,
            None,
        ),
        (None, Some(application_id)) => {
            let Some(application_name) = applications::table
                .find(application_id)
                .filter(applications::archived_at.is_null())
                .select(applications::name)
                .first::<String>(conn)
                .optional()?
            else {
                return Ok(0);
            };
            let maintainers = crate::applications::maintainers(conn, application_id)?
                .into_iter()
                .filter(|user| user.is_active)
                .map(|user| (user.id, user.email))
                .collect();
            let application = ApplicationRef {
                id: application_id,
                name: application_name,
            };
            (maintainers, Some(application))
        }
        (None, None) => return Ok(0),
    };
    let facts = serde_json::to_string(&Facts {
        notice: notice.clone(),
        application,
    })
    .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
    let key = notice.dedupe_key(token_id);
    let mut written = 0;
    for (recipient_id, email) in recipients.iter().filter(|(id, _)| Some(*id) != actor) {
        // The same SQL on both backends (SQLite takes `$1` as the first parameter too); diesel
        // has no upsert for a connection that may be either.
        written += diesel::sql_query(
            "INSERT INTO notifications (kind, recipient_id, recipient_email, token_id, \
             token_name, facts, dedupe_key, due_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (dedupe_key) DO NOTHING",
        )
        .bind::<Text, _>(notice.kind())
        .bind::<BigInt, _>(recipient_id)
        .bind::<Text, _>(email)
        .bind::<BigInt, _>(token_id)
        .bind::<Text, _>(&name)
        .bind::<Text, _>(&facts)
        .bind::<Text, _>(format!("{key}:to:{recipient_id}"))
        .bind::<Timestamp, _>(now)
        .bind::<Timestamp, _>(now)
        .execute(conn)?;
    }
    Ok(written)
}

/// Days before its expiry that an owner is reminded, nearest first.
const REMINDER_DAYS: [i64; 3] = [1, 7, 30];

/// The reminder a token expiring at `expires_at` is due now, if any: the nearest threshold it
/// is within (a token found 5 days from its expiry gets the 7-day reminder, not the 30-day one
/// too). A threshold is skipped for a token given a life barely longer than it (a 30-day token
/// is not reminded of its expiry the moment it is made): `issued_at` is when it was made or
/// given its secret.
pub fn reminder_due(
    issued_at: NaiveDateTime,
    expires_at: NaiveDateTime,
    now: NaiveDateTime,
) -> Option<i64> {
    let left = expires_at - now;
    if left <= Duration::zero() {
        return None;
    }
    REMINDER_DAYS.into_iter().find(|days| {
        left <= Duration::days(*days) && expires_at - issued_at >= Duration::days(days + 1)
    })
}

/// Tokens not revoked that expire within the longest reminder: (id, issued at, expires at).
fn expiring(conn: &mut AnyConnection, now: NaiveDateTime) -> QueryResult<Vec<ExpiringToken>> {
    let rows: Vec<(
        i64,
        NaiveDateTime,
        Option<NaiveDateTime>,
        Option<NaiveDateTime>,
    )> = pat::table
        .filter(pat::revoked_at.is_null())
        .filter(pat::expires_at.gt(now))
        .filter(pat::expires_at.le(now + Duration::days(REMINDER_DAYS[2])))
        .select((
            pat::id,
            pat::created_at,
            pat::regenerated_at,
            pat::expires_at,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, created_at, regenerated_at, expires_at)| {
            Some(ExpiringToken {
                id,
                issued_at: regenerated_at.unwrap_or(created_at),
                expires_at: expires_at?,
            })
        })
        .collect())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct ExpiringToken {
    id: i64,
    issued_at: NaiveDateTime,
    expires_at: NaiveDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn day(d: u32, h: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 12, d)
            .unwrap()
            .and_hms_opt(h, 0, 0)
            .unwrap()
    }

    #[test]
    fn only_the_nearest_reminder_is_due() {
        let made = day(1, 0) - Duration::days(80);
        let expires = day(31, 12);
        assert_eq!(reminder_due(made, expires, day(1, 0)), None, "31 days left");
        assert_eq!(reminder_due(made, expires, day(2, 0)), Some(30));
        assert_eq!(reminder_due(made, expires, day(25, 0)), Some(7));
        assert_eq!(reminder_due(made, expires, day(30, 13)), Some(1));
        assert_eq!(reminder_due(made, expires, day(31, 13)), None, "expired");
        // Found 5 days before its expiry (the server was down): the 7-day one, not the 30.
        assert_eq!(reminder_due(made, expires, day(26, 12)), Some(7));
    }

    #[test]
    fn a_token_made_near_a_threshold_skips_it() {
        let made = day(1, 0);
        // A 30-day token: no "30 days left" the moment it is made; the 7 and 1 come.
        let expires = made + Duration::days(30);
        assert_eq!(reminder_due(made, expires, made), None);
        assert_eq!(
            reminder_due(made, expires, expires - Duration::days(6)),
            Some(7)
        );
        // A 5-day token: only the last day's.
        let expires = made + Duration::days(5);
        assert_eq!(reminder_due(made, expires, made), None);
        assert_eq!(
            reminder_due(made, expires, expires - Duration::hours(20)),
            Some(1)
        );
    }

    #[test]
    fn dedupe_keys_follow_the_expiry() {
        let first = Notice::ExpiresSoon {
            days: 7,
            expires_at: day(10, 0),
        };
        let regenerated = Notice::ExpiresSoon {
            days: 7,
            expires_at: day(20, 0),
        };
        assert_ne!(first.dedupe_key(3), regenerated.dedupe_key(3));
        assert_eq!(first.dedupe_key(3), first.clone().dedupe_key(3));
        assert_ne!(first.dedupe_key(3), first.dedupe_key(4));
    }

    #[test]
    fn facts_round_trip_through_json() {
        let facts = Facts {
            notice: Notice::NewAddress {
                address: "203.0.113.9".into(),
                user_agent: Some("curl/8.5".into()),
                seen_at: day(3, 9),
            },
            application: Some(ApplicationRef {
                id: 2,
                name: "Billing".into(),
            }),
        };
        let json = serde_json::to_string(&facts).unwrap();
        assert_eq!(serde_json::from_str::<Facts>(&json).unwrap(), facts);
    }
}
