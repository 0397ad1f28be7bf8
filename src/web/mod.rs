//! The portal's pages: routes, shared helpers, and one module per page.

pub mod access_tokens;
pub mod account;
pub mod admin;
pub mod applications;
pub mod assets;
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
pub mod single_sign_on;

use actix_web::http::header;
use actix_web::{web, HttpResponse};

/// Where a signed-in person lands.
pub const HOME: &str = "/developer/access-tokens";

/// Every page; `timed`: the request-time metrics are on.
pub fn routes(cfg: &mut web::ServiceConfig, timed: bool) {
    own_routes(cfg, timed);
    access_tokens::routes(cfg, timed);
    access_tokens::application_routes(cfg, timed);
    admin::routes(cfg, timed);
}

crate::route_table! {
    fn own_routes, ROUTES, other_methods => error::method_not_allowed;
    get "/healthz" => health::healthz,
    get "/developer/applications" => applications::list,
    get "/readyz" => health::readyz,
    get "/static/{name}" => assets::serve,
    get "/" => || async { see_other(HOME) },
    get "/setup" => setup::show,
    post "/setup" => setup::submit,
    get "/sign-in" => sign_in::show,
    post "/sign-in" => sign_in::submit,
    get "/sign-in/sso" => single_sign_on::start,
    get "/sign-in/sso/callback" => single_sign_on::callback,
    post "/sign-out" => sign_in::sign_out,
    get "/account" => account::show,
    post "/account/name" => account::rename,
    post "/account/password" => account::change_password,
    get "/set-password/{secret}" => set_password::show,
    post "/set-password/{secret}" => set_password::submit,
}

/// 303: after a POST, the browser follows with a GET (post/redirect/get).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// A `next=` target is followed only when it stays on this site: a path, not `//host` or
/// `/\host`, which browsers treat as another origin. It must also fit a `Location` header
/// (visible ASCII: an address the site made is percent-encoded already) and a session cookie.
pub fn safe_next(next: &str) -> Option<&str> {
    const NEXT_MAX: usize = 512;
    let next = next.trim();
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && next.len() <= NEXT_MAX
        && next.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
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
            // Not a header value (the redirect would fail), or longer than a cookie holds.
            "/café",
            "/a b",
            format!("/{}", "x".repeat(600)).as_str(),
        ] {
            assert_eq!(safe_next(bad), None, "{bad:?} was allowed");
        }
    }

    #[test]
    fn url_encode_keeps_paths_readable() {
        assert_eq!(url_encode("/a b?x=1&y"), "/a%20b%3Fx%3D1%26y");
    }
}
