use actix_web::http::header;
use actix_web::web::{self, Json};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::auth::ApiAuth;
use crate::api::error::{ApiError, ErrorBody};
use crate::db::Db;
use crate::domain::Policy;
use crate::domain::{
    parse_expiry, AddressAllowlist, FieldErrors, Overlap, Scope, ScopeLimit, TokenRequestInput,
};
use crate::http::ClientIp;
use crate::notifications::Outbox;
use crate::tokens::actions::{self, Actor, NewExpiry, Origin, Rotation, Rotator};
use crate::tokens::usage::{self, Insight};
use crate::tokens::{
    idle, store, Authenticated, PersonalAccessToken, PreviousSecret, SecretUsed, Tab, TokenOwner,
};

const PER_PAGE: i64 = 100;

#[derive(Serialize, ToSchema)]
pub struct TokenJson {
    pub id: i64,
    /// personal or application
    pub kind: &'static str,
    pub name: String,
    /// Enough to recognise the token, never enough to use it.
    pub hint: String,
    pub scopes: Vec<&'static str>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_used_ip: Option<String>,
    /// active, expired or revoked
    pub status: &'static str,
    /// Why it was revoked, when no person did it: leak_report (someone reported it leaked) or
    /// unused (it went unused as long as the token policy allows).
    pub revoked_reason: Option<String>,
    /// When it will be revoked unless it is used before, under the token policy's rule for
    /// unused tokens; null when the policy keeps unused tokens, or the token is not active.
    pub idle_revocation_at: Option<DateTime<Utc>>,
    /// The addresses and CIDR ranges it may be used from; null: anywhere.
    pub allowed_addresses: Option<Vec<String>>,
    /// The secret its last regenerate replaced, while it still works (one token's view only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret: Option<PreviousSecretJson>,
    /// The distinct (client address, user agent) pairs that used it, most recently seen
    /// first: the 20 most recent (one token's view only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Vec<UsagePairJson>>,
    /// Each scope it holds, with when it was last exercised (one token's view only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes_exercised: Option<Vec<ScopeExerciseJson>>,
    /// Since when scopes exercised are known: a scope not exercised has not been since then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes_exercised_since: Option<DateTime<Utc>>,
    /// The flag its first use from an address it had never used raised, until the owner
    /// dismisses it in the portal; null when there is none (one token's view only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_address: Option<Option<NewAddressJson>>,
}

