//! Applications and their tokens through the API, for an admin's or a maintainer's personal
//! token holding `applicationToken:read` or `:write`.

use actix_web::web::{self, Json};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::accounts::applications::{self as service, ApplicationError};
use crate::api::auth::ApiAuth;
use crate::api::error::{ApiError, ErrorBody};
use crate::api::tokens::{
    actor, created_response, origin, own_token, owned_page, rotated_response, rotation, ListQuery,
    TokenList,
};
use crate::applications::{self, Application, Listed};
use crate::db::Db;
use crate::domain::{ApplicationInput, FieldErrors, Scope, ScopeLimit, TokenRequestInput};
use crate::http::ClientIp;
use crate::notifications::Outbox;
use crate::tokens::actions::Rotator;
use crate::tokens::{actions, Person, Principal, TokenOwner};

#[derive(Serialize, ToSchema)]
pub struct ApplicationJson {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
    /// Tokens neither revoked nor expired.
    pub active_tokens: i64,
    /// The most recent use of any of its tokens.
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<Listed> for ApplicationJson {
    fn from(listed: Listed) -> Self {
        ApplicationJson {
            id: listed.application.id,
            name: listed.application.name,
            description: listed.application.description,
            created_at: listed.application.created_at.and_utc(),
            active_tokens: listed.active_tokens,
            last_used_at: listed.last_used_at.map(|at| at.and_utc()),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ApplicationList {
    pub applications: Vec<ApplicationJson>,
}

/// The body of a create request.
#[derive(ToSchema)]
#[allow(dead_code)]
struct CreateApplicationBody {
    /// 1 to 100 characters, unique (in any case) among applications not archived.
    name: String,
    /// Up to 500 characters.
    description: Option<String>,
}

/// The live applications the token's owner may manage: every one for an admin, the ones they
/// maintain for anyone else.
#[utoipa::path(get, path = "/api/v1/applications", tag = "applications", operation_id = "list_applications",
    responses(
        (status = 200, description = "Applications by name", body = ApplicationList),
        (status = 403, description = "The token lacks applicationToken:read, or is an application's", body = ErrorBody),
    ),
    security(("bearer" = []), ("x_auth_token" = []), ("query_token" = [])))]
pub async fn list(
    db: web::Data<Db>,
    ApiAuth(auth): ApiAuth,
) -> Result<Json<ApplicationList>, ApiError> {
    let person = auth.person_holding(Scope::APPLICATION_TOKEN_READ)?;
    let scope = if person.role == crate::domain::Role::Admin {
        applications::Scope::All
    } else {
        applications::Scope::MaintainedBy(person.user_id)
    };
    let found = db.run(move |conn| applications::list(conn, scope)).await?;
    Ok(Json(ApplicationList {
        applications: found.into_iter().map(ApplicationJson::from).collect(),
    }))
}

/// Creates an application (admins only).
#[utoipa::path(post, path = "/api/v1/applications", tag = "applications", operation_id = "create_application", request_body = CreateApplicationBody,
    responses(
        (status = 201, description = "Created", body = ApplicationJson,
            headers(("Location" = String, description = "The application's tokens in this API"))),
        (status = 403, description = "Not an admin's token, or it lacks applicationToken:write", body = ErrorBody),
        (status = 422, description = "Field errors", body = ErrorBody),
    ),
    security(("bearer" = []), ("x_auth_token" = []), ("query_token" = [])))]
pub async fn create(
    req: HttpRequest,
    db: web::Data<Db>,
    ApiAuth(auth): ApiAuth,
    body: Json<ApplicationInput>,
) -> Result<HttpResponse, ApiError> {
    if auth.person_holding(Scope::APPLICATION_TOKEN_WRITE)?.role != crate::domain::Role::Admin {
        return Err(ApiError::Forbidden(
            "Only admins create applications.".into(),
        ));
    }
    let details = body.parse().map_err(ApiError::Validation)?;
    let application = service::create(&db, actor(&req, &auth)?, details)
        .await
        .map_err(application_error)?;
    Ok(HttpResponse::Created()
        .insert_header((
            actix_web::http::header::LOCATION,
            format!("/api/v1/applications/{}/tokens", application.id),
        ))
        .json(ApplicationJson::from(Listed {
            application,
            active_tokens: 0,
            last_used_at: None,
        })))
}

