//! `/api/v1/synagogues`: profiles with prayer-schedule rules, and a preview of any day.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{NaiveDate, Utc};
use luach_calendar::{DayInfo, Havdalah, Location, Role, Zman};
use luach_content::day::{self, day_options, schedule_of};
use luach_content::limits;
use serde::{Deserialize, Serialize};

use super::devices::{DataBody, data};
use super::extract::{ValidJson, ValidQuery};
use super::reply::{Created, Either, NoContent};
use super::tenant::Scope;
use crate::error::{ApiError, FieldError, check_text};
use crate::state::AppState;
use crate::store::{Synagogue, SynagogueId, SynagogueProfile};

/// Most synagogues one tenant lists.
pub const MAX_SYNAGOGUES: u32 = 500;
/// Most rules and overrides in one schedule.
pub const MAX_RULES: usize = 200;
pub const MAX_OVERRIDES: usize = 1_000;

fn parse_id(raw: &str) -> Result<SynagogueId, ApiError> {
    SynagogueId::parse(raw).map_err(|_| ApiError::not_found("synagogue"))
}

/// Every problem of a profile, with field paths.
fn check_profile(p: &SynagogueProfile) -> Result<Location, ApiError> {
    let mut errors = Vec::new();
    check_text(&mut errors, "name", &p.name, true, limits::SYNAGOGUE_NAME);
    check_text(&mut errors, "address", &p.address, false, limits::SYNAGOGUE_ADDRESS);
    super::announcements::check_targets(&mut errors, &p.screens);
    let mut fail = |path: &str, message: String| {
        errors.push(FieldError {
            path: path.to_owned(),
            message,
        })
    };
    if !(-90.0..=90.0).contains(&p.latitude) {
        fail("latitude", "must be between -90 and 90".into());
    }
    if !(-180.0..=180.0).contains(&p.longitude) {
        fail("longitude", "must be between -180 and 180".into());
    }
    if !(-500.0..=9_000.0).contains(&p.elevation_m) {
        fail("elevation_m", "must be between -500 and 9000 metres".into());
    }
    if p.timezone.parse::<chrono_tz::Tz>().is_err() {
        fail("timezone", format!("{:?} is not an IANA time zone", p.timezone));
    }
    if p.candle_lighting_minutes > 120 {
        fail("candle_lighting_minutes", "must be 0–120".into());
    }
    match p.havdalah {
        Havdalah::Degrees(d) if !(0.0..=20.0).contains(&d) => fail("havdalah.degrees", "must be 0–20".into()),
        Havdalah::Minutes(m) if m > 120 => fail("havdalah.minutes", "must be 0–120".into()),
        _ => {}
    }
    if p.schedule.rules.len() > MAX_RULES {
        fail("schedule.rules", format!("at most {MAX_RULES} rules"));
    }
    if p.schedule.overrides.len() > MAX_OVERRIDES {
        fail("schedule.overrides", format!("at most {MAX_OVERRIDES} overrides"));
    }
    if let Err(e) = p.schedule.validate() {
        match e {
            luach_calendar::Error::InvalidRule { path, message } => fail(&format!("schedule.{path}"), message),
            other => fail("schedule", other.to_string()),
        }
    }
    let d = &p.display;
    if d.daily.len() != d.daily.iter().collect::<std::collections::HashSet<_>>().len() {
        fail("display.daily", "lists an item twice".into());
    }
    if d.zmanim.len() > 20 || d.zmanim.len() != d.zmanim.iter().collect::<std::collections::HashSet<_>>().len() {
        fail("display.zmanim", "at most 20 zmanim, each once".into());
    }
    if !(5..=300).contains(&d.page_seconds) {
        fail("display.page_seconds", "must be 5–300".into());
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    Location::new(p.latitude, p.longitude, p.elevation_m, &p.timezone).map_err(|e| {
        ApiError::validation(vec![FieldError {
            path: "timezone".into(),
            message: e.to_string(),
        }])
    })
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<u32>,
}

pub async fn list(
    State(state): State<AppState>,
    scope: Scope,
    ValidQuery(q): ValidQuery<ListQuery>,
) -> Result<Json<DataBody<Vec<Synagogue>>>, ApiError> {
    let limit = q.limit.unwrap_or(MAX_SYNAGOGUES).clamp(1, MAX_SYNAGOGUES);
    Ok(data(state.store.tenant(&scope.0).synagogues(limit).await?))
}

async fn find(state: &AppState, scope: &Scope, id: &SynagogueId) -> Result<Synagogue, ApiError> {
    state
        .store
        .tenant(&scope.0)
        .synagogue(id)
        .await?
        .ok_or_else(|| ApiError::not_found("synagogue"))
}

pub async fn get(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
) -> Result<Json<DataBody<Synagogue>>, ApiError> {
    let id = parse_id(&id)?;
    Ok(data(find(&state, &scope, &id).await?))
}

/// PUT creates (201) or replaces (200) the whole profile.
pub async fn put(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
    ValidJson(profile): ValidJson<SynagogueProfile>,
) -> Result<Either<Created<Synagogue>, Json<DataBody<Synagogue>>>, ApiError> {
    let id = SynagogueId::parse(&id).map_err(|e| {
        ApiError::validation(vec![FieldError {
            path: "id".into(),
            message: e.to_string(),
        }])
    })?;
    check_profile(&profile)?;
    let (stored, created) = state
        .store
        .tenant(&scope.0)
        .put_synagogue(&id, profile, Utc::now())
        .await?;
    Ok(if created {
        Either::A(Created(stored))
    } else {
        Either::B(data(stored))
    })
}

pub async fn delete(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
) -> Result<NoContent, ApiError> {
    let id = parse_id(&id)?;
    if state.store.tenant(&scope.0).delete_synagogue(&id).await? {
        Ok(NoContent)
    } else {
        Err(ApiError::not_found("synagogue"))
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewQuery {
    /// Civil date, YYYY-MM-DD; default: today at the synagogue.
    date: Option<NaiveDate>,
}

fn compute_day(p: &SynagogueProfile, location: &Location, date: NaiveDate) -> Result<DayInfo, ApiError> {
    day::compute_day(p, location, date)
        .map_err(|e| ApiError::invalid_query(vec![FieldError::new("date", e.to_string())]))
}

/// Longest window of the holiday-times page, in days.
pub const MAX_HOLIDAY_DAYS: i64 = 60;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HolidayQuery {
    /// First civil date; default today at the synagogue.
    from: Option<NaiveDate>,
    /// Window length, 1–60 days; default 30.
    days: Option<i64>,
    /// Include ordinary Shabbatot (candle lighting, havdalah) too; default false.
    shabbat: Option<bool>,
}

/// The holiday-times page's answer.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct HolidayTimes {
    synagogue: SynagogueId,
    from: NaiveDate,
    days: Vec<HolidayDay>,
}

/// One day of the holiday-times page.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct HolidayDay {
    date: NaiveDate,
    hebrew_date: luach_calendar::HebrewDate,
    holidays: Vec<String>,
    /// Local times (ISO 8601 with offset); `null` when there is none that day.
    candle_lighting: Option<String>,
    havdalah: Option<String>,
    /// The same as a screen shows them, `HH:MM` rounded by the synagogue's minute policy.
    candle_lighting_shown: Option<String>,
    havdalah_shown: Option<String>,
    fast: Option<FastShown>,
    schedule: Vec<day::PrayerTime>,
}

/// A fast of the day with its local begin and end.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct FastShown {
    name: String,
    begins: Option<String>,
    ends: Option<String>,
    /// `HH:MM`: the beginning is a deadline (the last moment to eat), the end a start.
    begins_shown: Option<String>,
    ends_shown: Option<String>,
}

