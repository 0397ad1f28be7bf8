//! Values parsed once at the edge; past it, the type is the proof.

mod address_allowlist;
pub mod application;
mod email;
mod expiry;
mod field_errors;
mod overlap;
mod password;
pub mod policy;
mod role;
pub mod scim;
mod scope;
pub mod secret;
mod token_request;

pub use address_allowlist::AddressAllowlist;
pub use application::{ApplicationDetails, ApplicationInput};
pub use email::Email;
pub use expiry::{Expiry, ExpiryChoice};
pub use field_errors::{clean_name, FieldErrors};
pub use overlap::Overlap;
pub use password::{hash_password, verify_password, PasswordRules};
pub use policy::Policy;
pub use role::Role;
pub use scope::{Scope, ScopeInfo, ScopeSet, CATALOGUE};
pub use secret::{sha256_hex, Secret};
pub use token_request::{
    custom_date_range, parse_allowlist, parse_expiry, ScopeLimit, TokenRequest, TokenRequestInput,
};
