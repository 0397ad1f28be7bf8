//! Access tokens in the database, a person's or an application's. Queries live here, beside the
//! model they load.

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::db::schema::{personal_access_tokens as pat, token_last_uses, token_previous_secrets};
use crate::db::AnyConnection;
use crate::domain::{AddressAllowlist, Expiry, Overlap, ScopeSet, TokenRequest};
use crate::tokens::{TokenKind, TokenSecret};

/// Whose a token is: one of these is set on every row (the database checks it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenOwner {
    Person(i64),
    Application(i64),
}

impl TokenOwner {
    pub fn kind(self) -> TokenKind {
        match self {
            TokenOwner::Person(_) => TokenKind::Personal,
            TokenOwner::Application(_) => TokenKind::Application,
        }
    }
}

/// Runs `$body` with `$owned` bound to the owner's tokens. Two fixed statements, one per kind
/// of owner, rather than one boxed query: diesel keeps fixed statements prepared.
macro_rules! of_owner {
    ($owner:expr, |$owned:ident| $body:expr) => {
        match $owner {
            TokenOwner::Person(id) => {
                let $owned = with_last_use().filter(pat::user_id.eq(id));
                $body
            }
            TokenOwner::Application(id) => {
                let $owned = with_last_use().filter(pat::application_id.eq(id));
                $body
            }
        }
    };
}

/// Tokens beside their last use (kept in a table of their own): how a [`PersonalAccessToken`]
/// is read.
pub fn with_last_use() -> diesel::dsl::InnerJoin<pat::table, token_last_uses::table> {
    pat::table.inner_join(token_last_uses::table)
}

/// A stored token, personal or an application's. It has no secret to leak: the digest is not
/// even loaded. Read from [`with_last_use`].
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = pat)]
pub struct PersonalAccessToken {
    pub id: i64,
    /// The person a personal token belongs to.
    pub user_id: Option<i64>,
    pub name: String,
    pub hint: String,
    scopes: String,
    pub created_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
    #[diesel(select_expression = token_last_uses::last_used_at)]
    pub last_used_at: Option<NaiveDateTime>,
    #[diesel(select_expression = token_last_uses::last_used_ip)]
    pub last_used_ip: Option<String>,
    pub revoked_at: Option<NaiveDateTime>,
    pub revoked_by: Option<i64>,
    /// When the token last got a new secret (`created_at` stays when it was made).
    pub regenerated_at: Option<NaiveDateTime>,
    /// The application an application token belongs to.
    pub application_id: Option<i64>,
    /// Who made it (for an application token, the admin or maintainer).
    pub created_by: Option<i64>,
    /// Why it was revoked, when no person did it: [`LEAK_REPORT`] or [`UNUSED`].
    pub revoked_reason: Option<String>,
    allowed_addresses: Option<String>,
}

/// Which of a token's secrets a request presented: its current one, or the one a regenerate
/// replaced, during the overlap the owner chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SecretUsed {
    Current,
    Previous,
}

/// The secret a regenerate replaced, still working until `valid_until`. Its uses are its own.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = token_previous_secrets)]
pub struct PreviousSecret {
    pub token_id: i64,
    pub hint: String,
    pub replaced_at: NaiveDateTime,
    pub valid_until: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    pub last_used_ip: Option<String>,
}

/// The revoked reason of a token someone reported as leaked.
pub const LEAK_REPORT: &str = "leak_report";
/// The revoked reason of a token revoked because it went unused as long as the policy allows.
pub const UNUSED: &str = "unused";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenStatus {
    Active,
    Expired,
    Revoked,
}

impl TokenStatus {
    /// As the API and CSV exports name it.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenStatus::Active => "active",
            TokenStatus::Expired => "expired",
            TokenStatus::Revoked => "revoked",
        }
    }

    /// As pages show it.
    pub fn label(self) -> &'static str {
        match self {
            TokenStatus::Active => "Active",
            TokenStatus::Expired => "Expired",
            TokenStatus::Revoked => "Revoked",
        }
    }
}

impl PersonalAccessToken {
    pub fn owner(&self) -> TokenOwner {
        match (self.user_id, self.application_id) {
            (Some(user_id), _) => TokenOwner::Person(user_id),
            (None, Some(application_id)) => TokenOwner::Application(application_id),
            (None, None) => unreachable!("the database requires an owner"),
        }
    }