fn application_error(e: ApplicationError) -> ApiError {
    match e {
        ApplicationError::Db(e) => e.into(),
        ApplicationError::NotFound => ApiError::NotFound,
        ApplicationError::NoLongerAdmin | ApplicationError::Archived => {
            ApiError::Forbidden(e.to_string())
        }
        refusal => ApiError::Validation(FieldErrors::one(
            refusal.field().unwrap_or("request"),
            refusal.to_string(),
        )),
    }
}

/// The application in the path, if the token's owner may manage it; anything else is not
/// found, so ids reveal nothing.
async fn managed(db: &Db, person: &Person, raw_id: &str) -> Result<Application, ApiError> {
    let id: i64 = raw_id.parse().map_err(|_| ApiError::NotFound)?;
    let user_id = person.user_id;
    db.run(move |conn| match crate::users::find(conn, user_id)? {
        Some(user) => applications::find_managed(conn, id, &user),
        None => Ok(None),
    })
    .await?
    .ok_or(ApiError::NotFound)
}

/// The application's id in the path (and a token's, for a revoke). By name, not position:
/// under `/{token}/api/v1/…` the token is a path segment too.
#[derive(Deserialize)]
pub struct ApplicationPath {
    id: String,
    #[serde(default)]
    token_id: String,
}

/// The application's tokens, newest first.
#[utoipa::path(get, path = "/api/v1/applications/{id}/tokens", tag = "applications", operation_id = "list_application_tokens", params(("id" = i64, Path, description = "Application id"), ListQuery),
    responses(
        (status = 200, description = "A page of its tokens", body = TokenList),
        (status = 403, description = "The token lacks applicationToken:read, or is an application's", body = ErrorBody),
        (status = 404, description = "No application the token's owner may manage", body = ErrorBody),
    ),
    security(("bearer" = []), ("x_auth_token" = []), ("query_token" = [])))]
pub async fn tokens(
    db: web::Data<Db>,
    ApiAuth(auth): ApiAuth,
    path: web::Path<ApplicationPath>,
    query: web::Query<ListQuery>,
) -> Result<Json<TokenList>, ApiError> {
    let person = auth.person_holding(Scope::APPLICATION_TOKEN_READ)?;
    let application = managed(&db, person, &path.id).await?;
    owned_page(&db, TokenOwner::Application(application.id), &query).await
}

/// Creates a token for the application. Its scopes may be any the organisation allows
/// application tokens (not bounded by the maker's role); it must expire, within the maximum
/// lifetime for application tokens.
#[utoipa::path(post, path = "/api/v1/applications/{id}/tokens", tag = "applications", operation_id = "create_application_token",
    params(("id" = i64, Path, description = "Application id")),
    request_body = crate::api::tokens::CreateTokenBody,
    responses(
        (status = 201, description = "Created; the secret is in this response only", body = crate::api::tokens::CreatedTokenJson,
            headers(("Location" = String, description = "The application's tokens"))),
        (status = 403, description = "The token lacks applicationToken:write, or its owner may no longer manage the application", body = ErrorBody),
        (status = 404, description = "No application the token's owner may manage", body = ErrorBody),
        (status = 422, description = "Field errors", body = ErrorBody),
    ),
    security(("bearer" = []), ("x_auth_token" = []), ("query_token" = [])))]
