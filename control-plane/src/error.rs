//! The one error type of the HTTP edge, and the table of its codes.
//!
//! Every error a client can see has an [`ErrorCode`]: a stable machine name, an HTTP status
//! and a description. [`ApiError`] is built only from a code, so no handler can invent one;
//! the error table in `docs/api.md` and the `code` enum of the OpenAPI document are generated
//! from [`ErrorCode::ALL`] (a test keeps the docs in step).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

macro_rules! error_codes {
    ($($variant:ident = ($code:literal, $status:ident, $meaning:literal),)*) => {
        /// Every error code of the API.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($variant,)*
        }

        impl ErrorCode {
            /// Every code, in the order of the table.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The stable name clients match on.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }

            /// The HTTP status this code is answered with.
            pub fn status(self) -> StatusCode {
                match self {
                    $(ErrorCode::$variant => StatusCode::$status,)*
                }
            }

            /// What the code means, for the docs.
            pub fn meaning(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $meaning,)*
                }
            }
        }
    };
}

error_codes! {
    MalformedJson = ("malformed_json", BAD_REQUEST, "the body is not well-formed JSON"),
    InvalidQuery = ("invalid_query", BAD_REQUEST, "a query-string parameter is wrong; `fields` names it"),
    InvalidHeader = ("invalid_header", BAD_REQUEST, "an act-as header (`x-luach-tenant`, `x-luach-role`) is malformed"),
    Unauthorized = ("unauthorized", UNAUTHORIZED, "no valid credentials (missing, expired or revoked)"),
    InvalidCredentials = ("invalid_credentials", UNAUTHORIZED, "wrong email, password or second-factor code (one answer for all)"),
    TotpRequired = ("totp_required", UNAUTHORIZED, "the password is right; the account's second-factor code is missing"),
    EnrolmentTokenInvalid = ("enrolment_token_invalid", UNAUTHORIZED, "the bulk enrolment token is unknown, expired, revoked or used up"),
    Forbidden = ("forbidden", FORBIDDEN, "authenticated, but the role (or the token's cap) does not allow this"),
    SessionRequired = ("session_required", FORBIDDEN, "credentials and the second factor change only in a signed-in session, never with a personal access token"),
    TenantRequired = ("tenant_required", FORBIDDEN, "a tenant route called without a tenant (a super admin sends `x-luach-tenant`)"),
    RenewalRefused = ("renewal_refused", FORBIDDEN, "no current, unrevoked certificate for this device and key, or no valid nonce: enrol again or fetch a nonce"),
    QuotaExceeded = ("quota_exceeded", FORBIDDEN, "the tenant's quota (devices or stored content) is used up; `GET /api/v1/tenant` shows it"),
    NotFound = ("not_found", NOT_FOUND, "no such resource (in the caller's tenant)"),
    NoRoute = ("no_route", NOT_FOUND, "no such endpoint"),
    MethodNotAllowed = ("method_not_allowed", METHOD_NOT_ALLOWED, "the endpoint exists, the method does not"),
    Conflict = ("conflict", CONFLICT, "the resource already exists, or changed meanwhile"),
    DeviceEnrolled = ("device_enrolled", CONFLICT, "the device id is enrolled: claim it again only with `rekey: true`, or in its own tenant"),
    DeviceOffline = ("device_offline", CONFLICT, "the device has no live session"),
    NoSynagogue = ("no_synagogue", CONFLICT, "the tenant has no synagogue profile yet; create one first"),
    PayloadTooLarge = ("payload_too_large", PAYLOAD_TOO_LARGE, "the body is over the configured limit"),
    UnsupportedMediaType = ("unsupported_media_type", UNSUPPORTED_MEDIA_TYPE, "the body's media type is not the route's: `application/json` (`image/png` for screenshot uploads)"),
    ValidationFailed = ("validation_failed", UNPROCESSABLE_ENTITY, "well-formed but invalid; `fields` names each path"),
    TooManyRequests = ("too_many_requests", TOO_MANY_REQUESTS, "a rate limit or account lockout; see `Retry-After`"),
    ApiQuotaExceeded = ("api_quota_exceeded", TOO_MANY_REQUESTS, "the tenant's API requests per minute are used up; see `Retry-After`"),
    Internal = ("internal", INTERNAL_SERVER_ERROR, "unexpected; details are logged, never returned"),
    Unavailable = ("unavailable", SERVICE_UNAVAILABLE, "a dependency (store, broker, rate limiter) is down"),
    DeviceTimeout = ("device_timeout", GATEWAY_TIMEOUT, "the device did not acknowledge in time"),
    DeviceFailed = ("device_failed", BAD_GATEWAY, "the device answered that it could not do it (or cannot on its hardware); `message` has its reason"),
}

