//! Typed answers: each says in its type what status, headers and body it sends, so the OpenAPI
//! document ([`super::describe`]) reads the same facts the client receives.

use axum::Json;
use axum::body::Body;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, SET_COOKIE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use luach_content::bundle::SHA256_HEADER;
use serde::Serialize;

use super::devices::DataBody;

/// 201 with `{"data": T}`.
#[derive(Debug)]
pub struct Created<T>(pub T);

impl<T: Serialize> IntoResponse for Created<T> {
    fn into_response(self) -> Response {
        (StatusCode::CREATED, Json(DataBody { data: self.0 })).into_response()
    }
}

/// 202 with `{"data": T}`: accepted, the outcome is not there yet.
#[derive(Debug)]
pub struct Accepted<T>(pub T);

impl<T: Serialize> IntoResponse for Accepted<T> {
    fn into_response(self) -> Response {
        (StatusCode::ACCEPTED, Json(DataBody { data: self.0 })).into_response()
    }
}

/// 204, no body.
#[derive(Debug)]
pub struct NoContent;

impl IntoResponse for NoContent {
    fn into_response(self) -> Response {
        StatusCode::NO_CONTENT.into_response()
    }
}

/// An answer that carries a secret: `Cache-Control: no-store`.
#[derive(Debug)]
pub struct NoStore<R>(pub R);

impl<R: IntoResponse> IntoResponse for NoStore<R> {
    fn into_response(self) -> Response {
        let mut response = self.0.into_response();
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// An answer that sets (or clears) a cookie.
#[derive(Debug)]
pub struct WithCookie<R> {
    pub cookie: HeaderValue,
    pub answer: R,
}

impl<R: IntoResponse> IntoResponse for WithCookie<R> {
    fn into_response(self) -> Response {
        let mut response = self.answer.into_response();
        response.headers_mut().insert(SET_COOKIE, self.cookie);
        response
    }
}

/// One of two answers (a request still pending, or done).
#[derive(Debug)]
pub enum Either<A, B> {
    A(A),
    B(B),
}

impl<A: IntoResponse, B: IntoResponse> IntoResponse for Either<A, B> {
    fn into_response(self) -> Response {
        match self {
            Self::A(a) => a.into_response(),
            Self::B(b) => b.into_response(),
        }
    }
}

/// A PNG image (a board preview or a screenshot); never cached by intermediaries.
#[derive(Debug)]
pub struct Png(pub Vec<u8>);

impl IntoResponse for Png {
    fn into_response(self) -> Response {
        let mut r = Response::new(Body::from(self.0));
        let h = r.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("image/png"));
        h.insert(CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
        r
    }
}

/// A content bundle as stored bytes (its hash covers them exactly), or 304 when the client
/// already has it.
#[derive(Debug)]
pub struct BundleFile {
    /// The bundle's JSON bytes, `None` for 304.
    pub bytes: Option<Vec<u8>>,
    pub sha256: String,
}

impl IntoResponse for BundleFile {
    fn into_response(self) -> Response {
        let mut response = match self.bytes {
            Some(bytes) => {
                let mut r = Response::new(Body::from(bytes));
                r.headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                r
            }
            None => StatusCode::NOT_MODIFIED.into_response(),
        };
        // Hex digests are always valid header values.
        if let (Ok(etag), Ok(sha)) = (
            HeaderValue::from_str(&format!("\"{}\"", self.sha256)),
            HeaderValue::from_str(&self.sha256),
        ) {
            let h = response.headers_mut();
            h.insert(ETAG, etag);
            h.insert(SHA256_HEADER, sha);
        }
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }
}

/// A release artifact as a file download (`Range` honoured: 206 with the part asked for).
pub struct ArtifactFile(pub Response);

impl IntoResponse for ArtifactFile {
    fn into_response(self) -> Response {
        self.0
    }
}
