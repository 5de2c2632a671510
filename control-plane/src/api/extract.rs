//! Request extractors whose failures use the API's error envelope, with field paths.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorCode, FieldError};

/// JSON body: 400 `malformed_json` for syntax/content-type, 422 with the failing path otherwise.
#[derive(Debug)]
pub struct ValidJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ValidJson<T> {
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
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(ErrorCode::PayloadTooLarge, "request body is over the size limit")
            } else {
                ApiError::new(ErrorCode::MalformedJson, e.body_text())
            }
        })?;
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        match serde_path_to_error::deserialize::<_, T>(&mut de) {
            Ok(v) => {
                de.end()
                    .map_err(|e| ApiError::new(ErrorCode::MalformedJson, e.to_string()))?;
                Ok(Self(v))
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