/// The error table as Markdown (the block of `docs/api.md` between its table markers).
pub fn markdown_table() -> String {
    let mut out = String::from("| status | code | meaning |\n|---|---|---|\n");
    for code in ErrorCode::ALL {
        out.push_str(&format!(
            "| {} | `{}` | {} |\n",
            code.status().as_u16(),
            code.as_str(),
            code.meaning()
        ));
    }
    out
}

/// One invalid field: a JSON path (`tags[2]`) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
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

/// Checks that exactly one of a choice's fields is given (`given`, one flag per field); adds a
/// [`FieldError`] at `path` naming them (`names`) otherwise. True when exactly one is.
pub fn exactly_one(errors: &mut Vec<FieldError>, path: &str, given: &[bool], names: &str) -> bool {
    let ok = given.iter().filter(|g| **g).count() == 1;
    if !ok {
        errors.push(FieldError::new(path, format!("give exactly one of {names}")));
    }
    ok
}

/// An error answered to an HTTP client.
#[derive(Debug, Clone)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    fields: Vec<FieldError>,
    retry_after_secs: Option<u64>,
}

#[derive(Serialize, schemars::JsonSchema)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize, schemars::JsonSchema)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    fields: &'a [FieldError],
}

impl ApiError {
    /// An error with `code` and a human message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            fields: Vec::new(),
            retry_after_secs: None,
        }
    }

    /// `code` with per-field messages.
    pub fn with_fields(code: ErrorCode, message: impl Into<String>, fields: Vec<FieldError>) -> Self {
        Self {
            fields,
            ..Self::new(code, message)
        }
    }

    /// Adds a `Retry-After` (seconds, at least 1).
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs.max(1));
        self
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    /// 429 `too_many_requests` with a `Retry-After` header.
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        Self::new(ErrorCode::TooManyRequests, "too many attempts; try again later").retry_after(retry_after_secs)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }

    /// 422 with per-field messages.
    pub fn validation(fields: Vec<FieldError>) -> Self {
        Self::with_fields(ErrorCode::ValidationFailed, "the request has invalid fields", fields)
    }

    /// 400 `invalid_query`: query-string parameters, with the path of each bad one.
    pub fn invalid_query(fields: Vec<FieldError>) -> Self {
        Self::with_fields(
            ErrorCode::InvalidQuery,
            "the query string has invalid parameters",
            fields,
        )
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, message)
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
        Self::new(ErrorCode::Internal, "internal error")
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Inner {
                code: self.code.as_str(),
                message: &self.message,
                fields: &self.fields,
            },
        };
        let mut response = (self.code.status(), Json(body)).into_response();
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
        use crate::store::StoreError;
        match e {
            StoreError::Conflict { what } => Self::conflict(format!("{what} already exists")),
            StoreError::Contention => Self::conflict("changed by another request meanwhile; try again"),
            e @ StoreError::QuotaExceeded { .. } => Self::new(ErrorCode::QuotaExceeded, e.to_string()),
            other => Self::internal(&other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case_and_errors_are_errors() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "{} twice", code.as_str());
            assert!(code.as_str().chars().all(|c| c.is_ascii_lowercase() || c == '_'));
            assert!(code.status().is_client_error() || code.status().is_server_error());
        }
    }

    #[test]
    fn the_body_carries_the_code_and_the_status_matches() {
        let response = ApiError::new(ErrorCode::NoSynagogue, "x").into_response();
        assert_eq!(response.status(), StatusCode::CONFLICT);
    }
}
