//! Notifications over REST: the tenant's channels (`/notification-channels`), the message log
//! (`/notifications`), and alert silences (`/alert-silences`).
//!
//! Channels hold people's addresses and numbers, and the log shows who was told what: both
//! need `users:manage` (the tenant admin). A webhook's signing secret is answered only by the
//! call that makes or rotates it. Silences are for whoever may acknowledge an alert
//! (`devices:command`), and readable with `devices:read`. Congregants (`/congregants`, the
//! generic document handlers) hold people's addresses too, and are the gabbai's to keep:
//! reading and writing both need `content:write`.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::devices::{DataBody, data};
use super::extract::{ValidJson, ValidQuery};
use super::reply::{Accepted, Created, NoContent, NoStore};
use super::tenant::Scope;
use crate::alerts::silence::{MAX_SILENCES, Silence, SilenceSpec};
use crate::error::{ApiError, FieldError};
use crate::notify::channel::{Channel, ChannelKind, ChannelSpec, Disabled, MAX_CHANNELS, mask, new_secret};
use crate::notify::notices::Congregant;
use crate::notify::route;
use crate::state::AppState;
use crate::store::{Delivery, DeliveryState, Document, MAX_DELIVERY_PAGE, Page, Stored, TenantScope};
use luach_schemas::TenantId;

impl super::documents::ApiDocument for Congregant {
    const NAME: &'static str = "congregant";

    fn check(&self) -> Result<(), ApiError> {
        Congregant::check(self, Utc::now().date_naive()).map_err(ApiError::validation)
    }
}

