//! Where webhooks may not go: a tenant names the URL, so without a guard any tenant could make
//! the server call its own loopback services, the private network behind it, or a cloud's
//! metadata endpoint (server-side request forgery).
//!
//! The check is on the addresses actually connected to: every name is resolved by
//! [`GuardedResolver`] (reqwest's resolver hook), which refuses the whole name when any of its
//! addresses is internal, so a name cannot smuggle an internal address in beside a public one,
//! and a name that later resolves elsewhere (DNS rebinding) is checked again on that connect.
//! URLs naming an address directly never reach a resolver and are checked by
//! [`Guard::check_url`]. Redirects are followed by the sender itself, each hop checked the same
//! way.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why an address is refused, e.g. "127.0.0.1 is a loopback address".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// The installation's rule for webhook destinations.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    /// Anything goes (a closed network).
    pub allow_private: bool,
    /// Internal networks allowed nonetheless.
    pub allow: Vec<IpNet>,
}

/// What kind of internal address `ip` is; `None` for a public one.
pub fn internal(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return internal_v4(v4);
            }
            let seg = v6.segments();
            // NAT64 (64:ff9b::/96) reaches the IPv4 address in its last 32 bits.
            if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let v4 = Ipv4Addr::from((u32::from(seg[6]) << 16) | u32::from(seg[7]));
                return internal_v4(v4);
            }
            if v6.is_loopback() {
                Some("a loopback address")
            } else if v6.is_unspecified() {
                Some("the unspecified address")
            } else if v6.is_multicast() {
                Some("a multicast address")
            } else if seg[0] & 0xffc0 == 0xfe80 || seg[0] & 0xffc0 == 0xfec0 {
                Some("a link-local address")
            } else if seg[0] & 0xfe00 == 0xfc00 {
                Some("a private (unique local) address")
            } else if seg[0] == 0x2001 && seg[1] == 0x0db8 {
                Some("a documentation address")
            } else if v6 == Ipv6Addr::UNSPECIFIED || seg[..6] == [0, 0, 0, 0, 0, 0] {
                // IPv4-compatible (deprecated) addresses.
                Some("an IPv4-compatible address")
            } else {
                None
            }
        }
    }
}

fn internal_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_private() {
        Some("a private address")
    } else if ip.is_link_local() {
        Some("a link-local address (where cloud metadata services live)")
    } else if o[0] == 0 {
        Some("a this-network address")
    } else if o[0] == 100 && o[1] & 0xc0 == 64 {
        Some("a shared (carrier-grade NAT) address")
    } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
        Some("an IETF protocol address")
    } else if ip.is_documentation() {
        Some("a documentation address")
    } else if o[0] == 198 && o[1] & 0xfe == 18 {
        Some("a benchmarking address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if o[0] >= 240 {
        Some("a reserved or broadcast address")
    } else {
        None
    }
}

impl Guard {
    pub fn from_config(c: &crate::config::WebhookConfig) -> Self {
        Self {
            allow_private: c.allow_private,
            allow: c.allow_networks.iter().filter_map(|n| n.parse().ok()).collect(),
        }
    }

    /// Whether connecting to `ip` is allowed.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refused> {
        match internal(ip) {
            Some(what) if !self.allow_private && !self.allow.iter().any(|n| n.contains(&ip)) => {
                Err(Refused(format!("{ip} is {what}")))
            }
            _ => Ok(()),
        }
    }

    /// Checks a URL whose host is an address (names are checked when resolved).
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), Refused> {
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.check(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.check(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => Ok(()),
            None => Err(Refused("the URL names no host".to_owned())),
        }
    }
}

/// reqwest's resolver, refusing names with an internal address.
#[derive(Debug, Clone)]
pub struct GuardedResolver(pub Arc<Guard>);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = Arc::clone(&self.0);
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            for a in &addrs {
                guard
                    .check(a.ip())
                    .map_err(|r| Refused(format!("{host} resolves to {r}")))?;
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// The refusal somewhere in `e`'s chain of causes, if the guard refused.
pub fn refusal(e: &(dyn std::error::Error + 'static)) -> Option<Refused> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(r) = c.downcast_ref::<Refused>() {
            return Some(r.clone());
        }
        cause = c.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn internal_addresses_are_refused_and_public_ones_pass() {
        let guard = Guard::default();
        for bad in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "192.0.0.170",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "::127.0.0.1",
        ] {
            assert!(guard.check(ip(bad)).is_err(), "{bad} must be refused");
        }
        for good in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "64:ff9b::5db8:d822"] {
            assert_eq!(guard.check(ip(good)), Ok(()), "{good}");
        }
        assert_eq!(
            guard.check(ip("169.254.169.254")).map_err(|r| r.0),
            Err("169.254.169.254 is a link-local address (where cloud metadata services live)".to_owned())
        );
    }

    #[test]
    fn allowed_networks_open_only_themselves() {
        let guard = Guard {
            allow_private: false,
            allow: vec!["127.0.0.2/32".parse().unwrap_or_else(|e| panic!("{e}"))],
        };
        assert_eq!(guard.check(ip("127.0.0.2")), Ok(()));
        assert!(guard.check(ip("127.0.0.1")).is_err());
        let open = Guard {
            allow_private: true,
            allow: Vec::new(),
        };
        assert_eq!(open.check(ip("10.0.0.1")), Ok(()));
    }

    #[test]
    fn addresses_in_urls_are_checked_names_are_left_to_the_resolver() {
        let guard = Guard::default();
        let url = |s: &str| reqwest::Url::parse(s).unwrap_or_else(|e| panic!("{e}"));
        assert!(guard.check_url(&url("http://10.0.0.1/hook")).is_err());
        assert!(guard.check_url(&url("http://[::1]:8080/hook")).is_err());
        assert_eq!(guard.check_url(&url("https://hooks.example.org/x")), Ok(()));
    }
}