    pub fn kind(&self) -> TokenKind {
        self.owner().kind()
    }

    pub fn reported_leaked(&self) -> bool {
        self.revoked_reason.as_deref() == Some(LEAK_REPORT)
    }

    pub fn revoked_unused(&self) -> bool {
        self.revoked_reason.as_deref() == Some(UNUSED)
    }

    /// Since when it has gone unused: its last use, or when it was made or given its secret if
    /// that is later (a token never used counts from then; a new secret is a fresh start).
    pub fn idle_since(&self) -> NaiveDateTime {
        [self.last_used_at, self.regenerated_at]
            .into_iter()
            .flatten()
            .fold(self.created_at, NaiveDateTime::max)
    }

    pub fn scopes(&self) -> ScopeSet {
        ScopeSet::from_stored(&self.scopes)
    }

    /// The addresses it may be used from; None: anywhere.
    pub fn allowlist(&self) -> Option<AddressAllowlist> {
        self.allowed_addresses
            .as_deref()
            .map(AddressAllowlist::from_stored)
    }

    pub fn status(&self, now: NaiveDateTime) -> TokenStatus {
        if self.revoked_at.is_some() {
            TokenStatus::Revoked
        } else if self.expires_at.is_some_and(|at| at <= now) {
            TokenStatus::Expired
        } else {
            TokenStatus::Active
        }
    }
}

#[cfg(test)]
impl PersonalAccessToken {
    /// A personal token of user 1 named `ci`, made at `created_at`, never used: for unit tests.
    pub(crate) fn example(created_at: NaiveDateTime) -> Self {
        PersonalAccessToken {
            id: 1,
            user_id: Some(1),
            name: "ci".into(),
            hint: "tdk_AbC1…9xYz".into(),
            scopes: "tag:read".into(),
            created_at,
            expires_at: None,
            last_used_at: None,
            last_used_ip: None,
            revoked_at: None,
            revoked_by: None,
            regenerated_at: None,
            application_id: None,
            created_by: Some(1),
            revoked_reason: None,
            allowed_addresses: None,
        }
    }
}

