//! How a token is used, as its page shows it; lowering the new-address flag; narrowing a token
//! to the scopes it exercised, after a confirmation.

use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::{NaiveDateTime, Utc};
use serde::Deserialize;

use crate::db::Db;
use crate::domain::{Scope, ScopeSet};
use crate::http::ClientIp;
use crate::tokens::actions::{self, TokenError};
use crate::tokens::usage::{self, AddressAlert, Dismissal, Insight, ShownAlert};
use crate::tokens::Authenticator;
use crate::web::access_tokens::{Shelf, TokenPath};
use crate::web::csrf::CsrfForm;
use crate::web::error::AppError;
use crate::web::format;
use crate::web::layout::{render, Chrome};
use crate::web::see_other;
use crate::web::session::set_flash;

/// One (address, user agent) pair as a table row.
pub struct PairView {
    pub address: String,
    /// "No user agent" when the client sent none.
    pub user_agent: String,
    pub first_seen: String,
    pub first_seen_exact: String,
    pub last_seen: String,
    pub last_seen_exact: String,
    pub uses: i64,
}

/// A held scope and when it was last exercised.
pub struct ScopeUseView {
    pub name: &'static str,
    /// "last exercised 3 minutes ago", or "not exercised in 12 days".
    pub note: String,
    pub exact: String,
    pub exercised: bool,
}

/// The flag a first use from a new address raised.
pub struct NewAddressView {
    pub address: String,
    /// Empty when the client sent none.
    pub user_agent: String,
    /// The flag's time, carried by the form that dismisses it.
    pub seen_key: String,
    pub ago: String,
    pub exact: String,
}

impl NewAddressView {
    pub fn new(alert: &AddressAlert, now: NaiveDateTime) -> Self {
        NewAddressView {
            address: alert.address.clone(),
            user_agent: alert.user_agent.clone(),
            seen_key: usage::alert_key(alert.seen_at),
            ago: format::ago(alert.seen_at, now),
            exact: format::exact(alert.seen_at),
        }
    }
}

/// Everything the token's page shows about its use.
pub struct UsageView {
    pub pairs: Vec<PairView>,
    pub scopes: Vec<ScopeUseView>,
    /// Held scopes never exercised: what narrowing would remove (only when some scope was
    /// exercised; otherwise narrowing would leave none).
    pub narrowable: Vec<&'static str>,
    pub new_address: Option<NewAddressView>,
    /// "in the last 12 days", or "so far": how long scopes exercised are known for.
    pub known_for: String,
}

impl UsageView {
    pub fn new(insight: &Insight, now: NaiveDateTime) -> Self {
        let unexercised_for = not_exercised_for(insight.exercise_known_since, now);
        let any_exercised = !insight.exercised().is_empty();
        UsageView {
            pairs: insight
                .pairs
                .iter()
                .map(|pair| PairView {
                    address: pair.address.clone(),
                    user_agent: user_agent_label(&pair.user_agent),
                    first_seen: format::ago(pair.first_seen_at, now),
                    first_seen_exact: format::exact(pair.first_seen_at),
                    last_seen: format::ago(pair.last_seen_at, now),
                    last_seen_exact: format::exact(pair.last_seen_at),
                    uses: pair.use_count,
                })
                .collect(),
            scopes: insight
                .scopes
                .iter()
                .map(|s| match s.last_exercised_at {
                    Some(at) => ScopeUseView {
                        name: s.scope.name(),
                        note: format!("last exercised {}", format::ago(at, now).to_lowercase()),
                        exact: format::exact(at),
                        exercised: true,
                    },
                    None => ScopeUseView {
                        name: s.scope.name(),
                        note: unexercised_for.clone(),
                        exact: String::new(),
                        exercised: false,
                    },
                })
                .collect(),
            narrowable: if any_exercised {
                insight.unexercised().iter().map(|s| s.name()).collect()
            } else {
                Vec::new()
            },
            new_address: insight
                .alert
                .as_ref()
                .map(|alert| NewAddressView::new(alert, now)),
            known_for: match (now - insight.exercise_known_since).num_days() {
                days if days < 1 => "so far".to_owned(),
                days => format!("in the last {}", format::plural(days, "day")),
            },
        }
    }
}

fn user_agent_label(user_agent: &str) -> String {
    if user_agent.is_empty() {
        "No user agent".to_owned()
    } else {
        user_agent.to_owned()
    }
}

/// "not exercised in 12 days", or "not exercised yet" within the first day.
fn not_exercised_for(since: NaiveDateTime, now: NaiveDateTime) -> String {
    match (now - since).num_days() {
        days if days < 1 => "not exercised yet".to_owned(),
        days => format!("not exercised in {}", format::plural(days, "day")),
    }
}

