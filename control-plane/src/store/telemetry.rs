//! Telemetry history: every record a screen sent, once, and its metrics over time.
//!
//! Screens number their records per *stream* (see `luach_agent::outbox`); a record is stored
//! once per (tenant, device, stream, seq), so a batch sent again after a lost answer adds
//! nothing. Late records (a screen back from an outage) go into history at their own time.
//!
//! Retention and downsampling, the same on every backend:
//! - raw records are kept [`Retention::raw`] (default 7 days);
//! - metrics older than that are rolled up into one row per (device, hour, metric) with count,
//!   sum, min and max, kept [`Retention::hourly`] (default 400 days), and the raw records go;
//! - a record older than the raw retention when it arrives is not stored (it is still
//!   answered as stored, so the screen deletes it, and counted): its hour may already be
//!   rolled up, and accepting it would change a finished hour.
//!
//! Because no record can join an hour once that hour is past the raw retention, each hour is
//! rolled up exactly once from complete data. The roll-up inserts an hour only when it is
//! absent and deletes the raw records afterwards, so a roll-up stopped half way (MongoDB
//! deletes are not atomic) and run again neither loses nor counts anything twice.
//!
//! Queries read raw records where they exist and hourly rows before that, and fold both into
//! buckets of the requested step (at most [`MAX_POINTS`] buckets).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, DurationRound, TimeDelta, Utc};
use luach_schemas::{DeviceId, TenantId};
use serde::Serialize;
use serde_json::Value;

use super::StoreResult;
use super::handle::Inner;
use super::model::Page;
use super::scope::TenantScope;

/// Most buckets in one series answer; a finer step is widened.
pub const MAX_POINTS: i64 = 2_000;
/// Most records in one page of a device's telemetry.
pub const MAX_PAGE: u32 = 500;

/// The metrics kept over time: fields of a metrics record.
pub const METRICS: [&str; 7] = [
    "cpu_percent",
    "mem_used_bytes",
    "mem_total_bytes",
    "disk_used_bytes",
    "disk_total_bytes",
    "temperature_c",
    "uptime_s",
];

/// How long history is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Raw records (and the window in which late records are accepted).
    pub raw: Duration,
    /// Hourly roll-ups of metrics.
    pub hourly: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            raw: Duration::days(7),
            hourly: Duration::days(400),
        }
    }
}

impl Retention {
    /// Records made before this are rolled up (an hour boundary, so whole hours go).
    pub fn raw_cutoff(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        floor_hour(now - self.raw)
    }

    /// Hourly rows before this are deleted.
    pub fn hourly_cutoff(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        floor_hour(now - self.hourly)
    }

    /// Whether a record made at `at` arrives too late to be kept (see the module docs).
    pub fn too_old(&self, at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        at < now - self.raw
    }
}

fn floor_hour(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::hours(1)).unwrap_or(t)
}

/// One stored record.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct TelemetryRow {
    #[serde(skip)]
    pub tenant_id: TenantId,
    #[serde(skip)]
    pub device_id: DeviceId,
    pub stream: String,
    pub seq: u64,
    /// When the screen made it.
    pub at: DateTime<Utc>,
    /// When the control plane received it.
    pub received: DateTime<Utc>,
    /// `metrics` or `event`.
    pub kind: String,
    /// The metrics sample, or the event's `name` and `detail`.
    pub body: Value,
}

/// What a device's stream has reported, kept per (device, stream).
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct StreamReport {
    #[serde(skip)]
    pub tenant_id: TenantId,
    #[serde(skip)]
    pub device_id: DeviceId,
    pub stream: String,
    /// Records the screen removed from its queue unconfirmed because the budget was full (the
    /// highest count it reported). A record sent just before the link failed may have been
    /// stored all the same; `missing` is what history lacks.
    pub dropped: u64,
    /// The highest sequence number received.
    pub highest_seq: u64,
    /// Records of this stream in history (raw records only; rolled-up ones are not counted).
    pub stored: u64,
    /// Sequence numbers up to `highest_seq` that history lacks: records dropped on the screen
    /// (or still in its queue while it catches up), exactly, while no raw record of the stream
    /// has passed the raw retention.
    pub missing: u64,
    pub updated_at: DateTime<Utc>,
}

/// An hour of one metric of one device.
#[derive(Debug, Clone, PartialEq)]
pub struct HourRow {
    pub tenant_id: TenantId,
    pub device_id: DeviceId,
    pub metric: String,
    pub hour: DateTime<Utc>,
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

/// One bucket of a series.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Point {
    /// Start of the bucket.
    pub t: DateTime<Utc>,
    pub avg: f64,
    pub min: f64,
    pub max: f64,
    /// Samples in the bucket.
    pub count: u64,
}

