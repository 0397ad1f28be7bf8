//! Admin: members and roles, the organisation's tokens, policy, the audit trail. Every route
//! takes an [`AdminUser`], so a user gets the 403 page before anything else happens.

mod audit;
mod inventory;
mod members;
mod settings;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;

use crate::web::error::AppError;
use crate::web::session::CurrentUser;

pub struct AdminUser(pub CurrentUser);

impl FromRequest for AdminUser {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let current = CurrentUser::from_request(req, payload);
        Box::pin(async move {
            let current = current.await?;
            if current.user.is_admin() {
                Ok(AdminUser(current))
            } else {
                Err(AppError::Forbidden)
            }
        })
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/admin",
        web::get().to(|| async { crate::web::see_other("/admin/members") }),
    )
    .route("/admin/members", web::get().to(members::list))
    .route("/admin/members", web::post().to(members::create))
    .route("/admin/members/new", web::get().to(members::new_form))
    .route("/admin/members/link", web::get().to(members::show_link))
    .route(
        "/admin/members/{id}/role",
        web::post().to(members::change_role),
    )
    .route(
        "/admin/members/{id}/{change}",
        web::get().to(members::confirm_status),
    )
    .route(
        "/admin/members/{id}/{change}",
        web::post().to(members::change_status),
    )
    .route("/admin/access-tokens", web::get().to(inventory::list))
    .route("/admin/access-tokens.csv", web::get().to(inventory::export))
    .route(
        "/admin/access-tokens/leaked",
        web::post().to(inventory::find_leaked),
    )
    .route(
        "/admin/access-tokens/bulk-revoke",
        web::get().to(inventory::confirm_bulk_revoke),
    )
    .route(
        "/admin/access-tokens/bulk-revoke",
        web::post().to(inventory::bulk_revoke),
    )
    .route(
        "/admin/access-tokens/{id}/revoke",
        web::get().to(inventory::confirm_revoke),
    )
    .route(
        "/admin/access-tokens/{id}/revoke",
        web::post().to(inventory::revoke),
    )
    .route("/admin/settings", web::get().to(settings::show))
    .route("/admin/settings", web::post().to(settings::save))
    .route("/admin/audit", web::get().to(audit::list))
    .route("/admin/audit.csv", web::get().to(audit::export));
}
