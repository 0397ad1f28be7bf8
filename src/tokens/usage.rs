//! How each token is used: the (client address, user agent) pairs that used it, the addresses it
//! was used from (a new one raises a flag on the token), and when each scope was last
//! exercised. Gathered in memory by the [`LastUsedRecorder`](super::LastUsedRecorder) and
//! written with its batches, so a request never waits for a write.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Text, Timestamp};

use crate::audit::{Action, Event};
use crate::db::schema::{
    personal_access_tokens as pat, token_address_alerts as alerts, token_known_addresses as known,
    token_scope_uses as scope_uses, token_usage,
};
use crate::db::AnyConnection;
use crate::domain::{Scope, ScopeSet};
use crate::notifications::{self, Notice, Outbox};
use crate::tokens::PersonalAccessToken;

/// Pairs kept per token: the most recently seen.
pub const PAIRS_KEPT: i64 = 20;
/// Addresses remembered per token, to tell a new one: the most recently seen.
pub const ADDRESSES_KEPT: i64 = 100;
/// Distinct pairs of one token gathered between two writes; past it, the least recently seen
/// gives way (it would not be among the pairs kept).
const PENDING_PAIRS_PER_TOKEN: usize = 100;
/// Distinct pairs of all tokens gathered between two writes: what bounds their memory, however
/// many distinct pairs arrive. Past it, new pairs are not recorded (counted in the log).
pub const PENDING_PAIRS_MAX: usize = 20_000;
/// Distinct addresses of one token gathered between two writes, apart from the pairs so that
/// clients changing their user agent cannot crowd a new address out; past it, the least
/// recently seen gives way.
const PENDING_ADDRESSES_PER_TOKEN: usize = ADDRESSES_KEPT as usize;
/// Distinct (token, address) of all tokens gathered between two writes. Reaching it takes that
/// many real client addresses within one interval.
pub const PENDING_ADDRESSES_MAX: usize = 50_000;
/// A token and an address it was used from.
pub type TokenAddress = (i64, String);
/// The same, borrowed from a batch.
type TokenAddressRef<'a> = (i64, &'a str);
/// When something was first and last seen within a batch.
type Span = (NaiveDateTime, NaiveDateTime);

/// (token, address) pairs this instance wrote as known, remembered so later writes skip them.
const KNOWN_REMEMBERED: usize = 100_000;

/// The addresses this instance already wrote as known for their tokens: a write skips them (their
/// last-seen time in the table then lags, which only orders the forgetting of the least recently
/// seen). Bounded: forgotten all at once when full, after which they are written again once.
#[derive(Default)]
pub struct KnownAddresses(std::collections::HashSet<TokenAddress>);

impl KnownAddresses {
    fn contains(&self, token_id: i64, address: &str) -> bool {
        // Owned keys: a lookup builds one, in the writer, never per request.
        !self.0.is_empty() && self.0.contains(&(token_id, address.to_owned()))
    }

    /// After a write commits: what it wrote.
    pub fn remember(&mut self, written: Vec<TokenAddress>) {
        if self.0.len() + written.len() > KNOWN_REMEMBERED {
            self.0.clear();
        }
        self.0.extend(written);
    }
}

/// Rows a statement when SQLite writes many (6 values a row, well within its 32,766).
pub(crate) const SQLITE_ROWS_A_STATEMENT: usize = 500;

/// Rows a PostgreSQL flush statement writes: one statement per chunk keeps the round trips few
/// and a large batch's parameters and returned rows small (20,000 rows in one statement took
/// the server past 64 MiB).
pub(crate) const POSTGRES_ROWS_A_STATEMENT: usize = 2_000;

/// A user agent is kept to this many bytes.
pub const USER_AGENT_MAX: usize = 256;
/// New addresses of one token audited per write; a flood of them is summed up in the last.
const NEW_ADDRESS_EVENTS_MAX: usize = 5;

/// One (address, user agent) pair's uses since the last write.
#[derive(Clone, Debug)]
struct PairSeen {
    address: String,
    user_agent: String,
    first: NaiveDateTime,
    last: NaiveDateTime,
    count: i64,
}

impl PairSeen {
    fn absorb(&mut self, first: NaiveDateTime, last: NaiveDateTime, count: i64) {
        self.first = self.first.min(first);
        self.last = self.last.max(last);
        self.count += count;
    }
}

/// One address's uses since the last write, with the user agent of the first.
#[derive(Clone, Debug)]
struct AddressSeen {
    address: String,
    user_agent: String,
    first: NaiveDateTime,
    last: NaiveDateTime,
}

