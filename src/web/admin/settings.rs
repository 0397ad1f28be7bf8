use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::db::Db;
use crate::domain::policy::{
    Policy, DEFAULT_APPLICATION_MAX_LIFETIME_DAYS, DEFAULT_MAX_ACTIVE_TOKENS,
    MAX_ACTIVE_TOKENS_LIMIT, MAX_LIFETIME_LIMIT_DAYS, REVOKE_UNUSED_LIMIT_DAYS,
};
use crate::domain::{ExpiryChoice, FieldErrors, ScopeSet};
use crate::http::ClientIp;
use crate::policy::ChangeError;
use crate::web::admin::AdminUser;
use crate::web::csrf::CsrfForm;
use crate::web::error::AppError;
use crate::web::layout::{render_with_status, Chrome, Section};
use crate::web::see_other;
use crate::web::session::{set_flash, take_flash, Flash};

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PolicyForm {
    max_lifetime_days: String,
    default_expiry: String,
    max_active_tokens: String,
    application_max_lifetime_days: String,
    /// "any", or "chosen" for the `application_scopes` checked.
    application_scope_rule: String,
    application_scopes: Vec<String>,
    /// A checkbox: "on" when checked.
    write_requires_allowlist: String,
    /// Empty: unused tokens are kept.
    revoke_unused_after_days: String,
    /// A checkbox: "on" when the admin confirmed revoking the tokens already unused that long.
    confirm_revoke_now: String,
}

impl PolicyForm {
    fn of(policy: &Policy) -> Self {
        let any = policy.application_scopes == ScopeSet::ALL;
        PolicyForm {
            max_lifetime_days: policy
                .max_lifetime_days
                .map(|d| d.to_string())
                .unwrap_or_default(),
            default_expiry: policy.default_expiry.value().to_owned(),
            max_active_tokens: policy.max_active_tokens.to_string(),
            application_max_lifetime_days: policy.application_max_lifetime_days.to_string(),
            application_scope_rule: if any { "any" } else { "chosen" }.to_owned(),
            application_scopes: policy
                .application_scopes
                .iter()
                .map(|s| s.name().to_owned())
                .collect(),
            write_requires_allowlist: if policy.write_requires_allowlist {
                "on".to_owned()
            } else {
                String::new()
            },
            revoke_unused_after_days: policy
                .revoke_unused_after_days
                .map(|d| d.to_string())
                .unwrap_or_default(),
            confirm_revoke_now: String::new(),
        }
    }

    /// The scope checkboxes, for the template.
    fn scope_options(&self) -> Vec<crate::web::access_tokens::ScopeOption> {
        crate::web::access_tokens::scope_groups(ScopeSet::ALL, &self.application_scopes)
            .into_iter()
            .flat_map(|group| [group.read, group.write])
            .flatten()
            .collect()
    }
}

#[derive(Template)]
#[template(path = "admin/settings.html")]
struct SettingsPage {
    chrome: Chrome,
    form: PolicyForm,
    choices: Vec<ExpiryChoice>,
    errors: FieldErrors,
    flash: Option<Flash>,
    /// How many tokens saving would revoke at once, when that needs confirming.
    revoked_at_once: Option<i64>,
}

/// A default must be a choice made without a date.
fn default_choices() -> Vec<ExpiryChoice> {
    ExpiryChoice::ALL
        .into_iter()
        .filter(|choice| *choice != ExpiryChoice::Custom)
        .collect()
}

pub async fn show(
    db: web::Data<Db>,
    AdminUser(admin): AdminUser,
) -> Result<HttpResponse, AppError> {
    let policy = crate::policy::current(&db).await?;
    let page = SettingsPage {
        chrome: Chrome::for_user(&admin, Section::SETTINGS),
        form: PolicyForm::of(&policy),
        choices: default_choices(),
        errors: FieldErrors::default(),
        flash: take_flash(&admin.session),
        revoked_at_once: None,
    };
    render_with_status(StatusCode::OK, &page)
}

/// A number of days from 1 to the field's limit, or empty for none (`empty_means` says what
/// that does, in the field's error).
fn optional_days(
    raw: &str,
    (field, limit): (&'static str, i64),
    empty_means: &str,
    errors: &mut FieldErrors,
) -> Option<i64> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    match raw.parse::<i64>() {
        Ok(days) if (1..=limit).contains(&days) => Some(days),
        _ => {
            errors.add(
                field,
                format!("Enter a whole number of days from 1 to {limit}, or leave it empty {empty_means}."),
            );
            None
        }
    }
}

