//! Developer → Access Tokens: a person's own tokens; and, by the same pages, the tokens of an
//! application the person maintains (Developer → Applications → its tokens). A [`Shelf`] says
//! whose tokens a request is about.

pub mod list;
mod new;
mod overlap;
mod regenerate;
mod reveal;
pub mod revoke;
mod token_page;
pub mod usage;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use chrono::NaiveDateTime;
use futures_util::future::LocalBoxFuture;

use crate::applications::{self, Application};
use crate::db::Db;
use crate::domain::ScopeLimit;
use crate::domain::{
    custom_date_range, Expiry, ExpiryChoice, FieldErrors, Policy, Scope, ScopeSet,
};
use crate::tokens::actions::TokenError;
use crate::tokens::{store, PersonalAccessToken, TokenOwner};
use crate::web::error::AppError;
use crate::web::format;
use crate::web::layout::{Chrome, Section};
use crate::web::session::CurrentUser;
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
    get "/developer/access-tokens/{id}/end-overlap" => overlap::confirm,
    post "/developer/access-tokens/{id}/end-overlap" => overlap::end,
    post "/developer/access-tokens/{id}/dismiss-new-address" => usage::dismiss,
    get "/developer/access-tokens/{id}/narrow" => usage::confirm_narrow,
    post "/developer/access-tokens/{id}/narrow" => usage::narrow,
    get "/developer/access-tokens/{id}" => token_page::show,
}

crate::route_table! {
    /// The same pages for an application's tokens.
    pub fn application_routes, APPLICATION_ROUTES, other_methods => crate::web::error::method_not_allowed;
    get "/developer/applications/{app}/tokens" => list::show,
    post "/developer/applications/{app}/tokens" => new::submit,
    get "/developer/applications/{app}/tokens/new" => new::show,
    get "/developer/applications/{app}/tokens/reveal" => reveal::show,
    get "/developer/applications/{app}/tokens/{id}/revoke" => revoke::show,
    post "/developer/applications/{app}/tokens/{id}/revoke" => revoke::submit,
    get "/developer/applications/{app}/tokens/{id}/regenerate" => regenerate::show,
    post "/developer/applications/{app}/tokens/{id}/regenerate" => regenerate::submit,
    get "/developer/applications/{app}/tokens/{id}/end-overlap" => overlap::confirm,
    post "/developer/applications/{app}/tokens/{id}/end-overlap" => overlap::end,
    post "/developer/applications/{app}/tokens/{id}/dismiss-new-address" => usage::dismiss,
    get "/developer/applications/{app}/tokens/{id}/narrow" => usage::confirm_narrow,
    post "/developer/applications/{app}/tokens/{id}/narrow" => usage::narrow,
    get "/developer/applications/{app}/tokens/{id}" => token_page::show,
}

/// A token's id in the path, by name: an application's pages have its id in the path too.
#[derive(serde::Deserialize)]
pub struct TokenPath {
    pub id: String,
}

/// Whose tokens a page shows and changes: the signed-in person's own, or those of the
/// application in the path (`{app}`), which they must be allowed to manage (an active admin,
/// or a maintainer): anything else is a 404, so ids reveal nothing.
pub struct Shelf {
    pub current: CurrentUser,
    pub owner: TokenOwner,
    pub application: Option<Application>,
    /// Where the shelf's pages are: `/developer/access-tokens` or
    /// `/developer/applications/7/tokens`.
    pub base: String,
    /// The heading and breadcrumb of its pages.
    pub title: String,
    /// The scopes a token here may hold now: the person's role's, or the policy's for
    /// application tokens.
    pub allowed: ScopeSet,
}

impl Shelf {
    pub fn chrome(&self) -> Chrome {
        let section = match self.owner {
            TokenOwner::Person(_) => Section::ACCESS_TOKENS,
            TokenOwner::Application(_) => Section::APPLICATIONS,
        };
        Chrome::for_user(&self.current, section)
    }

    pub fn is_application(&self) -> bool {
        self.application.is_some()
    }

    /// The address of one of its pages: `path` is "" for the list, or "/new", "/12/revoke"…
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The rules a token's expiry follows here.
    pub fn rules(&self, policy: &Policy) -> Policy {
        match self.owner {
            TokenOwner::Person(_) => policy.clone(),
            TokenOwner::Application(_) => policy.for_applications(),
        }
    }

    pub fn limit(&self) -> ScopeLimit {
        match self.owner {
            TokenOwner::Person(_) => ScopeLimit::Role(self.current.user.role()),
            TokenOwner::Application(_) => ScopeLimit::Applications(self.allowed),
        }
    }

    /// Why a scope of the New token form cannot be ticked here.
    pub fn unavailable_note(&self, scope: &str) -> &'static str {
        let application_only = scope.parse::<Scope>().is_ok_and(Scope::is_application_only);
        match (self.is_application(), application_only) {
            (false, true) => "Application tokens only.",
            (false, false) => "Admins only.",
            (true, true) => "Only an admin gives it.",
            (true, false) => "Not allowed for application tokens.",
        }
    }

    /// How a scope the token holds but may not use is explained.
    pub fn not_allowed_note(&self) -> &'static str {
        match self.owner {
            TokenOwner::Person(_) => "not allowed for your role",
            TokenOwner::Application(_) => "not allowed for application tokens",
        }
    }

    /// How the audit trail names the owner.
    pub fn owner_label(&self) -> &str {
        match &self.application {
            Some(application) => &application.name,
            None => &self.current.user.email,
        }
    }

    /// One of the shelf's tokens; anyone else's id, or a malformed one, is a 404.
    async fn token(&self, db: &Db, raw_id: &str) -> Result<PersonalAccessToken, AppError> {
        let token_id: i64 = raw_id.parse().map_err(|_| AppError::NotFound)?;
        let owner = self.owner;
        db.run(move |conn| store::find_owned(conn, owner, token_id))
            .await?
            .ok_or(AppError::NotFound)
    }
}

impl FromRequest for Shelf {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let current = CurrentUser::from_request(req, payload);
        let app = req.match_info().get("app").map(str::to_owned);
        let db = req.app_data::<web::Data<Db>>().cloned();
        Box::pin(async move {
            let current = current.await?;
            let Some(app) = app else {
                return Ok(Shelf {
                    owner: TokenOwner::Person(current.user.id),
                    application: None,
                    base: HOME.to_owned(),
                    title: "Access Tokens".to_owned(),
                    allowed: ScopeSet::allowed_for(current.user.role()),
                    current,
                });
            };
            let id: i64 = app.parse().map_err(|_| AppError::NotFound)?;
            let db = db.ok_or_else(|| anyhow::anyhow!("the database is not registered"))?;
            let user = current.user.clone();
            let found = db
                .read(move |conn| {
                    let Some(application) = applications::find_managed(conn, id, &user)? else {
                        return Ok(None);
                    };
                    let mut allowed = crate::policy::load(conn)?.application_scopes;
                    // Only an admin gives an application tokendesk's own administration.
                    if !user.is_admin() {
                        allowed = allowed.difference(ScopeSet::application_only());
                    }
                    Ok(Some((application, allowed)))
                })
                .await?;
            let (application, allowed) = found.ok_or(AppError::NotFound)?;
            Ok(Shelf {
                owner: TokenOwner::Application(application.id),
                base: format!("/developer/applications/{}/tokens", application.id),
                title: application.name.clone(),
                application: Some(application),
                allowed,
                current,
            })
        })
    }
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
