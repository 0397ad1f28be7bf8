use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::{Datelike, Duration, NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};

use crate::audit::{self, Action, AuditFilter, AuditRow};
use crate::db::Db;
use crate::domain::FieldErrors;
use crate::web::admin::AdminUser;
use crate::web::csv;
use crate::web::error::AppError;
use crate::web::format::{self, PageParam, Pager};
use crate::web::layout::{render, Chrome, Section};

const PER_PAGE: i64 = 50;

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Params {
    actor: String,
    action: String,
    from: String,
    to: String,
}

fn parse_date(raw: &str) -> Result<Option<NaiveDate>, ()> {
    match raw.trim() {
        "" => Ok(None),
        // Years 1 to 9999: what YYYY-MM-DD says, and what both databases can compare.
        text => NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .filter(|d| (1..=9999).contains(&d.year()))
            .map(Some)
            .ok_or(()),
    }
}

impl Params {
    /// The filter, or what is wrong with the dates, by field.
    fn filter(&self) -> Result<AuditFilter, FieldErrors> {
        let mut errors = FieldErrors::default();
        let mut date = |field: &str, raw: &str| {
            parse_date(raw).unwrap_or_else(|()| {
                errors.add(field, "Enter the date as YYYY-MM-DD.");
                None
            })
        };
        let (from_day, to_day) = (date("from", &self.from), date("to", &self.to));
        if let (Some(from), Some(to)) = (from_day, to_day) {
            if from > to {
                errors.add("to", "The end date is before the start date.");
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let from = from_day.map(|d| d.and_time(NaiveTime::MIN));
        let until = to_day.map(|d| (d + Duration::days(1)).and_time(NaiveTime::MIN));
        let filter = AuditFilter {
            actor: self.actor.clone(),
            action: Action::ALL
                .iter()
                .copied()
                .find(|a| a.as_str() == self.action),
            from,
            until,
        };
        Ok(filter)
    }
}

pub struct Row {
    pub time: String,
    /// For the page's script to show in the viewer's own time zone.
    pub time_iso: String,
    pub actor: String,
    pub action: String,
    pub action_label: String,
    pub target: String,
    pub client_ip: String,
    pub details: String,
}

impl Row {
    fn cells(row: AuditRow) -> Row {
        let e = row.event;
        Row {
            time: format::exact(e.created_at),
            time_iso: format::iso(e.created_at),
            action_label: audit::action_label(&e.action),
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
    actions: Vec<(&'static str, String)>,
    rows: Vec<Row>,
    pager: Pager,
    errors: FieldErrors,
}

pub async fn list(
    db: web::Data<Db>,
    AdminUser(admin): AdminUser,
    params: web::Query<Params>,
    page: web::Query<PageParam>,
) -> Result<HttpResponse, AppError> {
    let params = params.into_inner();
    let requested = page.page.unwrap_or(1).max(1);
    let (filter, errors) = match params.filter() {
        Ok(filter) => (Some(filter), FieldErrors::default()),
        Err(errors) => (None, errors),
    };
    let (rows, total) = db
        .run(move |conn| {
            let Some(filter) = filter else {
                return Ok((Vec::new(), 0));
            };
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
        actions: Action::ALL
            .iter()
            .map(|a| (a.as_str(), audit::action_label(a.as_str())))
            .collect(),
        rows: rows.into_iter().map(Row::cells).collect(),
        pager,
        errors,
    })
}

pub async fn export(
    db: web::Data<Db>,
    AdminUser(_): AdminUser,
    params: web::Query<Params>,
) -> Result<HttpResponse, AppError> {
    let filter = params.filter().map_err(|_| {
        AppError::BadRequest("Enter the dates as YYYY-MM-DD, the start before the end.".into())
    })?;
    let header = [
        "time_utc",
        "actor",
        "action",
        "target",
        "client_ip",
        "details",
    ];
    let next = move |export: audit::Export| {
        let db = db.clone();
        async move {
            let page = db
                .run(move |conn| export.next_page(conn, csv::PAGE))
                .await?;
            Ok(page.map(|(rows, export)| {
                let cells = rows
                    .into_iter()
                    .map(Row::cells)
                    .map(|r| vec![r.time, r.actor, r.action, r.target, r.client_ip, r.details])
                    .collect();
                (cells, export)
            }))
        }
    };
    Ok(csv::streamed(
        "audit.csv",
        &header,
        audit::Export::new(filter),
        next,
    ))
}
