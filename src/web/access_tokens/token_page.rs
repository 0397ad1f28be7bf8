//! One token's own page: everything the list shortens, in full.

use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::Utc;

use crate::db::Db;
use crate::tokens::{store, TokenStatus};
use crate::web::access_tokens::list::TokenRow;
use crate::web::access_tokens::Shelf;
use crate::web::access_tokens::TokenPath;
use crate::web::error::AppError;
use crate::web::layout::{render, Chrome};
use crate::web::session::{take_flash, Flash};

#[derive(Template)]
#[template(path = "access_tokens/token.html")]
struct TokenPage {
    chrome: Chrome,
    shelf: Shelf,
    row: TokenRow,
    status: TokenStatus,
    flash: Option<Flash>,
}

pub async fn show(
    db: web::Data<Db>,
    shelf: Shelf,
    path: web::Path<TokenPath>,
) -> Result<HttpResponse, AppError> {
    let token = shelf.token(&db, &path.id).await?;
    let token_id = token.id;
    let previous: Vec<_> = db
        .read(move |conn| store::previous_secret(conn, token_id))
        .await?
        .into_iter()
        .collect();
    let now = Utc::now().naive_utc();
    render(&TokenPage {
        chrome: shelf.chrome(),
        status: token.status(now),
        row: TokenRow::new(&token, shelf.allowed, &previous, now),
        flash: take_flash(&shelf.current.session),
        shelf,
    })
}
