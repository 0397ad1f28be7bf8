//! What an admin types to create or rename an application, parsed once.

use serde::Deserialize;

use crate::domain::{clean_name, FieldErrors};

pub const MAX_DESCRIPTION_CHARS: usize = 500;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ApplicationInput {
    pub name: String,
    pub description: String,
}

/// A name (the rules of every name a person gives) and a description (optional, one paragraph).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplicationDetails {
    pub name: String,
    pub description: String,
}

impl ApplicationInput {
    pub fn parse(&self) -> Result<ApplicationDetails, FieldErrors> {
        let mut errors = FieldErrors::default();
        let name = clean_name(&self.name)
            .map_err(|message| errors.add("name", message))
            .ok();
        let description = self.description.trim();
        if description.chars().count() > MAX_DESCRIPTION_CHARS {
            errors.add(
                "description",
                format!("Use at most {MAX_DESCRIPTION_CHARS} characters."),
            );
        } else if description
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r')
        {
            errors.add("description", "Remove control characters.");
        }
        match name {
            Some(name) if errors.is_empty() => Ok(ApplicationDetails {
                name,
                description: description.replace("\r\n", "\n"),
            }),
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(name: &str, description: &str) -> ApplicationInput {
        ApplicationInput {
            name: name.into(),
            description: description.into(),
        }
    }

    #[test]
    fn names_follow_the_name_rules_and_descriptions_are_optional() {
        let parsed = input("  Billing   sync ", "").parse().unwrap();
        assert_eq!(parsed.name, "Billing sync");
        assert_eq!(parsed.description, "");
        let errors = input(" ", &"x".repeat(501)).parse().unwrap_err();
        assert_eq!(errors.get("name"), Some("Enter a name."));
        assert_eq!(
            errors.get("description"),
            Some("Use at most 500 characters.")
        );
        let kept = input("CI", "Runs the\r\nnightly build").parse().unwrap();
        assert_eq!(kept.description, "Runs the\nnightly build");
        assert!(input("CI", "bell\u{7}").parse().is_err());
    }
}
