//! Sign-in by email and password, sign-out, and the throttle on guessing.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::{Duration, NaiveDateTime, Utc};
use serde::Deserialize;

use crate::audit::{self, Action, Event};
use crate::domain::{verify_password, Email};
use crate::startup::AppState;
use crate::users;
use crate::web::client_ip::ClientIp;
use crate::web::csrf::CsrfForm;
use crate::web::error::AppError;
use crate::web::layout::{render, render_with_status, Chrome};
use crate::web::session::{csrf_token, session_secret, sign_in, CurrentUser};
use crate::web::{safe_next, see_other};

/// Failed sign-ins allowed per account, and per client address, within the window.
pub const MAX_FAILURES: usize = 5;
pub const FAILURE_WINDOW_MINUTES: i64 = 15;

/// One message for every failure, so the page never tells whether an account exists.
const GENERIC_FAILURE: &str = "Incorrect email or password.";

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
    notice: Option<String>,
}

fn page<'a>(
    session: &Session,
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
    }
}

pub async fn show(
    session: Session,
    query: web::Query<SignInQuery>,
) -> Result<HttpResponse, AppError> {
    let next = safe_next(&query.next).unwrap_or_default();
    let mut page = page(&session, "", next, None);
    page.notice = crate::web::session::take_flash(&session);
    render(&page)
}

pub async fn submit(
    state: web::Data<AppState>,
    session: Session,
    client_ip: ClientIp,
    CsrfForm(form): CsrfForm<SignInForm>,
) -> Result<HttpResponse, AppError> {
    let next = safe_next(&form.next).unwrap_or_default();
    let typed_email = form.email.trim().to_lowercase();
    let email = Email::parse(&form.email).ok();
    let ip = client_ip.0;

    let (lookup_email, lookup_ip) = (typed_email.clone(), ip.clone());
    let (throttled_until, user) = state
        .db
        .run(move |conn| {
            let now = Utc::now().naive_utc();
            let since = now - Duration::minutes(FAILURE_WINDOW_MINUTES);
            let failures = audit::sign_in_failures_since(conn, &lookup_email, &lookup_ip, since)?;
            let user = match &email {
                Some(email) => users::find_by_email(conn, email)?,
                None => None,
            };
            Ok((throttled_until(&failures), user))
        })
        .await?;

    if let Some(until) = throttled_until {
        let minutes = (until - Utc::now().naive_utc()).num_minutes() + 1;
        tracing::warn!(client_ip = %ip, "sign-in throttled");
        let message = format!(
            "Too many failed sign-in attempts. For your security, sign-in is paused; \
             try again in {minutes} minute{}.",
            if minutes == 1 { "" } else { "s" }
        );
        return render_with_status(
            StatusCode::TOO_MANY_REQUESTS,
            &page(&session, &form.email, next, Some(message)),
        );
    }

    let stored_hash = user
        .as_ref()
        .and_then(|u| u.password_hash().map(str::to_owned));
    let password = form.password;
    let password_ok = web::block(move || verify_password(stored_hash.as_deref(), &password))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    match user {
        Some(user) if password_ok && user.is_active => {
            let user_id = user.id;
            let session_secret = state
                .db
                .write(move |conn| {
                    users::record_sign_in(conn, user_id)?;
                    Event::new(Action::SignInSucceeded, Some(user_id))
                        .target("user", Some(user_id), &typed_email)
                        .client_ip(&ip)
                        .record(conn)?;
                    crate::sessions::start(conn, user_id)
                })
                .await?;
            sign_in(&session, session_secret)?;
            Ok(see_other(if next.is_empty() {
                crate::web::HOME
            } else {
                next
            }))
        }
        user => {
            let user_id = user.map(|u| u.id);
            let reason = match (user_id, password_ok) {
                (None, _) => "unknown account",
                (Some(_), false) => "wrong password",
                (Some(_), true) => "account deactivated",
            };
            state
                .db
                .write(move |conn| {
                    Event::new(Action::SignInFailed, None)
                        .target("user", user_id, &typed_email)
                        .client_ip(&ip)
                        .details(reason)
                        .record(conn)
                })
                .await?;
            render_with_status(
                StatusCode::UNAUTHORIZED,
                &page(
                    &session,
                    &form.email,
                    next,
                    Some(GENERIC_FAILURE.to_owned()),
                ),
            )
        }
    }
}

/// When the oldest failure that keeps the count at the limit leaves the window.
fn throttled_until(failures_oldest_first: &[NaiveDateTime]) -> Option<NaiveDateTime> {
    let count = failures_oldest_first.len();
    (count >= MAX_FAILURES).then(|| {
        failures_oldest_first[count - MAX_FAILURES] + Duration::minutes(FAILURE_WINDOW_MINUTES)
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SignOutForm {}

pub async fn sign_out(
    state: web::Data<AppState>,
    current: CurrentUser,
    client_ip: ClientIp,
    CsrfForm(_): CsrfForm<SignOutForm>,
) -> Result<HttpResponse, AppError> {
    let user_id = current.user.id;
    let email = current.user.email.clone();
    let session_secret = session_secret(&current.session).unwrap_or_default();
    state
        .db
        .write(move |conn| {
            crate::sessions::end(conn, &session_secret)?;
            Event::new(Action::SignedOut, Some(user_id))
                .target("user", Some(user_id), &email)
                .client_ip(&client_ip.0)
                .record(conn)
        })
        .await?;
    current.session.purge();
    Ok(see_other("/sign-in"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_from_the_fifth_failure_until_the_oldest_counted_one_expires() {
        let t0 = Utc::now().naive_utc();
        let at = |m: i64| t0 + Duration::minutes(m);
        assert_eq!(throttled_until(&[at(0), at(1), at(2), at(3)]), None);
        assert_eq!(
            throttled_until(&[at(0), at(1), at(2), at(3), at(4)]),
            Some(at(15))
        );
        assert_eq!(
            throttled_until(&[at(0), at(1), at(2), at(3), at(4), at(5)]),
            Some(at(16))
        );
    }
}