/// A channel as the API shows it.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ChannelView {
    pub id: String,
    pub tenant_id: TenantId,
    #[serde(flatten)]
    pub spec: ChannelSpec,
    /// The webhook's signing secret (`whsec_…`): only in the answer that made or rotated it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Whether the channel has a signing secret (webhooks).
    pub has_secret: bool,
    /// Set when the server stopped the channel (a webhook answering 410, or failing for good);
    /// `POST …/enable` clears it.
    pub disabled: Option<Disabled>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ChannelView {
    fn of(c: Stored<Channel>, show_secret: bool) -> Self {
        Self {
            id: c.id,
            tenant_id: c.tenant_id,
            has_secret: c.input.secret.is_some(),
            secret: c.input.secret.filter(|_| show_secret),
            spec: c.input.spec,
            disabled: c.input.disabled,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// A message as the log shows it: the recipient masked, the text left out.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct MessageView {
    pub id: String,
    pub channel_id: String,
    pub kind: String,
    /// Masked: `g***@example.org`, `+972*******67`, `https://hooks.example.org/…`.
    pub recipient: String,
    pub event: String,
    /// The alert it tells of.
    pub subject_id: Option<String>,
    pub state: DeliveryState,
    pub attempts: u32,
    /// When it goes out (pending), or went out last.
    pub next_at: DateTime<Utc>,
    /// Why it was held back when queued.
    pub hold: Option<String>,
    pub last_error: Option<String>,
    /// What the receiving end answered.
    pub receipt: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

impl From<Delivery> for MessageView {
    fn from(d: Delivery) -> Self {
        Self {
            recipient: mask(&d.kind, &d.recipient),
            id: d.id,
            channel_id: d.channel_id,
            kind: d.kind,
            event: d.event,
            subject_id: d.subject_id,
            state: d.state,
            attempts: d.attempts,
            next_at: d.next_at,
            hold: d.hold,
            last_error: d.last_error,
            receipt: d.receipt,
            created_at: d.created_at,
            updated_at: d.updated_at,
            sent_at: d.sent_at,
        }
    }
}

/// Refuses kinds this installation cannot send, and bad fields.
fn check(state: &AppState, spec: &ChannelSpec) -> Result<(), ApiError> {
    let mut errors = spec.check().err().unwrap_or_default();
    let n = &state.config.notify;
    let missing = match spec.kind {
        ChannelKind::Email => n.smtp.is_none().then_some("notify.smtp"),
        ChannelKind::Sms => n
            .twilio
            .as_ref()
            .is_none_or(|t| t.sms_from.is_none())
            .then_some("notify.twilio.sms_from"),
        ChannelKind::Whatsapp => n
            .twilio
            .as_ref()
            .is_none_or(|t| t.whatsapp_from.is_none())
            .then_some("notify.twilio.whatsapp_from"),
        ChannelKind::Webhook => None,
    };
    if let Some(key) = missing {
        errors.insert(
            0,
            FieldError::new(
                "kind",
                format!("{} is not set up on this installation ({key})", spec.kind.as_str()),
            ),
        );
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(errors))
    }
}

/// The tenant's document `id` of type `T` (a `what`), or 404.
async fn found<T: Document>(
    state: &AppState,
    scope: &TenantScope,
    id: &str,
    what: &str,
) -> Result<Stored<T>, ApiError> {
    state
        .store
        .tenant(scope)
        .get::<T>(id)
        .await?
        .ok_or_else(|| ApiError::not_found(what))
}

/// Deletes the tenant's document `id` of type `T` (a `what`): 204, or 404.
async fn remove<T: Document>(
    state: &AppState,
    scope: &TenantScope,
    id: &str,
    what: &str,
) -> Result<NoContent, ApiError> {
    if state.store.tenant(scope).delete::<T>(id).await? {
        Ok(NoContent)
    } else {
        Err(ApiError::not_found(what))
    }
}

async fn existing(state: &AppState, scope: &TenantScope, id: &str) -> Result<Stored<Channel>, ApiError> {
    found(state, scope, id, "notification channel").await
}

/// `GET /notification-channels`.
pub async fn list_channels(
    State(state): State<AppState>,
    Scope(scope): Scope,
) -> Result<Json<DataBody<Vec<ChannelView>>>, ApiError> {
    let channels = state.store.tenant(&scope).list::<Channel>(MAX_CHANNELS, None).await?;
    Ok(data(channels.into_iter().map(|c| ChannelView::of(c, false)).collect()))
}

/// `POST /notification-channels`: a webhook gets its signing secret, shown in this answer only.
pub async fn create_channel(
    State(state): State<AppState>,
    Scope(scope): Scope,
    ValidJson(spec): ValidJson<ChannelSpec>,
) -> Result<NoStore<Created<ChannelView>>, ApiError> {
    check(&state, &spec)?;
    let store = state.store.tenant(&scope);
    if store.list::<Channel>(MAX_CHANNELS, None).await?.len() >= MAX_CHANNELS as usize {
        return Err(ApiError::conflict(format!(
            "a tenant has at most {MAX_CHANNELS} notification channels; remove one first"
        )));
    }
    let secret = (spec.kind == ChannelKind::Webhook).then(new_secret);
    let channel = Channel {
        spec,
        secret,
        disabled: None,
    };
    let id = uuid::Uuid::now_v7().simple().to_string();
    let (stored, _) = store.put(&id, channel, state.auth.now()).await?;
    Ok(NoStore(Created(ChannelView::of(stored, true))))
}

/// `GET /notification-channels/{id}`.
pub async fn get_channel(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path(id): Path<String>,
) -> Result<Json<DataBody<ChannelView>>, ApiError> {
    Ok(data(ChannelView::of(existing(&state, &scope, &id).await?, false)))
}

/// `PUT /notification-channels/{id}`: a new spec; the secret stays (a channel that becomes a
/// webhook gets one, shown in this answer), and so does a server's disabling.
pub async fn replace_channel(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path(id): Path<String>,
    ValidJson(spec): ValidJson<ChannelSpec>,
) -> Result<NoStore<Json<DataBody<ChannelView>>>, ApiError> {
    check(&state, &spec)?;
    let mut channel = existing(&state, &scope, &id).await?.input;
    let fresh = spec.kind == ChannelKind::Webhook && channel.secret.is_none();
    channel.secret = match spec.kind {
        ChannelKind::Webhook => channel.secret.or_else(|| Some(new_secret())),
        _ => None,
    };
    channel.spec = spec;
    let (stored, _) = state.store.tenant(&scope).put(&id, channel, state.auth.now()).await?;
    Ok(NoStore(data(ChannelView::of(stored, fresh))))
}

/// `DELETE /notification-channels/{id}`: its queued messages fail ("the channel was removed").
pub async fn delete_channel(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path(id): Path<String>,
) -> Result<NoContent, ApiError> {
    remove::<Channel>(&state, &scope, &id, "notification channel").await
}

/// `POST /notification-channels/{id}/rotate-secret`: a new signing secret for a webhook,
/// shown in this answer only; the old one stops at once.
pub async fn rotate_secret(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path(id): Path<String>,
) -> Result<NoStore<Json<DataBody<ChannelView>>>, ApiError> {
    let mut channel = existing(&state, &scope, &id).await?.input;
    if channel.spec.kind != ChannelKind::Webhook {
        return Err(ApiError::conflict("only a webhook has a signing secret"));
    }
    channel.secret = Some(new_secret());
    let (stored, _) = state.store.tenant(&scope).put(&id, channel, state.auth.now()).await?;
    Ok(NoStore(data(ChannelView::of(stored, true))))
}

/// `POST /notification-channels/{id}/enable`: clears a server's disabling (after the
/// receiver is fixed); new messages go through again.
pub async fn enable_channel(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path(id): Path<String>,
) -> Result<Json<DataBody<ChannelView>>, ApiError> {
    let mut channel = existing(&state, &scope, &id).await?.input;
    channel.disabled = None;
    channel.spec.enabled = true;
    let (stored, _) = state.store.tenant(&scope).put(&id, channel, state.auth.now()).await?;
    Ok(data(ChannelView::of(stored, false)))
}

/// `POST /notification-channels/{id}/test`: queues a test message to every recipient (never
/// held); the log shows how it went.
pub async fn test_channel(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path(id): Path<String>,
) -> Result<Accepted<Vec<MessageView>>, ApiError> {
    let channel = existing(&state, &scope, &id).await?;
    if !channel.input.active() {
        return Err(ApiError::conflict("the channel is disabled; enable it first"));
    }
    let messages = route::test_messages(&channel, &scope.actor().label(), state.auth.now());
    state
        .store
        .tenant(&scope)
        .deliveries()
        .enqueue(messages.clone())
        .await?;
    Ok(Accepted(messages.into_iter().map(MessageView::from).collect()))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MessagesQuery {
    /// Page size (1–500; default 100).
    limit: Option<u32>,
    /// The last id of the previous page.
    after: Option<String>,
}

/// `GET /notifications`: the message log, newest first.
pub async fn messages(
    State(state): State<AppState>,
    Scope(scope): Scope,
    ValidQuery(q): ValidQuery<MessagesQuery>,
) -> Result<Json<DataBody<Page<MessageView>>>, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_DELIVERY_PAGE);
    let page = state
        .store
        .tenant(&scope)
        .deliveries()
        .list(limit, q.after.as_deref())
        .await?;
    Ok(data(page.map(MessageView::from)))
}

async fn silence(state: &AppState, scope: &TenantScope, id: &str) -> Result<Stored<Silence>, ApiError> {
    found(state, scope, id, "silence").await
}

/// `GET /alert-silences`: active and ended.
pub async fn list_silences(
    State(state): State<AppState>,
    Scope(scope): Scope,
) -> Result<Json<DataBody<Vec<Stored<Silence>>>>, ApiError> {
    Ok(data(
        state.store.tenant(&scope).list::<Silence>(MAX_SILENCES, None).await?,
    ))
}

/// `POST /alert-silences`: starts now, ends at `ends_at`.
pub async fn create_silence(
    State(state): State<AppState>,
    Scope(scope): Scope,
    ValidJson(spec): ValidJson<SilenceSpec>,
) -> Result<Created<Stored<Silence>>, ApiError> {
    let now = state.auth.now();
    spec.check(now).map_err(ApiError::validation)?;
    let store = state.store.tenant(&scope);
    if store.list::<Silence>(MAX_SILENCES, None).await?.len() >= MAX_SILENCES as usize {
        return Err(ApiError::conflict(format!(
            "a tenant keeps at most {MAX_SILENCES} silences; remove ended ones first"
        )));
    }
    let silence = Silence {
        spec,
        starts_at: now,
        created_by: scope.actor().label(),
    };
    let id = uuid::Uuid::now_v7().simple().to_string();
    let (stored, _) = store.put(&id, silence, now).await?;
    Ok(Created(stored))
}

/// `GET /alert-silences/{id}`.
pub async fn get_silence(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path(id): Path<String>,
) -> Result<Json<DataBody<Stored<Silence>>>, ApiError> {
    Ok(data(silence(&state, &scope, &id).await?))
}

/// `POST /alert-silences/{id}/expire`: ends it now (kept as history).
pub async fn expire_silence(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path(id): Path<String>,
) -> Result<Json<DataBody<Stored<Silence>>>, ApiError> {
    let mut s = silence(&state, &scope, &id).await?.input;
    let now = state.auth.now();
    if s.spec.ends_at > now {
        s.spec.ends_at = now.max(s.starts_at);
    }
    let (stored, _) = state.store.tenant(&scope).put(&id, s, now).await?;
    Ok(data(stored))
}

/// `DELETE /alert-silences/{id}`.
pub async fn delete_silence(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path(id): Path<String>,
) -> Result<NoContent, ApiError> {
    remove::<Silence>(&state, &scope, &id, "silence").await
}
