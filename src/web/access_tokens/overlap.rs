//! Ending a token's overlap early: the secret its last regenerate replaced stops working now.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use crate::db::Db;
use crate::http::ClientIp;
use crate::tokens::actions;
use crate::web::access_tokens::{Shelf, TokenPath};
use crate::web::csrf::CsrfForm;
use crate::web::error::AppError;
use crate::web::see_other;
use crate::web::session::set_flash;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct EndOverlapForm {}

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
