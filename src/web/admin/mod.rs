//! Admin: members and roles, applications, the organisation's tokens, policy, the audit trail. Every route
//! takes an [`AdminUser`], so a user gets the 403 page before anything else happens.

pub mod applications;
mod audit;
mod inventory;
mod members;
mod settings;
mod token_page;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
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

crate::route_table! {
    pub fn routes, ROUTES, other_methods => crate::web::error::method_not_allowed;
    get "/admin" => || async { crate::web::see_other("/admin/members") },
    get "/admin/members" => members::list,
    post "/admin/members" => members::create,
    get "/admin/members/new" => members::new_form,
    get "/admin/members/link" => members::show_link,
    post "/admin/members/{id}/role" => members::change_role,
    // Before `{change}`, which would take "password-link" for a status change.
    get "/admin/members/{id}/password-link" => members::confirm_password_link,
    post "/admin/members/{id}/password-link" => members::issue_password_link,
    get "/admin/members/{id}/{change}" => members::confirm_status,
    post "/admin/members/{id}/{change}" => members::change_status,
    get "/admin/access-tokens" => inventory::list,
    get "/admin/access-tokens.csv" => inventory::export,
    post "/admin/access-tokens/leaked" => inventory::find_leaked,
    get "/admin/access-tokens/bulk-revoke" => inventory::confirm_bulk_revoke,
    post "/admin/access-tokens/bulk-revoke" => inventory::bulk_revoke,
    get "/admin/access-tokens/{id}" => token_page::show,
    get "/admin/access-tokens/{id}/revoke" => inventory::confirm_revoke,
    post "/admin/access-tokens/{id}/revoke" => inventory::revoke,
    get "/admin/applications" => applications::list,
    post "/admin/applications" => applications::create,
    get "/admin/applications/{app}" => applications::show,
    post "/admin/applications/{app}" => applications::rename,
    post "/admin/applications/{app}/maintainers" => applications::add_maintainer,
    post "/admin/applications/{app}/maintainers/{user}/remove" => applications::remove_maintainer,
    get "/admin/applications/{app}/archive" => applications::confirm_archive,
    post "/admin/applications/{app}/archive" => applications::archive,
    get "/admin/settings" => settings::show,
    post "/admin/settings" => settings::save,
    get "/admin/audit" => audit::list,
    get "/admin/audit.csv" => audit::export,
}
