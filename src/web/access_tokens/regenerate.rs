use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;

use crate::db::Db;
use crate::domain::Policy;
use crate::domain::{parse_expiry, FieldErrors};
use crate::http::ClientIp;
use crate::tokens::actions::{self, NewExpiry, TokenError};
use crate::tokens::PersonalAccessToken;
use crate::web::access_tokens::{own_token, refusal_errors, ExpiryField};
use crate::web::csrf::CsrfForm;
use crate::web::error::AppError;
use crate::web::layout::{render_with_status, Chrome, Section};
use crate::web::session::{set_refusal, stash_showing, CurrentUser, PendingReveal};
use crate::web::{see_other, HOME};

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RegenerateForm {
    expires_in: String,
    expires_on: String,
}

#[derive(Template)]
#[template(path = "access_tokens/regenerate.html")]
struct RegeneratePage {
    chrome: Chrome,
    token: PersonalAccessToken,
    scopes: Vec<&'static str>,
    input: RegenerateForm,
    errors: FieldErrors,
    expiry: ExpiryField,
    /// Expired already: its secret stopped working then, not now.
    expired: bool,
}

fn page(
    current: &CurrentUser,
    policy: &Policy,
    token: PersonalAccessToken,
    input: RegenerateForm,
    errors: FieldErrors,
) -> RegeneratePage {
    let now = Utc::now().naive_utc();
    RegeneratePage {
        chrome: Chrome::for_user(current, Section::ACCESS_TOKENS),
        scopes: token.scopes().iter().map(|s| s.name()).collect(),
        expired: token.expires_at.is_some_and(|at| at <= now),
        token,
        input,
        errors,
        expiry: ExpiryField::new(policy, now),
    }
}

/// One of the person's tokens that can be regenerated; `None` (with a notice for the list)
/// when it is revoked.
async fn regenerable(
    db: &Db,
    current: &CurrentUser,
    id: &str,
) -> Result<Option<PersonalAccessToken>, AppError> {
    let token = own_token(db, current.user.id, id).await?;
    if token.revoked_at.is_some() {
        set_refusal(
            &current.session,
            format!("“{}” is revoked and cannot be regenerated.", token.name),
        );
        return Ok(None);
    }
    Ok(Some(token))
}

pub async fn show(
    db: web::Data<Db>,
    current: CurrentUser,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let Some(token) = regenerable(&db, &current, &id).await? else {
        return Ok(see_other(HOME));
    };
    let policy = crate::policy::current(&db).await?;
    let input = RegenerateForm {
        expires_in: policy.default_expiry.value().to_owned(),
        expires_on: String::new(),
    };
    render_with_status(
        StatusCode::OK,
        &page(&current, &policy, token, input, FieldErrors::default()),
    )
}

pub async fn submit(
    db: web::Data<Db>,
    current: CurrentUser,
    client_ip: ClientIp,
    id: web::Path<String>,
    CsrfForm(input): CsrfForm<RegenerateForm>,
) -> Result<HttpResponse, AppError> {
    let Some(token) = regenerable(&db, &current, &id).await? else {
        return Ok(see_other(HOME));
    };
    let policy = crate::policy::current(&db).await?;
    let expiry = match parse_expiry(
        &input.expires_in,
        &input.expires_on,
        Utc::now().naive_utc(),
        &policy,
    ) {
        Ok(expiry) => expiry,
        Err((field, message)) => {
            let errors = FieldErrors::one(field, message);
            return render_with_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &page(&current, &policy, token, input, errors),
            );
        }
    };
    let regenerated = actions::regenerate(
        &db,
        current.actor(&client_ip),
        token.owner(),
        token.id,
        NewExpiry::Chosen(expiry),
    )
    .await;
    let created = match regenerated {
        Ok(created) => created,
        Err(TokenError::Revoked) => {
            set_refusal(
                &current.session,
                format!(
                    "“{}” was revoked meanwhile; nothing was regenerated.",
                    token.name
                ),
            );
            return Ok(see_other(HOME));
        }
        Err(refusal) => {
            let errors = refusal_errors(refusal)?;
            return render_with_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &page(&current, &policy, token, input, errors),
            );
        }
    };
    stash_showing(&db, &current, PendingReveal::of(&created, true)).await?;
    Ok(see_other("/developer/access-tokens/reveal"))
}
