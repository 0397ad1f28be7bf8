//! Applications: services (a CI pipeline, an integration) that hold tokens of their own, so the
//! tokens outlive the people who made them. The model and its queries; changing applications
//! with their audit events is `crate::accounts::applications`'s.

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::db::schema::{application_maintainers as maintainers, applications, users};
use crate::db::AnyConnection;
use crate::users::User;

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = applications)]
pub struct Application {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub created_at: NaiveDateTime,
    pub archived_at: Option<NaiveDateTime>,
}

impl Application {
    pub fn is_archived(&self) -> bool {
        self.archived_at.is_some()
    }
}

/// An application in a list, with what an admin or maintainer scans it for.
pub struct Listed {
    pub application: Application,
    pub active_tokens: i64,
    /// The most recent use of any of its tokens.
    pub last_used_at: Option<NaiveDateTime>,
}

/// How names are compared for uniqueness: "Billing", "billing" and the fullwidth "Ｂｉｌｌｉｎｇ"
/// are one name to a person, so one name here (compatibility-normalised, NFKC, then in lower
/// case, as email addresses are compared).
pub fn name_key(name: &str) -> String {
    icu_normalizer::ComposingNormalizerBorrowed::new_nfkc()
        .normalize(name)
        .to_lowercase()
}

pub fn find(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<Application>> {
    applications::table
        .find(id)
        .select(Application::as_select())
        .first(conn)
        .optional()
}

/// Whether an application that is not archived already has this name (`except`: itself).
pub fn name_taken(conn: &mut AnyConnection, name: &str, except: Option<i64>) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        applications::table
            .filter(applications::name_key.eq(name_key(name)))
            .filter(applications::archived_at.is_null())
            .filter(applications::id.ne(except.unwrap_or(0))),
    ))
    .get_result(conn)
}

/// Inserts an application; the unique index on live names refuses a duplicate made at the
/// same moment (`is_unique_violation`).
pub fn insert(
    conn: &mut AnyConnection,
    name: &str,
    description: &str,
    created_by: i64,
) -> QueryResult<Application> {
    let key = name_key(name);
    diesel::insert_into(applications::table)
        .values((
            applications::name.eq(name),
            applications::name_key.eq(&key),
            applications::description.eq(description),
            applications::created_at.eq(Utc::now().naive_utc()),
            applications::created_by.eq(created_by),
        ))
        .execute(conn)?;
    applications::table
        .filter(applications::name_key.eq(key))
        .filter(applications::archived_at.is_null())
        .select(Application::as_select())
        .first(conn)
}

pub fn rename(conn: &mut AnyConnection, id: i64, name: &str, description: &str) -> QueryResult<()> {
    diesel::update(applications::table.find(id))
        .set((
            applications::name.eq(name),
            applications::name_key.eq(name_key(name)),
            applications::description.eq(description),
        ))
        .execute(conn)
        .map(drop)
}

