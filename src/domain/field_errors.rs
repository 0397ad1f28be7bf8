use std::collections::BTreeMap;

use icu_normalizer::ComposingNormalizerBorrowed;
use icu_properties::props::{DefaultIgnorableCodePoint, GeneralCategory};
use icu_properties::{CodePointMapData, CodePointSetData};
use serde::Serialize;
use validator::ValidationErrors;

/// What is wrong with a submitted form or API body: one message per field, the first found.
#[derive(Default, Debug, Serialize)]
#[serde(transparent)]
pub struct FieldErrors(BTreeMap<String, String>);

impl FieldErrors {
    /// One field's error: what a check on a single field, or a refusal tied to one, reports.
    pub fn one(field: &str, message: impl Into<String>) -> Self {
        let mut errors = Self::default();
        errors.add(field, message);
        errors
    }

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

/// A name a person gives (their own, or a token's): in NFC, each run of white space one space,
/// trimmed, 1 to 100 characters, no control characters and no invisible ones. Two names that
/// show as the same text are then the same string: a page collapses runs of spaces, and NFC
/// and NFD spellings look alike.
pub fn clean_name(raw: &str) -> Result<String, &'static str> {
    let trimmed = raw.trim();
    // Tabs and line breaks are refused below, not folded into spaces.
    if trimmed.chars().any(char::is_control) {
        return Err("Remove control characters from the name.");
    }
    let composed = ComposingNormalizerBorrowed::new_nfc().normalize(trimmed);
    let name = composed.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.is_empty() || !name.chars().any(shows_on_its_own) {
        return Err("Enter a name.");
    }
    if name.chars().count() > 100 {
        return Err("Use at most 100 characters.");
    }
    if has_invisible_characters(&name) {
        return Err(
            "Remove invisible characters (such as zero-width spaces or direction marks) \
                    from the name.",
        );
    }
    Ok(name)
}

/// Whether `text` holds a format character (Unicode general category Cf): zero-width spaces
/// and joiners, the soft hyphen, the byte order mark, direction overrides and isolates. They
/// show as nothing or reorder what is shown, so they make two names or addresses that look
/// the same, or one that reads as another: "Mallory \u{202E}nimda" shows as "Mallory admin".
/// Default-ignorable code points too (the combining grapheme joiner, variation selectors, the
/// Hangul fillers): they are drawn as nothing.
/// Also characters drawn blank or as a box whatever the font: the Braille blank (U+2800), the
/// object replacement character, and private-use characters (no font but a private one has them).
pub fn has_invisible_characters(text: &str) -> bool {
    let categories = CodePointMapData::<GeneralCategory>::new();
    let ignorable = CodePointSetData::new::<DefaultIgnorableCodePoint>();
    text.chars().any(|c| {
        let category = categories.get(c);
        category == GeneralCategory::Format
            || category == GeneralCategory::PrivateUse
            || ignorable.contains(c)
            || matches!(c, '\u{2800}' | '\u{FFFC}')
    })
}

/// A character that is something by itself: not white space, and not a mark, which only
/// decorates the character before it (a name of accents alone shows as nothing readable).
fn shows_on_its_own(c: char) -> bool {
    let category = CodePointMapData::<GeneralCategory>::new().get(c);
    !c.is_whitespace()
        && !matches!(
            category,
            GeneralCategory::NonspacingMark
                | GeneralCategory::SpacingMark
                | GeneralCategory::EnclosingMark
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_show_alike_are_one_string_or_refused() {
        assert_eq!(clean_name("cafe\u{301}").unwrap(), "caf\u{e9}");
        assert_eq!(clean_name("de  ploy").unwrap(), "de ploy");
        assert_eq!(clean_name("de\u{a0}ploy").unwrap(), "de ploy");
        for invisible in [
            "deploy\u{34f}",
            "dep\u{3164}loy",
            "deploy\u{fe0f}",
            "deploy\u{115f}",
            "\u{2800}",
            "Ali\u{2800}ce",
            "deploy\u{e000}",
            "deploy\u{fffc}",
            "\u{301}\u{301}",
        ] {
            assert!(clean_name(invisible).is_err(), "{invisible:?}");
        }
    }

    #[test]
    fn names_are_trimmed_and_kept_as_typed() {
        assert_eq!(clean_name("  deploy: prod ").unwrap(), "deploy: prod");
        assert_eq!(
            clean_name("Zoë Ünal 李小龙 🚀").unwrap(),
            "Zoë Ünal 李小龙 🚀"
        );
    }

    #[test]
    fn names_with_invisible_characters_are_refused() {
        for raw in [
            "Mallory \u{202e}nimda", // right-to-left override: shows as "Mallory admin"
            "Mallory \u{202d}admin", // left-to-right override
            "a\u{202a}b\u{202c}",    // embedding and its pop
            "\u{2067}admin\u{2069}", // right-to-left isolate
            "de\u{200b}ploy",        // zero-width space
            "de\u{200c}ploy",        // zero-width non-joiner
            "de\u{200d}ploy",        // zero-width joiner
            "de\u{2060}ploy",        // word joiner
            "de\u{feff}ploy",        // zero-width no-break space (byte order mark)
            "de\u{ad}ploy",          // soft hyphen
            "de\u{200e}ploy",        // left-to-right mark
        ] {
            let error = clean_name(raw).unwrap_err();
            assert!(error.contains("invisible characters"), "{raw:?}: {error}");
        }
    }

    #[test]
    fn control_characters_keep_their_own_message() {
        assert_eq!(
            clean_name("ring\u{7}"),
            Err("Remove control characters from the name.")
        );
    }
}
