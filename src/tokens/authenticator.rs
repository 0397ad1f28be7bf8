//! The one place a presented token is found and checked: every API route and the gateway
//! endpoint go through [`authenticate`].

use std::sync::Arc;

use actix_web::http::header::HeaderMap;
use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{
    applications, personal_access_tokens as pat, token_previous_secrets, users,
};
use crate::db::{AnyConnection, Db, DbError};
use crate::domain::{AddressAllowlist, Role, Scope, ScopeSet};
use crate::tokens::address_refusals::AddressRefusals;
use crate::tokens::cache::AuthCache;
use crate::tokens::last_used::LastUsedRecorder;
use crate::tokens::{looks_like_token, SecretUsed, TokenKind, TokenSecret};

/// The person a personal token speaks for.
#[derive(Clone, Debug)]
pub struct Person {
    pub user_id: i64,
    pub email: String,
    pub display_name: String,
    pub role: Role,
}

/// The application an application token speaks for.
#[derive(Clone, Debug)]
pub struct ApplicationIdentity {
    pub id: i64,
    pub name: String,
}

#[derive(Clone, Debug)]
pub enum Principal {
    Person(Person),
    Application(ApplicationIdentity),
}

/// Who a valid token speaks for, and what it may do right now.
#[derive(Clone, Debug)]
pub struct Authenticated {
    pub principal: Principal,
    pub token_id: i64,
    pub token_name: String,
    pub expires_at: Option<NaiveDateTime>,
    /// The token's scopes within what its owner's role (or, for an application, the policy
    /// for application tokens) allows at this moment.
    pub scopes: ScopeSet,
    /// Which of its secrets was presented.
    pub secret: SecretUsed,
    /// For the replaced secret: when its overlap ends.
    pub previous_until: Option<NaiveDateTime>,
    /// None: usable from anywhere.
    pub allowed_addresses: Option<AddressAllowlist>,
    /// The digest of the secret presented (never the secret): a token rotating itself replaces
    /// this secret only if it is still the current one.
    pub presented_digest: std::sync::Arc<str>,
    /// Where this request's exercised scopes are recorded: set on the copy a request gets,
    /// never on the one cached.
    exercised: Option<ScopeUses>,
}

/// Records the scopes a request exercised, as of the request's time.
#[derive(Clone)]
struct ScopeUses {
    recorder: Arc<LastUsedRecorder>,
    at: NaiveDateTime,
}

impl std::fmt::Debug for ScopeUses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ScopeUses({})", self.at)
    }
}

impl Authenticated {
    /// Whether the token may use `scope`; a scope it may use is recorded as exercised.
    pub fn require(&self, scope: Scope) -> Result<(), AuthFailure> {
        if self.scopes.contains(scope) {
            if let Some(uses) = &self.exercised {
                uses.recorder.record_scope(self.token_id, scope, uses.at);
            }
            Ok(())
        } else {
            Err(AuthFailure::InsufficientScope(scope))
        }
    }

    /// A token making a token passes these scopes on: they count as exercised, since what it
    /// makes uses them (narrowing the maker to its own uses would break what it makes).
    pub fn delegated(&self, scopes: ScopeSet) {
        for scope in scopes.iter() {
            // Held, or the token could not have been made: this only records it.
            let _ = self.require(scope);
        }
    }

    /// The person behind a personal token; an application token is refused, for routes that
    /// act on a person's own tokens or applications.
    pub fn person(&self) -> Result<&Person, AuthFailure> {
        match &self.principal {
            Principal::Person(person) => Ok(person),
            Principal::Application(_) => Err(AuthFailure::NotAPerson),
        }
    }

    /// The person behind a personal token that holds `scope`. An application token is refused
    /// for what it is before any scope is checked: no scope would let it act here.
    pub fn person_holding(&self, scope: Scope) -> Result<&Person, AuthFailure> {
        let person = self.person()?;
        self.require(scope)?;
        Ok(person)
    }

