//! Every token of the organisation, for admins: filters, sorts and pages done by the database.

use chrono::{Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::Bool;

use crate::db::escape_like;
use crate::db::schema::{
    applications, personal_access_tokens as pat, token_last_uses as uses, users,
};
use crate::db::{AnyConnection, MultiBackend};
use crate::domain::Scope;
use crate::tokens::{PersonalAccessToken, TokenKind, TokenSecret};

/// Which kind of token; in addresses as `kind=personal` or `application` (empty for both).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KindFilter {
    #[default]
    #[serde(rename = "")]
    Any,
    Personal,
    Application,
}

/// Which tokens by status; in addresses as `status=active` (empty for any).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusFilter {
    #[default]
    #[serde(rename = "")]
    Any,
    Active,
    Expired,
    Revoked,
}

/// In addresses as `sort=last_used`, `created` or `expires`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SortBy {
    /// Never-used first, then the longest unused: the stale ones on top.
    #[default]
    LastUsed,
    /// Newest first.
    Created,
    /// Soonest first; no expiry last.
    Expires,
}

/// How long unused, in addresses as `unused=30`, `90` or `180` (empty for any time).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
pub enum UnusedFor {
    #[default]
    #[serde(rename = "")]
    AnyTime,
    #[serde(rename = "30")]
    Days30,
    #[serde(rename = "90")]
    Days90,
    #[serde(rename = "180")]
    Days180,
}

