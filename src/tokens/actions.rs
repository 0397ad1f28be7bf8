//! Changing tokens, a person's or an application's, with the audit event in the same
//! transaction. The pages and the JSON API both call these, so they behave and audit the same.
//!
//! What a new or regenerated token is checked against (the owner's role and status, the token
//! policy, the owner's other tokens) is read inside the transaction that writes it, under
//! [`Lock::TokensOf`] the person acting (which role changes and deactivation take too), for an
//! application's token [`Lock::Application`] (which maintainer changes and archiving take), and
//! [`Lock::Policy`] shared (which saving the policy takes exclusively). A change that commits
//! first is seen; one that commits later waits for the token.

use chrono::{NaiveDateTime, Utc};

use crate::applications::{self, Application};
use crate::audit::{Action, Event};
use crate::db::{lock, lock_shared, refuse, Abort, AnyConnection, Db, DbError, Lock};
use crate::domain::Policy;
use crate::domain::{AddressAllowlist, Expiry, Overlap, Scope, ScopeSet, TokenRequest};
use crate::notifications::{self, Notice, Outbox, Revocation};
use crate::tokens::inventory::{self, InventoryFilter};
use crate::tokens::store::TokenOwner;
use crate::tokens::usage::{self, Dismissal, ShownAlert};
use crate::tokens::{
    store, CreatedToken, PersonalAccessToken, Renewal, TokenKind, TokenStatus, TokenStoreError,
};
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
        /// Where the making token may be used from: what it makes may be used only within it.
        allowed_addresses: Option<AddressAllowlist>,
    },
}

/// Why a token was not made.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(
        "You already have an active token named “{0}”. Choose another name, or revoke that one."
    )]
    NameTaken(String),
    #[error("This application already has an active token named “{0}”. Choose another name, or revoke that one.")]
    ApplicationNameTaken(String),
    #[error("Your organisation does not allow application tokens to hold: {0}.")]
    ApplicationScopesForbid(String),
    #[error("This application holds {held} active tokens, and your organisation allows {allowed}. Revoke one it no longer needs first.")]
    ApplicationFull { held: i64, allowed: i64 },
    #[error("No such application.")]
    NoSuchApplication,
    #[error("The application is archived; its tokens cannot change.")]
    ApplicationArchived,
    #[error("Your account is deactivated.")]
    OwnerInactive,
    #[error("Your role ({role}) does not allow: {scopes}.")]
    RoleForbids { role: String, scopes: String },
    #[error("Only an application token can hold {0}: make one for the application that needs it.")]
    ApplicationOnly(String),
    #[error(
        "Only an admin, signed in to the portal, can give an application token {0} (or renew its secret): it administers tokendesk's members."
    )]
    AdminGrantsOnly(String),
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
    #[error(
        "Your organisation requires a token holding {0} to list the addresses it may be used from."
    )]
    AllowlistRequired(String),
    #[error("The secret presented is no longer the token's current one: another rotation replaced it first.")]
    SecretReplaced,
    #[error("A token rotating itself can only narrow its allowlist ({0}); its owner widens it in the portal.")]
    AllowlistWidened(String),
    #[error("A token with an allowlist can only make tokens used from within it: list addresses within {0}.")]
    BeyondCreatorAddresses(String),
    #[error("This token has not exercised any of its scopes yet: narrowing would leave it none. Revoke it if nothing uses it.")]
    NothingExercised,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl TokenError {
    /// The form field the refusal is about, if any.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            TokenError::NameTaken(_) | TokenError::ApplicationNameTaken(_) => Some("name"),
            // Not one field's fault: the form as a whole.
            TokenError::TooMany { .. } | TokenError::ApplicationFull { .. } => Some("form"),
            TokenError::RoleForbids { .. }
            | TokenError::ApplicationOnly(_)
            | TokenError::AdminGrantsOnly(_)
            | TokenError::BeyondCreatorScopes(_)
            | TokenError::ApplicationScopesForbid(_) => Some("scopes"),
            TokenError::BeyondPolicy(_) | TokenError::OutlivesCreator(_) => Some("expires_in"),
            TokenError::AllowlistRequired(_)
            | TokenError::AllowlistWidened(_)
            | TokenError::BeyondCreatorAddresses(_) => Some("allowed_addresses"),
            TokenError::OwnerInactive
            | TokenError::NoSuchApplication
            | TokenError::ApplicationArchived
            | TokenError::Revoked
            | TokenError::SecretReplaced
            | TokenError::CreatorInactive
            | TokenError::NotAllowed
            | TokenError::NothingExercised
            | TokenError::Db(_) => None,
        }
    }
}

