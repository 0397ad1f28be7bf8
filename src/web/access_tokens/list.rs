use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::{NaiveDateTime, Utc};
use serde::Deserialize;

use crate::db::Db;
use crate::domain::{Policy, ScopeSet};
use crate::tokens::usage::{self, AddressAlert};
use crate::tokens::{idle, store, PersonalAccessToken, PreviousSecret, Tab};
use crate::web::access_tokens::usage::NewAddressView;
use crate::web::access_tokens::Shelf;
use crate::web::error::AppError;
use crate::web::format::{self, ExpiryView, Pager};
use crate::web::layout::{render, Chrome};
use crate::web::session::{take_flash, Flash};

const PER_PAGE: i64 = 50;
/// How close to its expiry a token is listed in the banner, with Regenerate.
const EXPIRY_WARNING_DAYS: i64 = 7;
/// The most tokens the banner names; the list below shows the rest.
const EXPIRING_SHOWN: i64 = 5;

/// A token in the banner of those about to expire.
pub struct Expiring {
    pub id: i64,
    pub name: String,
    /// "Expires in 3 days", "Expires today".
    pub when: String,
    pub exact: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ListQuery {
    tab: String,
    #[serde(default, deserialize_with = "crate::web::format::page_number")]
    page: Option<i64>,
}

/// A granted scope, and whether it is still allowed (by the owner's role, or the policy for
/// application tokens): after a demotion a token keeps its scopes on record, but only the
/// allowed ones work.
pub struct ScopeView {
    pub name: &'static str,
    pub allowed: bool,
}

/// How a token reads, in the list and on its own page.
pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub hint: String,
    pub scopes: Vec<ScopeView>,
    /// Granted scopes the role allows no more; none left means the token can do nothing.
    pub scopes_left: usize,
    pub created: String,
    pub created_exact: String,
    pub regenerated: String,
    pub regenerated_exact: String,
    pub expires: ExpiryView,
    pub expires_exact: String,
    pub last_used: String,
    pub last_used_exact: String,
    pub last_used_ip: String,
    pub revoked: String,
    pub revoked_exact: String,
    /// Revoked because someone reported it leaked.
    pub reported_leaked: bool,
    /// The addresses it may be used from; empty: anywhere.
    pub allowed_addresses: Vec<String>,
    /// The secret its last regenerate replaced, while it still works.
    pub previous: Option<PreviousView>,
    /// Revoked because it went unused: for how long it had ("93 days").
    pub revoked_unused_for: Option<String>,
    /// When it will be revoked unless used (the policy's rule for unused tokens): the exact
    /// time, and the countdown.
    pub unused_deadline: Option<(String, String)>,
    /// That countdown, for the list, when it is within the warning's days.
    pub unused_warning: Option<String>,
    /// The flag a first use from a new address raised, until dismissed.
    pub new_address: Option<NewAddressView>,
}

/// A replaced secret in its overlap, as the list and the token's page show it.
pub struct PreviousView {
    pub hint: String,
    pub until: String,
    pub until_exact: String,
    pub last_used: String,
    pub last_used_exact: String,
    pub last_used_ip: String,
}

impl PreviousView {
    pub fn new(previous: &PreviousSecret, now: NaiveDateTime) -> Self {
        PreviousView {
            hint: previous.hint.clone(),
            until: format::from_now(previous.valid_until, now),
            until_exact: format::exact(previous.valid_until),
            last_used: previous
                .last_used_at
                .map_or_else(|| "Never".to_owned(), |at| format::ago(at, now)),
            last_used_exact: previous.last_used_at.map(format::exact).unwrap_or_default(),
            last_used_ip: previous.last_used_ip.clone().unwrap_or_default(),
        }
    }
}

impl TokenRow {
    /// `previous`: the token's replaced secret still working, if any (a list passes all it
    /// loaded; the row takes its own).
    pub fn new(
        token: &PersonalAccessToken,
        allowed: ScopeSet,
        policy: &Policy,
        previous: &[PreviousSecret],
        now: NaiveDateTime,
    ) -> Self {
        let scopes: Vec<ScopeView> = token
            .scopes()
            .iter()
            .map(|scope| ScopeView {
                name: scope.name(),
                allowed: allowed.contains(scope),
            })
            .collect();
        let exact = |at: Option<NaiveDateTime>| at.map(format::exact).unwrap_or_default();
        TokenRow {
            id: token.id,
            name: token.name.clone(),
            hint: token.hint.clone(),
            scopes_left: scopes.iter().filter(|s| s.allowed).count(),
            scopes,
            created: format::date(token.created_at),
            created_exact: format::exact(token.created_at),
            regenerated: token.regenerated_at.map(format::date).unwrap_or_default(),
            regenerated_exact: exact(token.regenerated_at),
            expires: format::expiry(token.expires_at, now),
            expires_exact: exact(token.expires_at),
            last_used: token
                .last_used_at
                .map_or_else(|| "Never".to_owned(), |at| format::ago(at, now)),
            last_used_exact: exact(token.last_used_at),
            last_used_ip: token.last_used_ip.clone().unwrap_or_default(),
            revoked: token.revoked_at.map(format::date).unwrap_or_default(),
            revoked_exact: exact(token.revoked_at),
            reported_leaked: token.reported_leaked(),
            revoked_unused_for: token
                .revoked_at
                .filter(|_| token.revoked_unused())
                .map(|at| format::plural((at - token.idle_since()).num_days(), "day")),
            unused_deadline: idle::deadline(token, policy, now)
                .map(|at| (format::exact(at), format::revoked_if_unused(at, now))),
            unused_warning: idle::warning(token, policy, now)
                .map(|at| format::revoked_if_unused(at, now)),
            allowed_addresses: token
                .allowlist()
                .map(|list| list.entries().collect())
                .unwrap_or_default(),
            previous: previous
                .iter()
                .find(|p| p.token_id == token.id && token.revoked_at.is_none())
                .map(|p| PreviousView::new(p, now)),
            new_address: None,
        }
    }

