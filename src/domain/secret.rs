//! Everything random tokendesk issues (tokens, session secrets, CSRF tokens, one-time keys, the
//! session key) comes from here: base62 characters from the operating system's random source,
//! and where it is kept, kept only as a SHA-256 digest.

use std::fmt;

use rand::distr::{Alphanumeric, SampleString};
use rand::rngs::OsRng;
use rand::TryRngCore;
use sha2::{Digest, Sha256};

/// A random secret in plaintext; `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// `chars` base62 characters, about 5.95 bits each.
    pub fn generate(chars: usize) -> Self {
        // The OS source failing is a broken machine, not something to carry on without.
        Self(Alphanumeric.sample_string(&mut OsRng.unwrap_err(), chars))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(sensitive)")
    }
}

/// The hex SHA-256 of a secret: the only form of it the database holds.
pub fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_base62_of_the_asked_length_and_differ() {
        let (a, b) = (Secret::generate(43), Secret::generate(43));
        assert_eq!(a.expose().len(), 43);
        assert!(a.expose().bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
        assert_eq!(format!("{a:?}"), "Secret(sensitive)");
        assert_eq!(sha256_hex("abc").len(), 64);
    }
}