/// What the recorder gathered since its last write, bounded whatever arrives.
#[derive(Default)]
pub struct UsageBatch {
    pairs: HashMap<i64, Vec<PairSeen>>,
    pair_count: usize,
    /// Pairs left out because the batch was full.
    dropped: u64,
    addresses: HashMap<i64, Vec<AddressSeen>>,
    address_count: usize,
    /// Addresses left out because the batch was full.
    dropped_addresses: u64,
    scopes: HashMap<(i64, Scope), NaiveDateTime>,
}

impl UsageBatch {
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty() && self.addresses.is_empty() && self.scopes.is_empty()
    }

    pub fn record_pair(
        &mut self,
        token_id: i64,
        address: &str,
        user_agent: &str,
        at: NaiveDateTime,
    ) {
        let user_agent = clip(user_agent);
        self.add(token_id, address, user_agent, at, at, 1);
        self.add_address(token_id, address, user_agent, at, at);
    }

    fn add_address(
        &mut self,
        token_id: i64,
        address: &str,
        user_agent: &str,
        first: NaiveDateTime,
        last: NaiveDateTime,
    ) {
        let full = self.address_count >= PENDING_ADDRESSES_MAX;
        if full && !self.addresses.contains_key(&token_id) {
            self.dropped_addresses += 1;
            return;
        }
        let seen = self.addresses.entry(token_id).or_default();
        if let Some(known) = seen.iter_mut().find(|a| a.address == address) {
            if first < known.first {
                (known.first, known.user_agent) = (first, user_agent.to_owned());
            }
            known.last = known.last.max(last);
            return;
        }
        let new = AddressSeen {
            address: address.to_owned(),
            user_agent: user_agent.to_owned(),
            first,
            last,
        };
        match bounded_add(seen, new, PENDING_ADDRESSES_PER_TOKEN, full, |a| a.last) {
            Added::Pushed => self.address_count += 1,
            Added::Dropped => self.dropped_addresses += 1,
            Added::Replaced => {}
        }
    }

    /// Every token the batch has something of.
    pub fn token_ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.pairs
            .keys()
            .chain(self.addresses.keys())
            .copied()
            .chain(self.scopes.keys().map(|(id, _)| *id))
    }

    pub fn record_scope(&mut self, token_id: i64, scope: Scope, at: NaiveDateTime) {
        let seen = self.scopes.entry((token_id, scope)).or_insert(at);
        *seen = (*seen).max(at);
    }

    /// Takes back a batch that could not be written.
    pub fn restore(&mut self, batch: UsageBatch) {
        for (token_id, pairs) in batch.pairs {
            for p in pairs {
                self.add(
                    token_id,
                    &p.address,
                    &p.user_agent,
                    p.first,
                    p.last,
                    p.count,
                );
            }
        }
        for (token_id, addresses) in batch.addresses {
            for a in addresses {
                self.add_address(token_id, &a.address, &a.user_agent, a.first, a.last);
            }
        }
        for ((token_id, scope), at) in batch.scopes {
            self.record_scope(token_id, scope, at);
        }
        self.dropped += batch.dropped;
        self.dropped_addresses += batch.dropped_addresses;
    }

    fn add(
        &mut self,
        token_id: i64,
        address: &str,
        user_agent: &str,
        first: NaiveDateTime,
        last: NaiveDateTime,
        count: i64,
    ) {
        let full = self.pair_count >= PENDING_PAIRS_MAX;
        if full && !self.pairs.contains_key(&token_id) {
            self.dropped += 1;
            return;
        }
        let seen = self.pairs.entry(token_id).or_default();
        if let Some(pair) = seen
            .iter_mut()
            .find(|p| p.address == address && p.user_agent == user_agent)
        {
            pair.absorb(first, last, count);
            return;
        }
        let pair = PairSeen {
            address: address.to_owned(),
            user_agent: user_agent.to_owned(),
            first,
            last,
            count,
        };
        match bounded_add(seen, pair, PENDING_PAIRS_PER_TOKEN, full, |p| p.last) {
            Added::Pushed => self.pair_count += 1,
            Added::Dropped => self.dropped += 1,
            Added::Replaced => {}
        }
    }
}

/// What [`bounded_add`] did.
enum Added {
    Pushed,
    /// The token's share was full: the least recently seen gave way (it would not be kept).
    Replaced,
    /// The batch was full.
    Dropped,
}

/// Adds `item` to a token's share of a batch, at most `per_token` of them, none more when the
/// whole batch is `full`.
fn bounded_add<T>(
    seen: &mut Vec<T>,
    item: T,
    per_token: usize,
    full: bool,
    last_seen: impl Fn(&T) -> NaiveDateTime,
) -> Added {
    if seen.len() >= per_token {
        if let Some(oldest) = seen.iter_mut().min_by_key(|t| last_seen(t)) {
            *oldest = item;
        }
        Added::Replaced
    } else if full {
        Added::Dropped
    } else {
        // Most tokens are used from one address by one client: room for one, not the four a
        // first push makes room for (a batch holds up to 20,000 tokens, twice while writing).
        if seen.capacity() == 0 {
            seen.reserve_exact(1);
        }
        seen.push(item);
        Added::Pushed
    }
}