    pub fn kind(&self) -> TokenKind {
        match self.principal {
            Principal::Person(_) => TokenKind::Personal,
            Principal::Application(_) => TokenKind::Application,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthFailure {
    #[error("No token was presented. Send it as `Authorization: Bearer <token>`, an `x-auth-token` header, a `token` query parameter or a path segment.")]
    Missing,
    #[error("The request carries two different tokens; send exactly one.")]
    Conflicting,
    #[error("The token is malformed: its prefix, length or checksum is wrong.")]
    Malformed,
    #[error("The token is not known.")]
    Unknown,
    #[error("The token has been revoked.")]
    Revoked,
    #[error("The token has expired.")]
    Expired,
    #[error("This secret was replaced when the token was regenerated, and its overlap has ended. Use the new secret.")]
    Replaced,
    #[error("This token may not be used from {address}: its owner listed the addresses it may be used from.")]
    AddressNotAllowed {
        address: String,
        token_id: i64,
        token_name: String,
    },
    #[error("The token's owner is deactivated.")]
    OwnerDeactivated,
    #[error("The token lacks the `{0}` scope (or its owner's role no longer allows it).")]
    InsufficientScope(Scope),
    #[error("This is an application token: it speaks for an application, not a person, so it has no tokens or applications of its own to act on. Use a personal access token.")]
    NotAPerson,
    #[error("The token store is unavailable.")]
    Unavailable(#[from] DbError),
}

impl AuthFailure {
    /// A token was presented and it is not good: what a guesser sees. A missing token, a
    /// missing scope or an outage is not a guess.
    pub fn is_bad_token(&self) -> bool {
        matches!(
            self,
            AuthFailure::Conflicting
                | AuthFailure::Malformed
                | AuthFailure::Unknown
                | AuthFailure::Revoked
                | AuthFailure::Expired
                | AuthFailure::Replaced
                | AuthFailure::OwnerDeactivated
                | AuthFailure::AddressNotAllowed { .. }
        )
    }
}

/// Where to look for a token: the request's headers, and the request targets (path and
/// query) that may carry one: the request's own, and for a gateway check the original one.
pub struct TokenSources<'a> {
    pub headers: &'a HeaderMap,
    pub targets: Vec<&'a str>,
}

/// Finds the presented token, first match winning in this order: `Authorization: Bearer`,
/// `x-auth-token`, a `token` query parameter, a path segment with a valid checksum. The same
/// token twice is fine; two different ones are refused.
pub fn extract(sources: &TokenSources<'_>) -> Result<Option<String>, AuthFailure> {
    let mut found: Vec<String> = Vec::new();
    let bearer = sources
        .headers
        .get_all(actix_web::http::header::AUTHORIZATION)
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| rest.trim().to_owned())
        });
    found.extend(bearer);
    found.extend(
        sources
            .headers
            .get_all("x-auth-token")
            .filter_map(|v| v.to_str().ok())
            .map(|v| v.trim().to_owned()),
    );
    for target in &sources.targets {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        found.extend(
            query
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .filter(|(key, _)| *key == "token")
                .map(|(_, value)| value.to_owned()),
        );
        found.extend(
            path.split('/')
                .filter(|segment| looks_like_token(segment))
                .map(str::to_owned),
        );
    }
    let Some(first) = found.first() else {
        return Ok(None);
    };
    if found.iter().any(|other| other != first) {
        return Err(AuthFailure::Conflicting);
    }
    Ok(Some(first.clone()))
}

/// What a token's row says about it, whatever its kind: id, name, stored scopes, expiry,
/// revocation, allowlist.
type TokenFacts = (
    i64,
    String,
    String,
    Option<NaiveDateTime>,
    Option<NaiveDateTime>,
    Option<String>,
);

const TOKEN_FACTS: (
    pat::id,
    pat::name,
    pat::scopes,
    pat::expires_at,
    pat::revoked_at,
    pat::allowed_addresses,
) = (
    pat::id,
    pat::name,
    pat::scopes,
    pat::expires_at,
    pat::revoked_at,
    pat::allowed_addresses,
);

/// A replaced secret's token, the end of its overlap, and its own expiry and allowlist.
type ReplacedSecret = (i64, NaiveDateTime, Option<NaiveDateTime>, Option<String>);

/// How a token's row is found: by its current secret's digest, or by id once a replaced
/// secret led to it.
enum Find {
    Digest(String),
    Id(i64),
}

/// Runs `$query` (not yet filtered to one token) for the token `$find` names.
macro_rules! first_found {
    ($conn:expr, $find:expr, $query:expr) => {
        // On each backend's own connection, not through the multi-backend one: diesel then
        // keys its prepared statement by the query's type, instead of writing out its SQL on
        // every call to look the statement up. No LIMIT either: the digest and the id are
        // unique, and SQLite re-prepares a statement whose LIMIT is a bound value every time
        // it is bound (measured: four times the cost of the lookup).
        match ($find, $conn) {
            (Find::Digest(digest), AnyConnection::Sqlite(conn)) => $query
                .filter(pat::digest.eq(digest))
                .get_result(conn)
                .optional(),
            (Find::Digest(digest), AnyConnection::Postgresql(conn)) => $query
                .filter(pat::digest.eq(digest))
                .get_result(conn)
                .optional(),
            (Find::Id(id), AnyConnection::Sqlite(conn)) => {
                $query.filter(pat::id.eq(id)).get_result(conn).optional()
            }
            (Find::Id(id), AnyConnection::Postgresql(conn)) => {
                $query.filter(pat::id.eq(id)).get_result(conn).optional()
            }
        }
    };
}

