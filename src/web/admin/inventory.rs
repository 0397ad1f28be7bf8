use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::db::Db;
use crate::domain::{Policy, Scope};
use crate::http::ClientIp;
use crate::notifications::Outbox;
use crate::tokens::inventory::{
    self, InventoryFilter, InventoryRow, InventoryTotals, KindFilter, SortBy, StatusFilter,
    UnusedFor,
};
use crate::tokens::{actions, idle, TokenKind, TokenStatus};
use crate::web::access_tokens::revoke::{
    self as own_revoke, RevokeForm, CONFIRMATION, CONFIRMATION_ERROR,
};
use crate::web::admin::AdminUser;
use crate::web::csrf::CsrfForm;
use crate::web::error::AppError;
use crate::web::format::{self, PageParam, Pager};
use crate::web::layout::{render, render_with_status, Chrome, Section};
use crate::web::session::{set_flash, take_flash, CurrentUser, Flash};
use crate::web::{csv, see_other};

const PER_PAGE: i64 = 50;

/// The inventory's filters as they travel in URLs and forms.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Params {
    pub status: StatusFilter,
    pub unused: UnusedFor,
    /// "1" when ticked.
    pub never_used: String,
    pub kind: KindFilter,
    pub owner: String,
    pub scope: String,
    pub name: String,
    pub leaked: String,
    /// Left out of addresses when it is the default order.
    #[serde(skip_serializing_if = "is_default_sort")]
    pub sort: SortBy,
}

fn is_default_sort(sort: &SortBy) -> bool {
    *sort == SortBy::default()
}

impl Params {
    fn filter(&self) -> InventoryFilter {
        InventoryFilter {
            status: self.status,
            unused: self.unused,
            never_used: self.never_used == "1",
            kind: self.kind,
            owner: self.owner.clone(),
            scope: self.scope.parse::<Scope>().ok(),
            name: self.name.clone(),
            leaked: self.leaked.clone(),
            sort: self.sort,
        }
    }

    /// The filters as a query string (no page), leaving out the empty ones.
    pub fn query_string(&self) -> String {
        crate::web::non_empty_query(self)
    }

    /// The filters in use, in words, for a confirmation that acts on what they match.
    pub fn in_words(&self) -> Vec<String> {
        let f = self.filter();
        let mut words = Vec::new();
        match f.status {
            StatusFilter::Any => {}
            StatusFilter::Active => words.push("active".to_owned()),
            StatusFilter::Expired => words.push("expired".to_owned()),
            StatusFilter::Revoked => words.push("revoked".to_owned()),
        }
        if let Some(days) = f.unused.days() {
            words.push(format!("not used for {days} days"));
        }
        if f.never_used {
            words.push("never used".to_owned());
        }
        if let Some(scope) = f.scope {
            words.push(format!("holding {}", scope.name()));
        }
        match f.kind {
            KindFilter::Any => {}
            KindFilter::Personal => words.push("personal".to_owned()),
            KindFilter::Application => words.push("application tokens".to_owned()),
        }
        if !self.owner.trim().is_empty() {
            words.push(format!("owner matching “{}”", self.owner.trim()));
        }
        if !self.name.trim().is_empty() {
            words.push(format!("name matching “{}”", self.name.trim()));
        }
        if !self.leaked.trim().is_empty() {
            words.push("matching the leaked token searched for".to_owned());
        }
        words
    }

    /// What the page's subtitle says of the order.
    pub fn sort_note(&self) -> &'static str {
        match self.sort {
            SortBy::LastUsed => "Sorted by Last used: the stale ones come first.",
            SortBy::Created => "Sorted by Created: the newest first.",
            SortBy::Expires => "Sorted by Expires: the soonest first.",
        }
    }

    /// "1 token matches", "3 tokens match".
    pub fn matches(total: i64) -> String {
        let verb = if total == 1 { "matches" } else { "match" };
        format!("{} {verb}.", format::plural(total, "token"))
    }

    fn is_filtered(&self) -> bool {
        let f = self.filter();
        f.status != StatusFilter::Any
            || f.unused.days().is_some()
            || f.never_used
            || f.kind != KindFilter::Any
            || f.scope.is_some()
            || [&self.owner, &self.name, &self.leaked]
                .iter()
                .any(|v| !v.trim().is_empty())
    }
}

