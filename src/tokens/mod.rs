//! Access tokens, personal and application: the secret's format, the store, the authenticator, Last used.

pub mod actions;
pub mod address_refusals;
pub mod authenticator;
pub mod cache;
pub mod idle;
pub mod inventory;
pub mod last_used;
pub mod leaks;
mod secret;
pub mod store;
pub mod throttle;
pub mod usage;

pub use address_refusals::AddressRefusals;
pub use authenticator::{
    extract, ApplicationIdentity, AuthFailure, Authenticated, Authenticator, CheckCounts, Client,
    Person, Principal, TokenSources,
};
pub use cache::{AuthCache, FreshCache};
pub use last_used::{LastUsedFlusher, LastUsedRecorder};
pub use secret::{
    looks_like_token, TokenDigest, TokenKind, TokenSecret, APPLICATION_TOKEN_PREFIX, TOKEN_PREFIX,
};
pub use store::{
    with_last_use, CreatedToken, PersonalAccessToken, PreviousSecret, Renewal, SecretUsed, Tab,
    TokenOwner, TokenStatus, TokenStoreError,
};
pub use throttle::FailureThrottle;
