//! `/users` (a tenant's accounts, for its admins), `/tenant` (the caller's tenant and its
//! quota) and `/tenants` (the installation, for super admins).

use axum::Json;
use axum::extract::{Path, State};
use chrono::Utc;
use luach_schemas::TenantId;
use serde::{Deserialize, Serialize};

use super::ValidJson;
use super::auth::UserView;
use super::devices::{DataBody, data};
use super::reply::{Created, NoContent};
use super::tenant::{Caller, Installation, Scope};
use crate::auth::{Authority, NewUser, Role};
use crate::error::{ApiError, FieldError, check_text};
use crate::state::AppState;
use crate::store::{Quota, Tenant, Usage, User};

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    email: String,
    #[serde(default)]
    name: String,
    role: Role,
    password: String,
}

fn tenant_role(role: Role) -> Result<(), ApiError> {
    if role.is_tenant_role() {
        Ok(())
    } else {
        Err(ApiError::validation(vec![FieldError::new(
            "role",
            "must be tenant_admin, gabbai, operator or viewer",
        )]))
    }
}

fn new_user(req: CreateUser, tenant: TenantId) -> NewUser {
    NewUser {
        email: req.email,
        name: req.name,
        role: req.role,
        tenant_id: Some(tenant),
        password: req.password,
    }
}

pub async fn list(
    State(state): State<AppState>,
    Scope(scope): Scope,
) -> Result<Json<DataBody<Vec<UserView>>>, ApiError> {
    let users = state.store.tenant(&scope).users().await?;
    Ok(data(users.iter().map(UserView::from).collect()))
}

pub async fn create(
    State(state): State<AppState>,
    Scope(scope): Scope,
    ValidJson(req): ValidJson<CreateUser>,
) -> Result<Created<UserView>, ApiError> {
    tenant_role(req.role)?;
    let tenant = scope.tenant().clone();
    let user = state
        .auth
        .create_user(Authority::Tenant(&scope), new_user(req, tenant))
        .await?;
    Ok(Created((&user).into()))
}

/// A user of the scope's tenant; users of other tenants are "not found", exactly like
/// missing ones.
async fn find(state: &AppState, scope: &crate::store::TenantScope, id: &str) -> Result<User, ApiError> {
    state
        .store
        .tenant(scope)
        .user(id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))
}

pub async fn get(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path(id): Path<String>,
) -> Result<Json<DataBody<UserView>>, ApiError> {
    Ok(data((&find(&state, &scope, &id).await?).into()))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    role: Option<Role>,
    #[serde(default)]
    disabled: Option<bool>,
}