fn parse(form: &PolicyForm) -> Result<Policy, FieldErrors> {
    let mut errors = FieldErrors::default();
    let max = optional_days(
        &form.max_lifetime_days,
        ("max_lifetime_days", MAX_LIFETIME_LIMIT_DAYS),
        "for no maximum",
        &mut errors,
    );
    let max_active_tokens = match form.max_active_tokens.trim().parse::<i64>() {
        Ok(n) if (1..=MAX_ACTIVE_TOKENS_LIMIT).contains(&n) => n,
        _ => {
            errors.add(
                "max_active_tokens",
                format!("Enter a whole number from 1 to {MAX_ACTIVE_TOKENS_LIMIT}."),
            );
            DEFAULT_MAX_ACTIVE_TOKENS
        }
    };
    let default_expiry = form
        .default_expiry
        .parse()
        .ok()
        .filter(|choice| default_choices().contains(choice));
    let application_max_lifetime_days = match form
        .application_max_lifetime_days
        .trim()
        .parse::<i64>()
    {
        Ok(days) if (1..=MAX_LIFETIME_LIMIT_DAYS).contains(&days) => days,
        _ => {
            errors.add(
                    "application_max_lifetime_days",
                    format!("Enter a whole number of days from 1 to {MAX_LIFETIME_LIMIT_DAYS}: application tokens always expire."),
                );
            DEFAULT_APPLICATION_MAX_LIFETIME_DAYS
        }
    };
    let application_scopes = match form.application_scope_rule.as_str() {
        "any" => ScopeSet::ALL,
        "chosen" => match ScopeSet::parse(form.application_scopes.iter().map(String::as_str)) {
            Ok(chosen) if !chosen.is_empty() => chosen,
            Ok(_) => {
                errors.add(
                    "application_scopes",
                    "Choose at least one scope, or allow any scope.",
                );
                ScopeSet::ALL
            }
            Err(message) => {
                errors.add("application_scopes", message);
                ScopeSet::ALL
            }
        },
        _ => {
            errors.add(
                "application_scopes",
                "Choose whether application tokens may hold any scope or only some.",
            );
            ScopeSet::ALL
        }
    };
    let revoke_unused_after_days = optional_days(
        &form.revoke_unused_after_days,
        ("revoke_unused_after_days", REVOKE_UNUSED_LIMIT_DAYS),
        "to keep unused tokens",
        &mut errors,
    );
    let policy = Policy {
        max_lifetime_days: max,
        default_expiry: default_expiry.unwrap_or_default(),
        max_active_tokens,
        application_max_lifetime_days,
        application_scopes,
        write_requires_allowlist: !form.write_requires_allowlist.is_empty(),
        revoke_unused_after_days,
    };
    if default_expiry.is_none() {
        errors.add("default_expiry", "Choose a default expiry.");
    } else if !policy.allows_choice(policy.default_expiry) {
        errors.add(
            "default_expiry",
            "The default must fit within the maximum lifetime.",
        );
    }
    if errors.is_empty() {
        Ok(policy)
    } else {
        Err(errors)
    }
}

pub async fn save(
    db: web::Data<Db>,
    AdminUser(admin): AdminUser,
    client_ip: ClientIp,
    CsrfForm(form): CsrfForm<PolicyForm>,
) -> Result<HttpResponse, AppError> {
    let refused = |form, errors, revoked_at_once| {
        let page = SettingsPage {
            chrome: Chrome::for_user(&admin, Section::SETTINGS),
            form,
            choices: default_choices(),
            errors,
            flash: None,
            revoked_at_once,
        };
        render_with_status(StatusCode::UNPROCESSABLE_ENTITY, &page)
    };
    let policy = match parse(&form) {
        Ok(policy) => policy,
        Err(errors) => return refused(form, errors, None),
    };
    if form.confirm_revoke_now.is_empty() {
        let now = chrono::Utc::now().naive_utc();
        let at_once = crate::tokens::idle::revoked_at_once(&db, &policy, now).await?;
        if at_once > 0 {
            let days = policy.revoke_unused_after_days.unwrap_or_default();
            let message = format!(
                "{} not been used for {}: saving revokes {} within minutes, before {} owners see \
                 the week's warning. Confirm below, or choose more days.",
                crate::web::format::plural(at_once, "token has")
                    .replace("tokens has", "tokens have"),
                crate::web::format::plural(days, "day"),
                if at_once == 1 { "it" } else { "them" },
                if at_once == 1 { "its" } else { "their" },
            );
            let errors = FieldErrors::one("revoke_unused_after_days", message);
            return refused(form, errors, Some(at_once));
        }
    }
    let saved = match policy.revoke_unused_after_days {
        None => "Token policy saved. It applies to every new and regenerated token.".to_owned(),
        Some(days) => format!(
            "Token policy saved. It applies to every new and regenerated token, and tokens not \
             used for {} are revoked from now on.",
            crate::web::format::plural(days, "day")
        ),
    };
    match crate::policy::change(&db, admin.actor(&client_ip), policy).await {
        Ok(()) => {}
        Err(ChangeError::NoLongerAdmin) => return Err(AppError::Forbidden),
        Err(ChangeError::Db(e)) => return Err(e.into()),
    }
    set_flash(&admin.session, saved);
    Ok(see_other("/admin/settings"))
}
