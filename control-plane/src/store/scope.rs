//! Scopes: the only keys to tenant-owned and installation-wide data.
//!
//! A [`TenantScope`] names one tenant and the [`Actor`] acting inside it. Its fields are
//! private and it has no public constructor: scopes are minted only by the
//! [`SystemStore`](super::SystemStore) (see [`SystemStore::scope`](super::SystemStore::scope)),
//! which the authentication service holds for signed-in callers, the enrolment service for
//! screens, the ingest pipeline for device messages and the admin CLI for its operator. HTTP
//! handlers never see the system store, so the only scope a handler holds is the one taken
//! from its caller. The author of every audited change travels inside the scope, so work
//! moved to another task keeps its author.

use luach_schemas::TenantId;

use crate::chain::Actor;

/// Proof that `actor` may act inside one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantScope {
    tenant: TenantId,
    actor: Actor,
}

impl TenantScope {
    /// Minted only by the system store.
    pub(super) fn mint(tenant: TenantId, actor: Actor) -> Self {
        Self { tenant, actor }
    }

    /// The tenant this scope grants access to.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// Who acts: the author of the changes made with this scope.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }
}

/// Proof that `actor` may administer the installation (tenants, quotas, super admins): a super
/// admin who is not acting inside a tenant, the admin CLI, or the server itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallationScope {
    actor: Actor,
}

impl InstallationScope {
    /// Minted only by the system store.
    pub(super) fn mint(actor: Actor) -> Self {
        Self { actor }
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }
}
