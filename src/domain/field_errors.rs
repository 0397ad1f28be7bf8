use std::collections::BTreeMap;

use serde::Serialize;
use validator::ValidationErrors;

/// What is wrong with a submitted form or API body: one message per field, the first found.
#[derive(Default, Debug, Serialize)]
#[serde(transparent)]
pub struct FieldErrors(BTreeMap<String, String>);

impl FieldErrors {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_insert_with(|| message.into());
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<ValidationErrors> for FieldErrors {
    fn from(errors: ValidationErrors) -> Self {
        let mut fields = FieldErrors::default();
        for (field, field_errors) in errors.field_errors() {
            let message = field_errors
                .iter()
                .find_map(|e| e.message.as_ref())
                .map_or_else(|| "This value is not valid.".to_owned(), |m| m.to_string());
            fields.add(&field, message);
        }
        fields
    }
}

/// A name a person gives (their own, or a token's): trimmed, 1 to 100 characters, no
/// control characters.
pub fn clean_name(raw: &str) -> Result<String, &'static str> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("Enter a name.");
    }
    if name.chars().count() > 100 {
        return Err("Use at most 100 characters.");
    }
    if name.chars().any(char::is_control) {
        return Err("Remove control characters from the name.");
    }
    Ok(name.to_owned())
}