/// At most [`USER_AGENT_MAX`] bytes, cut at a character boundary.
fn clip(user_agent: &str) -> &str {
    if user_agent.len() <= USER_AGENT_MAX {
        return user_agent;
    }
    let mut end = USER_AGENT_MAX;
    while !user_agent.is_char_boundary(end) {
        end -= 1;
    }
    &user_agent[..end]
}

/// Writes a batch inside the recorder's transaction: pairs, addresses (flagging new ones; those
/// in `known` are skipped), scopes exercised. Times never move backwards: another instance may
/// have written later ones. Returns the (token, address) pairs it wrote as known.
pub fn write(
    conn: &mut AnyConnection,
    batch: &UsageBatch,
    known: &KnownAddresses,
    outbox: Outbox,
) -> QueryResult<Vec<TokenAddress>> {
    if batch.dropped > 0 || batch.dropped_addresses > 0 {
        tracing::warn!(
            pairs = batch.dropped,
            addresses = batch.dropped_addresses,
            "more distinct addresses or clients than one batch keeps; some were not recorded"
        );
    }
    let grown = write_pairs(conn, batch)?;
    keep_most_recent(conn, Kept::Pairs, &grown)?;
    let (written, new_addresses) = write_addresses(conn, batch, known)?;
    flag_new_addresses(conn, batch, new_addresses, outbox)?;
    write_scopes(conn, batch)?;
    Ok(written)
}

/// The same statement on either backend, written with SQLite's `?` placeholders.
macro_rules! on_either {
    ($conn:expr, $sql:expr, |$q:ident| $build:expr, $run:ident) => {
        match $conn {
            AnyConnection::Postgresql(c) => {
                let $q = diesel::sql_query(numbered($sql));
                $build.$run(c)
            }
            AnyConnection::Sqlite(c) => {
                let $q = diesel::sql_query($sql);
                $build.$run(c)
            }
        }
    };
}

/// `?` placeholders as PostgreSQL's `$1`, `$2`…
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

#[derive(QueryableByName)]
struct Upserted {
    #[diesel(sql_type = BigInt)]
    token_id: i64,
    #[diesel(sql_type = Text)]
    address: String,
    #[diesel(sql_type = Bool)]
    inserted: bool,
}

/// Adds the batch's pairs; returns the tokens that gained a pair (and may now have too many).
fn write_pairs(conn: &mut AnyConnection, batch: &UsageBatch) -> QueryResult<Vec<i64>> {
    let mut rows: Vec<(i64, &PairSeen)> = batch
        .pairs
        .iter()
        .flat_map(|(id, pairs)| pairs.iter().map(move |p| (*id, p)))
        .collect();
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    // Two instances writing at once lock rows in the same order.
    rows.sort_unstable_by(|a, b| {
        (a.0, &a.1.address, &a.1.user_agent).cmp(&(b.0, &b.1.address, &b.1.user_agent))
    });
    let mut grown = Vec::new();
    match conn {
        // A statement per chunk of the batch, as for Last used.
        AnyConnection::Postgresql(pg) => {
            for chunk in rows.chunks(POSTGRES_ROWS_A_STATEMENT) {
                let columns = PairColumns::of(chunk);
                let written: Vec<Upserted> = diesel::sql_query(
                    "INSERT INTO token_usage \
                     (token_id, address, user_agent, first_seen_at, last_seen_at, use_count) \
                     SELECT * FROM unnest($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (token_id, address, user_agent) DO UPDATE SET \
                     first_seen_at = LEAST(token_usage.first_seen_at, excluded.first_seen_at), \
                     last_seen_at = GREATEST(token_usage.last_seen_at, excluded.last_seen_at), \
                     use_count = token_usage.use_count + excluded.use_count \
                     RETURNING token_id, address, (xmax = 0) AS inserted",
                )
                .bind::<Array<BigInt>, _>(&columns.ids)
                .bind::<Array<Text>, _>(&columns.addresses)
                .bind::<Array<Text>, _>(&columns.user_agents)
                .bind::<Array<Timestamp>, _>(&columns.firsts)
                .bind::<Array<Timestamp>, _>(&columns.lasts)
                .bind::<Array<BigInt>, _>(&columns.counts)
                .load(pg)?;
                grown.extend(written.iter().filter(|w| w.inserted).map(|w| w.token_id));
            }
        }
        // A local file, and a transaction no other writer shares: update, else insert.
        // Many rows a statement: a statement a pair held the write lock for seconds when
        // thousands of tokens gained a pair at once.
        AnyConnection::Sqlite(sqlite) => {
            #[derive(QueryableByName)]
            struct Counted {
                #[diesel(sql_type = BigInt)]
                token_id: i64,
                #[diesel(sql_type = BigInt)]
                use_count: i64,
            }
            for chunk in rows.chunks(SQLITE_ROWS_A_STATEMENT) {
                let values = vec!["(?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
                let mut query = diesel::sql_query(format!(
                    "INSERT INTO token_usage \
                     (token_id, address, user_agent, first_seen_at, last_seen_at, use_count) \
                     VALUES {values} ON CONFLICT (token_id, address, user_agent) DO UPDATE SET \
                     first_seen_at = MIN(first_seen_at, excluded.first_seen_at), \
                     last_seen_at = MAX(last_seen_at, excluded.last_seen_at), \
                     use_count = use_count + excluded.use_count \
                     RETURNING token_id, use_count"
                ))
                .into_boxed::<diesel::sqlite::Sqlite>();
                for (token_id, p) in chunk {
                    query = query
                        .bind::<BigInt, _>(*token_id)
                        .bind::<Text, _>(p.address.clone())
                        .bind::<Text, _>(p.user_agent.clone())
                        .bind::<Timestamp, _>(p.first)
                        .bind::<Timestamp, _>(p.last)
                        .bind::<BigInt, _>(p.count);
                }
                let counted: Vec<Counted> = query.load(sqlite)?;
                // A row whose count is just this batch's was inserted: its token gained a pair.
                let batch_counts: HashMap<i64, Vec<i64>> =
                    chunk.iter().fold(HashMap::new(), |mut by_token, (id, p)| {
                        by_token.entry(*id).or_default().push(p.count);
                        by_token
                    });
                grown.extend(
                    counted
                        .iter()
                        .filter(|c| batch_counts[&c.token_id].contains(&c.use_count))
                        .map(|c| c.token_id),
                );
            }
        }
    }
    grown.dedup();
    Ok(grown)
}

/// A batch's pairs as one array per column, for `unnest`.
struct PairColumns<'a> {
    ids: Vec<i64>,
    addresses: Vec<&'a str>,
    user_agents: Vec<&'a str>,
    firsts: Vec<NaiveDateTime>,
    lasts: Vec<NaiveDateTime>,
    counts: Vec<i64>,
}

