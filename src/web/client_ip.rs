//! The client's address: the TCP peer, unless the peer is a proxy we were told to trust.

use std::net::IpAddr;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::{ready, Ready};

use crate::startup::AppState;

#[derive(Clone, Debug)]
pub struct ClientIp(pub String);

impl ClientIp {
    pub fn of(req: &HttpRequest, trusted_proxies: &[IpAddr]) -> Self {
        let peer = req.peer_addr().map(|addr| addr.ip());
        let ip = match peer {
            Some(peer) if trusted_proxies.contains(&peer) => {
                forwarded_client(req, trusted_proxies).unwrap_or(peer)
            }
            Some(peer) => peer,
            None => return ClientIp("unknown".into()),
        };
        ClientIp(ip.to_string())
    }
}

/// The right-most X-Forwarded-For entry that is not itself a trusted proxy: entries further
/// left were written by the client and can say anything.
fn forwarded_client(req: &HttpRequest, trusted_proxies: &[IpAddr]) -> Option<IpAddr> {
    let header = req.headers().get("x-forwarded-for")?.to_str().ok()?;
    header
        .rsplit(',')
        .map_while(|entry| entry.trim().parse::<IpAddr>().ok())
        .find(|ip| !trusted_proxies.contains(ip))
}

impl FromRequest for ClientIp {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let trusted = req
            .app_data::<web::Data<AppState>>()
            .map(|state| state.trusted_proxies.as_slice())
            .unwrap_or_default();
        ready(Ok(ClientIp::of(req, trusted)))
    }
}
