//! Sign-in through the company's identity provider: `/sign-in/sso` sends the browser to the
//! provider, `/sign-in/sso/callback` is where the provider sends it back (the redirect URI to
//! register). What the sign-in must find on its return (state, nonce, PKCE verifier) waits in
//! the encrypted session cookie of the browser that started it, and is used once.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::accounts::identity_provider::{PendingSignIn, ProviderError, SignInMethods};
use crate::accounts::provider_sign_in::{self, ProviderSignInError};
use crate::db::Db;
use crate::http::{public_base_url, ClientIp, Site};
use crate::web::error::AppError;
use crate::web::layout::{render_with_status, Chrome};
use crate::web::session::sign_in;
use crate::web::{safe_next, see_other, HOME};

const PENDING: &str = "sso_pending";
pub const CALLBACK: &str = "/sign-in/sso/callback";

#[derive(Template)]
#[template(path = "sso_error.html")]
struct SsoErrorPage<'a> {
    chrome: Chrome,
    provider: &'a str,
    message: String,
}

fn error_page(
    status: StatusCode,
    provider: &str,
    message: String,
) -> Result<HttpResponse, AppError> {
    let page = SsoErrorPage {
        chrome: Chrome::anonymous(),
        provider,
        message,
    };
    render_with_status(status, &page)
}

fn redirect_uri(req: &HttpRequest, site: &Site) -> String {
    format!("{}{CALLBACK}", public_base_url(req, site))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct StartQuery {
    next: String,
}

/// Sends the browser to the provider, keeping what its return must match.
pub async fn start(
    req: HttpRequest,
    session: Session,
    methods: web::Data<SignInMethods>,
    site: web::Data<Site>,
    db: web::Data<Db>,
    client_ip: ClientIp,
    query: web::Query<StartQuery>,
) -> Result<HttpResponse, AppError> {
    let Some(provider) = &methods.provider else {
        return Err(AppError::NotFound);
    };
    let next = safe_next(&query.next).unwrap_or_default().to_owned();
    match provider.begin(redirect_uri(&req, &site), next).await {
        Ok((url, pending)) => {
            session
                .insert(PENDING, pending)
                .map_err(|e| AppError::Internal(anyhow::anyhow!("session write failed: {e}")))?;
            Ok(see_other(&url))
        }
        Err(failure) => refused(&db, &provider.name, failure, client_ip).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// Where the provider sends the browser back: the sign-in is finished, or said why not.
pub async fn callback(
    req: HttpRequest,
    session: Session,
    methods: web::Data<SignInMethods>,
    site: web::Data<Site>,
    db: web::Data<Db>,
    client_ip: ClientIp,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, AppError> {
    let Some(provider) = &methods.provider else {
        return Err(AppError::NotFound);
    };
    // Used once, whatever happens next: a copied or replayed callback finds nothing.
    let pending = session
        .remove_as::<PendingSignIn>(PENDING)
        .and_then(Result::ok);
    let query = query.into_inner();
    let returned = match (pending, query.state, query.code, query.error) {
        (None, ..) => Err(ProviderError::Mismatched(
            "this sign-in was not started in this browser, or its answer was already used".into(),
        )),
        (Some(pending), Some(state), _, _) if !pending.state_matches(&state) => Err(
            ProviderError::Mismatched("the answer does not belong to this sign-in (state)".into()),
        ),
        // The provider's own refusal, believed only with this sign-in's state.
        (Some(_), Some(_), _, Some(error)) => Err(ProviderError::Refused(clip(&error))),
        (Some(pending), Some(_), Some(code), None) => Ok((pending, code)),
        (Some(_), ..) => Err(ProviderError::Mismatched(
            "the answer has no code or state".into(),
        )),
    };
    let (pending, code) = match returned {
        Ok(returned) => returned,
        Err(failure) => return refused(&db, &provider.name, failure, client_ip).await,
    };
    let next = pending.next.clone();
    let identity = match provider
        .finish(pending, code, redirect_uri(&req, &site))
        .await
    {
        Ok(identity) => identity,
        Err(failure) => return refused(&db, &provider.name, failure, client_ip).await,
    };
    match provider_sign_in::sign_in(&db, identity, &provider.name, client_ip.0).await {
        Ok(signed_in) => {
            sign_in(&session, signed_in.session_secret)?;
            Ok(see_other(if next.is_empty() { HOME } else { &next }))
        }
        Err(ProviderSignInError::Db(e)) => Err(e.into()),
        Err(refusal) => error_page(StatusCode::FORBIDDEN, &provider.name, refusal.to_string()),
    }
}

/// A sign-in that did not complete: audited, and a page that says why.
async fn refused(
    db: &Db,
    provider: &str,
    failure: ProviderError,
    client_ip: ClientIp,
) -> Result<HttpResponse, AppError> {
    tracing::warn!(reason = %failure.reason(), "sign-in through the identity provider failed");
    let reason = format!("{provider}: {}", failure.reason());
    provider_sign_in::record_failure(db, reason, None, client_ip.0).await?;
    let status = match failure {
        ProviderError::Unreachable(_) => StatusCode::BAD_GATEWAY,
        ProviderError::Refused(_) | ProviderError::Mismatched(_) | ProviderError::Unverified(_) => {
            StatusCode::BAD_REQUEST
        }
    };
    error_page(status, provider, failure.to_string())
}

/// What the provider sent as an error code, kept short and printable for the page and the log.
fn clip(error: &str) -> String {
    error
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(100)
        .collect()
}
