use actix_web::web::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::auth::ApiAuth;
use crate::tokens::Principal;

/// Who the token speaks for: `user` for a personal token, `application` for an application's.
#[derive(Serialize, ToSchema)]
pub struct MeResponse {
    /// personal or application
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<MeUser>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application: Option<MeApplication>,
    pub token: MeToken,
}

#[derive(Serialize, ToSchema)]
pub struct MeUser {
    pub id: i64,
    pub email: String,
    pub name: String,
    /// admin or user
    pub role: String,
}

#[derive(Serialize, ToSchema)]
pub struct MeApplication {
    pub id: i64,
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct MeToken {
    pub id: i64,
    pub name: String,
    /// The scopes in effect now: the token's scopes within what the owner's role (for an
    /// application token, the organisation's policy for them) allows.
    pub scopes: Vec<&'static str>,
    /// UTC; null when the token never expires.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Who the presented token speaks for.
#[utoipa::path(get, path = "/api/v1/me", tag = "tokens",
    responses(
        (status = 200, description = "The token's owner (a person or an application) and the token", body = MeResponse),
        (status = 401, description = "Missing, malformed, unknown, revoked or expired token", body = crate::api::error::ErrorBody),
    ),
    security(("bearer" = []), ("x_auth_token" = []), ("query_token" = [])))]
pub async fn me(ApiAuth(auth): ApiAuth) -> Json<MeResponse> {
    let (user, application) = match auth.principal {
        Principal::Person(person) => (
            Some(MeUser {
                id: person.user_id,
                email: person.email,
                name: person.display_name,
                role: person.role.as_str().to_owned(),
            }),
            None,
        ),
        Principal::Application(application) => (
            None,
            Some(MeApplication {
                id: application.id,
                name: application.name,
            }),
        ),
    };
    Json(MeResponse {
        kind: if user.is_some() {
            "personal"
        } else {
            "application"
        },
        user,
        application,
        token: MeToken {
            id: auth.token_id,
            name: auth.token_name,
            scopes: auth.scopes.iter().map(|s| s.name()).collect(),
            expires_at: auth.expires_at.map(|at| at.and_utc()),
        },
    })
}