#[derive(Serialize, ToSchema)]
pub struct UsagePairJson {
    pub address: String,
    /// Empty when the client sent none.
    pub user_agent: String,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub uses: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ScopeExerciseJson {
    pub scope: &'static str,
    /// null: not exercised since `scopes_exercised_since`.
    pub last_exercised_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct NewAddressJson {
    pub address: String,
    pub user_agent: String,
    pub seen_at: DateTime<Utc>,
}

/// A replaced secret in its overlap: both it and the new one authenticate until `valid_until`.
#[derive(Serialize, ToSchema)]
pub struct PreviousSecretJson {
    pub hint: String,
    pub valid_until: DateTime<Utc>,
    /// Its own uses since it was replaced (and before, as the token's).
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_used_ip: Option<String>,
}

impl From<&PreviousSecret> for PreviousSecretJson {
    fn from(previous: &PreviousSecret) -> Self {
        PreviousSecretJson {
            hint: previous.hint.clone(),
            valid_until: previous.valid_until.and_utc(),
            last_used_at: previous.last_used_at.map(|at| at.and_utc()),
            last_used_ip: previous.last_used_ip.clone(),
        }
    }
}

impl TokenJson {
    /// A token as the API shows it, under the token policy in force.
    pub fn new(token: &PersonalAccessToken, policy: &Policy) -> Self {
        let now = Utc::now().naive_utc();
        TokenJson {
            id: token.id,
            kind: token.kind().as_str(),
            name: token.name.clone(),
            hint: token.hint.clone(),
            scopes: token.scopes().iter().map(|s| s.name()).collect(),
            created_at: token.created_at.and_utc(),
            expires_at: token.expires_at.map(|at| at.and_utc()),
            last_used_at: token.last_used_at.map(|at| at.and_utc()),
            last_used_ip: token.last_used_ip.clone(),
            status: token.status(now).as_str(),
            revoked_reason: token.revoked_reason.clone(),
            idle_revocation_at: idle::deadline(token, policy, now).map(|at| at.and_utc()),
            allowed_addresses: token.allowlist().map(|list| list.entries().collect()),
            previous_secret: None,
            usage: None,
            scopes_exercised: None,
            scopes_exercised_since: None,
            new_address: None,
        }
    }
}

impl TokenJson {
    /// With the replaced secret still working, for one token's view.
    fn with_previous(mut self, previous: Option<&PreviousSecret>) -> Self {
        self.previous_secret = previous.map(PreviousSecretJson::from);
        self
    }

    /// With how it is used, for one token's view.
    fn with_insight(mut self, insight: Insight) -> Self {
        self.usage = Some(
            insight
                .pairs
                .into_iter()
                .map(|pair| UsagePairJson {
                    address: pair.address,
                    user_agent: pair.user_agent,
                    first_seen_at: pair.first_seen_at.and_utc(),
                    last_seen_at: pair.last_seen_at.and_utc(),
                    uses: pair.use_count,
                })
                .collect(),
        );
        self.scopes_exercised = Some(
            insight
                .scopes
                .iter()
                .map(|s| ScopeExerciseJson {
                    scope: s.scope.name(),
                    last_exercised_at: s.last_exercised_at.map(|at| at.and_utc()),
                })
                .collect(),
        );
        self.scopes_exercised_since = Some(insight.exercise_known_since.and_utc());
        self.new_address = Some(insight.alert.map(|alert| NewAddressJson {
            address: alert.address,
            user_agent: alert.user_agent,
            seen_at: alert.seen_at.and_utc(),
        }));
        self
    }
}

#[derive(Serialize, ToSchema)]
pub struct TokenList {
    pub tokens: Vec<TokenJson>,
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// 1-based page of 100.
    page: Option<i64>,
    /// true to list revoked tokens instead of current ones.
    revoked: Option<bool>,
}

/// The person acting through their token; an application token is refused (it has no tokens
/// or applications of its own).
pub(crate) fn actor(req: &HttpRequest, auth: &Authenticated) -> Result<Actor, ApiError> {
    let person = auth.person()?;
    Ok(Actor {
        user_id: person.user_id,
        email: person.email.clone(),
        client_ip: ClientIp::of_request(req).0,
    })
}

/// The token owner's tokens, newest first.
#[utoipa::path(get, path = "/api/v1/personal-access-tokens", tag = "tokens", params(ListQuery),
    responses(
        (status = 200, description = "A page of tokens", body = TokenList),
        (status = 403, description = "The token lacks personalAccessToken:read", body = ErrorBody),
    ),
    security(("bearer" = []), ("x_auth_token" = []), ("query_token" = [])))]
pub async fn list(
    db: web::Data<Db>,
    ApiAuth(auth): ApiAuth,
    query: web::Query<ListQuery>,
) -> Result<Json<TokenList>, ApiError> {
    let person = auth.person_holding(Scope::PERSONAL_ACCESS_TOKEN_READ)?;
    owned_page(&db, TokenOwner::Person(person.user_id), &query).await
}