pub async fn update(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ValidJson(req): ValidJson<UpdateUser>,
) -> Result<Json<DataBody<UserView>>, ApiError> {
    let mut user = find(&state, &scope, &id).await?;
    let mut errors = Vec::new();
    if let Some(name) = &req.name {
        check_text(&mut errors, "name", name, false, 200);
    }
    if req.role.is_some_and(|r| !r.is_tenant_role()) {
        errors.push(FieldError::new(
            "role",
            "must be tenant_admin, gabbai, operator or viewer",
        ));
    }
    if user.id == caller.user.id && (req.role.is_some_and(|r| r != user.role) || req.disabled == Some(true)) {
        errors.push(FieldError::new("role", "you cannot demote or disable yourself"));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let newly_disabled = req.disabled == Some(true) && !user.disabled;
    let role_changed = req.role.is_some_and(|r| r != user.role);
    if let Some(name) = req.name {
        user.name = name;
    }
    if let Some(role) = req.role {
        user.role = role;
    }
    if let Some(disabled) = req.disabled {
        user.disabled = disabled;
    }
    user.updated_at = Utc::now();
    if !state.store.tenant(&scope).save_user(&user).await? {
        return Err(ApiError::not_found("user"));
    }
    if newly_disabled {
        state.auth.user_disabled(&user, scope.actor()).await?;
    } else if role_changed {
        // Live connections re-check what the user may watch.
        state.auth.credentials_changed(&user.id);
    }
    Ok(data((&user).into()))
}

pub async fn delete(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<NoContent, ApiError> {
    if id == caller.user.id {
        return Err(ApiError::validation(vec![FieldError::new(
            "id",
            "you cannot delete yourself",
        )]));
    }
    if state.store.tenant(&scope).delete_user(&id).await? {
        state.auth.credentials_changed(&id);
        Ok(NoContent)
    } else {
        Err(ApiError::not_found("user"))
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    id: String,
    name: String,
}

pub async fn list_tenants(
    State(state): State<AppState>,
    Installation(scope): Installation,
) -> Result<Json<DataBody<Vec<Tenant>>>, ApiError> {
    Ok(data(state.store.installation(&scope).tenants().await?))
}

pub async fn create_tenant(
    State(state): State<AppState>,
    Installation(scope): Installation,
    ValidJson(req): ValidJson<CreateTenant>,
) -> Result<Created<Tenant>, ApiError> {
    let mut errors = Vec::new();
    let id = TenantId::parse(&req.id).map_err(|e| errors.push(FieldError::new("id", e.to_string())));
    check_text(&mut errors, "name", &req.name, true, 200);
    let (Ok(id), true) = (id, errors.is_empty()) else {
        return Err(ApiError::validation(errors));
    };
    let installation = state.store.installation(&scope);
    let tenant = installation.create_tenant(id, req.name, Utc::now()).await?;
    installation
        .seed(&tenant.id, crate::alerts::rule::AlertRule::defaults(), Utc::now())
        .await?;
    Ok(Created(tenant))
}

fn tenant_id(raw: &str) -> Result<TenantId, ApiError> {
    TenantId::parse(raw).map_err(|_| ApiError::not_found("tenant"))
}

pub async fn get_tenant(
    State(state): State<AppState>,
    Installation(scope): Installation,
    Path(id): Path<String>,
) -> Result<Json<DataBody<Tenant>>, ApiError> {
    state
        .store
        .installation(&scope)
        .tenant(&tenant_id(&id)?)
        .await?
        .map(data)
        .ok_or_else(|| ApiError::not_found("tenant"))
}

/// A super admin creates a tenant's users (typically its first `tenant_admin`).
pub async fn create_tenant_user(
    State(state): State<AppState>,
    Installation(scope): Installation,
    Path(id): Path<String>,
    ValidJson(req): ValidJson<CreateUser>,
) -> Result<Created<UserView>, ApiError> {
    let id = tenant_id(&id)?;
    if state.store.installation(&scope).tenant(&id).await?.is_none() {
        return Err(ApiError::not_found("tenant"));
    }
    tenant_role(req.role)?;
    let user = state
        .auth
        .create_user(Authority::Installation(&scope), new_user(req, id))
        .await?;
    Ok(Created((&user).into()))
}

/// A tenant's quota as the API shows it: the limits in effect, which of them the tenant sets
/// itself, and what it uses.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct QuotaView {
    tenant_id: TenantId,
    /// The limits in effect (absent: unlimited).
    limits: Quota,
    /// The limits set for this tenant (the rest follow the installation's defaults).
    own: Quota,
    usage: Option<Usage>,
}

/// `PUT /tenants/{id}/quota`: a super admin sets a tenant's quota (absent fields follow the
/// installation's defaults).
pub async fn set_quota(
    State(state): State<AppState>,
    Installation(scope): Installation,
    Path(id): Path<String>,
    ValidJson(quota): ValidJson<Quota>,
) -> Result<Json<DataBody<QuotaView>>, ApiError> {
    let installation = state.store.installation(&scope);
    let tenant = installation
        .set_quota(&tenant_id(&id)?, quota, Utc::now())
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    state.auth.quota_changed(&tenant.id);
    Ok(data(QuotaView {
        limits: tenant.quota.or(installation.quota_defaults()),
        own: tenant.quota,
        tenant_id: tenant.id,
        usage: None,
    }))
}

/// The caller's tenant as its users see it.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct TenantView {
    id: TenantId,
    name: String,
    quota: QuotaView,
}

/// `GET /tenant`: the caller's tenant, its quota and its usage.
pub async fn own_tenant(
    State(state): State<AppState>,
    Scope(scope): Scope,
) -> Result<Json<DataBody<TenantView>>, ApiError> {
    let store = state.store.tenant(&scope);
    let tenant = store.record().await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    let limits = store.quota().await?;
    let usage = store.usage().await?;
    Ok(data(TenantView {
        quota: QuotaView {
            tenant_id: tenant.id.clone(),
            limits,
            own: tenant.quota,
            usage: Some(usage),
        },
        id: tenant.id,
        name: tenant.name,
    }))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Records after this sequence number (default 0: from the start).
    after: Option<i64>,
    /// Page size 1–500 (default 100).
    limit: Option<u32>,
}

/// The tenant's audit log, oldest first.
pub async fn audit(
    State(state): State<AppState>,
    Scope(scope): Scope,
    super::ValidQuery(q): super::ValidQuery<AuditQuery>,
) -> Result<Json<DataBody<Vec<crate::chain::AuditRecord>>>, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    let records = state
        .store
        .tenant(&scope)
        .audit(q.after.unwrap_or(0).max(0), limit)
        .await?;
    Ok(data(records))
}
