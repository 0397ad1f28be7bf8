//! Developer → Access Tokens: a person's own tokens.

mod list;
mod new;
mod regenerate;
mod reveal;
pub mod revoke;

use crate::db::Db;
use crate::domain::{FieldErrors, Role, Scope, ScopeSet};
use crate::tokens::actions::TokenError;
use crate::tokens::{store, PersonalAccessToken};
use crate::web::error::AppError;
use crate::web::HOME;

crate::route_table! {
    pub fn routes, ROUTES, other_methods => crate::web::error::method_not_allowed;
    get HOME => list::show,
    post HOME => new::submit,
    get "/developer/access-tokens/new" => new::show,
    get "/developer/access-tokens/reveal" => reveal::show,
    get "/developer/access-tokens/{id}/revoke" => revoke::show,
    post "/developer/access-tokens/{id}/revoke" => revoke::submit,
    get "/developer/access-tokens/{id}/regenerate" => regenerate::show,
    post "/developer/access-tokens/{id}/regenerate" => regenerate::submit,
}

/// Loads one of the signed-in person's own tokens; anyone else's id, or a malformed one, is
/// a 404, so ids reveal nothing.
async fn own_token(db: &Db, user_id: i64, raw_id: &str) -> Result<PersonalAccessToken, AppError> {
    let token_id: i64 = raw_id.parse().map_err(|_| AppError::NotFound)?;
    db.run(move |conn| store::find_owned(conn, user_id, token_id))
        .await?
        .ok_or(AppError::NotFound)
}

/// A checkbox of the scope picker.
pub struct ScopeOption {
    pub name: &'static str,
    pub description: &'static str,
    pub id: String,
    pub checked: bool,
    pub allowed: bool,
}

/// One resource's row: its read and write scopes side by side.
pub struct ScopeGroup {
    pub resource: &'static str,
    pub read: Option<ScopeOption>,
    pub write: Option<ScopeOption>,
}

pub fn scope_groups(role: Role, checked: &[String]) -> Vec<ScopeGroup> {
    let allowed = ScopeSet::allowed_for(role);
    let mut groups: Vec<ScopeGroup> = Vec::new();
    for scope in Scope::all() {
        let option = ScopeOption {
            name: scope.name(),
            description: scope.description(),
            id: format!("scope-{}", scope.name().replace(':', "-")),
            checked: checked.iter().any(|c| c == scope.name()),
            allowed: allowed.contains(scope),
        };
        let group = match groups.last_mut() {
            Some(group) if group.resource == scope.resource() => group,
            _ => {
                groups.push(ScopeGroup {
                    resource: scope.resource(),
                    read: None,
                    write: None,
                });
                groups.last_mut().expect("just pushed")
            }
        };
        if scope.is_read() {
            group.read = Some(option);
        } else {
            group.write = Some(option);
        }
    }
    groups
}

/// A refused token change as the form's field errors; what no field can show is an error page.
pub fn refusal_errors(refusal: TokenError) -> Result<FieldErrors, AppError> {
    let Some(field) = refusal.field() else {
        return Err(refusal.into());
    };
    let mut errors = FieldErrors::default();
    errors.add(field, refusal.to_string());
    Ok(errors)
}
