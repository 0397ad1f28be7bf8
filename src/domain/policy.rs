//! The organisation's token policy as a value: the longest a token may live, the expiry the New
//! token form preselects, how many active tokens one person (or application) may hold, and what
//! application tokens may be, and after how long unused a token is revoked. Loading and saving
//! it is `crate::policy`'s.

use chrono::{Duration, NaiveDateTime};

use crate::domain::{Expiry, ExpiryChoice, ScopeSet};

pub const MAX_LIFETIME_LIMIT_DAYS: i64 = 3650;
/// Active tokens one person may hold, unless the policy says otherwise.
pub const DEFAULT_MAX_ACTIVE_TOKENS: i64 = 100;
pub const MAX_ACTIVE_TOKENS_LIMIT: i64 = 10_000;
/// Application tokens must expire; within a year unless the policy says otherwise (as GitLab).
pub const DEFAULT_APPLICATION_MAX_LIFETIME_DAYS: i64 = 365;
/// The longest "revoke tokens not used for N days" may wait.
pub const REVOKE_UNUSED_LIMIT_DAYS: i64 = 3650;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// None: tokens may live for ever.
    pub max_lifetime_days: Option<i64>,
    /// What the New token form preselects (never `Custom`).
    pub default_expiry: ExpiryChoice,
    /// Active (neither revoked nor expired) tokens one person, or one application, may hold.
    pub max_active_tokens: i64,
    /// The longest an application token may live: they always expire.
    pub application_max_lifetime_days: i64,
    /// The scopes application tokens may hold (a person's role does not bound them).
    pub application_scopes: ScopeSet,
    /// A token holding any `:write` scope must list the addresses it may be used from.
    pub write_requires_allowlist: bool,
    /// Tokens, personal and application, not used for this many days are revoked (None: never,
    /// the default). A token never used counts from when it was made or given a new secret.
    pub revoke_unused_after_days: Option<i64>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_lifetime_days: None,
            default_expiry: ExpiryChoice::default(),
            max_active_tokens: DEFAULT_MAX_ACTIVE_TOKENS,
            application_max_lifetime_days: DEFAULT_APPLICATION_MAX_LIFETIME_DAYS,
            application_scopes: ScopeSet::ALL,
            write_requires_allowlist: false,
            revoke_unused_after_days: None,
        }
    }
}

impl Policy {
    /// The rules an application token's expiry meets, as a policy of its own: its maximum
    /// lifetime (so never "No expiration"), and the organisation's default expiry if that fits.
    pub fn for_applications(&self) -> Policy {
        let mut rules = Policy {
            max_lifetime_days: Some(self.application_max_lifetime_days),
            ..self.clone()
        };
        if !rules.allows_choice(rules.default_expiry) {
            rules.default_expiry = rules
                .expiry_choices()
                .into_iter()
                .rfind(|choice| choice.days().is_some())
                .unwrap_or(ExpiryChoice::Custom);
        }
        rules
    }

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

    /// When a token last used (or made, or given a new secret) at `idle_since` is revoked for
    /// being unused; None when the policy revokes no unused tokens.
    pub fn unused_deadline(&self, idle_since: NaiveDateTime) -> Option<NaiveDateTime> {
        self.revoke_unused_after_days
            .map(|days| idle_since + Duration::days(days))
    }

    /// For the audit trail.
    /// The write scopes of `scopes` that need an allowlist under this policy (none when the
    /// policy does not require one).
    pub fn scopes_needing_allowlist(&self, scopes: ScopeSet) -> Vec<&'static str> {
        if !self.write_requires_allowlist {
            return Vec::new();
        }
        scopes
            .iter()
            .filter(|scope| !scope.is_read())
            .map(|scope| scope.name())
            .collect()
    }

    pub fn describe(&self) -> String {
        let lifetime = match self.max_lifetime_days {
            Some(days) => format!("max lifetime {days} days"),
            None => "no max lifetime".to_owned(),
        };
        let application_scopes = if self.application_scopes == ScopeSet::ALL {
            "any scope".to_owned()
        } else {
            self.application_scopes.to_stored()
        };
        let allowlist = if self.write_requires_allowlist {
            "; address allowlist required for write scopes"
        } else {
            ""
        };
        let unused = match self.revoke_unused_after_days {
            Some(days) => format!("revoke tokens unused for {days} days"),
            None => "keep unused tokens".to_owned(),
        };
        format!(
            "{lifetime}; default expiry {}; max {} active tokens a person; application tokens: \
             max lifetime {} days, {application_scopes}; {unused}{allowlist}",
            self.default_expiry, self.max_active_tokens, self.application_max_lifetime_days
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
    fn application_tokens_always_expire_within_their_own_maximum() {
        let policy = Policy {
            default_expiry: ExpiryChoice::Never,
            application_max_lifetime_days: 90,
            ..Policy::default()
        };
        let rules = policy.for_applications();
        let offered: Vec<&str> = rules.expiry_choices().iter().map(|c| c.value()).collect();
        assert_eq!(offered, ["1", "7", "30", "60", "90", "custom"]);
        assert_eq!(rules.default_expiry, ExpiryChoice::NinetyDays);
        let kept = Policy {
            default_expiry: ExpiryChoice::ThirtyDays,
            ..Policy::default()
        };
        assert_eq!(
            kept.for_applications().default_expiry,
            ExpiryChoice::ThirtyDays
        );
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

    #[test]
    fn unused_tokens_are_kept_unless_the_policy_says_how_long() {
        let since = chrono::NaiveDate::from_ymd_opt(2026, 11, 26)
            .unwrap()
            .and_hms_opt(9, 0, 0)
            .unwrap();
        assert_eq!(Policy::default().unused_deadline(since), None);
        assert!(Policy::default().describe().ends_with("keep unused tokens"));
        let policy = Policy {
            revoke_unused_after_days: Some(90),
            ..Policy::default()
        };
        assert_eq!(
            policy.unused_deadline(since),
            Some(since + Duration::days(90))
        );
        assert!(policy
            .describe()
            .ends_with("revoke tokens unused for 90 days"));
    }
}
