use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;

use crate::db::Db;
use crate::http::ClientIp;
use crate::tokens::{actions, PersonalAccessToken};
use crate::web::access_tokens::own_token;
use crate::web::csrf::CsrfForm;
use crate::web::error::AppError;
use crate::web::format;
use crate::web::layout::{render_with_status, Chrome, Section};
use crate::web::session::{set_flash, CurrentUser};
use crate::web::{see_other, HOME};

/// Exactly this, case and all.
pub const CONFIRMATION: &str = "DELETE";
pub const CONFIRMATION_ERROR: &str =
    "Type DELETE, in capital letters, to confirm. Nothing was revoked.";

#[derive(Template)]
#[template(path = "access_tokens/revoke.html")]
pub struct RevokePage {
    pub chrome: Chrome,
    pub token: PersonalAccessToken,
    /// Whose token, when it is not the viewer's own.
    pub owner: Option<String>,
    pub action: String,
    pub cancel: String,
    /// The list this confirmation comes from.
    pub breadcrumb: &'static str,
    pub last_used: String,
    pub created: String,
    pub error: Option<&'static str>,
}

pub fn page(
    current: &CurrentUser,
    token: PersonalAccessToken,
    error: Option<&'static str>,
) -> RevokePage {
    let now = Utc::now().naive_utc();
    RevokePage {
        chrome: Chrome::for_user(current, Section::ACCESS_TOKENS),
        owner: None,
        action: format!("/developer/access-tokens/{}/revoke", token.id),
        cancel: HOME.to_owned(),
        breadcrumb: "Access Tokens",
        last_used: token.last_used_at.map_or_else(
            || "Never".to_owned(),
            |at| format!("{} ({})", format::ago(at, now), format::exact(at)),
        ),
        created: format::date(token.created_at),
        token,
        error,
    }
}

pub async fn show(
    db: web::Data<Db>,
    current: CurrentUser,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let token = own_token(&db, current.user.id, &id).await?;
    if token.revoked_at.is_some() {
        set_flash(
            &current.session,
            format!("“{}” is already revoked.", token.name),
        );
        return Ok(see_other(HOME));
    }
    render_with_status(StatusCode::OK, &page(&current, token, None))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RevokeForm {
    pub confirm: String,
}

pub async fn submit(
    db: web::Data<Db>,
    current: CurrentUser,
    client_ip: ClientIp,
    id: web::Path<String>,
    CsrfForm(form): CsrfForm<RevokeForm>,
) -> Result<HttpResponse, AppError> {
    let token = own_token(&db, current.user.id, &id).await?;
    if form.confirm != CONFIRMATION {
        let error = Some(CONFIRMATION_ERROR);
        return render_with_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &page(&current, token, error),
        );
    }
    let revoked =
        actions::revoke(&db, current.actor(&client_ip), &token, &current.user.email).await?;
    let message = if revoked {
        format!(
            "“{}” was revoked. Anything still using it is refused from now on.",
            token.name
        )
    } else {
        format!("“{}” is already revoked.", token.name)
    };
    set_flash(&current.session, message);
    Ok(see_other(HOME))
}
