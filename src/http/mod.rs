//! What every part that speaks HTTP shares, below both the pages (`web`) and the API (`api`):
//! who the client is, where the site is reached, and what counts as text in a request.

pub mod client_ip;
pub mod routes;
pub mod timing;

use std::net::IpAddr;

use actix_web::http::header;
use actix_web::HttpRequest;

pub use client_ip::ClientIp;

/// Declares a group of routes once: the function registers them with actix, and the constant
/// lists them as (method, path), so what is served and what the route walk tests
/// (`tests/api/route_walk.rs`) are one table. `route` is any method; `get` answers HEAD too.
/// Another method on a listed path gets `other_methods`' 405 with an `Allow` header. `timed`:
/// the request-time metrics are on (see [`routes::PathRoutes::register`]).
#[macro_export]
macro_rules! route_table {
    ($(#[$meta:meta])* $vis:vis fn $register:ident, $list:ident, other_methods => $refuse:path;
     $( $method:ident $path:expr => $handler:expr ),* $(,)?) => {
        $(#[$meta])*
        $vis fn $register(cfg: &mut actix_web::web::ServiceConfig, timed: bool) {
            let mut paths = $crate::http::routes::PathRoutes::new($list);
            $( paths.add($path, $crate::http::routes::method_route(stringify!($method)).to($handler)); )*
            paths.register(cfg, $refuse, timed);
        }

        /// Every route of this group, as (method, path template).
        pub const $list: &[(&str, &str)] = &[ $( (stringify!($method), $path) ),* ];
    };
}

/// How the site is reached: registered once as `web::Data<Site>`.
#[derive(Clone, Debug, Default)]
pub struct Site {
    /// Proxies whose forwarded headers are believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Served over HTTPS: Secure cookies and HSTS.
    pub secure_cookies: bool,
    /// The configured public address, without a trailing slash.
    pub public_url: Option<String>,
}

/// The address people reach tokendesk at, for links shown on pages: the configured public URL,
/// else this request's Host. A client can send any `X-Forwarded-Host`, so forwarded headers are
/// believed only from a trusted proxy.
pub fn public_base_url(req: &HttpRequest, site: &Site) -> String {
    if let Some(url) = &site.public_url {
        return url.clone();
    }
    let from_trusted_proxy = req
        .peer_addr()
        .is_some_and(|peer| site.trusted_proxies.contains(&peer.ip()));
    if from_trusted_proxy {
        let info = req.connection_info();
        return format!("{}://{}", info.scheme(), info.host());
    }
    let scheme = if site.secure_cookies { "https" } else { "http" };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .unwrap_or_else(|| req.app_config().host());
    format!("{scheme}://{host}")
}

/// Whether every name and value of a urlencoded form body or query string is text once
/// decoded: UTF-8 without NUL. The form parsers would quietly turn other bytes into U+FFFD, and
/// PostgreSQL refuses NUL in text; refusing up front is clearer than either.
pub fn decodes_to_text(urlencoded: &[u8]) -> bool {
    urlencoded.split(|&b| b == b'&' || b == b'=').all(|part| {
        let decoded: Vec<u8> = percent_encoding::percent_decode(part).collect();
        !decoded.contains(&0) && std::str::from_utf8(&decoded).is_ok()
    })
}

/// The JSON API, the gateway check and provisioning: /api/v1/..., /{token}/api/v1/...,
/// /auth/verify, /scim/v2/...
pub fn is_api(path: &str) -> bool {
    path.starts_with("/auth/")
        || path.starts_with("/scim/")
        || path.split('/').take(3).any(|segment| segment == "api")
}

#[cfg(test)]
mod tests {
    use super::*;

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