pub struct Row {
    pub id: i64,
    /// An application's token: `owner` is the application's name.
    pub application: bool,
    pub application_id: i64,
    pub owner: String,
    pub owner_email: String,
    pub name: String,
    pub hint: String,
    pub scopes: Vec<&'static str>,
    pub created: String,
    pub created_exact: String,
    pub expires: format::ExpiryView,
    pub expires_exact: String,
    pub last_used: String,
    pub last_used_exact: String,
    pub last_used_ip: String,
    pub status: &'static str,
    /// "Revoked in 3 days if unused", within the warning's days.
    pub unused_warning: Option<String>,
}

fn status(row: &InventoryRow) -> TokenStatus {
    row.token.status(Utc::now().naive_utc())
}

impl Row {
    /// "3 scopes", for the one-line summary.
    pub fn scope_count(&self) -> String {
        format::plural(self.scopes.len() as i64, "scope")
    }

    fn new(row: InventoryRow, policy: &Policy) -> Self {
        let now = Utc::now().naive_utc();
        let token = &row.token;
        Row {
            id: token.id,
            application: token.kind() == TokenKind::Application,
            application_id: token.application_id.unwrap_or_default(),
            status: status(&row).label(),
            name: token.name.clone(),
            hint: token.hint.clone(),
            scopes: token.scopes().iter().map(|s| s.name()).collect(),
            created: format::date(token.created_at),
            created_exact: format::exact(token.created_at),
            expires: format::expiry(token.expires_at, now),
            expires_exact: token.expires_at.map(format::exact).unwrap_or_default(),
            last_used: token
                .last_used_at
                .map_or_else(|| "Never".into(), |at| format::ago(at, now)),
            last_used_exact: token.last_used_at.map(format::exact).unwrap_or_default(),
            last_used_ip: token.last_used_ip.clone().unwrap_or_default(),
            unused_warning: idle::warning(token, policy, now)
                .map(|at| format::revoked_if_unused(at, now)),
            owner: row.owner_name,
            owner_email: row.owner_email,
        }
    }
}

#[derive(Template)]
#[template(path = "admin/tokens.html")]
struct InventoryPage {
    chrome: Chrome,
    params: Params,
    query: String,
    rows: Vec<Row>,
    pager: Pager,
    scopes: Vec<&'static str>,
    flash: Option<Flash>,
    filtered: bool,
}

