//! Developer → Access Tokens: a person's own tokens.

mod list;
mod new;
mod regenerate;
mod reveal;
pub mod revoke;
mod token_page;

use chrono::NaiveDateTime;

use crate::db::Db;
use crate::domain::{
    custom_date_range, Expiry, ExpiryChoice, FieldErrors, Policy, Scope, ScopeSet,
};
use crate::tokens::actions::TokenError;
use crate::tokens::{store, PersonalAccessToken, TokenOwner};
use crate::web::error::AppError;
use crate::web::format;
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
    get "/developer/access-tokens/{id}" => token_page::show,
}

/// Loads one of the signed-in person's own tokens; anyone else's id, or a malformed one, is
/// a 404, so ids reveal nothing.
async fn own_token(db: &Db, user_id: i64, raw_id: &str) -> Result<PersonalAccessToken, AppError> {
    let token_id: i64 = raw_id.parse().map_err(|_| AppError::NotFound)?;
    let owner = TokenOwner::Person(user_id);
    db.run(move |conn| store::find_owned(conn, owner, token_id))
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

/// The catalogue as checkboxes: `allowed` enabled, the rest greyed out.
pub fn scope_groups(allowed: ScopeSet, checked: &[String]) -> Vec<ScopeGroup> {
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
    Ok(FieldErrors::one(field, refusal.to_string()))
}

/// The expiry picker of the New token and Regenerate forms: the choices the policy allows, each
/// with the date it leads to, and the range of a custom date.
pub struct ExpiryField {
    pub options: Vec<ExpiryOption>,
    pub max_lifetime_days: Option<i64>,
    /// Bounds of the custom date (YYYY-MM-DD).
    pub date_min: String,
    pub date_max: String,
}

pub struct ExpiryOption {
    pub choice: ExpiryChoice,
    /// What the form says under the picker when this is chosen.
    pub preview: String,
    /// Said as a warning (no expiration).
    pub warning: bool,
}

impl ExpiryField {
    pub fn new(policy: &Policy, now: NaiveDateTime) -> Self {
        let options = policy
            .expiry_choices()
            .into_iter()
            .map(|choice| ExpiryOption {
                choice,
                preview: match choice.resolve(now) {
                    Some(Expiry::At(at)) => format!("The token will expire on {} (UTC).", format::day(at)),
                    Some(Expiry::Never) => "The token will never expire. A token without an expiry works until someone revokes it, also after it leaks: choose an expiry unless you truly need one that never ends.".to_owned(),
                    None => "The token will expire at the end of the day you choose (UTC).".to_owned(),
                },
                warning: choice == ExpiryChoice::Never,
            })
            .collect();
        let (first, last) = custom_date_range(now, policy);
        ExpiryField {
            options,
            max_lifetime_days: policy.max_lifetime_days,
            date_min: first.to_string(),
            date_max: last.to_string(),
        }
    }

    /// The preview of the choice the form holds, and whether it is a warning.
    pub fn preview(&self, value: &str) -> Option<&ExpiryOption> {
        self.options.iter().find(|o| o.choice.value() == value)
    }
}

/// A line of a form's error summary: which field, what is wrong, where to jump.
pub struct ErrorLink {
    pub target: &'static str,
    pub message: String,
}

/// The form's errors in the order its fields stand, each linking to its field.
pub fn error_links(errors: &FieldErrors, fields: &[(&str, &'static str)]) -> Vec<ErrorLink> {
    fields
        .iter()
        .filter_map(|(field, target)| {
            errors.get(field).map(|message| ErrorLink {
                target,
                message: message.to_owned(),
            })
        })
        .collect()
}