/// A token's facts with its owner's: a person's email, name, role and whether they are active,
/// or an application's name and whether it is archived.
type PersonRow = (TokenFacts, (i64, String, String, String, bool));
type ApplicationRow = (TokenFacts, (i64, String, Option<NaiveDateTime>));

/// Checks presented tokens: the one authenticator of the API and the gateway check, with what it
/// keeps between requests (verified tokens, Last used times, bad-token counts). Registered once
/// as `web::Data<Authenticator>`.
pub struct Authenticator {
    pub db: Db,
    pub cache: AuthCache,
    pub last_used: Arc<LastUsedRecorder>,
    pub failures: crate::tokens::FailureThrottle,
    pub address_refusals: AddressRefusals,
    pub clock: crate::clock::Clock,
    pub counts: CheckCounts,
}

/// What a token check can end in, as counted: `ok`, or why the token was refused. The scope and
/// personal-token refusals come later, from the route, and are not token checks.
const CHECK_RESULTS: [&str; 11] = [
    "ok",
    "missing",
    "conflicting",
    "malformed",
    "unknown",
    "revoked",
    "expired",
    "replaced",
    "address_not_allowed",
    "owner_deactivated",
    "unavailable",
];

/// The counters a token check moves, each resolved once at start: counting is an atomic add.
pub struct CheckCounts {
    by_result: Vec<prometheus::IntCounter>,
    cache_hits: prometheus::IntCounter,
    cache_misses: prometheus::IntCounter,
}

impl CheckCounts {
    pub fn new(metrics: &crate::metrics::Metrics) -> Self {
        Self {
            by_result: CHECK_RESULTS
                .iter()
                .map(|result| metrics.token_checks.with_label_values(&[*result]))
                .collect(),
            cache_hits: metrics.cache_hits.clone(),
            cache_misses: metrics.cache_misses.clone(),
        }
    }

    /// Counts a check's outcome under its result: never the token, nor anything it names.
    pub fn count(&self, outcome: &Result<Authenticated, AuthFailure>) {
        let index = match outcome {
            Ok(_) => 0,
            Err(AuthFailure::Missing) => 1,
            Err(AuthFailure::Conflicting) => 2,
            Err(AuthFailure::Malformed) => 3,
            Err(AuthFailure::Unknown) => 4,
            Err(AuthFailure::Revoked) => 5,
            Err(AuthFailure::Expired) => 6,
            Err(AuthFailure::Replaced) => 7,
            Err(AuthFailure::AddressNotAllowed { .. }) => 8,
            Err(AuthFailure::OwnerDeactivated) => 9,
            Err(AuthFailure::Unavailable(_)) => 10,
            Err(AuthFailure::InsufficientScope(_) | AuthFailure::NotAPerson) => return,
        };
        self.by_result[index].inc();
    }

    fn cache_lookup(&self, hit: bool) {
        if hit {
            self.cache_hits.inc();
        } else {
            self.cache_misses.inc();
        }
    }
}

impl Authenticator {
    /// Authenticates `presented` for a request from `client`.
    pub async fn authenticate(
        &self,
        presented: Option<String>,
        client: &Client<'_>,
    ) -> Result<Authenticated, AuthFailure> {
        let now = self.clock.now();
        let outcome = authenticate(self, presented, client, now).await;
        if let Err(AuthFailure::AddressNotAllowed {
            address,
            token_id,
            token_name,
        }) = &outcome
        {
            self.address_refusals
                .note(&self.db, *token_id, token_name, address, now)
                .await;
        }
        outcome
    }
}

/// Who is presenting a token: the client's address and its `User-Agent` (empty when none).
pub struct Client<'a> {
    pub ip: &'a str,
    pub user_agent: &'a str,
}

