//! Developer → Applications: the applications a person may manage tokens for (the ones they
//! maintain; every live one for an admin), each leading to its tokens.

use actix_web::{web, HttpResponse};
use askama::Template;

use crate::applications;
use crate::db::Db;
use crate::web::admin::applications::ApplicationRow;
use crate::web::error::AppError;
use crate::web::layout::{render, Chrome, Section};
use crate::web::session::CurrentUser;

#[derive(Template)]
#[template(path = "applications.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<ApplicationRow>,
    is_admin: bool,
}

pub async fn list(db: web::Data<Db>, current: CurrentUser) -> Result<HttpResponse, AppError> {
    let scope = if current.user.is_admin() {
        applications::Scope::All
    } else {
        applications::Scope::MaintainedBy(current.user.id)
    };
    let found = db.run(move |conn| applications::list(conn, scope)).await?;
    render(&ListPage {
        chrome: Chrome::for_user(&current, Section::APPLICATIONS),
        rows: found.iter().map(ApplicationRow::new).collect(),
        is_admin: current.user.is_admin(),
    })
}