/// The one value that carries a new token's plaintext, from creation to the reveal.
pub struct CreatedToken {
    pub token: PersonalAccessToken,
    pub secret: TokenSecret,
    /// On a regenerate with an overlap: the replaced secret, still working for a while.
    pub previous: Option<PreviousSecret>,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenStoreError {
    #[error("the owner already has an active token with this name")]
    NameTaken,
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

/// Which of an owner's tokens a list shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    /// Not revoked (expired ones included, marked as such): what the API lists.
    Current,
    /// Neither revoked nor expired.
    Active,
    /// Expired, not revoked: they can be regenerated.
    Expired,
    Revoked,
}

fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

/// Active = neither revoked nor expired; names are unique among those. `except`: the token
/// being regenerated, which keeps its own name.
fn active_name_taken(
    conn: &mut AnyConnection,
    owner: TokenOwner,
    name: &str,
    except: Option<i64>,
) -> QueryResult<bool> {
    let now = now();
    of_owner!(owner, |owned| diesel::select(diesel::dsl::exists(
        owned
            .filter(pat::name.eq(name))
            .filter(pat::id.ne(except.unwrap_or(0)))
            .filter(pat::revoked_at.is_null())
            .filter(pat::expires_at.is_null().or(pat::expires_at.gt(now))),
    ))
    .get_result(conn))
}

/// How many active tokens `owner` holds.
pub fn count_active(conn: &mut AnyConnection, owner: TokenOwner) -> QueryResult<i64> {
    let now = now();
    of_owner!(owner, |owned| owned
        .filter(pat::revoked_at.is_null())
        .filter(pat::expires_at.is_null().or(pat::expires_at.gt(now)))
        .count()
        .get_result(conn))
}

/// Creates a token for `owner`, made by `creator_id`. Run inside a write transaction.
pub fn create(
    conn: &mut AnyConnection,
    owner: TokenOwner,
    creator_id: i64,
    request: &TokenRequest,
) -> Result<CreatedToken, TokenStoreError> {
    if active_name_taken(conn, owner, &request.name, None)? {
        return Err(TokenStoreError::NameTaken);
    }
    let secret = TokenSecret::generate_kind(owner.kind());
    let digest = secret.digest();
    let (user_id, application_id) = match owner {
        TokenOwner::Person(id) => (Some(id), None),
        TokenOwner::Application(id) => (None, Some(id)),
    };
    diesel::insert_into(pat::table)
        .values((
            pat::user_id.eq(user_id),
            pat::application_id.eq(application_id),
            pat::created_by.eq(creator_id),
            pat::name.eq(&request.name),
            pat::digest.eq(&digest.0),
            pat::hint.eq(secret.hint()),
            pat::scopes.eq(request.scopes.to_stored()),
            pat::created_at.eq(now()),
            pat::expires_at.eq(request.expiry.at()),
            pat::allowed_addresses.eq(request.allowed_addresses.as_ref().map(|a| a.to_stored())),
        ))
        .execute(conn)?;
    let token: PersonalAccessToken = with_last_use()
        .filter(pat::digest.eq(&digest.0))
        .select(PersonalAccessToken::as_select())
        .first(conn)?;
    index_scopes(conn, token.id, request.scopes)?;
    Ok(CreatedToken {
        token,
        secret,
        previous: None,
    })
}

/// Writes a new token's scopes one to a row (`token_scopes`), for the inventory's scope filter.
fn index_scopes(conn: &mut AnyConnection, token_id: i64, scopes: ScopeSet) -> QueryResult<()> {
    use crate::db::schema::token_scopes;
    let rows: Vec<_> = scopes
        .iter()
        .map(|scope| {
            (
                token_scopes::scope.eq(scope.name()),
                token_scopes::token_id.eq(token_id),
            )
        })
        .collect();
    for row in rows {
        diesel::insert_into(token_scopes::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// Takes `removed` from a live token's scopes (never adds one); false when it was revoked
/// meanwhile.
pub fn remove_scopes(
    conn: &mut AnyConnection,
    token: &PersonalAccessToken,
    removed: ScopeSet,
) -> QueryResult<bool> {
    use crate::db::schema::token_scopes;
    let kept: ScopeSet = token
        .scopes()
        .iter()
        .filter(|s| !removed.contains(*s))
        .collect();
    let changed = diesel::update(
        pat::table
            .filter(pat::id.eq(token.id))
            .filter(pat::revoked_at.is_null()),
    )
    .set(pat::scopes.eq(kept.to_stored()))
    .execute(conn)?;
    if changed == 0 {
        return Ok(false);
    }
    let names: Vec<&str> = removed.iter().map(|s| s.name()).collect();
    diesel::delete(
        token_scopes::table
            .filter(token_scopes::token_id.eq(token.id))
            .filter(token_scopes::scope.eq_any(names)),
    )
    .execute(conn)?;
    Ok(true)
}

/// One of `owner`'s own tokens; anyone else's id is simply not found.
pub fn find_owned(
    conn: &mut AnyConnection,
    owner: TokenOwner,
    token_id: i64,
) -> QueryResult<Option<PersonalAccessToken>> {
    of_owner!(owner, |owned| owned
        .filter(pat::id.eq(token_id))
        .select(PersonalAccessToken::as_select())
        .first(conn)
        .optional())
}

/// Whether one of `user_id`'s tokens is active, read so that a revoke of it cannot commit
/// until this transaction ends (see [`active_scopes_locked`]).
pub fn is_active_locked(
    conn: &mut AnyConnection,
    user_id: i64,
    token_id: i64,
) -> QueryResult<bool> {
    Ok(active_scopes_locked(conn, TokenOwner::Person(user_id), token_id)?.is_some())
}

/// The scopes of one of `owner`'s tokens if it is active, read so that a revoke or a narrowing
/// of it cannot commit until this transaction ends (PostgreSQL: a share lock on its row;
/// SQLite: the write transaction holds the database).
pub fn active_scopes_locked(
    conn: &mut AnyConnection,
    owner: TokenOwner,
    token_id: i64,
) -> QueryResult<Option<ScopeSet>> {
    #[derive(QueryableByName)]
    struct Lifetime {
        #[diesel(sql_type = diesel::sql_types::Text)]
        scopes: String,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamp>)]
        revoked_at: Option<NaiveDateTime>,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamp>)]
        expires_at: Option<NaiveDateTime>,
    }
    let found: Option<Lifetime> = match conn {
        AnyConnection::Postgresql(pg) => {
            let (sql, owner_id) = match owner {
                TokenOwner::Person(id) => (
                    "SELECT scopes, revoked_at, expires_at FROM personal_access_tokens \
                     WHERE id = $1 AND user_id = $2 FOR SHARE",
                    id,
                ),
                TokenOwner::Application(id) => (
                    "SELECT scopes, revoked_at, expires_at FROM personal_access_tokens \
                     WHERE id = $1 AND application_id = $2 FOR SHARE",
                    id,
                ),
            };
            diesel::sql_query(sql)
                .bind::<diesel::sql_types::BigInt, _>(token_id)
                .bind::<diesel::sql_types::BigInt, _>(owner_id)
                .get_result(pg)
                .optional()?
        }
        AnyConnection::Sqlite(_) => find_owned(conn, owner, token_id)?.map(|t| Lifetime {
            scopes: t.scopes,
            revoked_at: t.revoked_at,
            expires_at: t.expires_at,
        }),
    };
    let now = now();
    Ok(found
        .filter(|t| t.revoked_at.is_none() && t.expires_at.is_none_or(|at| at > now))
        .map(|t| ScopeSet::from_stored(&t.scopes)))
}

pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
}

pub fn list_owned(
    conn: &mut AnyConnection,
    owner: TokenOwner,
    tab: Tab,
    offset: i64,
    limit: i64,
) -> QueryResult<Page<PersonalAccessToken>> {
    let counts = count_owned(conn, owner)?;
    Ok(Page {
        items: owned_rows(conn, owner, tab, offset, limit)?,
        total: counts.of(tab),
    })
}

/// One page of an owner's tokens in a tab, newest first. Fixed queries rather than one boxed
/// one: diesel keeps fixed queries prepared, and parsing the SQL on every view was a visible
/// share of the page's cost.
pub fn owned_rows(
    conn: &mut AnyConnection,
    owner: TokenOwner,
    tab: Tab,
    offset: i64,
    limit: i64,
) -> QueryResult<Vec<PersonalAccessToken>> {
    let now = now();
    // One fixed statement per tab (not a boxed query): diesel prepares each once per connection.
    macro_rules! page_of {
        ($query:expr) => {
            $query
                .order((pat::created_at.desc(), pat::id.desc()))
                .offset(offset)
                .limit(limit)
                .select(PersonalAccessToken::as_select())
                .load(conn)
        };
    }
    of_owner!(owner, |owned| match tab {
        Tab::Current => page_of!(owned.filter(pat::revoked_at.is_null())),
        Tab::Active => page_of!(owned
            .filter(pat::revoked_at.is_null())
            .filter(pat::expires_at.is_null().or(pat::expires_at.gt(now)))),
        Tab::Expired => page_of!(owned
            .filter(pat::revoked_at.is_null())
            .filter(pat::expires_at.le(now))),
        Tab::Revoked => page_of!(owned.filter(pat::revoked_at.is_not_null())),
    })
}

/// How many of an owner's tokens each tab holds.
#[derive(Clone, Copy, Debug)]
pub struct TabCounts {
    pub active: i64,
    pub expired: i64,
    pub revoked: i64,
    /// Revoked in the last 30 days because someone reported them leaked.
    pub reported_leaked: i64,
}

impl TabCounts {
    pub fn of(self, tab: Tab) -> i64 {
        match tab {
            Tab::Current => self.active + self.expired,
            Tab::Active => self.active,
            Tab::Expired => self.expired,
            Tab::Revoked => self.revoked,
        }
    }
}

/// Counts for the tabs, in one query.
pub fn count_owned(conn: &mut AnyConnection, owner: TokenOwner) -> QueryResult<TabCounts> {
    use diesel::dsl::{case_when, count, count_star};
    let expired = pat::revoked_at.is_null().and(pat::expires_at.le(now()));
    let reported = pat::revoked_reason
        .eq(LEAK_REPORT)
        .and(pat::revoked_at.gt(now() - chrono::Duration::days(30)));
    let (all, revoked, expired, reported_leaked): (i64, i64, i64, i64) =
        of_owner!(owner, |owned| owned
            .select((
                count_star(),
                count(pat::revoked_at),
                count(case_when(expired, pat::id)),
                count(case_when(reported, pat::id)),
            ))
            .first(conn))?;
    Ok(TabCounts {
        active: all - revoked - expired,
        expired,
        revoked,
        reported_leaked,
    })
}