/// Checks a presented token against the store. A malformed one is refused before any
/// database work; a valid one's use is recorded for Last used and usage.
async fn authenticate(
    authenticator: &Authenticator,
    presented: Option<String>,
    client: &Client<'_>,
    now: NaiveDateTime,
) -> Result<Authenticated, AuthFailure> {
    let Authenticator {
        db,
        cache,
        last_used,
        counts,
        ..
    } = authenticator;
    let client_ip = client.ip;
    let recorded = |mut auth: Authenticated| {
        last_used.record(
            auth.token_id,
            auth.secret,
            now,
            client_ip,
            client.user_agent,
        );
        auth.exercised = Some(ScopeUses {
            recorder: Arc::clone(last_used),
            at: now,
        });
        auth
    };
    let presented = presented.ok_or(AuthFailure::Missing)?;
    let secret = TokenSecret::parse(&presented).ok_or(AuthFailure::Malformed)?;
    let digest = secret.digest();
    let generation = db.cache_generation();
    let cached = cache.get(&digest.0, generation);
    if cache.is_on() {
        counts.cache_lookup(cached.is_some());
    }
    if let Some(auth) = cached {
        check_use(&auth, client_ip, now)?;
        return Ok(recorded(auth));
    }
    let cache_key = digest.0.clone();
    let kind = secret.kind();
    let (found, secret_used, previous_until) =
        match load(db, kind, Find::Digest(digest.0.clone())).await? {
            Some(found) => (found, SecretUsed::Current, None),
            None => {
                // Not a current secret: perhaps one a regenerate replaced, in its overlap.
                let replaced: Option<ReplacedSecret> = db
                    .read(move |conn| {
                        token_previous_secrets::table
                            .filter(token_previous_secrets::digest.eq(&digest.0))
                            .select((
                                token_previous_secrets::token_id,
                                token_previous_secrets::valid_until,
                                token_previous_secrets::expires_at,
                                token_previous_secrets::allowed_addresses,
                            ))
                            .first(conn)
                            .optional()
                    })
                    .await?;
                let (token_id, valid_until, expires_at, allowed_addresses) =
                    replaced.ok_or(AuthFailure::Unknown)?;
                if valid_until <= now {
                    return Err(AuthFailure::Replaced);
                }
                let mut found = load(db, kind, Find::Id(token_id))
                    .await?
                    .ok_or(AuthFailure::Unknown)?;
                // The replaced secret keeps the bounds it had, not the new secret's.
                (found.facts.3, found.facts.5) = (expires_at, allowed_addresses);
                (found, SecretUsed::Previous, Some(valid_until))
            }
        };
    let Loaded {
        facts,
        principal,
        owner_active,
        allowed,
    } = found;
    check_lifetime(&facts, now)?;
    if !owner_active {
        return Err(match principal {
            Principal::Person(_) => AuthFailure::OwnerDeactivated,
            // Archiving revokes every token of the application in the same transaction.
            Principal::Application(_) => AuthFailure::Revoked,
        });
    }
    let (token_id, token_name, scopes, expires_at, _, allowed_addresses) = facts;
    let auth = Authenticated {
        principal,
        token_id,
        token_name,
        expires_at,
        scopes: ScopeSet::from_stored(&scopes).intersection(allowed),
        secret: secret_used,
        previous_until,
        allowed_addresses: allowed_addresses
            .as_deref()
            .map(AddressAllowlist::from_stored),
        presented_digest: cache_key.as_str().into(),
        exercised: None,
    };
    cache.put(cache_key, auth.clone(), generation);
    check_use(&auth, client_ip, now)?;
    Ok(recorded(auth))
}

/// What a token's row and its owner's say, found one way or the other.
struct Loaded {
    facts: TokenFacts,
    principal: Principal,
    /// A person active, an application not archived.
    owner_active: bool,
    /// What the owner's role, or the policy for applications, allows now.
    allowed: ScopeSet,
}

/// Reads a token with its owner, in one statement whatever its kind.
async fn load(db: &Db, kind: TokenKind, find: Find) -> Result<Option<Loaded>, DbError> {
    match kind {
        TokenKind::Personal => {
            let row: Option<PersonRow> = db
                .read(move |conn| {
                    first_found!(
                        conn,
                        find,
                        pat::table.inner_join(users::table).select((
                            TOKEN_FACTS,
                            (
                                users::id,
                                users::email,
                                users::display_name,
                                users::role,
                                users::is_active,
                            ),
                        ))
                    )
                })
                .await?;
            Ok(
                row.map(|(facts, (user_id, email, display_name, role, active))| {
                    let role: Role = role.parse().unwrap_or(Role::User);
                    Loaded {
                        facts,
                        principal: Principal::Person(Person {
                            user_id,
                            email,
                            display_name,
                            role,
                        }),
                        owner_active: active,
                        allowed: ScopeSet::allowed_for(role),
                    }
                }),
            )
        }
        TokenKind::Application => {
            // The policy's scopes for application tokens come in the same statement: one round
            // trip, as for a personal token.
            let found: Option<(ApplicationRow, Option<String>)> = db
                .read(move |conn| {
                    first_found!(
                        conn,
                        find,
                        pat::table.inner_join(applications::table).select((
                            (
                                TOKEN_FACTS,
                                (
                                    applications::id,
                                    applications::name,
                                    applications::archived_at,
                                ),
                            ),
                            crate::policy::application_scopes_setting(),
                        ))
                    )
                })
                .await?;
            Ok(
                found.map(|((facts, (id, name, archived_at)), stored)| Loaded {
                    facts,
                    principal: Principal::Application(ApplicationIdentity { id, name }),
                    owner_active: archived_at.is_none(),
                    allowed: crate::policy::application_scopes_from(stored.as_deref()),
                }),
            )
        }
    }
}

