//! Scheduled checks: what `content_stale`, `not_fetched`, `cert_expiry`, `disk_full` and
//! `shabbat_ready` rules read on a screen when their schedule comes round.
//!
//! Each read returns a [`Reading`] against the rule's [`super::rule::Threshold`] and, when it
//! has something to say, the sentence an alert it opens carries. What several screens of a
//! tenant share (their content, the next candle lighting at each synagogue) is loaded once per
//! pass into [`Facts`].

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use luach_content::rest::{next_rest_start, rest_until};

use super::rule::{
    CertExpiryCondition, Condition, ContentStaleCondition, DiskFullCondition, Reading, ShabbatReadyCondition,
};
use super::trend::days_until;
use crate::bundle::TenantContent;
use crate::store::{Device, DeviceStatus, StoreResult, TenantStore};

/// What a tenant's scheduled checks share in one pass, loaded when first needed.
#[derive(Default)]
pub struct Facts {
    content: Option<TenantContent>,
    /// Per synagogue id: whether a rest is on now, and the candle lighting that begins the
    /// next (`None`: none soon, or no times there).
    rest_times: HashMap<String, (bool, Option<DateTime<Utc>>)>,
}

impl Facts {
    async fn content(&mut self, store: &TenantStore<'_>, now: DateTime<Utc>) -> StoreResult<&TenantContent> {
        let content = match self.content.take() {
            Some(content) => content,
            None => TenantContent::load(store, now.date_naive()).await?,
        };
        Ok(self.content.insert(content))
    }

