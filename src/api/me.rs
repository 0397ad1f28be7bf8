use actix_web::web::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::auth::ApiAuth;

#[derive(Serialize, ToSchema)]
pub struct MeResponse {
    pub user: MeUser,
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
pub struct MeToken {
    pub id: i64,
    pub name: String,
    /// The scopes in effect now: the token's scopes within what the owner's role allows.
    pub scopes: Vec<&'static str>,
    /// UTC; null when the token never expires.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Who the presented token speaks for.
#[utoipa::path(get, path = "/api/v1/me", tag = "tokens",
    responses(
        (status = 200, description = "The token's owner and the token", body = MeResponse),
        (status = 401, description = "Missing, malformed, unknown, revoked or expired token", body = crate::api::error::ErrorBody),
    ),
    security(("bearer" = []), ("x_auth_token" = []), ("query_token" = [])))]
pub async fn me(ApiAuth(auth): ApiAuth) -> Json<MeResponse> {
    Json(MeResponse {
        user: MeUser {
            id: auth.user_id,
            email: auth.email,
            name: auth.display_name,
            role: auth.role.as_str().to_owned(),
        },
        token: MeToken {
            id: auth.token_id,
            name: auth.token_name,
            scopes: auth.scopes.iter().map(|s| s.name()).collect(),
            expires_at: auth.expires_at.map(|at| at.and_utc()),
        },
    })
}