/// What is checked on every use, cached or not: time (expiry, the end of an overlap) and the
/// address.
fn check_use(auth: &Authenticated, client_ip: &str, now: NaiveDateTime) -> Result<(), AuthFailure> {
    if auth.expires_at.is_some_and(|at| at <= now) {
        return Err(AuthFailure::Expired);
    }
    if auth.previous_until.is_some_and(|at| at <= now) {
        return Err(AuthFailure::Replaced);
    }
    if let Some(allowed) = &auth.allowed_addresses {
        if !allowed.allows(client_ip) {
            return Err(AuthFailure::AddressNotAllowed {
                address: client_ip.to_owned(),
                token_id: auth.token_id,
                token_name: auth.token_name.clone(),
            });
        }
    }
    Ok(())
}

/// Revoked or expired: refused whoever owns it.
fn check_lifetime(facts: &TokenFacts, now: NaiveDateTime) -> Result<(), AuthFailure> {
    let (_, _, _, expires_at, revoked_at, _) = facts;
    if revoked_at.is_some() {
        return Err(AuthFailure::Revoked);
    }
    if expires_at.is_some_and(|at| at <= now) {
        return Err(AuthFailure::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_static(name),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn find(
        pairs: &[(&'static str, &str)],
        targets: &[&str],
    ) -> Result<Option<String>, AuthFailure> {
        let headers = headers(pairs);
        extract(&TokenSources {
            headers: &headers,
            targets: targets.to_vec(),
        })
    }

    #[test]
    fn finds_the_token_in_each_place() {
        let t = TokenSecret::generate();
        let t = t.expose();
        let bearer = format!("Bearer {t}");
        assert_eq!(
            find(&[("authorization", &bearer)], &["/x"])
                .unwrap()
                .as_deref(),
            Some(t)
        );
        assert_eq!(
            find(&[("x-auth-token", t)], &["/x"]).unwrap().as_deref(),
            Some(t)
        );
        assert_eq!(
            find(&[], &[&format!("/x?a=1&token={t}")])
                .unwrap()
                .as_deref(),
            Some(t)
        );
        assert_eq!(
            find(&[], &[&format!("/{t}/api/v0/add")])
                .unwrap()
                .as_deref(),
            Some(t)
        );
        assert_eq!(
            find(&[], &[&format!("/ext/bc/C/rpc/{t}")])
                .unwrap()
                .as_deref(),
            Some(t)
        );
        assert_eq!(find(&[], &["/api/v1/me"]).unwrap(), None);
        assert_eq!(
            find(&[("authorization", "Basic dXNlcjpwdw==")], &["/"]).unwrap(),
            None
        );
    }

    #[test]
    fn the_same_token_twice_is_fine_two_different_ones_are_not() {
        let a = TokenSecret::generate();
        let b = TokenSecret::generate();
        let bearer = format!("Bearer {}", a.expose());
        let same = find(
            &[("authorization", &bearer), ("x-auth-token", a.expose())],
            &["/"],
        );
        assert_eq!(same.unwrap().as_deref(), Some(a.expose()));
        let both = find(
            &[("authorization", &bearer)],
            &[&format!("/?token={}", b.expose())],
        );
        assert!(matches!(both, Err(AuthFailure::Conflicting)));
    }

    #[test]
    fn a_malformed_header_token_is_still_found_so_it_can_be_refused() {
        // A path segment must be a valid token to count; a header is taken as given.
        assert_eq!(
            find(&[("x-auth-token", "tdk_nope")], &["/"])
                .unwrap()
                .as_deref(),
            Some("tdk_nope")
        );
        assert_eq!(find(&[], &["/tdk_nope/api"]).unwrap(), None);
    }
}
