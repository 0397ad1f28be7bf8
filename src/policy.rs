//! The organisation's token policy: the longest a token may live, and the expiry the New token
//! form preselects. Kept in the settings table, so every instance reads the same.

use diesel::prelude::*;

use crate::audit::{Action, Actor, Event};
use crate::db::schema::settings;
use crate::db::{lock, refuse, AnyConnection, Db, DbError, Lock};
use chrono::{Duration, NaiveDateTime};

use crate::domain::{Expiry, DEFAULT_EXPIRY, EXPIRY_CHOICES};

const MAX_LIFETIME_KEY: &str = "policy.max_token_lifetime_days";
const DEFAULT_EXPIRY_KEY: &str = "policy.default_expiry";
const MAX_ACTIVE_TOKENS_KEY: &str = "policy.max_active_tokens";
pub const MAX_LIFETIME_LIMIT_DAYS: i64 = 3650;
/// Active tokens one person may hold, unless the policy says otherwise.
pub const DEFAULT_MAX_ACTIVE_TOKENS: i64 = 100;
pub const MAX_ACTIVE_TOKENS_LIMIT: i64 = 10_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// None: tokens may live for ever.
    pub max_lifetime_days: Option<i64>,
    /// One of the EXPIRY_CHOICES values.
    pub default_expiry: String,
    /// Active (neither revoked nor expired) tokens one person may hold.
    pub max_active_tokens: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_lifetime_days: None,
            default_expiry: DEFAULT_EXPIRY.to_owned(),
            max_active_tokens: DEFAULT_MAX_ACTIVE_TOKENS,
        }
    }
}

impl Policy {
    /// Whether an expiry choice fits the policy ("custom" always does; its date is checked).
    pub fn allows_choice(&self, choice: &str) -> bool {
        match (choice, self.max_lifetime_days) {
            (_, None) | ("custom", _) => true,
            ("never", Some(_)) => false,
            (days, Some(max)) => days.parse::<i64>().is_ok_and(|d| d <= max),
        }
    }

    /// Whether a token expiring so, made at `now`, fits: the one rule the forms, the API and
    /// the transaction that writes the token all apply.
    pub fn allows(&self, expiry: Expiry, now: NaiveDateTime) -> bool {
        match (self.max_lifetime_days, expiry) {
            (None, _) => true,
            (Some(_), Expiry::Never) => false,
            (Some(max), Expiry::At(at)) => at <= now + Duration::days(max),
        }
    }

    /// The expiry choices the form offers under this policy.
    pub fn expiry_choices(&self) -> Vec<(&'static str, &'static str)> {
        EXPIRY_CHOICES
            .iter()
            .copied()
            .filter(|(value, _)| self.allows_choice(value))
            .collect()
    }

    pub fn load(conn: &mut AnyConnection) -> QueryResult<Policy> {
        let rows: Vec<(String, String)> = settings::table
            .filter(settings::key.eq_any([
                MAX_LIFETIME_KEY,
                DEFAULT_EXPIRY_KEY,
                MAX_ACTIVE_TOKENS_KEY,
            ]))
            .select((settings::key, settings::value))
            .load(conn)?;
        let mut policy = Policy::default();
        for (key, value) in rows {
            match key.as_str() {
                MAX_LIFETIME_KEY => policy.max_lifetime_days = value.parse().ok(),
                DEFAULT_EXPIRY_KEY if EXPIRY_CHOICES.iter().any(|(v, _)| *v == value) => {
                    policy.default_expiry = value
                }
                MAX_ACTIVE_TOKENS_KEY => {
                    policy.max_active_tokens = value.parse().unwrap_or(DEFAULT_MAX_ACTIVE_TOKENS)
                }
                _ => {}
            }
        }
        Ok(policy)
    }

    /// Saves the policy. Run inside a write transaction that holds [`Lock::Policy`]: two admins
    /// saving at once would otherwise both delete, then both insert.
    pub fn save(&self, conn: &mut AnyConnection) -> QueryResult<()> {
        let max = self
            .max_lifetime_days
            .map(|d| d.to_string())
            .unwrap_or_default();
        let max_active = self.max_active_tokens.to_string();
        for (key, value) in [
            (MAX_LIFETIME_KEY, max.as_str()),
            (DEFAULT_EXPIRY_KEY, self.default_expiry.as_str()),
            (MAX_ACTIVE_TOKENS_KEY, max_active.as_str()),
        ] {
            diesel::delete(settings::table.filter(settings::key.eq(key))).execute(conn)?;
            diesel::insert_into(settings::table)
                .values((settings::key.eq(key), settings::value.eq(value)))
                .execute(conn)?;
        }
        Ok(())
    }

    fn describe(&self) -> String {
        let lifetime = match self.max_lifetime_days {
            Some(days) => format!("max lifetime {days} days"),
            None => "no max lifetime".to_owned(),
        };
        format!(
            "{lifetime}; default expiry {}; max {} active tokens a person",
            self.default_expiry, self.max_active_tokens
        )
    }
}

/// The policy in force, for a page or request to show or check before it writes.
pub async fn current(db: &Db) -> Result<Policy, DbError> {
    db.run(Policy::load).await
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
        lock(conn, Lock::Members)?;
        if !crate::users::is_active_admin(conn, actor.user_id)? {
            return refuse(ChangeError::NoLongerAdmin);
        }
        lock(conn, Lock::Policy)?;
        let before = Policy::load(conn)?;
        policy.save(conn)?;
        Event::by(Action::PolicyChanged, &actor)
            .target("policy", None, "token policy")
            .details(format!("{} -> {}", before.describe(), policy.describe()))
            .record(conn)?;
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_maximum_hides_longer_choices_and_no_expiration() {
        let policy = Policy {
            max_lifetime_days: Some(60),
            default_expiry: "30".into(),
            ..Policy::default()
        };
        let offered: Vec<&str> = policy.expiry_choices().iter().map(|(v, _)| *v).collect();
        assert_eq!(offered, ["1", "7", "30", "60", "custom"]);
        let open: Vec<&str> = Policy::default()
            .expiry_choices()
            .iter()
            .map(|(v, _)| *v)
            .collect();
        assert!(open.contains(&"never") && open.contains(&"365"));
    }

    #[test]
    fn a_maximum_is_a_number_of_hours_not_of_calendar_days() {
        let policy = Policy {
            max_lifetime_days: Some(7),
            ..Policy::default()
        };
        let now = chrono::NaiveDate::from_ymd_opt(2026, 11, 26)
            .unwrap()
            .and_hms_opt(9, 0, 0)
            .unwrap();
        assert!(policy.allows(Expiry::At(now + Duration::hours(168)), now));
        assert!(!policy.allows(Expiry::At(now + Duration::hours(169)), now));
        assert!(!policy.allows(Expiry::Never, now));
        assert!(Policy::default().allows(Expiry::Never, now));
    }
}
