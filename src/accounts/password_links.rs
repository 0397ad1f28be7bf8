//! One-time set-password links: an admin gives one to a new member, who sets their first
//! password with it, or to a member who forgot theirs. Only the digest of the link's secret is
//! stored, and a member has one working link at most.

use crate::audit::{Action, Actor, Event};
use crate::db::{AnyConnection, Db, DbError};
use crate::tokens::{TokenSecret, TOKEN_PREFIX};
use crate::users::{self, User};

/// Creates a link for `user`, in place of any unused one; returns the secret for its URL.
pub fn create(conn: &mut AnyConnection, user: &User, by: &Actor) -> diesel::QueryResult<String> {
    let secret = TokenSecret::generate();
    let withdrawn = users::withdraw_password_links(conn, user.id)?;
    users::insert_password_link(conn, user.id, &secret.digest().0, by.user_id)?;
    let mut event =
        Event::by(Action::PasswordLinkCreated, by).target("user", Some(user.id), &user.email);
    if withdrawn > 0 {
        event = event.details(format!("replaces {withdrawn} unused link(s)"));
    }
    event.record(conn)?;
    // The URL carries the random part only; it is not an access token and must not look like one.
    Ok(secret.expose()[TOKEN_PREFIX.len()..].to_owned())
}

/// The digest a link's secret is stored by; empty for what cannot be one.
fn digest(link_secret: &str) -> Option<String> {
    TokenSecret::parse(&format!("{TOKEN_PREFIX}{link_secret}")).map(|s| s.digest().0)
}

/// The member a link is for, while it is unused and unexpired.
pub async fn owner(db: &Db, link_secret: &str) -> Result<Option<User>, DbError> {
    let Some(digest) = digest(link_secret) else {
        return Ok(None);
    };
    let found = db
        .run(move |conn| users::find_password_link(conn, &digest))
        .await?;
    Ok(found.map(|(_, user)| user))
}

/// Sets the link's member's password and uses the link up; false when the link no longer
/// works (used, expired, or someone used it first). Every session of the member ends.
pub async fn set_password(
    db: &Db,
    link_secret: &str,
    password_hash: String,
    client_ip: String,
) -> Result<bool, DbError> {
    let Some(digest) = digest(link_secret) else {
        return Ok(false);
    };
    db.write(move |conn| {
        let Some((link_id, user)) = users::find_password_link(conn, &digest)? else {
            return Ok(false);
        };
        if !users::consume_password_link(conn, link_id)? {
            return Ok(false);
        }
        users::set_password(conn, user.id, &password_hash)?;
        crate::sessions::end_all_for(conn, user.id)?;
        Event::new(Action::PasswordSet, Some(user.id))
            .target("user", Some(user.id), &user.email)
            .client_ip(&client_ip)
            .details("via one-time link")
            .record(conn)?;
        Ok(true)
    })
    .await
}
