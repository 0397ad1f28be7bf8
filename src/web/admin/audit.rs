use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::{Duration, NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};

use crate::audit::{self, Action, AuditFilter, AuditRow};
use crate::db::Db;
use crate::web::admin::AdminUser;
use crate::web::csv;
use crate::web::error::AppError;
use crate::web::format::{self, Pager};
use crate::web::layout::{render, Chrome, Section};

const PER_PAGE: i64 = 50;
const EXPORT_LIMIT: i64 = 200_000;

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Params {
    actor: String,
    action: String,
    from: String,
    to: String,
}

#[derive(Deserialize)]
pub struct PageParam {
    page: Option<i64>,
}

fn parse_date(raw: &str) -> Result<Option<NaiveDate>, ()> {
    match raw.trim() {
        "" => Ok(None),
        text => NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map(Some)
            .map_err(drop),
    }
}

impl Params {
    /// The filter, and a message when a date could not be read (that bound is then ignored).
    fn filter(&self) -> (AuditFilter, Option<&'static str>) {
        let mut warning = None;
        let mut date = |raw: &str| {
            parse_date(raw).unwrap_or_else(|()| {
                warning = Some("Dates are YYYY-MM-DD; the one that was not has been ignored.");
                None
            })
        };
        let from = date(&self.from).map(|d| d.and_time(NaiveTime::MIN));
        let until = date(&self.to).map(|d| (d + Duration::days(1)).and_time(NaiveTime::MIN));
        let filter = AuditFilter {
            actor: self.actor.clone(),
            action: Action::ALL
                .iter()
                .copied()
                .find(|a| a.as_str() == self.action),
            from,
            until,
        };
        (filter, warning)
    }
}

pub struct Row {
    pub time: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub client_ip: String,
    pub details: String,
}

impl Row {
    fn cells(row: AuditRow) -> Row {
        let e = row.event;
        Row {
            time: format::exact(e.created_at),
            actor: row.actor_email.unwrap_or_else(|| "—".into()),
            target: match (e.target_type, e.target_label) {
                (Some(kind), Some(label)) => format!("{kind}: {label}"),
                (Some(kind), None) => kind,
                _ => String::new(),
            },
            action: e.action,
            client_ip: e.client_ip.unwrap_or_default(),
            details: e.details,
        }
    }
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    chrome: Chrome,
    params: Params,
    query: String,
    actions: Vec<&'static str>,
    rows: Vec<Row>,
    pager: Pager,
    warning: Option<&'static str>,
}

pub async fn list(
    db: web::Data<Db>,
    AdminUser(admin): AdminUser,
    params: web::Query<Params>,
    page: web::Query<PageParam>,
) -> Result<HttpResponse, AppError> {
    let params = params.into_inner();
    let (filter, warning) = params.filter();
    let requested = page.page.unwrap_or(1).max(1);
    let (rows, total) = db
        .run(move |conn| {
            let total = audit::count(conn, &filter)?;
            Ok((
                audit::list(
                    conn,
                    &filter,
                    Pager::clamped_offset(requested, PER_PAGE, total),
                    PER_PAGE,
                )?,
                total,
            ))
        })
        .await?;
    let query = crate::web::non_empty_query(&params);
    let pager = Pager::new(requested, PER_PAGE, total, |page| {
        format!("/admin/audit?{query}&page={page}")
    });
    render(&AuditPage {
        chrome: Chrome::for_user(&admin, Section::AUDIT),
        params,
        query,
        actions: Action::ALL.iter().map(|a| a.as_str()).collect(),
        rows: rows.into_iter().map(Row::cells).collect(),
        pager,
        warning,
    })
}

pub async fn export(
    db: web::Data<Db>,
    AdminUser(_): AdminUser,
    params: web::Query<Params>,
) -> Result<HttpResponse, AppError> {
    let (filter, _) = params.filter();
    let header = [
        "time_utc",
        "actor",
        "action",
        "target",
        "client_ip",
        "details",
    ];
    let page = move |offset, count| {
        let (db, filter) = (db.clone(), filter.clone());
        async move {
            let rows = db
                .run(move |conn| audit::list(conn, &filter, offset, count))
                .await?;
            Ok(rows
                .into_iter()
                .map(Row::cells)
                .map(|r| vec![r.time, r.actor, r.action, r.target, r.client_ip, r.details])
                .collect())
        }
    };
    Ok(csv::streamed("audit.csv", &header, EXPORT_LIMIT, page))
}
