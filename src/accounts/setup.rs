//! First run: the first administrator, claimed once however many browsers try at once.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::audit::{Action, Event};
use crate::db::{Db, DbError};
use crate::domain::{Email, Role};
use crate::users::{self, CreateUserError, NewUser, User};

/// Whether setup is done. Once true it stays true; until then every page asks the database.
/// Registered once as `web::Data<SetupState>`.
#[derive(Default)]
pub struct SetupState(AtomicBool);

impl SetupState {
    pub async fn is_complete(&self, db: &Db) -> Result<bool, DbError> {
        if self.0.load(Ordering::Acquire) {
            return Ok(true);
        }
        let done = db.run(users::any_exist).await?;
        if done {
            self.0.store(true, Ordering::Release);
        }
        Ok(done)
    }
}

pub struct FirstAdmin {
    pub email: Email,
    pub display_name: String,
    pub password_hash: String,
}

/// Creates the first admin and signs them in; `None` when another setup won. Returns the new
/// session's secret for the cookie.
pub async fn complete(
    db: &Db,
    state: &SetupState,
    first: FirstAdmin,
    client_ip: String,
) -> Result<Option<(User, String)>, DbError> {
    let created = db
        .write(move |conn| {
            if !users::claim_setup(conn)? {
                return Ok(None);
            }
            let new = NewUser {
                email: &first.email,
                display_name: &first.display_name,
                password_hash: Some(&first.password_hash),
                role: Role::Admin,
            };
            let admin = users::create(conn, new).map_err(|e| match e {
                CreateUserError::Query(q) => q,
                CreateUserError::EmailTaken => diesel::result::Error::RollbackTransaction,
            })?;
            Event::new(Action::SetupCompleted, Some(admin.id))
                .target("user", Some(admin.id), &admin.email)
                .client_ip(&client_ip)
                .record(conn)?;
            users::record_sign_in(conn, admin.id)?;
            let session_secret = crate::sessions::start(conn, admin.id)?;
            Ok(Some((admin, session_secret)))
        })
        .await?;
    if created.is_some() {
        state.0.store(true, Ordering::Release);
    }
    Ok(created)
}
