//! Applications, the organisation's service accounts: admins create, rename and archive them and
//! name their maintainers. Each change is one transaction with its audit event, under
//! [`Lock::Members`] (the admin is still one) and [`Lock::Application`] (which token changes
//! for the application take too, so a removed maintainer or an archive stops them at once).

use crate::applications::{self, Application};
use crate::audit::{Action, Actor, Event};
use crate::db::{lock, refuse, Abort, AnyConnection, Db, DbError, Lock};
use crate::domain::{ApplicationDetails, Email};
use crate::tokens::{inventory, store, TokenOwner};
use crate::users;

#[derive(Debug, thiserror::Error)]
pub enum ApplicationError {
    #[error("An application named “{0}” already exists. Choose another name.")]
    NameTaken(String),
    #[error("No such application.")]
    NotFound,
    #[error("The application is archived.")]
    Archived,
    #[error("No member has the email {0}.")]
    NoSuchMember(String),
    #[error("{0} is deactivated. Reactivate them first.")]
    MemberDeactivated(String),
    #[error("You are no longer an active admin.")]
    NoLongerAdmin,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl ApplicationError {
    /// The form field the refusal is about, if any.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            ApplicationError::NameTaken(_) => Some("name"),
            ApplicationError::NoSuchMember(_) | ApplicationError::MemberDeactivated(_) => {
                Some("email")
            }
            _ => None,
        }
    }
}

/// The acting admin, still one; then the application, locked and read afresh, and live.
fn lock_live(
    conn: &mut AnyConnection,
    actor: &Actor,
    id: i64,
) -> Result<Application, Abort<ApplicationError>> {
    if !users::still_admin(conn, actor.user_id)? {
        return refuse(ApplicationError::NoLongerAdmin);
    }
    lock(conn, Lock::Application(id))?;
    match applications::find(conn, id)? {
        None => refuse(ApplicationError::NotFound),
        Some(application) if application.is_archived() => refuse(ApplicationError::Archived),
        Some(application) => Ok(application),
    }
}

fn describe(details: &ApplicationDetails) -> String {
    format!("name={}; description={}", details.name, details.description)
}

pub async fn create(
    db: &Db,
    actor: Actor,
    details: ApplicationDetails,
) -> Result<Application, ApplicationError> {
    let name = details.name.clone();
    db.transact(move |conn| {
        if !users::still_admin(conn, actor.user_id)? {
            return refuse(ApplicationError::NoLongerAdmin);
        }
        if applications::name_taken(conn, &details.name, None)? {
            return refuse(ApplicationError::NameTaken(details.name));
        }
        let application =
            applications::insert(conn, &details.name, &details.description, actor.user_id)?;
        Event::by(Action::ApplicationCreated, &actor)
            .target("application", Some(application.id), &application.name)
            .details(describe(&details))
            .record(conn)?;
        Ok(application)
    })
    .await
    .map_err(|e| name_conflict(e, name))
}

/// Two admins giving the same name at once: the unique index on live names refuses the
/// second, which is told so like any other taken name.
fn name_conflict(error: ApplicationError, name: String) -> ApplicationError {
    match error {
        ApplicationError::Db(DbError::Query(ref q)) if crate::db::is_unique_violation(q) => {
            ApplicationError::NameTaken(name)
        }
        other => other,
    }
}

/// A new name and description.
pub async fn rename(
    db: &Db,
    actor: Actor,
    id: i64,
    details: ApplicationDetails,
) -> Result<Application, ApplicationError> {
    let name = details.name.clone();
    db.transact(move |conn| {
        let before = lock_live(conn, &actor, id)?;
        if applications::name_taken(conn, &details.name, Some(id))? {
            return refuse(ApplicationError::NameTaken(details.name));
        }
        applications::rename(conn, id, &details.name, &details.description)?;
        Event::by(Action::ApplicationRenamed, &actor)
            .target("application", Some(id), &details.name)
            .details(format!("was {}; now {}", before.name, describe(&details)))
            .record(conn)?;
        Ok(applications::find(conn, id)?.ok_or(diesel::result::Error::NotFound)?)
    })
    .await
    .map_err(|e| name_conflict(e, name))
}