/// What the audit trail records about a token: never its secret. `owner`: the owner's email,
/// or the application's name.
pub fn details(token: &PersonalAccessToken, owner: &str) -> String {
    let expires = token.expires_at.map_or_else(
        || "never".to_owned(),
        |at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    );
    let whose = match token.kind() {
        TokenKind::Personal => "owner",
        TokenKind::Application => "application",
    };
    format!(
        "{whose}={owner}; scopes={}; expires={expires}",
        token.scopes().to_stored()
    )
}

/// The audit action of a token change, by the token's kind.
fn token_action(kind: TokenKind, personal: Action) -> Action {
    match (kind, personal) {
        (TokenKind::Personal, action) => action,
        (TokenKind::Application, Action::TokenCreated) => Action::ApplicationTokenCreated,
        (TokenKind::Application, Action::TokenRegenerated) => Action::ApplicationTokenRegenerated,
        (TokenKind::Application, _) => Action::ApplicationTokenRevoked,
    }
}

fn names(scopes: ScopeSet) -> String {
    scopes
        .iter()
        .map(Scope::name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whose token a change is for, read afresh under the locks.
enum Holder {
    Person(User),
    Application(Application),
}

impl Holder {
    fn owner(&self) -> TokenOwner {
        match self {
            Holder::Person(user) => TokenOwner::Person(user.id),
            Holder::Application(application) => TokenOwner::Application(application.id),
        }
    }

    /// How the audit trail names the owner.
    fn label(&self) -> &str {
        match self {
            Holder::Person(user) => &user.email,
            Holder::Application(application) => &application.name,
        }
    }
}

/// Takes the locks a change of `owner`'s tokens by `actor` needs, and reads the owner, the
/// actor's right to act and the policy afresh. A person's tokens are changed by that person
/// only; an application's by an active admin or an active maintainer, while it is not archived.
fn lock_holder(
    conn: &mut AnyConnection,
    actor: &Actor,
    owner: TokenOwner,
) -> Result<(Holder, Policy), Abort<TokenError>> {
    lock(conn, Lock::TokensOf(actor.user_id))?;
    let holder = match owner {
        TokenOwner::Person(user_id) => {
            if user_id != actor.user_id {
                return refuse(TokenError::NotAllowed);
            }
            lock_shared(conn, Lock::Policy)?;
            let user = users::find(conn, user_id)?.ok_or(diesel::result::Error::NotFound)?;
            if !user.is_active {
                return refuse(TokenError::OwnerInactive);
            }
            Holder::Person(user)
        }
        TokenOwner::Application(application_id) => {
            lock(conn, Lock::Application(application_id))?;
            lock_shared(conn, Lock::Policy)?;
            let Some(application) = applications::find(conn, application_id)? else {
                return refuse(TokenError::NoSuchApplication);
            };
            if application.is_archived() {
                return refuse(TokenError::ApplicationArchived);
            }
            let user = users::find(conn, actor.user_id)?.ok_or(diesel::result::Error::NotFound)?;
            if !applications::may_manage(conn, &application, &user)? {
                return refuse(TokenError::NotAllowed);
            }
            Holder::Application(application)
        }
    };
    Ok((holder, crate::policy::load(conn)?))
}

/// The rules every token that becomes active meets, read under the locks: a person's token
/// within their role and the policy, an application's within the policy for applications.
/// What a token about to become active will be: the facts its rules are about.
struct Becoming<'a> {
    scopes: ScopeSet,
    expiry: Expiry,
    allowed_addresses: Option<&'a AddressAllowlist>,
    /// Made now, or an expired one coming back: it counts toward the active-token limit.
    reviving: bool,
}

fn check(
    conn: &mut AnyConnection,
    holder: &Holder,
    policy: &Policy,
    becoming: Becoming<'_>,
) -> Result<(), Abort<TokenError>> {
    let Becoming {
        scopes,
        expiry,
        allowed_addresses,
        reviving,
    } = becoming;
    let needing = policy.scopes_needing_allowlist(scopes);
    if allowed_addresses.is_none() && !needing.is_empty() {
        return refuse(TokenError::AllowlistRequired(needing.join(", ")));
    }
    let rules = match holder {
        Holder::Person(owner) => {
            let forbidden = scopes.difference(ScopeSet::allowed_for(owner.role()));
            let for_applications = ScopeSet::application_only().intersection(forbidden);
            if !for_applications.is_empty() {
                return refuse(TokenError::ApplicationOnly(names(for_applications)));
            }
            if !forbidden.is_empty() {
                return refuse(TokenError::RoleForbids {
                    role: owner.role().to_string(),
                    scopes: names(forbidden),
                });
            }
            policy.clone()
        }
        Holder::Application(_) => {
            let forbidden = scopes.difference(policy.application_scopes);
            if !forbidden.is_empty() {
                return refuse(TokenError::ApplicationScopesForbid(names(forbidden)));
            }
            policy.for_applications()
        }
    };
    if !rules.allows(expiry, Utc::now().naive_utc()) {
        return refuse(TokenError::BeyondPolicy(
            rules.max_lifetime_days.unwrap_or_default(),
        ));
    }
    if reviving {
        let held = store::count_active(conn, holder.owner())?;
        if held >= policy.max_active_tokens {
            let allowed = policy.max_active_tokens;
            return refuse(match holder {
                Holder::Person(_) => TokenError::TooMany { held, allowed },
                Holder::Application(_) => TokenError::ApplicationFull { held, allowed },
            });
        }
    }
    Ok(())
}

/// Scopes that administer tokendesk itself are given to an application only by an admin signed
/// in to the portal: not by a maintainer (who may otherwise give an application any scope the
/// policy allows), nor through the API by a token (a leaked admin token with
/// `applicationToken:write` must not become member administration). Checked when such a token
/// is made and when its secret is renewed. The actor's role is read under their tokens' lock,
/// which a role change takes too (not the members lock, which a role change takes before it:
/// taking it here, after, could deadlock).
fn check_grant(
    conn: &mut AnyConnection,
    holder: &Holder,
    actor: &Actor,
    scopes: ScopeSet,
    origin: &Origin,
) -> Result<(), Abort<TokenError>> {
    let administering = ScopeSet::application_only().intersection(scopes);
    if !matches!(holder, Holder::Application(_)) || administering.is_empty() {
        return Ok(());
    }
    let admin = users::find(conn, actor.user_id)?.is_some_and(|u| u.is_active && u.is_admin());
    if !admin || !matches!(origin, Origin::Portal) {
        return refuse(TokenError::AdminGrantsOnly(names(administering)));
    }
    Ok(())
}

fn name_taken(holder: &Holder, name: String) -> TokenError {
    match holder {
        Holder::Person(_) => TokenError::NameTaken(name),
        Holder::Application(_) => TokenError::ApplicationNameTaken(name),
    }
}

/// A token making a token: still active (read under the owner's lock, which revoking takes
/// too), and a personal token it makes stays within its own scopes and life. (An application
/// token is bounded by the policy for applications instead, whoever makes it.)
fn check_origin(
    conn: &mut AnyConnection,
    actor_id: i64,
    owner: TokenOwner,
    origin: &Origin,
    request: &TokenRequest,
) -> Result<(), Abort<TokenError>> {
    let Origin::Token {
        id,
        scopes,
        expires_at,
        allowed_addresses,
        ..
    } = origin
    else {
        return Ok(());
    };
    if !store::is_active_locked(conn, actor_id, *id)? {
        return refuse(TokenError::CreatorInactive);
    }
    if let Some(bound) = allowed_addresses {
        let within = request
            .allowed_addresses
            .as_ref()
            .is_some_and(|list| list.within(bound));
        if !within {
            return refuse(TokenError::BeyondCreatorAddresses(bound.to_string()));
        }
    }
    if owner.kind() == TokenKind::Application {
        return Ok(());
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

/// Creates a token for `owner`: the actor themself, or an application they may manage. Its
/// owner (an application's maintainers) is mailed, when mail is on.
pub async fn create(
    db: &Db,
    outbox: Outbox,
    actor: Actor,
    owner: TokenOwner,
    request: TokenRequest,
    origin: Origin,
) -> Result<CreatedToken, TokenError> {
    db.transact(move |conn| {
        let (holder, policy) = lock_holder(conn, &actor, owner)?;
        check_grant(conn, &holder, &actor, request.scopes, &origin)?;
        let becoming = Becoming {
            scopes: request.scopes,
            expiry: request.expiry,
            allowed_addresses: request.allowed_addresses.as_ref(),
            reviving: true,
        };
        check(conn, &holder, &policy, becoming)?;
        check_origin(conn, actor.user_id, owner, &origin, &request)?;
        let created = match store::create(conn, owner, actor.user_id, &request) {
            Ok(created) => created,
            Err(TokenStoreError::NameTaken) => return refuse(name_taken(&holder, request.name)),
            Err(TokenStoreError::Query(e)) => return Err(e.into()),
        };
        let mut details = details(&created.token, holder.label());
        if let Origin::Token { id, name, .. } = &origin {
            details.push_str(&format!("; made by token #{id} ({name})"));
        }
        Event::by(token_action(owner.kind(), Action::TokenCreated), &actor)
            .target("token", Some(created.token.id), &created.token.name)
            .details(details)
            .record(conn)?;
        let now = Utc::now().naive_utc();
        notifications::enqueue(
            conn,
            outbox,
            created.token.id,
            &Notice::TokenCreated,
            None,
            now,
        )?;
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

/// Revokes `token` (owned by `owner`: an email, or an application's name); false when it was
/// already revoked. A person revokes their own tokens, an admin anyone's, a maintainer their
/// application's. Its holder is mailed when someone else revoked it (and mail is on).
pub async fn revoke(
    db: &Db,
    outbox: Outbox,
    actor: Actor,
    token: &PersonalAccessToken,
    owner: &str,
) -> Result<bool, TokenError> {
    let (token_id, token_owner, name) = (token.id, token.owner(), token.name.clone());
    let details = details(token, owner);
    db.transact(move |conn| {
        match token_owner {
            TokenOwner::Person(owner_id) if owner_id == actor.user_id => {}
            TokenOwner::Person(_) => lock_as_admin(conn, &actor)?,
            TokenOwner::Application(application_id) => {
                lock(conn, Lock::TokensOf(actor.user_id))?;
                lock(conn, Lock::Application(application_id))?;
                let user = users::find(conn, actor.user_id)?;
                let application = applications::find(conn, application_id)?;
                let allowed = match (user, application) {
                    (Some(user), Some(application)) => {
                        // Archiving revoked its tokens already; an admin may still tidy up.
                        user.is_active
                            && (user.is_admin()
                                || applications::may_manage(conn, &application, &user)?)
                    }
                    _ => false,
                };
                if !allowed {
                    return refuse(TokenError::NotAllowed);
                }
            }
        }
        let revoked = store::revoke(conn, token_id, actor.user_id)?;
        if revoked {
            Event::by(
                token_action(token_owner.kind(), Action::TokenRevoked),
                &actor,
            )
            .target("token", Some(token_id), &name)
            .details(details)
            .record(conn)?;
            let notice = Notice::TokenRevokedByAdmin {
                how: Revocation::Admin {
                    email: actor.email.clone(),
                },
            };
            let now = Utc::now().naive_utc();
            notifications::enqueue(conn, outbox, token_id, &notice, Some(actor.user_id), now)?;
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
    outbox: Outbox,
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
        let notice = Notice::TokenRevokedByAdmin {
            how: Revocation::Bulk {
                email: actor.email.clone(),
            },
        };
        let now = Utc::now().naive_utc();
        for row in &rows {
            notifications::enqueue(
                conn,
                outbox,
                row.token.id,
                &notice,
                Some(actor.user_id),
                now,
            )?;
            Event::by(token_action(row.token.kind(), Action::TokenRevoked), &actor)
                .target("token", Some(row.token.id), &row.token.name)
                .details(format!("{}; bulk", details(&row.token, row.owner_label())))
                .record(conn)?;
        }
        Ok(Some(revoked))
    })
    .await
}

/// What a regenerate asks for besides a new secret.
#[derive(Clone, Debug)]
pub struct Rotation {
    pub expiry: NewExpiry,
    /// How long the replaced secret keeps working.
    pub overlap: Overlap,
    /// None: keep the token's allowlist (a token rotating itself); Some: this one (None in it:
    /// usable from anywhere).
    pub allowed_addresses: Option<Option<AddressAllowlist>>,
    /// A token rotating itself: the digest of the secret it presented, which must still be
    /// the current one (two rotations at once give one new secret, not two).
    pub replacing: Option<String>,
}

/// The expiry a regenerated token gets.
#[derive(Clone, Copy, Debug)]
pub enum NewExpiry {
    Chosen(Expiry),
    /// As long from now as the token was given last time (a token rotating itself).
    SameLength,
}

/// Who gives a token a new secret.
#[derive(Clone, Debug)]
pub enum Rotator {
    /// Its owner, or an admin or maintainer of its application.
    Person(Actor),
    /// An application token replacing its own secret (automation renewing its credential):
    /// no person acts, so the trail names the token and the address it came from.
    ApplicationTokenItself { client_ip: String },
}

/// The locks and facts an application token rotating itself is checked against: its
/// application, live (archiving revokes its tokens under the same lock), and the policy.
fn lock_application_itself(
    conn: &mut AnyConnection,
    owner: TokenOwner,
) -> Result<(Holder, Policy), Abort<TokenError>> {
    let TokenOwner::Application(application_id) = owner else {
        return refuse(TokenError::NotAllowed);
    };
    lock(conn, Lock::Application(application_id))?;
    lock_shared(conn, Lock::Policy)?;
    match applications::find(conn, application_id)? {
        Some(application) if !application.is_archived() => {
            Ok((Holder::Application(application), crate::policy::load(conn)?))
        }
        _ => refuse(TokenError::Revoked),
    }
}

/// A new secret for one of `owner`'s tokens, with a new expiry.
pub async fn regenerate(
    db: &Db,
    rotator: Rotator,
    owner: TokenOwner,
    token_id: i64,
    rotation: Rotation,
) -> Result<CreatedToken, TokenError> {
    db.transact(move |conn| {
        let (holder, policy) = match &rotator {
            Rotator::Person(actor) => lock_holder(conn, actor, owner)?,
            Rotator::ApplicationTokenItself { .. } => lock_application_itself(conn, owner)?,
        };
        let token =
            store::find_owned(conn, owner, token_id)?.ok_or(diesel::result::Error::NotFound)?;
        let now = Utc::now().naive_utc();
        let reviving = token.status(now) == TokenStatus::Expired;
        if token.status(now) == TokenStatus::Revoked {
            return refuse(TokenError::Revoked);
        }
        let expiry = match rotation.expiry {
            NewExpiry::Chosen(expiry) => expiry,
            NewExpiry::SameLength => Expiry::lasting_as_long_as(
                token.regenerated_at.unwrap_or(token.created_at),
                token.expires_at,
                now,
            ),
        };
        let kept = token.allowlist();
        if let (Some(_), Some(asked)) = (&rotation.replacing, &rotation.allowed_addresses) {
            // A token rotating itself may be a stolen one: it can narrow its list, never widen it.
            let narrower = match (&kept, asked) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(kept), Some(asked)) => asked.within(kept),
            };
            if let (false, Some(kept)) = (narrower, &kept) {
                return refuse(TokenError::AllowlistWidened(kept.to_string()));
            }
        }
        let allowed_addresses = rotation.allowed_addresses.unwrap_or(kept);
        if let Rotator::Person(actor) = &rotator {
            // A new secret of such a token is as good as a new token: shown to whoever renews it.
            check_grant(conn, &holder, actor, token.scopes(), &Origin::Portal)?;
        }
        let becoming = Becoming {
            scopes: token.scopes(),
            expiry,
            allowed_addresses: allowed_addresses.as_ref(),
            reviving,
        };
        check(conn, &holder, &policy, becoming)?;
        let renewal_replacing = rotation.replacing.is_some();
        let renewal = Renewal {
            expiry,
            overlap: rotation.overlap,
            allowed_addresses,
            replacing: rotation.replacing,
        };
        let created = match store::regenerate(conn, &token, &renewal) {
            Ok(Some(created)) => created,
            Ok(None) if renewal_replacing => return refuse(TokenError::SecretReplaced),
            Ok(None) => return refuse(TokenError::Revoked),
            Err(TokenStoreError::NameTaken) => return refuse(name_taken(&holder, token.name)),
            Err(TokenStoreError::Query(e)) => return Err(e.into()),
        };
        let action = token_action(owner.kind(), Action::TokenRegenerated);
        let mut details = details(&created.token, holder.label());
        if let Some(overlap) = rotation.overlap.duration() {
            let until = now + overlap;
            details.push_str(&format!(
                "; previous secret valid until {}",
                until.format("%Y-%m-%d %H:%M:%S UTC")
            ));
        }
        let event = match &rotator {
            Rotator::Person(actor) => Event::by(action, actor).details(details),
            Rotator::ApplicationTokenItself { client_ip } => Event::new(action, None)
                .client_ip(client_ip)
                .details(format!("{details}; rotated by the token itself")),
        };
        event
            .target("token", Some(created.token.id), &created.token.name)
            .record(conn)?;
        Ok(created)
    })
    .await
}

/// Ends the overlap of one of `owner`'s tokens: the secret its last regenerate replaced stops
/// working now. False when none was still working.
pub async fn end_overlap(
    db: &Db,
    actor: Actor,
    owner: TokenOwner,
    token_id: i64,
) -> Result<bool, TokenError> {
    db.transact(move |conn| {
        let (holder, _) = lock_holder(conn, &actor, owner)?;
        let token =
            store::find_owned(conn, owner, token_id)?.ok_or(diesel::result::Error::NotFound)?;
        let Some(ended) = store::end_overlap(conn, token.id)? else {
            return Ok(false);
        };
        let last_used = ended.last_used_at.map_or_else(
            || "never used since it was replaced".to_owned(),
            |at| format!("last used {}", at.format("%Y-%m-%d %H:%M:%S UTC")),
        );
        Event::by(Action::TokenOverlapEnded, &actor)
            .target("token", Some(token.id), &token.name)
            .details(format!(
                "{}; previous secret {} ended early, {last_used}",
                holder.label(),
                ended.hint
            ))
            .record(conn)?;
        Ok(true)
    })
    .await
}

/// Removes from one of `owner`'s tokens the scopes it holds and never exercised, of those the
/// person confirmed removing (`confirmed`): a scope exercised since stays. Never adds a scope,
/// never leaves a token none. Returns the scopes removed (none: nothing changed).
pub async fn narrow_to_exercised(
    db: &Db,
    actor: Actor,
    owner: TokenOwner,
    token_id: i64,
    confirmed: ScopeSet,
) -> Result<ScopeSet, TokenError> {
    db.transact(move |conn| {
        let (holder, _) = lock_holder(conn, &actor, owner)?;
        let token =
            store::find_owned(conn, owner, token_id)?.ok_or(diesel::result::Error::NotFound)?;
        if token.revoked_at.is_some() {
            return refuse(TokenError::Revoked);
        }
        let insight = usage::insight(conn, &token)?;
        if insight.exercised().is_empty() {
            return refuse(TokenError::NothingExercised);
        }
        let removed: ScopeSet = insight
            .unexercised()
            .into_iter()
            .filter(|scope| confirmed.contains(*scope))
            .collect();
        if removed.is_empty() || !store::remove_scopes(conn, &token, removed)? {
            return Ok(ScopeSet::default());
        }
        let names = |set: ScopeSet| set.iter().map(|s| s.name()).collect::<Vec<_>>().join(", ");
        Event::by(Action::TokenNarrowed, &actor)
            .target("token", Some(token.id), &token.name)
            .details(format!(
                "{}; removed the scopes it never exercised: {}; keeps {}",
                holder.label(),
                names(removed),
                names(insight.exercised()),
            ))
            .record(conn)?;
        Ok(removed)
    })
    .await
}

/// Lowers the flag a use from a new address raised on one of `owner`'s tokens; the flag
/// lowered, if there was one.
pub async fn dismiss_new_address(
    db: &Db,
    actor: Actor,
    owner: TokenOwner,
    token_id: i64,
    shown: ShownAlert,
) -> Result<Dismissal, TokenError> {
    db.transact(move |conn| {
        let (holder, _) = lock_holder(conn, &actor, owner)?;
        let token =
            store::find_owned(conn, owner, token_id)?.ok_or(diesel::result::Error::NotFound)?;
        let alert = match usage::dismiss(conn, token.id, &shown)? {
            Dismissal::Dismissed(alert) => alert,
            other => return Ok(other),
        };
        Event::by(Action::TokenNewAddressDismissed, &actor)
            .target("token", Some(token.id), &token.name)
            .details(format!(
                "{}; the flag for its first use from {} was dismissed",
                holder.label(),
                alert.address
            ))
            .record(conn)?;
        Ok(Dismissal::Dismissed(alert))
    })
    .await
}
