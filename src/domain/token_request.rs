//! What someone asks for when creating or regenerating a token, and the rules it must meet.
//! The New token form and the JSON API both parse through here.

use std::borrow::Cow;

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};
use serde::Deserialize;
use validator::{Validate, ValidationError};

use crate::domain::field_errors::clean_name;
use crate::domain::Policy;
use crate::domain::{AddressAllowlist, Expiry, ExpiryChoice, FieldErrors, Role, Scope, ScopeSet};

const MAX_CUSTOM_DAYS: i64 = 3650;
/// A custom date's token expires at 23:59:59 UTC of that day.
const END_OF_DAY_SECS: i64 = 86_399;

#[derive(Clone, Debug, Default, Deserialize, Validate)]
#[serde(default)]
pub struct TokenRequestInput {
    #[validate(custom(function = "name_rule"))]
    pub name: String,
    /// An `ExpiryChoice` value, as sent (checked by `parse`). JSON clients may leave it out
    /// or send null for the organisation's default (see `or_default_expiry`).
    #[serde(deserialize_with = "null_as_empty")]
    pub expires_in: String,
    /// YYYY-MM-DD, when `expires_in` is "custom". JSON clients may send null for "none".
    #[serde(deserialize_with = "null_as_empty")]
    pub expires_on: String,
    #[validate(length(min = 1, message = "Choose at least one scope."))]
    pub scopes: Vec<String>,
    /// Addresses and CIDR ranges the token may be used from: a form's text (one per line or
    /// comma-separated) or a JSON list. Empty: anywhere.
    #[serde(deserialize_with = "text_or_list")]
    pub allowed_addresses: String,
}

/// A string as sent, or a JSON list of strings joined by commas; null is empty.
fn text_or_list<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum TextOrList {
        Text(String),
        List(Vec<String>),
    }
    Ok(match Option::<TextOrList>::deserialize(deserializer)? {
        None => String::new(),
        Some(TextOrList::Text(text)) => text,
        Some(TextOrList::List(items)) => items.join(","),
    })
}

/// The allowlist field alone, as a regenerate parses it.
pub fn parse_allowlist(raw: &str) -> Result<Option<AddressAllowlist>, (&'static str, String)> {
    AddressAllowlist::parse(raw).map_err(|message| ("allowed_addresses", message))
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Option::<String>::deserialize(deserializer).map(Option::unwrap_or_default)
}

/// Which scopes a new token may hold: a person's within their role, an application's within
/// the organisation's policy for application tokens.
#[derive(Clone, Copy, Debug)]
pub enum ScopeLimit {
    Role(Role),
    Applications(ScopeSet),
}

impl ScopeLimit {
    fn allowed(self) -> ScopeSet {
        match self {
            ScopeLimit::Role(role) => ScopeSet::allowed_for(role),
            ScopeLimit::Applications(allowed) => allowed,
        }
    }

    fn refusal(self, forbidden: ScopeSet) -> String {
        let names = |set: ScopeSet| set.iter().map(Scope::name).collect::<Vec<_>>().join(", ");
        let for_applications = forbidden.intersection(ScopeSet::application_only());
        match self {
            ScopeLimit::Role(_) if !for_applications.is_empty() => format!(
                "Only an application token can hold {}: make one for the application that needs it.",
                names(for_applications)
            ),
            ScopeLimit::Role(role) => {
                format!("Your role ({role}) does not allow: {}.", names(forbidden))
            }
            ScopeLimit::Applications(_) => format!(
                "Your organisation does not allow application tokens to hold: {}.",
                names(forbidden)
            ),
        }
    }
}

/// A request that met every rule but the ones that need the database (unique name).
#[derive(Clone, Debug)]
pub struct TokenRequest {
    pub name: String,
    pub expiry: Expiry,
    pub scopes: ScopeSet,
    /// None: usable from anywhere.
    pub allowed_addresses: Option<AddressAllowlist>,
}

fn rule_error(message: &'static str) -> ValidationError {
    ValidationError::new("invalid").with_message(Cow::Borrowed(message))
}

fn name_rule(name: &str) -> Result<(), ValidationError> {
    clean_name(name).map(drop).map_err(rule_error)
}

impl TokenRequestInput {
    /// An empty form, its expiry preselected by the policy.
    pub fn with_defaults(policy: &Policy) -> Self {
        Self {
            expires_in: policy.default_expiry.value().to_owned(),
            ..Self::default()
        }
    }

    /// Without an expiry, the policy's default: what the New token form preselects, for a
    /// client that has no form. (The form itself always sends one.)
    pub fn or_default_expiry(mut self, policy: &Policy) -> Self {
        if self.expires_in.is_empty() {
            self.expires_in = policy.default_expiry.value().to_owned();
        }
        self
    }

