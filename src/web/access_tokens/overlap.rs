//! Ending a token's overlap early, after a confirmation: the secret its last regenerate
//! replaced stops working now.

use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;

use crate::db::Db;
use crate::http::ClientIp;
use crate::tokens::{actions, store};
use crate::web::access_tokens::list::PreviousView;
use crate::web::access_tokens::{Shelf, TokenPath};
use crate::web::csrf::CsrfForm;
use crate::web::error::AppError;
use crate::web::layout::{render, Chrome};
use crate::web::see_other;
use crate::web::session::set_flash;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct EndOverlapForm {}

#[derive(Template)]
#[template(path = "access_tokens/end_overlap.html")]
struct ConfirmPage {
    chrome: Chrome,
    name: String,
    token_page: String,
    previous: PreviousView,
}

/// The confirmation, with when the previous secret was last used; without one still working,
/// back to the token's page.
pub async fn confirm(
    db: web::Data<Db>,
    shelf: Shelf,
    path: web::Path<TokenPath>,
) -> Result<HttpResponse, AppError> {
    let token = shelf.token(&db, &path.id).await?;
    let token_page = shelf.at(&format!("/{}", token.id));
    let token_id = token.id;
    let previous = db
        .read(move |conn| store::previous_secret(conn, token_id))
        .await?;
    let Some(previous) = previous.filter(|_| token.revoked_at.is_none()) else {
        set_flash(
            &shelf.current.session,
            format!("“{}” has no previous secret still working.", token.name),
        );
        return Ok(see_other(&token_page));
    };
    render(&ConfirmPage {
        chrome: shelf.chrome(),
        name: token.name,
        token_page,
        previous: PreviousView::new(&previous, Utc::now().naive_utc()),
    })
}

pub async fn end(
    db: web::Data<Db>,
    CsrfForm(_): CsrfForm<EndOverlapForm>,
    shelf: Shelf,
    client_ip: ClientIp,
    path: web::Path<TokenPath>,
) -> Result<HttpResponse, AppError> {
    let token = shelf.token(&db, &path.id).await?;
    let actor = shelf.current.actor(&client_ip);
    let ended = actions::end_overlap(&db, actor, shelf.owner, token.id).await?;
    let message = if ended {
        format!(
            "The previous secret of “{}” stopped working. Only the current one works now.",
            token.name
        )
    } else {
        format!(
            "“{}” had no previous secret still working; nothing changed.",
            token.name
        )
    };
    set_flash(&shelf.current.session, message);
    Ok(see_other(&shelf.at(&format!("/{}", token.id))))
}