/// Active tokens with no use since `cutoff`, nor made or given a new secret since: the one
/// definition of "unused" for the sweep, its revoke, and the owner's warning. A macro: diesel
/// types the condition by the tables of the query around it (with or without the last uses).
macro_rules! unused_since {
    ($cutoff:expr, $now:expr) => {{
        let (cutoff, now): (NaiveDateTime, NaiveDateTime) = ($cutoff, $now);
        // Aliased: the query around may read the same table for the token's Last used.
        let later = diesel::alias!(token_last_uses as later_uses);
        pat::revoked_at
            .is_null()
            .and(pat::expires_at.is_null().or(pat::expires_at.gt(now)))
            .and(pat::created_at.le(cutoff))
            .and(
                pat::regenerated_at
                    .is_null()
                    .or(pat::regenerated_at.le(cutoff)),
            )
            .and(diesel::dsl::not(diesel::dsl::exists(
                later
                    .filter(later.field(token_last_uses::token_id).eq(pat::id))
                    .filter(later.field(token_last_uses::last_used_at).gt(cutoff)),
            )))
            // Nor a use of the secret a regenerate replaced, during its overlap.
            .and(diesel::dsl::not(diesel::dsl::exists(
                token_previous_secrets::table
                    .filter(token_previous_secrets::token_id.eq(pat::id))
                    .filter(token_previous_secrets::last_used_at.gt(cutoff)),
            )))
    }};
}

/// Up to `limit` tokens of anyone unused since `cutoff`, with ids above `after_id`, by id.
pub fn unused(
    conn: &mut AnyConnection,
    cutoff: NaiveDateTime,
    now: NaiveDateTime,
    after_id: i64,
    limit: i64,
) -> QueryResult<Vec<PersonalAccessToken>> {
    with_last_use()
        .filter(unused_since!(cutoff, now))
        .filter(pat::id.gt(after_id))
        .order(pat::id.asc())
        .limit(limit)
        .select(PersonalAccessToken::as_select())
        .load(conn)
}

/// How many of `owner`'s tokens are unused since `cutoff`.
pub fn count_unused(
    conn: &mut AnyConnection,
    owner: TokenOwner,
    cutoff: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<i64> {
    of_owner!(owner, |owned| owned
        .filter(unused_since!(cutoff, now))
        .count()
        .get_result(conn))
}

/// `owner`'s tokens not revoked that expire after `now` and by `until`, soonest first, at most
/// `limit`: (id, name, expires at).
pub fn expiring(
    conn: &mut AnyConnection,
    owner: TokenOwner,
    now: NaiveDateTime,
    until: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<(i64, String, NaiveDateTime)>> {
    let rows: Vec<(i64, String, Option<NaiveDateTime>)> = of_owner!(owner, |owned| owned
        .filter(pat::revoked_at.is_null())
        .filter(pat::expires_at.gt(now))
        .filter(pat::expires_at.le(until))
        .order((pat::expires_at.asc(), pat::id.asc()))
        .limit(limit)
        .select((pat::id, pat::name, pat::expires_at))
        .load(conn))?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, name, at)| Some((id, name, at?)))
        .collect())
}

