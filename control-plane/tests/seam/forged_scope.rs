// Handler code cannot mint a scope for a tenant of its choosing.
use luach_control_plane::chain::Actor;
use luach_control_plane::store::TenantScope;
use luach_schemas::TenantId;

fn main() {
    let tenant = TenantId::parse("victim").unwrap_or_else(|_| TenantId::builtin());
    let _ = TenantScope::mint(tenant, Actor::system());
}
