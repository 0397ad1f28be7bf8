use std::sync::OnceLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

pub struct PasswordRules;

impl PasswordRules {
    pub const MIN_CHARS: usize = 10;
    pub const MAX_CHARS: usize = 1024;

    pub fn check(password: &str) -> Result<(), String> {
        let chars = password.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(format!("Use at least {} characters.", Self::MIN_CHARS));
        }
        if chars > Self::MAX_CHARS {
            return Err(format!("Use at most {} characters.", Self::MAX_CHARS));
        }
        Ok(())
    }

    /// The rules as a person reads them beside a new-password field.
    pub fn describe() -> String {
        format!(
            "At least {} characters (at most {}). A few words make a strong one.",
            Self::MIN_CHARS,
            Self::MAX_CHARS
        )
    }
}

/// argon2id with the crate's default (OWASP-recommended) cost.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| anyhow::anyhow!("hashing a password failed: {e}"))
}

/// Checks `password` against `stored`. With no stored hash (unknown account, or no password
/// set yet) it still spends the time of one verification, so timing does not tell which.
pub fn verify_password(stored: Option<&str>, password: &str) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password("not a real password").unwrap_or_default());
    let (hash, real) = match stored {
        Some(hash) => (hash, true),
        None => (dummy.as_str(), false),
    };
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let matches = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    real && matches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_argon2id_and_verifies() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(Some(&hash), "correct horse battery"));
        assert!(!verify_password(Some(&hash), "correct horse batterY"));
        assert!(!verify_password(None, "correct horse battery"));
    }

    #[test]
    fn length_rules() {
        assert!(PasswordRules::check("short").is_err());
        assert!(PasswordRules::check("long enough!").is_ok());
        assert!(PasswordRules::check(&"x".repeat(1025)).is_err());
    }
}
