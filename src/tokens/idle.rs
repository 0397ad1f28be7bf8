//! Auto-revoke of unused tokens. When the policy says "revoke tokens not used for N days", a
//! background sweep revokes every active token, personal or an application's, with no use in
//! the last N days (a token never used counts from when it was made or given a new secret),
//! each audited as `token.auto_revoked` with the reason. Owners see the countdown on their list
//! [`WARNING_DAYS`] before, and mailed once it is revoked when mail is on.
//!
//! Instances sharing PostgreSQL may sweep at the same moment: each token is revoked by a
//! statement that changes it only while it is still unused and not revoked, and only the
//! instance whose statement changed it records the event.

use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;

use chrono::{Duration, NaiveDateTime};

use crate::audit::{Action, Event};
use crate::background::BackgroundThread;
use crate::clock::Clock;
use crate::db::{lock_shared, Db, DbError, Lock};
use crate::domain::Policy;
use crate::notifications::{self, Notice, Outbox, Revocation};
use crate::tokens::actions::details;
use crate::tokens::{inventory, store, LastUsedRecorder, PersonalAccessToken, TokenStatus};

/// How long before its revocation an unused token is pointed out to its owner.
pub const WARNING_DAYS: i64 = 7;

/// Tokens revoked a transaction: a sweep after the policy is first turned on may find many.
const BATCH: i64 = 200;

/// A pause between batches, so a long sweep never holds off other writers (on SQLite, the one
/// write lock): an admin turning the rule off gets in within a batch or two.
const BATCH_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

/// When an active token will be revoked unless it is used before; None when the policy keeps
/// unused tokens, or the token is no longer active.
pub fn deadline(
    token: &PersonalAccessToken,
    policy: &Policy,
    now: NaiveDateTime,
) -> Option<NaiveDateTime> {
    if token.status(now) != TokenStatus::Active {
        return None;
    }
    policy.unused_deadline(token.idle_since())
}

/// The deadline of a token whose owner is to be warned: within [`WARNING_DAYS`].
pub fn warning(
    token: &PersonalAccessToken,
    policy: &Policy,
    now: NaiveDateTime,
) -> Option<NaiveDateTime> {
    deadline(token, policy, now).filter(|at| *at <= now + Duration::days(WARNING_DAYS))
}

/// How many of `owner`'s tokens are within [`WARNING_DAYS`] of being revoked for going unused.
pub fn count_warned(
    conn: &mut crate::db::AnyConnection,
    owner: store::TokenOwner,
    policy: &Policy,
    now: NaiveDateTime,
) -> diesel::QueryResult<i64> {
    let Some(days) = policy.revoke_unused_after_days else {
        return Ok(0);
    };
    let cutoff = now - Duration::days(days) + Duration::days(WARNING_DAYS);
    store::count_unused(conn, owner, cutoff, now)
}

/// How many tokens saving `next` would have the next sweep revoke that the policy in force
/// would not: those already unused that long, when it turns the rule on or shortens it. They
/// would go before their owners saw the week's warning, so an admin confirms it first.
pub async fn revoked_at_once(db: &Db, next: &Policy, now: NaiveDateTime) -> Result<i64, DbError> {
    let Some(days) = next.revoke_unused_after_days else {
        return Ok(0);
    };
    db.read(move |conn| {
        let in_force = crate::policy::load(conn)?.revoke_unused_after_days;
        if in_force.is_some_and(|current| current <= days) {
            return Ok(0);
        }
        store::count_all_unused(conn, now - Duration::days(days), now)
    })
    .await
}

/// Writes this instance's pending Last-used times (so a token used a moment ago is not taken
/// for unused), then revokes every token unused for as long as the policy allows, in batches.
/// Returns how many this call revoked.
pub fn sweep(
    db: &Db,
    last_used: &LastUsedRecorder,
    clock: &Clock,
    outbox: Outbox,
) -> Result<usize, DbError> {
    last_used.flush()?;
    let now = clock.now();
    let (mut after_id, mut revoked) = (0, 0);
    loop {
        // Each batch reads the policy afresh under the lock saving it takes: an admin turning
        // the rule off, or lengthening it, stops a sweep under way at its next batch.
        let (last_id, full, done) = db.write_blocking(|conn| {
            lock_shared(conn, Lock::Policy)?;
            let Some(days) = crate::policy::load(conn)?.revoke_unused_after_days else {
                return Ok((None, false, 0));
            };
            let cutoff = now - Duration::days(days);
            let due = store::unused(conn, cutoff, now, after_id, BATCH)?;
            let (last_id, full) = (due.last().map(|t| t.id), due.len() as i64 == BATCH);
            let mut done = 0;
            for row in inventory::with_owners(conn, due)? {
                // Another instance sweeping at the same moment, or a use written meanwhile:
                // then this statement changes nothing, and this instance records nothing.
                if !store::revoke_unused(conn, row.token.id, cutoff, now)? {
                    continue;
                }
                Event::new(Action::TokenAutoRevoked, None)
                    .target("token", Some(row.token.id), &row.token.name)
                    .details(format!(
                        "{}; {}",
                        details(&row.token, row.owner_label()),
                        reason(&row.token, days)
                    ))
                    .record(conn)?;
                let notice = Notice::TokenRevokedByAdmin {
                    how: Revocation::Unused { days },
                };
                notifications::enqueue(conn, outbox, row.token.id, &notice, None, now)?;
                done += 1;
            }
            Ok((last_id, full, done))
        })?;
        revoked += done;
        match last_id {
            Some(id) if full => after_id = id,
            _ => return Ok(revoked),
        }
        std::thread::sleep(BATCH_PAUSE);
    }
}

