//! The organisation's token policy as a value: the longest a token may live, the expiry the New
//! token form preselects, and how many active tokens one person may hold. Loading and saving it
//! is `crate::policy`'s.

use chrono::{Duration, NaiveDateTime};

use crate::domain::{Expiry, ExpiryChoice};

pub const MAX_LIFETIME_LIMIT_DAYS: i64 = 3650;
/// Active tokens one person may hold, unless the policy says otherwise.
pub const DEFAULT_MAX_ACTIVE_TOKENS: i64 = 100;
pub const MAX_ACTIVE_TOKENS_LIMIT: i64 = 10_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// None: tokens may live for ever.
    pub max_lifetime_days: Option<i64>,
    /// What the New token form preselects (never `Custom`).
    pub default_expiry: ExpiryChoice,
    /// Active (neither revoked nor expired) tokens one person may hold.
    pub max_active_tokens: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_lifetime_days: None,
            default_expiry: ExpiryChoice::default(),
            max_active_tokens: DEFAULT_MAX_ACTIVE_TOKENS,
        }
    }
}

impl Policy {
    /// Whether an expiry choice fits the policy (a custom date always may; its date is checked).
    pub fn allows_choice(&self, choice: ExpiryChoice) -> bool {
        match (choice, self.max_lifetime_days) {
            (_, None) | (ExpiryChoice::Custom, _) => true,
            (ExpiryChoice::Never, Some(_)) => false,
            (fixed, Some(max)) => fixed.days().is_some_and(|d| d <= max),
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
    pub fn expiry_choices(&self) -> Vec<ExpiryChoice> {
        ExpiryChoice::ALL
            .into_iter()
            .filter(|choice| self.allows_choice(*choice))
            .collect()
    }

    /// For the audit trail.
    pub fn describe(&self) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_maximum_hides_longer_choices_and_no_expiration() {
        let policy = Policy {
            max_lifetime_days: Some(60),
            ..Policy::default()
        };
        let offered: Vec<&str> = policy.expiry_choices().iter().map(|c| c.value()).collect();
        assert_eq!(offered, ["1", "7", "30", "60", "custom"]);
        let open: Vec<&str> = Policy::default()
            .expiry_choices()
            .iter()
            .map(|c| c.value())
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
