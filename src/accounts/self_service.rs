//! What signed-in members change of their own account: their display name and their password.
//! Each change is one transaction with its audit event.

use chrono::NaiveDateTime;

use crate::accounts::passwords;
use crate::accounts::sign_in::{self, SignInError};
use crate::audit::{Action, Actor, Event};
use crate::db::{refuse, Db, DbError};
use crate::users::{self, User};

/// Renames the actor to `display_name` (already [`crate::domain::clean_name`]d); the member as
/// renamed. The same name again writes nothing.
pub async fn rename(db: &Db, actor: Actor, display_name: String) -> Result<User, DbError> {
    db.write(move |conn| {
        let before = users::find(conn, actor.user_id)?.ok_or(diesel::result::Error::NotFound)?;
        if before.display_name == display_name {
            return Ok(before);
        }
        users::set_display_name(conn, before.id, &display_name)?;
        Event::by(Action::DisplayNameChanged, &actor)
            .target("user", Some(before.id), &before.email)
            .details(format!("{} -> {display_name}", before.display_name))
            .record(conn)?;
        users::find(conn, before.id)?.ok_or(diesel::result::Error::NotFound)
    })
    .await
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordChangeError {
    #[error("This is not your current password.")]
    WrongPassword,
    #[error("too many wrong passwords")]
    Throttled { until: NaiveDateTime },
    /// Another change (or a sign-out) got there first: nothing was written.
    #[error("Your password or your session changed meanwhile. Nothing was changed; sign in again if you were signed out.")]
    ChangedMeanwhile,
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<SignInError> for PasswordChangeError {
    fn from(e: SignInError) -> Self {
        match e {
            // The recheck never asks whether passwords sign in: it only checks one.
            SignInError::Refused | SignInError::PasswordsOff(_) => {
                PasswordChangeError::WrongPassword
            }
            SignInError::Throttled { until } => PasswordChangeError::Throttled { until },
            SignInError::Db(e) => PasswordChangeError::Db(e),
            SignInError::Internal(e) => PasswordChangeError::Internal(e),
        }
    }
}

/// A changed password: how many other sessions ended, and the secret of the session that
/// replaces the one it was changed from (for its cookie).
pub struct PasswordChanged {
    pub sessions_ended: usize,
    pub session_secret: String,
}

/// Changes `user`'s password from `current` (checked under the sign-in limit, see
/// [`sign_in::recheck_password`]; a wrong one is audited) to `new` (the rules already met).
/// Every session of theirs ends: a browser left signed in elsewhere, and every copy of this
/// session's cookie, whose session is replaced by a new one. Two changes at once from the same
/// old password: the second writes nothing.
pub async fn change_password(
    db: &Db,
    user: &User,
    actor: Actor,
    session_secret: String,
    current: String,
    new: String,
) -> Result<PasswordChanged, PasswordChangeError> {
    let Some(checked_hash) = sign_in::recheck_password(db, user, current, &actor.client_ip).await?
    else {
        let (user_id, email) = (user.id, user.email.clone());
        db.write(move |conn| {
            Event::by(Action::PasswordChangeRefused, &actor)
                .target("user", Some(user_id), &email)
                .details("wrong current password")
                .record(conn)
        })
        .await?;
        return Err(PasswordChangeError::WrongPassword);
    };
    let hash = passwords::hash(new).await?;
    let (user_id, email) = (user.id, user.email.clone());
    db.transact(move |conn| {
        if !users::replace_password(conn, user_id, &checked_hash, &hash)? {
            return refuse(PasswordChangeError::ChangedMeanwhile);
        }
        let Some(session_secret) = crate::sessions::renew(conn, &session_secret, user_id)? else {
            return refuse(PasswordChangeError::ChangedMeanwhile);
        };
        let ended = crate::sessions::end_others_of(conn, user_id, &session_secret)?;
        // A set-password link still out would undo what was just chosen.
        users::withdraw_password_links(conn, user_id)?;
        Event::by(Action::PasswordChanged, &actor)
            .target("user", Some(user_id), &email)
            .details(format!("other sessions ended: {ended}"))
            .record(conn)?;
        Ok(PasswordChanged {
            sessions_ended: ended,
            session_secret,
        })
    })
    .await
}
