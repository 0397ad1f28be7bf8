//! One token's own page: everything the list shortens, in full.

use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::Utc;

use crate::db::Db;
use crate::tokens::TokenStatus;
use crate::web::access_tokens::list::TokenRow;
use crate::web::access_tokens::own_token;
use crate::web::error::AppError;
use crate::web::layout::{render, Chrome, Section};
use crate::web::session::CurrentUser;

#[derive(Template)]
#[template(path = "access_tokens/token.html")]
struct TokenPage {
    chrome: Chrome,
    row: TokenRow,
    status: TokenStatus,
}

pub async fn show(
    db: web::Data<Db>,
    current: CurrentUser,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let token = own_token(&db, current.user.id, &id).await?;
    let now = Utc::now().naive_utc();
    render(&TokenPage {
        chrome: Chrome::for_user(&current, Section::ACCESS_TOKENS),
        status: token.status(now),
        row: TokenRow::new(&token, current.user.role(), now),
    })
}
