//! Members: creating them, their role and whether they are active. Each change is one
//! transaction with its audit event, and the rules that span members (one active admin at
//! least) are checked inside it, under [`Lock::Members`].

use crate::accounts::password_links;
use crate::audit::{Action, Actor, Event};
use crate::db::{lock, refuse, Abort, AnyConnection, Db, DbError, Lock};
use crate::domain::{Email, Role};
use crate::users::{self, CreateUserError, NewUser, User};

/// Why a change to a member was refused.
#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    #[error("A member with this email already exists.")]
    EmailTaken,
    #[error("Another member has this externalId.")]
    ExternalIdTaken,
    #[error("{0} is the last active admin. Make someone else an admin first.")]
    LastAdmin(String),
    #[error("You cannot deactivate your own account.")]
    Yourself,
    #[error("No such member.")]
    NotFound,
    #[error("{0} is deactivated. Reactivate them first.")]
    Deactivated(String),
    #[error("You are no longer an active admin.")]
    NoLongerAdmin,
    #[error(
        "The token making this request is no longer active, or may no longer hold scim:write."
    )]
    NoLongerProvisioning,
    #[error(transparent)]
    Db(#[from] DbError),
}

/// How a new member gets their first password.
pub enum FirstPassword {
    /// An argon2 hash of a password chosen for them.
    Hash(String),
    /// A one-time set-password link.
    Link,
}

pub struct NewMember {
    pub email: Email,
    pub display_name: String,
    pub role: Role,
    pub password: FirstPassword,
}

pub struct CreatedMember {
    pub user: User,
    /// The secret of the set-password link, for its URL, when one was asked for.
    pub link_secret: Option<String>,
}

/// Creates a member. `by` is the admin, or `None` for the command line.
pub fn create(
    conn: &mut AnyConnection,
    new: &NewMember,
    by: Option<&Actor>,
) -> Result<CreatedMember, Abort<MemberError>> {
    let password_hash = match &new.password {
        FirstPassword::Hash(hash) => Some(hash.as_str()),
        FirstPassword::Link => None,
    };
    let created = users::create(
        conn,
        NewUser {
            email: &new.email,
            display_name: &new.display_name,
            password_hash,
            role: new.role,
        },
    );
    let user = match created {
        Ok(user) => user,
        Err(CreateUserError::EmailTaken) => return refuse(MemberError::EmailTaken),
        Err(CreateUserError::Query(e)) => return Err(e.into()),
    };
    let how = match (&new.password, by) {
        (FirstPassword::Link, _) => "link",
        (FirstPassword::Hash(_), Some(_)) => "set by admin",
        (FirstPassword::Hash(_), None) => "set on the command line",
    };
    let event = match by {
        Some(actor) => Event::by(Action::MemberCreated, actor),
        None => Event::new(Action::MemberCreated, None),
    };
    event
        .target("user", Some(user.id), &user.email)
        .details(format!("role={}; password={how}", new.role))
        .record(conn)?;
    let link_secret = match (&new.password, by) {
        (FirstPassword::Link, Some(actor)) => Some(password_links::create(conn, &user, actor)?),
        _ => None,
    };
    Ok(CreatedMember { user, link_secret })
}

/// Creates a member on behalf of an admin.
pub async fn add(db: &Db, actor: Actor, new: NewMember) -> Result<CreatedMember, MemberError> {
    db.transact(move |conn| {
        lock_as_admin(conn, &actor)?;
        create(conn, &new, Some(&actor))
    })
    .await
}

/// The acting admin, still one (see [`users::still_admin`]); holds the members lock after.
fn lock_as_admin(conn: &mut AnyConnection, actor: &Actor) -> Result<(), Abort<MemberError>> {
    if !users::still_admin(conn, actor.user_id)? {
        return refuse(MemberError::NoLongerAdmin);
    }
    Ok(())
}

/// What a role or status change did.
pub enum Changed {
    /// The member after the change.
    Done(User),
    /// The member already was as asked; nothing was written.
    AlreadySo(User),
}

/// Locks what a change to `target_id` is checked against and reads the member afresh.
fn locked_member(
    conn: &mut AnyConnection,
    actor: &Actor,
    target_id: i64,
) -> Result<User, Abort<MemberError>> {
    lock_as_admin(conn, actor)?;
    // Tokens are made under this lock, against the owner's role and status read there.
    lock(conn, Lock::TokensOf(target_id))?;
    match users::find(conn, target_id)? {
        Some(user) => Ok(user),
        None => refuse(MemberError::NotFound),
    }
}

/// The member as the change left them.
pub(super) fn reread(conn: &mut AnyConnection, id: i64) -> diesel::QueryResult<User> {
    users::find(conn, id)?.ok_or(diesel::result::Error::NotFound)
}

