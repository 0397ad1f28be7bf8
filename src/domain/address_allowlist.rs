//! The addresses a token may be used from: single addresses and CIDR ranges, IPv4 and IPv6.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

/// At most this many entries: a list longer than that is a network policy, not a token's.
pub const MAX_ENTRIES: usize = 20;

/// The widest range an entry may be: a /8 of IPv4, a /16 of IPv6.
pub const WIDEST_IPV4: u8 = 8;
pub const WIDEST_IPV6: u8 = 16;

/// A token's allowlist, never empty (no allowlist at all is `None` where one is held).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressAllowlist(Arc<[IpNet]>);

impl AddressAllowlist {
    /// Parses what a person typed: entries separated by commas, spaces or new lines. `Ok(None)`
    /// for nothing at all. Every bad entry is named in one message.
    pub fn parse(raw: &str) -> Result<Option<Self>, String> {
        let entries: Vec<&str> = raw
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|entry| !entry.is_empty())
            .collect();
        if entries.is_empty() {
            return Ok(None);
        }
        if entries.len() > MAX_ENTRIES {
            return Err(format!(
                "List at most {MAX_ENTRIES} addresses or ranges ({} given); a wider range can \
                 cover several.",
                entries.len()
            ));
        }
        let mut nets: Vec<IpNet> = Vec::with_capacity(entries.len());
        let mut problems = Vec::new();
        for entry in entries {
            match parse_entry(entry) {
                Ok(net) if !nets.contains(&net) => nets.push(net),
                Ok(_) => {}
                Err(problem) => problems.push(problem),
            }
        }
        if !problems.is_empty() {
            return Err(problems.join(" "));
        }
        Ok(Some(Self(nets.into())))
    }

    /// As stored by [`AddressAllowlist::to_stored`]; a stored value that no longer parses
    /// allows nothing rather than everything.
    pub fn from_stored(stored: &str) -> Self {
        match Self::parse(stored) {
            Ok(Some(list)) => list,
            _ => Self(Arc::from(Vec::new())),
        }
    }

    pub fn to_stored(&self) -> String {
        self.to_string()
    }

    pub fn entries(&self) -> impl Iterator<Item = String> + '_ {
        self.0.iter().map(|net| display(*net))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether every address this list allows, `outer` allows too.
    pub fn within(&self, outer: &AddressAllowlist) -> bool {
        self.0
            .iter()
            .all(|net| outer.0.iter().any(|wider| wider.contains(net)))
    }

    /// Whether a request from `client_ip` (as the server determined it) may use the token.
    /// An IPv4 address written as IPv6 (`::ffff:192.0.2.1`) is the IPv4 address.
    pub fn allows(&self, client_ip: &str) -> bool {
        let Ok(ip) = client_ip.parse::<IpAddr>() else {
            return false;
        };
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }
}

impl fmt::Display for AddressAllowlist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries: Vec<String> = self.entries().collect();
        f.write_str(&entries.join(", "))
    }
}

/// A host (`/32`, `/128`) shows as its address.
fn display(net: IpNet) -> String {
    if net.prefix_len() == net.max_prefix_len() {
        net.addr().to_string()
    } else {
        net.to_string()
    }
}