    /// Every rule, every error at once, for a token within `limit` made at time `now` under
    /// `policy`.
    pub fn parse(
        &self,
        limit: &ScopeLimit,
        now: NaiveDateTime,
        policy: &Policy,
    ) -> Result<TokenRequest, FieldErrors> {
        let mut errors = match self.validate() {
            Ok(()) => FieldErrors::default(),
            Err(e) => FieldErrors::from(e),
        };
        let expiry = parse_expiry(&self.expires_in, &self.expires_on, now, policy)
            .map_err(|(field, message)| errors.add(field, message))
            .ok();
        let scopes = parse_scopes(&self.scopes, *limit)
            .map_err(|message| errors.add("scopes", message))
            .ok();
        let allowed_addresses = parse_allowlist(&self.allowed_addresses)
            .map_err(|(field, message)| errors.add(field, message))
            .ok();
        match (clean_name(&self.name), expiry, scopes, allowed_addresses) {
            (Ok(name), Some(expiry), Some(scopes), Some(allowed_addresses))
                if errors.is_empty() =>
            {
                Ok(TokenRequest {
                    name,
                    expiry,
                    scopes,
                    allowed_addresses,
                })
            }
            _ => Err(errors),
        }
    }
}

/// The expiry alone (regenerating keeps name and scopes).
pub fn parse_expiry(
    choice: &str,
    custom_date: &str,
    now: NaiveDateTime,
    policy: &Policy,
) -> Result<Expiry, (&'static str, String)> {
    let choice: ExpiryChoice = choice.parse().map_err(|_| {
        let message = if choice.is_empty() {
            "Choose when the token expires.".to_owned()
        } else {
            format!(
                "Choose when the token expires. Allowed values: {}.",
                ExpiryChoice::values_list()
            )
        };
        ("expires_in", message)
    })?;
    if let (Some(max), false) = (policy.max_lifetime_days, policy.allows_choice(choice)) {
        return Err((
            "expires_in",
            format!("Your organisation requires tokens to expire within {max} days."),
        ));
    }
    if let Some(expiry) = choice.resolve(now) {
        return Ok(expiry);
    }
    let expiry = parse_custom_date(custom_date, now).map_err(|m| ("expires_on", m))?;
    if let (Some(max), false) = (policy.max_lifetime_days, policy.allows(expiry, now)) {
        let (_, last) = custom_date_range(now, policy);
        let message = if last > now.date() {
            format!(
                "Choose {last} or earlier: a token works until the end of its day (UTC), \
                 and your organisation allows at most {max} days."
            )
        } else {
            format!(
                "Your organisation allows at most {max} days, less than the rest of a day: \
                 choose a number of days instead."
            )
        };
        return Err(("expires_on", message));
    }
    Ok(expiry)
}

/// The first and last day a custom expiry may name under `policy`.
pub fn custom_date_range(now: NaiveDateTime, policy: &Policy) -> (NaiveDate, NaiveDate) {
    let first = now.date() + Duration::days(1);
    let last = match policy.max_lifetime_days {
        // The token works to the end of its day, so the last day allowed is the one whose end
        // is still within the maximum.
        Some(max) => (now + Duration::days(max) - Duration::seconds(END_OF_DAY_SECS)).date(),
        None => now.date() + Duration::days(MAX_CUSTOM_DAYS),
    };
    (first, last)
}

fn parse_custom_date(raw: &str, now: NaiveDateTime) -> Result<Expiry, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("Choose the date the token expires.".into());
    }
    let date = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| "Enter the date as YYYY-MM-DD.".to_owned())?;
    let today = now.date();
    if date <= today {
        return Err("Choose a date in the future.".into());
    }
    if date > today + Duration::days(MAX_CUSTOM_DAYS) {
        return Err("Choose a date within 10 years, or No expiration.".into());
    }
    // The token works through the whole of the chosen day (UTC).
    Ok(Expiry::At(
        date.and_time(NaiveTime::MIN) + Duration::seconds(END_OF_DAY_SECS),
    ))
}