/// Archives an application and revokes every token it holds, each audited. Returns how many
/// tokens were revoked.
pub async fn archive(db: &Db, actor: Actor, id: i64) -> Result<usize, ApplicationError> {
    db.transact(move |conn| {
        let application = lock_live(conn, &actor, id)?;
        let live = store::owned_rows(
            conn,
            TokenOwner::Application(id),
            crate::tokens::Tab::Current,
            0,
            i64::MAX,
        )?;
        let ids: Vec<i64> = live.iter().map(|t| t.id).collect();
        let revoked = inventory::revoke_many(conn, &ids, actor.user_id)?;
        for token in &live {
            Event::by(Action::ApplicationTokenRevoked, &actor)
                .target("token", Some(token.id), &token.name)
                .details(format!(
                    "{}; application archived",
                    crate::tokens::actions::details(token, &application.name)
                ))
                .record(conn)?;
        }
        applications::archive(conn, id, actor.user_id)?;
        Event::by(Action::ApplicationArchived, &actor)
            .target("application", Some(id), &application.name)
            .details(format!("revoked {revoked} token(s)"))
            .record(conn)?;
        Ok(revoked)
    })
    .await
}

/// Makes the member with `email` a maintainer; false when they already were one.
pub async fn add_maintainer(
    db: &Db,
    actor: Actor,
    id: i64,
    email: Email,
) -> Result<bool, ApplicationError> {
    db.transact(move |conn| {
        let application = lock_live(conn, &actor, id)?;
        let Some(member) = users::find_by_email(conn, &email)? else {
            return refuse(ApplicationError::NoSuchMember(email.as_str().to_owned()));
        };
        if !member.is_active {
            return refuse(ApplicationError::MemberDeactivated(member.email));
        }
        let added = applications::add_maintainer(conn, id, member.id, actor.user_id)?;
        if added {
            Event::by(Action::MaintainerAdded, &actor)
                .target("application", Some(id), &application.name)
                .details(format!("maintainer={}", member.email))
                .record(conn)?;
        }
        Ok(added)
    })
    .await
}

/// Removes a maintainer; false when they were not one. Their tokens changes stop at once: token
/// changes for the application read the maintainers under the same lock.
pub async fn remove_maintainer(
    db: &Db,
    actor: Actor,
    id: i64,
    user_id: i64,
) -> Result<bool, ApplicationError> {
    db.transact(move |conn| {
        let application = lock_live(conn, &actor, id)?;
        let removed = applications::remove_maintainer(conn, id, user_id)?;
        if removed {
            let email = users::find(conn, user_id)?
                .map(|u| u.email)
                .unwrap_or_default();
            Event::by(Action::MaintainerRemoved, &actor)
                .target("application", Some(id), &application.name)
                .details(format!("maintainer={email}"))
                .record(conn)?;
        }
        Ok(removed)
    })
    .await
}

const NAME_KEYS_NFKC: &str = "upgrade.application_name_keys_nfkc";

/// Rewrites the keys names are compared by, as stored before they were compared across width
/// (NFKC) as well as case, once. Two live applications whose names turn out to be one are
/// both left as they are, and logged for an admin to rename one.
pub fn rekey_stored_names(conn: &mut AnyConnection) -> diesel::QueryResult<usize> {
    use crate::db::schema::{applications as apps, settings};
    use diesel::prelude::*;
    crate::db::write_transaction(conn, |conn| {
        // Instances starting together: one rewrites, the others find it done.
        lock(conn, Lock::Members)?;
        let done: Option<String> = settings::table
            .find(NAME_KEYS_NFKC)
            .select(settings::value)
            .first(conn)
            .optional()?;
        if done.is_some() {
            return Ok(0);
        }
        let stored: Vec<(i64, String, String, bool)> = apps::table
            .select((
                apps::id,
                apps::name,
                apps::name_key,
                apps::archived_at.is_null(),
            ))
            .load(conn)?;
        let mut rewritten = 0;
        for (id, name, key, live) in &stored {
            let new_key = applications::name_key(name);
            if &new_key == key {
                continue;
            }
            let clash = stored.iter().any(|(other, other_name, _, other_live)| {
                other != id && *live && *other_live && applications::name_key(other_name) == new_key
            });
            if clash {
                tracing::warn!(
                    application_id = id,
                    "two applications share one name; left as they are"
                );
                continue;
            }
            diesel::update(apps::table.find(id))
                .set(apps::name_key.eq(new_key))
                .execute(conn)?;
            rewritten += 1;
        }
        diesel::insert_into(settings::table)
            .values((settings::key.eq(NAME_KEYS_NFKC), settings::value.eq("1")))
            .execute(conn)?;
        Ok(rewritten)
    })
}