pub async fn list(
    db: web::Data<Db>,
    totals: web::Data<InventoryTotals>,
    AdminUser(admin): AdminUser,
    params: web::Query<Params>,
    page: web::Query<PageParam>,
) -> Result<HttpResponse, AppError> {
    let params = params.into_inner();
    let filter = params.filter();
    let requested = page.page.unwrap_or(1).max(1);
    let query = params.query_string();
    // Counting every token of the organisation is most of a page view's cost; the total may
    // be a second old, and any change made here refreshes it.
    let generation = db.cache_generation();
    let known_total = totals.0.get(&query, generation);
    let (rows, total, policy) = db
        .run(move |conn| {
            let total = match known_total {
                Some(total) => total,
                None => inventory::count(conn, &filter)?,
            };
            let offset = Pager::clamped_offset(requested, PER_PAGE, total);
            let rows = inventory::list(conn, &filter, offset, PER_PAGE)?;
            Ok((rows, total, crate::policy::load(conn)?))
        })
        .await?;
    if known_total.is_none() {
        totals.0.put(query.clone(), total, generation);
    }
    let pager = Pager::new(requested, PER_PAGE, total, |page| {
        format!("/admin/access-tokens?{query}&page={page}")
    });
    render(&InventoryPage {
        chrome: Chrome::for_user(&admin, Section::INVENTORY),
        filtered: params.is_filtered(),
        params,
        query,
        rows: rows.into_iter().map(|row| Row::new(row, &policy)).collect(),
        pager,
        scopes: Scope::all().map(|s| s.name()).collect(),
        flash: take_flash(&admin.session),
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct LeakedForm {
    fragment: String,
}

/// The leaked-token search. The fragment comes by POST, so a whole token pasted here never
/// stands in a URL (the address bar, history, a log); the results page gets only what the
/// search matches by (see [`inventory::leak_match`]).
pub async fn find_leaked(
    AdminUser(_): AdminUser,
    CsrfForm(form): CsrfForm<LeakedForm>,
) -> Result<HttpResponse, AppError> {
    let params = Params {
        leaked: inventory::leak_match(&form.fragment),
        ..Params::default()
    };
    Ok(see_other(&format!(
        "/admin/access-tokens?{}",
        params.query_string()
    )))
}

pub async fn export(
    db: web::Data<Db>,
    AdminUser(_): AdminUser,
    params: web::Query<Params>,
) -> Result<HttpResponse, AppError> {
    let header = [
        "id",
        "kind",
        "owner_email",
        "owner_name",
        "name",
        "hint",
        "scopes",
        "status",
        "created_at",
        "expires_at",
        "last_used_at",
        "last_used_ip",
        "revoked_at",
    ];
    let next = move |export: inventory::Export| {
        let db = db.clone();
        async move {
            let page = db
                .run(move |conn| export.next_page(conn, csv::PAGE))
                .await?;
            Ok(page.map(|(rows, export)| (rows.into_iter().map(csv_cells).collect(), export)))
        }
    };
    Ok(csv::streamed(
        "access-tokens.csv",
        &header,
        inventory::Export::new(params.filter()),
        next,
    ))
}

fn csv_cells(row: InventoryRow) -> Vec<String> {
    let status = status(&row).as_str().to_owned();
    let t = row.token;
    let time = |at: Option<chrono::NaiveDateTime>| at.map(format::exact).unwrap_or_default();
    vec![
        t.id.to_string(),
        t.kind().as_str().to_owned(),
        row.owner_email,
        row.owner_name,
        t.name.clone(),
        t.hint.clone(),
        t.scopes().to_stored(),
        status,
        format::exact(t.created_at),
        time(t.expires_at),
        time(t.last_used_at),
        t.last_used_ip.clone().unwrap_or_default(),
        time(t.revoked_at),
    ]
}

pub(super) async fn inventory_row(db: &Db, raw_id: &str) -> Result<InventoryRow, AppError> {
    let id: i64 = raw_id.parse().map_err(|_| AppError::NotFound)?;
    db.run(move |conn| inventory::find(conn, id))
        .await?
        .ok_or(AppError::NotFound)
}

/// The inventory with the filters it was left with, and the same filters as a query string.
fn back_to(params: &Params) -> (String, String) {
    let query = params.query_string();
    if query.is_empty() {
        ("/admin/access-tokens".to_owned(), query)
    } else {
        (format!("/admin/access-tokens?{query}"), format!("?{query}"))
    }
}

/// The revoke confirmation; cancelling or revoking returns to the inventory as it was filtered.
fn revoke_page(
    admin: &CurrentUser,
    row: InventoryRow,
    params: &Params,
    error: Option<&'static str>,
) -> own_revoke::RevokePage {
    let (back, query) = back_to(params);
    let owner = match row.token.kind() {
        TokenKind::Personal => format!("{} ({})", row.owner_name, row.owner_email),
        TokenKind::Application => format!("Application {}", row.owner_name),
    };
    let mut page = own_revoke::page(
        Chrome::for_user(admin, Section::INVENTORY),
        row.token,
        error,
    );
    page.owner = Some(owner);
    page.action = format!("/admin/access-tokens/{}/revoke{query}", page.token.id);
    page.cancel = back;
    page.breadcrumb = "All access tokens".to_owned();
    page
}

pub async fn confirm_revoke(
    db: web::Data<Db>,
    AdminUser(admin): AdminUser,
    id: web::Path<String>,
    params: web::Query<Params>,
) -> Result<HttpResponse, AppError> {
    let row = inventory_row(&db, &id).await?;
    if row.token.revoked_at.is_some() {
        set_flash(
            &admin.session,
            format!("“{}” is already revoked.", row.token.name),
        );
        return Ok(see_other(&back_to(&params).0));
    }
    render(&revoke_page(&admin, row, &params, None))
}

pub async fn revoke(
    db: web::Data<Db>,
    outbox: web::Data<Outbox>,
    AdminUser(admin): AdminUser,
    client_ip: ClientIp,
    id: web::Path<String>,
    params: web::Query<Params>,
    CsrfForm(form): CsrfForm<RevokeForm>,
) -> Result<HttpResponse, AppError> {
    let row = inventory_row(&db, &id).await?;
    if form.confirm != CONFIRMATION {
        return render_with_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &revoke_page(&admin, row, &params, Some(CONFIRMATION_ERROR)),
        );
    }
    let revoked = actions::revoke(
        &db,
        **outbox,
        admin.actor(&client_ip),
        &row.token,
        row.owner_label(),
    )
    .await?;
    let message = if revoked {
        format!("Revoked “{}” of {}.", row.token.name, row.owner_label())
    } else {
        format!("“{}” was already revoked.", row.token.name)
    };
    set_flash(&admin.session, message);
    Ok(see_other(&back_to(&params).0))
}

#[derive(Template)]
#[template(path = "admin/bulk_revoke.html")]
struct BulkRevokePage {
    chrome: Chrome,
    count: usize,
    query: String,
    /// The filters in words: what "matching" means here.
    filters: Vec<String>,
    error: Option<&'static str>,
}

pub async fn confirm_bulk_revoke(
    db: web::Data<Db>,
    AdminUser(admin): AdminUser,
    params: web::Query<Params>,
) -> Result<HttpResponse, AppError> {
    let filter = params.filter();
    let count = db
        .run(move |conn| inventory::revocable_ids(conn, &filter))
        .await?
        .len();
    render(&BulkRevokePage {
        chrome: Chrome::for_user(&admin, Section::INVENTORY),
        count,
        query: params.query_string(),
        filters: params.in_words(),
        error: None,
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct BulkRevokeForm {
    /// The filters, as the query string of the confirmation page.
    filters: String,
    confirm: String,
    /// How many the admin confirmed; if the selection grew since, nothing is revoked.
    expected: usize,
}

pub async fn bulk_revoke(
    db: web::Data<Db>,
    outbox: web::Data<Outbox>,
    AdminUser(admin): AdminUser,
    client_ip: ClientIp,
    CsrfForm(form): CsrfForm<BulkRevokeForm>,
) -> Result<HttpResponse, AppError> {
    let params: Params = serde_html_form::from_str(&form.filters).unwrap_or_default();
    let filter = params.filter();
    if form.confirm != CONFIRMATION {
        let count = db
            .run(move |conn| inventory::revocable_ids(conn, &filter))
            .await?
            .len();
        let page = BulkRevokePage {
            chrome: Chrome::for_user(&admin, Section::INVENTORY),
            count,
            query: params.query_string(),
            filters: params.in_words(),
            error: Some(CONFIRMATION_ERROR),
        };
        return render_with_status(StatusCode::UNPROCESSABLE_ENTITY, &page);
    }
    let revoked = actions::revoke_matching(
        &db,
        **outbox,
        admin.actor(&client_ip),
        filter,
        form.expected,
    )
    .await?;
    let message = match revoked {
        Some(n) => format!("Revoked {n} token{}.", if n == 1 { "" } else { "s" }),
        None => {
            "More tokens match than you confirmed; nothing was revoked. Review the selection again."
                .into()
        }
    };
    set_flash(&admin.session, message);
    Ok(see_other(&format!(
        "/admin/access-tokens?{}",
        params.query_string()
    )))
}
