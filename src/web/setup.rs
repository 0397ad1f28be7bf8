//! First run: while nobody has an account, every page leads here to create the first admin.

use actix_session::Session;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::accounts::passwords;
use crate::accounts::setup::{self, FirstAdmin, SetupState};
use crate::db::Db;
use crate::domain::{clean_name, Email, FieldErrors, PasswordRules};
use crate::http::ClientIp;
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

async fn setup_is_open(db: &Db, state: &SetupState) -> Result<bool, AppError> {
    Ok(!state.is_complete(db).await?)
}

pub async fn show(
    db: web::Data<Db>,
    setup_state: web::Data<SetupState>,
    session: Session,
) -> Result<HttpResponse, AppError> {
    if !setup_is_open(&db, &setup_state).await? {
        return Err(AppError::NotFound);
    }
    render(&SetupPage::new(&session))
}

pub async fn submit(
    db: web::Data<Db>,
    setup_state: web::Data<SetupState>,
    session: Session,
    client_ip: ClientIp,
    CsrfForm(form): CsrfForm<SetupForm>,
) -> Result<HttpResponse, AppError> {
    if !setup_is_open(&db, &setup_state).await? {
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

    let first = FirstAdmin {
        email,
        display_name,
        password_hash: passwords::hash(form.password).await?,
    };
    let created = setup::complete(&db, &setup_state, first, client_ip.0).await?;
    let Some((admin, session_secret)) = created else {
        return Err(AppError::NotFound);
    };
    tracing::info!(user_id = admin.id, "first admin created");
    sign_in(&session, session_secret)?;
    Ok(see_other(HOME))
}
