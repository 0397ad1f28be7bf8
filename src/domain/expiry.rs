//! When a token expires: the choices the forms and the API offer, and the time they resolve to.

use std::fmt;
use std::str::FromStr;

use chrono::{Duration, NaiveDateTime};

/// A token's expiry, resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    Never,
    At(NaiveDateTime),
}

impl Expiry {
    pub fn at(self) -> Option<NaiveDateTime> {
        match self {
            Expiry::Never => None,
            Expiry::At(at) => Some(at),
        }
    }

    /// An expiry as far from `now` as `expires_at` was from `issued`: a token renewed for as
    /// long as it was given before. One that never expired still does not.
    pub fn lasting_as_long_as(
        issued: NaiveDateTime,
        expires_at: Option<NaiveDateTime>,
        now: NaiveDateTime,
    ) -> Expiry {
        match expires_at {
            None => Expiry::Never,
            Some(at) => Expiry::At(now + (at - issued)),
        }
    }

    /// This expiry, or `limit` when that comes first.
    pub fn no_later_than(self, limit: Option<NaiveDateTime>) -> Expiry {
        match (self, limit) {
            (_, None) => self,
            (Expiry::Never, Some(limit)) => Expiry::At(limit),
            (Expiry::At(at), Some(limit)) => Expiry::At(at.min(limit)),
        }
    }
}

/// One of the expiry choices the New token form offers; the API takes the same values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExpiryChoice {
    OneDay,
    SevenDays,
    #[default]
    ThirtyDays,
    SixtyDays,
    NinetyDays,
    OneYear,
    /// A date the person picks.
    Custom,
    Never,
}

impl ExpiryChoice {
    /// Every choice, in the order the form lists them.
    pub const ALL: [ExpiryChoice; 8] = [
        ExpiryChoice::OneDay,
        ExpiryChoice::SevenDays,
        ExpiryChoice::ThirtyDays,
        ExpiryChoice::SixtyDays,
        ExpiryChoice::NinetyDays,
        ExpiryChoice::OneYear,
        ExpiryChoice::Custom,
        ExpiryChoice::Never,
    ];

    /// A fixed number of days from now, for the choices that are one.
    pub fn days(self) -> Option<i64> {
        match self {
            ExpiryChoice::OneDay => Some(1),
            ExpiryChoice::SevenDays => Some(7),
            ExpiryChoice::ThirtyDays => Some(30),
            ExpiryChoice::SixtyDays => Some(60),
            ExpiryChoice::NinetyDays => Some(90),
            ExpiryChoice::OneYear => Some(365),
            ExpiryChoice::Custom | ExpiryChoice::Never => None,
        }
    }

    /// What forms send and the API takes: the number of days, `custom` or `never`.
    pub fn value(self) -> &'static str {
        match self {
            ExpiryChoice::OneDay => "1",
            ExpiryChoice::SevenDays => "7",
            ExpiryChoice::ThirtyDays => "30",
            ExpiryChoice::SixtyDays => "60",
            ExpiryChoice::NinetyDays => "90",
            ExpiryChoice::OneYear => "365",
            ExpiryChoice::Custom => "custom",
            ExpiryChoice::Never => "never",
        }
    }

    /// What a person reads.
    pub fn label(self) -> &'static str {
        match self {
            ExpiryChoice::OneDay => "1 day",
            ExpiryChoice::SevenDays => "7 days",
            ExpiryChoice::ThirtyDays => "30 days",
            ExpiryChoice::SixtyDays => "60 days",
            ExpiryChoice::NinetyDays => "90 days",
            ExpiryChoice::OneYear => "1 year",
            ExpiryChoice::Custom => "Custom date",
            ExpiryChoice::Never => "No expiration",
        }
    }

    /// The values the API accepts, for an error message.
    pub fn values_list() -> String {
        let values: Vec<&str> = Self::ALL.iter().map(|c| c.value()).collect();
        values.join(", ")
    }

    /// When a token made at `now` with this choice expires; `None` for a custom date.
    pub fn resolve(self, now: NaiveDateTime) -> Option<Expiry> {
        match self {
            ExpiryChoice::Never => Some(Expiry::Never),
            ExpiryChoice::Custom => None,
            fixed => fixed.days().map(|d| Expiry::At(now + Duration::days(d))),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct UnknownExpiryChoice;

impl FromStr for ExpiryChoice {
    type Err = UnknownExpiryChoice;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|choice| choice.value() == value)
            .ok_or(UnknownExpiryChoice)
    }
}

impl fmt::Display for ExpiryChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.value())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_choice_reads_back_from_its_value() {
        for choice in ExpiryChoice::ALL {
            assert_eq!(choice.value().parse(), Ok(choice));
        }
        for other in ["", "45", "0", "Never", " 30", "custom "] {
            assert_eq!(
                other.parse::<ExpiryChoice>(),
                Err(UnknownExpiryChoice),
                "{other:?}"
            );
        }
    }

    #[test]
    fn fixed_choices_resolve_to_days_from_now() {
        let now = chrono::NaiveDate::from_ymd_opt(2026, 11, 25)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap();
        assert_eq!(
            ExpiryChoice::OneYear.resolve(now),
            Some(Expiry::At(now + Duration::days(365)))
        );
        assert_eq!(ExpiryChoice::Never.resolve(now), Some(Expiry::Never));
        assert_eq!(ExpiryChoice::Custom.resolve(now), None);
    }
}
