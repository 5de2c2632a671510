//! Generic REST handlers for documents with server-chosen ids (memorials, announcements):
//! list with keyset paging, create, get, replace, delete. Each type brings its validation.

use axum::Json;
use axum::extract::{Path, State};
use chrono::Utc;
use serde::Deserialize;

use super::devices::{DataBody, data};
use super::extract::{ValidJson, ValidQuery};
use super::reply::{Created, NoContent};
use super::tenant::Scope;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{Document, Stored};

/// Largest page of documents.
pub const MAX_PAGE: u32 = 500;
/// Page size when none is given.
pub const DEFAULT_PAGE: u32 = 100;

/// A document type served by these handlers.
/// (Its JSON Schema documents the API: request bodies and stored documents.)
pub trait ApiDocument: Document + schemars::JsonSchema {
    /// Singular name for messages and metrics, e.g. "memorial".
    const NAME: &'static str;
    /// Every problem of a request body, with field paths.
    fn check(&self) -> Result<(), ApiError>;
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    limit: Option<u32>,
    after: Option<String>,
}

pub async fn list<T: ApiDocument>(
    State(state): State<AppState>,
    scope: Scope,
    ValidQuery(q): ValidQuery<PageQuery>,
) -> Result<Json<DataBody<Vec<Stored<T>>>>, ApiError> {
    let limit = q.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    Ok(data(
        state
            .store
            .tenant(&scope.0)
            .list::<T>(limit, q.after.as_deref())
            .await?,
    ))
}

pub async fn create<T: ApiDocument>(
    State(state): State<AppState>,
    scope: Scope,
    ValidJson(input): ValidJson<T>,
) -> Result<Created<Stored<T>>, ApiError> {
    input.check()?;
    let id = uuid::Uuid::now_v7().simple().to_string();
    let (stored, _) = state.store.tenant(&scope.0).put(&id, input, Utc::now()).await?;
    Ok(Created(stored))
}

async fn find<T: ApiDocument>(state: &AppState, scope: &Scope, id: &str) -> Result<Stored<T>, ApiError> {
    state
        .store
        .tenant(&scope.0)
        .get::<T>(id)
        .await?
        .ok_or_else(|| ApiError::not_found(T::NAME))
}

pub async fn get<T: ApiDocument>(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
) -> Result<Json<DataBody<Stored<T>>>, ApiError> {
    Ok(data(find::<T>(&state, &scope, &id).await?))
}

/// Replaces an existing document (ids are chosen by the server on create).
pub async fn replace<T: ApiDocument>(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
    ValidJson(input): ValidJson<T>,
) -> Result<Json<DataBody<Stored<T>>>, ApiError> {
    input.check()?;
    find::<T>(&state, &scope, &id).await?;
    let (stored, _) = state.store.tenant(&scope.0).put(&id, input, Utc::now()).await?;
    Ok(data(stored))
}

pub async fn delete<T: ApiDocument>(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
) -> Result<NoContent, ApiError> {
    if state.store.tenant(&scope.0).delete::<T>(&id).await? {
        Ok(NoContent)
    } else {
        Err(ApiError::not_found(T::NAME))
    }
}
