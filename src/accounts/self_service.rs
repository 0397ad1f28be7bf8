//! What signed-in members change of their own account: their display name and their password.
//! Each change is one transaction with its audit event.

use chrono::NaiveDateTime;

use crate::accounts::passwords;
use crate::accounts::sign_in::{self, SignInError};
use crate::audit::{Action, Actor, Event};
use crate::db::{Db, DbError};
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
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<SignInError> for PasswordChangeError {
    fn from(e: SignInError) -> Self {
        match e {
            SignInError::Refused => PasswordChangeError::WrongPassword,
            SignInError::Throttled { until } => PasswordChangeError::Throttled { until },
            SignInError::Db(e) => PasswordChangeError::Db(e),
            SignInError::Internal(e) => PasswordChangeError::Internal(e),
        }
    }
}

/// Changes `user`'s password from `current` (checked under the sign-in limit, see
/// [`sign_in::recheck_password`]) to `new` (the rules already met), and ends every other
/// session of theirs: a copied cookie, or a browser left signed in elsewhere, stops working.
/// The session whose cookie holds `session_secret` stays. Returns how many sessions ended.
pub async fn change_password(
    db: &Db,
    user: &User,
    actor: Actor,
    session_secret: String,
    current: String,
    new: String,
) -> Result<usize, PasswordChangeError> {
    if !sign_in::recheck_password(db, user, current, &actor.client_ip).await? {
        return Err(PasswordChangeError::WrongPassword);
    }
    let hash = passwords::hash(new).await?;
    let (user_id, email) = (user.id, user.email.clone());
    let ended = db
        .write(move |conn| {
            users::set_password(conn, user_id, &hash)?;
            let ended = crate::sessions::end_others_of(conn, user_id, &session_secret)?;
            Event::by(Action::PasswordChanged, &actor)
                .target("user", Some(user_id), &email)
                .details(format!("other sessions ended: {ended}"))
                .record(conn)?;
            Ok(ended)
        })
        .await?;
    Ok(ended)
}
