//! `/users` (a tenant's accounts, for its admins) and `/tenants` (the installation, for super
//! admins).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use luach_schemas::TenantId;
use serde::Deserialize;

use super::ValidJson;
use super::auth::UserView;
use super::devices::{DataBody, data};
use super::tenant::{Caller, Scope};
use crate::auth::{NewUser, Role};
use crate::error::{ApiError, FieldError, check_text};
use crate::state::AppState;
use crate::store::{Tenant, User};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    email: String,
    #[serde(default)]
    name: String,
    role: Role,
    password: String,
}

async fn create_in(
    state: &AppState,
    tenant: TenantId,
    req: CreateUser,
) -> Result<(StatusCode, Json<DataBody<UserView>>), ApiError> {
    if !req.role.is_tenant_role() {
        return Err(ApiError::validation(vec![FieldError::new(
            "role",
            "must be tenant_admin, gabbai, operator or viewer",
        )]));
    }
    let user = state
        .auth
        .create_user(NewUser {
            email: req.email,
            name: req.name,
            role: req.role,
            tenant_id: Some(tenant),
            password: req.password,
        })
        .await?;
    Ok((StatusCode::CREATED, data((&user).into())))
}

pub async fn list(
    State(state): State<AppState>,
    Scope(scope): Scope,
) -> Result<Json<DataBody<Vec<UserView>>>, ApiError> {
    let users = state.store.list_users(&scope).await?;
    Ok(data(users.iter().map(UserView::from).collect()))
}

pub async fn create(
    State(state): State<AppState>,
    Scope(scope): Scope,
    ValidJson(req): ValidJson<CreateUser>,
) -> Result<(StatusCode, Json<DataBody<UserView>>), ApiError> {
    create_in(&state, scope.tenant().clone(), req).await
}

/// A user of the scope's tenant; users of other tenants are "not found", exactly like
/// missing ones.
async fn find(state: &AppState, scope: &crate::store::TenantScope, id: &str) -> Result<User, ApiError> {
    match state.store.user_by_id(id).await? {
        Some(u) if u.tenant_id.as_ref() == Some(scope.tenant()) => Ok(u),
        _ => Err(ApiError::not_found("user")),
    }
}

pub async fn get(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path(id): Path<String>,
) -> Result<Json<DataBody<UserView>>, ApiError> {
    Ok(data((&find(&state, &scope, &id).await?).into()))
}

#[derive(Debug, Deserialize)]
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
    state.store.save_user(&user).await?;
    Ok(data((&user).into()))
}

pub async fn delete(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if id == caller.user.id {
        return Err(ApiError::validation(vec![FieldError::new(
            "id",
            "you cannot delete yourself",
        )]));
    }
    if state.store.delete_user(&scope, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("user"))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    id: String,
    name: String,
}

pub async fn list_tenants(State(state): State<AppState>) -> Result<Json<DataBody<Vec<Tenant>>>, ApiError> {
    Ok(data(state.store.list_tenants().await?))
}

pub async fn create_tenant(
    State(state): State<AppState>,
    ValidJson(req): ValidJson<CreateTenant>,
) -> Result<(StatusCode, Json<DataBody<Tenant>>), ApiError> {
    let mut errors = Vec::new();
    let id = TenantId::parse(&req.id).map_err(|e| errors.push(FieldError::new("id", e.to_string())));
    check_text(&mut errors, "name", &req.name, true, 200);
    let (Ok(id), true) = (id, errors.is_empty()) else {
        return Err(ApiError::validation(errors));
    };
    let tenant = Tenant {
        id,
        name: req.name,
        created_at: Utc::now(),
    };
    state.store.create_tenant(&tenant).await?;
    Ok((StatusCode::CREATED, data(tenant)))
}

fn tenant_id(raw: &str) -> Result<TenantId, ApiError> {
    TenantId::parse(raw).map_err(|_| ApiError::not_found("tenant"))
}

pub async fn get_tenant(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DataBody<Tenant>>, ApiError> {
    state
        .store
        .get_tenant(&tenant_id(&id)?)
        .await?
        .map(data)
        .ok_or_else(|| ApiError::not_found("tenant"))
}

/// A super admin creates a tenant's users (typically its first `tenant_admin`).
pub async fn create_tenant_user(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ValidJson(req): ValidJson<CreateUser>,
) -> Result<(StatusCode, Json<DataBody<UserView>>), ApiError> {
    let id = tenant_id(&id)?;
    if state.store.get_tenant(&id).await?.is_none() {
        return Err(ApiError::not_found("tenant"));
    }
    create_in(&state, id, req).await
}

#[derive(Debug, Deserialize)]
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
) -> Result<Json<DataBody<Vec<crate::audit::AuditRecord>>>, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    let records = state
        .store
        .audit_records(scope.tenant().as_str(), q.after.unwrap_or(0).max(0), Some(limit))
        .await?;
    Ok(data(records))
}