/// The flag the page showed, and which page: `back=list` for the list, else the token's page.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct DismissForm {
    address: String,
    seen: String,
    back: String,
}

/// Lowers the token's new-address flag the person saw (not one raised since), back to where
/// they were.
pub async fn dismiss(
    db: web::Data<Db>,
    CsrfForm(form): CsrfForm<DismissForm>,
    shelf: Shelf,
    client_ip: ClientIp,
    path: web::Path<TokenPath>,
) -> Result<HttpResponse, AppError> {
    let token = shelf.token(&db, &path.id).await?;
    let actor = shelf.current.actor(&client_ip);
    let back = if form.back == "list" {
        shelf.base.clone()
    } else {
        shelf.at(&format!("/{}", token.id))
    };
    let shown = ShownAlert {
        address: form.address,
        seen: form.seen,
    };
    let dismissed = actions::dismiss_new_address(&db, actor, shelf.owner, token.id, shown).await?;
    let message = match dismissed {
        Dismissal::Dismissed(alert) => format!(
            "Dismissed: “{}” was used from {}. If that was not you or your service, revoke the token.",
            token.name, alert.address
        ),
        Dismissal::Newer(alert) => format!(
            "Not dismissed: “{}” was used from another new address since, {}. Look at it before you dismiss it.",
            token.name, alert.address
        ),
        Dismissal::NoFlag => format!("“{}” had no new address to dismiss.", token.name),
    };
    set_flash(&shelf.current.session, message);
    Ok(see_other(&back))
}

#[derive(Template)]
#[template(path = "access_tokens/narrow.html")]
struct NarrowPage {
    chrome: Chrome,
    name: String,
    token_page: String,
    usage: UsageView,
    /// Why there is nothing to narrow, when there is not.
    nothing: Option<String>,
}

/// The confirmation: which scopes go, which stay and when they were used; or why nothing
/// would.
pub async fn confirm_narrow(
    db: web::Data<Db>,
    shelf: Shelf,
    path: web::Path<TokenPath>,
) -> Result<HttpResponse, AppError> {
    let token = shelf.token(&db, &path.id).await?;
    let token_page = shelf.at(&format!("/{}", token.id));
    let shown = token.clone();
    let insight = db.read(move |conn| usage::insight(conn, &shown)).await?;
    let usage = UsageView::new(&insight, Utc::now().naive_utc());
    let nothing = if token.revoked_at.is_some() {
        Some(format!(
            "“{}” is revoked: it holds nothing to narrow.",
            token.name
        ))
    } else if usage.narrowable.is_empty() {
        Some(nothing_to_narrow(&token.name, &insight))
    } else {
        None
    };
    render(&NarrowPage {
        chrome: shelf.chrome(),
        name: token.name,
        token_page,
        usage,
        nothing,
    })
}

fn nothing_to_narrow(name: &str, insight: &Insight) -> String {
    if insight.exercised().is_empty() {
        format!("“{name}” has not exercised any of its scopes yet, so there is nothing to narrow it to.")
    } else {
        format!("“{name}” has exercised every scope it holds; nothing to remove.")
    }
}

/// The scopes the confirmation listed for removal: only those are removed.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct NarrowForm {
    #[serde(rename = "remove")]
    remove: Vec<String>,
}

pub async fn narrow(
    db: web::Data<Db>,
    authenticator: web::Data<Authenticator>,
    CsrfForm(form): CsrfForm<NarrowForm>,
    shelf: Shelf,
    client_ip: ClientIp,
    path: web::Path<TokenPath>,
) -> Result<HttpResponse, AppError> {
    let token = shelf.token(&db, &path.id).await?;
    let token_page = shelf.at(&format!("/{}", token.id));
    // Scopes are exercised in memory between writes: count this instance's latest too.
    let recorder = authenticator.last_used.clone();
    web::block(move || recorder.flush())
        .await
        .map_err(|_| AppError::Internal(anyhow::anyhow!("the usage writer stopped")))??;
    let confirmed: ScopeSet = form
        .remove
        .iter()
        .filter_map(|name| name.parse::<Scope>().ok())
        .collect();
    let actor = shelf.current.actor(&client_ip);
    let message = match actions::narrow_to_exercised(&db, actor, shelf.owner, token.id, confirmed)
        .await
    {
        Ok(removed) if removed.is_empty() => format!(
            "“{}” kept its scopes: each one listed was exercised meanwhile.",
            token.name
        ),
        Ok(removed) => format!(
            "“{}” no longer holds {}. It keeps the scopes it used.",
            token.name,
            removed
                .iter()
                .map(|s| s.name())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Err(refusal @ (TokenError::NothingExercised | TokenError::Revoked)) => refusal.to_string(),
        Err(other) => return Err(other.into()),
    };
    set_flash(&shelf.current.session, message);
    Ok(see_other(&token_page))
}
