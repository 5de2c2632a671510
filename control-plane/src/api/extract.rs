//! Request extractors whose failures use the API's error envelope, with field paths.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorCode, FieldError};

/// JSON body: 415 without `Content-Type: application/json`, 400 `malformed_json` for syntax,
/// 422 with the failing path otherwise (see [`parse`]).
#[derive(Debug)]
pub struct ValidJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + JsonSchema + 'static> FromRequest<S> for ValidJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        if !is_json {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "expected Content-Type: application/json",
            ));
        }
        let bytes = body(req, state).await?;
        parse(&bytes).map(Self)
    }
}

/// A PNG body: 415 without `Content-Type: image/png`, 413 `payload_too_large` over the
/// route's limit. Whether the bytes are a PNG is the handler's to check.
#[derive(Debug)]
pub struct PngBody(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for PngBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_png = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("image/png"));
        if !is_png {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "expected Content-Type: image/png",
            ));
        }
        axum::body::Bytes::from_request(req, state)
            .await
            .map(Self)
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(ErrorCode::PayloadTooLarge, "the image is over the size limit")
                } else {
                    ApiError::validation(vec![FieldError::new("body", e.body_text())])
                }
            })
    }
}

/// A release artifact's bytes, streamed (any media type; the size limit is
/// `releases.max_artifact_bytes`).
pub struct ArtifactBody(pub axum::body::Body);

impl<S: Send + Sync> FromRequest<S> for ArtifactBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(req.into_body()))
    }
}

/// The request body: 413 `payload_too_large` over the limit.
async fn body<S: Send + Sync>(req: Request, state: &S) -> Result<axum::body::Bytes, ApiError> {
    axum::body::Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(ErrorCode::PayloadTooLarge, "request body is over the size limit")
        } else {
            ApiError::new(ErrorCode::MalformedJson, e.body_text())
        }
    })
}

/// Reads `bytes` as a `T`: 400 `malformed_json` for syntax, 422 with the failing path when the
/// JSON types differ from `T`'s schema ([`super::shape`]) or serde refuses a value.
fn parse<T: DeserializeOwned + JsonSchema + 'static>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::new(ErrorCode::MalformedJson, e.to_string()))?;
    super::shape::check(&value, &super::shape::schema_of::<T>()).map_err(|e| ApiError::validation(vec![e]))?;
    // Read again from the bytes: serde refuses duplicate fields there, which a `Value` merges.
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(v) => {
            de.end()
                .map_err(|e| ApiError::new(ErrorCode::MalformedJson, e.to_string()))?;
            Ok(v)
        }
        Err(e) => {
            let inner = e.inner();
            if inner.is_syntax() || inner.is_eof() || inner.is_io() {
                Err(ApiError::new(ErrorCode::MalformedJson, inner.to_string()))
            } else {
                let path = e.path().to_string();
                Err(ApiError::validation(vec![FieldError {
                    path: if path == "." { String::new() } else { path },
                    message: inner.to_string(),
                }]))
            }
        }
    }
}

/// An optional JSON body: none (zero bytes) is `None`, anything else is read like
/// [`ValidJson`], so a body of blanks is malformed JSON like any other. The content type is
/// not checked, so a client may send nothing at all.
#[derive(Debug)]
pub struct OptionalJson<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned + JsonSchema + 'static> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body(req, state).await?;
        if bytes.is_empty() {
            return Ok(Self(None));
        }
        parse(&bytes).map(|v| Self(Some(v)))
    }
}

/// Query string: 400 `invalid_query` naming the parameter.
#[derive(Debug)]
pub struct ValidQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ValidQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(Self)
            .map_err(|e| ApiError::invalid_query(vec![FieldError::new(e.path().to_string(), e.inner().to_string())]))
    }
}