/// Marks it archived; whether this call did (an archived one stays as it is).
pub fn archive(conn: &mut AnyConnection, id: i64, by_user_id: i64) -> QueryResult<bool> {
    let changed = diesel::update(
        applications::table
            .find(id)
            .filter(applications::archived_at.is_null()),
    )
    .set((
        applications::archived_at.eq(Utc::now().naive_utc()),
        applications::archived_by.eq(by_user_id),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}

/// Which applications a list shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every live application (admins).
    All,
    /// The live applications this member maintains.
    MaintainedBy(i64),
    /// Archived ones (admins).
    Archived,
}

/// Applications by name, with their active tokens and last use.
pub fn list(conn: &mut AnyConnection, scope: Scope) -> QueryResult<Vec<Listed>> {
    use crate::db::schema::{personal_access_tokens as pat, token_last_uses};
    let query = applications::table
        .order((applications::name_key.asc(), applications::id.asc()))
        .select(Application::as_select())
        .into_boxed::<crate::db::MultiBackend>();
    let found: Vec<Application> = match scope {
        Scope::All => query
            .filter(applications::archived_at.is_null())
            .load(conn)?,
        Scope::Archived => query
            .filter(applications::archived_at.is_not_null())
            .load(conn)?,
        Scope::MaintainedBy(user_id) => query
            .filter(applications::archived_at.is_null())
            .filter(
                applications::id.eq_any(
                    maintainers::table
                        .filter(maintainers::user_id.eq(user_id))
                        .select(maintainers::application_id),
                ),
            )
            .load(conn)?,
    };
    let ids: Vec<i64> = found.iter().map(|a| a.id).collect();
    let now = Utc::now().naive_utc();
    let active: Vec<(Option<i64>, i64)> = pat::table
        .filter(pat::application_id.eq_any(&ids))
        .filter(pat::revoked_at.is_null())
        .filter(pat::expires_at.is_null().or(pat::expires_at.gt(now)))
        .group_by(pat::application_id)
        .select((pat::application_id, diesel::dsl::count_star()))
        .load(conn)?;
    let used: Vec<(Option<i64>, Option<NaiveDateTime>)> = pat::table
        .inner_join(token_last_uses::table)
        .filter(pat::application_id.eq_any(&ids))
        .group_by(pat::application_id)
        .select((
            pat::application_id,
            diesel::dsl::max(token_last_uses::last_used_at),
        ))
        .load(conn)?;
    Ok(found
        .into_iter()
        .map(|application| {
            let id = Some(application.id);
            Listed {
                active_tokens: active.iter().find(|(a, _)| *a == id).map_or(0, |r| r.1),
                last_used_at: used.iter().find(|(a, _)| *a == id).and_then(|r| r.1),
                application,
            }
        })
        .collect())
}

/// The members who maintain an application, by name.
pub fn maintainers(conn: &mut AnyConnection, application_id: i64) -> QueryResult<Vec<User>> {
    maintainers::table
        .inner_join(users::table)
        .filter(maintainers::application_id.eq(application_id))
        .order((users::display_name.asc(), users::id.asc()))
        .select(User::as_select())
        .load(conn)
}

pub fn is_maintainer(
    conn: &mut AnyConnection,
    application_id: i64,
    user_id: i64,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        maintainers::table
            .filter(maintainers::application_id.eq(application_id))
            .filter(maintainers::user_id.eq(user_id)),
    ))
    .get_result(conn)
}

/// Whether this call added them (they may be one already).
pub fn add_maintainer(
    conn: &mut AnyConnection,
    application_id: i64,
    user_id: i64,
    by_user_id: i64,
) -> QueryResult<bool> {
    if is_maintainer(conn, application_id, user_id)? {
        return Ok(false);
    }
    diesel::insert_into(maintainers::table)
        .values((
            maintainers::application_id.eq(application_id),
            maintainers::user_id.eq(user_id),
            maintainers::added_at.eq(Utc::now().naive_utc()),
            maintainers::added_by.eq(by_user_id),
        ))
        .execute(conn)?;
    Ok(true)
}

/// Whether this call removed them.
pub fn remove_maintainer(
    conn: &mut AnyConnection,
    application_id: i64,
    user_id: i64,
) -> QueryResult<bool> {
    let removed = diesel::delete(
        maintainers::table
            .filter(maintainers::application_id.eq(application_id))
            .filter(maintainers::user_id.eq(user_id)),
    )
    .execute(conn)?;
    Ok(removed == 1)
}

/// The application `id`, if `user` may manage its tokens now; otherwise nothing, so a caller
/// answers alike for one that does not exist and one that is not theirs.
pub fn find_managed(
    conn: &mut AnyConnection,
    id: i64,
    user: &User,
) -> QueryResult<Option<Application>> {
    let Some(application) = find(conn, id)? else {
        return Ok(None);
    };
    Ok(may_manage(conn, &application, user)?.then_some(application))
}

/// Whether `user` may manage this application's tokens now: an active admin, or an active
/// member who maintains it; and only while it is not archived.
pub fn may_manage(
    conn: &mut AnyConnection,
    application: &Application,
    user: &User,
) -> QueryResult<bool> {
    if application.is_archived() || !user.is_active {
        return Ok(false);
    }
    Ok(user.is_admin() || is_maintainer(conn, application.id, user.id)?)
}
