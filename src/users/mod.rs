//! People who sign in: the user model and the queries that load and change it. The members
//! list and set-password links have modules of their own.

mod listing;
mod password_links;
mod provisioned;

pub use listing::{count_members, list_members, Member, MemberFilter};
pub use password_links::{
    consume_password_link, find_password_link, insert_password_link, withdraw_password_links,
    PASSWORD_LINK_HOURS,
};
pub use provisioned::{external_id_taken, list_provisioned, update_provisioned, ProvisionedFields};

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::db::schema::{settings, users};
use crate::db::AnyConnection;
use crate::domain::{Email, Role};

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub display_name: String,
    password_hash: Option<String>,
    role: String,
    pub is_active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub last_sign_in_at: Option<NaiveDateTime>,
    pub deactivated_at: Option<NaiveDateTime>,
    /// What a provisioning client (SCIM) calls the member, when one made or updated them.
    pub external_id: Option<String>,
    /// The identity provider (its issuer) and its `sub` for the member, once they signed in
    /// through it.
    pub provider_issuer: Option<String>,
    pub provider_subject: Option<String>,
    /// When the identity provider last vouched for the member (a sign-in through it).
    pub provider_confirmed_at: Option<NaiveDateTime>,
}

impl User {
    pub fn role(&self) -> Role {
        // The column has a CHECK constraint; anything else would be a corrupted row, and the
        // least privilege is the safe reading of it.
        self.role.parse().unwrap_or(Role::User)
    }

    pub fn is_admin(&self) -> bool {
        self.role() == Role::Admin
    }

    pub fn password_hash(&self) -> Option<&str> {
        self.password_hash.as_deref()
    }

    /// Added with a set-password link that is not used yet: the account has never had a
    /// password (every other way of making one sets it), so nobody can sign in to it.
    pub fn password_never_set(&self) -> bool {
        self.password_hash.is_none()
    }

    /// Two letters for the avatar in the top bar.
    pub fn initials(&self) -> String {
        let mut initials: String = self
            .display_name
            .split_whitespace()
            .filter_map(|word| word.chars().next())
            .take(2)
            .collect();
        if initials.is_empty() {
            initials = self.email.chars().take(1).collect();
        }
        initials.to_uppercase()
    }
}

pub struct NewUser<'a> {
    pub email: &'a Email,
    pub display_name: &'a str,
    pub password_hash: Option<&'a str>,
    pub role: Role,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

pub fn create(conn: &mut AnyConnection, new: NewUser<'_>) -> Result<User, CreateUserError> {
    let now = Utc::now().naive_utc();
    let inserted = diesel::insert_into(users::table)
        .values((
            users::email.eq(new.email.as_str()),
            users::display_name.eq(new.display_name),
            users::password_hash.eq(new.password_hash),
            users::role.eq(new.role.as_str()),
            users::is_active.eq(true),
            users::created_at.eq(now),
            users::updated_at.eq(now),
        ))
        .execute(conn);
    match inserted {
        Err(e) if crate::db::is_unique_violation(&e) => return Err(CreateUserError::EmailTaken),
        other => other?,
    };
    Ok(find_by_email(conn, new.email)?.ok_or(diesel::result::Error::NotFound)?)
}

pub fn find(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<User>> {
    users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .optional()
}

pub fn find_by_email(conn: &mut AnyConnection, email: &Email) -> QueryResult<Option<User>> {
    users::table
        .filter(users::email.eq(email.as_str()))
        .select(User::as_select())
        .first(conn)
        .optional()
}

/// The member linked to `subject` at the identity provider `issuer`.
pub fn find_by_provider_subject(
    conn: &mut AnyConnection,
    issuer: &str,
    subject: &str,
) -> QueryResult<Option<User>> {
    users::table
        .filter(users::provider_issuer.eq(issuer))
        .filter(users::provider_subject.eq(subject))
        .select(User::as_select())
        .first(conn)
        .optional()
}

/// Links a member to `subject` at the identity provider `issuer`: from now on that is who they
/// are there.
pub fn link_provider(
    conn: &mut AnyConnection,
    id: i64,
    issuer: &str,
    subject: &str,
) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set((
            users::provider_issuer.eq(issuer),
            users::provider_subject.eq(subject),
            users::updated_at.eq(Utc::now().naive_utc()),
        ))
        .execute(conn)
        .map(drop)
}