fn parse_entry(entry: &str) -> Result<IpNet, String> {
    let shown: String = entry.chars().take(60).collect();
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Ok(IpNet::from(ip.to_canonical()));
    }
    let net: IpNet = entry.parse().map_err(|_| {
        format!("“{shown}” is not an IPv4 or IPv6 address or CIDR range (such as 203.0.113.0/24).")
    })?;
    let net = match net {
        // A range of IPv4 addresses written as IPv6 is the IPv4 range.
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => IpNet::new(IpAddr::V4(v4), v6.prefix_len() - 96)
                .map_err(|_| format!("“{shown}” is not a valid range."))?,
            None => net,
        },
        _ => net,
    };
    if net.trunc() != net {
        return Err(format!(
            "“{shown}” has bits set beyond its prefix: did you mean {}?",
            net.trunc()
        ));
    }
    if net.prefix_len() == 0 {
        return Err(format!(
            "“{shown}” allows every address; leave the list empty instead."
        ));
    }
    // A few wide ranges could otherwise add up to every address and still count as a list.
    let widest = match net {
        IpNet::V4(_) => WIDEST_IPV4,
        IpNet::V6(_) => WIDEST_IPV6,
    };
    if net.prefix_len() < widest {
        return Err(format!(
            "“{shown}” is wider than a /{widest}: list the networks the token is used from."
        ));
    }
    Ok(net)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(raw: &str) -> AddressAllowlist {
        AddressAllowlist::parse(raw).unwrap().unwrap()
    }

    #[test]
    fn addresses_and_ranges_of_both_families_allow_what_they_cover() {
        let allowed = list("203.0.113.0/24, 2001:db8::/32\n198.51.100.7");
        assert!(allowed.allows("203.0.113.0"));
        assert!(allowed.allows("203.0.113.255"));
        assert!(!allowed.allows("203.0.114.0"));
        assert!(allowed.allows("198.51.100.7"));
        assert!(!allowed.allows("198.51.100.8"));
        assert!(allowed.allows("2001:db8:ffff::1"));
        assert!(!allowed.allows("2001:db9::1"));
        assert!(allowed.allows("::ffff:203.0.113.9"), "IPv4 written as IPv6");
        assert!(!allowed.allows("not an address"));
        assert_eq!(
            allowed.to_stored(),
            "203.0.113.0/24, 2001:db8::/32, 198.51.100.7"
        );
        assert_eq!(AddressAllowlist::from_stored(&allowed.to_stored()), allowed);
    }

    #[test]
    fn ipv4_written_as_ipv6_is_stored_as_ipv4() {
        assert_eq!(list("::ffff:192.0.2.1").to_stored(), "192.0.2.1");
        assert_eq!(list("::ffff:192.0.2.0/120").to_stored(), "192.0.2.0/24");
        assert!(list("::ffff:192.0.2.0/120").allows("192.0.2.200"));
    }

    #[test]
    fn bad_entries_are_all_named() {
        let error = AddressAllowlist::parse("10.0.0.1/8, nope, 10.0.0.0/33").unwrap_err();
        assert!(error.contains("did you mean 10.0.0.0/8"), "{error}");
        assert!(error.contains("“nope”"), "{error}");
        assert!(error.contains("“10.0.0.0/33”"), "{error}");
        assert!(AddressAllowlist::parse("0.0.0.0/0").is_err());
        assert!(AddressAllowlist::parse("::/0").is_err());
        let many: Vec<String> = (0..21).map(|i| format!("10.0.0.{i}")).collect();
        assert!(AddressAllowlist::parse(&many.join(","))
            .unwrap_err()
            .contains("at most 20"));
        assert_eq!(AddressAllowlist::parse(" \n, ").unwrap(), None);
    }

    #[test]
    fn ranges_wider_than_a_slash_8_or_16_are_refused_so_none_add_up_to_everything() {
        for wide in [
            "0.0.0.0/1",
            "128.0.0.0/1",
            "10.0.0.0/7",
            "::/1",
            "2000::/15",
        ] {
            let error = AddressAllowlist::parse(wide).unwrap_err();
            assert!(error.contains("is wider than"), "{wide}: {error}");
        }
        assert!(AddressAllowlist::parse("10.0.0.0/8, 2001::/16").is_ok());
    }

    #[test]
    fn a_list_is_within_another_when_every_range_of_it_is_covered() {
        let outer = list("10.0.0.0/8, 2001:db8::/32");
        assert!(list("10.1.0.0/16, 10.2.3.4").within(&outer));
        assert!(list("2001:db8:1::/48").within(&outer));
        assert!(!list("10.0.0.0/8, 192.0.2.1").within(&outer));
        assert!(!list("11.0.0.0/8").within(&outer));
        assert!(outer.within(&outer));
    }

    #[test]
    fn a_stored_list_that_no_longer_parses_allows_nothing() {
        assert!(!AddressAllowlist::from_stored("garbage").allows("127.0.0.1"));
    }
}
