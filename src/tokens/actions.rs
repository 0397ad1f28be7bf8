//! Changing tokens, with the audit event in the same transaction. The pages and the JSON API
//! both call these, so they behave and audit the same.

use crate::audit::{Action, Event};
use crate::db::{Db, DbError};
use crate::domain::{Expiry, TokenRequest};
use crate::tokens::{store, CreatedToken, PersonalAccessToken, TokenStoreError};

/// Who is acting, for the audit trail.
#[derive(Clone, Debug)]
pub struct Actor {
    pub user_id: i64,
    pub email: String,
    pub client_ip: String,
}

/// What the audit trail records about a token: never its secret.
pub fn details(token: &PersonalAccessToken, owner_email: &str) -> String {
    let expires = token.expires_at.map_or_else(
        || "never".to_owned(),
        |at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    );
    format!(
        "owner={owner_email}; scopes={}; expires={expires}",
        token.scopes().to_stored()
    )
}

/// Creates a token owned by the actor. `Ok(Err(name))` when the name is taken.
pub async fn create(
    db: &Db,
    actor: Actor,
    request: TokenRequest,
) -> Result<Result<CreatedToken, String>, DbError> {
    db.write(move |conn| {
        let created = match store::create(conn, actor.user_id, &request) {
            Ok(created) => created,
            Err(TokenStoreError::NameTaken) => return Ok(Err(request.name)),
            Err(TokenStoreError::Query(e)) => return Err(e),
        };
        Event::new(Action::TokenCreated, Some(actor.user_id))
            .target("token", Some(created.token.id), &created.token.name)
            .client_ip(&actor.client_ip)
            .details(details(&created.token, &actor.email))
            .record(conn)?;
        Ok(Ok(created))
    })
    .await
}

/// Revokes `token` (owned by `owner_email`); false when it was already revoked.
pub async fn revoke(
    db: &Db,
    actor: Actor,
    token: &PersonalAccessToken,
    owner_email: &str,
) -> Result<bool, DbError> {
    let (token_id, name) = (token.id, token.name.clone());
    let details = details(token, owner_email);
    db.write(move |conn| {
        let revoked = store::revoke(conn, token_id, actor.user_id)?;
        if revoked {
            Event::new(Action::TokenRevoked, Some(actor.user_id))
                .target("token", Some(token_id), &name)
                .client_ip(&actor.client_ip)
                .details(details)
                .record(conn)?;
        }
        Ok(revoked)
    })
    .await
}

/// A new secret for `token_id`; `None` when it was revoked meanwhile.
pub async fn regenerate(
    db: &Db,
    actor: Actor,
    token_id: i64,
    expiry: Expiry,
) -> Result<Option<CreatedToken>, DbError> {
    db.write(move |conn| {
        let created = match store::regenerate(conn, token_id, expiry) {
            Ok(Some(created)) => created,
            Ok(None) | Err(TokenStoreError::NameTaken) => return Ok(None),
            Err(TokenStoreError::Query(e)) => return Err(e),
        };
        Event::new(Action::TokenRegenerated, Some(actor.user_id))
            .target("token", Some(created.token.id), &created.token.name)
            .client_ip(&actor.client_ip)
            .details(details(&created.token, &actor.email))
            .record(conn)?;
        Ok(Some(created))
    })
    .await
}
