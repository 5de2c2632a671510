//! Admission of new connections before a byte of TLS is read: caps on connections in total,
//! per source address, and on handshakes in progress, so that idle or slow sockets cannot
//! starve the devices behind them.
//!
//! IPv6 sources are counted per /64 (one household or one synagogue network gets one
//! prefix); IPv4 sources per address. A refused socket is closed at once, before the
//! handshake, and costs the edge nothing more.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// The caps, all explicit (0 is not "unlimited": it refuses everything).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateLimits {
    /// Connections open at once, handshaking or connected.
    pub max_total: usize,
    /// Connections open at once from one source (an IPv4 address or an IPv6 /64).
    pub max_per_source: usize,
    /// TLS handshakes (and MQTT CONNECTs) in progress at once.
    pub max_handshakes: usize,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("{0} connections are open, the most the edge takes")]
    Total(usize),
    #[error("{1} connections are open from {0}, the most one source may hold")]
    PerSource(Source, usize),
    #[error("{0} handshakes are in progress, the most the edge runs at once")]
    Handshakes(usize),
}

/// Where connections are counted from: an IPv4 address, or the /64 of an IPv6 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Source(IpAddr);

impl Source {
    pub fn of(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Self(addr),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => {
                    let mut s = v6.segments();
                    s[4..].fill(0);
                    Self(IpAddr::V6(s.into()))
                }
            },
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}"),
            IpAddr::V6(a) => write!(f, "{a}/64"),
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    handshakes: usize,
    per_source: HashMap<Source, usize>,
}

/// The admission gate, shared by the accept loop and every connection task.
#[derive(Debug, Clone)]
pub struct Gate {
    limits: GateLimits,
    counts: Arc<Mutex<Counts>>,
    /// Told whenever a handshake place comes back.
    room: Arc<tokio::sync::Notify>,
}

/// An admitted connection: holds its places until dropped. It starts handshaking; call
/// [`Admission::connected`] once the device is through its handshake and CONNECT.
#[derive(Debug)]
pub struct Admission {
    gate: Gate,
    source: Source,
    handshaking: bool,
}

impl Gate {
    pub fn new(limits: GateLimits) -> Self {
        Self {
            limits,
            counts: Arc::default(),
            room: Arc::default(),
        }
    }

    /// Waits until a handshake place is free. The accept loop waits here rather than refusing
    /// a burst of devices: while every place is taken, new sockets queue in the kernel's
    /// backlog, and a place comes back within the handshake time-out at the latest.
    pub async fn handshake_room(&self) {
        loop {
            let notified = self.room.notified();
            if self.counts().handshakes < self.limits.max_handshakes {
                return;
            }
            notified.await;
        }
    }

    fn handshake_done(&self, c: &mut Counts) {
        c.handshakes -= 1;
        self.room.notify_one();
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a connection from `addr`, or says which cap it meets.
    pub fn admit(&self, addr: IpAddr) -> Result<Admission, Refused> {
        let source = Source::of(addr);
        let mut c = self.counts();
        if c.total >= self.limits.max_total {
            return Err(Refused::Total(c.total));
        }
        if c.handshakes >= self.limits.max_handshakes {
            return Err(Refused::Handshakes(c.handshakes));
        }
        let from_source = c.per_source.get(&source).copied().unwrap_or(0);
        if from_source >= self.limits.max_per_source {
            return Err(Refused::PerSource(source, from_source));
        }
        c.total += 1;
        c.handshakes += 1;
        c.per_source.insert(source, from_source + 1);
        Ok(Admission {
            gate: self.clone(),
            source,
            handshaking: true,
        })
    }

    /// Connections open now, and handshakes in progress.
    pub fn open(&self) -> (usize, usize) {
        let c = self.counts();
        (c.total, c.handshakes)
    }
}

impl Admission {
    /// The handshake and CONNECT are done: the handshake place goes back.
    pub fn connected(&mut self) {
        if std::mem::take(&mut self.handshaking) {
            let mut c = self.gate.counts();
            self.gate.handshake_done(&mut c);
        }
    }

    pub fn source(&self) -> Source {
        self.source
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut c = self.gate.counts();
        c.total -= 1;
        if self.handshaking {
            self.gate.handshake_done(&mut c);
        }
        if let Some(n) = c.per_source.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                c.per_source.remove(&self.source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn gate(total: usize, per_source: usize, handshakes: usize) -> Gate {
        Gate::new(GateLimits {
            max_total: total,
            max_per_source: per_source,
            max_handshakes: handshakes,
        })
    }

    #[test]
    fn handshakes_in_progress_are_capped_and_freed_when_connected() {
        let g = gate(10, 10, 2);
        let mut a = g.admit(ip("10.0.0.1")).unwrap_or_else(|e| panic!("{e}"));
        let _b = g.admit(ip("10.0.0.2")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(g.admit(ip("10.0.0.3")).err(), Some(Refused::Handshakes(2)));
        a.connected();
        a.connected();
        assert_eq!(g.open(), (2, 1));
        let _c = g.admit(ip("10.0.0.3")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(g.open(), (3, 2));
    }

    #[tokio::test]
    async fn the_accept_loop_waits_for_a_handshake_place() {
        let g = gate(10, 10, 1);
        let mut a = g.admit(ip("10.0.0.1")).unwrap_or_else(|e| panic!("{e}"));
        let waiting = tokio::spawn({
            let g = g.clone();
            async move { g.handshake_room().await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "no place is free yet");
        a.connected();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn sources_and_the_total_are_capped_and_places_come_back_on_drop() {
        let g = gate(3, 2, 10);
        let a = g.admit(ip("192.0.2.7")).unwrap_or_else(|e| panic!("{e}"));
        let _b = g.admit(ip("::ffff:192.0.2.7")).unwrap_or_else(|e| panic!("{e}"));
        let refused = g.admit(ip("192.0.2.7")).err();
        assert!(matches!(refused, Some(Refused::PerSource(_, 2))), "{refused:?}");
        let _c = g.admit(ip("2001:db8:1:2::1")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(g.admit(ip("198.51.100.1")).err(), Some(Refused::Total(3)));
        drop(a);
        let _d = g.admit(ip("192.0.2.7")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(g.open(), (3, 3));
    }

    #[test]
    fn ipv6_counts_per_64() {
        assert_eq!(
            Source::of(ip("2001:db8:1:2::1")),
            Source::of(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(Source::of(ip("2001:db8:1:2::1")), Source::of(ip("2001:db8:1:3::1")));
        assert_eq!(Source::of(ip("2001:db8:1:2::1")).to_string(), "2001:db8:1:2::/64");
        assert_eq!(Source::of(ip("::ffff:10.1.2.3")).to_string(), "10.1.2.3");
    }
}
