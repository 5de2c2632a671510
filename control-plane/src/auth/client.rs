//! Who is on the other end of a request, for rate limits and lockout.
//!
//! Behind a reverse proxy every request comes from the proxy, so the client's address is taken
//! from `Forwarded` (RFC 7239) or `X-Forwarded-For`, but **only** when the connection comes
//! from one of the configured trusted proxies, and only as far as the chain of trusted proxies
//! reaches: walking the list from the right (the hop nearest to us), trusted proxies are
//! skipped and the first other address is the client. Anyone else's forwarding headers are
//! ignored, so a client cannot pick its own rate-limit key.
//!
//! Limits are then keyed by [`ClientKey`]: an IPv4 address, or the /64 network of an IPv6
//! address (one subscriber usually holds a whole /64, so keying by address would give each
//! attacker billions of fresh keys).

use std::net::{IpAddr, Ipv6Addr};

use ipnet::IpNet;

/// The rate-limit key of a client: `ip:198.51.100.7` or `net:2001:db8:1:2::/64`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientKey(String);

impl ClientKey {
    pub fn of(ip: IpAddr) -> Self {
        let ip = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            },
            v4 => v4,
        };
        match ip {
            IpAddr::V4(v4) => Self(format!("ip:{v4}")),
            IpAddr::V6(v6) => {
                let s = v6.segments();
                let net = Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                Self(format!("net:{net}/64"))
            }
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses CIDRs (`10.0.0.0/8`) or plain addresses; the error names the bad entry.
    pub fn parse(list: &[String]) -> Result<Self, String> {
        list.iter()
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{s:?} is not an address or a CIDR network"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address: `peer`, or, when `peer` is a trusted proxy, the nearest
    /// untrusted hop named by `forwarded` (the `Forwarded` header's values) or else
    /// `x_forwarded_for` (the `X-Forwarded-For` header's values).
    pub fn client_ip(&self, peer: IpAddr, forwarded: &[&str], x_forwarded_for: &[&str]) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<IpAddr> = if forwarded.is_empty() {
            x_forwarded_for
                .iter()
                .flat_map(|v| v.split(','))
                .filter_map(|s| parse_hop(s.trim()))
                .collect()
        } else {
            forwarded
                .iter()
                .flat_map(|v| v.split(','))
                .filter_map(|element| {
                    element.split(';').find_map(|pair| {
                        let (name, value) = pair.trim().split_once('=')?;
                        name.trim()
                            .eq_ignore_ascii_case("for")
                            .then(|| parse_hop(value.trim()))?
                    })
                })
                .collect()
        };
        // From the nearest hop outwards, the first address that is not one of our proxies.
        hops.iter()
            .rev()
            .copied()
            .find(|ip| !self.trusts(*ip))
            .or_else(|| hops.first().copied())
            .unwrap_or(peer)
    }
}

/// One hop of a forwarding header: `198.51.100.7`, `"[2001:db8::1]:4711"`, `198.51.100.7:80`.
/// Obfuscated identifiers (`_hidden`, `unknown`) name no address.
fn parse_hop(text: &str) -> Option<IpAddr> {
    let t = text.trim_matches('"');
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = t.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    let (host, port) = t.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    fn proxies() -> TrustedProxies {
        TrustedProxies::parse(&["10.0.0.0/8".into(), "2001:db8:ffff::1".into()]).unwrap_or_default()
    }

    #[test]
    fn untrusted_peers_cannot_choose_their_address() {
        let p = proxies();
        assert_eq!(
            p.client_ip(ip("203.0.113.9"), &[], &["198.51.100.1"]),
            ip("203.0.113.9")
        );
        assert_eq!(
            p.client_ip(ip("203.0.113.9"), &["for=198.51.100.1"], &[]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn the_nearest_untrusted_hop_behind_trusted_proxies_is_the_client() {
        let p = proxies();
        // A client's own forged entry on the left is passed over: the proxy appended the truth.
        assert_eq!(
            p.client_ip(ip("10.0.0.2"), &[], &["1.2.3.4, 198.51.100.7, 10.0.0.3"]),
            ip("198.51.100.7")
        );
        assert_eq!(
            p.client_ip(
                ip("10.0.0.2"),
                &[r#"for=1.2.3.4, for="[2001:db8:1:2::9]:4711";proto=https"#],
                &["5.6.7.8"]
            ),
            ip("2001:db8:1:2::9")
        );
        assert_eq!(p.client_ip(ip("10.0.0.2"), &["for=_hidden"], &[]), ip("10.0.0.2"));
        assert_eq!(p.client_ip(ip("10.0.0.2"), &[], &["10.0.0.7"]), ip("10.0.0.7"));
        assert_eq!(p.client_ip(ip("10.0.0.2"), &[], &["garbage"]), ip("10.0.0.2"));
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        assert_eq!(
            ClientKey::of(ip("2001:db8:1:2:aaaa::1")),
            ClientKey::of(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(
            ClientKey::of(ip("2001:db8:1:2::1")),
            ClientKey::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(ClientKey::of(ip("::ffff:198.51.100.7")).as_str(), "ip:198.51.100.7");
        assert_eq!(ClientKey::of(ip("2001:db8:1:2::1")).as_str(), "net:2001:db8:1:2::/64");
    }

    #[test]
    fn bad_proxy_entries_are_named() {
        let err = TrustedProxies::parse(&["10.0.0.0/8".into(), "nope".into()]).err();
        assert!(err.is_some_and(|e| e.contains("nope")));
    }
}
