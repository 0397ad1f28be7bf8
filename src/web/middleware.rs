//! Middleware every request passes: the access log (with secrets redacted), security
//! headers, and the first-run redirect to /setup.

use std::time::Instant;

use tracing::Instrument;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, Error};

use crate::accounts::setup::SetupState;
use crate::db::Db;
use crate::http::Site;

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; \
    base-uri 'none'; object-src 'none'";

/// Gives every request an id, in a span around everything logged while it is handled (so one
/// request's lines can be followed, and in the `X-Request-Id` response header), and logs it once
/// done.
pub async fn access_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    // Formatting costs something on every request; skip it when nobody listens.
    if !tracing::enabled!(target: "tokendesk::access", tracing::Level::INFO) {
        return next.call(req).await;
    }
    let started = Instant::now();
    let id = request_id();
    let span = tracing::info_span!("request", id = %id);
    let method = req.method().clone();
    let query = query_keys(req.query_string());
    let peer = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let mut res = next.call(req).instrument(span.clone()).await?;
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "(no route)".to_owned());
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut()
            .insert(header::HeaderName::from_static("x-request-id"), value);
    }
    span.in_scope(|| {
        tracing::info!(
            target: "tokendesk::access",
            %method,
            route,
            query,
            status = res.status().as_u16(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            peer,
        )
    });
    Ok(res)
}

/// A request id unique across instances and restarts: a random prefix taken once per process,
/// then a counter. It is no secret, so no request pays for the OS random source.
fn request_id() -> String {
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let prefix = PREFIX.get_or_init(|| crate::domain::Secret::generate(8).into_string());
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}-{n}")
}

/// The query keys tokendesk itself reads (pages, filters, the API, the gateway check).
const KNOWN_QUERY_KEYS: &[&str] = &[
    "action",
    "actor",
    "count",
    "filter",
    "from",
    "leaked",
    "never_used",
    "next",
    "owner",
    "page",
    "q",
    "revoked",
    "role",
    "scope",
    "sort",
    "startIndex",
    "status",
    "tab",
    "to",
    "token",
    "unused",
    "name",
];

/// What the access log says of a request's address: nothing a client typed in it. The route is
/// logged as its pattern (`/set-password/{secret}`, `/{token}/api/v1/me`) and the query as its
/// keys without values, each key one tokendesk reads or else `?`. Any piece of a secret, in any
/// position or encoding, so never reaches the log through the address.
pub fn query_keys(query: &str) -> String {
    query
        .split(['&', ';'])
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let key = pair.split_once('=').map_or(pair, |(key, _)| key);
            KNOWN_QUERY_KEYS
                .iter()
                .find(|known| **known == key)
                .copied()
                .unwrap_or("?")
        })
        .collect::<Vec<_>>()
        .join("&")
}

pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let hsts = req
        .app_data::<web::Data<Site>>()
        .is_some_and(|site| site.secure_cookies);
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    let mut set_default = |name: header::HeaderName, value: &'static str| {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    };
    set_default(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY);
    set_default(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set_default(header::X_FRAME_OPTIONS, "DENY");
    set_default(header::REFERRER_POLICY, "no-referrer");
    // Pages show personal data and, once, secrets: nothing dynamic is cached.
    set_default(header::CACHE_CONTROL, "no-store");
    if hsts {
        set_default(header::STRICT_TRANSPORT_SECURITY, "max-age=31536000");
    }
    Ok(res)
}

/// Paths that work before the first admin exists.
fn open_before_setup(path: &str) -> bool {
    path == "/setup"
        || path.starts_with("/static/")
        || path == "/healthz"
        || path == "/readyz"
        || crate::http::is_api(path)
}

pub async fn require_setup(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    if !open_before_setup(req.path()) {
        let db = req.app_data::<web::Data<Db>>().cloned();
        let setup = req.app_data::<web::Data<SetupState>>().cloned();
        if let (Some(db), Some(setup)) = (db, setup) {
            let complete = setup
                .is_complete(&db)
                .await
                .map_err(crate::web::error::AppError::from)?;
            if !complete {
                let res = crate::web::see_other("/setup");
                return Ok(req.into_response(res).map_into_right_body());
            }
        }
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_keeps_query_keys_and_nothing_typed_as_a_value() {
        let token = crate::tokens::TokenSecret::generate();
        let t = token.expose();
        let logged = query_keys(&format!(
            "page=2&token={t}&access_token={t}&tok%65n={t};x={t}&{t}&next=%2Fa%3Ftoken%3D{t}&{}=1&{}",
            &t[..24],
            &t[t.len() - 12..]
        ));
        assert!(!logged.contains(&t[4..12]), "{logged}");
        assert!(!logged.contains(&t[t.len() - 8..]), "{logged}");
        assert_eq!(logged, "page&token&?&?&?&?&next&?&?");
    }
}
