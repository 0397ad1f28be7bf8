//! The client's address: the TCP peer, unless the peer is a proxy we were told to trust.

use std::net::IpAddr;

use actix_web::dev::Payload;
use actix_web::http::header::HeaderValue;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::{ready, Ready};

use crate::http::Site;

#[derive(Clone, Debug)]
pub struct ClientIp(pub String);

impl ClientIp {
    pub fn of(req: &HttpRequest, trusted_proxies: &[IpAddr]) -> Self {
        let peer = req.peer_addr().map(|addr| addr.ip());
        let ip = match peer {
            Some(peer) if trusted_proxies.contains(&peer) => {
                let lines = req.headers().get_all("x-forwarded-for");
                forwarded_client(lines, trusted_proxies).unwrap_or(peer)
            }
            Some(peer) => peer,
            None => return ClientIp("unknown".into()),
        };
        // An IPv4 client written as `::ffff:a.b.c.d` is that IPv4 client: one address in Last
        // used, the audit trail and usage.
        ClientIp(ip.to_canonical().to_string())
    }
}

/// The right-most X-Forwarded-For entry that is not itself a trusted proxy: entries further
/// left were written by the client and can say anything. Every header line counts, in order,
/// as one list: a proxy may add a line of its own rather than extend the client's (HAProxy's
/// `option forwardfor` does), and then the line the client sent comes first. An entry that is
/// not an address (or a line that is not text) ends the walk, since nothing left of it can be
/// told apart from what the client wrote.
fn forwarded_client<'a>(
    lines: impl DoubleEndedIterator<Item = &'a HeaderValue>,
    trusted_proxies: &[IpAddr],
) -> Option<IpAddr> {
    lines
        .rev()
        // A line that is not text reads as one entry that is not an address.
        .flat_map(|line| line.to_str().unwrap_or("?").rsplit(','))
        .map_while(|entry| entry.trim().parse::<IpAddr>().ok())
        .find(|ip| !trusted_proxies.contains(ip))
}

impl ClientIp {
    /// The client of `req`, by the proxies the registered [`Site`] trusts.
    pub fn of_request(req: &HttpRequest) -> Self {
        let trusted = req
            .app_data::<web::Data<Site>>()
            .map(|site| site.trusted_proxies.as_slice())
            .unwrap_or_default();
        ClientIp::of(req, trusted)
    }
}

impl FromRequest for ClientIp {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(ClientIp::of_request(req)))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    const PROXY: &str = "10.0.0.1";

    /// The address tokendesk takes for a request from `peer` with these X-Forwarded-For lines,
    /// when only `PROXY` is trusted.
    fn client_of(peer: &str, lines: &[&[u8]]) -> String {
        let mut request = TestRequest::default().peer_addr(format!("{peer}:4000").parse().unwrap());
        for line in lines {
            request =
                request.append_header(("x-forwarded-for", HeaderValue::from_bytes(line).unwrap()));
        }
        ClientIp::of(&request.to_http_request(), &[PROXY.parse().unwrap()]).0
    }

    #[test]
    fn a_trusted_proxys_own_line_wins_over_the_clients_line() {
        // HAProxy adds "X-Forwarded-For: <peer>" below whatever the client sent.
        assert_eq!(
            client_of(PROXY, &[b"6.6.6.6", b"203.0.113.7"]),
            "203.0.113.7"
        );
        assert_eq!(
            client_of(PROXY, &[b"6.6.6.6, 7.7.7.7", b"203.0.113.7, 10.0.0.1"]),
            "203.0.113.7",
            "trusted entries are skipped across lines"
        );
        assert_eq!(
            client_of(PROXY, &[b"6.6.6.6", b"10.0.0.1"]),
            "6.6.6.6",
            "past every trusted hop, the next entry is the client as far as anyone can tell"
        );
    }

    #[test]
    fn one_line_is_read_as_before() {
        assert_eq!(client_of(PROXY, &[b"6.6.6.6, 203.0.113.7"]), "203.0.113.7");
        assert_eq!(client_of(PROXY, &[b" 2001:db8::7 "]), "2001:db8::7");
        assert_eq!(client_of(PROXY, &[]), PROXY, "no header: the proxy itself");
    }

    #[test]
    fn garbage_stops_the_walk_at_the_proxys_address() {
        assert_eq!(client_of(PROXY, &[b"6.6.6.6, nonsense"]), PROXY);
        assert_eq!(client_of(PROXY, &[b"6.6.6.6", b"unknown"]), PROXY);
        assert_eq!(client_of(PROXY, &[b"6.6.6.6", b"\xff"]), PROXY);
        assert_eq!(
            client_of(PROXY, &[b"\xff", b"203.0.113.7"]),
            "203.0.113.7",
            "a client's unreadable line does not hide the proxy's"
        );
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        assert_eq!(
            client_of("203.0.113.9", &[b"6.6.6.6", b"10.0.0.1"]),
            "203.0.113.9"
        );
    }
}
