//! First run: while nobody has an account, every page leads here to create the first admin.

use std::sync::atomic::Ordering;

use actix_session::Session;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::audit::{Action, Event};
use crate::domain::{clean_name, Email, FieldErrors, PasswordRules, Role};
use crate::startup::AppState;
use crate::users::{self, NewUser};
use crate::web::client_ip::ClientIp;
use crate::web::csrf::CsrfForm;
use crate::web::error::AppError;
use crate::web::layout::{render, render_with_status, Chrome};
use crate::web::session::{csrf_token, sign_in};
use crate::web::{see_other, HOME};

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SetupForm {
    email: String,
    display_name: String,
    password: String,
    password_confirm: String,
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage<'a> {
    chrome: Chrome,
    email: &'a str,
    display_name: &'a str,
    errors: FieldErrors,
}

impl SetupPage<'_> {
    fn new(session: &Session) -> Self {
        let mut chrome = Chrome::anonymous();
        chrome.csrf = csrf_token(session);
        SetupPage {
            chrome,
            email: "",
            display_name: "",
            errors: FieldErrors::default(),
        }
    }
}

async fn setup_is_open(state: &AppState) -> Result<bool, AppError> {
    Ok(!state.setup_complete().await?)
}

pub async fn show(state: web::Data<AppState>, session: Session) -> Result<HttpResponse, AppError> {
    if !setup_is_open(&state).await? {
        return Err(AppError::NotFound);
    }
    render(&SetupPage::new(&session))
}

pub async fn submit(
    state: web::Data<AppState>,
    session: Session,
    client_ip: ClientIp,
    CsrfForm(form): CsrfForm<SetupForm>,
) -> Result<HttpResponse, AppError> {
    if !setup_is_open(&state).await? {
        return Err(AppError::NotFound);
    }
    let mut errors = FieldErrors::default();
    let email = Email::parse(&form.email)
        .map_err(|e| errors.add("email", e))
        .ok();
    let display_name = clean_name(&form.display_name)
        .map_err(|e| errors.add("display_name", e))
        .ok();
    if let Err(e) = PasswordRules::check(&form.password) {
        errors.add("password", e);
    }
    if form.password != form.password_confirm {
        errors.add("password_confirm", "The passwords do not match.");
    }
    let (Some(email), Some(display_name), true) = (email, display_name, errors.is_empty()) else {
        let mut page = SetupPage::new(&session);
        page.email = &form.email;
        page.display_name = &form.display_name;
        page.errors = errors;
        return render_with_status(actix_web::http::StatusCode::UNPROCESSABLE_ENTITY, &page);
    };

    let password = form.password;
    let password_hash = crate::accounts::passwords::hash(password).await?;
    let ip = client_ip.0;
    let admin = state
        .db
        .write(move |conn| {
            if !users::claim_setup(conn)? {
                return Ok(None);
            }
            let admin = users::create(
                conn,
                NewUser {
                    email: &email,
                    display_name: &display_name,
                    password_hash: Some(&password_hash),
                    role: Role::Admin,
                },
            )
            .map_err(|e| match e {
                users::CreateUserError::Query(q) => q,
                users::CreateUserError::EmailTaken => diesel::result::Error::RollbackTransaction,
            })?;
            Event::new(Action::SetupCompleted, Some(admin.id))
                .target("user", Some(admin.id), &admin.email)
                .client_ip(&ip)
                .record(conn)?;
            users::record_sign_in(conn, admin.id)?;
            let session_secret = crate::sessions::start(conn, admin.id)?;
            Ok(Some((admin, session_secret)))
        })
        .await?;
    let Some((admin, session_secret)) = admin else {
        return Err(AppError::NotFound);
    };
    state.setup_done.store(true, Ordering::Release);
    tracing::info!(user_id = admin.id, "first admin created");
    sign_in(&session, session_secret)?;
    Ok(see_other(HOME))
}
