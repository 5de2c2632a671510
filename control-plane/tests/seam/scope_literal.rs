// Nor can it build one field by field.
use luach_control_plane::chain::Actor;
use luach_control_plane::store::TenantScope;
use luach_schemas::TenantId;

fn main() {
    let _ = TenantScope {
        tenant: TenantId::builtin(),
        actor: Actor::system(),
    };
}
