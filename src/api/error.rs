//! API errors: JSON `{"error": code, "message": text}`, with RFC 6750 challenges on 401/403.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::DbError;
use crate::domain::FieldErrors;
use crate::tokens::AuthFailure;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Auth(#[from] AuthFailure),
    #[error("The request is not valid.")]
    Validation(FieldErrors),
    #[error("{0}")]
    BadRequest(String),
    #[error("No such resource.")]
    NotFound,
    /// Known, and not the caller's to do.
    #[error("{0}")]
    Forbidden(String),
    /// The path exists; the methods it takes, for the `Allow` header.
    #[error("This address does not take that method; it takes {0}.")]
    MethodNotAllowed(String),
    #[error("The request body is larger than allowed.")]
    PayloadTooLarge,
    #[error("The token store is unavailable; try again shortly.")]
    Unavailable,
    #[error(
        "Too many bad tokens came from this address; try again in {retry_after_secs} seconds."
    )]
    TooManyRequests { retry_after_secs: u64 },
    #[error("This secret was replaced by a regenerate and works only until its overlap ends; rotate with the new secret.")]
    PreviousSecret,
    #[error("An unexpected error occurred.")]
    Internal,
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unavailable(_) => ApiError::Unavailable,
            other => {
                tracing::error!(error = %other, "API request failed");
                ApiError::Internal
            }
        }
    }
}

impl From<crate::tokens::actions::TokenError> for ApiError {
    fn from(e: crate::tokens::actions::TokenError) -> Self {
        use crate::tokens::actions::TokenError;
        match e {
            TokenError::Db(e) => e.into(),
            // The token was good when the request began; it is not by the time it would act.
            TokenError::CreatorInactive => ApiError::Auth(AuthFailure::Revoked),
            TokenError::OwnerInactive => ApiError::Auth(AuthFailure::OwnerDeactivated),
            TokenError::NoSuchApplication => ApiError::NotFound,
            TokenError::SecretReplaced => ApiError::PreviousSecret,
            // Revoked between the token check and the change (by another instance, say).
            TokenError::Revoked => ApiError::Auth(AuthFailure::Revoked),
            TokenError::NotAllowed | TokenError::ApplicationArchived => {
                ApiError::Forbidden(e.to_string())
            }
            refusal => {
                let field = refusal.field().unwrap_or("request");
                ApiError::Validation(FieldErrors::one(field, refusal.to_string()))
            }
        }
    }
}

/// The body of every error response.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable code: invalid_token, insufficient_scope, personal_token_required, address_not_allowed, previous_secret,
    /// invalid_request, validation_failed, not_found, forbidden, method_not_allowed, payload_too_large, too_many_requests, unavailable, internal.
    pub error: &'static str,
    pub message: String,
    /// Per-field messages, on validation_failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub fields: Option<serde_json::Value>,
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Auth(AuthFailure::Conflicting) | ApiError::BadRequest(_) => "invalid_request",
            ApiError::Auth(AuthFailure::InsufficientScope(_)) => "insufficient_scope",
            ApiError::Auth(AuthFailure::NotAPerson) => "personal_token_required",
            ApiError::Auth(AuthFailure::AddressNotAllowed { .. }) => "address_not_allowed",
            ApiError::Auth(AuthFailure::Unavailable(_)) | ApiError::Unavailable => "unavailable",
            ApiError::Auth(_) => "invalid_token",
            ApiError::Validation(_) => "validation_failed",
            ApiError::NotFound => "not_found",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::PreviousSecret => "previous_secret",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::TooManyRequests { .. } => "too_many_requests",
            ApiError::Internal => "internal",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Auth(AuthFailure::Conflicting) | ApiError::BadRequest(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Auth(
                AuthFailure::InsufficientScope(_)
                | AuthFailure::NotAPerson
                | AuthFailure::AddressNotAllowed { .. },
            ) => StatusCode::FORBIDDEN,
            ApiError::Auth(AuthFailure::Unavailable(_)) | ApiError::Unavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Auth(_) => StatusCode::UNAUTHORIZED,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Forbidden(_) | ApiError::PreviousSecret => StatusCode::FORBIDDEN,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        let message = self.to_string();
        match self {
            ApiError::Auth(AuthFailure::InsufficientScope(scope)) => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    format!("Bearer error=\"insufficient_scope\", scope=\"{scope}\""),
                ));
            }
            ApiError::Auth(
                AuthFailure::Conflicting
                | AuthFailure::Unavailable(_)
                | AuthFailure::NotAPerson
                | AuthFailure::AddressNotAllowed { .. },
            ) => {}
            ApiError::MethodNotAllowed(allow) => {
                response.insert_header((header::ALLOW, allow.as_str()));
            }
            ApiError::TooManyRequests { retry_after_secs } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            ApiError::Auth(_) => {
                // The message names the reason; it never echoes the token.
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    format!("Bearer error=\"invalid_token\", error_description=\"{message}\""),
                ));
            }
            _ => {}
        }
        let fields = match self {
            ApiError::Validation(fields) => serde_json::to_value(fields).ok(),
            _ => None,
        };
        let message = match self {
            ApiError::Auth(failure) => failure.to_string(),
            _ => message,
        };
        response.json(ErrorBody {
            error: self.code(),
            message,
            fields,
        })
    }
}

/// Unknown paths under /api answer in JSON too.
pub async fn not_found() -> HttpResponse {
    ApiError::NotFound.error_response()
}

/// A known API path asked with a method it does not take.
pub fn method_not_allowed(allow: &str) -> HttpResponse {
    ApiError::MethodNotAllowed(allow.to_owned()).error_response()
}

/// Bad JSON bodies become `invalid_request` (or 413) instead of actix's plain-text default.
pub fn json_config() -> actix_web::web::JsonConfig {
    actix_web::web::JsonConfig::default()
        .limit(64 * 1024)
        .error_handler(|error, _| {
            let api_error = match &error {
                actix_web::error::JsonPayloadError::Overflow { .. }
                | actix_web::error::JsonPayloadError::OverflowKnownLength { .. } => {
                    ApiError::PayloadTooLarge
                }
                actix_web::error::JsonPayloadError::ContentType => {
                    ApiError::BadRequest("Send the body as application/json.".into())
                }
                other => ApiError::BadRequest(format!("The JSON body could not be read: {other}")),
            };
            api_error.into()
        })
}

/// A query string that does not fit (`?page=abc`, a repeated `scope`) becomes `invalid_request`
/// too. Registered on the API's scopes only: pages answer such errors with a page.
pub fn query_config() -> actix_web::web::QueryConfig {
    actix_web::web::QueryConfig::default().error_handler(|error, _| bad_query(error).into())
}

pub fn bad_query(error: impl std::fmt::Display) -> ApiError {
    ApiError::BadRequest(format!("The query string could not be read: {error}"))
}
