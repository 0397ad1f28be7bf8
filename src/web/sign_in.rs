//! Sign-in by email and password, sign-out, and the throttle on guessing.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;

use crate::accounts::identity_provider::SignInMethods;
use crate::accounts::{self, sign_in::SignInError};
use crate::db::Db;
use crate::http::ClientIp;
use crate::web::csrf::CsrfForm;
use crate::web::error::AppError;
use crate::web::format;
use crate::web::layout::{render, render_with_status, Chrome};
use crate::web::session::{csrf_token, session_secret, sign_in, CurrentUser};
use crate::web::{safe_next, see_other};

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SignInQuery {
    next: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SignInForm {
    email: String,
    password: String,
    next: String,
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage<'a> {
    chrome: Chrome,
    email: &'a str,
    next: &'a str,
    error: Option<String>,
    notice: Option<crate::web::session::Flash>,
    /// "Sign in with …", when an identity provider is set.
    provider: Option<&'a str>,
    /// Where "Sign in with …" starts, carrying `next`.
    sso_href: String,
    /// Everyone may sign in with a password (else only the break-glass admin, behind a
    /// disclosure).
    passwords_on: bool,
}

fn page<'a>(
    session: &Session,
    methods: &'a SignInMethods,
    email: &'a str,
    next: &'a str,
    error: Option<String>,
) -> SignInPage<'a> {
    let mut chrome = Chrome::anonymous();
    chrome.csrf = csrf_token(session);
    SignInPage {
        chrome,
        email,
        next,
        error,
        notice: None,
        provider: methods.provider.as_ref().map(|p| p.name.as_str()),
        sso_href: match next {
            "" => "/sign-in/sso".to_owned(),
            next => format!(
                "/sign-in/sso?next={}",
                percent_encoding::utf8_percent_encode(next, percent_encoding::NON_ALPHANUMERIC)
            ),
        },
        passwords_on: methods.passwords.on,
    }
}

pub async fn show(
    session: Session,
    methods: web::Data<SignInMethods>,
    query: web::Query<SignInQuery>,
) -> Result<HttpResponse, AppError> {
    let next = safe_next(&query.next).unwrap_or_default();
    let mut page = page(&session, &methods, "", next, None);
    page.notice = crate::web::session::take_flash(&session);
    render(&page)
}

pub async fn submit(
    db: web::Data<Db>,
    methods: web::Data<SignInMethods>,
    session: Session,
    client_ip: ClientIp,
    CsrfForm(form): CsrfForm<SignInForm>,
) -> Result<HttpResponse, AppError> {
    let next = safe_next(&form.next).unwrap_or_default();
    let signed_in = accounts::sign_in::sign_in(
        &db,
        &methods.passwords,
        &form.email,
        form.password,
        client_ip.0.clone(),
    )
    .await;
    let (status, message) = match signed_in {
        Ok(signed_in) => {
            sign_in(&session, signed_in.session_secret)?;
            return Ok(see_other(if next.is_empty() {
                crate::web::HOME
            } else {
                next
            }));
        }
        Err(SignInError::Throttled { until }) => {
            tracing::warn!(client_ip = %client_ip.0, "sign-in throttled");
            let message = format!(
                "Too many failed sign-in attempts. For your security, sign-in is paused; \
                 try again in {}.",
                format::minutes_until(until, Utc::now().naive_utc())
            );
            (StatusCode::TOO_MANY_REQUESTS, message)
        }
        Err(refused @ SignInError::Refused) => (StatusCode::UNAUTHORIZED, refused.to_string()),
        Err(off @ SignInError::PasswordsOff(_)) => (StatusCode::FORBIDDEN, off.to_string()),
        Err(SignInError::Db(e)) => return Err(e.into()),
        Err(SignInError::Internal(e)) => return Err(AppError::Internal(e)),
    };
    let page = page(&session, &methods, &form.email, next, Some(message));
    render_with_status(status, &page)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SignOutForm {}

pub async fn sign_out(
    db: web::Data<Db>,
    current: CurrentUser,
    client_ip: ClientIp,
    CsrfForm(_): CsrfForm<SignOutForm>,
) -> Result<HttpResponse, AppError> {
    let session_secret = session_secret(&current.session).unwrap_or_default();
    accounts::sign_in::sign_out(&db, &current.user, session_secret, client_ip.0).await?;
    current.session.purge();
    Ok(see_other("/sign-in"))
}