impl<'a> PairColumns<'a> {
    fn of(rows: &[(i64, &'a PairSeen)]) -> Self {
        Self {
            ids: rows.iter().map(|(id, _)| *id).collect(),
            addresses: rows.iter().map(|(_, p)| p.address.as_str()).collect(),
            user_agents: rows.iter().map(|(_, p)| p.user_agent.as_str()).collect(),
            firsts: rows.iter().map(|(_, p)| p.first).collect(),
            lasts: rows.iter().map(|(_, p)| p.last).collect(),
            counts: rows.iter().map(|(_, p)| p.count).collect(),
        }
    }
}

/// Drops all but a token's [`PAIRS_KEPT`] most recently seen pairs.
/// What a token keeps only so many of.
#[derive(Clone, Copy)]
enum Kept {
    /// Its [`PAIRS_KEPT`] most recently seen pairs.
    Pairs,
    /// Its [`ADDRESSES_KEPT`] most recently seen addresses.
    Addresses,
}

/// Drops what these tokens hold beyond what they keep, in one statement however many tokens.
fn keep_most_recent(conn: &mut AnyConnection, kept: Kept, token_ids: &[i64]) -> QueryResult<usize> {
    if token_ids.is_empty() {
        return Ok(0);
    }
    let (table, key, keep) = match kept {
        Kept::Pairs => ("token_usage", "token_id, address, user_agent", PAIRS_KEPT),
        Kept::Addresses => ("token_known_addresses", "token_id, address", ADDRESSES_KEPT),
    };
    let ranked = |tokens: &str| {
        format!(
            "DELETE FROM {table} WHERE ({key}) IN (SELECT {key} FROM (SELECT {key}, \
             row_number() OVER (PARTITION BY token_id ORDER BY last_seen_at DESC, \
             first_seen_at DESC) AS place FROM {table} WHERE token_id IN ({tokens})) \
             AS ranked WHERE place > {keep})"
        )
    };
    match conn {
        AnyConnection::Postgresql(pg) => diesel::sql_query(ranked("SELECT unnest($1)"))
            .bind::<Array<BigInt>, _>(token_ids)
            .execute(pg),
        // The ids as one JSON array: one bound value however many.
        AnyConnection::Sqlite(sqlite) => {
            let ids: Vec<String> = token_ids.iter().map(i64::to_string).collect();
            diesel::sql_query(ranked("SELECT value FROM json_each(?)"))
                .bind::<Text, _>(format!("[{}]", ids.join(",")))
                .execute(sqlite)
        }
    }
}

/// A new address of a token, seen first at `first`.
struct NewAddress {
    token_id: i64,
    address: String,
    first: NaiveDateTime,
}

/// Remembers the batch's addresses (but those in `known`); returns those written, and those each
/// token had not been used from. A row is inserted once, so of two instances writing the same
/// new address, one reports it.
fn write_addresses(
    conn: &mut AnyConnection,
    batch: &UsageBatch,
    known: &KnownAddresses,
) -> QueryResult<(Vec<TokenAddress>, Vec<NewAddress>)> {
    let mut rows: Vec<(TokenAddressRef, Span)> = batch
        .addresses
        .iter()
        .flat_map(|(id, seen)| seen.iter().map(move |a| (*id, a)))
        .filter(|(id, a)| !known.contains(*id, &a.address))
        .map(|(id, a)| ((id, a.address.as_str()), (a.first, a.last)))
        .collect();
    if rows.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let written = rows
        .iter()
        .map(|((id, address), _)| (*id, (*address).to_owned()))
        .collect();
    let mut new = Vec::new();
    match conn {
        AnyConnection::Postgresql(pg) => {
            for rows in rows.chunks(POSTGRES_ROWS_A_STATEMENT) {
                let ids: Vec<i64> = rows.iter().map(|((id, _), _)| *id).collect();
                let addresses: Vec<&str> = rows.iter().map(|((_, a), _)| *a).collect();
                let firsts: Vec<NaiveDateTime> = rows.iter().map(|(_, (f, _))| *f).collect();
                let lasts: Vec<NaiveDateTime> = rows.iter().map(|(_, (_, l))| *l).collect();
                let written: Vec<Upserted> = diesel::sql_query(
                    "INSERT INTO token_known_addresses (token_id, address, first_seen_at, last_seen_at) \
                     SELECT * FROM unnest($1, $2, $3, $4) \
                     ON CONFLICT (token_id, address) DO UPDATE SET \
                     last_seen_at = GREATEST(token_known_addresses.last_seen_at, excluded.last_seen_at) \
                     RETURNING token_id, address, (xmax = 0) AS inserted",
                )
                .bind::<Array<BigInt>, _>(&ids)
                .bind::<Array<Text>, _>(&addresses)
                .bind::<Array<Timestamp>, _>(&firsts)
                .bind::<Array<Timestamp>, _>(&lasts)
                .load(pg)?;
                let firsts: HashMap<(i64, &str), NaiveDateTime> = rows
                    .iter()
                    .map(|((id, address), (first, _))| ((*id, *address), *first))
                    .collect();
                for w in written.into_iter().filter(|w| w.inserted) {
                    let first = firsts[&(w.token_id, w.address.as_str())];
                    new.push(NewAddress {
                        token_id: w.token_id,
                        address: w.address,
                        first,
                    });
                }
            }
        }
        AnyConnection::Sqlite(sqlite) => {
            #[derive(QueryableByName)]
            struct Inserted {
                #[diesel(sql_type = BigInt)]
                token_id: i64,
                #[diesel(sql_type = Text)]
                address: String,
            }
            let mut inserted = std::collections::HashSet::new();
            for chunk in rows.chunks(SQLITE_ROWS_A_STATEMENT) {
                let values = vec!["(?, ?, ?, ?)"; chunk.len()].join(", ");
                let mut query = diesel::sql_query(format!(
                    "INSERT INTO token_known_addresses \
                     (token_id, address, first_seen_at, last_seen_at) VALUES {values} \
                     ON CONFLICT (token_id, address) DO NOTHING RETURNING token_id, address"
                ))
                .into_boxed::<diesel::sqlite::Sqlite>();
                for ((token_id, address), (first, last)) in chunk {
                    query = query
                        .bind::<BigInt, _>(*token_id)
                        .bind::<Text, _>((*address).to_owned())
                        .bind::<Timestamp, _>(*first)
                        .bind::<Timestamp, _>(*last);
                }
                let rows: Vec<Inserted> = query.load(sqlite)?;
                inserted.extend(rows.into_iter().map(|r| (r.token_id, r.address)));
            }
            for ((token_id, address), (first, last)) in rows {
                if inserted.contains(&(token_id, address.to_owned())) {
                    new.push(NewAddress {
                        token_id,
                        address: address.to_owned(),
                        first,
                    });
                } else {
                    // Known already (written before this instance remembered it).
                    diesel::sql_query(
                        "UPDATE token_known_addresses SET last_seen_at = MAX(last_seen_at, ?) \
                         WHERE token_id = ? AND address = ?",
                    )
                    .bind::<Timestamp, _>(last)
                    .bind::<BigInt, _>(token_id)
                    .bind::<Text, _>(address)
                    .execute(sqlite)?;
                }
            }
        }
    }
    Ok((written, new))
}

/// Raises the flag for the addresses a token was never used from, except on its very first
/// use, audits them, and mails the owner about the latest (one mail a token a write).
fn flag_new_addresses(
    conn: &mut AnyConnection,
    batch: &UsageBatch,
    new: Vec<NewAddress>,
    outbox: Outbox,
) -> QueryResult<()> {
    if new.is_empty() {
        return Ok(());
    }
    // By token id: the flags are raised in one order whatever the hash map's.
    let mut by_token: std::collections::BTreeMap<i64, Vec<NewAddress>> = Default::default();
    for address in new {
        by_token.entry(address.token_id).or_default().push(address);
    }
    let ids: Vec<i64> = by_token.keys().copied().collect();
    let known_counts: HashMap<i64, i64> = known::table
        .filter(known::token_id.eq_any(&ids))
        .group_by(known::token_id)
        .select((known::token_id, diesel::dsl::count_star()))
        .load::<(i64, i64)>(conn)?
        .into_iter()
        .collect();
    let names: HashMap<i64, String> = pat::table
        .filter(pat::id.eq_any(&ids))
        .select((pat::id, pat::name))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect();
    let mut grown = Vec::new();
    for (token_id, mut addresses) in by_token {
        addresses.sort_by_key(|a| a.first);
        let known_before =
            known_counts.get(&token_id).copied().unwrap_or(0) - addresses.len() as i64;
        if known_before == 0 {
            // The token's very first use is not news.
            addresses.remove(0);
        }
        let Some(latest) = addresses.last() else {
            continue;
        };
        let user_agent = user_agent_of(batch, token_id, &latest.address);
        raise(conn, token_id, &latest.address, user_agent, latest.first)?;
        let notice = Notice::NewAddress {
            address: latest.address.clone(),
            user_agent: (!user_agent.is_empty()).then(|| user_agent.to_owned()),
            seen_at: latest.first,
        };
        notifications::enqueue(conn, outbox, token_id, &notice, None, latest.first)?;
        let name = names.get(&token_id).map_or("", String::as_str);
        let more = addresses.len().saturating_sub(NEW_ADDRESS_EVENTS_MAX);
        for (i, address) in addresses.iter().take(NEW_ADDRESS_EVENTS_MAX).enumerate() {
            let user_agent = user_agent_of(batch, token_id, &address.address);
            let mut details = format!(
                "first use from {} ({})",
                address.address,
                if user_agent.is_empty() {
                    "no user agent"
                } else {
                    user_agent
                }
            );
            if more > 0 && i + 1 == NEW_ADDRESS_EVENTS_MAX {
                details.push_str(&format!(
                    "; and {more} more new addresses in the same moment"
                ));
            }
            Event::new(Action::TokenUsedFromNewAddress, None)
                .target("token", Some(token_id), name)
                .client_ip(&address.address)
                .details(details)
                .record(conn)?;
        }
        grown.push(token_id);
    }
    keep_most_recent(conn, Kept::Addresses, &grown)?;
    Ok(())
}

/// The user agent of a token's first use from `address` in the batch.
fn user_agent_of<'a>(batch: &'a UsageBatch, token_id: i64, address: &str) -> &'a str {
    batch
        .addresses
        .get(&token_id)
        .into_iter()
        .flatten()
        .find(|a| a.address == address)
        .map_or("", |a| a.user_agent.as_str())
}

