//! The OpenAPI document, generated from the handlers' annotations.

use actix_web::HttpResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "tokendesk API", description = "Personal and application access tokens: who a token speaks for, the owner's tokens, applications and their tokens, and the gateway check."),
    paths(super::me::me, super::tokens::list, super::tokens::create, super::tokens::show, super::tokens::revoke, super::tokens::rotate_self,
        super::applications::list, super::applications::create, super::applications::tokens, super::applications::create_token, super::applications::revoke_token, super::applications::rotate_self,
        super::leaks::report, super::verify::verify),
    modifiers(&TokenSchemes),
)]
struct ApiDoc;

/// The three ways to present a token that OpenAPI can describe (the path segment it cannot).
struct TokenSchemes;

impl Modify for TokenSchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("tdk_ or tda_ token")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "x_auth_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-auth-token"))),
        );
        components.add_security_scheme(
            "query_token",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::new("token"))),
        );
    }
}

pub async fn document() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