/// The holiday-times page: every day in the window with a holiday or a fast (and, on request,
/// every Shabbat), with candle lighting, havdalah, fast times and the prayer times.
pub async fn holiday_times(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
    ValidQuery(q): ValidQuery<HolidayQuery>,
) -> Result<Json<DataBody<HolidayTimes>>, ApiError> {
    let id = parse_id(&id)?;
    let days = q.days.unwrap_or(30);
    if !(1..=MAX_HOLIDAY_DAYS).contains(&days) {
        return Err(ApiError::invalid_query(vec![FieldError::new(
            "days",
            format!("must be 1–{MAX_HOLIDAY_DAYS}"),
        )]));
    }
    let synagogue = find(&state, &scope, &id).await?;
    let p = &synagogue.profile;
    let location = check_profile(p)?;
    let from = q.from.unwrap_or_else(|| location.local_date(Utc::now()));
    let fasts = luach_calendar::FastOptions::default();
    let mut out = Vec::new();
    for date in from.iter_days().take(days as usize) {
        let day = compute_day(p, &location, date)?;
        let fast = luach_calendar::fast_on(&location, date, &day_options(p), &fasts)
            .map_err(|e| ApiError::invalid_query(vec![FieldError::new("from", e.to_string())]))?;
        let shabbat_only = day.holidays.is_empty() && fast.is_none();
        if shabbat_only && !(q.shabbat.unwrap_or(false) && day.evening.is_some()) {
            continue;
        }
        let minutes = &p.display.minutes;
        let at = |z| day.get(z).ok().map(|t| day.local_iso(t));
        let shown = |z| day.get(z).ok().map(|t| day.local_minute(t, minutes.for_zman(z)));
        let (schedule, _) = schedule_of(p, &day);
        out.push(HolidayDay {
            date,
            hebrew_date: day.hebrew_date,
            holidays: day.holidays.iter().map(|h| h.name.clone()).collect(),
            candle_lighting: at(Zman::CandleLighting),
            havdalah: at(Zman::Havdalah),
            candle_lighting_shown: shown(Zman::CandleLighting),
            havdalah_shown: shown(Zman::Havdalah),
            fast: fast.map(|f| FastShown {
                name: f.name,
                begins: f.begins.ok().map(|t| day.local_iso(t)),
                ends: f.ends.ok().map(|t| day.local_iso(t)),
                begins_shown: f
                    .begins
                    .ok()
                    .map(|t| day.local_minute(t, minutes.for_role(Role::Deadline))),
                ends_shown: f.ends.ok().map(|t| day.local_minute(t, minutes.for_role(Role::Start))),
            }),
            schedule,
        });
    }
    Ok(data(HolidayTimes {
        synagogue: synagogue.id,
        from,
        days: out,
    }))
}