pub async fn create_token(
    req: HttpRequest,
    db: web::Data<Db>,
    outbox: web::Data<Outbox>,
    ApiAuth(auth): ApiAuth,
    path: web::Path<ApplicationPath>,
    body: Json<TokenRequestInput>,
) -> Result<HttpResponse, ApiError> {
    let person = auth.person_holding(Scope::APPLICATION_TOKEN_WRITE)?;
    let application = managed(&db, person, &path.id).await?;
    let policy = crate::policy::current(&db).await?;
    let rules = policy.for_applications();
    let request = body
        .into_inner()
        .or_default_expiry(&rules)
        .parse(
            &ScopeLimit::Applications(policy.application_scopes),
            Utc::now().naive_utc(),
            &rules,
        )
        .map_err(ApiError::Validation)?;
    let owner = TokenOwner::Application(application.id);
    let created = actions::create(
        &db,
        **outbox,
        actor(&req, &auth)?,
        owner,
        request,
        origin(&auth),
    )
    .await?;
    auth.delegated(created.token.scopes());
    let location = format!("/api/v1/applications/{}/tokens", application.id);
    Ok(created_response(&created, location, &policy))
}

/// Revokes one of the application's tokens.
#[utoipa::path(delete, path = "/api/v1/applications/{id}/tokens/{token_id}", tag = "applications", operation_id = "revoke_application_token",
    params(("id" = i64, Path, description = "Application id"), ("token_id" = i64, Path, description = "Token id")),
    responses(
        (status = 204, description = "Revoked (or already revoked)"),
        (status = 403, description = "The token lacks applicationToken:write", body = ErrorBody),
        (status = 404, description = "Not a token of an application the token's owner may manage", body = ErrorBody),
    ),
    security(("bearer" = []), ("x_auth_token" = []), ("query_token" = [])))]
pub async fn revoke_token(
    req: HttpRequest,
    db: web::Data<Db>,
    outbox: web::Data<Outbox>,
    ApiAuth(auth): ApiAuth,
    path: web::Path<ApplicationPath>,
) -> Result<HttpResponse, ApiError> {
    let person = auth.person_holding(Scope::APPLICATION_TOKEN_WRITE)?;
    let application = managed(&db, person, &path.id).await?;
    let owner = TokenOwner::Application(application.id);
    let token = own_token(&db, owner, &path.token_id).await?;
    actions::revoke(
        &db,
        **outbox,
        actor(&req, &auth)?,
        &token,
        &application.name,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Replaces the presenting application token's secret: same name and scopes, a new secret, the
/// old one refused from now on; within the policy for application tokens. For automation that
/// renews its own credential: no person acts, and the audit trail says the token did.
#[utoipa::path(post, path = "/api/v1/application-tokens/self/rotate", tag = "applications", operation_id = "rotate_application_token_itself", request_body = crate::api::tokens::RotateBody,
    responses(
        (status = 200, description = "The new secret; the only time it is returned", body = crate::api::tokens::CreatedTokenJson),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an application token, or a secret already replaced", body = ErrorBody),
        (status = 422, description = "The expiry, overlap or allowlist (or a scope the policy no longer allows) is refused", body = ErrorBody),
    ),
    security(("bearer" = []), ("x_auth_token" = []), ("query_token" = [])))]
pub async fn rotate_self(
    req: HttpRequest,
    db: web::Data<Db>,
    ApiAuth(auth): ApiAuth,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let Principal::Application(application) = &auth.principal else {
        return Err(ApiError::Forbidden(
            "This is a personal token: rotate it at /api/v1/personal-access-tokens/self/rotate."
                .into(),
        ));
    };
    let owner = TokenOwner::Application(application.id);
    let policy = crate::policy::current(&db).await?.for_applications();
    let rotation = rotation(&auth, &body, &policy)?;
    let rotator = Rotator::ApplicationTokenItself {
        client_ip: ClientIp::of_request(&req).0,
    };
    let rotated = actions::regenerate(&db, rotator, owner, auth.token_id, rotation).await?;
    let location = format!("/api/v1/applications/{}/tokens", application.id);
    Ok(rotated_response(&rotated, location, &policy))
}
