//! A token used from an address its allowlist does not cover is refused on every request, and
//! audited once per token, address and day (UTC), whatever the number of instances: a row in
//! `token_address_refusals` claims the event. Each instance also remembers what it claimed, so a
//! flood from one address costs one insert, not one per request.

use std::collections::HashSet;
use std::sync::Mutex;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::audit::{Action, Event};
use crate::db::schema::token_address_refusals as refusals;
use crate::db::{write_transaction, AnyConnection, Db};

/// Beyond this many remembered claims, the memory is cleared (the table still deduplicates).
const MAX_REMEMBERED: usize = 10_000;

#[derive(Default)]
pub struct AddressRefusals {
    claimed: Mutex<HashSet<(i64, String, NaiveDate)>>,
}

impl AddressRefusals {
    /// Audits a refused use of `token_id` from `address` at `now`, if no instance has today.
    /// A failure to write is logged, never the request's problem: it is refused either way.
    pub async fn note(
        &self,
        db: &Db,
        token_id: i64,
        token_name: &str,
        address: &str,
        now: NaiveDateTime,
    ) {
        let day = now.date();
        let key = (token_id, address.to_owned(), day);
        {
            let mut claimed = self.claimed.lock().unwrap_or_else(|e| e.into_inner());
            if claimed.contains(&key) {
                return;
            }
            if claimed.len() >= MAX_REMEMBERED {
                claimed.clear();
            }
            claimed.insert(key.clone());
        }
        let (address, name) = (address.to_owned(), token_name.to_owned());
        // Not `Db::write`: an audit row changes nothing a cached token check depends on.
        let written = db
            .run(move |conn| {
                write_transaction(conn, |conn| {
                    // Yesterday's claims are no longer needed to deduplicate.
                    let before = (day - chrono::Duration::days(1)).to_string();
                    diesel::delete(refusals::table.filter(refusals::day.lt(before)))
                        .execute(conn)?;
                    let claimed = claim(conn, token_id, &address, &day.to_string())?;
                    if claimed {
                        Event::new(Action::TokenAddressRefused, None)
                            .target("token", Some(token_id), &name)
                            .client_ip(&address)
                            .details(format!(
                                "used from {address}, outside its allowlist; further uses from \
                                 this address today are refused without another event"
                            ))
                            .record(conn)?;
                    }
                    Ok(())
                })
            })
            .await;
        if let Err(e) = written {
            tracing::warn!(error = %e, token_id, "could not audit a refused address; will retry");
            let mut claimed = self.claimed.lock().unwrap_or_else(|e| e.into_inner());
            claimed.remove(&key);
        }
    }
}

/// Inserts the claim unless another instance made it first; true when this call made it. (Diesel
/// has no upsert for a connection that may be either backend; the SQL is the same on both.)
fn claim(conn: &mut AnyConnection, token_id: i64, address: &str, day: &str) -> QueryResult<bool> {
    use diesel::sql_types::{BigInt, Text};
    let inserted = match conn {
        AnyConnection::Postgresql(pg) => diesel::sql_query(
            "INSERT INTO token_address_refusals (token_id, address, day) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind::<BigInt, _>(token_id)
        .bind::<Text, _>(address)
        .bind::<Text, _>(day)
        .execute(pg)?,
        AnyConnection::Sqlite(sqlite) => diesel::sql_query(
            "INSERT INTO token_address_refusals (token_id, address, day) VALUES (?, ?, ?) \
             ON CONFLICT DO NOTHING",
        )
        .bind::<BigInt, _>(token_id)
        .bind::<Text, _>(address)
        .bind::<Text, _>(day)
        .execute(sqlite)?,
    };
    Ok(inserted == 1)
}