/// How many tokens of anyone are unused since `cutoff`.
pub fn count_all_unused(
    conn: &mut AnyConnection,
    cutoff: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<i64> {
    pat::table
        .filter(unused_since!(cutoff, now))
        .count()
        .get_result(conn)
}

/// Revokes a token for going unused, if it still is: a use written meanwhile, a new secret or
/// another instance's sweep gets there first. Returns whether this call revoked it.
pub fn revoke_unused(
    conn: &mut AnyConnection,
    token_id: i64,
    cutoff: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let changed = diesel::update(
        pat::table
            .filter(pat::id.eq(token_id))
            .filter(unused_since!(cutoff, now)),
    )
    .set((pat::revoked_at.eq(now), pat::revoked_reason.eq(UNUSED)))
    .execute(conn)?;
    Ok(changed == 1)
}

/// Revokes a token that is not revoked yet; returns whether this call revoked it.
pub fn revoke(conn: &mut AnyConnection, token_id: i64, by_user_id: i64) -> QueryResult<bool> {
    let changed = diesel::update(
        pat::table
            .filter(pat::id.eq(token_id))
            .filter(pat::revoked_at.is_null()),
    )
    .set((pat::revoked_at.eq(now()), pat::revoked_by.eq(by_user_id)))
    .execute(conn)?;
    Ok(changed == 1)
}

/// The live tokens whose digests these are, for a leak report.
pub fn live_with_digests(
    conn: &mut AnyConnection,
    digests: &[String],
) -> QueryResult<Vec<PersonalAccessToken>> {
    // A replaced secret still in its overlap is as live as the current one.
    let replaced = token_previous_secrets::table
        .filter(token_previous_secrets::digest.eq_any(digests))
        .filter(token_previous_secrets::valid_until.gt(now()))
        .select(token_previous_secrets::token_id);
    with_last_use()
        .filter(pat::digest.eq_any(digests).or(pat::id.eq_any(replaced)))
        .filter(pat::revoked_at.is_null())
        .order(pat::id.asc())
        .select(PersonalAccessToken::as_select())
        .load(conn)
}

/// Revokes a token reported as leaked (by nobody who signs in), if no one revoked it first;
/// returns whether this call did.
pub fn revoke_reported(conn: &mut AnyConnection, token_id: i64) -> QueryResult<bool> {
    let changed = diesel::update(
        pat::table
            .filter(pat::id.eq(token_id))
            .filter(pat::revoked_at.is_null()),
    )
    .set((
        pat::revoked_at.eq(now()),
        pat::revoked_reason.eq(LEAK_REPORT),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}

/// What a regenerate changes besides the secret.
#[derive(Clone, Debug)]
pub struct Renewal {
    pub expiry: Expiry,
    /// How long the replaced secret keeps working.
    pub overlap: Overlap,
    pub allowed_addresses: Option<AddressAllowlist>,
    /// The digest the token's current secret must still have (a token rotating itself).
    pub replacing: Option<String>,
}

/// A new secret for the same token (name, scopes) with a new expiry and allowlist. The old
/// digest is replaced in the same statement, so the old secret stops working the moment this
/// commits, unless the renewal keeps it for an overlap: then it moves, with its Last used, to
/// `token_previous_secrets` (replacing any earlier one, whose overlap ends here).
/// An expired token comes back to life, so its name must be free among the active ones.
pub fn regenerate(
    conn: &mut AnyConnection,
    token: &PersonalAccessToken,
    renewal: &Renewal,
) -> Result<Option<CreatedToken>, TokenStoreError> {
    if active_name_taken(conn, token.owner(), &token.name, Some(token.id))? {
        return Err(TokenStoreError::NameTaken);
    }
    let token_id = token.id;
    let now = now();
    // Fixed statements with or without an expected digest: `no_expectation` is true when none.
    let replacing = renewal.replacing.clone().unwrap_or_default();
    let no_expectation = renewal
        .replacing
        .is_none()
        .into_sql::<diesel::sql_types::Bool>();
    lock_for_regenerate(conn, token_id)?;
    forget_previous(conn, token_id)?;
    if let Some(overlap) = renewal.overlap.duration() {
        use diesel::sql_types::Timestamp;
        use token_previous_secrets as prev;
        diesel::insert_into(prev::table)
            .values(
                with_last_use()
                    .filter(pat::id.eq(token_id))
                    .filter(pat::revoked_at.is_null())
                    .filter(pat::digest.eq(&replacing).or(no_expectation))
                    .select((
                        pat::id,
                        pat::digest,
                        pat::hint,
                        now.into_sql::<Timestamp>(),
                        (now + overlap).into_sql::<Timestamp>(),
                        token_last_uses::last_used_at,
                        token_last_uses::last_used_ip,
                        pat::allowed_addresses,
                        pat::expires_at,
                    )),
            )
            .into_columns((
                prev::token_id,
                prev::digest,
                prev::hint,
                prev::replaced_at,
                prev::valid_until,
                prev::last_used_at,
                prev::last_used_ip,
                prev::allowed_addresses,
                prev::expires_at,
            ))
            .execute(conn)?;
    }
    let secret = TokenSecret::generate_kind(token.kind());
    let changed = diesel::update(
        pat::table
            .filter(pat::id.eq(token_id))
            .filter(pat::revoked_at.is_null())
            .filter(pat::digest.eq(&replacing).or(no_expectation)),
    )
    .set((
        pat::digest.eq(secret.digest().0),
        pat::hint.eq(secret.hint()),
        pat::regenerated_at.eq(now),
        pat::expires_at.eq(renewal.expiry.at()),
        pat::allowed_addresses.eq(renewal.allowed_addresses.as_ref().map(|a| a.to_stored())),
    ))
    .execute(conn)?;
    if changed == 0 {
        return Ok(None);
    }
    // The new secret has not been used yet; the recorder gives uses from before now to the
    // replaced one.
    diesel::update(token_last_uses::table.find(token_id))
        .set((
            token_last_uses::last_used_at.eq(None::<NaiveDateTime>),
            token_last_uses::last_used_ip.eq(None::<String>),
            token_last_uses::secret_since.eq(now),
        ))
        .execute(conn)?;
    let token = with_last_use()
        .filter(pat::id.eq(token_id))
        .select(PersonalAccessToken::as_select())
        .first(conn)?;
    let previous = previous_secret(conn, token_id)?;
    Ok(Some(CreatedToken {
        token,
        secret,
        previous,
    }))
}

/// The replaced secret of a token still working, if its overlap has not ended.
pub fn previous_secret(
    conn: &mut AnyConnection,
    token_id: i64,
) -> QueryResult<Option<PreviousSecret>> {
    token_previous_secrets::table
        .filter(token_previous_secrets::token_id.eq(token_id))
        .filter(token_previous_secrets::valid_until.gt(now()))
        .select(PreviousSecret::as_select())
        .first(conn)
        .optional()
}

/// The replaced secrets still working among these tokens', for a list.
pub fn previous_secrets_of(
    conn: &mut AnyConnection,
    token_ids: &[i64],
) -> QueryResult<Vec<PreviousSecret>> {
    token_previous_secrets::table
        .filter(token_previous_secrets::token_id.eq_any(token_ids))
        .filter(token_previous_secrets::valid_until.gt(now()))
        .select(PreviousSecret::as_select())
        .load(conn)
}

/// Ends a token's overlap: its replaced secret stops working. Returns the secret as it was,
/// if one was still working.
pub fn end_overlap(conn: &mut AnyConnection, token_id: i64) -> QueryResult<Option<PreviousSecret>> {
    let working = previous_secret(conn, token_id)?;
    // Kept, ended: presented later, it is refused as a secret whose overlap is over.
    diesel::update(
        token_previous_secrets::table
            .filter(token_previous_secrets::token_id.eq(token_id))
            .filter(token_previous_secrets::valid_until.gt(now())),
    )
    .set(token_previous_secrets::valid_until.eq(now()))
    .execute(conn)?;
    Ok(working)
}

/// Locks what a regenerate changes, in the order the Last-used recorder takes it (PostgreSQL;
/// SQLite has one writer at a time). First the last-use row: the recorder takes its batch's
/// last-use rows first too, so a regenerate and a flush of the same token take turns. A flush
/// that wrote a use of the old secret is waited for, and its use goes with the old secret
/// (without the lock, the regenerate read the row as it was before that flush, then cleared it:
/// the use was lost); a flush after it sees the new `secret_since`. Then the token row `FOR
/// UPDATE`, the lock the new digest's write takes (the digest is unique, so it waits for other
/// transactions' foreign-key checks on the token), before the replaced-secret row is changed.
fn lock_for_regenerate(conn: &mut AnyConnection, token_id: i64) -> QueryResult<()> {
    if let AnyConnection::Postgresql(pg) = conn {
        token_last_uses::table
            .find(token_id)
            .select(token_last_uses::token_id)
            .for_update()
            .first::<i64>(pg)
            .optional()?;
        pat::table
            .find(token_id)
            .select(pat::id)
            .for_update()
            .first::<i64>(pg)
            .optional()?;
    }
    Ok(())
}

/// Drops a token's replaced secret, working or not: a regenerate replaces it.
fn forget_previous(conn: &mut AnyConnection, token_id: i64) -> QueryResult<()> {
    diesel::delete(
        token_previous_secrets::table.filter(token_previous_secrets::token_id.eq(token_id)),
    )
    .execute(conn)?;
    Ok(())
}