/// The identity provider vouched for the member just now: a sign-in through it.
pub fn confirm_by_provider(conn: &mut AnyConnection, id: i64) -> QueryResult<()> {
    let now = Utc::now().naive_utc();
    diesel::update(users::table.find(id))
        .set((
            users::provider_confirmed_at.eq(now),
            users::last_sign_in_at.eq(now),
        ))
        .execute(conn)
        .map(drop)
}

pub fn any_exist(conn: &mut AnyConnection) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(users::table.select(users::id))).get_result(conn)
}

pub fn record_sign_in(conn: &mut AnyConnection, id: i64) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set(users::last_sign_in_at.eq(Utc::now().naive_utc()))
        .execute(conn)
        .map(drop)
}

const SETUP_COMPLETED: &str = "setup.completed";

/// Claims first-run setup. The settings key is unique, so of two setups racing on a fresh
/// database exactly one wins, on either backend; the loser gets `Ok(false)`.
pub fn claim_setup(conn: &mut AnyConnection) -> QueryResult<bool> {
    if any_exist(conn)? {
        return Ok(false);
    }
    let claimed = diesel::insert_into(settings::table)
        .values((
            settings::key.eq(SETUP_COMPLETED),
            settings::value.eq(Utc::now().naive_utc().to_string()),
        ))
        .execute(conn);
    match claimed {
        Ok(_) => Ok(true),
        Err(e) if crate::db::is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether `id` is still an active admin, read under [`Lock::Members`], which role changes and
/// (de)activations take too. Every admin action asks this inside the transaction that writes:
/// its request was let in when it began, and a demotion committed since must still stop it.
pub fn still_admin(conn: &mut AnyConnection, id: i64) -> QueryResult<bool> {
    crate::db::lock(conn, crate::db::Lock::Members)?;
    Ok(find(conn, id)?.is_some_and(|user| user.is_active && user.is_admin()))
}

pub fn count_active_admins(conn: &mut AnyConnection) -> QueryResult<i64> {
    users::table
        .filter(users::role.eq(Role::Admin.as_str()))
        .filter(users::is_active.eq(true))
        .count()
        .get_result(conn)
}

pub fn set_role(conn: &mut AnyConnection, id: i64, role: Role) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set((
            users::role.eq(role.as_str()),
            users::updated_at.eq(Utc::now().naive_utc()),
        ))
        .execute(conn)
        .map(drop)
}

/// Deactivation also ends every session of the member: the accounts service does both.
pub fn set_active(conn: &mut AnyConnection, id: i64, active: bool) -> QueryResult<()> {
    let now = Utc::now().naive_utc();
    diesel::update(users::table.find(id))
        .set((
            users::is_active.eq(active),
            users::deactivated_at.eq((!active).then_some(now)),
            users::updated_at.eq(now),
        ))
        .execute(conn)
        .map(drop)
}

/// A new password also ends every session signed in with the old one: the accounts service
/// does both.
pub fn set_password(conn: &mut AnyConnection, id: i64, password_hash: &str) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set((
            users::password_hash.eq(password_hash),
            users::updated_at.eq(Utc::now().naive_utc()),
        ))
        .execute(conn)
        .map(drop)
}

/// Replaces the password only if the stored hash is still `expected` (the one just checked):
/// of two changes made at once from the same old password, the second finds it changed and
/// writes nothing. Whether this call wrote it.
pub fn replace_password(
    conn: &mut AnyConnection,
    id: i64,
    expected: &str,
    password_hash: &str,
) -> QueryResult<bool> {
    let changed = diesel::update(
        users::table
            .find(id)
            .filter(users::password_hash.eq(expected)),
    )
    .set((
        users::password_hash.eq(password_hash),
        users::updated_at.eq(Utc::now().naive_utc()),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}

/// The name is [`crate::domain::clean_name`]d by the caller.
pub fn set_display_name(conn: &mut AnyConnection, id: i64, display_name: &str) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set((
            users::display_name.eq(display_name),
            users::updated_at.eq(Utc::now().naive_utc()),
        ))
        .execute(conn)
        .map(drop)
}
