//! Keeping the device certificate current: renew after 2/3 of its life, again and again.

use std::time::Duration;

use chrono::{DateTime, Utc};
use luach_pki::DeviceKey;
use luach_schemas::DeviceId;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::credentials::{CredentialStore, TlsIdentity, renew_at};
use crate::enrol::{EnrolError, Enroller};

/// Wait after an unexpected renewal failure (a bad answer, a disk error) before trying again.
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(60);

/// Why [`keep_renewed`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenewalEnd {
    /// Shutdown was requested.
    Stopped,
    /// The control plane refused to renew (the device was revoked, deleted or re-enrolled with
    /// another key). The current certificate still works until `not_after`.
    Refused { not_after: DateTime<Utc> },
}

/// Renews `identity` whenever 2/3 of its lifetime has passed, saves each new certificate to
/// `store` (if any) and publishes it on `updates` (the session uses it for its next connection;
/// the broker never re-checks a live connection's certificate, so no reconnect is needed).
pub async fn keep_renewed(
    enroller: &Enroller,
    device: &DeviceId,
    key: &DeviceKey,
    mut identity: TlsIdentity,
    store: Option<&CredentialStore>,
    updates: &watch::Sender<TlsIdentity>,
    shutdown: &CancellationToken,
) -> RenewalEnd {
    loop {
        let (not_before, not_after) = match identity.validity() {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(device_id = %device, error = %e, "cannot read the device certificate");
                return RenewalEnd::Refused { not_after: Utc::now() };
            }
        };
        let wait = (renew_at(not_before, not_after) - Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO);
        tracing::debug!(device_id = %device, renew_in_s = wait.as_secs(), "certificate renewal scheduled");
        tokio::select! {
            _ = shutdown.cancelled() => return RenewalEnd::Stopped,
            _ = tokio::time::sleep(wait) => {}
        }
        match enroller.renew(device, key, shutdown).await {
            Ok(issued) => {
                identity = issued.identity;
                if let Some(store) = store
                    && let Err(e) = store.save_identity(&identity)
                {
                    tracing::warn!(device_id = %device, error = %e, "renewed certificate not saved");
                }
                let _ = updates.send(identity.clone());
                tracing::info!(device_id = %device, "device certificate renewed");
            }
            Err(EnrolError::Stopped) => return RenewalEnd::Stopped,
            Err(e @ EnrolError::Refused { .. }) => {
                tracing::error!(device_id = %device, error = %e, %not_after, "certificate renewal refused");
                return RenewalEnd::Refused { not_after };
            }
            Err(EnrolError::Other(e)) => {
                tracing::warn!(device_id = %device, error = %e, "certificate renewal failed; will retry");
                tokio::select! {
                    _ = shutdown.cancelled() => return RenewalEnd::Stopped,
                    _ = tokio::time::sleep(RETRY_AFTER_ERROR) => {}
                }
            }
        }
    }
}
