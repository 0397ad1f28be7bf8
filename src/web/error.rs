//! What a person sees when something goes wrong: a styled page, never a backtrace.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use crate::db::DbError;
use crate::web::layout::Chrome;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("forbidden")]
    Forbidden,
    /// The page exists; the methods it takes, for the `Allow` header.
    #[error("method not allowed (allowed: {0})")]
    MethodNotAllowed(String),
    #[error("the form's security token was missing or wrong")]
    CsrfRejected,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("sign-in required")]
    SignInRequired { next: Option<String> },
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<askama::Error> for AppError {
    fn from(e: askama::Error) -> Self {
        AppError::Internal(anyhow::anyhow!("rendering a template failed: {e}"))
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        AppError::Db(DbError::Query(e))
    }
}

impl From<crate::accounts::members::MemberError> for AppError {
    fn from(e: crate::accounts::members::MemberError) -> Self {
        use crate::accounts::members::MemberError;
        match e {
            MemberError::NotFound => AppError::NotFound,
            MemberError::NoLongerAdmin => AppError::Forbidden,
            MemberError::Db(e) => AppError::Db(e),
            refusal => AppError::BadRequest(refusal.to_string()),
        }
    }
}

impl From<crate::tokens::actions::TokenError> for AppError {
    fn from(e: crate::tokens::actions::TokenError) -> Self {
        use crate::tokens::actions::TokenError;
        match e {
            TokenError::Db(e) => AppError::Db(e),
            TokenError::NotAllowed | TokenError::OwnerInactive => AppError::Forbidden,
            // Gone between the page's check and the write: as if it had never been found.
            TokenError::NoSuchApplication | TokenError::ApplicationArchived => AppError::NotFound,
            refusal => AppError::BadRequest(refusal.to_string()),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    chrome: Chrome,
    status: u16,
    title: &'a str,
    message: &'a str,
}

impl AppError {
    fn title_and_message(&self) -> (&'static str, &'static str) {
        match self {
            AppError::NotFound => (
                "Page not found",
                "The page you asked for does not exist, or you do not have access to it.",
            ),
            AppError::Forbidden => (
                "Access denied",
                "Your role does not allow this page. Ask an administrator if you need access.",
            ),
            AppError::MethodNotAllowed(_) => (
                "Method not allowed",
                "This page exists, but not for that kind of request. Nothing was changed.",
            ),
            AppError::CsrfRejected => (
                "This form has expired",
                "The form's security token was missing or did not match your session, so nothing \
                 was changed. Go back, reload the page and try again.",
            ),
            AppError::BadRequest(_) => (
                "Bad request",
                "The request could not be understood. Go back and try again.",
            ),
            AppError::PayloadTooLarge => (
                "Request too large",
                "What you sent is larger than tokendesk accepts. Nothing was changed.",
            ),
            AppError::Db(DbError::Unavailable(_)) => (
                "Service unavailable",
                "The database cannot be reached right now. Try again in a moment.",
            ),
            AppError::SignInRequired { .. } | AppError::Db(_) | AppError::Internal(_) => (
                "Something went wrong",
                "An unexpected error stopped this request. It has been logged; try again.",
            ),
        }
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Forbidden | AppError::CsrfRejected => StatusCode::FORBIDDEN,
            AppError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::SignInRequired { .. } => StatusCode::SEE_OTHER,
            AppError::Db(DbError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Db(_) | AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let AppError::SignInRequired { next } = self {
            let location = match next {
                Some(next) => format!("/sign-in?next={}", crate::web::url_encode(next)),
                None => "/sign-in".to_owned(),
            };
            return crate::web::see_other(&location);
        }
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let (title, message) = self.title_and_message();
        match self {
            // Say what could not be understood; the details are our own words, escaped.
            AppError::BadRequest(detail) => {
                let message =
                    format!("The request could not be understood: {detail}. Nothing was changed.");
                error_page(status, title, &message)
            }
            AppError::MethodNotAllowed(allow) => {
                let mut page = error_page(status, title, message);
                if let Ok(allow) = header::HeaderValue::from_str(allow) {
                    page.headers_mut().insert(header::ALLOW, allow);
                }
                page
            }
            _ => error_page(status, title, message),
        }
    }
}

/// The styled page for any status; also used for unknown routes.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    let page = ErrorPage {
        chrome: Chrome::anonymous(),
        status: status.as_u16(),
        title,
        message,
    };
    match page.render() {
        Ok(body) => HttpResponse::build(status)
            .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
            .body(body),
        Err(_) => HttpResponse::build(status).body(message.to_owned()),
    }
}

pub async fn not_found() -> HttpResponse {
    let (title, message) = AppError::NotFound.title_and_message();
    error_page(StatusCode::NOT_FOUND, title, message)
}

/// A known page asked with a method it does not take.
pub fn method_not_allowed(allow: &str) -> HttpResponse {
    AppError::MethodNotAllowed(allow.to_owned()).error_response()
}

/// A page's query string that does not fit (`?page=abc`, `?status=lost`) is a styled 400 page
/// saying which part, not actix's plain text. (The API's scopes answer in JSON instead.)
pub fn query_config() -> actix_web::web::QueryConfig {
    actix_web::web::QueryConfig::default().error_handler(|error, _| {
        let detail = match &error {
            actix_web::error::QueryPayloadError::Deserialize(why) => why.to_string(),
            other => other.to_string(),
        };
        AppError::BadRequest(format!(
            "This page cannot read a part of its address ({detail}). Open it again from the menu."
        ))
        .into()
    })
}
