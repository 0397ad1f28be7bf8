//! Services for people's accounts: signing in, members and their roles, and what members
//! change of their own account. Each change is one transaction with its audit event; the
//! pages and the command line call these.

pub mod applications;
pub mod identity_provider;
pub mod members;
pub mod password_links;
pub mod passwords;
pub mod provider_sign_in;
pub mod provisioning;
pub mod self_service;
pub mod setup;
pub mod sign_in;

/// Rewrites, once, what an older release stored in a form this one no longer writes: run at
/// every start (and by every command), after the migrations.
pub fn upgrade_stored_data(conn: &mut crate::db::AnyConnection) -> diesel::QueryResult<()> {
    members::canonicalise_stored_emails(conn)?;
    applications::rekey_stored_names(conn)?;
    Ok(())
}
