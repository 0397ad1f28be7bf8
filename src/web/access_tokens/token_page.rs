//! One token's own page: everything the list shortens, in full.

use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::Utc;

use crate::db::Db;
use crate::tokens::{store, usage, TokenStatus};
use crate::web::access_tokens::list::TokenRow;
use crate::web::access_tokens::usage::UsageView;
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
    /// The policy's rule for unused tokens, if any: "90 days".
    unused_after: Option<String>,
    usage: UsageView,
}

pub async fn show(
    db: web::Data<Db>,
    shelf: Shelf,
    path: web::Path<TokenPath>,
) -> Result<HttpResponse, AppError> {
    let token = shelf.token(&db, &path.id).await?;
    let token_id = token.id;
    let shown = token.clone();
    let (policy, previous, insight) = db
        .read(move |conn| {
            Ok((
                crate::policy::load(conn)?,
                store::previous_secret(conn, token_id)?,
                usage::insight(conn, &shown)?,
            ))
        })
        .await?;
    let previous: Vec<_> = previous.into_iter().collect();
    let now = Utc::now().naive_utc();
    render(&TokenPage {
        chrome: shelf.chrome(),
        status: token.status(now),
        row: TokenRow::new(&token, shelf.allowed, &policy, &previous, now),
        usage: UsageView::new(&insight, now),
        flash: take_flash(&shelf.current.session),
        unused_after: policy
            .revoke_unused_after_days
            .map(|days| crate::web::format::plural(days, "day")),
        shelf,
    })
}