    /// With the token's new-address flag, if it has one.
    pub fn with_alert(mut self, alert: Option<&AddressAlert>, now: NaiveDateTime) -> Self {
        self.new_address = alert.map(|alert| NewAddressView::new(alert, now));
        self
    }

    /// "3 scopes", for the list's one-line summary.
    pub fn scope_count(&self) -> String {
        format::plural(self.scopes.len() as i64, "scope")
    }
}

/// A tab of the list: its query value, label and count.
pub struct TabLink {
    pub href: String,
    pub label: &'static str,
    pub count: i64,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "access_tokens/list.html")]
struct ListPage {
    chrome: Chrome,
    shelf: Shelf,
    tab: Tab,
    tabs: Vec<TabLink>,
    /// Any token at all, in any tab: the empty state says "yet" only for a first token.
    any_tokens: bool,
    /// Tokens revoked in the last 30 days because someone reported them leaked.
    reported_leaked: i64,
    /// Active tokens to be revoked within the warning's days unless they are used.
    unused_warned: i64,
    warning_days: i64,
    /// Tokens expiring within [`EXPIRY_WARNING_DAYS`], soonest first: the banner's.
    expiring: Vec<Expiring>,
    rows: Vec<TokenRow>,
    pager: Pager,
    flash: Option<Flash>,
}

pub async fn show(
    db: web::Data<Db>,
    shelf: Shelf,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let tab = match query.tab.as_str() {
        "revoked" => Tab::Revoked,
        "expired" => Tab::Expired,
        _ => Tab::Active,
    };
    let owner = shelf.owner;
    let now = Utc::now().naive_utc();
    let requested = query.page.unwrap_or(1);
    // One trip to the database for the tab counts, the page, its overlaps and the rule for
    // unused tokens.
    let soon = now + chrono::Duration::days(EXPIRY_WARNING_DAYS);
    let (counts, items, previous, policy, (unused_warned, expiring), alerts) = db
        .read(move |conn| {
            let counts = store::count_owned(conn, owner)?;
            let offset = Pager::clamped_offset(requested, PER_PAGE, counts.of(tab));
            let items = store::owned_rows(conn, owner, tab, offset, PER_PAGE)?;
            let ids: Vec<i64> = items.iter().map(|token| token.id).collect();
            let previous = store::previous_secrets_of(conn, &ids)?;
            let policy = crate::policy::load(conn)?;
            let warned = idle::count_warned(conn, owner, &policy, now)?;
            let expiring = store::expiring(conn, owner, now, soon, EXPIRING_SHOWN)?;
            let alerts = usage::alerts_of(conn, &ids)?;
            Ok((counts, items, previous, policy, (warned, expiring), alerts))
        })
        .await?;
    let tab_param = match tab {
        Tab::Revoked => "tab=revoked&",
        Tab::Expired => "tab=expired&",
        _ => "",
    };
    let pager = Pager::new(requested, PER_PAGE, counts.of(tab), |page| {
        shelf.at(&format!("?{tab_param}page={page}"))
    });
    render(&ListPage {
        chrome: shelf.chrome(),
        tabs: [
            (Tab::Active, "", "Active"),
            (Tab::Expired, "?tab=expired", "Expired"),
            (Tab::Revoked, "?tab=revoked", "Revoked"),
        ]
        .into_iter()
        .map(|(each, query, label)| TabLink {
            href: shelf.at(query),
            label,
            count: counts.of(each),
            current: each == tab,
        })
        .collect(),
        tab,
        any_tokens: counts.of(Tab::Current) + counts.revoked > 0,
        reported_leaked: counts.reported_leaked,
        unused_warned,
        warning_days: idle::WARNING_DAYS,
        expiring: expiring
            .into_iter()
            .map(|(id, name, at)| Expiring {
                id,
                name,
                when: format::expiry(Some(at), now)
                    .badge
                    .map_or_else(|| format::date(at), |(_, label)| label),
                exact: format::exact(at),
            })
            .collect(),
        rows: items
            .iter()
            .map(|token| {
                TokenRow::new(token, shelf.allowed, &policy, &previous, now)
                    .with_alert(alerts.get(&token.id), now)
            })
            .collect(),
        pager,
        flash: take_flash(&shelf.current.session),
        shelf,
    })
}
