//! The JSON API (token-authenticated) and the gateway check.

pub mod auth;
pub mod error;
mod me;
mod openapi;
mod tokens;
mod verify;

use actix_web::web;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(error::json_config())
        .route("/auth/verify", web::route().to(verify::verify))
        .service(
            web::scope("/api/v1")
                .app_data(error::query_config())
                .configure(api_v1),
        )
        // The token as the first path segment: /tdk_.../api/v1/me
        .service(
            web::scope("/{token}/api/v1")
                .app_data(error::query_config())
                .configure(api_v1),
        );
}

fn api_v1(cfg: &mut web::ServiceConfig) {
    cfg.route("/me", web::get().to(me::me))
        .route("/openapi.json", web::get().to(openapi::document))
        .route("/personal-access-tokens", web::get().to(tokens::list))
        .route("/personal-access-tokens", web::post().to(tokens::create))
        .route(
            "/personal-access-tokens/{id}",
            web::delete().to(tokens::revoke),
        )
        .default_service(web::to(error::not_found));
}
