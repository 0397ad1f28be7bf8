//! `/account`: a signed-in member's own account, where they change their display name and
//! their password.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::{NaiveDateTime, Utc};
use serde::Deserialize;

use crate::accounts::self_service::{self, PasswordChangeError};
use crate::db::Db;
use crate::domain::{clean_name, FieldErrors, PasswordRules};
use crate::http::ClientIp;
use crate::web::csrf::CsrfForm;
use crate::web::error::AppError;
use crate::web::format;
use crate::web::layout::{render, render_with_status, Chrome, Section};
use crate::web::see_other;
use crate::web::session::{session_secret, set_flash, take_flash, CurrentUser, Flash};

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    chrome: Chrome,
    /// As typed, when it was refused.
    display_name: String,
    email: String,
    password_rules: String,
    errors: FieldErrors,
    flash: Option<Flash>,
}

fn page(current: &CurrentUser, display_name: String, errors: FieldErrors) -> AccountPage {
    AccountPage {
        chrome: Chrome::for_user(current, Section::NONE),
        display_name,
        email: current.user.email.clone(),
        password_rules: PasswordRules::describe(),
        errors,
        flash: None,
    }
}

pub async fn show(current: CurrentUser) -> Result<HttpResponse, AppError> {
    let mut page = page(
        &current,
        current.user.display_name.clone(),
        FieldErrors::default(),
    );
    page.flash = take_flash(&current.session);
    render(&page)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct NameForm {
    display_name: String,
}

pub async fn rename(
    db: web::Data<Db>,
    current: CurrentUser,
    client_ip: ClientIp,
    CsrfForm(form): CsrfForm<NameForm>,
) -> Result<HttpResponse, AppError> {
    let name = match clean_name(&form.display_name) {
        Ok(name) => name,
        Err(problem) => {
            let errors = FieldErrors::one("display_name", problem);
            let page = page(&current, form.display_name, errors);
            return render_with_status(StatusCode::UNPROCESSABLE_ENTITY, &page);
        }
    };
    let renamed = self_service::rename(&db, current.actor(&client_ip), name).await?;
    set_flash(
        &current.session,
        format!("Your name is now {}.", renamed.display_name),
    );
    Ok(see_other("/account"))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PasswordForm {
    current_password: String,
    password: String,
    password_confirm: String,
}

impl PasswordForm {
    /// What is wrong before any password is checked; every error at once.
    fn problems(&self) -> FieldErrors {
        let mut errors = FieldErrors::default();
        if self.current_password.is_empty() {
            errors.add("current_password", "Enter your current password.");
        }
        if let Err(e) = PasswordRules::check(&self.password) {
            errors.add("password", e);
        }
        if self.password != self.password_confirm {
            errors.add("password_confirm", "The passwords do not match.");
        }
        errors
    }
}

pub async fn change_password(
    db: web::Data<Db>,
    current: CurrentUser,
    client_ip: ClientIp,
    CsrfForm(form): CsrfForm<PasswordForm>,
) -> Result<HttpResponse, AppError> {
    let mut errors = form.problems();
    let mut status = StatusCode::UNPROCESSABLE_ENTITY;
    if errors.is_empty() {
        let session_secret = session_secret(&current.session).ok_or(AppError::Forbidden)?;
        let actor = current.actor(&client_ip);
        let (old, new) = (form.current_password, form.password);
        let changed =
            self_service::change_password(&db, &current.user, actor, session_secret, old, new);
        match changed.await {
            Ok(changed) => {
                // This browser carries on in the session that replaced its old one.
                crate::web::session::sign_in(&current.session, changed.session_secret)?;
                set_flash(
                    &current.session,
                    password_changed_notice(changed.sessions_ended),
                );
                return Ok(see_other("/account"));
            }
            Err(meanwhile @ PasswordChangeError::ChangedMeanwhile) => {
                errors.add("current_password", meanwhile.to_string());
                status = StatusCode::CONFLICT;
            }
            Err(wrong @ PasswordChangeError::WrongPassword) => {
                errors.add("current_password", wrong.to_string());
            }
            Err(PasswordChangeError::Throttled { until }) => {
                tracing::warn!(client_ip = %client_ip.0, "password check throttled");
                errors.add("current_password", paused_until(until));
                status = StatusCode::TOO_MANY_REQUESTS;
            }
            Err(PasswordChangeError::Db(e)) => return Err(e.into()),
            Err(PasswordChangeError::Internal(e)) => return Err(AppError::Internal(e)),
        }
    }
    let page = page(&current, current.user.display_name.clone(), errors);
    render_with_status(status, &page)
}

fn password_changed_notice(other_sessions_ended: usize) -> String {
    match other_sessions_ended {
        0 => "Your password is changed.".to_owned(),
        1 => "Your password is changed, and your other session is signed out.".to_owned(),
        n => format!("Your password is changed, and your {n} other sessions are signed out."),
    }
}

fn paused_until(until: NaiveDateTime) -> String {
    format!(
        "Too many wrong passwords. For your security, password checks are paused; \
         try again in {}.",
        format::minutes_until(until, Utc::now().naive_utc())
    )
}
