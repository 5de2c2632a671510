//! Memorial plaques (CRUD through `documents`) and the yahrzeits coming up.

use axum::Json;
use axum::extract::State;
use chrono::{Duration, NaiveDate, Utc};
use luach_calendar::HebrewDate;
use luach_content::day::{Yahrzeit, yahrzeits_between};
use luach_content::limits;
use serde::Deserialize;

use super::devices::{DataBody, data};
use super::documents::{ApiDocument, MAX_PAGE};
use super::extract::ValidQuery;
use super::tenant::Scope;
use crate::error::{ApiError, FieldError, check_text};
use crate::state::AppState;
use crate::store::MemorialInput;

/// Most plaques scanned for the yahrzeit calendar of one tenant.
pub const MAX_SCANNED: usize = 20_000;
/// Longest yahrzeit window, in days.
pub const MAX_DAYS: i64 = 400;

impl ApiDocument for MemorialInput {
    const NAME: &'static str = "memorial";

    fn check(&self) -> Result<(), ApiError> {
        check(self).map(|_| ())
    }
}

fn check(input: &MemorialInput) -> Result<HebrewDate, ApiError> {
    let mut errors = Vec::new();
    check_text(&mut errors, "name", &input.name, true, limits::MEMORIAL_NAME);
    check_text(&mut errors, "family", &input.family, false, limits::MEMORIAL_FAMILY);
    if input.notes.chars().count() > 2_000 {
        errors.push(FieldError {
            path: "notes".into(),
            message: "at most 2000 characters".into(),
        });
    }
    let date = input.passed.hebrew();
    if let Err(message) = &date {
        errors.push(FieldError {
            path: "passed".into(),
            message: message.clone(),
        });
    }
    match date {
        Ok(d) if errors.is_empty() => Ok(d),
        _ => Err(ApiError::validation(errors)),
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct YahrzeitQuery {
    /// First civil day of the window; default today (UTC).
    from: Option<NaiveDate>,
    /// Window length in days, 1–400; default 30.
    days: Option<i64>,
}

/// `/api/v1/memorials/yahrzeits?from=&days=`: anniversaries in the window, by date.
pub async fn yahrzeits(
    State(state): State<AppState>,
    scope: Scope,
    ValidQuery(q): ValidQuery<YahrzeitQuery>,
) -> Result<Json<DataBody<Vec<Yahrzeit>>>, ApiError> {
    let from = q.from.unwrap_or_else(|| Utc::now().date_naive());
    let days = q.days.unwrap_or(30);
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(ApiError::invalid_query(vec![FieldError::new(
            "days",
            format!("must be 1–{MAX_DAYS}"),
        )]));
    }
    let until = from + Duration::days(days);
    let mut plaques = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = state
            .store
            .tenant(&scope.0)
            .list::<MemorialInput>(MAX_PAGE, after.as_deref())
            .await?;
        let done = page.len() < MAX_PAGE as usize || plaques.len() + page.len() >= MAX_SCANNED;
        after = page.last().map(|m| m.id.clone());
        plaques.extend(page);
        if done {
            break;
        }
    }

    let out = yahrzeits_between(plaques.iter().map(|m| (m.id.as_str(), &m.input)), from, until)
        .map_err(|e| ApiError::invalid_query(vec![FieldError::new("from", e.to_string())]))?;
    Ok(data(out))
}
