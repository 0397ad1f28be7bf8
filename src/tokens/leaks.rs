//! The public leak report: anyone who finds a tokendesk token (a secret scanner, a person reading
//! a log or a paste) sends it, and every live one is revoked at once. Whoever reports learns
//! nothing about which of what they sent was real.

use std::collections::BTreeSet;

use crate::audit::{Action, Event};
use crate::db::{Db, DbError};
use crate::notifications::{self, Notice, Outbox, Revocation};
use crate::tokens::actions::details;
use crate::tokens::{inventory, store, TokenSecret};

/// Reports one client address may send a minute: registered once as `web::Data`.
pub struct LeakReportLimit(pub crate::tokens::FailureThrottle);

/// The most items one report may hold.
pub const MAX_REPORTED: usize = 100;

/// Revokes every live token among `reported` (what is not token-shaped is ignored), each
/// audited as `token.revoked_leak_report` with the reporter's address. Returns how many this
/// report revoked: for the log and the tests, never for the reporter. Owners are mailed when
/// mail is on.
pub async fn revoke_reported(
    db: &Db,
    outbox: Outbox,
    reported: &[String],
    reporter_ip: &str,
) -> Result<usize, DbError> {
    let digests: BTreeSet<String> = reported
        .iter()
        .filter_map(|item| TokenSecret::parse(item.trim()))
        .map(|secret| secret.digest().0)
        .collect();
    if digests.is_empty() {
        return Ok(0);
    }
    let digests: Vec<String> = digests.into_iter().collect();
    let reporter_ip = reporter_ip.to_owned();
    db.write(move |conn| {
        let live = store::live_with_digests(conn, &digests)?;
        let mut revoked = 0;
        for row in inventory::with_owners(conn, live)? {
            // Two reports of one token at once: the second finds it revoked and says nothing.
            if !store::revoke_reported(conn, row.token.id)? {
                continue;
            }
            Event::new(Action::TokenRevokedLeakReport, None)
                .client_ip(&reporter_ip)
                .target("token", Some(row.token.id), &row.token.name)
                .details(format!(
                    "{}; reported leaked from {reporter_ip}",
                    details(&row.token, row.owner_label())
                ))
                .record(conn)?;
            let notice = Notice::TokenRevokedByAdmin {
                how: Revocation::LeakReport {
                    reporter_ip: reporter_ip.clone(),
                },
            };
            let now = chrono::Utc::now().naive_utc();
            notifications::enqueue(conn, outbox, row.token.id, &notice, None, now)?;
            revoked += 1;
        }
        Ok(revoked)
    })
    .await
}
