//! The admin's members list: who matches a search and filters, a page at a time, with each
//! member's active tokens and last token use.

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::db::schema::users;
use crate::db::AnyConnection;
use crate::domain::Role;
use crate::users::User;

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
    use crate::db::schema::{personal_access_tokens as pat, token_last_uses};
    let people: Vec<User> = filtered_members(filter)
        .order((users::display_name.asc(), users::id.asc()))
        .offset(offset)
        .limit(limit)
        .select(User::as_select())
        .load(conn)?;
    let ids: Vec<i64> = people.iter().map(|u| u.id).collect();
    let now = Utc::now().naive_utc();
    let active_counts: Vec<(Option<i64>, i64)> = pat::table
        .filter(pat::user_id.eq_any(&ids))
        .filter(pat::revoked_at.is_null())
        .filter(pat::expires_at.is_null().or(pat::expires_at.gt(now)))
        .group_by(pat::user_id)
        .select((pat::user_id, diesel::dsl::count_star()))
        .load(conn)?;
    let last_uses: Vec<(Option<i64>, Option<NaiveDateTime>)> = pat::table
        .inner_join(token_last_uses::table)
        .filter(pat::user_id.eq_any(&ids))
        .group_by(pat::user_id)
        .select((
            pat::user_id,
            diesel::dsl::max(token_last_uses::last_used_at),
        ))
        .load(conn)?;
    let members = people
        .into_iter()
        .map(|user| Member {
            active_tokens: active_counts
                .iter()
                .find(|(id, _)| *id == Some(user.id))
                .map_or(0, |(_, n)| *n),
            last_token_use: last_uses
                .iter()
                .find(|(id, _)| *id == Some(user.id))
                .and_then(|(_, at)| *at),
            user,
        })
        .collect();
    Ok(members)
}
