//! The one error type of the HTTP edge and its stable code table.
//!
//! | status | code                | meaning                                             |
//! |--------|---------------------|-----------------------------------------------------|
//! | 400    | `malformed_json`    | body is not JSON, or not the expected content type  |
//! | 400    | `invalid_query`     | a query-string parameter is wrong                   |
//! | 400    | `invalid_header`    | an act-as header (`x-luach-tenant`, `x-luach-role`) is malformed |
//! | 401    | `unauthorized`      | no valid credentials (missing, expired, revoked)    |
//! | 401    | `invalid_credentials`| wrong email, password or second factor (one answer for all) |
//! | 401    | `totp_required`     | password right; the account's second factor is missing |
//! | 401    | `enrolment_token_invalid` | bulk enrolment token unknown, expired, revoked or used up |
//! | 403    | `forbidden`         | authenticated, but the role does not allow this     |
//! | 403    | `tenant_required`   | a tenant route called without a tenant (super admin: send `x-luach-tenant`) |
//! | 403    | `renewal_refused`   | no current, unrevoked certificate for this device and key: enrol again |
//! | 404    | `not_found`         | no such resource (in the caller's tenant)           |
//! | 404    | `no_route`          | no such endpoint                                    |
//! | 405    | `method_not_allowed`| endpoint exists, method does not                    |
//! | 409    | `conflict`          | resource already exists                             |
//! | 409    | `device_offline`    | the device has no live session                      |
//! | 413    | `payload_too_large` | body over the configured limit                      |
//! | 422    | `validation_failed` | well-formed but invalid; `fields` names each path   |
//! | 429    | `too_many_requests` | rate limit or account lockout; see `Retry-After`    |
//! | 500    | `internal`          | unexpected; details are logged, never returned      |
//! | 503    | `unavailable`       | a dependency (store, broker) is down                |
//! | 504    | `device_timeout`    | the device did not acknowledge in time              |

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One invalid field: a JSON path (`tags[2]`) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl FieldError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Checks an operator-entered one-line text: at most `max` characters, no control characters,
/// and (when `required`) not blank. Adds a [`FieldError`] at `path` when it fails.
pub fn check_text(errors: &mut Vec<FieldError>, path: &str, value: &str, required: bool, max: usize) {
    let blank = required && value.trim().is_empty();
    if blank || value.chars().count() > max || value.chars().any(char::is_control) {
        let message = if required {
            format!("must be 1–{max} printable characters")
        } else {
            format!("at most {max} printable characters")
        };
        errors.push(FieldError::new(path, message));
    }
}

/// An error answered to an HTTP client.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    fields: Vec<FieldError>,
    retry_after_secs: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    fields: &'a [FieldError],
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            fields: Vec::new(),
            retry_after_secs: None,
        }
    }

    /// 401 `unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 429 `too_many_requests` with a `Retry-After` header.
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "too many attempts; try again later",
        );
        e.retry_after_secs = Some(retry_after_secs.max(1));
        e
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 422 with per-field messages.
    pub fn validation(fields: Vec<FieldError>) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "validation_failed",
            message: "the request has invalid fields".into(),
            fields,
            retry_after_secs: None,
        }
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// An unexpected failure: the cause chain is logged, the client sees a generic 500.
    pub fn internal(error: &dyn std::error::Error) -> Self {
        let mut chain = error.to_string();
        let mut source = error.source();
        while let Some(s) = source {
            chain.push_str(": ");
            chain.push_str(&s.to_string());
            source = s.source();
        }
        tracing::error!(error = %chain, "request failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
    }

    /// 400 `invalid_query`: query-string parameters, with the path of each bad one.
    pub fn invalid_query(fields: Vec<FieldError>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_query",
            message: "the query string has invalid parameters".into(),
            fields,
            retry_after_secs: None,
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Inner {
                code: self.code,
                message: &self.message,
                fields: &self.fields,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(secs));
        }
        response
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::Conflict { what } => Self::conflict(format!("{what} already exists")),
            other => Self::internal(&other),
        }
    }
}
