//! Alerts over REST: the rules (`/alert-rules`, documents checked field by field, at most
//! [`MAX_RULES`] per tenant, `POST /alert-rules/defaults` to restore the defaults) and the
//! alerts they open (`GET /alerts`, `GET /alerts/{id}`, `POST /alerts/{id}/acknowledge`).
//! Reading needs `devices:read`; writing rules `devices:write`; acknowledging
//! `devices:command` (whoever may act on a screen may say they are on it).

use axum::Json;
use axum::extract::{Path, State};
use chrono::Utc;
use serde::Deserialize;

use super::devices::{DataBody, data};
use super::documents::{ApiDocument, MAX_PAGE};
use super::extract::{ValidJson, ValidQuery};
use super::reply::Created;
use super::tenant::Scope;
use crate::alerts::engine::MAX_RULES;
use crate::alerts::lifecycle::AlertState;
use crate::alerts::rule::AlertRule;
use crate::error::ApiError;
use crate::notify::channel::Event;
use crate::notify::route;
use crate::state::AppState;
use crate::store::{AlertFilter, AlertRecord, MAX_ALERT_PAGE, Page, Stored};
use luach_schemas::DeviceId;

impl ApiDocument for AlertRule {
    const NAME: &'static str = "alert rule";

    fn check(&self) -> Result<(), ApiError> {
        AlertRule::check(self).map_err(ApiError::validation)
    }
}

/// `POST /alert-rules`: a new rule, while the tenant has fewer than [`MAX_RULES`].
pub async fn create_rule(
    State(state): State<AppState>,
    Scope(scope): Scope,
    ValidJson(input): ValidJson<AlertRule>,
) -> Result<Created<Stored<AlertRule>>, ApiError> {
    input.check().map_err(ApiError::validation)?;
    let store = state.store.tenant(&scope);
    if store.list::<AlertRule>(MAX_RULES, None).await?.len() >= MAX_RULES as usize {
        return Err(ApiError::conflict(format!(
            "a tenant has at most {MAX_RULES} alert rules; remove one first"
        )));
    }
    let id = uuid::Uuid::now_v7().simple().to_string();
    let (stored, _) = store.put(&id, input, Utc::now()).await?;
    Ok(Created(stored))
}

/// `POST /alert-rules/defaults`: puts the default rules back under their fixed ids (replacing
/// any edits of them; other rules stay). Answers the tenant's rules.
pub async fn restore_defaults(
    State(state): State<AppState>,
    Scope(scope): Scope,
) -> Result<Json<DataBody<Vec<Stored<AlertRule>>>>, ApiError> {
    let store = state.store.tenant(&scope);
    put_defaults(&store).await?;
    Ok(data(store.list::<AlertRule>(MAX_PAGE, None).await?))
}

/// Stores the default rules in `store`'s tenant.
pub async fn put_defaults(store: &crate::store::TenantStore<'_>) -> Result<(), ApiError> {
    for (id, rule) in AlertRule::defaults() {
        store.put(id, rule, Utc::now()).await?;
    }
    Ok(())
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertsQuery {
    /// Only alerts in this state.
    state: Option<AlertState>,
    /// Only open and acknowledged alerts.
    #[serde(default)]
    active: bool,
    /// Only alerts of this screen.
    device: Option<DeviceId>,
    /// Page size (1–500; default 100).
    limit: Option<u32>,
    /// The last id of the previous page.
    after: Option<String>,
}

/// `GET /alerts`: newest first.
pub async fn list(
    State(state): State<AppState>,
    Scope(scope): Scope,
    ValidQuery(q): ValidQuery<AlertsQuery>,
) -> Result<Json<DataBody<Page<AlertRecord>>>, ApiError> {
    let filter = AlertFilter {
        state: q.state,
        active: q.active,
        device: q.device,
    };
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_ALERT_PAGE);
    Ok(data(
        state
            .store
            .tenant(&scope)
            .alerts()
            .list(&filter, limit, q.after.as_deref())
            .await?,
    ))
}

async fn existing(state: &AppState, scope: &crate::store::TenantScope, id: &str) -> Result<AlertRecord, ApiError> {
    state
        .store
        .tenant(scope)
        .alerts()
        .get(id)
        .await?
        .ok_or_else(|| ApiError::not_found("alert"))
}

/// `GET /alerts/{id}`.
pub async fn get(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path(id): Path<String>,
) -> Result<Json<DataBody<AlertRecord>>, ApiError> {
    Ok(data(existing(&state, &scope, &id).await?))
}

/// `POST /alerts/{id}/acknowledge`: someone is on it. Only an open alert can be acknowledged
/// (409 otherwise); it still resolves by itself when the condition clears.
pub async fn acknowledge(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path(id): Path<String>,
) -> Result<Json<DataBody<AlertRecord>>, ApiError> {
    let alert = existing(&state, &scope, &id).await?;
    if alert.state != AlertState::Open {
        return Err(ApiError::conflict(format!(
            "the alert is {}; only an open alert can be acknowledged",
            alert.state.as_str()
        )));
    }
    let now = state.auth.now();
    let mut next = alert.clone();
    next.state = AlertState::Acknowledged;
    next.acknowledged_at = Some(now);
    next.acknowledged_by = Some(scope.actor().label());
    next.updated_at = now;
    let store = state.store.tenant(&scope);
    let messages = route::alert_messages(&store, &next, Event::AlertAcknowledged, now).await?;
    if !store.alerts().moved(&alert, &next, messages).await? {
        return Err(ApiError::conflict("the alert changed meanwhile; try again"));
    }
    crate::alerts::engine::announce(&state.live, &state.metrics, "acknowledged", next.clone());
    Ok(data(next))
}