impl UnusedFor {
    pub fn days(self) -> Option<i64> {
        match self {
            UnusedFor::AnyTime => None,
            UnusedFor::Days30 => Some(30),
            UnusedFor::Days90 => Some(90),
            UnusedFor::Days180 => Some(180),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct InventoryFilter {
    pub status: StatusFilter,
    /// Not used for so long (never-used tokens older than that count too).
    pub unused: UnusedFor,
    pub never_used: bool,
    pub kind: KindFilter,
    /// Part of the owner's email, or of the application's name.
    pub owner: String,
    pub scope: Option<Scope>,
    /// Part of the token's name.
    pub name: String,
    /// A leaked fragment: the hint, part of it, the start or end of a token, or a whole token.
    pub leaked: String,
    pub sort: SortBy,
}

const DIGEST_MATCH: &str = "sha256:";

/// What of a leaked fragment the search needs, and may carry in a URL: a whole token becomes
/// its digest, and a longer string that is not a copied hint becomes its start and end as a
/// hint shows them (the search matches such a string by nothing else). The result matches the
/// same tokens and holds no more of a token than its hint.
pub fn leak_match(fragment: &str) -> String {
    let fragment = fragment.trim();
    if let Some(token) = TokenSecret::parse(fragment) {
        return format!("{DIGEST_MATCH}{}", token.digest().0);
    }
    // A copied hint (`tdk_AbC1…9xYz` or part of it), or too short to hold more of a token than
    // its hint shows.
    let hint_sized = fragment.contains('…') && fragment.chars().count() <= 13;
    if fragment.starts_with(DIGEST_MATCH) || hint_sized || fragment.len() < 8 {
        return fragment.to_owned();
    }
    let end: String = {
        let tail: Vec<char> = fragment
            .trim_end_matches('…')
            .chars()
            .rev()
            .take(4)
            .collect();
        tail.into_iter().rev().collect()
    };
    match TokenKind::of(fragment) {
        Some(kind) => {
            let start: String = fragment[kind.prefix().len()..].chars().take(4).collect();
            format!("{}{start}…{end}", kind.prefix())
        }
        None => format!("…{end}"),
    }
}

/// Tokens with their last use, beside their owners: a person's or an application's (one of the
/// two is absent).
type WithOwners = diesel::dsl::LeftJoin<
    diesel::dsl::LeftJoin<diesel::dsl::InnerJoin<pat::table, uses::table>, users::table>,
    applications::table,
>;

type FilteredQuery<'a> = diesel::dsl::IntoBoxed<'a, WithOwners, MultiBackend>;

/// What [`WithOwners`] reads from, for conditions of its own.
type OwnersSource = diesel::helper_types::LeftJoinQuerySource<
    diesel::helper_types::LeftJoinQuerySource<
        diesel::helper_types::InnerJoinQuerySource<pat::table, uses::table>,
        users::table,
    >,
    applications::table,
>;

/// The inventory's filters on `$query`, a boxed query of the token table alone or beside its
/// owners (`$source`: what it reads from). One definition for both, as diesel types each
/// condition by the tables it reads: counting reads the token table alone (SQLite keeps a
/// LEFT JOIN in a COUNT, looking every owner up), a page reads the owners in the same query.
macro_rules! filter_tokens {
    ($query:expr, $source:ty, $f:expr, $now:expr) => {{
        let (f, now): (&InventoryFilter, NaiveDateTime) = ($f, $now);
        let mut query = $query;
        query = match f.status {
            StatusFilter::Any => query,
            StatusFilter::Active => query
                .filter(pat::revoked_at.is_null())
                .filter(pat::expires_at.is_null().or(pat::expires_at.gt(now))),
            StatusFilter::Expired => query
                .filter(pat::revoked_at.is_null())
                .filter(pat::expires_at.le(now)),
            StatusFilter::Revoked => query.filter(pat::revoked_at.is_not_null()),
        };
        // Last used is read through a correlated subquery of its own table (one semi-join), so
        // counting needs no join; aliased, as a page reads the same table for each token's
        // Last used.
        let last = diesel::alias!(uses as last_uses);
        let (last_token, last_at) = (last.field(uses::token_id), last.field(uses::last_used_at));
        if let Some(days) = f.unused.days() {
            let cutoff = now - Duration::days(days);
            query = query.filter(diesel::dsl::exists(
                last.filter(last_token.eq(pat::id)).filter(
                    last_at.lt(cutoff).or(last_at
                        .is_null()
                        .and(pat::created_at.lt(cutoff))
                        .and(
                            // A regenerated token counts from its new secret.
                            pat::regenerated_at
                                .is_null()
                                .or(pat::regenerated_at.lt(cutoff)),
                        )),
                ),
            ));
        }
        if f.never_used {
            query = query.filter(diesel::dsl::exists(
                last.filter(last_token.eq(pat::id))
                    .filter(last_at.is_null()),
            ));
        }
        query = match f.kind {
            KindFilter::Any => query,
            KindFilter::Personal => query.filter(pat::application_id.is_null()),
            KindFilter::Application => query.filter(pat::application_id.is_not_null()),
        };
        if !f.owner.trim().is_empty() {
            let pattern = format!("%{}%", escape_like(&f.owner.trim().to_lowercase()));
            // Aliased: the query around these subqueries reads the same tables for the owners.
            let (people, apps) = diesel::alias!(users as people, applications as apps);
            let owners = people
                .filter(people.field(users::email).like(pattern).escape('\\'))
                .select(people.field(users::id).nullable());
            // Spelled as application names are compared (fullwidth letters, any case).
            let name_pattern = format!(
                "%{}%",
                escape_like(&crate::applications::name_key(f.owner.trim()))
            );
            let named = apps
                .filter(
                    apps.field(applications::name_key)
                        .like(name_pattern)
                        .escape('\\'),
                )
                .select(apps.field(applications::id).nullable());
            query = query.filter(
                pat::user_id
                    .eq_any(owners)
                    .or(pat::application_id.eq_any(named)),
            );
        }
        if let Some(scope) = f.scope {
            use crate::db::schema::token_scopes;
            let holding = token_scopes::table
                .filter(token_scopes::scope.eq(scope.name()))
                .select(token_scopes::token_id);
            query = query.filter(pat::id.eq_any(holding));
        }
        if !f.name.trim().is_empty() {
            query = query.filter(
                pat::name
                    .like(format!("%{}%", escape_like(f.name.trim())))
                    .escape('\\'),
            );
        }
        let leaked = leak_match(&f.leaked);
        let leaked = leaked.as_str();
        if !leaked.is_empty() {
            query = if let Some(digest) = leaked.strip_prefix(DIGEST_MATCH) {
                // A whole token: find it exactly, by its digest; a secret a regenerate replaced
                // finds its token while it still works.
                use crate::db::schema::token_previous_secrets as prev;
                let replaced = prev::table
                    .filter(prev::digest.eq(digest.to_owned()))
                    .filter(prev::valid_until.gt(chrono::Utc::now().naive_utc()))
                    .select(prev::token_id);
                query.filter(
                    pat::digest
                        .eq(digest.to_owned())
                        .or(pat::id.eq_any(replaced)),
                )
            } else {
                let mut condition = Box::new(
                    pat::hint
                        .like(format!("%{}%", escape_like(leaked)))
                        .escape('\\'),
                )
                    as Box<
                        dyn BoxableExpression<
                            $source,
                            MultiBackend,
                            SqlType = diesel::sql_types::Bool,
                        >,
                    >;
                // The start of a token (prefix + 4) or its last 4 characters, as the hint shows them.
                if TokenKind::of(leaked).is_some() && leaked.len() >= 8 && leaked.is_char_boundary(8) {
                    condition = Box::new(
                        condition.or(pat::hint
                            .like(format!("{}…%", escape_like(&leaked[..8])))
                            .escape('\\')),
                    );
                }
                if leaked.len() >= 8 && leaked.is_char_boundary(leaked.len() - 4) {
                    let tail = &leaked[leaked.len() - 4..];
                    condition = Box::new(
                        condition.or(pat::hint
                            .like(format!("%…{}", escape_like(tail)))
                            .escape('\\')),
                    );
                }
                query.filter(condition)
            };
        }
        query
    }};
}

/// The filtered tokens, on the token table alone.
fn tokens_filtered<'a>(
    f: &'a InventoryFilter,
    now: NaiveDateTime,
) -> pat::BoxedQuery<'a, MultiBackend> {
    filter_tokens!(pat::table.into_boxed::<MultiBackend>(), pat::table, f, now)
}

/// The filtered tokens beside their owners.
fn filtered<'a>(f: &'a InventoryFilter, now: NaiveDateTime) -> FilteredQuery<'a> {
    let query = crate::tokens::store::with_last_use()
        .left_join(users::table)
        .left_join(applications::table)
        .into_boxed::<MultiBackend>();
    filter_tokens!(query, OwnersSource, f, now)
}

