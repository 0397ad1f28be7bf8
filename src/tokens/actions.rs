//! Changing tokens, with the audit event in the same transaction. The pages and the JSON API
//! both call these, so they behave and audit the same.
//!
//! What a new or regenerated token is checked against (the owner's role and status, the token
//! policy, the owner's other tokens) is read inside the transaction that writes it, under
//! [`Lock::TokensOf`] the owner (which role changes and deactivation take too) and
//! [`Lock::Policy`] shared (which saving the policy takes exclusively). A change that commits
//! first is seen; one that commits later waits for the token.

use chrono::{NaiveDateTime, Utc};

use crate::audit::{Action, Event};
use crate::db::{lock, lock_shared, refuse, Abort, AnyConnection, Db, DbError, Lock};
use crate::domain::Policy;
use crate::domain::{Expiry, Scope, ScopeSet, TokenRequest};
use crate::tokens::inventory::{self, InventoryFilter};
use crate::tokens::{store, CreatedToken, PersonalAccessToken, TokenStatus, TokenStoreError};
use crate::users::{self, User};

pub use crate::audit::Actor;

/// Where a create request comes from.
#[derive(Clone, Debug)]
pub enum Origin {
    /// The signed-in owner, in the portal.
    Portal,
    /// Another token of the owner's, through the API: what it makes may hold none of the scopes
    /// it lacks and may not outlive it.
    Token {
        id: i64,
        name: String,
        scopes: ScopeSet,
        expires_at: Option<NaiveDateTime>,
    },
}

/// Why a token was not made.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(
        "You already have an active token named “{0}”. Choose another name, or revoke that one."
    )]
    NameTaken(String),
    #[error("Your account is deactivated.")]
    OwnerInactive,
    #[error("Your role ({role}) does not allow: {scopes}.")]
    RoleForbids { role: String, scopes: String },
    #[error("Your organisation requires tokens to expire within {0} days.")]
    BeyondPolicy(i64),
    #[error("You hold {held} active tokens, and your organisation allows {allowed}. Revoke one you no longer need first.")]
    TooMany { held: i64, allowed: i64 },
    #[error("A token can only grant scopes it holds itself; this one lacks: {0}.")]
    BeyondCreatorScopes(String),
    #[error("A token cannot make a token that outlives it: choose an expiry on or before {0}.")]
    OutlivesCreator(String),
    #[error("The token is revoked.")]
    Revoked,
    #[error("The token making this request is no longer active.")]
    CreatorInactive,
    #[error("You are no longer allowed to do this.")]
    NotAllowed,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl TokenError {
    /// The form field the refusal is about, if any.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            TokenError::NameTaken(_) => Some("name"),
            // Not one field's fault: the form as a whole.
            TokenError::TooMany { .. } => Some("form"),
            TokenError::RoleForbids { .. } | TokenError::BeyondCreatorScopes(_) => Some("scopes"),
            TokenError::BeyondPolicy(_) | TokenError::OutlivesCreator(_) => Some("expires_in"),
            TokenError::OwnerInactive
            | TokenError::Revoked
            | TokenError::CreatorInactive
            | TokenError::NotAllowed
            | TokenError::Db(_) => None,
        }
    }
}

/// What the audit trail records about a token: never its secret.
pub fn details(token: &PersonalAccessToken, owner_email: &str) -> String {
    let expires = token.expires_at.map_or_else(
        || "never".to_owned(),
        |at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    );
    format!(
        "owner={owner_email}; scopes={}; expires={expires}",
        token.scopes().to_stored()
    )
}

