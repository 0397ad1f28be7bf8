use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;

use crate::db::Db;
use crate::http::ClientIp;
use crate::notifications::Outbox;
use crate::tokens::{actions, PersonalAccessToken};
use crate::web::access_tokens::{Shelf, TokenPath};
use crate::web::csrf::CsrfForm;
use crate::web::error::AppError;
use crate::web::format;
use crate::web::layout::{render_with_status, Chrome};
use crate::web::see_other;
use crate::web::session::set_flash;

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
    pub breadcrumb: String,
    pub last_used: String,
    pub created: String,
    pub error: Option<&'static str>,
}

pub fn page(chrome: Chrome, token: PersonalAccessToken, error: Option<&'static str>) -> RevokePage {
    let now = Utc::now().naive_utc();
    RevokePage {
        chrome,
        owner: None,
        action: String::new(),
        cancel: String::new(),
        breadcrumb: String::new(),
        last_used: token.last_used_at.map_or_else(
            || "Never".to_owned(),
            |at| format!("{} ({})", format::ago(at, now), format::exact(at)),
        ),
        created: format::date(token.created_at),
        token,
        error,
    }
}

/// The confirmation on a shelf: back to its list.
fn shelf_page(
    shelf: &Shelf,
    token: PersonalAccessToken,
    error: Option<&'static str>,
) -> RevokePage {
    let mut page = page(shelf.chrome(), token, error);
    page.action = shelf.at(&format!("/{}/revoke", page.token.id));
    page.cancel = shelf.base.clone();
    page.breadcrumb = shelf.title.clone();
    // Whose token is about to stop working, in the same words as the inventory's confirmation.
    page.owner = shelf
        .application
        .as_ref()
        .map(|application| format!("Application {}", application.name));
    page
}

pub async fn show(
    db: web::Data<Db>,
    shelf: Shelf,
    path: web::Path<TokenPath>,
) -> Result<HttpResponse, AppError> {
    let token = shelf.token(&db, &path.id).await?;
    if token.revoked_at.is_some() {
        set_flash(
            &shelf.current.session,
            format!("“{}” is already revoked.", token.name),
        );
        return Ok(see_other(&shelf.base));
    }
    render_with_status(StatusCode::OK, &shelf_page(&shelf, token, None))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RevokeForm {
    pub confirm: String,
}

pub async fn submit(
    db: web::Data<Db>,
    outbox: web::Data<Outbox>,
    CsrfForm(form): CsrfForm<RevokeForm>,
    shelf: Shelf,
    client_ip: ClientIp,
    path: web::Path<TokenPath>,
) -> Result<HttpResponse, AppError> {
    let token = shelf.token(&db, &path.id).await?;
    if form.confirm != CONFIRMATION {
        let error = Some(CONFIRMATION_ERROR);
        return render_with_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &shelf_page(&shelf, token, error),
        );
    }
    let actor = shelf.current.actor(&client_ip);
    let revoked = actions::revoke(&db, **outbox, actor, &token, shelf.owner_label()).await?;
    let message = if revoked {
        format!(
            "“{}” was revoked. Anything still using it is refused from now on.",
            token.name
        )
    } else {
        format!("“{}” is already revoked.", token.name)
    };
    set_flash(&shelf.current.session, message);
    Ok(see_other(&shelf.base))
}
