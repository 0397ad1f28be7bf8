//! `/set-password/{secret}`: a new member sets their password from the one-time link an admin gave them.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::accounts::{password_links, passwords};
use crate::db::Db;
use crate::domain::{FieldErrors, PasswordRules};
use crate::http::ClientIp;
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
    password_rules: String,
    errors: FieldErrors,
}

fn invalid_link() -> HttpResponse {
    error_page(
        StatusCode::NOT_FOUND,
        "This link cannot be used",
        "It has expired, was already used, or is not a valid link. Ask an administrator for a new one.",
    )
}

fn page(session: &Session, email: String, secret: &str, errors: FieldErrors) -> SetPasswordPage {
    let mut chrome = Chrome::anonymous();
    chrome.csrf = csrf_token(session);
    SetPasswordPage {
        chrome,
        email,
        action: format!("/set-password/{secret}"),
        password_rules: PasswordRules::describe(),
        errors,
    }
}

pub async fn show(
    db: web::Data<Db>,
    session: Session,
    secret: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let Some(user) = password_links::owner(&db, &secret).await? else {
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
    db: web::Data<Db>,
    session: Session,
    client_ip: ClientIp,
    secret: web::Path<String>,
    CsrfForm(form): CsrfForm<SetPasswordForm>,
) -> Result<HttpResponse, AppError> {
    let Some(user) = password_links::owner(&db, &secret).await? else {
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
    let hash = passwords::hash(form.password).await?;
    let done = password_links::set_password(&db, &secret, hash, client_ip.0).await?;
    if !done {
        return Ok(invalid_link());
    }
    set_flash(&session, "Your password is set. Sign in with it now.");
    Ok(see_other("/sign-in"))
}