/// Would this change leave the organisation without an active admin?
pub(super) fn guard_last_admin(
    conn: &mut AnyConnection,
    target: &User,
) -> Result<(), Abort<MemberError>> {
    if target.is_admin() && target.is_active && users::count_active_admins(conn)? <= 1 {
        return refuse(MemberError::LastAdmin(target.display_name.clone()));
    }
    Ok(())
}

pub async fn change_role(
    db: &Db,
    actor: Actor,
    target_id: i64,
    role: Role,
) -> Result<Changed, MemberError> {
    db.transact(move |conn| {
        let target = locked_member(conn, &actor, target_id)?;
        if target.role() == role {
            return Ok(Changed::AlreadySo(target));
        }
        if role == Role::User {
            guard_last_admin(conn, &target)?;
        }
        users::set_role(conn, target.id, role)?;
        Event::by(Action::RoleChanged, &actor)
            .target("user", Some(target.id), &target.email)
            .details(format!("{} -> {role}", target.role()))
            .record(conn)?;
        Ok(Changed::Done(reread(conn, target.id)?))
    })
    .await
}

/// Deactivates (signs out everywhere, refuses every token) or reactivates a member.
pub async fn set_active(
    db: &Db,
    actor: Actor,
    target_id: i64,
    active: bool,
) -> Result<Changed, MemberError> {
    db.transact(move |conn| {
        let target = locked_member(conn, &actor, target_id)?;
        if target.is_active == active {
            return Ok(Changed::AlreadySo(target));
        }
        if !active {
            if target.id == actor.user_id {
                return refuse(MemberError::Yourself);
            }
            guard_last_admin(conn, &target)?;
        }
        let action = write_active(conn, target.id, active)?;
        Event::by(action, &actor)
            .target("user", Some(target.id), &target.email)
            .record(conn)?;
        Ok(Changed::Done(reread(conn, target.id)?))
    })
    .await
}

/// Writes a (de)activation, whoever asks: a deactivated member is signed out everywhere (and
/// every token of theirs is refused, as the token check reads whether its owner is active).
/// Returns the action to audit.
pub(super) fn write_active(
    conn: &mut AnyConnection,
    target_id: i64,
    active: bool,
) -> diesel::QueryResult<Action> {
    users::set_active(conn, target_id, active)?;
    if active {
        return Ok(Action::MemberReactivated);
    }
    crate::sessions::end_all_for(conn, target_id)?;
    // A link that leaked must not come back with a reactivation.
    users::withdraw_password_links(conn, target_id)?;
    Ok(Action::MemberDeactivated)
}

/// A new one-time set-password link for a member who forgot their password (or lost their
/// first link), in place of any unused one. Their password keeps working until the link is
/// used; using it ends all their sessions. Returns the member and the secret for its URL.
pub async fn issue_password_link(
    db: &Db,
    actor: Actor,
    target_id: i64,
) -> Result<(User, String), MemberError> {
    db.transact(move |conn| {
        let target = locked_member(conn, &actor, target_id)?;
        if !target.is_active {
            return refuse(MemberError::Deactivated(target.display_name));
        }
        let secret = password_links::create(conn, &target, &actor)?;
        Ok((target, secret))
    })
    .await
}

const EMAILS_CANONICAL: &str = "upgrade.emails_canonical";

/// Rewrites addresses stored before [`Email`] had one spelling per mailbox (a Unicode domain, a
/// fullwidth letter) to that spelling, once, so their owners can still sign in. Two accounts
/// that turn out to be one mailbox are both left as they are, and logged for an admin to settle.
pub fn canonicalise_stored_emails(conn: &mut AnyConnection) -> diesel::QueryResult<usize> {
    use crate::db::schema::{settings, users};
    use diesel::prelude::*;
    crate::db::write_transaction(conn, |conn| {
        // Instances starting together: one rewrites, the others find it done.
        lock(conn, Lock::Members)?;
        let done: Option<String> = settings::table
            .find(EMAILS_CANONICAL)
            .select(settings::value)
            .first(conn)
            .optional()?;
        if done.is_some() {
            return Ok(0);
        }
        let stored: Vec<(i64, String)> =
            users::table.select((users::id, users::email)).load(conn)?;
        let mut rewritten = 0;
        for (id, email) in &stored {
            let Ok(canonical) = Email::parse(email) else {
                continue;
            };
            if canonical.as_str() == email {
                continue;
            }
            if stored.iter().any(|(_, other)| other == canonical.as_str()) {
                tracing::warn!(
                    user_id = id,
                    "two accounts share one mailbox; left as they are"
                );
                continue;
            }
            diesel::update(users::table.find(id))
                .set(users::email.eq(canonical.as_str()))
                .execute(conn)?;
            rewritten += 1;
        }
        diesel::insert_into(settings::table)
            .values((settings::key.eq(EMAILS_CANONICAL), settings::value.eq("1")))
            .execute(conn)?;
        Ok(rewritten)
    })
}
