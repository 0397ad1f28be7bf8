use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;

use crate::db::Db;
use crate::tokens::{store, PersonalAccessToken, Tab};
use crate::web::error::AppError;
use crate::web::format::{self, ExpiryView, Pager};
use crate::web::layout::{render, Chrome, Section};
use crate::web::session::{take_flash, CurrentUser};

const PER_PAGE: i64 = 50;
/// Scope badges shown before the rest fold away behind "+N more".
const VISIBLE_SCOPES: usize = 3;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ListQuery {
    tab: String,
    page: Option<i64>,
}

pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub hint: String,
    pub scopes: Vec<&'static str>,
    pub more_scopes: Vec<&'static str>,
    pub created: String,
    pub created_exact: String,
    pub expires: ExpiryView,
    pub last_used: String,
    pub last_used_exact: String,
    pub last_used_ip: String,
    pub revoked: String,
}

impl TokenRow {
    fn new(token: &PersonalAccessToken) -> Self {
        let now = Utc::now().naive_utc();
        let mut scopes: Vec<&'static str> = token.scopes().iter().map(|s| s.name()).collect();
        let more_scopes = scopes.split_off(scopes.len().min(VISIBLE_SCOPES));
        TokenRow {
            id: token.id,
            name: token.name.clone(),
            hint: token.hint.clone(),
            scopes,
            more_scopes,
            created: format::date(token.created_at),
            created_exact: format::exact(token.created_at),
            expires: format::expiry(token.expires_at, now),
            last_used: token
                .last_used_at
                .map_or_else(|| "Never".to_owned(), |at| format::ago(at, now)),
            last_used_exact: token.last_used_at.map(format::exact).unwrap_or_default(),
            last_used_ip: token.last_used_ip.clone().unwrap_or_default(),
            revoked: token.revoked_at.map(format::date).unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "access_tokens/list.html")]
struct ListPage {
    chrome: Chrome,
    revoked_tab: bool,
    current_count: i64,
    revoked_count: i64,
    rows: Vec<TokenRow>,
    pager: Pager,
    flash: Option<String>,
}

pub async fn show(
    db: web::Data<Db>,
    current: CurrentUser,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let tab = if query.tab == "revoked" {
        Tab::Revoked
    } else {
        Tab::Current
    };
    let user_id = current.user.id;
    let requested = query.page.unwrap_or(1);
    // One trip to the database for the tab counts and the page.
    let (counts, items) = db
        .read(move |conn| {
            let counts = store::count_owned(conn, user_id)?;
            let offset = Pager::clamped_offset(requested, PER_PAGE, counts.of(tab));
            Ok((
                counts,
                store::owned_rows(conn, user_id, tab, offset, PER_PAGE)?,
            ))
        })
        .await?;
    let tab_param = if tab == Tab::Revoked {
        "tab=revoked&"
    } else {
        ""
    };
    let pager = Pager::new(requested, PER_PAGE, counts.of(tab), |page| {
        format!("{}?{tab_param}page={page}", crate::web::HOME)
    });
    render(&ListPage {
        chrome: Chrome::for_user(&current, Section::ACCESS_TOKENS),
        revoked_tab: tab == Tab::Revoked,
        current_count: counts.current,
        revoked_count: counts.revoked,
        rows: items.iter().map(TokenRow::new).collect(),
        pager,
        flash: take_flash(&current.session),
    })
}
