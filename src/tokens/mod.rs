//! Personal access tokens: the secret's format, and (later) the store and the authenticator.

mod secret;

pub use secret::{looks_like_token, TokenDigest, TokenSecret, TOKEN_PREFIX};
