//! Personal access tokens: the secret's format and the store.

mod secret;
pub mod store;

pub use secret::{looks_like_token, TokenDigest, TokenSecret, TOKEN_PREFIX};
pub use store::{CreatedToken, PersonalAccessToken, Tab, TokenStatus, TokenStoreError};