/// Sets the token's flag to this address, unless it already shows a later one.
fn raise(
    conn: &mut AnyConnection,
    token_id: i64,
    address: &str,
    user_agent: &str,
    seen_at: NaiveDateTime,
) -> QueryResult<usize> {
    on_either!(
        conn,
        "INSERT INTO token_address_alerts (token_id, address, user_agent, seen_at) \
         VALUES (?, ?, ?, ?) ON CONFLICT (token_id) DO UPDATE SET \
         address = excluded.address, user_agent = excluded.user_agent, seen_at = excluded.seen_at \
         WHERE excluded.seen_at > token_address_alerts.seen_at",
        |q| q
            .bind::<BigInt, _>(token_id)
            .bind::<Text, _>(address)
            .bind::<Text, _>(user_agent)
            .bind::<Timestamp, _>(seen_at),
        execute
    )
}

/// Records when each scope was last exercised.
fn write_scopes(conn: &mut AnyConnection, batch: &UsageBatch) -> QueryResult<()> {
    if batch.scopes.is_empty() {
        return Ok(());
    }
    let mut rows: Vec<((i64, &str), NaiveDateTime)> = batch
        .scopes
        .iter()
        .map(|((id, scope), at)| ((*id, scope.name()), *at))
        .collect();
    rows.sort_unstable();
    match conn {
        AnyConnection::Postgresql(pg) => {
            let ids: Vec<i64> = rows.iter().map(|((id, _), _)| *id).collect();
            let names: Vec<&str> = rows.iter().map(|((_, s), _)| *s).collect();
            let ats: Vec<NaiveDateTime> = rows.iter().map(|(_, at)| *at).collect();
            diesel::sql_query(
                "INSERT INTO token_scope_uses (token_id, scope, last_exercised_at) \
                 SELECT * FROM unnest($1, $2, $3) \
                 ON CONFLICT (token_id, scope) DO UPDATE SET last_exercised_at = \
                 GREATEST(token_scope_uses.last_exercised_at, excluded.last_exercised_at)",
            )
            .bind::<Array<BigInt>, _>(&ids)
            .bind::<Array<Text>, _>(&names)
            .bind::<Array<Timestamp>, _>(&ats)
            .execute(pg)?;
        }
        AnyConnection::Sqlite(sqlite) => {
            for ((token_id, scope), at) in rows {
                diesel::sql_query(
                    "INSERT INTO token_scope_uses (token_id, scope, last_exercised_at) \
                     VALUES (?, ?, ?) ON CONFLICT (token_id, scope) DO UPDATE SET \
                     last_exercised_at = MAX(last_exercised_at, excluded.last_exercised_at)",
                )
                .bind::<BigInt, _>(token_id)
                .bind::<Text, _>(scope)
                .bind::<Timestamp, _>(at)
                .execute(sqlite)?;
            }
        }
    }
    Ok(())
}