/// Every document of a kind in the scope (up to `limit`; more are not shown in a preview).
async fn all_of<T: crate::store::Document>(
    state: &AppState,
    scope: &Scope,
    limit: u32,
) -> Result<Vec<luach_content::Item<T>>, ApiError> {
    let stored = state.store.tenant(&scope.0).list::<T>(limit, None).await?;
    Ok(stored.into_iter().map(Into::into).collect())
}

/// The synagogue's day (see [`luach_content::day::synagogue_day`]): times, prayer times, and
/// the day's honours, lessons and timers.
pub async fn preview(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
    ValidQuery(q): ValidQuery<PreviewQuery>,
) -> Result<Json<DataBody<day::SynagogueDay>>, ApiError> {
    let id = parse_id(&id)?;
    let synagogue = find(&state, &scope, &id).await?;
    let p = &synagogue.profile;
    let location = check_profile(p)?;
    let date = q.date.unwrap_or_else(|| location.local_date(Utc::now()));
    let limit = super::documents::MAX_PAGE;
    let aliyot = all_of::<crate::store::AliyotInput>(&state, &scope, limit).await?;
    let shiurim = all_of::<crate::store::ShiurInput>(&state, &scope, limit).await?;
    let timers = all_of::<crate::store::TimerInput>(&state, &scope, limit).await?;
    let programme = day::Programme {
        aliyot: &aliyot,
        shiurim: &shiurim,
        timers: &timers,
    };
    let (_, shown) = day::synagogue_day(synagogue.id.as_str(), p, date, programme)
        .map_err(|e| ApiError::invalid_query(vec![FieldError::new("date", e.to_string())]))?;
    Ok(data(shown))
}
