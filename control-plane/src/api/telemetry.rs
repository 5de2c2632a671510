//! Telemetry history over REST: a screen's records (`GET /devices/{id}/telemetry`), its
//! streams with what each lost (`GET /devices/{id}/telemetry/streams`), and one metric over
//! time (`GET /devices/{id}/metrics/{metric}`).

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use super::devices::find;
use super::devices::{DataBody, data};
use super::extract::ValidQuery;
use super::tenant::Scope;
use crate::error::{ApiError, FieldError};
use crate::state::AppState;
use crate::store::{After, METRICS, Page, Series, StreamReport, TelemetryRow};

/// Longest range one series answer covers.
const MAX_RANGE_DAYS: i64 = 400;
/// Finest bucket, in seconds.
const MIN_STEP_S: i64 = 10;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordsQuery {
    /// Only records of this kind: `metrics` or `event`.
    kind: Option<String>,
    /// Page size (1–500; default 100).
    limit: Option<u32>,
    /// The `next_after` of the previous page (`stream:seq`).
    after: Option<String>,
}

/// `GET /devices/{id}/telemetry`: the records kept as sent, in (stream, seq) order.
pub async fn records(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path(id): Path<String>,
    ValidQuery(q): ValidQuery<RecordsQuery>,
) -> Result<Json<DataBody<Page<TelemetryRow>>>, ApiError> {
    let mut bad = Vec::new();
    if q.kind.as_deref().is_some_and(|k| !matches!(k, "metrics" | "event")) {
        bad.push(FieldError::new("kind", "must be `metrics` or `event`"));
    }
    if q.limit.is_some_and(|l| !(1..=500).contains(&l)) {
        bad.push(FieldError::new("limit", "must be 1–500"));
    }
    let after = match q.after.as_deref().map(After::parse) {
        Some(None) => {
            bad.push(FieldError::new(
                "after",
                "must be `stream:seq` as given in `next_after`",
            ));
            None
        }
        Some(after) => after,
        None => None,
    };
    if !bad.is_empty() {
        return Err(ApiError::invalid_query(bad));
    }
    let id = find(&state, &scope, &id).await?.id;
    let page = state
        .store
        .tenant(&scope)
        .telemetry()
        .records(&id, q.kind.as_deref(), after.as_ref(), q.limit.unwrap_or(100))
        .await?;
    Ok(data(page))
}

/// `GET /devices/{id}/telemetry/streams`: each stream the screen sent, with the records in
/// history, the highest sequence number and how many the screen dropped.
pub async fn streams(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path(id): Path<String>,
) -> Result<Json<DataBody<Vec<StreamReport>>>, ApiError> {
    let id = find(&state, &scope, &id).await?.id;
    Ok(data(state.store.tenant(&scope).telemetry().streams(&id).await?))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SeriesQuery {
    /// Start (RFC 3339); default: 24 hours before `to`.
    from: Option<DateTime<Utc>>,
    /// End, exclusive (RFC 3339); default: now.
    to: Option<DateTime<Utc>>,
    /// Bucket width in seconds (at least 10; default 300); widened so that no more than
    /// 2,000 buckets are answered.
    step_s: Option<i64>,
}

/// `GET /devices/{id}/metrics/{metric}`: one metric over time, in buckets with average,
/// minimum, maximum and count (raw samples where kept, hourly roll-ups before that).
pub async fn series(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path((id, metric)): Path<(String, String)>,
    ValidQuery(q): ValidQuery<SeriesQuery>,
) -> Result<Json<DataBody<Series>>, ApiError> {
    let to = q.to.unwrap_or_else(Utc::now);
    let from = q.from.unwrap_or(to - Duration::hours(24));
    let step_s = q.step_s.unwrap_or(300);
    let mut bad = Vec::new();
    if from >= to {
        bad.push(FieldError::new("from", "must be before `to`"));
    } else if to - from > Duration::days(MAX_RANGE_DAYS) {
        bad.push(FieldError::new("from", "the range may cover at most 400 days"));
    }
    if step_s < MIN_STEP_S {
        bad.push(FieldError::new("step_s", "must be at least 10"));
    }
    if !bad.is_empty() {
        return Err(ApiError::invalid_query(bad));
    }
    let id = find(&state, &scope, &id).await?.id;
    if !METRICS.contains(&metric.as_str()) {
        return Err(ApiError::not_found("metric"));
    }
    let series = state
        .store
        .tenant(&scope)
        .telemetry()
        .series(&id, &metric, from, to, step_s)
        .await?;
    Ok(data(series))
}