    /// Whether `device` holds the bundle built for it now (`None`: it never fetched one).
    async fn current(
        &mut self,
        store: &TenantStore<'_>,
        device: &Device,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<bool>> {
        let Some(held) = &device.bundle_sha256 else {
            return Ok(None);
        };
        let built = self.content(store, now).await?.build_for(device);
        Ok(Some(*held == built.sha256))
    }
}

/// A reading and, when the check has one, the sentence an alert it opens carries.
pub type Checked = (Reading, Option<String>);

/// Reads a scheduled check's condition on `device` at `now`.
pub async fn read(
    store: &TenantStore<'_>,
    facts: &mut Facts,
    condition: &Condition,
    device: &Device,
    now: DateTime<Utc>,
) -> StoreResult<Checked> {
    match condition {
        Condition::ContentStale(c) => content_stale(store, facts, c, device, now).await,
        Condition::NotFetched(_) => not_fetched(store, facts, device, now).await,
        Condition::CertExpiry(c) => cert_expiry(store, c, device, now).await,
        Condition::DiskFull(c) => disk_full(store, c, device, now).await,
        Condition::ShabbatReady(c) => shabbat_ready(store, facts, c, device, now).await,
        Condition::Metric(_) | Condition::Offline(_) | Condition::Rate(_) | Condition::Flapping(_) => {
            Ok((Reading::Unknown, None))
        }
    }
}

fn flag(wrong: bool) -> Reading {
    Reading::Value(if wrong { 1.0 } else { 0.0 })
}

async fn content_stale(
    store: &TenantStore<'_>,
    facts: &mut Facts,
    _: &ContentStaleCondition,
    device: &Device,
    now: DateTime<Utc>,
) -> StoreResult<Checked> {
    // A screen that never fetched is `not_fetched`'s to report.
    Ok(match facts.current(store, device, now).await? {
        None => (Reading::Unknown, None),
        Some(current) => (
            flag(!current),
            Some(format!("{} shows an out-of-date content bundle", device.id)),
        ),
    })
}

/// A screen that holds its current content has nothing to fetch (agents fetch only a
/// version they lack), however long ago it last did; one that does not is judged by the time
/// since its last fetch (or since it was registered, if it never fetched).
async fn not_fetched(
    store: &TenantStore<'_>,
    facts: &mut Facts,
    device: &Device,
    now: DateTime<Utc>,
) -> StoreResult<Checked> {
    // A screen never seen was registered ahead of its installation: nothing to miss.
    if device.last_seen.is_none() {
        return Ok((Reading::Unknown, None));
    }
    if facts.current(store, device, now).await? == Some(true) {
        return Ok((Reading::Value(0.0), None));
    }
    let since = device.bundle_fetched_at.unwrap_or(device.created_at);
    let quiet = (now - since).num_seconds().max(0) as f64;
    let what = match device.bundle_fetched_at {
        Some(at) => format!("has not fetched its current content (last fetch {})", at.to_rfc3339()),
        None => "has never fetched its content".to_owned(),
    };
    Ok((Reading::Value(quiet), Some(format!("{} {what}", device.id))))
}

async fn cert_expiry(
    store: &TenantStore<'_>,
    _: &CertExpiryCondition,
    device: &Device,
    now: DateTime<Utc>,
) -> StoreResult<Checked> {
    // Screens on the development listener have no certificate.
    let Some(cert) = store.certificate(&device.id).await? else {
        return Ok((Reading::Unknown, None));
    };
    let days = (cert.not_after - now).num_seconds() as f64 / 86_400.0;
    let when = if days < 0.0 { "ended" } else { "ends" };
    Ok((
        Reading::Value(days),
        Some(format!(
            "the certificate of {} {when} {} ({days:.1} days)",
            device.id,
            cert.not_after.to_rfc3339()
        )),
    ))
}

async fn disk_full(
    store: &TenantStore<'_>,
    c: &DiskFullCondition,
    device: &Device,
    now: DateTime<Utc>,
) -> StoreResult<Checked> {
    let Some(total) = device.metrics.as_ref().map(|m| m.disk_total_bytes).filter(|t| *t > 0) else {
        return Ok((Reading::Unknown, None));
    };
    let from = now - Duration::days(i64::from(c.history_days));
    let series = store
        .telemetry()
        .series(&device.id, "disk_used_bytes", from, now, 3_600)
        .await?;
    let points: Vec<_> = series.points.iter().map(|p| (p.t, p.avg)).collect();
    Ok(match days_until(&points, total as f64) {
        None => (Reading::Unknown, None),
        Some(days) => (
            Reading::Value(days),
            Some(format!(
                "the disk of {} is projected full in {days:.1} days at the pace of the last {} days",
                device.id, c.history_days
            )),
        ),
    })
}

async fn shabbat_ready(
    store: &TenantStore<'_>,
    facts: &mut Facts,
    c: &ShabbatReadyCondition,
    device: &Device,
    now: DateTime<Utc>,
) -> StoreResult<Checked> {
    let Some(synagogue) = facts.content(store, now).await?.synagogue_for(device).cloned() else {
        return Ok((Reading::Unknown, None));
    };
    let times = match facts.rest_times.get(synagogue.id.as_str()) {
        Some(times) => *times,
        None => {
            let profile = &synagogue.profile;
            let times = rest_until(profile, now)
                .and_then(|resting| Ok((resting.is_some(), next_rest_start(profile, now)?)))
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, synagogue = %synagogue.id, "no candle lighting for the readiness check");
                    (false, None)
                });
            facts.rest_times.insert(synagogue.id.to_string(), times);
            times
        }
    };
    let (resting, start) = times;
    let before = start.filter(|s| now >= *s - Duration::seconds(i64::from(c.before_s)));
    if !resting && before.is_none() {
        // Outside the window and the rest after it the question does not arise: an alert
        // still open resolves (the offline and content rules speak for the screen).
        return Ok((flag(false), None));
    }
    let online = device.status == DeviceStatus::Online;
    let current = facts.current(store, device, now).await?.unwrap_or(false);
    let ready = online && current;
    let Some(start) = before else {
        // During the rest a screen that became ready clears its alert; none opens.
        return Ok((if ready { flag(false) } else { Reading::Unknown }, None));
    };
    let mut wrong = Vec::new();
    if !online {
        wrong.push("offline");
    }
    if !current {
        wrong.push("without its current content");
    }
    let lighting = synagogue.profile.timezone.parse::<chrono_tz::Tz>().map_or_else(
        |_| start.to_rfc3339(),
        |tz| start.with_timezone(&tz).format("%H:%M %Z").to_string(),
    );
    Ok((
        flag(!ready),
        Some(format!(
            "{} is {} before candle lighting at {} ({lighting})",
            device.id,
            wrong.join(" and "),
            synagogue.profile.name,
        )),
    ))
}
