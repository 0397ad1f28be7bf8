//! `ApiAuth`: the extractor every token-authenticated route takes.

use std::net::IpAddr;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;

use crate::api::error::ApiError;
use crate::http::ClientIp;
use crate::tokens::{extract, Authenticated, Authenticator, Client, TokenSources};

pub struct ApiAuth(pub Authenticated);

/// Authenticates `req`, looking for the token in its headers, its own target, and the
/// `extra_targets` (a gateway's original URI).
pub async fn authenticate_request(
    req: &HttpRequest,
    extra_targets: &[&str],
) -> Result<Authenticated, ApiError> {
    let authenticator = req
        .app_data::<web::Data<Authenticator>>()
        .ok_or(ApiError::Internal)?
        .clone();
    let own_target = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let mut targets = vec![own_target];
    targets.extend_from_slice(extra_targets);
    let presented = extract(&TokenSources {
        headers: req.headers(),
        targets,
    });
    let client_ip = ClientIp::of_request(req);
    let client_addr = client_ip.0.parse::<IpAddr>().ok();
    let failures = &authenticator.failures;
    if let Some(wait) =
        client_addr.and_then(|ip| failures.blocked_for(ip, authenticator.clock.instant()))
    {
        return Err(ApiError::TooManyRequests {
            retry_after_secs: wait.as_secs() + 1,
        });
    }
    let outcome = match presented {
        Ok(presented) => {
            let user_agent = req
                .headers()
                .get(actix_web::http::header::USER_AGENT)
                .map(|value| String::from_utf8_lossy(value.as_bytes()))
                .unwrap_or_default();
            let client = Client {
                ip: &client_ip.0,
                user_agent: &user_agent,
            };
            authenticator.authenticate(presented, &client).await
        }
        Err(conflicting) => Err(conflicting),
    };
    authenticator.counts.count(&outcome);
    if let (Err(failure), Some(ip)) = (&outcome, client_addr) {
        if failure.is_bad_token() {
            failures.record_failure(ip, authenticator.clock.instant());
        }
    }
    Ok(outcome?)
}

impl FromRequest for ApiAuth {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate_request(&req, &[]).await.map(ApiAuth) })
    }
}