/// One (address, user agent) pair that used a token.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = token_usage)]
pub struct UsagePair {
    pub address: String,
    /// Empty when the client sent none (or for a use recorded before user agents were kept).
    pub user_agent: String,
    pub first_seen_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
    pub use_count: i64,
}

/// A token's pairs, most recently seen first.
pub fn pairs_of(conn: &mut AnyConnection, token_id: i64) -> QueryResult<Vec<UsagePair>> {
    token_usage::table
        .filter(token_usage::token_id.eq(token_id))
        .order((
            token_usage::last_seen_at.desc(),
            token_usage::first_seen_at.desc(),
        ))
        .limit(PAIRS_KEPT)
        .select(UsagePair::as_select())
        .load(conn)
}

/// When each scope of a token was last exercised (scopes never exercised are absent).
pub fn scopes_exercised(
    conn: &mut AnyConnection,
    token_id: i64,
) -> QueryResult<HashMap<Scope, NaiveDateTime>> {
    let rows: Vec<(String, NaiveDateTime)> = scope_uses::table
        .filter(scope_uses::token_id.eq(token_id))
        .select((scope_uses::scope, scope_uses::last_exercised_at))
        .load(conn)?;
    // A scope since removed from the catalogue is simply not shown.
    Ok(rows
        .into_iter()
        .filter_map(|(name, at)| Some((name.parse().ok()?, at)))
        .collect())
}