/// Inventory totals by filter, kept as long as verified tokens: counting every token of the
/// organisation is most of a page view's cost. Registered once as `web::Data<InventoryTotals>`.
pub struct InventoryTotals(pub super::FreshCache<i64>);

pub struct InventoryRow {
    pub token: PersonalAccessToken,
    /// The owner's email; empty for an application's token.
    pub owner_email: String,
    /// The owner's display name, or the application's name.
    pub owner_name: String,
}

impl InventoryRow {
    /// How the audit trail and exports name the owner: an email or an application's name.
    pub fn owner_label(&self) -> &str {
        match self.token.kind() {
            TokenKind::Personal => &self.owner_email,
            TokenKind::Application => &self.owner_name,
        }
    }
}

pub fn count(conn: &mut AnyConnection, f: &InventoryFilter) -> QueryResult<i64> {
    tokens_filtered(f, Utc::now().naive_utc())
        .count()
        .get_result(conn)
}

/// A page of the inventory as the page view shows it, `offset` rows in.
pub fn list(
    conn: &mut AnyConnection,
    f: &InventoryFilter,
    offset: i64,
    limit: i64,
) -> QueryResult<Vec<InventoryRow>> {
    let query = filtered(f, Utc::now().naive_utc());
    load(conn, in_order(query, f.sort).offset(offset).limit(limit))
}