fn names(scopes: ScopeSet) -> String {
    scopes
        .iter()
        .map(Scope::name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Locks the owner's tokens and the policy, and reads both afresh.
fn locked_owner(
    conn: &mut AnyConnection,
    owner_id: i64,
) -> Result<(User, Policy), Abort<TokenError>> {
    lock(conn, Lock::TokensOf(owner_id))?;
    lock_shared(conn, Lock::Policy)?;
    let owner = users::find(conn, owner_id)?.ok_or(diesel::result::Error::NotFound)?;
    if !owner.is_active {
        return refuse(TokenError::OwnerInactive);
    }
    Ok((owner, crate::policy::load(conn)?))
}

/// The rules every token that becomes active meets, read under the locks.
fn check(
    conn: &mut AnyConnection,
    owner: &User,
    policy: &Policy,
    scopes: ScopeSet,
    expiry: Expiry,
    reviving: bool,
) -> Result<(), Abort<TokenError>> {
    let forbidden = scopes.difference(ScopeSet::allowed_for(owner.role()));
    if !forbidden.is_empty() {
        return refuse(TokenError::RoleForbids {
            role: owner.role().to_string(),
            scopes: names(forbidden),
        });
    }
    if !policy.allows(expiry, Utc::now().naive_utc()) {
        return refuse(TokenError::BeyondPolicy(
            policy.max_lifetime_days.unwrap_or_default(),
        ));
    }
    if reviving {
        let held = store::count_active(conn, owner.id)?;
        if held >= policy.max_active_tokens {
            return refuse(TokenError::TooMany {
                held,
                allowed: policy.max_active_tokens,
            });
        }
    }
    Ok(())
}

/// A token making a token: still active (read under the owner's lock, which revoking takes
/// too), and what it makes stays within its own scopes and life.
fn check_origin(
    conn: &mut AnyConnection,
    owner_id: i64,
    origin: &Origin,
    request: &TokenRequest,
) -> Result<(), Abort<TokenError>> {
    let Origin::Token {
        id,
        scopes,
        expires_at,
        ..
    } = origin
    else {
        return Ok(());
    };
    if !store::is_active_locked(conn, owner_id, *id)? {
        return refuse(TokenError::CreatorInactive);
    }
    let lacking = request.scopes.difference(*scopes);
    if !lacking.is_empty() {
        return refuse(TokenError::BeyondCreatorScopes(names(lacking)));
    }
    if let Some(limit) = expires_at {
        let outlives = match request.expiry {
            Expiry::Never => true,
            Expiry::At(at) => at > *limit,
        };
        if outlives {
            return refuse(TokenError::OutlivesCreator(
                limit.format("%Y-%m-%d %H:%M UTC").to_string(),
            ));
        }
    }
    Ok(())
}

/// Creates a token owned by the actor.
pub async fn create(
    db: &Db,
    actor: Actor,
    request: TokenRequest,
    origin: Origin,
) -> Result<CreatedToken, TokenError> {
    db.transact(move |conn| {
        let (owner, policy) = locked_owner(conn, actor.user_id)?;
        check(conn, &owner, &policy, request.scopes, request.expiry, true)?;
        check_origin(conn, owner.id, &origin, &request)?;
        let created = match store::create(conn, owner.id, &request) {
            Ok(created) => created,
            Err(TokenStoreError::NameTaken) => return refuse(TokenError::NameTaken(request.name)),
            Err(TokenStoreError::Query(e)) => return Err(e.into()),
        };
        let mut details = details(&created.token, &owner.email);
        if let Origin::Token { id, name, .. } = &origin {
            details.push_str(&format!("; made by token #{id} ({name})"));
        }
        Event::by(Action::TokenCreated, &actor)
            .target("token", Some(created.token.id), &created.token.name)
            .details(details)
            .record(conn)?;
        Ok(created)
    })
    .await
}

/// Anyone but a token's owner revokes it as an admin, and must still be one
/// (see [`users::still_admin`]).
fn lock_as_admin(conn: &mut AnyConnection, actor: &Actor) -> Result<(), Abort<TokenError>> {
    if !users::still_admin(conn, actor.user_id)? {
        return refuse(TokenError::NotAllowed);
    }
    Ok(())
}

/// Revokes `token` (owned by `owner_email`); false when it was already revoked.
pub async fn revoke(
    db: &Db,
    actor: Actor,
    token: &PersonalAccessToken,
    owner_email: &str,
) -> Result<bool, TokenError> {
    let (token_id, owner_id, name) = (token.id, token.user_id, token.name.clone());
    let details = details(token, owner_email);
    db.transact(move |conn| {
        if actor.user_id != owner_id {
            lock_as_admin(conn, &actor)?;
        }
        let revoked = store::revoke(conn, token_id, actor.user_id)?;
        if revoked {
            Event::by(Action::TokenRevoked, &actor)
                .target("token", Some(token_id), &name)
                .details(details)
                .record(conn)?;
        }
        Ok(revoked)
    })
    .await
}

/// Revokes every token `filter` matches, as an admin, if they are no more than the `expected`
/// the admin confirmed; `None` when the selection grew meanwhile. One statement revokes them
/// all; each gets its audit event.
pub async fn revoke_matching(
    db: &Db,
    actor: Actor,
    filter: InventoryFilter,
    expected: usize,
) -> Result<Option<usize>, TokenError> {
    db.transact(move |conn| {
        lock_as_admin(conn, &actor)?;
        let rows = inventory::revocable(conn, &filter)?;
        if rows.len() > expected {
            return Ok(None);
        }
        let ids: Vec<i64> = rows.iter().map(|row| row.token.id).collect();
        let revoked = inventory::revoke_many(conn, &ids, actor.user_id)?;
        for row in &rows {
            Event::by(Action::TokenRevoked, &actor)
                .target("token", Some(row.token.id), &row.token.name)
                .details(format!("{}; bulk", details(&row.token, &row.owner_email)))
                .record(conn)?;
        }
        Ok(Some(revoked))
    })
    .await
}

/// The expiry a regenerated token gets.
#[derive(Clone, Copy, Debug)]
pub enum NewExpiry {
    Chosen(Expiry),
    /// As long from now as the token was given last time (a token rotating itself).
    SameLength,
}

/// A new secret for one of the actor's tokens, with a new expiry.
pub async fn regenerate(
    db: &Db,
    actor: Actor,
    token_id: i64,
    expiry: NewExpiry,
) -> Result<CreatedToken, TokenError> {
    db.transact(move |conn| {
        let (owner, policy) = locked_owner(conn, actor.user_id)?;
        let token =
            store::find_owned(conn, owner.id, token_id)?.ok_or(diesel::result::Error::NotFound)?;
        let now = Utc::now().naive_utc();
        let reviving = token.status(now) == TokenStatus::Expired;
        if token.status(now) == TokenStatus::Revoked {
            return refuse(TokenError::Revoked);
        }
        let expiry = match expiry {
            NewExpiry::Chosen(expiry) => expiry,
            NewExpiry::SameLength => Expiry::lasting_as_long_as(
                token.regenerated_at.unwrap_or(token.created_at),
                token.expires_at,
                now,
            ),
        };
        check(conn, &owner, &policy, token.scopes(), expiry, reviving)?;
        let created = match store::regenerate(conn, &token, expiry) {
            Ok(Some(created)) => created,
            Ok(None) => return refuse(TokenError::Revoked),
            Err(TokenStoreError::NameTaken) => return refuse(TokenError::NameTaken(token.name)),
            Err(TokenStoreError::Query(e)) => return Err(e.into()),
        };
        Event::by(Action::TokenRegenerated, &actor)
            .target("token", Some(created.token.id), &created.token.name)
            .details(details(&created.token, &owner.email))
            .record(conn)?;
        Ok(created)
    })
    .await
}
