//! Announcements (CRUD through `documents`), and what one screen shows now.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use luach_schemas::DeviceId;
use serde::Deserialize;

use super::devices::{DataBody, data};
use super::documents::ApiDocument;
use super::extract::ValidQuery;
use super::tenant::Scope;
use crate::error::{ApiError, FieldError};
use crate::state::AppState;
use crate::store::{Announcement, AnnouncementInput};

/// Most announcements considered for one screen.
pub const MAX_SCANNED: u32 = 500;
/// Longest announcement text, in characters.
pub const MAX_TEXT: usize = luach_content::limits::ANNOUNCEMENT;

impl ApiDocument for AnnouncementInput {
    const NAME: &'static str = "announcement";

    fn check(&self) -> Result<(), ApiError> {
        check(self)
    }
}

fn check(a: &AnnouncementInput) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    let mut fail = |path: &str, message: String| {
        errors.push(FieldError {
            path: path.into(),
            message,
        })
    };
    if a.text_he.trim().is_empty() && a.text_en.trim().is_empty() {
        fail("text_he", "give the text in Hebrew, English or both".into());
    }
    for (path, text) in [("text_he", &a.text_he), ("text_en", &a.text_en)] {
        if text.chars().count() > MAX_TEXT {
            fail(path, format!("at most {MAX_TEXT} characters"));
        }
    }
    if let (Some(s), Some(e)) = (a.starts_at, a.ends_at)
        && e <= s
    {
        fail("ends_at", "must be after starts_at".into());
    }
    if a.priority > 100 {
        fail("priority", "must be 0–100".into());
    }
    check_targets(&mut errors, &a.targets);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(errors))
    }
}

/// Checks which screens something is shown on: at most 200 ids and tags, ids well-formed.
pub(super) fn check_targets(errors: &mut Vec<FieldError>, targets: &crate::store::Targets) {
    if targets.devices.len() + targets.tags.len() > 200 {
        errors.push(FieldError::new("targets", "at most 200 devices and tags together"));
    }
    for (i, d) in targets.devices.iter().enumerate() {
        if DeviceId::parse(d).is_err() {
            errors.push(FieldError::new(format!("targets.devices[{i}]"), "not a device id"));
        }
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShowingQuery {
    /// The instant to evaluate (RFC 3339); default now.
    at: Option<DateTime<Utc>>,
}

/// `/api/v1/devices/{id}/announcements?at=`: what this screen shows, highest priority first.
pub async fn showing(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
    ValidQuery(q): ValidQuery<ShowingQuery>,
) -> Result<Json<DataBody<Vec<Announcement>>>, ApiError> {
    let id = DeviceId::parse(&id).map_err(|_| ApiError::not_found("device"))?;
    let store = state.store.tenant(&scope.0);
    let device = store.device(&id).await?.ok_or_else(|| ApiError::not_found("device"))?;
    let at = q.at.unwrap_or_else(Utc::now);
    let mut shown: Vec<Announcement> = store
        .list::<AnnouncementInput>(MAX_SCANNED, None)
        .await?
        .into_iter()
        .filter(|a| a.input.active_at(at) && a.input.targets.matches(id.as_str(), &device.tags))
        .collect();
    shown.sort_by(|a, b| {
        b.input
            .priority
            .cmp(&a.input.priority)
            .then(a.input.starts_at.cmp(&b.input.starts_at))
    });
    Ok(data(shown))
}