/// A page of `owner`'s tokens as the list routes answer it, newest first.
pub(crate) async fn owned_page(
    db: &Db,
    owner: TokenOwner,
    query: &ListQuery,
) -> Result<Json<TokenList>, ApiError> {
    let tab = if query.revoked.unwrap_or(false) {
        Tab::Revoked
    } else {
        Tab::Current
    };
    let page = query.page.unwrap_or(1).max(1);
    // A page past the end is empty, however far past: never an overflow.
    let offset = (page - 1).saturating_mul(PER_PAGE);
    let (found, policy) = db
        .run(move |conn| {
            let found = store::list_owned(conn, owner, tab, offset, PER_PAGE)?;
            Ok((found, crate::policy::load(conn)?))
        })
        .await?;
    Ok(Json(TokenList {
        tokens: found
            .items
            .iter()
            .map(|token| TokenJson::new(token, &policy))
            .collect(),
        total: found.total,
        page,
        per_page: PER_PAGE,
    }))
}

/// The new token, with its secret: the only time the secret is returned.
#[derive(Serialize, ToSchema)]
pub struct CreatedTokenJson {
    pub token: TokenJson,
    pub secret: String,
}

/// The body of a create request; the same rules as the New token form.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct CreateTokenBody {
    /// 1 to 100 characters, unique among the owner's active tokens.
    name: String,
    /// 1, 7, 30, 60, 90, 365, custom or never; when left out, the organisation's default expiry
    /// (the one the New token form preselects).
    expires_in: Option<String>,
    /// YYYY-MM-DD, when expires_in is custom.
    expires_on: Option<String>,
    /// At least one; only what the owner's role allows.
    scopes: Vec<String>,
    /// Up to 20 IPv4/IPv6 addresses or CIDR ranges the token may be used from; left out or
    /// empty: anywhere. The token policy may require it for write scopes.
    allowed_addresses: Option<Vec<String>>,
}

/// Where a token of the API is read: the `Location` of a created one.
fn token_location(id: i64) -> String {
    format!("/api/v1/personal-access-tokens/{id}")
}

/// Creates a token for the owner of the presented token.
#[utoipa::path(post, path = "/api/v1/personal-access-tokens", tag = "tokens", request_body = CreateTokenBody,
    responses(
        (status = 201, description = "Created; the secret is in this response only", body = CreatedTokenJson,
            headers(("Location" = String, description = "The new token's address in this API"))),
        (status = 403, description = "The token lacks personalAccessToken:write", body = ErrorBody),
        (status = 422, description = "Field errors", body = ErrorBody),
    ),
    security(("bearer" = []), ("x_auth_token" = []), ("query_token" = [])))]
pub async fn create(
    req: HttpRequest,
    db: web::Data<Db>,
    outbox: web::Data<Outbox>,
    ApiAuth(auth): ApiAuth,
    body: Json<TokenRequestInput>,
) -> Result<HttpResponse, ApiError> {
    let role = auth
        .person_holding(Scope::PERSONAL_ACCESS_TOKEN_WRITE)?
        .role;
    let actor = actor(&req, &auth)?;
    let policy = crate::policy::current(&db).await?;
    let input = body.into_inner();
    let defaulted = input.expires_in.is_empty();
    let mut request = input
        .or_default_expiry(&policy)
        .parse(&ScopeLimit::Role(role), Utc::now().naive_utc(), &policy)
        .map_err(ApiError::Validation)?;
    if defaulted {
        // Left to the default, a token made by a token lives no longer than its maker.
        request.expiry = request.expiry.no_later_than(auth.expires_at);
    }
    // Without a list of its own, a token made by a token is used from where its maker may be.
    if request.allowed_addresses.is_none() {
        request.allowed_addresses = auth.allowed_addresses.clone();
    }
    let owner = TokenOwner::Person(actor.user_id);
    let created = actions::create(&db, **outbox, actor, owner, request, origin(&auth)).await?;
    auth.delegated(created.token.scopes());
    let location = token_location(created.token.id);
    Ok(created_response(&created, location, &policy))
}

/// The token making a request, as the maker of what it creates.
pub(crate) fn origin(auth: &Authenticated) -> Origin {
    Origin::Token {
        id: auth.token_id,
        name: auth.token_name.clone(),
        scopes: auth.scopes,
        expires_at: auth.expires_at,
        allowed_addresses: auth.allowed_addresses.clone(),
    }
}

