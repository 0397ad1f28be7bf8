//! `/auth/verify`: nginx `auth_request` and Traefik ForwardAuth ask whether a request's token is good.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::api::auth::authenticate_request;
use crate::api::error::{self, ApiError, ErrorBody};
use crate::domain::Scope;
use crate::tokens::Principal;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VerifyQuery {
    /// A scope that must be in effect, e.g. license:write.
    scope: Option<String>,
}

/// 204 with the owner in `X-Auth-*` headers when the token is good (and has `scope`):
/// `X-Auth-Kind` says whether a person (`X-Auth-User-*`, `X-Auth-Role`) or an application
/// (`X-Auth-Application-*`) stands behind it.
/// The token may be in the headers, or in the original request's URI (`X-Original-URI` from
/// nginx, `X-Forwarded-Uri` from Traefik), as a `token` query parameter or a path segment.
#[utoipa::path(get, path = "/auth/verify", tag = "gateway", params(VerifyQuery),
    responses(
        (status = 204, description = "The token is good; X-Auth-Kind (personal or application), X-Auth-Scopes, and X-Auth-User-Id, X-Auth-User-Email and X-Auth-Role for a personal token or X-Auth-Application-Id and X-Auth-Application-Name for an application's describe it"),
        (status = 401, description = "Missing, malformed, unknown, revoked or expired token", body = ErrorBody),
        (status = 403, description = "The token lacks the required scope", body = ErrorBody),
    ))]
pub async fn verify(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    // Parsed here rather than by an extractor: its errors answer in JSON like every other.
    let query =
        web::Query::<VerifyQuery>::from_query(req.query_string()).map_err(error::bad_query)?;
    let required = match &query.scope {
        Some(name) => Some(name.parse::<Scope>().map_err(|_| {
            ApiError::BadRequest(format!("Unknown scope {name:?} in the scope parameter."))
        })?),
        None => None,
    };
    let original: Vec<&str> = ["x-original-uri", "x-forwarded-uri"]
        .iter()
        .filter_map(|name| req.headers().get(*name)?.to_str().ok())
        .collect();
    let auth = authenticate_request(&req, &original).await?;
    if let Some(scope) = required {
        auth.require(scope)?;
    }
    let scopes: Vec<&str> = auth.scopes.iter().map(|s| s.name()).collect();
    let mut response = HttpResponse::NoContent();
    response
        .insert_header(("X-Auth-Kind", auth.kind().as_str()))
        .insert_header(("X-Auth-Scopes", scopes.join(" ")));
    match auth.principal {
        Principal::Person(person) => response
            .insert_header(("X-Auth-User-Id", person.user_id.to_string()))
            .insert_header(("X-Auth-User-Email", person.email))
            .insert_header(("X-Auth-Role", person.role.as_str())),
        Principal::Application(application) => response
            .insert_header(("X-Auth-Application-Id", application.id.to_string()))
            .insert_header(("X-Auth-Application-Name", header_safe(&application.name))),
    };
    Ok(response.finish())
}

/// A header value carries visible ASCII only: an application's name with other characters is
/// percent-encoded (as UTF-8), so a gateway passes it on unchanged and a client can decode it.
fn header_safe(name: &str) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
    const NOT_VISIBLE_ASCII: &AsciiSet = &CONTROLS.add(b'%');
    utf8_percent_encode(name, NOT_VISIBLE_ASCII).to_string()
}
