//! Generic REST handlers for documents with server-chosen ids (memorials, announcements):
//! list with keyset paging, create, get, replace, delete. Each type brings its validation.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::Utc;
use serde::Deserialize;

use super::devices::{DataBody, data};
use super::extract::{ValidJson, ValidQuery};
use super::tenant::Scope;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{Document, Stored, TypedDocs};

/// Largest page of documents.
pub const MAX_PAGE: u32 = 500;
/// Page size when none is given.
pub const DEFAULT_PAGE: u32 = 100;

/// A document type served by these handlers.
pub trait ApiDocument: Document {
    /// Singular name for messages and metrics, e.g. "memorial".
    const NAME: &'static str;
    /// Every problem of a request body, with field paths.
    fn check(&self) -> Result<(), ApiError>;
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    limit: Option<u32>,
    after: Option<String>,
}

fn op<T: ApiDocument>(action: &str) -> String {
    format!("{}.{action}", T::NAME)
}

pub async fn list<T: ApiDocument>(
    State(state): State<AppState>,
    scope: Scope,
    ValidQuery(q): ValidQuery<PageQuery>,
) -> Result<Json<DataBody<Vec<Stored<T>>>>, ApiError> {
    let limit = q.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let page = state.store.list_typed::<T>(&scope.0, limit, q.after.as_deref());
    Ok(data(state.metrics.time_store(&op::<T>("list"), page).await?))
}

pub async fn create<T: ApiDocument>(
    State(state): State<AppState>,
    scope: Scope,
    ValidJson(input): ValidJson<T>,
) -> Result<impl IntoResponse, ApiError> {
    input.check()?;
    let id = uuid::Uuid::now_v7().simple().to_string();
    let put = state.store.put_typed(&scope.0, &id, input, Utc::now());
    Ok((
        StatusCode::CREATED,
        data(state.metrics.time_store(&op::<T>("put"), put).await?.0),
    ))
}

async fn find<T: ApiDocument>(state: &AppState, scope: &Scope, id: &str) -> Result<Stored<T>, ApiError> {
    let found = state.store.get_typed::<T>(&scope.0, id);
    state
        .metrics
        .time_store(&op::<T>("get"), found)
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
    let put = state.store.put_typed(&scope.0, &id, input, Utc::now());
    Ok(data(state.metrics.time_store(&op::<T>("put"), put).await?.0))
}

pub async fn delete<T: ApiDocument>(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let deleted = state.store.delete_typed::<T>(&scope.0, &id);
    if state.metrics.time_store(&op::<T>("delete"), deleted).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(T::NAME))
    }
}
