//! Leases: of several replicas sharing one store, one at a time runs each singleton task.
//!
//! A lease is a record in the store naming its holder and when it lapses (wall-clock time, so
//! replicas need clocks kept in step by NTP; a skew well below [`TERM`] is harmless). The task
//! asks [`Lease::held`] before each round of work; the answer comes from memory until a third
//! of the term has passed, then the lease is renewed in the store. A replica that dies stops
//! renewing, and another takes over within one term; one that stops cleanly gives its leases
//! up at once ([`Lease::release`]).
//!
//! Which tasks are singletons, and why the rest are not, is written in
//! `docs/architecture.md` ("Replicas").

use std::time::{Duration, Instant};

use chrono::Utc;

use crate::metrics::Metrics;
use crate::store::SystemStore;

/// How long a lease lasts without renewal: the longest a singleton task pauses after its
/// holder dies.
pub const TERM: Duration = Duration::from_secs(15);

/// This process's claim on one named lease.
#[derive(Debug)]
pub struct Lease {
    system: SystemStore,
    metrics: Metrics,
    name: &'static str,
    holder: String,
    term: Duration,
    /// Until when this process may act without asking the store again.
    valid_until: Option<Instant>,
    /// When the store was last asked.
    asked: Option<Instant>,
}

impl Lease {
    /// A claim on lease `name` for `holder` (this replica's id).
    pub fn new(system: SystemStore, metrics: Metrics, name: &'static str, holder: &str) -> Self {
        Self::with_term(system, metrics, name, holder, TERM)
    }

    /// [`Lease::new`] with a chosen term (tests).
    pub fn with_term(system: SystemStore, metrics: Metrics, name: &'static str, holder: &str, term: Duration) -> Self {
        Self {
            system,
            metrics,
            name,
            holder: holder.to_owned(),
            term,
            valid_until: None,
            asked: None,
        }
    }

    /// True when this replica holds the lease now, taking or renewing it in the store when a
    /// third of its term has passed since the store was last asked. A store error counts as
    /// not held (the term it had still protects the current holder).
    pub async fn held(&mut self) -> bool {
        let now = Instant::now();
        let fresh = self.asked.is_some_and(|at| now.duration_since(at) < self.term / 3);
        if !fresh {
            self.asked = Some(now);
            let wall = Utc::now();
            let until = wall + chrono::Duration::from_std(self.term).unwrap_or(chrono::Duration::seconds(15));
            match self.system.take_lease(self.name, &self.holder, wall, until).await {
                Ok(true) => {
                    if self.valid_until.is_none() {
                        tracing::info!(lease = self.name, holder = %self.holder, "lease taken");
                    }
                    // Act for less than the full term: the store's clock check is on the
                    // other replicas' side, so leave them a margin.
                    self.valid_until = Some(now + self.term * 2 / 3);
                }
                Ok(false) => {
                    if self.valid_until.take().is_some() {
                        tracing::warn!(lease = self.name, "lease lost to another replica");
                    }
                }
                Err(e) => {
                    tracing::warn!(lease = self.name, error = %e, "lease not renewed");
                }
            }
        }
        let held = self.valid_until.is_some_and(|until| now < until);
        if !held {
            self.valid_until = None;
        }
        self.metrics
            .leases_held
            .with_label_values(&[self.name])
            .set(i64::from(held));
        held
    }

    /// Gives the lease up (clean stop), so another replica takes over at once.
    pub async fn release(&mut self) {
        if self.valid_until.take().is_some() {
            if let Err(e) = self.system.release_lease(self.name, &self.holder).await {
                tracing::warn!(lease = self.name, error = %e, "lease not released; it lapses by itself");
            }
            self.metrics.leases_held.with_label_values(&[self.name]).set(0);
        }
    }
}

/// An id for this process among replicas: host name, process id and a random part (containers
/// of one image often share both of the others).
pub fn replica_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "host".into());
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}:{}:{}", std::process::id(), &random[..8])
}
