//! SCIM 2.0 provisioning (RFC 7644), the subset identity providers use: `/scim/v2/Users` to
//! list (with `filter=userName eq "…"`), get, create, replace (PUT), change (PATCH) and
//! deactivate (DELETE) members, for an application token holding `scim:write`. Bodies and
//! errors are `application/scim+json`, with the RFC's schemas.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use chrono::NaiveDateTime;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::accounts::members::MemberError;
use crate::accounts::provisioning::{self, Provisioner};
use crate::api::auth::authenticate_request;
use crate::api::error::ApiError;
use crate::db::{Db, DbError};
use crate::domain::scim::{self, ScimRefusal, UserChanges, ERROR_SCHEMA, LIST_SCHEMA, USER_SCHEMA};
use crate::domain::Scope;
use crate::http::{public_base_url, ClientIp, Site};
use crate::tokens::Principal;
use crate::users::User;

const SCIM_JSON: &str = "application/scim+json";
/// A list answers at most this many members a page.
const PAGE_MAX: i64 = 200;

pub fn routes(cfg: &mut web::ServiceConfig, timed: bool) {
    cfg.service(
        web::scope("/scim/v2")
            .configure(|cfg| scim_routes(cfg, timed))
            .default_service(web::to(not_found)),
    );
}

crate::route_table! {
    /// Served under `/scim/v2`.
    fn scim_routes, SCIM_ROUTES, other_methods => method_not_allowed;
    get "/Users" => list,
    post "/Users" => create,
    get "/Users/{id}" => show,
    put "/Users/{id}" => replace,
    patch "/Users/{id}" => patch,
    delete "/Users/{id}" => deactivate,
    get "/ServiceProviderConfig" => service_provider_config,
}

/// An RFC 7644 error: `{"schemas": [Error], "status": "400", "scimType": …, "detail": …}`.
#[derive(Debug)]
pub struct ScimError {
    status: StatusCode,
    scim_type: Option<&'static str>,
    detail: String,
    /// `WWW-Authenticate`, `Retry-After` or `Allow`, carried over from the API's own answer.
    headers: Vec<(header::HeaderName, header::HeaderValue)>,
}

impl ScimError {
    fn new(status: StatusCode, scim_type: Option<&'static str>, detail: impl Into<String>) -> Self {
        Self {
            status,
            scim_type,
            detail: detail.into(),
            headers: Vec::new(),
        }
    }

    fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, None, "No such resource.")
    }
}

impl std::fmt::Display for ScimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

impl ResponseError for ScimError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.as_u16().to_string(),
            "detail": self.detail,
        });
        if let Some(scim_type) = self.scim_type {
            body["scimType"] = json!(scim_type);
        }
        let mut response = HttpResponse::build(self.status);
        response.content_type(SCIM_JSON);
        for header in &self.headers {
            response.insert_header(header.clone());
        }
        response.body(body.to_string())
    }
}

impl From<ScimRefusal> for ScimError {
    fn from(refusal: ScimRefusal) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            Some(refusal.scim_type),
            refusal.detail,
        )
    }
}

/// The API's answer (a bad token, too many bad tokens, the store down) in SCIM's shape.
impl From<ApiError> for ScimError {
    fn from(e: ApiError) -> Self {
        let answer = e.error_response();
        let carried = [header::WWW_AUTHENTICATE, header::RETRY_AFTER, header::ALLOW];
        let headers = carried
            .into_iter()
            .filter_map(|name| Some((name.clone(), answer.headers().get(&name)?.clone())))
            .collect();
        Self {
            status: answer.status(),
            scim_type: None,
            detail: e.to_string(),
            headers,
        }
    }
}

