//! Signed-in sessions, kept server-side so that signing out, deactivation and a password
//! change end them even where a cookie was copied. The cookie holds a random secret; the
//! table holds only its SHA-256.

use crate::domain::{sha256_hex, Secret};
use chrono::{Duration, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::db::schema::{sessions, users};
use crate::db::AnyConnection;
use crate::users::User;

/// How long a sign-in lasts.
pub const SESSION_HOURS: i64 = 12;

fn digest(secret: &str) -> String {
    sha256_hex(secret)
}

/// Starts a session for `user_id` and returns its secret for the cookie. Expired sessions
/// are swept out on the way, so the table stays the size of the signed-in population.
pub fn start(conn: &mut AnyConnection, user_id: i64) -> QueryResult<String> {
    let secret = Secret::generate(43).into_string();
    let now = Utc::now().naive_utc();
    diesel::delete(sessions::table.filter(sessions::expires_at.le(now))).execute(conn)?;
    diesel::insert_into(sessions::table)
        .values((
            sessions::digest.eq(digest(&secret)),
            sessions::user_id.eq(user_id),
            sessions::created_at.eq(now),
            sessions::expires_at.eq(now + Duration::hours(SESSION_HOURS)),
        ))
        .execute(conn)?;
    Ok(secret)
}

/// The active member a live session belongs to.
pub fn user_for(
    conn: &mut AnyConnection,
    secret: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<User>> {
    sessions::table
        .inner_join(users::table)
        .filter(sessions::digest.eq(digest(secret)))
        .filter(sessions::expires_at.gt(now))
        .filter(users::is_active.eq(true))
        .select(User::as_select())
        .first(conn)
        .optional()
}

/// Marks `key` as the one thing this session may show once.
pub fn expect_showing(conn: &mut AnyConnection, secret: &str, key: &str) -> QueryResult<()> {
    diesel::update(sessions::table.find(digest(secret)))
        .set(sessions::pending_showing.eq(key))
        .execute(conn)
        .map(drop)
}

/// Whether `key` was still to be shown; it is not any more.
pub fn take_showing(conn: &mut AnyConnection, secret: &str, key: &str) -> QueryResult<bool> {
    let taken = diesel::update(
        sessions::table
            .find(digest(secret))
            .filter(sessions::pending_showing.eq(key)),
    )
    .set(sessions::pending_showing.eq(None::<String>))
    .execute(conn)?;
    Ok(taken == 1)
}

/// Whether `key` is still to be shown, leaving it so.
pub fn showing_pending(conn: &mut AnyConnection, secret: &str, key: &str) -> QueryResult<bool> {
    sessions::table
        .find(digest(secret))
        .filter(sessions::pending_showing.eq(key))
        .count()
        .get_result::<i64>(conn)
        .map(|found| found == 1)
}

pub fn end(conn: &mut AnyConnection, secret: &str) -> QueryResult<()> {
    diesel::delete(sessions::table.find(digest(secret)))
        .execute(conn)
        .map(drop)
}

/// Ends this session and starts another for the same member: the secret in every copy of the
/// old cookie stops working. The new secret, or `None` when the session had already ended.
pub fn renew(conn: &mut AnyConnection, secret: &str, user_id: i64) -> QueryResult<Option<String>> {
    let ended = diesel::delete(
        sessions::table
            .find(digest(secret))
            .filter(sessions::user_id.eq(user_id)),
    )
    .execute(conn)?;
    if ended == 0 {
        return Ok(None);
    }
    start(conn, user_id).map(Some)
}

/// Ends every session of a member: on deactivation and when their password changes.
pub fn end_all_for(conn: &mut AnyConnection, user_id: i64) -> QueryResult<usize> {
    diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id))).execute(conn)
}

/// Ends every session of a member but the one whose cookie holds `kept_secret`: when they
/// change their own password, where they did it stays signed in.
pub fn end_others_of(
    conn: &mut AnyConnection,
    user_id: i64,
    kept_secret: &str,
) -> QueryResult<usize> {
    diesel::delete(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::digest.ne(digest(kept_secret))),
    )
    .execute(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_never_holds_the_cookie_secret() {
        let secret = "a".repeat(64);
        assert_eq!(digest(&secret).len(), 64);
        assert_ne!(digest(&secret), secret);
    }
}