/// 201 with the new token, its secret (the only time it is sent) and its address.
pub(crate) fn created_response(
    created: &crate::tokens::CreatedToken,
    location: String,
    policy: &Policy,
) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .json(CreatedTokenJson {
            token: TokenJson::new(&created.token, policy),
            secret: created.secret.expose().to_owned(),
        })
}

/// One of the owner's tokens; anyone else's id, or a malformed one, is not found.
pub(crate) async fn own_token(
    db: &Db,
    owner: TokenOwner,
    raw_id: &str,
) -> Result<PersonalAccessToken, ApiError> {
    let token_id: i64 = raw_id.parse().map_err(|_| ApiError::NotFound)?;
    db.run(move |conn| store::find_owned(conn, owner, token_id))
        .await?
        .ok_or(ApiError::NotFound)
}

/// A token's id in the path. By name, not position: under `/{token}/api/v1/…` the token is a
/// path segment too.
#[derive(Deserialize)]
pub struct TokenPath {
    id: String,
}

/// One of the owner's tokens; anything else is not found.
#[utoipa::path(get, path = "/api/v1/personal-access-tokens/{id}", tag = "tokens",
    params(("id" = i64, Path, description = "Token id")),
    responses(
        (status = 200, description = "The token", body = TokenJson),
        (status = 403, description = "The token lacks personalAccessToken:read", body = ErrorBody),
        (status = 404, description = "Not one of the owner's tokens", body = ErrorBody),
    ),
    security(("bearer" = []), ("x_auth_token" = []), ("query_token" = [])))]
pub async fn show(
    db: web::Data<Db>,
    ApiAuth(auth): ApiAuth,
    path: web::Path<TokenPath>,
) -> Result<Json<TokenJson>, ApiError> {
    let person = auth.person_holding(Scope::PERSONAL_ACCESS_TOKEN_READ)?;
    let owner = TokenOwner::Person(person.user_id);
    let token = own_token(&db, owner, &path.id).await?;
    let token_id = token.id;
    let shown = token.clone();
    let (policy, previous, insight) = db
        .run(move |conn| {
            Ok((
                crate::policy::load(conn)?,
                store::previous_secret(conn, token_id)?,
                usage::insight(conn, &shown)?,
            ))
        })
        .await?;
    Ok(Json(
        TokenJson::new(&token, &policy)
            .with_previous(previous.as_ref())
            .with_insight(insight),
    ))
}

/// Revokes one of the owner's tokens; anything else is not found.
#[utoipa::path(delete, path = "/api/v1/personal-access-tokens/{id}", tag = "tokens",
    params(("id" = i64, Path, description = "Token id")),
    responses(
        (status = 204, description = "Revoked (or already revoked)"),
        (status = 403, description = "The token lacks personalAccessToken:write", body = ErrorBody),
        (status = 404, description = "Not one of the owner's tokens", body = ErrorBody),
    ),
    security(("bearer" = []), ("x_auth_token" = []), ("query_token" = [])))]