/// The flag a new address raised on a token.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = alerts)]
pub struct AddressAlert {
    pub token_id: i64,
    pub address: String,
    pub user_agent: String,
    pub seen_at: NaiveDateTime,
}

/// The flags of these tokens (a page of a list).
pub fn alerts_of(
    conn: &mut AnyConnection,
    token_ids: &[i64],
) -> QueryResult<HashMap<i64, AddressAlert>> {
    Ok(alerts::table
        .filter(alerts::token_id.eq_any(token_ids))
        .select(AddressAlert::as_select())
        .load(conn)?
        .into_iter()
        .map(|alert| (alert.token_id, alert))
        .collect())
}

/// Lowers a token's flag; the flag it lowered, if there was one.
pub fn dismiss(
    conn: &mut AnyConnection,
    token_id: i64,
    shown: &ShownAlert,
) -> QueryResult<Dismissal> {
    let alert = alerts::table
        .find(token_id)
        .select(AddressAlert::as_select())
        .first(conn)
        .optional()?;
    let Some(alert) = alert else {
        return Ok(Dismissal::NoFlag);
    };
    if alert.address != shown.address || alert_key(alert.seen_at) != shown.seen {
        return Ok(Dismissal::Newer(alert));
    }
    // Only the flag read: one a write raised meanwhile stays.
    let lowered = diesel::delete(
        alerts::table
            .find(token_id)
            .filter(alerts::address.eq(&alert.address))
            .filter(alerts::seen_at.eq(alert.seen_at)),
    )
    .execute(conn)?;
    Ok(if lowered == 1 {
        Dismissal::Dismissed(alert)
    } else {
        Dismissal::Newer(alert)
    })
}

/// The flag a person saw and dismisses: its address and time (as [`alert_key`] writes it).
#[derive(Clone, Debug, Default)]
pub struct ShownAlert {
    pub address: String,
    pub seen: String,
}

/// How a flag's time is carried by the form that dismisses it: exactly as stored.
pub fn alert_key(seen_at: NaiveDateTime) -> String {
    seen_at.format("%Y-%m-%dT%H:%M:%S%.f").to_string()
}

