//! Shared application state handed to every handler.

use std::sync::Arc;

use luach_broker::EmbeddedBroker;

use crate::auth::AuthService;
use crate::commands::Commands;
use crate::config::Config;
use crate::enrolment::EnrolmentService;
use crate::ingest::IngestHandle;
use crate::metrics::Metrics;
use crate::store::DynStore;

/// Everything handlers need; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: DynStore,
    pub metrics: Metrics,
    pub commands: Commands,
    pub ingest: IngestHandle,
    pub broker: Arc<EmbeddedBroker>,
    pub auth: AuthService,
    pub enrolment: EnrolmentService,
    /// Marks tenants whose screens' bundles may have changed.
    pub bundles: crate::bundle::BundleNotifier,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store.backend())
            .finish_non_exhaustive()
    }
}