pub async fn revoke(
    req: HttpRequest,
    db: web::Data<Db>,
    outbox: web::Data<Outbox>,
    ApiAuth(auth): ApiAuth,
    path: web::Path<TokenPath>,
) -> Result<HttpResponse, ApiError> {
    auth.person_holding(Scope::PERSONAL_ACCESS_TOKEN_WRITE)?;
    let actor = actor(&req, &auth)?;
    let token = own_token(&db, TokenOwner::Person(actor.user_id), &path.id).await?;
    let owner_email = actor.email.clone();
    actions::revoke(&db, **outbox, actor, &token, &owner_email).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The body of a self-rotation; empty keeps the token's lifetime.
#[derive(Default, Deserialize, ToSchema)]
#[serde(default)]
pub struct RotateBody {
    /// As for a new token (1, 7, 30, 60, 90, 365, custom or never); left out, the new secret
    /// lives as long as the token was given last time.
    expires_in: Option<String>,
    /// YYYY-MM-DD, when expires_in is custom.
    expires_on: Option<String>,
    /// How long the old secret keeps working beside the new one: none (the default), 1h, 24h
    /// or 7d.
    overlap: Option<String>,
    /// Left out, the token keeps its allowlist; a list (empty: anywhere) replaces it.
    allowed_addresses: Option<Vec<String>>,
}

/// Replaces the presenting token's secret: same name and scopes, a new secret, the old one
/// refused from now on, or after the overlap asked for. For automation that renews its own
/// credential. Only the current secret may rotate (not one in its overlap).
#[utoipa::path(post, path = "/api/v1/personal-access-tokens/self/rotate", tag = "tokens", request_body = RotateBody,
    responses(
        (status = 200, description = "The new secret; the only time it is returned", body = CreatedTokenJson),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The secret presented was already replaced (previous_secret)", body = ErrorBody),
        (status = 422, description = "The expiry, overlap or allowlist is not allowed", body = ErrorBody),
    ),
    security(("bearer" = []), ("x_auth_token" = []), ("query_token" = [])))]
pub async fn rotate_self(
    req: HttpRequest,
    db: web::Data<Db>,
    ApiAuth(auth): ApiAuth,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let actor = actor(&req, &auth)?;
    let owner = TokenOwner::Person(actor.user_id);
    let policy = crate::policy::current(&db).await?;
    let rotation = rotation(&auth, &body, &policy)?;
    let rotated =
        actions::regenerate(&db, Rotator::Person(actor), owner, auth.token_id, rotation).await?;
    let location = token_location(rotated.token.id);
    Ok(rotated_response(&rotated, location, &policy))
}

/// What a self-rotation asks for, under `policy`. No body at all is the common case: keep the
/// lifetime and the allowlist, no overlap. A body must be readable JSON. A secret already
/// replaced may not rotate: it would cut off the clients that moved to the new one.
pub(crate) fn rotation(
    auth: &Authenticated,
    body: &[u8],
    policy: &Policy,
) -> Result<Rotation, ApiError> {
    if auth.secret == SecretUsed::Previous {
        return Err(ApiError::PreviousSecret);
    }
    let body: RotateBody = if body.iter().all(u8::is_ascii_whitespace) {
        RotateBody::default()
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::BadRequest(format!("The JSON body could not be read: {e}")))?
    };
    let invalid = |field, message| ApiError::Validation(FieldErrors::one(field, message));
    let expiry = match body.expires_in {
        None => NewExpiry::SameLength,
        Some(choice) => {
            let custom_date = body.expires_on.unwrap_or_default();
            let chosen = parse_expiry(&choice, &custom_date, Utc::now().naive_utc(), policy)
                .map_err(|(field, message)| invalid(field, message))?;
            NewExpiry::Chosen(chosen)
        }
    };
    let overlap: Overlap = body
        .overlap
        .unwrap_or_default()
        .parse()
        .map_err(|message| invalid("overlap", message))?;
    let allowed_addresses = body
        .allowed_addresses
        .map(|entries| AddressAllowlist::parse(&entries.join(",")))
        .transpose()
        .map_err(|message| invalid("allowed_addresses", message))?;
    Ok(Rotation {
        expiry,
        overlap,
        allowed_addresses,
        replacing: Some(auth.presented_digest.to_string()),
    })
}

/// 200 with the rotated token and its new secret (the only time it is sent).
pub(crate) fn rotated_response(
    rotated: &crate::tokens::CreatedToken,
    location: String,
    policy: &Policy,
) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::LOCATION, location))
        .json(CreatedTokenJson {
            token: TokenJson::new(&rotated.token, policy).with_previous(rotated.previous.as_ref()),
            secret: rotated.secret.expose().to_owned(),
        })
}
