//! The token format: a kind's prefix (`tdk_` personal, `tda_` application) + 32 base62
//! characters from the OS CSPRNG (190 bits) + a 6-character base62 CRC32 of everything before it. The checksum lets a typo or a random
//! string be refused without touching the database, and lets secret scanners spot a leak.

use std::fmt;

use crate::domain::{sha256_hex, Secret};

/// Changing this would silently invalidate every personal token ever issued.
pub const TOKEN_PREFIX: &str = "tdk_";
/// The same for application tokens: a secret scanner tells the kinds apart by it.
pub const APPLICATION_TOKEN_PREFIX: &str = "tda_";
const PREFIX_LEN: usize = 4;
const RANDOM_CHARS: usize = 32;
const CHECKSUM_CHARS: usize = 6;
const TOKEN_LEN: usize = PREFIX_LEN + RANDOM_CHARS + CHECKSUM_CHARS;

/// Whom a token speaks for: a person, or an application (a service that outlives the people
/// who made its tokens).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenKind {
    Personal,
    Application,
}

impl TokenKind {
    pub fn prefix(self) -> &'static str {
        match self {
            TokenKind::Personal => TOKEN_PREFIX,
            TokenKind::Application => APPLICATION_TOKEN_PREFIX,
        }
    }

    /// As the API, the gateway headers and CSV exports name it.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Personal => "personal",
            TokenKind::Application => "application",
        }
    }

    /// The kind a token's text names by its prefix.
    pub fn of(candidate: &str) -> Option<TokenKind> {
        [TokenKind::Personal, TokenKind::Application]
            .into_iter()
            .find(|kind| candidate.starts_with(kind.prefix()))
    }
}
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A token in plaintext. It exists once, between generation and the reveal page, or for the
/// length of one request that presents it; `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret(String);

/// The SHA-256 of a token, hex-encoded: the only form the database holds.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TokenDigest(pub String);

impl TokenSecret {
    /// A new personal token.
    pub fn generate() -> Self {
        Self::generate_kind(TokenKind::Personal)
    }

    pub fn generate_kind(kind: TokenKind) -> Self {
        let mut token = String::with_capacity(TOKEN_LEN);
        token.push_str(kind.prefix());
        token.push_str(Secret::generate(RANDOM_CHARS).expose());
        token.push_str(&checksum(&token));
        Self(token)
    }

    /// The token with this random body (for tests that need well-formed tokens of their own).
    #[cfg(test)]
    pub fn with_body(body: &str) -> String {
        let token = format!("{TOKEN_PREFIX}{body}");
        let check = checksum(&token);
        token + &check
    }

    /// Accepts only a well-formed token with a valid checksum.
    pub fn parse(candidate: &str) -> Option<Self> {
        looks_like_token(candidate).then(|| Self(candidate.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn kind(&self) -> TokenKind {
        TokenKind::of(&self.0).expect("a parsed or generated token has a known prefix")
    }

    pub fn digest(&self) -> TokenDigest {
        TokenDigest(sha256_hex(&self.0))
    }

    /// What lists show: enough to recognise a token, far too little to use it.
    pub fn hint(&self) -> String {
        let (prefix, body) = self.0.split_at(PREFIX_LEN);
        format!("{prefix}{}…{}", &body[..4], &body[body.len() - 4..])
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret(sensitive)")
    }
}

/// True when `candidate` has a kind's prefix, the length, the alphabet and a matching checksum.
pub fn looks_like_token(candidate: &str) -> bool {
    if candidate.len() != TOKEN_LEN || TokenKind::of(candidate).is_none() {
        return false;
    }
    if !candidate[PREFIX_LEN..]
        .bytes()
        .all(|b| b.is_ascii_alphanumeric())
    {
        return false;
    }
    let (body, check) = candidate.split_at(TOKEN_LEN - CHECKSUM_CHARS);
    checksum(body) == check
}

fn checksum(body: &str) -> String {
    let mut value = crc32fast::hash(body.as_bytes()) as u64;
    let mut out = [b'0'; CHECKSUM_CHARS];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
    String::from_utf8(out.to_vec()).expect("base62 is ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_pinned() {
        // Changing the prefix revokes every token in the wild: this test must fail first.
        assert_eq!(TOKEN_PREFIX, "tdk_");
        let token = TokenSecret::generate();
        assert!(token.expose().starts_with("tdk_"));
        assert_eq!(token.expose().len(), 42);
    }

    #[test]
    fn application_tokens_have_their_own_pinned_prefix_and_the_same_format() {
        assert_eq!(APPLICATION_TOKEN_PREFIX, "tda_");
        let token = TokenSecret::generate_kind(TokenKind::Application);
        assert!(token.expose().starts_with("tda_") && token.expose().len() == 42);
        let parsed = TokenSecret::parse(token.expose()).unwrap();
        assert_eq!(parsed.kind(), TokenKind::Application);
        assert!(token.hint().starts_with("tda_"));
        // The checksum covers the prefix: a personal token relabelled is refused.
        assert!(!looks_like_token(
            &token.expose().replacen("tda_", "tdk_", 1)
        ));
        assert_eq!(TokenSecret::generate().kind(), TokenKind::Personal);
    }

    #[test]
    fn generated_tokens_parse_and_differ() {
        let a = TokenSecret::generate();
        let b = TokenSecret::generate();
        assert_ne!(a, b);
        assert!(TokenSecret::parse(a.expose()).is_some());
    }

    #[test]
    fn checksum_detects_every_single_character_change() {
        for _ in 0..20 {
            let token = TokenSecret::generate();
            let original = token.expose().as_bytes().to_vec();
            for position in TOKEN_PREFIX.len()..original.len() {
                for &replacement in BASE62 {
                    if replacement == original[position] {
                        continue;
                    }
                    let mut changed = original.clone();
                    changed[position] = replacement;
                    let changed = String::from_utf8(changed).unwrap();
                    assert!(
                        !looks_like_token(&changed),
                        "{position} -> {}",
                        replacement as char
                    );
                }
            }
        }
    }

    #[test]
    fn refuses_near_misses() {
        let token = TokenSecret::generate();
        let t = token.expose();
        assert!(!looks_like_token(&t[..41]));
        assert!(!looks_like_token(&format!("{t}x")));
        assert!(!looks_like_token(&t.replacen("tdk_", "tdx_", 1)));
        assert!(!looks_like_token(&format!("tdk_{}", "é".repeat(19))));
        assert!(!looks_like_token(""));
    }

    #[test]
    fn digest_is_sha256_hex_and_never_the_plaintext() {
        let token = TokenSecret::generate();
        let digest = token.digest();
        assert_eq!(digest.0.len(), 64);
        assert_ne!(digest.0, token.expose());
        assert!(!digest.0.contains(&token.expose()[4..12]));
        assert_eq!(digest, TokenSecret::parse(token.expose()).unwrap().digest());
    }

    #[test]
    fn hint_and_debug_do_not_reveal_the_secret() {
        let token = TokenSecret::generate();
        let hint = token.hint();
        assert!(hint.starts_with("tdk_") && hint.contains('…'));
        assert_eq!(hint.chars().count(), 4 + 4 + 1 + 4);
        assert_eq!(format!("{token:?}"), "TokenSecret(sensitive)");
    }
}
