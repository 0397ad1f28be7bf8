//! The portal's pages: routes, shared helpers, and one module per page.

pub mod access_tokens;
pub mod admin;
pub mod assets;
pub mod client_ip;
pub mod csrf;
pub mod csv;
pub mod error;
pub mod format;
pub mod health;
pub mod layout;
pub mod middleware;
pub mod session;
pub mod set_password;
pub mod setup;
pub mod sign_in;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::startup::AppState;

/// Where a signed-in person lands.
pub const HOME: &str = "/developer/access-tokens";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/static/{name}", web::get().to(assets::serve))
        .route("/", web::get().to(|| async { see_other(HOME) }))
        .route("/setup", web::get().to(setup::show))
        .route("/setup", web::post().to(setup::submit))
        .route("/sign-in", web::get().to(sign_in::show))
        .route("/sign-in", web::post().to(sign_in::submit))
        .route("/sign-out", web::post().to(sign_in::sign_out))
        .route("/set-password/{secret}", web::get().to(set_password::show))
        .route(
            "/set-password/{secret}",
            web::post().to(set_password::submit),
        )
        .configure(access_tokens::routes)
        .configure(admin::routes)
        .configure(crate::api::routes);
}

/// The address people reach tokendesk at, for links shown on pages: the configured public URL,
/// else this request's Host. A client can send any `X-Forwarded-Host`, so forwarded headers are
/// believed only from a trusted proxy.
pub fn public_base_url(req: &HttpRequest, state: &AppState) -> String {
    if let Some(url) = &state.public_url {
        return url.clone();
    }
    let from_trusted_proxy = req
        .peer_addr()
        .is_some_and(|peer| state.trusted_proxies.contains(&peer.ip()));
    if from_trusted_proxy {
        let info = req.connection_info();
        return format!("{}://{}", info.scheme(), info.host());
    }
    let scheme = if state.secure_cookies {
        "https"
    } else {
        "http"
    };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .unwrap_or_else(|| req.app_config().host());
    format!("{scheme}://{host}")
}

/// 303: after a POST, the browser follows with a GET (post/redirect/get).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// A `next=` target is followed only when it stays on this site: a path, not `//host` or
/// `/\host`, which browsers treat as another origin.
pub fn safe_next(next: &str) -> Option<&str> {
    let next = next.trim();
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control() || c == '\\');
    local.then_some(next)
}

/// A form's fields as a query string for links, without the empty ones.
pub fn non_empty_query(form: &impl serde::Serialize) -> String {
    serde_html_form::to_string(form)
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.ends_with('='))
        .collect::<Vec<_>>()
        .join("&")
}

pub fn url_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Whether every name and value of a urlencoded form body or query string is text once
/// decoded: UTF-8 without NUL. The form parsers would quietly turn other bytes into U+FFFD, and
/// PostgreSQL refuses NUL in text; refusing up front is clearer than either.
pub(crate) fn decodes_to_text(urlencoded: &[u8]) -> bool {
    urlencoded.split(|&b| b == b'&' || b == b'=').all(|part| {
        let mut decoded = Vec::with_capacity(part.len());
        let mut i = 0;
        while i < part.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            match part[i] {
                b'%' if i + 2 < part.len() => match (hex(part[i + 1]), hex(part[i + 2])) {
                    (Some(hi), Some(lo)) => {
                        decoded.push((hi * 16 + lo) as u8);
                        i += 3;
                        continue;
                    }
                    _ => decoded.push(b'%'),
                },
                byte => decoded.push(byte),
            }
            i += 1;
        }
        !decoded.contains(&0) && std::str::from_utf8(&decoded).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_only_allows_local_paths() {
        assert_eq!(
            safe_next("/developer/access-tokens?x=1"),
            Some("/developer/access-tokens?x=1")
        );
        for bad in [
            "",
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "evil",
            "/a\\b",
        ] {
            assert_eq!(safe_next(bad), None, "{bad:?} was allowed");
        }
    }

    #[test]
    fn url_encode_keeps_paths_readable() {
        assert_eq!(url_encode("/a b?x=1&y"), "/a%20b%3Fx%3D1%26y");
    }

    #[test]
    fn refuses_bodies_that_decode_to_invalid_utf8_or_nul() {
        assert!(decodes_to_text(b"name=caf%C3%A9&scopes=tag%3Aread&x=100%"));
        assert!(decodes_to_text(b"a=%zz&b=%4"));
        assert!(!decodes_to_text(b"name=%FF%FE"));
        assert!(!decodes_to_text(b"name=%C3"));
        assert!(!decodes_to_text(&[b'n', b'=', 0xff]));
        assert!(!decodes_to_text(b"name=a%00b"));
    }
}
