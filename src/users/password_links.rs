//! One-time set-password links, stored by the digest of their secret (`crate::accounts`
//! makes and uses them).

use chrono::Utc;
use diesel::prelude::*;

use crate::db::schema::users;
use crate::db::AnyConnection;
use crate::users::User;

/// How long a set-password link works.
pub const PASSWORD_LINK_HOURS: i64 = 24;

/// Stores a one-time set-password link by the digest of its secret.
pub fn insert_password_link(
    conn: &mut AnyConnection,
    user_id: i64,
    digest: &str,
    created_by: i64,
) -> QueryResult<()> {
    use crate::db::schema::password_links as links;
    let now = Utc::now().naive_utc();
    diesel::insert_into(links::table)
        .values((
            links::user_id.eq(user_id),
            links::digest.eq(digest),
            links::created_by.eq(created_by),
            links::created_at.eq(now),
            links::expires_at.eq(now + chrono::Duration::hours(PASSWORD_LINK_HOURS)),
        ))
        .execute(conn)
        .map(drop)
}

/// The member a link is for, while it is unused and unexpired.
pub fn find_password_link(
    conn: &mut AnyConnection,
    digest: &str,
) -> QueryResult<Option<(i64, User)>> {
    use crate::db::schema::password_links as links;
    links::table
        .inner_join(users::table.on(users::id.eq(links::user_id)))
        .filter(links::digest.eq(digest))
        .filter(links::used_at.is_null())
        .filter(links::expires_at.gt(Utc::now().naive_utc()))
        .filter(users::is_active.eq(true))
        .select((links::id, User::as_select()))
        .first(conn)
        .optional()
}

/// Marks a link used; false when someone used it first.
pub fn consume_password_link(conn: &mut AnyConnection, link_id: i64) -> QueryResult<bool> {
    use crate::db::schema::password_links as links;
    let changed = diesel::update(links::table.find(link_id).filter(links::used_at.is_null()))
        .set(links::used_at.eq(Utc::now().naive_utc()))
        .execute(conn)?;
    Ok(changed == 1)
}

/// Makes a member's unused links stop working (they expire now); how many there were.
pub fn withdraw_password_links(conn: &mut AnyConnection, user_id: i64) -> QueryResult<usize> {
    use crate::db::schema::password_links as links;
    let now = Utc::now().naive_utc();
    diesel::update(
        links::table
            .filter(links::user_id.eq(user_id))
            .filter(links::used_at.is_null())
            .filter(links::expires_at.gt(now)),
    )
    .set(links::expires_at.eq(now))
    .execute(conn)
}
