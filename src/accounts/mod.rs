//! Services for people's accounts: signing in, members and their roles. Each change is one
//! transaction with its audit event; the pages and the command line call these.

pub mod members;
pub mod password_links;
pub mod passwords;
pub mod setup;
pub mod sign_in;