/// What dismissing did.
#[derive(Debug)]
pub enum Dismissal {
    Dismissed(AddressAlert),
    /// The token's flag is not the one shown: a newer use raised it since.
    Newer(AddressAlert),
    NoFlag,
}

/// Everything a token's own page and the API show about how it is used.
#[derive(Clone, Debug)]
pub struct Insight {
    pub pairs: Vec<UsagePair>,
    /// Each scope the token holds, with when it was last exercised.
    pub scopes: Vec<ScopeExercise>,
    /// Since when scopes exercised are known for this token: its creation, or the upgrade
    /// that began recording them.
    pub exercise_known_since: NaiveDateTime,
    pub alert: Option<AddressAlert>,
}

#[derive(Clone, Copy, Debug)]
pub struct ScopeExercise {
    pub scope: Scope,
    pub last_exercised_at: Option<NaiveDateTime>,
}

impl Insight {
    /// The scopes a narrowing keeps: those exercised. Empty when none was.
    pub fn exercised(&self) -> ScopeSet {
        self.scopes
            .iter()
            .filter(|s| s.last_exercised_at.is_some())
            .map(|s| s.scope)
            .collect()
    }

    /// The scopes a narrowing removes: those held and never exercised.
    pub fn unexercised(&self) -> Vec<Scope> {
        self.scopes
            .iter()
            .filter(|s| s.last_exercised_at.is_none())
            .map(|s| s.scope)
            .collect()
    }
}

const TRACKING_SINCE_KEY: &str = "usage_tracking_since";

/// How `token` has been used.
pub fn insight(conn: &mut AnyConnection, token: &PersonalAccessToken) -> QueryResult<Insight> {
    use crate::db::schema::settings;
    let exercised = scopes_exercised(conn, token.id)?;
    let tracking_since: Option<String> = settings::table
        .filter(settings::key.eq(TRACKING_SINCE_KEY))
        .select(settings::value)
        .first(conn)
        .optional()?;
    let tracking_since = tracking_since
        .and_then(|at| NaiveDateTime::parse_from_str(&at, "%Y-%m-%d %H:%M:%S").ok())
        .unwrap_or(token.created_at);
    Ok(Insight {
        pairs: pairs_of(conn, token.id)?,
        scopes: token
            .scopes()
            .iter()
            .map(|scope| ScopeExercise {
                scope,
                last_exercised_at: exercised.get(&scope).copied(),
            })
            .collect(),
        exercise_known_since: token.created_at.max(tracking_since),
        alert: alerts_of(conn, &[token.id])?.remove(&token.id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: u32) -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2026, 11, 26)
            .unwrap()
            .and_hms_opt(12, 0, second)
            .unwrap()
    }

    #[test]
    fn a_pair_seen_again_is_counted_not_added() {
        let mut batch = UsageBatch::default();
        batch.record_pair(1, "10.0.0.1", "curl/8", at(1));
        batch.record_pair(1, "10.0.0.1", "curl/8", at(3));
        batch.record_pair(1, "10.0.0.1", "curl/8", at(2));
        let pairs = &batch.pairs[&1];
        assert_eq!(pairs.len(), 1);
        assert_eq!(
            (pairs[0].first, pairs[0].last, pairs[0].count),
            (at(1), at(3), 3)
        );
    }

    #[test]
    fn a_token_keeps_its_most_recent_pairs_whatever_arrives() {
        let mut batch = UsageBatch::default();
        for i in 0..1000u32 {
            batch.record_pair(1, "10.0.0.1", &format!("agent {i}"), at(i % 60));
        }
        assert_eq!(batch.pairs[&1].len(), PENDING_PAIRS_PER_TOKEN);
        batch.record_pair(1, "10.0.0.9", "late", at(59));
        assert!(batch.pairs[&1].iter().any(|p| p.address == "10.0.0.9"));
    }

    #[test]
    fn the_batch_stops_growing_at_its_bound() {
        let mut batch = UsageBatch::default();
        for token in 0..(PENDING_PAIRS_MAX as i64 + 500) {
            batch.record_pair(token, "10.0.0.1", "curl/8", at(1));
        }
        assert_eq!(batch.pair_count, PENDING_PAIRS_MAX);
        assert_eq!(batch.dropped, 500);
    }

    #[test]
    fn a_long_user_agent_is_cut_at_a_character_boundary() {
        let long = "é".repeat(USER_AGENT_MAX);
        let cut = clip(&long);
        assert!(cut.len() <= USER_AGENT_MAX && cut.len() >= USER_AGENT_MAX - 1);
        assert!(long.starts_with(cut));
        assert_eq!(clip("curl/8"), "curl/8");
    }

    #[test]
    fn placeholders_are_numbered_for_postgresql() {
        assert_eq!(numbered("a = ? AND b = ?"), "a = $1 AND b = $2");
    }
}
