use std::fmt;

use validator::ValidateEmail;

use super::field_errors::has_invisible_characters;

/// An email address in one spelling per mailbox, so that nobody can hold a second account
/// under an address that looks like (or reaches the same mailbox as) someone else's: trimmed,
/// lower-cased, and its domain in the ASCII form DNS uses, after the IDNA mapping (UTS #46) that
/// browsers apply to a host. That mapping puts the domain in NFC and folds what it cannot tell
/// apart: fullwidth letters, "。" and other full stops, upper case; and `bücher.example` and
/// `xn--bcher-kva.example` become the same `xn--bcher-kva.example`. The part before the @ may
/// only be ASCII (the HTML rule `validate_email` applies), so it has no other forms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

const NOT_AN_ADDRESS: &str = "Enter a valid email address, like name@example.com.";

impl Email {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err("Enter an email address.");
        }
        // Told apart from other mistakes: a pasted address can carry them unseen.
        if has_invisible_characters(raw) {
            return Err(
                "Remove invisible characters (such as zero-width spaces or direction \
                        marks) from the email address.",
            );
        }
        let (local, domain) = raw.rsplit_once('@').ok_or(NOT_AN_ADDRESS)?;
        let domain = idna::domain_to_ascii(domain).map_err(|_| NOT_AN_ADDRESS)?;
        let email = format!("{}@{domain}", local.to_lowercase());
        if email.len() > 254 || !email.validate_email() {
            return Err(NOT_AN_ADDRESS);
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(raw: &str) -> String {
        let email = Email::parse(raw).unwrap_or_else(|e| panic!("{raw:?}: {e}"));
        let again = Email::parse(email.as_str()).unwrap();
        assert_eq!(again, email, "{raw:?}: the stored form parses to itself");
        email.0
    }

    #[test]
    fn normalises_case_and_space() {
        assert_eq!(canonical("  Ada@Example.COM "), "ada@example.com");
    }

    #[test]
    fn refuses_what_is_not_an_address() {
        for bad in ["", "   ", "ada", "ada@", "@example.com", "a b@example.com"] {
            assert!(Email::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn look_alike_domains_are_the_same_address() {
        for raw in [
            "kim@ｅxample.com",          // fullwidth e
            "kim@ＥＸＡＭＰＬＥ.ＣＯＭ", // fullwidth capitals
            "kim@example。com",          // ideographic full stop
            "kim@example．com",          // fullwidth full stop
            "kim@example｡com",           // halfwidth ideographic full stop
        ] {
            assert_eq!(canonical(raw), "kim@example.com", "{raw}");
        }
    }

    #[test]
    fn unicode_domains_are_kept_in_their_ascii_form() {
        let nfc = "kim@b\u{fc}cher.example";
        let nfd = "kim@bu\u{308}cher.example";
        for raw in [nfc, nfd, "kim@BÜCHER.example", "kim@xn--bcher-kva.example"] {
            assert_eq!(canonical(raw), "kim@xn--bcher-kva.example", "{raw}");
        }
        assert_eq!(
            canonical("KIM@XN--BCHER-KVA.EXAMPLE"),
            "kim@xn--bcher-kva.example"
        );
    }

    #[test]
    fn punycode_that_idna_would_never_produce_is_refused() {
        // The punycode of "ｅxample" (fullwidth e): a second spelling of example.com if kept.
        let disguised = format!(
            "kim@xn--{}.com",
            idna::punycode::encode_str("ｅxample").unwrap()
        );
        assert_eq!(Email::parse(&disguised), Err(NOT_AN_ADDRESS), "{disguised}");
        assert_eq!(Email::parse("kim@xn--zz.com"), Err(NOT_AN_ADDRESS));
    }

    #[test]
    fn invisible_characters_are_refused_with_their_own_message() {
        for raw in [
            "kim@exam\u{ad}ple.com",   // soft hyphen
            "kim@exam\u{200b}ple.com", // zero-width space
            "k\u{200b}im@example.com",
            "k\u{200d}im@example.com", // zero-width joiner
            "kim\u{2060}@example.com", // word joiner
            "\u{feff}kim@example.com", // byte order mark
            "kim@\u{202e}moc.elpmaxe", // right-to-left override
            "kim@\u{2066}example.com\u{2069}",
        ] {
            let error = Email::parse(raw).unwrap_err();
            assert!(error.contains("invisible characters"), "{raw:?}: {error}");
        }
    }

    #[test]
    fn the_part_before_the_at_is_ascii_only() {
        for raw in [
            "kım@example.com",
            "ｋim@example.com",
            "ki\u{301}m@example.com",
        ] {
            assert_eq!(Email::parse(raw), Err(NOT_AN_ADDRESS), "{raw}");
        }
    }
}
