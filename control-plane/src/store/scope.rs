//! Tenant scope: the only key to tenant-owned data.

use luach_schemas::TenantId;

/// Proof that the caller may act inside one tenant.
///
/// Every repository method that touches tenant-owned records takes a `TenantScope`, and every
/// implementation filters by [`TenantScope::tenant`]. There is no unscoped variant of those
/// methods, so forgetting a tenant filter is not something a handler can do by accident.
///
/// Scopes are minted by the request pipeline from the authenticated caller (today: the single
/// built-in tenant) and by system tasks that resolved a device to its tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantScope {
    tenant: TenantId,
}

impl TenantScope {
    /// A scope for `tenant`. Only the authentication layer and system tasks that have resolved
    /// the tenant from a trusted source (a device's own broker identity) call this.
    pub fn trusted(tenant: TenantId) -> Self {
        Self { tenant }
    }

    /// The tenant this scope grants access to.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }
}