/// Why the audit trail says it was revoked: "not used for 90 days; last used … from …".
fn reason(token: &PersonalAccessToken, days: i64) -> String {
    let exact = |at: NaiveDateTime| at.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    let since = token.idle_since();
    let what = match token.last_used_at {
        Some(at) if at == since => {
            let from = token
                .last_used_ip
                .as_deref()
                .map(|ip| format!(" from {ip}"))
                .unwrap_or_default();
            format!("last used {}{from}", exact(at))
        }
        _ if token.regenerated_at == Some(since) => {
            format!("not used since its new secret of {}", exact(since))
        }
        _ => format!("never used, created {}", exact(since)),
    };
    format!("not used for {days} days; {what}")
}

/// The background sweep: runs every interval until stopped.
pub struct UnusedSweeper(BackgroundThread);

impl UnusedSweeper {
    pub fn start(
        db: Db,
        last_used: Arc<LastUsedRecorder>,
        clock: Clock,
        every: std::time::Duration,
        outbox: Outbox,
    ) -> Self {
        UnusedSweeper(BackgroundThread::spawn(
            "unused-token-sweeper",
            move |stopped| {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    match sweep(&db, &last_used, &clock, outbox) {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(tokens = n, "revoked unused tokens"),
                        Err(e) => {
                            tracing::warn!(error = %e, "revoking unused tokens failed; will retry")
                        }
                    }
                }
            },
        ))
    }

    /// Stops after the sweep under way, if any.
    pub fn stop(self) {
        self.0.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(day: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, day)
            .unwrap()
            .and_hms_opt(9, 0, 0)
            .unwrap()
    }

    fn token(created: u32, regenerated: Option<u32>, used: Option<u32>) -> PersonalAccessToken {
        let mut token = PersonalAccessToken::example(at(created));
        token.regenerated_at = regenerated.map(at);
        token.last_used_at = used.map(at);
        token.last_used_ip = used.map(|_| "10.0.0.7".into());
        token
    }

    #[test]
    fn the_countdown_starts_at_the_latest_of_use_making_and_new_secret() {
        let policy = Policy {
            revoke_unused_after_days: Some(10),
            ..Policy::default()
        };
        let now = at(20);
        assert_eq!(deadline(&token(1, None, None), &policy, now), Some(at(11)));
        assert_eq!(
            deadline(&token(1, Some(5), None), &policy, now),
            Some(at(15))
        );
        assert_eq!(
            deadline(&token(1, Some(5), Some(8)), &policy, now),
            Some(at(18))
        );
        assert_eq!(
            deadline(&token(1, None, None), &Policy::default(), now),
            None
        );
        let mut revoked = token(1, None, None);
        revoked.revoked_at = Some(at(2));
        assert_eq!(deadline(&revoked, &policy, now), None, "only active tokens");
        // Warned from 7 days before: the one due on the 27th is, the one due on the 28th not yet.
        assert_eq!(warning(&token(17, None, None), &policy, now), Some(at(27)));
        assert_eq!(warning(&token(18, None, None), &policy, now), None);
    }

    #[test]
    fn the_audit_trail_says_what_the_countdown_started_from() {
        assert_eq!(
            reason(&token(1, None, Some(3)), 90),
            "not used for 90 days; last used 2026-11-03 09:00:00 UTC from 10.0.0.7"
        );
        assert_eq!(
            reason(&token(1, None, None), 90),
            "not used for 90 days; never used, created 2026-11-01 09:00:00 UTC"
        );
        assert_eq!(
            reason(&token(1, Some(4), None), 90),
            "not used for 90 days; not used since its new secret of 2026-11-04 09:00:00 UTC"
        );
    }
}
