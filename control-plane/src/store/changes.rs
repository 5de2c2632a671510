//! The audit record of each kind of change, defined once for every backend, so a change is
//! recorded identically on SQLite and on MongoDB (see [`crate::audit`]).

use serde_json::{Value, json};

use super::{DevicePatch, DocKind, Tenant, User};
use crate::audit::{Change, INSTALLATION};

pub(super) fn device_created(tenant: &str, id: &str, name: &str, tags: &[String], group: Option<&str>) -> Change {
    let detail = json!({"name": name, "tags": tags, "group": group});
    Change::new(tenant, "device.create", format!("devices/{id}"), detail)
}

pub(super) fn device_updated(tenant: &str, id: &str, patch: &DevicePatch) -> Change {
    let detail = serde_json::to_value(patch).unwrap_or_default();
    Change::new(tenant, "device.update", format!("devices/{id}"), detail)
}

pub(super) fn device_deleted(tenant: &str, id: &str) -> Change {
    Change::new(tenant, "device.delete", format!("devices/{id}"), Value::Null)
}

/// A document created or replaced; the detail is its new body.
pub(super) fn doc_put(tenant: &str, kind: DocKind, id: &str, body: &Value) -> Change {
    let kind = kind.as_str();
    Change::new(tenant, format!("{kind}.put"), format!("{kind}/{id}"), body.clone())
}

pub(super) fn doc_deleted(tenant: &str, kind: DocKind, id: &str) -> Change {
    let kind = kind.as_str();
    Change::new(tenant, format!("{kind}.delete"), format!("{kind}/{id}"), Value::Null)
}

pub(super) fn tenant_created(tenant: &Tenant) -> Change {
    let detail = json!({"name": tenant.name});
    Change::new(INSTALLATION, "tenant.create", format!("tenants/{}", tenant.id), detail)
}

/// A user created (`user.create`) or saved (`user.update`): who, never credentials.
pub(super) fn user_saved(user: &User, action: &str) -> Change {
    let tenant = user.tenant_id.as_ref().map_or(INSTALLATION, |t| t.as_str());
    let detail = json!({
        "email": user.email, "role": user.role, "disabled": user.disabled,
        "totp_enabled": user.totp_enabled, "credentials_changed_at": user.credentials_changed_at,
    });
    Change::new(tenant, action, format!("users/{}", user.id), detail)
}

pub(super) fn user_deleted(tenant: &str, id: &str) -> Change {
    Change::new(tenant, "user.delete", format!("users/{id}"), Value::Null)
}