/// The inventory's order: `sort`, then id for ties.
fn in_order(query: FilteredQuery<'_>, sort: SortBy) -> FilteredQuery<'_> {
    // NULLS FIRST is spelled out so both backends order alike, and match the index.
    match sort {
        SortBy::LastUsed => query.order(FixedOrder(
            "token_last_uses.last_used_at ASC NULLS FIRST, token_last_uses.token_id ASC",
        )),
        SortBy::Created => query.order((pat::created_at.desc(), pat::id.desc())),
        SortBy::Expires => query.order(FixedOrder(
            "personal_access_tokens.expires_at ASC NULLS LAST, personal_access_tokens.id ASC",
        )),
    }
}

/// An ORDER BY written in SQL. Unlike `dsl::sql`, which makes diesel prepare its statement
/// anew on every run, a fixed fragment keeps the statement cacheable: prepared (and, on
/// PostgreSQL, planned) once per connection instead of on each page view.
#[derive(Debug, Clone, Copy, diesel::query_builder::QueryId)]
struct FixedOrder(&'static str);

impl Expression for FixedOrder {
    type SqlType = diesel::sql_types::BigInt;
}

impl<QS> AppearsOnTable<QS> for FixedOrder {}

impl diesel::expression::ValidGrouping<()> for FixedOrder {
    type IsAggregate = diesel::expression::is_aggregate::Never;
}

impl diesel::query_builder::QueryFragment<MultiBackend> for FixedOrder {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, MultiBackend>,
    ) -> QueryResult<()> {
        out.push_sql(self.0);
        Ok(())
    }
}

/// The tokens `query` selects, each with its owner from the same rows.
fn load(conn: &mut AnyConnection, query: FilteredQuery<'_>) -> QueryResult<Vec<InventoryRow>> {
    type Loaded = (
        PersonalAccessToken,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Loaded> = query
        .select((
            PersonalAccessToken::as_select(),
            users::email.nullable(),
            users::display_name.nullable(),
            applications::name.nullable(),
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(token, email, display_name, application_name)| {
            let (owner_email, owner_name) = match (token.user_id, token.application_id) {
                (Some(_), _) => (email, display_name),
                (None, Some(_)) => (None, application_name),
                (None, None) => (None, None),
            };
            InventoryRow {
                token,
                owner_email: owner_email.unwrap_or_default(),
                owner_name: owner_name.unwrap_or_default(),
            }
        })
        .collect())
}

/// Where an export stands: the sort key and id of the last token it read.
#[derive(Clone, Copy, Debug)]
struct Position {
    key: Option<NaiveDateTime>,
    id: i64,
}

type Condition = Box<dyn BoxableExpression<OwnersSource, MultiBackend, SqlType = Bool>>;

/// A stretch of an export's order: the tokens matching `only`, without the sort key (never
/// used, no expiry: in id order) or with it (in the sort's order).
struct Stretch {
    only: Option<Condition>,
    without_key: bool,
}

/// Every matching token, a page at a time, in the inventory's order, each page one query
/// from where the last one ended (keyset paging: as fast at the millionth token as at the
/// first, and no connection held between pages).
///
/// Tokens changing meanwhile: a token whose sort key moves behind the export's position (its
/// Last used or expiry changed) is missed; one that moves ahead is shown once, with its newer
/// values if it was not written yet (ids already written are skipped); a token made during
/// the export is shown if its place is still ahead. A page is never read twice, so nothing
/// loops.
pub struct Export {
    filter: InventoryFilter,
    /// The filters' "now", the same for every page.
    now: NaiveDateTime,
    after: Option<Position>,
    written: WrittenIds,
    done: bool,
}

impl Export {
    pub fn new(filter: InventoryFilter) -> Self {
        Export {
            filter,
            now: Utc::now().naive_utc(),
            after: None,
            written: WrittenIds::default(),
            done: false,
        }
    }

    /// The next page, at most `limit` tokens, and the export to go on with; `None` when every
    /// matching token was read.
    pub fn next_page(
        mut self,
        conn: &mut AnyConnection,
        limit: i64,
    ) -> QueryResult<Option<(Vec<InventoryRow>, Self)>> {
        if self.done {
            return Ok(None);
        }
        let mut rows = Vec::new();
        // Two stretches at most: crossing from one to the next takes a second query.
        for stretch in self.rest() {
            let wanted = limit - rows.len() as i64;
            if wanted == 0 {
                break;
            }
            let mut query = filtered(&self.filter, self.now);
            if let Some(only) = stretch.only {
                query = query.filter(only);
            }
            let query = if stretch.without_key && self.filter.sort == SortBy::LastUsed {
                // The same order as the last-use index holds.
                query.order(uses::token_id.asc())
            } else if stretch.without_key {
                query.order(pat::id.asc())
            } else if self.filter.sort == SortBy::Expires {
                // Only tokens with an expiry: the plain order, which SQLite's index holds.
                query.order((pat::expires_at.asc(), pat::id.asc()))
            } else {
                in_order(query, self.filter.sort)
            };
            rows.extend(load(conn, query.limit(wanted))?);
        }
        self.done = (rows.len() as i64) < limit;
        if let Some(last) = rows.last() {
            self.after = Some(Position {
                key: match self.filter.sort {
                    SortBy::LastUsed => last.token.last_used_at,
                    SortBy::Created => Some(last.token.created_at),
                    SortBy::Expires => last.token.expires_at,
                },
                id: last.token.id,
            });
        }
        rows.retain(|row| self.written.insert(row.token.id));
        Ok(Some((rows, self)))
    }

    /// What is left of the order after the position, stretch by stretch.
    fn rest(&self) -> Vec<Stretch> {
        let with = |only: Condition| Stretch {
            only: Some(only),
            without_key: false,
        };
        let without = |only: Condition| Stretch {
            only: Some(only),
            without_key: true,
        };
        // Past (k, id) in the ascending order of Last used or expiry; the `>=` lets the index
        // start at k.
        let past = |key: NaiveDateTime, id: i64, sort| -> Condition {
            match sort {
                SortBy::LastUsed => {
                    let at = uses::last_used_at.assume_not_null();
                    Box::new(at.ge(key).and(at.gt(key).or(uses::token_id.gt(id))))
                }
                _ => {
                    let at = pat::expires_at.assume_not_null();
                    Box::new(at.ge(key).and(at.gt(key).or(pat::id.gt(id))))
                }
            }
        };
        match (self.filter.sort, self.after) {
            // Never used first, then by Last used.
            (SortBy::LastUsed, None) => vec![
                without(Box::new(uses::last_used_at.is_null())),
                with(Box::new(uses::last_used_at.is_not_null())),
            ],
            (SortBy::LastUsed, Some(Position { key: None, id })) => vec![
                without(Box::new(
                    uses::last_used_at.is_null().and(uses::token_id.gt(id)),
                )),
                with(Box::new(uses::last_used_at.is_not_null())),
            ],
            (SortBy::LastUsed, Some(Position { key: Some(at), id })) => {
                vec![with(past(at, id, SortBy::LastUsed))]
            }
            // Soonest expiry first, then those that never expire.
            (SortBy::Expires, None) => vec![
                with(Box::new(pat::expires_at.is_not_null())),
                without(Box::new(pat::expires_at.is_null())),
            ],
            (SortBy::Expires, Some(Position { key: Some(at), id })) => vec![
                with(past(at, id, SortBy::Expires)),
                without(Box::new(pat::expires_at.is_null())),
            ],
            (SortBy::Expires, Some(Position { key: None, id })) => vec![without(Box::new(
                pat::expires_at.is_null().and(pat::id.gt(id)),
            ))],
            // Newest first; every token has a creation time.
            (SortBy::Created, None) => vec![Stretch {
                only: None,
                without_key: false,
            }],
            (SortBy::Created, Some(Position { key, id })) => {
                let at = key.unwrap_or(NaiveDateTime::MAX);
                vec![with(Box::new(
                    pat::created_at
                        .le(at)
                        .and(pat::created_at.lt(at).or(pat::id.lt(id))),
                ))]
            }
        }
    }
}

/// Token ids an export wrote, a bit each in blocks of 4,096 ids (1,000,000 tokens: 125 KB).
#[derive(Default)]
struct WrittenIds(std::collections::HashMap<i64, Box<[u64; 64]>>);

impl WrittenIds {
    /// Marks `id` written; false if it was already.
    fn insert(&mut self, id: i64) -> bool {
        let (block, bit) = (id.div_euclid(4096), id.rem_euclid(4096) as usize);
        let words = self.0.entry(block).or_insert_with(|| Box::new([0; 64]));
        let (word, mask) = (&mut words[bit / 64], 1u64 << (bit % 64));
        let fresh = *word & mask == 0;
        *word |= mask;
        fresh
    }
}

/// The tokens with their owners (people's email and name, applications' names), in two more
/// queries.
pub fn with_owners(
    conn: &mut AnyConnection,
    tokens: Vec<PersonalAccessToken>,
) -> QueryResult<Vec<InventoryRow>> {
    let distinct = |ids: Vec<i64>| -> Vec<i64> {
        let set: std::collections::BTreeSet<i64> = ids.into_iter().collect();
        set.into_iter().collect()
    };
    // Bind variables are bounded (SQLite 32,766, PostgreSQL 65,535): ask in chunks.
    const CHUNK: usize = 10_000;
    let mut people = std::collections::HashMap::new();
    for ids in distinct(tokens.iter().filter_map(|t| t.user_id).collect()).chunks(CHUNK) {
        let found = users::table
            .filter(users::id.eq_any(ids))
            .select((users::id, users::email, users::display_name))
            .load::<(i64, String, String)>(conn)?;
        people.extend(
            found
                .into_iter()
                .map(|(id, email, name)| (id, (email, name))),
        );
    }
    let mut application_names = std::collections::HashMap::new();
    for ids in distinct(tokens.iter().filter_map(|t| t.application_id).collect()).chunks(CHUNK) {
        let found = applications::table
            .filter(applications::id.eq_any(ids))
            .select((applications::id, applications::name))
            .load::<(i64, String)>(conn)?;
        application_names.extend(found);
    }
    Ok(tokens
        .into_iter()
        .map(|token| {
            let (owner_email, owner_name) = match (token.user_id, token.application_id) {
                (Some(user_id), _) => people.get(&user_id).cloned().unwrap_or_default(),
                (None, Some(id)) => (
                    String::new(),
                    application_names.get(&id).cloned().unwrap_or_default(),
                ),
                (None, None) => Default::default(),
            };
            InventoryRow {
                token,
                owner_email,
                owner_name,
            }
        })
        .collect())
}

/// The matching tokens that are not revoked yet (what a bulk revoke revokes), with owners.
pub fn revocable(conn: &mut AnyConnection, f: &InventoryFilter) -> QueryResult<Vec<InventoryRow>> {
    let query = filtered(f, Utc::now().naive_utc())
        .filter(pat::revoked_at.is_null())
        .order(pat::id.asc());
    load(conn, query)
}

/// Ids of the matching tokens that are not revoked yet (what a bulk revoke would revoke).
pub fn revocable_ids(conn: &mut AnyConnection, f: &InventoryFilter) -> QueryResult<Vec<i64>> {
    tokens_filtered(f, Utc::now().naive_utc())
        .filter(pat::revoked_at.is_null())
        .select(pat::id)
        .load(conn)
}

/// One token with its owner, for an admin acting on it.
pub fn find(conn: &mut AnyConnection, token_id: i64) -> QueryResult<Option<InventoryRow>> {
    let token: Option<PersonalAccessToken> = crate::tokens::store::with_last_use()
        .filter(pat::id.eq(token_id))
        .select(PersonalAccessToken::as_select())
        .first(conn)
        .optional()?;
    Ok(with_owners(conn, token.into_iter().collect())?.pop())
}

/// Revokes these tokens in one statement per chunk; returns how many this call revoked.
pub fn revoke_many(conn: &mut AnyConnection, ids: &[i64], by_user_id: i64) -> QueryResult<usize> {
    let now = Utc::now().naive_utc();
    let mut revoked = 0;
    for chunk in ids.chunks(500) {
        revoked += diesel::update(
            pat::table
                .filter(pat::id.eq_any(chunk))
                .filter(pat::revoked_at.is_null()),
        )
        .set((pat::revoked_at.eq(now), pat::revoked_by.eq(by_user_id)))
        .execute(conn)?;
    }
    Ok(revoked)
}
