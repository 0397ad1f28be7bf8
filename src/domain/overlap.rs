//! How long a replaced secret keeps working after a regenerate: the overlap a person or a
//! token rotating itself chooses.

/// How long a replaced secret keeps working after a regenerate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Overlap {
    /// It stops at once.
    #[default]
    None,
    OneHour,
    OneDay,
    SevenDays,
}

impl Overlap {
    pub const ALL: [Overlap; 4] = [
        Overlap::None,
        Overlap::OneHour,
        Overlap::OneDay,
        Overlap::SevenDays,
    ];

    /// As forms and the API send it.
    pub fn value(self) -> &'static str {
        match self {
            Overlap::None => "none",
            Overlap::OneHour => "1h",
            Overlap::OneDay => "24h",
            Overlap::SevenDays => "7d",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Overlap::None => "No: it stops now",
            Overlap::OneHour => "1 hour",
            Overlap::OneDay => "24 hours",
            Overlap::SevenDays => "7 days",
        }
    }

    pub fn duration(self) -> Option<chrono::Duration> {
        match self {
            Overlap::None => None,
            Overlap::OneHour => Some(chrono::Duration::hours(1)),
            Overlap::OneDay => Some(chrono::Duration::hours(24)),
            Overlap::SevenDays => Some(chrono::Duration::days(7)),
        }
    }

    pub fn values_list() -> String {
        let values: Vec<&str> = Self::ALL.iter().map(|o| o.value()).collect();
        values.join(", ")
    }
}

impl std::str::FromStr for Overlap {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(Overlap::None);
        }
        Self::ALL
            .into_iter()
            .find(|o| o.value() == raw)
            .ok_or_else(|| {
                format!(
                    "Choose how long the current secret keeps working. Allowed values: {}.",
                    Self::values_list()
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlaps_parse_from_their_values() {
        assert_eq!("".parse::<Overlap>().unwrap(), Overlap::None);
        assert_eq!("24h".parse::<Overlap>().unwrap(), Overlap::OneDay);
        assert!("2h".parse::<Overlap>().is_err());
    }
}
