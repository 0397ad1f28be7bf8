//! Values parsed once at the edge; past it, the type is the proof.

mod email;
mod password;
mod role;

pub use email::Email;
pub use password::{hash_password, verify_password, PasswordRules};
pub use role::Role;