/// A metric of one device over time.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Series {
    pub metric: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Bucket width in seconds (the requested step, widened to at most 2,000 buckets).
    pub step_s: i64,
    /// Buckets with samples, oldest first; empty buckets are left out.
    pub points: Vec<Point>,
}

/// Where a page of records starts: after this (stream, seq).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct After {
    pub stream: String,
    pub seq: u64,
}

impl After {
    /// Parses `stream:seq` (the `next` of the previous page).
    pub fn parse(text: &str) -> Option<Self> {
        let (stream, seq) = text.split_once(':')?;
        Some(Self {
            stream: stream.to_owned(),
            seq: seq.parse().ok()?,
        })
    }
}

/// A metric's value in a metrics record's body.
pub fn metric_value(body: &Value, metric: &str) -> Option<f64> {
    body.get(metric).and_then(Value::as_f64).filter(|v| v.is_finite())
}

#[derive(Debug, Clone, Copy)]
struct Acc {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Acc {
    fn new() -> Self {
        Self {
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    fn add(&mut self, count: u64, sum: f64, min: f64, max: f64) {
        self.count += count;
        self.sum += sum;
        self.min = self.min.min(min);
        self.max = self.max.max(max);
    }
}

/// Hourly rows for every metric of the given metrics records of one device.
pub fn roll_up(tenant: &TenantId, device: &DeviceId, records: &[(DateTime<Utc>, Value)]) -> Vec<HourRow> {
    let mut hours: BTreeMap<(DateTime<Utc>, &'static str), Acc> = BTreeMap::new();
    for (at, body) in records {
        for metric in METRICS {
            if let Some(v) = metric_value(body, metric) {
                hours
                    .entry((floor_hour(*at), metric))
                    .or_insert_with(Acc::new)
                    .add(1, v, v, v);
            }
        }
    }
    hours
        .into_iter()
        .map(|((hour, metric), a)| HourRow {
            tenant_id: tenant.clone(),
            device_id: device.clone(),
            metric: metric.to_owned(),
            hour,
            count: a.count,
            sum: a.sum,
            min: a.min,
            max: a.max,
        })
        .collect()
}

/// Folds raw samples and hourly rows into buckets of `step_s` seconds from `from`.
pub fn bucket(
    metric: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    step_s: i64,
    raw: &[(DateTime<Utc>, f64)],
    hours: &[HourRow],
) -> Series {
    let span = (to - from).num_seconds().max(1);
    let step_s = step_s.max(1).max((span + MAX_POINTS - 1) / MAX_POINTS);
    let index = |t: DateTime<Utc>| (t - from).num_seconds().div_euclid(step_s);
    let mut buckets: BTreeMap<i64, Acc> = BTreeMap::new();
    for (at, v) in raw.iter().filter(|(at, _)| *at >= from && *at < to) {
        buckets.entry(index(*at)).or_insert_with(Acc::new).add(1, *v, *v, *v);
    }
    for h in hours.iter().filter(|h| h.hour >= floor_hour(from) && h.hour < to) {
        buckets
            .entry(index(h.hour.max(from)))
            .or_insert_with(Acc::new)
            .add(h.count, h.sum, h.min, h.max);
    }
    let points = buckets
        .into_iter()
        .filter(|(_, a)| a.count > 0)
        .map(|(i, a)| Point {
            t: from + Duration::seconds(i * step_s),
            avg: a.sum / a.count as f64,
            min: a.min,
            max: a.max,
            count: a.count,
        })
        .collect();
    Series {
        metric: metric.to_owned(),
        from,
        to,
        step_s,
        points,
    }
}

/// One tenant's telemetry history (from [`super::TenantStore::telemetry`]).
pub struct TenantTelemetry<'a> {
    inner: &'a Inner,
    scope: &'a TenantScope,
}

impl<'a> TenantTelemetry<'a> {
    pub(super) fn new(inner: &'a Inner, scope: &'a TenantScope) -> Self {
        Self { inner, scope }
    }

    fn b(&self) -> &dyn super::backend::Backend {
        self.inner.backend.as_ref()
    }

    /// Records of `device` in (stream, seq) order, `kind` only when given.
    pub async fn records(
        &self,
        device: &DeviceId,
        kind: Option<&str>,
        after: Option<&After>,
        limit: u32,
    ) -> StoreResult<Page<TelemetryRow>> {
        let limit = limit.clamp(1, MAX_PAGE);
        let (rows, total) = self
            .inner
            .timed(
                "telemetry.records",
                self.b()
                    .telemetry_records(self.scope.tenant(), device, kind, after, limit + 1),
            )
            .await?;
        Ok(Page::from_fetched(rows, limit, total, |r| {
            format!("{}:{}", r.stream, r.seq)
        }))
    }

    /// The streams `device` has sent, with what each reported.
    pub async fn streams(&self, device: &DeviceId) -> StoreResult<Vec<StreamReport>> {
        let mut streams = self
            .inner
            .timed(
                "telemetry.streams",
                self.b().telemetry_streams(self.scope.tenant(), device),
            )
            .await?;
        for s in &mut streams {
            s.missing = s.highest_seq.saturating_sub(s.stored);
        }
        Ok(streams)
    }

    /// `metric` (one of [`METRICS`]) of `device` from `from` to `to` in buckets of about
    /// `step_s` seconds.
    pub async fn series(
        &self,
        device: &DeviceId,
        metric: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        step_s: i64,
    ) -> StoreResult<Series> {
        let tenant = self.scope.tenant();
        let raw = self
            .inner
            .timed(
                "telemetry.samples",
                self.b().metric_samples(tenant, device, metric, from, to),
            )
            .await?;
        let hours = self
            .inner
            .timed(
                "telemetry.hours",
                self.b().metric_hours(tenant, device, metric, floor_hour(from), to),
            )
            .await?;
        Ok(bucket(metric, from, to, step_s, &raw, &hours))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn hours_roll_up_each_metric_and_buckets_fold_both_kinds() {
        let tenant = TenantId::builtin();
        let device = DeviceId::parse("abc").unwrap_or_else(|e| panic!("{e}"));
        let records = vec![
            (
                at("2026-01-01T10:05:00Z"),
                serde_json::json!({"cpu_percent": 10.0, "uptime_s": 5}),
            ),
            (at("2026-01-01T10:55:00Z"), serde_json::json!({"cpu_percent": 30.0})),
            (
                at("2026-01-01T11:00:00Z"),
                serde_json::json!({"cpu_percent": 50.0, "temperature_c": null}),
            ),
        ];
        let hours = roll_up(&tenant, &device, &records);
        let cpu: Vec<_> = hours.iter().filter(|h| h.metric == "cpu_percent").collect();
        assert_eq!(cpu.len(), 2);
        assert_eq!(
            (cpu[0].count, cpu[0].sum, cpu[0].min, cpu[0].max),
            (2, 40.0, 10.0, 30.0)
        );
        assert!(hours.iter().all(|h| h.metric != "temperature_c"));

        let raw = [(at("2026-01-01T12:10:00Z"), 70.0), (at("2026-01-01T12:20:00Z"), 90.0)];
        let series = bucket(
            "cpu_percent",
            at("2026-01-01T10:00:00Z"),
            at("2026-01-01T13:00:00Z"),
            3600,
            &raw,
            &cpu.into_iter().cloned().collect::<Vec<_>>(),
        );
        let avgs: Vec<_> = series.points.iter().map(|p| (p.avg, p.count)).collect();
        assert_eq!(avgs, [(20.0, 2), (50.0, 1), (80.0, 2)]);
        assert_eq!(series.points[2].t, at("2026-01-01T12:00:00Z"));

        // A step too fine for the range is widened to at most MAX_POINTS buckets.
        let wide = bucket(
            "cpu_percent",
            at("2026-01-01T00:00:00Z"),
            at("2026-02-01T00:00:00Z"),
            1,
            &[],
            &[],
        );
        assert!(31 * 86_400 / wide.step_s <= MAX_POINTS);
    }

    #[test]
    fn retention_cuts_on_hours_and_refuses_what_is_too_late() {
        let r = Retention::default();
        let now = at("2026-03-10T15:30:00Z");
        assert_eq!(r.raw_cutoff(now), at("2026-03-03T15:00:00Z"));
        assert!(r.too_old(at("2026-03-03T15:29:00Z"), now));
        assert!(!r.too_old(at("2026-03-03T15:31:00Z"), now));
        // Anything before the cutoff is too old by the time the cutoff passes it.
        assert!(r.too_old(r.raw_cutoff(now) - Duration::milliseconds(1), now));
        assert_eq!(
            After::parse("abcdefgh:42"),
            Some(After {
                stream: "abcdefgh".into(),
                seq: 42
            })
        );
        assert_eq!(After::parse("nope"), None);
    }
}
