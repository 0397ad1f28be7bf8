//! Developer → Access Tokens.

use actix_web::HttpResponse;
use askama::Template;

use crate::web::error::AppError;
use crate::web::layout::{render, Chrome, Section};
use crate::web::session::CurrentUser;

#[derive(Template)]
#[template(path = "access_tokens/list.html")]
struct ListPage {
    chrome: Chrome,
}

pub async fn list(current: CurrentUser) -> Result<HttpResponse, AppError> {
    render(&ListPage {
        chrome: Chrome::for_user(&current, Section::ACCESS_TOKENS),
    })
}
