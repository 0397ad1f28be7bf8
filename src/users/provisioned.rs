//! The queries a provisioning client (SCIM) needs: members found by its filters, page by page,
//! and its changes to what it keeps of a member.

use chrono::Utc;
use diesel::prelude::*;

use crate::db::schema::users;
use crate::db::AnyConnection;
use crate::domain::scim::UserFilter;
use crate::domain::Email;
use crate::users::{CreateUserError, User};

/// One page of the members `filter` asks for, oldest first, and how many there are in all.
pub fn list_provisioned(
    conn: &mut AnyConnection,
    filter: &UserFilter,
    offset: i64,
    limit: i64,
) -> QueryResult<(i64, Vec<User>)> {
    macro_rules! filtered {
        () => {{
            let query = users::table.into_boxed::<crate::db::MultiBackend>();
            match filter {
                UserFilter::All => query,
                UserFilter::UserName(email) => query.filter(users::email.eq(email.as_str())),
                UserFilter::ExternalId(id) => query.filter(users::external_id.eq(id.as_str())),
                UserFilter::Nobody => query.filter(users::id.ne(users::id)),
            }
        }};
    }
    let total = filtered!().count().get_result(conn)?;
    let page = filtered!()
        .order(users::id)
        .offset(offset)
        .limit(limit)
        .select(User::as_select())
        .load(conn)?;
    Ok((total, page))
}

/// What a provisioning client changes of a member; `None` leaves it as it is.
#[derive(AsChangeset)]
#[diesel(table_name = users)]
pub struct ProvisionedFields<'a> {
    pub email: Option<&'a str>,
    /// Clean ([`crate::domain::clean_name`]) already.
    pub display_name: Option<&'a str>,
    /// `Some(None)`: cleared.
    pub external_id: Option<Option<&'a str>>,
    pub updated_at: chrono::NaiveDateTime,
}

impl<'a> ProvisionedFields<'a> {
    pub fn new(
        email: Option<&'a Email>,
        display_name: Option<&'a str>,
        external_id: Option<Option<&'a str>>,
    ) -> Self {
        Self {
            email: email.map(Email::as_str),
            display_name,
            external_id,
            updated_at: Utc::now().naive_utc(),
        }
    }
}

/// Writes a provisioning client's changes; another member's address is refused.
pub fn update_provisioned(
    conn: &mut AnyConnection,
    id: i64,
    fields: &ProvisionedFields<'_>,
) -> Result<(), CreateUserError> {
    match diesel::update(users::table.find(id))
        .set(fields)
        .execute(conn)
    {
        Err(e) if crate::db::is_unique_violation(&e) => Err(CreateUserError::EmailTaken),
        other => other.map(drop).map_err(Into::into),
    }
}

/// Whether a member other than `except` has `external_id`.
pub fn external_id_taken(
    conn: &mut AnyConnection,
    external_id: &str,
    except: Option<i64>,
) -> QueryResult<bool> {
    let others = users::table
        .filter(users::external_id.eq(external_id))
        .filter(users::id.ne(except.unwrap_or(0)));
    diesel::select(diesel::dsl::exists(others)).get_result(conn)
}
