//! The page chrome every template shares, and form error plumbing.

use actix_web::http::header;
use actix_web::HttpResponse;
use askama::Template;

use crate::web::error::AppError;
use crate::web::session::CurrentUser;

/// Bumped with the crate version so browsers refetch cached CSS/JS after an upgrade.
pub const ASSET_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Which side-navigation entry is highlighted; templates compare it with the entry's name.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Section(pub &'static str);

impl Section {
    pub const NONE: Section = Section("");
    pub const ACCESS_TOKENS: Section = Section("access-tokens");
    pub const APPLICATIONS: Section = Section("applications");
    pub const ADMIN_APPLICATIONS: Section = Section("admin-applications");
    pub const MEMBERS: Section = Section("members");
    pub const INVENTORY: Section = Section("inventory");
    pub const AUDIT: Section = Section("audit");
    pub const SETTINGS: Section = Section("settings");
}

pub struct ChromeUser {
    pub name: String,
    pub email: String,
    pub initials: String,
    pub is_admin: bool,
}

/// What the base layout needs: who is signed in (for the top bar and the sign-out form).
pub struct Chrome {
    pub user: Option<ChromeUser>,
    pub csrf: String,
    pub section: Section,
    pub asset_version: &'static str,
}

impl Chrome {
    pub fn anonymous() -> Self {
        Self {
            user: None,
            csrf: String::new(),
            section: Section::NONE,
            asset_version: ASSET_VERSION,
        }
    }

    pub fn for_user(current: &CurrentUser, section: Section) -> Self {
        Self {
            user: Some(ChromeUser {
                name: current.user.display_name.clone(),
                email: current.user.email.clone(),
                initials: current.user.initials(),
                is_admin: current.user.is_admin(),
            }),
            csrf: current.csrf.clone(),
            section,
            asset_version: ASSET_VERSION,
        }
    }

    /// `aria-current="page"` for the nav entry named `name`.
    pub fn current(&self, name: &str) -> &'static str {
        if self.section.0 == name {
            "page"
        } else {
            "false"
        }
    }
}

pub fn render(page: &impl Template) -> Result<HttpResponse, AppError> {
    render_with_status(actix_web::http::StatusCode::OK, page)
}

pub fn render_with_status(
    status: actix_web::http::StatusCode,
    page: &impl Template,
) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .body(page.render()?))
}
