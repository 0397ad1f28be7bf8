//! `/set-password/{secret}`: a new member sets their password from the one-time link an admin gave them.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::audit::{Action, Event};
use crate::domain::{FieldErrors, PasswordRules};
use crate::startup::AppState;
use crate::users;
use crate::web::client_ip::ClientIp;
use crate::web::csrf::CsrfForm;
use crate::web::error::{error_page, AppError};
use crate::web::layout::{render_with_status, Chrome};
use crate::web::see_other;
use crate::web::session::{csrf_token, set_flash};

#[derive(Template)]
#[template(path = "set_password.html")]
struct SetPasswordPage {
    chrome: Chrome,
    email: String,
    action: String,
    errors: FieldErrors,
}

fn invalid_link() -> HttpResponse {
    error_page(
        StatusCode::NOT_FOUND,
        "This link cannot be used",
        "It has expired, was already used, or is not a valid link. Ask an administrator for a new one.",
    )
}

/// The member an unused, unexpired link is for.
async fn link_owner(state: &AppState, secret: &str) -> Result<Option<users::User>, AppError> {
    let secret = secret.to_owned();
    let found = state
        .db
        .run(move |conn| users::find_password_link(conn, &secret))
        .await?;
    Ok(found.map(|(_, user)| user))
}

fn page(session: &Session, email: String, secret: &str, errors: FieldErrors) -> SetPasswordPage {
    let mut chrome = Chrome::anonymous();
    chrome.csrf = csrf_token(session);
    SetPasswordPage {
        chrome,
        email,
        action: format!("/set-password/{secret}"),
        errors,
    }
}

pub async fn show(
    state: web::Data<AppState>,
    session: Session,
    secret: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let Some(user) = link_owner(&state, &secret).await? else {
        return Ok(invalid_link());
    };
    render_with_status(
        StatusCode::OK,
        &page(&session, user.email, &secret, FieldErrors::default()),
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SetPasswordForm {
    password: String,
    password_confirm: String,
}

pub async fn submit(
    state: web::Data<AppState>,
    session: Session,
    client_ip: ClientIp,
    secret: web::Path<String>,
    CsrfForm(form): CsrfForm<SetPasswordForm>,
) -> Result<HttpResponse, AppError> {
    let Some(user) = link_owner(&state, &secret).await? else {
        return Ok(invalid_link());
    };
    let mut errors = FieldErrors::default();
    if let Err(e) = PasswordRules::check(&form.password) {
        errors.add("password", e);
    }
    if form.password != form.password_confirm {
        errors.add("password_confirm", "The passwords do not match.");
    }
    if !errors.is_empty() {
        return render_with_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &page(&session, user.email, &secret, errors),
        );
    }
    let password = form.password;
    let hash = crate::accounts::passwords::hash(password).await?;
    let (lookup, ip) = (secret.into_inner(), client_ip.0);
    let done = state
        .db
        .write(move |conn| {
            let Some((link_id, user)) = users::find_password_link(conn, &lookup)? else {
                return Ok(false);
            };
            if !users::consume_password_link(conn, link_id)? {
                return Ok(false);
            }
            users::set_password(conn, user.id, &hash)?;
            Event::new(Action::PasswordSet, Some(user.id))
                .target("user", Some(user.id), &user.email)
                .client_ip(&ip)
                .details("via one-time link")
                .record(conn)?;
            Ok(true)
        })
        .await?;
    if !done {
        return Ok(invalid_link());
    }
    set_flash(&session, "Your password is set. Sign in with it now.");
    Ok(see_other("/sign-in"))
}
