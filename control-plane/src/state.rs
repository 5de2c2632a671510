//! Shared application state handed to every handler.
//!
//! It holds the scoped [`Store`] (tenant data through a scope, nothing else) and the services;
//! the cross-tenant [`crate::store::SystemStore`] is not part of it. The services that need it
//! (authentication, enrolment) keep it in private fields.

use std::sync::Arc;

use luach_broker::{EmbeddedBroker, ExternalBroker};

use crate::auth::{AuthService, TrustedProxies};
use crate::commands::Commands;
use crate::config::Config;
use crate::enrolment::EnrolmentService;
use crate::ingest::IngestHandle;
use crate::metrics::Metrics;
use crate::screenshots::Screenshots;
use crate::store::Store;

/// Everything handlers need; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub metrics: Metrics,
    pub commands: Commands,
    /// The job engine's handle: wake it, wait for executions.
    pub jobs: crate::jobs::Jobs,
    pub ingest: IngestHandle,
    pub broker: Arc<Mqtt>,
    pub auth: AuthService,
    pub enrolment: EnrolmentService,
    /// Marks tenants whose screens' bundles may have changed.
    pub bundles: crate::bundle::BundleNotifier,
    /// Whose forwarding headers name the client.
    pub proxies: Arc<TrustedProxies>,
    /// Screenshots uploaded by screens.
    pub screenshots: Screenshots,
    /// Signed agent releases.
    pub releases: crate::releases::Releases,
    /// Live events to the tenants' Socket.IO rooms.
    pub live: crate::live::LiveSink,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store.backend())
            .finish_non_exhaustive()
    }
}

/// The broker devices connect to: embedded in this process, or external with this process as
/// its client (`mqtt.mode`).
#[derive(Debug)]
pub enum Mqtt {
    Embedded(EmbeddedBroker),
    External(ExternalBroker),
}

impl Mqtt {
    /// The embedded broker's plain (development) listener, if it runs.
    pub fn plain_addr(&self) -> Option<std::net::SocketAddr> {
        match self {
            Self::Embedded(b) => b.plain_addr(),
            Self::External(_) => None,
        }
    }

    /// The embedded broker's mutual-TLS listener, if it runs.
    pub fn tls_addr(&self) -> Option<std::net::SocketAddr> {
        match self {
            Self::Embedded(b) => b.tls_addr(),
            Self::External(_) => None,
        }
    }

    /// The embedded broker's address devices connect to (plain listener first).
    pub fn listen_addr(&self) -> Option<std::net::SocketAddr> {
        match self {
            Self::Embedded(b) => Some(b.listen_addr()),
            Self::External(_) => None,
        }
    }

    /// The embedded connection edge, if it runs.
    pub fn edge(&self) -> Option<&luach_broker::Edge> {
        match self {
            Self::Embedded(b) => b.edge(),
            Self::External(_) => None,
        }
    }

    /// The external broker connection, in external mode.
    pub fn external(&self) -> Option<&ExternalBroker> {
        match self {
            Self::Embedded(_) => None,
            Self::External(b) => Some(b),
        }
    }

    /// Embedded: the listener threads run. External: connected to the broker now.
    pub fn running(&self) -> bool {
        match self {
            Self::Embedded(b) => b.listener_running(),
            Self::External(b) => b.connected(),
        }
    }

    /// Lets devices go (embedded) or closes the connection (external).
    pub fn stop(&self) {
        match self {
            Self::Embedded(b) => b.stop(),
            Self::External(b) => b.stop(),
        }
    }
}