fn parse_scopes(names: &[String], limit: ScopeLimit) -> Result<ScopeSet, String> {
    if names.is_empty() {
        return Err("Choose at least one scope.".into());
    }
    let mut unknown = Vec::new();
    let mut set = Vec::new();
    for name in names {
        match name.parse::<Scope>() {
            Ok(scope) => set.push(scope),
            Err(_) => unknown.push(name.chars().take(60).collect::<String>()),
        }
    }
    if !unknown.is_empty() {
        return Err(format!("Unknown scope: {}.", unknown.join(", ")));
    }
    let requested: ScopeSet = set.into_iter().collect();
    let forbidden = requested.difference(limit.allowed());
    if !forbidden.is_empty() {
        return Err(limit.refusal(forbidden));
    }
    Ok(requested)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 25)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap()
    }

    fn input(name: &str, expires_in: &str, expires_on: &str, scopes: &[&str]) -> TokenRequestInput {
        TokenRequestInput {
            name: name.into(),
            expires_in: expires_in.into(),
            expires_on: expires_on.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            ..TokenRequestInput::default()
        }
    }

    #[test]
    fn a_request_without_expiry_takes_the_policys_default_and_a_chosen_one_stays() {
        let policy = Policy {
            default_expiry: ExpiryChoice::SevenDays,
            ..Policy::default()
        };
        let parsed = |expires_in: &str| {
            input("ci", expires_in, "", &["license:read"])
                .or_default_expiry(&policy)
                .parse(&ScopeLimit::Role(Role::User), now(), &policy)
                .unwrap()
                .expiry
        };
        assert_eq!(parsed(""), Expiry::At(now() + Duration::days(7)));
        assert_eq!(parsed("90"), Expiry::At(now() + Duration::days(90)));
    }

    #[test]
    fn accepts_each_expiry_kind() {
        let ok = |choice: &str, date: &str| {
            input(" ci ", choice, date, &["license:read"])
                .parse(&ScopeLimit::Role(Role::User), now(), &Policy::default())
                .unwrap()
        };
        assert_eq!(ok("30", "").expiry, Expiry::At(now() + Duration::days(30)));
        assert_eq!(
            ok("365", "").expiry,
            Expiry::At(now() + Duration::days(365))
        );
        assert_eq!(ok("never", "").expiry, Expiry::Never);
        let custom = ok("custom", "2027-01-31").expiry.at().unwrap();
        assert_eq!(custom.to_string(), "2027-01-31 23:59:59");
        assert_eq!(ok("7", "").name, "ci");
    }

    #[test]
    fn reports_every_error_at_once() {
        let errors = input("  ", "42", "", &[])
            .parse(&ScopeLimit::Role(Role::User), now(), &Policy::default())
            .unwrap_err();
        assert_eq!(errors.get("name"), Some("Enter a name."));
        assert_eq!(
            errors.get("expires_in"),
            Some("Choose when the token expires. Allowed values: 1, 7, 30, 60, 90, 365, custom, never.")
        );
        assert_eq!(errors.get("scopes"), Some("Choose at least one scope."));
    }

    #[test]
    fn custom_dates_must_be_real_future_and_not_absurd() {
        for (date, message) in [
            ("", "Choose the date the token expires."),
            ("31/01/2027", "Enter the date as YYYY-MM-DD."),
            ("2027-02-30", "Enter the date as YYYY-MM-DD."),
            ("2026-11-25", "Choose a date in the future."),
            ("2001-01-01", "Choose a date in the future."),
            (
                "9999-12-31",
                "Choose a date within 10 years, or No expiration.",
            ),
        ] {
            let errors = input("ci", "custom", date, &["tag:read"])
                .parse(&ScopeLimit::Role(Role::Admin), now(), &Policy::default())
                .unwrap_err();
            assert_eq!(errors.get("expires_on"), Some(message), "{date}");
        }
    }

    #[test]
    fn scopes_must_exist_and_fit_the_role() {
        let errors = input("ci", "30", "", &["license:write"])
            .parse(&ScopeLimit::Role(Role::User), now(), &Policy::default())
            .unwrap_err();
        assert_eq!(
            errors.get("scopes"),
            Some("Your role (user) does not allow: license:write.")
        );
        assert!(input("ci", "30", "", &["license:write"])
            .parse(&ScopeLimit::Role(Role::Admin), now(), &Policy::default())
            .is_ok());
        let errors = input("ci", "30", "", &["root:write"])
            .parse(&ScopeLimit::Role(Role::Admin), now(), &Policy::default())
            .unwrap_err();
        assert_eq!(errors.get("scopes"), Some("Unknown scope: root:write."));
    }

    #[test]
    fn a_maximum_lifetime_refuses_longer_expiries() {
        let policy = Policy {
            max_lifetime_days: Some(60),
            default_expiry: ExpiryChoice::ThirtyDays,
            ..Policy::default()
        };
        let parse = |choice: &str, date: &str| {
            input("ci", choice, date, &["tag:read"]).parse(
                &ScopeLimit::Role(Role::User),
                now(),
                &policy,
            )
        };
        assert!(parse("60", "").is_ok());
        assert!(parse("custom", "2027-01-20").is_ok());
        let message = "Your organisation requires tokens to expire within 60 days.";
        assert_eq!(
            parse("90", "").unwrap_err().get("expires_in"),
            Some(message)
        );
        assert_eq!(
            parse("never", "").unwrap_err().get("expires_in"),
            Some(message)
        );
        // 60 days from noon end at noon: the day before ends within them, that day does not.
        assert!(parse("custom", "2027-01-23").is_ok());
        let errors = parse("custom", "2027-01-24").unwrap_err();
        assert_eq!(
            errors.get("expires_on"),
            Some(
                "Choose 2027-01-23 or earlier: a token works until the end of its day (UTC), \
                 and your organisation allows at most 60 days."
            )
        );
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        let long = "x".repeat(101);
        let errors = input(&long, "30", "", &["tag:read"])
            .parse(&ScopeLimit::Role(Role::User), now(), &Policy::default())
            .unwrap_err();
        assert_eq!(errors.get("name"), Some("Use at most 100 characters."));
        let errors = input("a\u{0}b", "30", "", &["tag:read"])
            .parse(&ScopeLimit::Role(Role::User), now(), &Policy::default())
            .unwrap_err();
        assert_eq!(
            errors.get("name"),
            Some("Remove control characters from the name.")
        );
        assert!(input(&"x".repeat(100), "30", "", &["tag:read"])
            .parse(&ScopeLimit::Role(Role::User), now(), &Policy::default())
            .is_ok());
    }
}
