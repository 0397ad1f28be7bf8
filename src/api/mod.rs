//! The JSON API (token-authenticated) and the gateway check.

mod applications;
pub mod auth;
pub mod error;
mod leaks;
mod me;
mod openapi;
mod scim;

pub use scim::SCIM_ROUTES;
mod tokens;
mod verify;

use actix_web::web;

/// Every API route; `timed`: the request-time metrics are on.
pub fn routes(cfg: &mut web::ServiceConfig, timed: bool) {
    cfg.app_data(error::json_config());
    gateway_routes(cfg, timed);
    scim::routes(cfg, timed);
    cfg.service(
        web::scope("/api/v1")
            .app_data(error::query_config())
            .configure(|cfg| api_v1(cfg, timed)),
    )
    // The token as the first path segment: /tdk_.../api/v1/me
    .service(
        web::scope("/{token}/api/v1")
            .app_data(error::query_config())
            .configure(|cfg| api_v1(cfg, timed)),
    );
}

crate::route_table! {
    fn gateway_routes, GATEWAY_ROUTES, other_methods => error::method_not_allowed;
    route "/auth/verify" => verify::verify,
}

crate::route_table! {
    /// Served under `/api/v1` and under `/{token}/api/v1`.
    fn api_v1_routes, V1_ROUTES, other_methods => error::method_not_allowed;
    get "/me" => me::me,
    get "/openapi.json" => openapi::document,
    get "/personal-access-tokens" => tokens::list,
    post "/personal-access-tokens" => tokens::create,
    get "/personal-access-tokens/{id}" => tokens::show,
    delete "/personal-access-tokens/{id}" => tokens::revoke,
    post "/personal-access-tokens/self/rotate" => tokens::rotate_self,
    post "/credentials/revoke" => leaks::report,
    get "/applications" => applications::list,
    post "/applications" => applications::create,
    get "/applications/{id}/tokens" => applications::tokens,
    post "/applications/{id}/tokens" => applications::create_token,
    delete "/applications/{id}/tokens/{token_id}" => applications::revoke_token,
    post "/application-tokens/self/rotate" => applications::rotate_self,
}

fn api_v1(cfg: &mut web::ServiceConfig, timed: bool) {
    api_v1_routes(cfg, timed);
    cfg.default_service(web::to(error::not_found));
}
