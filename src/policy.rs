//! Loading and saving the token policy (`crate::domain::Policy`). Kept in the settings table,
//! so every instance reads the same.

use diesel::prelude::*;

use crate::audit::{Action, Actor, Event};
use crate::db::schema::settings;
use crate::db::{lock, refuse, AnyConnection, Db, DbError, Lock};
use crate::domain::policy::{DEFAULT_APPLICATION_MAX_LIFETIME_DAYS, DEFAULT_MAX_ACTIVE_TOKENS};
use crate::domain::{ExpiryChoice, Policy, ScopeSet};

const MAX_LIFETIME_KEY: &str = "policy.max_token_lifetime_days";
const DEFAULT_EXPIRY_KEY: &str = "policy.default_expiry";
const MAX_ACTIVE_TOKENS_KEY: &str = "policy.max_active_tokens";
const APPLICATION_MAX_LIFETIME_KEY: &str = "policy.application_max_lifetime_days";
const APPLICATION_SCOPES_KEY: &str = "policy.application_scopes";
const WRITE_REQUIRES_ALLOWLIST_KEY: &str = "policy.write_requires_allowlist";
const REVOKE_UNUSED_KEY: &str = "policy.revoke_unused_after_days";
const KEYS: [&str; 7] = [
    MAX_LIFETIME_KEY,
    DEFAULT_EXPIRY_KEY,
    MAX_ACTIVE_TOKENS_KEY,
    APPLICATION_MAX_LIFETIME_KEY,
    APPLICATION_SCOPES_KEY,
    WRITE_REQUIRES_ALLOWLIST_KEY,
    REVOKE_UNUSED_KEY,
];

/// The policy in force, from the settings table.
pub fn load(conn: &mut AnyConnection) -> QueryResult<Policy> {
    let rows: Vec<(String, String)> = settings::table
        .filter(settings::key.eq_any(KEYS))
        .select((settings::key, settings::value))
        .load(conn)?;
    let mut policy = Policy::default();
    for (key, value) in rows {
        match key.as_str() {
            MAX_LIFETIME_KEY => policy.max_lifetime_days = value.parse().ok(),
            DEFAULT_EXPIRY_KEY => {
                policy.default_expiry = value
                    .parse()
                    .ok()
                    .filter(|choice| *choice != ExpiryChoice::Custom)
                    .unwrap_or_default()
            }
            MAX_ACTIVE_TOKENS_KEY => {
                policy.max_active_tokens = value.parse().unwrap_or(DEFAULT_MAX_ACTIVE_TOKENS)
            }
            APPLICATION_MAX_LIFETIME_KEY => {
                policy.application_max_lifetime_days = value
                    .parse()
                    .unwrap_or(DEFAULT_APPLICATION_MAX_LIFETIME_DAYS)
            }
            APPLICATION_SCOPES_KEY => {
                policy.application_scopes = application_scopes_from(Some(&value))
            }
            WRITE_REQUIRES_ALLOWLIST_KEY => policy.write_requires_allowlist = value == "true",
            REVOKE_UNUSED_KEY => policy.revoke_unused_after_days = value.parse().ok(),
            _ => {}
        }
    }
    Ok(policy)
}

/// The stored scopes application tokens may hold, as a subquery a token lookup can select in
/// the same statement (NULL while the policy was never saved).
#[allow(clippy::type_complexity)]
pub fn application_scopes_setting() -> diesel::dsl::SingleValue<
    diesel::dsl::Select<
        diesel::dsl::Filter<settings::table, diesel::dsl::Eq<settings::key, &'static str>>,
        settings::value,
    >,
> {
    settings::table
        .filter(settings::key.eq(APPLICATION_SCOPES_KEY))
        .select(settings::value)
        .single_value()
}

/// What [`application_scopes_setting`] read means: every scope unless the policy says which.
pub fn application_scopes_from(stored: Option<&str>) -> ScopeSet {
    stored.map_or(ScopeSet::ALL, ScopeSet::from_stored)
}

/// Saves the policy. Run inside a write transaction that holds [`Lock::Policy`]: two admins
/// saving at once would otherwise both delete, then both insert.
pub fn save(conn: &mut AnyConnection, policy: &Policy) -> QueryResult<()> {
    let max = policy
        .max_lifetime_days
        .map(|d| d.to_string())
        .unwrap_or_default();
    let max_active = policy.max_active_tokens.to_string();
    let application_max = policy.application_max_lifetime_days.to_string();
    let application_scopes = policy.application_scopes.to_stored();
    let revoke_unused = policy
        .revoke_unused_after_days
        .map(|d| d.to_string())
        .unwrap_or_default();
    for (key, value) in [
        (MAX_LIFETIME_KEY, max.as_str()),
        (DEFAULT_EXPIRY_KEY, policy.default_expiry.value()),
        (MAX_ACTIVE_TOKENS_KEY, max_active.as_str()),
        (APPLICATION_MAX_LIFETIME_KEY, application_max.as_str()),
        (APPLICATION_SCOPES_KEY, application_scopes.as_str()),
        (
            WRITE_REQUIRES_ALLOWLIST_KEY,
            if policy.write_requires_allowlist {
                "true"
            } else {
                "false"
            },
        ),
        (REVOKE_UNUSED_KEY, revoke_unused.as_str()),
    ] {
        diesel::delete(settings::table.filter(settings::key.eq(key))).execute(conn)?;
        diesel::insert_into(settings::table)
            .values((settings::key.eq(key), settings::value.eq(value)))
            .execute(conn)?;
    }
    Ok(())
}

/// The policy in force, for a page or request to show or check before it writes.
pub async fn current(db: &Db) -> Result<Policy, DbError> {
    db.run(load).await
}

/// Why a policy was not saved.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("You are no longer an active admin.")]
    NoLongerAdmin,
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Saves a new policy with its audit event, if the actor is still an active admin. Tokens
/// being made meanwhile finish under the old one first: they hold [`Lock::Policy`] shared.
pub async fn change(db: &Db, actor: Actor, policy: Policy) -> Result<(), ChangeError> {
    db.transact(move |conn| {
        if !crate::users::still_admin(conn, actor.user_id)? {
            return refuse(ChangeError::NoLongerAdmin);
        }
        lock(conn, Lock::Policy)?;
        let before = load(conn)?;
        save(conn, &policy)?;
        Event::by(Action::PolicyChanged, &actor)
            .target("policy", None, "token policy")
            .details(format!("{} -> {}", before.describe(), policy.describe()))
            .record(conn)?;
        Ok(())
    })
    .await
}
