//! People who sign in: the user model and the queries that load and change it.

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

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

/// What the members list can be narrowed to.
#[derive(Clone, Debug, Default)]
pub struct MemberFilter {
    /// Part of a name or email, any case.
    pub search: String,
    pub role: Option<Role>,
    /// Some(true): active only; Some(false): deactivated only.
    pub active: Option<bool>,
}

pub struct Member {
    pub user: User,
    pub active_tokens: i64,
    pub last_token_use: Option<NaiveDateTime>,
}

/// The members matching `filter`, as a query to count or page.
fn filtered_members(filter: &MemberFilter) -> users::BoxedQuery<'static, crate::db::MultiBackend> {
    let mut query = users::table.into_boxed::<crate::db::MultiBackend>();
    let search = filter.search.trim().to_lowercase();
    if !search.is_empty() {
        let pattern = format!("%{}%", crate::db::escape_like(&search));
        query = query.filter(
            lower(users::display_name)
                .like(pattern.clone())
                .escape('\\')
                .or(users::email.like(pattern).escape('\\')),
        );
    }
    if let Some(role) = filter.role {
        query = query.filter(users::role.eq(role.as_str()));
    }
    if let Some(active) = filter.active {
        query = query.filter(users::is_active.eq(active));
    }
    query
}

pub fn count_members(conn: &mut AnyConnection, filter: &MemberFilter) -> QueryResult<i64> {
    filtered_members(filter).count().get_result(conn)
}

/// One page of members, with their active-token counts and last token use.
pub fn list_members(
    conn: &mut AnyConnection,
    filter: &MemberFilter,
    offset: i64,
    limit: i64,
) -> QueryResult<Vec<Member>> {
    use crate::db::schema::personal_access_tokens as pat;
    let people: Vec<User> = filtered_members(filter)
        .order((users::display_name.asc(), users::id.asc()))
        .offset(offset)
        .limit(limit)
        .select(User::as_select())
        .load(conn)?;
    let ids: Vec<i64> = people.iter().map(|u| u.id).collect();
    let now = Utc::now().naive_utc();
    let active_counts: Vec<(i64, i64)> = pat::table
        .filter(pat::user_id.eq_any(&ids))
        .filter(pat::revoked_at.is_null())
        .filter(pat::expires_at.is_null().or(pat::expires_at.gt(now)))
        .group_by(pat::user_id)
        .select((pat::user_id, diesel::dsl::count_star()))
        .load(conn)?;
    let last_uses: Vec<(i64, Option<NaiveDateTime>)> = pat::table
        .filter(pat::user_id.eq_any(&ids))
        .group_by(pat::user_id)
        .select((pat::user_id, diesel::dsl::max(pat::last_used_at)))
        .load(conn)?;
    let members = people
        .into_iter()
        .map(|user| Member {
            active_tokens: active_counts
                .iter()
                .find(|(id, _)| *id == user.id)
                .map_or(0, |(_, n)| *n),
            last_token_use: last_uses
                .iter()
                .find(|(id, _)| *id == user.id)
                .and_then(|(_, at)| *at),
            user,
        })
        .collect();
    Ok(members)
}

/// Whether `id` is an active admin now (an admin action re-reads its actor inside its write).
pub fn is_active_admin(conn: &mut AnyConnection, id: i64) -> QueryResult<bool> {
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
