//! What the audit record of each kind of change says, defined once above every backend, so a
//! change is recorded identically on SQLite and on MongoDB. Details summarise the new state and
//! never carry secrets (hashes, codes, token texts, passwords).

use serde_json::{Value, json};

use super::alerts::AlertRecord;
use super::enrolment::{DeviceCertificate, EnrolmentToken};
use super::identity::{Quota, Tenant, TokenRecord, User};
use super::jobs::{JobRecord, JobState};
use super::{Device, DevicePatch, DocKind};
use crate::chain::{Change, INSTALLATION};

pub(super) fn device_created(device: &Device) -> Change {
    let detail = json!({"name": device.name, "tags": device.tags, "group": device.group});
    Change::new(
        device.tenant_id.as_str(),
        "device.create",
        format!("devices/{}", device.id),
        detail,
    )
}

pub(super) fn device_updated(device: &Device, patch: &DevicePatch) -> Change {
    let detail = serde_json::to_value(patch).unwrap_or_default();
    Change::new(
        device.tenant_id.as_str(),
        "device.update",
        format!("devices/{}", device.id),
        detail,
    )
}

pub(super) fn device_deleted(tenant: &str, id: &str) -> Change {
    Change::new(tenant, "device.delete", format!("devices/{id}"), Value::Null)
}

/// A certificate issued at enrolment: by claim code or bulk token, and whether it replaced the
/// key of an enrolled screen.
pub(super) fn device_enrolled(cert: &DeviceCertificate, via: &str, rekey: bool, previous: Option<&str>) -> Change {
    let detail = json!({
        "serial": cert.serial, "key_fingerprint": cert.key_fingerprint, "via": via,
        "rekey": rekey, "previous_tenant": previous, "not_after": cert.not_after,
    });
    Change::new(
        cert.tenant_id.as_str(),
        "device.enrol",
        format!("devices/{}", cert.device_id),
        detail,
    )
}

pub(super) fn certificate_renewed(cert: &DeviceCertificate, previous_serial: &str) -> Change {
    let detail = json!({"serial": cert.serial, "previous_serial": previous_serial, "not_after": cert.not_after});
    Change::new(
        cert.tenant_id.as_str(),
        "certificate.renew",
        format!("devices/{}", cert.device_id),
        detail,
    )
}

pub(super) fn certificate_revoked(tenant: &str, device: &str) -> Change {
    Change::new(tenant, "certificate.revoke", format!("devices/{device}"), Value::Null)
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

/// A tenant's quota set by the installation: recorded in the installation's chain and in the
/// tenant's own, so the tenant's administrators see what changed.
pub(super) fn quota_set(tenant: &Tenant, chain: &str, previous: &Quota) -> Change {
    let detail = json!({"quota": tenant.quota, "previous": previous});
    Change::new(chain, "tenant.quota", format!("tenants/{}", tenant.id), detail)
}

fn user_chain(user: &User) -> &str {
    user.tenant_id.as_ref().map_or(INSTALLATION, |t| t.as_str())
}

/// A user created (`user.create`) or saved (`user.update`): who, never credentials.
pub(super) fn user_saved(user: &User, action: &str) -> Change {
    let detail = json!({
        "email": user.email, "role": user.role, "disabled": user.disabled,
        "totp_enabled": user.totp_enabled, "credentials_changed_at": user.credentials_changed_at,
    });
    Change::new(user_chain(user), action, format!("users/{}", user.id), detail)
}

pub(super) fn user_deleted(tenant: &str, id: &str) -> Change {
    Change::new(tenant, "user.delete", format!("users/{id}"), Value::Null)
}

/// A personal access token issued (never its secret or digest).
pub(super) fn personal_token_created(user: &User, token: &TokenRecord) -> Change {
    let detail = json!({"id": token.family, "name": token.name, "role": token.role, "expires_at": token.expires_at});
    Change::new(
        user_chain(user),
        "token.create",
        format!("users/{}/tokens/{}", user.id, token.family),
        detail,
    )
}

pub(super) fn personal_token_revoked(user: &User, id: &str) -> Change {
    Change::new(
        user_chain(user),
        "token.revoke",
        format!("users/{}/tokens/{id}", user.id),
        Value::Null,
    )
}

/// Every session and personal token of a user ended (password changed, second factor removed,
/// account disabled).
pub(super) fn credentials_ended(user: &User, reason: &str) -> Change {
    Change::new(
        user_chain(user),
        "user.credentials_end",
        format!("users/{}", user.id),
        json!({"reason": reason}),
    )
}

pub(super) fn enrolment_token_created(token: &EnrolmentToken) -> Change {
    let detail = json!({"name": token.name, "max_uses": token.max_uses, "expires_at": token.expires_at});
    Change::new(
        token.tenant_id.as_str(),
        "enrolment_token.create",
        format!("enrolment/tokens/{}", token.id),
        detail,
    )
}

pub(super) fn enrolment_token_revoked(tenant: &str, id: &str) -> Change {
    Change::new(
        tenant,
        "enrolment_token.revoke",
        format!("enrolment/tokens/{id}"),
        Value::Null,
    )
}

/// A sign-in: successful (`login.success`) or refused (`login.failure`, with the reason). An
/// attempt for an unknown email is recorded in the installation's chain under the digest of
/// the email, never the text someone typed.
pub(super) fn login(chain: &str, target: String, ok: bool, reason: &str, peer: Option<&str>) -> Change {
    let action = if ok { "login.success" } else { "login.failure" };
    Change::new(chain, action, target, json!({"reason": reason, "peer": peer}))
}

/// A job created: its command, target and roll-out as accepted (never a secret: commands
/// carry none until they are sent).
pub(super) fn job_created(job: &JobRecord) -> Change {
    let detail = json!({"spec": job.spec, "executions": job.total, "expires_at": job.expires_at});
    Change::new(job.tenant_id.as_str(), "job.create", format!("jobs/{}", job.id), detail)
}

/// An operator acknowledged an alert.
pub(super) fn alert_acknowledged(alert: &AlertRecord) -> Change {
    Change::new(
        alert.tenant_id.as_str(),
        "alert.acknowledge",
        format!("alerts/{}", alert.id),
        json!({"rule_id": alert.rule_id, "device_id": alert.device_id}),
    )
}

/// An operator paused, resumed or cancelled a job.
pub(super) fn job_state(tenant: &str, id: &str, to: JobState, reason: Option<&str>) -> Change {
    Change::new(
        tenant,
        format!("job.{}", to.as_str()),
        format!("jobs/{id}"),
        json!({"reason": reason}),
    )
}
