//! Signing in with email and password, and the limit on guessing.
//!
//! Every password check is reserved before argon2 runs, in a transaction that counts the
//! checks already made (a reservation counts as a failure until it is settled), so requests
//! sent at the same moment cannot all be checked. The rules, per 15 minutes:
//! - an account and address pair gets 5 failed checks;
//! - an address that has not signed in to the account within 90 days also stops at 5 failed
//!   checks for the account (from all such addresses together) and at 5 from itself (for all
//!   accounts together).
//!
//! So a stranger's failures hold back other strangers, never the owner at an address they
//! signed in from before; and an office behind one shared address is not locked out by one of
//! its members mistyping.

use std::net::IpAddr;

use chrono::{Duration, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::accounts::passwords;
use crate::audit::{Action, Event};
use crate::db::schema::sign_in_attempts as attempts;
use crate::db::{lock, refuse, Abort, AnyConnection, Db, DbError, Lock};
use crate::domain::Email;
use crate::tokens::throttle::client_of;
use crate::users::{self, User};

/// Failed checks allowed per rule within the window.
pub const MAX_FAILURES: usize = 5;
pub const FAILURE_WINDOW_MINUTES: i64 = 15;
/// How long a successful sign-in makes its address known to the account.
pub const KNOWN_ADDRESS_DAYS: i64 = 90;

/// What stands for anything typed as the email that is not an address.
const NOT_AN_ADDRESS: &str = "(not an email address)";

const PENDING: &str = "pending";
const FAILED: &str = "failed";
const SUCCEEDED: &str = "succeeded";

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// One message for every failure, so nobody learns whether an account exists.
    #[error("Incorrect email or password.")]
    Refused,
    #[error("too many failed sign-ins")]
    Throttled { until: NaiveDateTime },
    #[error("Passwords do not sign in here: use “Sign in with {0}”.")]
    PasswordsOff(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Who may sign in with a password: everyone, or (with an identity provider for everyone
/// else) the break-glass admin only.
#[derive(Clone, Debug)]
pub struct PasswordSignIn {
    pub on: bool,
    pub break_glass_admin: Option<Email>,
    /// The provider to use instead, for the refusal.
    pub provider_name: String,
}

impl PasswordSignIn {
    pub fn everyone() -> Self {
        Self {
            on: true,
            break_glass_admin: None,
            provider_name: String::new(),
        }
    }

    pub fn allows(&self, email: Option<&Email>) -> bool {
        self.on || (email.is_some() && email == self.break_glass_admin.as_ref())
    }
}

pub struct SignedIn {
    pub user: User,
    /// For the session cookie.
    pub session_secret: String,
}

/// The failed (or still running) checks that can hold back an attempt, oldest first.
#[derive(Debug, Default)]
struct Failures {
    pair: Vec<NaiveDateTime>,
    account: Vec<NaiveDateTime>,
    address: Vec<NaiveDateTime>,
    /// The address signed in to the account before.
    known: bool,
}

impl Failures {
    /// When the attempt may be made, if not now: when the oldest failure that keeps a rule at
    /// its limit leaves the window.
    fn held_until(&self) -> Option<NaiveDateTime> {
        let rules: &[&Vec<NaiveDateTime>] = if self.known {
            &[&self.pair]
        } else {
            &[&self.pair, &self.account, &self.address]
        };
        rules
            .iter()
            .filter(|times| times.len() >= MAX_FAILURES)
            .map(|times| {
                times[times.len() - MAX_FAILURES] + Duration::minutes(FAILURE_WINDOW_MINUTES)
            })
            .max()
    }
}

fn failures(
    conn: &mut AnyConnection,
    email: &str,
    client_ip: &str,
    now: NaiveDateTime,
) -> QueryResult<Failures> {
    let since = now - Duration::minutes(FAILURE_WINDOW_MINUTES);
    let rows: Vec<(String, String, NaiveDateTime)> = attempts::table
        .filter(attempts::created_at.gt(since))
        .filter(attempts::outcome.ne(SUCCEEDED))
        .filter(
            attempts::email
                .eq(email)
                .or(attempts::client_ip.eq(client_ip)),
        )
        .order(attempts::created_at.asc())
        .select((attempts::email, attempts::client_ip, attempts::created_at))
        .load(conn)?;
    let known = diesel::select(diesel::dsl::exists(
        attempts::table
            .filter(attempts::email.eq(email))
            .filter(attempts::client_ip.eq(client_ip))
            .filter(attempts::outcome.eq(SUCCEEDED))
            .filter(attempts::created_at.gt(now - Duration::days(KNOWN_ADDRESS_DAYS))),
    ))
    .get_result(conn)?;
    let mut failures = Failures {
        known,
        ..Failures::default()
    };
    for (row_email, row_ip, at) in rows {
        let (same_account, same_address) = (row_email == email, row_ip == client_ip);
        if same_account && same_address {
            failures.pair.push(at);
        }
        if same_account {
            failures.account.push(at);
        }
        if same_address {
            failures.address.push(at);
        }
    }
    Ok(failures)
}

/// The address the limit counts by: an IPv6 client by its /64, an IPv4 one however it came.
fn counted_address(client_ip: &str) -> String {
    match client_ip.parse::<IpAddr>().map(client_of) {
        Ok(IpAddr::V6(prefix)) => format!("{prefix}/64"),
        Ok(v4) => v4.to_string(),
        Err(_) => client_ip.to_owned(),
    }
}

/// Reserves one password check for `email` from `client_ip`, or says until when none is left.
fn reserve(
    conn: &mut AnyConnection,
    email: &str,
    client_ip: &str,
) -> Result<(i64, Option<User>), Abort<SignInError>> {
    lock(conn, Lock::SignIn)?;
    let now = Utc::now().naive_utc();
    if let Some(until) = failures(conn, email, client_ip, now)?.held_until() {
        return refuse(SignInError::Throttled { until });
    }
    diesel::delete(
        attempts::table.filter(attempts::created_at.lt(now - Duration::days(KNOWN_ADDRESS_DAYS))),
    )
    .execute(conn)?;
    diesel::insert_into(attempts::table)
        .values((
            attempts::email.eq(email),
            attempts::client_ip.eq(client_ip),
            attempts::created_at.eq(now),
            attempts::outcome.eq(PENDING),
        ))
        .execute(conn)?;
    // Under the lock, the newest row of this pair is the one just written.
    let id = attempts::table
        .filter(attempts::email.eq(email))
        .filter(attempts::client_ip.eq(client_ip))
        .order(attempts::id.desc())
        .select(attempts::id)
        .first(conn)?;
    let user = match Email::parse(email) {
        Ok(email) => users::find_by_email(conn, &email)?,
        Err(_) => None,
    };
    Ok((id, user))
}

fn settle(conn: &mut AnyConnection, attempt_id: i64, outcome: &'static str) -> QueryResult<()> {
    diesel::update(attempts::table.find(attempt_id))
        .set(attempts::outcome.eq(outcome))
        .execute(conn)
        .map(drop)
}

/// Signs in with `typed_email` and `password` from `client_ip`, starting a server-side session.
pub async fn sign_in(
    db: &Db,
    passwords: &PasswordSignIn,
    typed_email: &str,
    password: String,
    client_ip: String,
) -> Result<SignedIn, SignInError> {
    let parsed = Email::parse(typed_email).ok();
    // What was typed is recorded only when it is an address: a password typed into the email
    // field must not land in the audit trail.
    let email = parsed
        .as_ref()
        .map_or_else(|| NOT_AN_ADDRESS.to_owned(), |e| e.as_str().to_owned());
    if !passwords.allows(parsed.as_ref()) {
        // Refused before any password is checked: no argon2 spent, nothing learnt.
        db.write(move |conn| {
            Event::new(Action::SignInFailed, None)
                .target("user", None, &email)
                .client_ip(&client_ip)
                .details("password sign-in is off")
                .record(conn)
        })
        .await?;
        return Err(SignInError::PasswordsOff(passwords.provider_name.clone()));
    }
    let (reserved_email, address) = (email.clone(), counted_address(&client_ip));
    let (attempt_id, user) = db
        .transact(move |conn| reserve(conn, &reserved_email, &address))
        .await?;
    let stored_hash = user
        .as_ref()
        .and_then(|u| u.password_hash().map(str::to_owned));
    let password_ok = passwords::verify(stored_hash, password).await?;

    match user {
        Some(user) if password_ok && user.is_active => {
            let user_id = user.id;
            let session_secret = db
                .write(move |conn| {
                    settle(conn, attempt_id, SUCCEEDED)?;
                    users::record_sign_in(conn, user_id)?;
                    Event::new(Action::SignInSucceeded, Some(user_id))
                        .target("user", Some(user_id), &email)
                        .client_ip(&client_ip)
                        .record(conn)?;
                    crate::sessions::start(conn, user_id)
                })
                .await?;
            Ok(SignedIn {
                user,
                session_secret,
            })
        }
        user => {
            let user_id = user.map(|u| u.id);
            let reason = match (user_id, password_ok) {
                (None, _) => "unknown account",
                (Some(_), false) => "wrong password",
                (Some(_), true) => "account deactivated",
            };
            db.write(move |conn| {
                settle(conn, attempt_id, FAILED)?;
                Event::new(Action::SignInFailed, None)
                    .target("user", user_id, &email)
                    .client_ip(&client_ip)
                    .details(reason)
                    .record(conn)
            })
            .await?;
            Err(SignInError::Refused)
        }
    }
}

/// Checks a signed-in member's password again (before they change it) as one more check under
/// the limit above: a wrong one is a failed sign-in for the account and address, so a session
/// left open is no unlimited oracle for the password, and guessing here holds back guessing at
/// the sign-in page too. `Ok(false)`: not their password.
pub async fn recheck_password(
    db: &Db,
    user: &User,
    password: String,
    client_ip: &str,
) -> Result<Option<String>, SignInError> {
    let (email, address, user_id) = (user.email.clone(), counted_address(client_ip), user.id);
    let (attempt_id, stored) = db
        .transact(move |conn| reserve(conn, &email, &address))
        .await?;
    // The hash as stored now, read under the limit's lock.
    let stored_hash = stored
        .filter(|u| u.id == user_id)
        .and_then(|u| u.password_hash().map(str::to_owned));
    let password_ok = passwords::verify(stored_hash.clone(), password).await?;
    let outcome = if password_ok { SUCCEEDED } else { FAILED };
    db.write(move |conn| settle(conn, attempt_id, outcome))
        .await?;
    Ok(stored_hash.filter(|_| password_ok))
}

/// Ends the session whose cookie holds `session_secret`: copies of the cookie end with it.
pub async fn sign_out(
    db: &Db,
    user: &User,
    session_secret: String,
    client_ip: String,
) -> Result<(), DbError> {
    let (user_id, email) = (user.id, user.email.clone());
    db.write(move |conn| {
        crate::sessions::end(conn, &session_secret)?;
        Event::new(Action::SignedOut, Some(user_id))
            .target("user", Some(user_id), &email)
            .client_ip(&client_ip)
            .record(conn)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(minutes: &[i64]) -> Vec<NaiveDateTime> {
        let t0 = NaiveDateTime::default();
        minutes.iter().map(|m| t0 + Duration::minutes(*m)).collect()
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_64_and_a_mapped_ipv4_as_itself() {
        assert_eq!(counted_address("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(counted_address("2001:db8:1:2:bbbb::9"), "2001:db8:1:2::/64");
        assert_eq!(counted_address("::ffff:10.60.0.1"), "10.60.0.1");
        assert_eq!(counted_address("10.60.0.1"), "10.60.0.1");
    }

    #[test]
    fn each_rule_holds_from_its_fifth_failure_until_the_oldest_counted_one_leaves() {
        let at = |m| times(&[m])[0];
        let four = Failures {
            account: times(&[0, 1, 2, 3]),
            ..Failures::default()
        };
        assert_eq!(four.held_until(), None);
        let six_from_this_address = Failures {
            address: times(&[0, 1, 2, 3, 4, 5]),
            ..Failures::default()
        };
        assert_eq!(six_from_this_address.held_until(), Some(at(16)));
    }

    #[test]
    fn an_address_that_signed_in_before_is_held_only_by_its_own_failures() {
        let strangers_failures = Failures {
            account: times(&[0, 1, 2, 3, 4]),
            address: times(&[0, 1, 2, 3, 4]),
            known: true,
            ..Failures::default()
        };
        assert_eq!(strangers_failures.held_until(), None);
        let own_failures = Failures {
            pair: times(&[0, 1, 2, 3, 4]),
            known: true,
            ..Failures::default()
        };
        assert_eq!(own_failures.held_until(), Some(times(&[15])[0]));
    }
}
