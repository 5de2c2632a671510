//! Shared application state handed to every handler.
//!
//! It holds the scoped [`Store`] (tenant data through a scope, nothing else) and the services;
//! the cross-tenant [`crate::store::SystemStore`] is not part of it. The services that need it
//! (authentication, enrolment) keep it in private fields.

use std::sync::Arc;

use luach_broker::EmbeddedBroker;

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
    pub broker: Arc<EmbeddedBroker>,
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
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store.backend())
            .finish_non_exhaustive()
    }
}
