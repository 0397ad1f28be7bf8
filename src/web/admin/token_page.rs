//! One token as an admin sees it, whoever owns it: its facts and how it is used.

use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::Utc;

use crate::db::Db;
use crate::domain::ScopeSet;
use crate::tokens::{store, usage, TokenKind, TokenStatus};
use crate::web::access_tokens::list::TokenRow;
use crate::web::access_tokens::usage::UsageView;
use crate::web::admin::inventory::inventory_row;
use crate::web::admin::AdminUser;
use crate::web::error::AppError;
use crate::web::layout::{render, Chrome, Section};
use crate::web::session::{take_flash, Flash};

#[derive(Template)]
#[template(path = "admin/token.html")]
struct AdminTokenPage {
    chrome: Chrome,
    row: TokenRow,
    status: TokenStatus,
    /// The owner's email, or the application's name.
    owner: String,
    /// The application's page, for an application's token.
    application: Option<i64>,
    usage: UsageView,
    flash: Option<Flash>,
}

pub async fn show(
    db: web::Data<Db>,
    AdminUser(admin): AdminUser,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let found = inventory_row(&db, &id).await?;
    let shown = found.token.clone();
    let (policy, previous, insight) = db
        .read(move |conn| {
            Ok((
                crate::policy::load(conn)?,
                store::previous_secret(conn, shown.id)?,
                usage::insight(conn, &shown)?,
            ))
        })
        .await?;
    let previous: Vec<_> = previous.into_iter().collect();
    let now = Utc::now().naive_utc();
    let token = &found.token;
    render(&AdminTokenPage {
        chrome: Chrome::for_user(&admin, Section::INVENTORY),
        // What the owner's role allows is the owner's page's to explain; here every scope reads
        // as held.
        row: TokenRow::new(token, ScopeSet::ALL, &policy, &previous, now),
        status: token.status(now),
        owner: found.owner_label().to_owned(),
        application: match token.kind() {
            TokenKind::Application => token.application_id,
            TokenKind::Personal => None,
        },
        usage: UsageView::new(&insight, now),
        flash: take_flash(&admin.session),
    })
}
