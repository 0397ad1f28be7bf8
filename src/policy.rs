//! The organisation's token policy: the longest a token may live, and the expiry the New token
//! form preselects. Kept in the settings table, so every instance reads the same.

use diesel::prelude::*;

use crate::db::schema::settings;
use crate::db::AnyConnection;
use crate::domain::{DEFAULT_EXPIRY, EXPIRY_CHOICES};

const MAX_LIFETIME_KEY: &str = "policy.max_token_lifetime_days";
const DEFAULT_EXPIRY_KEY: &str = "policy.default_expiry";
pub const MAX_LIFETIME_LIMIT_DAYS: i64 = 3650;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// None: tokens may live for ever.
    pub max_lifetime_days: Option<i64>,
    /// One of the EXPIRY_CHOICES values.
    pub default_expiry: String,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_lifetime_days: None,
            default_expiry: DEFAULT_EXPIRY.to_owned(),
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
            .filter(settings::key.eq_any([MAX_LIFETIME_KEY, DEFAULT_EXPIRY_KEY]))
            .select((settings::key, settings::value))
            .load(conn)?;
        let mut policy = Policy::default();
        for (key, value) in rows {
            match key.as_str() {
                MAX_LIFETIME_KEY => policy.max_lifetime_days = value.parse().ok(),
                DEFAULT_EXPIRY_KEY if EXPIRY_CHOICES.iter().any(|(v, _)| *v == value) => {
                    policy.default_expiry = value
                }
                _ => {}
            }
        }
        Ok(policy)
    }

    pub fn save(&self, conn: &mut AnyConnection) -> QueryResult<()> {
        let max = self
            .max_lifetime_days
            .map(|d| d.to_string())
            .unwrap_or_default();
        for (key, value) in [
            (MAX_LIFETIME_KEY, max.as_str()),
            (DEFAULT_EXPIRY_KEY, self.default_expiry.as_str()),
        ] {
            diesel::delete(settings::table.filter(settings::key.eq(key))).execute(conn)?;
            diesel::insert_into(settings::table)
                .values((settings::key.eq(key), settings::value.eq(value)))
                .execute(conn)?;
        }
        Ok(())
    }

    pub fn describe(&self) -> String {
        match self.max_lifetime_days {
            Some(days) => format!(
                "max lifetime {days} days; default expiry {}",
                self.default_expiry
            ),
            None => format!("no max lifetime; default expiry {}", self.default_expiry),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_maximum_hides_longer_choices_and_no_expiration() {
        let policy = Policy {
            max_lifetime_days: Some(60),
            default_expiry: "30".into(),
        };
        let offered: Vec<&str> = policy.expiry_choices().iter().map(|(v, _)| *v).collect();
        assert_eq!(offered, ["7", "30", "60", "custom"]);
        let open: Vec<&str> = Policy::default()
            .expiry_choices()
            .iter()
            .map(|(v, _)| *v)
            .collect();
        assert!(open.contains(&"never") && open.contains(&"365"));
    }
}