impl From<DbError> for ScimError {
    fn from(e: DbError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<MemberError> for ScimError {
    fn from(e: MemberError) -> Self {
        match e {
            MemberError::NotFound => Self::not_found(),
            MemberError::EmailTaken => Self::new(
                StatusCode::CONFLICT,
                Some("uniqueness"),
                "A member with this userName (email address) already exists.",
            ),
            MemberError::ExternalIdTaken => Self::new(
                StatusCode::CONFLICT,
                Some("uniqueness"),
                "Another member has this externalId.",
            ),
            MemberError::LastAdmin(_) => {
                Self::new(StatusCode::BAD_REQUEST, Some("mutability"), e.to_string())
            }
            MemberError::NoLongerProvisioning => {
                ApiError::Auth(crate::tokens::AuthFailure::Revoked).into()
            }
            MemberError::Db(e) => e.into(),
            other => Self::new(StatusCode::BAD_REQUEST, None, other.to_string()),
        }
    }
}

async fn not_found() -> HttpResponse {
    ScimError::not_found().error_response()
}

fn method_not_allowed(allow: &str) -> HttpResponse {
    ScimError::from(ApiError::MethodNotAllowed(allow.to_owned())).error_response()
}

/// The application token this request came with, holding `scim:write`.
async fn provisioner(req: &HttpRequest) -> Result<Provisioner, ScimError> {
    let auth = authenticate_request(req, &[]).await?;
    let Principal::Application(application) = &auth.principal else {
        return Err(ScimError::new(
            StatusCode::FORBIDDEN,
            None,
            "SCIM takes an application token holding scim:write, not a personal token.",
        ));
    };
    auth.require(Scope::SCIM_WRITE).map_err(ApiError::from)?;
    Ok(Provisioner {
        application_id: application.id,
        application_name: application.name.clone(),
        token_id: auth.token_id,
        client_ip: ClientIp::of_request(req).0,
    })
}

fn json_body(body: &[u8]) -> Result<Value, ScimError> {
    serde_json::from_slice(body).map_err(|e| {
        ScimError::new(
            StatusCode::BAD_REQUEST,
            Some("invalidSyntax"),
            format!("The body is not JSON: {e}."),
        )
    })
}

/// A member id from the path; anything else names no member.
fn member_id(path: &str) -> Result<i64, ScimError> {
    path.parse().map_err(|_| ScimError::not_found())
}

fn timestamp(at: NaiveDateTime) -> String {
    at.and_utc().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A member as a SCIM user resource.
fn user_json(user: &User, base: &str) -> Value {
    let mut resource = json!({
        "schemas": [USER_SCHEMA],
        "id": user.id.to_string(),
        "userName": user.email,
        "displayName": user.display_name,
        "name": {"formatted": user.display_name},
        "emails": [{"value": user.email, "type": "work", "primary": true}],
        "active": user.is_active,
        "meta": {
            "resourceType": "User",
            "created": timestamp(user.created_at),
            "lastModified": timestamp(user.updated_at),
            "location": format!("{base}/scim/v2/Users/{}", user.id),
        },
    });
    if let Some(external_id) = &user.external_id {
        resource["externalId"] = json!(external_id);
    }
    resource
}

fn base(req: &HttpRequest) -> String {
    let site = req
        .app_data::<web::Data<Site>>()
        .map(|s| s.get_ref().clone());
    public_base_url(req, &site.unwrap_or_default())
}

fn user_response(status: StatusCode, user: &User, req: &HttpRequest) -> HttpResponse {
    let base = base(req);
    let mut response = HttpResponse::build(status);
    response.content_type(SCIM_JSON);
    if status == StatusCode::CREATED {
        response.insert_header((
            header::LOCATION,
            format!("{base}/scim/v2/Users/{}", user.id),
        ));
    }
    response.body(user_json(user, &base).to_string())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListQuery {
    filter: Option<String>,
    start_index: Option<String>,
    count: Option<String>,
}

/// A number of the query, or the RFC's error for it.
fn number(raw: Option<&str>, default: i64) -> Result<i64, ScimError> {
    raw.map_or(Ok(default), |raw| {
        raw.trim().parse().map_err(|_| {
            ScimError::new(
                StatusCode::BAD_REQUEST,
                Some("invalidValue"),
                "startIndex and count must be whole numbers.",
            )
        })
    })
}

async fn list(req: HttpRequest, db: web::Data<Db>) -> Result<HttpResponse, ScimError> {
    provisioner(&req).await?;
    let query = web::Query::<ListQuery>::from_query(req.query_string()).map_err(|_| {
        ScimError::new(
            StatusCode::BAD_REQUEST,
            Some("invalidSyntax"),
            "The query string cannot be read.",
        )
    })?;
    let filter = scim::parse_filter(query.filter.as_deref())?;
    // RFC 7644 3.4.2.4: a startIndex below 1 is read as 1, a negative count as 0.
    let start_index = number(query.start_index.as_deref(), 1)?.max(1);
    let count = number(query.count.as_deref(), 100)?.clamp(0, PAGE_MAX);
    let (total, members) = provisioning::list(&db, filter, start_index, count).await?;
    let base = base(&req);
    let resources: Vec<Value> = members.iter().map(|m| user_json(m, &base)).collect();
    let body = json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    });
    Ok(HttpResponse::Ok()
        .content_type(SCIM_JSON)
        .body(body.to_string()))
}

async fn show(
    req: HttpRequest,
    db: web::Data<Db>,
    id: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    provisioner(&req).await?;
    let user = provisioning::find(&db, member_id(&id)?).await?;
    let user = user.ok_or_else(ScimError::not_found)?;
    Ok(user_response(StatusCode::OK, &user, &req))
}

async fn create(
    req: HttpRequest,
    db: web::Data<Db>,
    body: web::Bytes,
) -> Result<HttpResponse, ScimError> {
    let by = provisioner(&req).await?;
    let resource = scim::parse_user(&json_body(&body)?)?;
    let user = provisioning::create(&db, by, resource).await?;
    Ok(user_response(StatusCode::CREATED, &user, &req))
}

async fn replace(
    req: HttpRequest,
    db: web::Data<Db>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ScimError> {
    let read = |body: &Value| Ok(UserChanges::replacing(scim::parse_user(body)?));
    change(req, db, &id, &body, read).await
}

async fn patch(
    req: HttpRequest,
    db: web::Data<Db>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ScimError> {
    change(req, db, &id, &body, scim::parse_patch).await
}

/// A PUT or a PATCH: the body `read` into changes, applied to member `id`.
async fn change(
    req: HttpRequest,
    db: web::Data<Db>,
    id: &str,
    body: &[u8],
    read: impl FnOnce(&Value) -> Result<UserChanges, ScimRefusal>,
) -> Result<HttpResponse, ScimError> {
    let by = provisioner(&req).await?;
    let id = member_id(id)?;
    let changes = read(&json_body(body)?)?;
    let user = provisioning::change(&db, by, id, changes).await?;
    Ok(user_response(StatusCode::OK, &user, &req))
}

/// Deactivates the member: tokendesk keeps people (and their audit trail) and refuses their
/// sessions and tokens; a GET afterwards shows `active: false`.
async fn deactivate(
    req: HttpRequest,
    db: web::Data<Db>,
    id: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    let by = provisioner(&req).await?;
    let changes = UserChanges {
        active: Some(false),
        ..UserChanges::default()
    };
    provisioning::change(&db, by, member_id(&id)?, changes).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// What this service provider supports (RFC 7643 section 5), for clients that ask.
async fn service_provider_config(req: HttpRequest) -> Result<HttpResponse, ScimError> {
    provisioner(&req).await?;
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": PAGE_MAX},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": false},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Application access token",
            "description": "An application token holding scim:write, as Authorization: Bearer.",
        }],
    });
    Ok(HttpResponse::Ok()
        .content_type(SCIM_JSON)
        .body(body.to_string()))
}
