//! The HTTP API: one router built by [`app`], used by the server and by tests alike.

mod announcements;
mod devices;
mod documents;
mod extract;
mod memorials;
mod ops;
mod synagogues;
mod tenant;

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

pub use devices::{MAX_GROUP_CHARS, MAX_NAME_CHARS, MAX_NOTES_CHARS, MAX_PING_TIMEOUT_MS, MAX_TAG_CHARS, MAX_TAGS};
pub use extract::{ValidJson, ValidQuery};

use crate::error::ApiError;
use crate::state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Builds the complete HTTP application (API, operational endpoints, dashboard).
pub fn app(state: AppState) -> Router {
    type A = crate::store::AnnouncementInput;
    type M = crate::store::MemorialInput;
    let api = Router::new()
        .route("/devices", get(devices::list).post(devices::create))
        .route(
            "/devices/{id}",
            get(devices::get).patch(devices::update).delete(devices::delete),
        )
        .route("/devices/{id}/ping", post(devices::ping))
        .route("/agent/bootstrap", get(ops::bootstrap))
        .route("/devices/{id}/announcements", get(announcements::showing))
        .route("/announcements", get(documents::list::<A>).post(documents::create::<A>))
        .route(
            "/announcements/{id}",
            get(documents::get::<A>)
                .put(documents::replace::<A>)
                .delete(documents::delete::<A>),
        )
        .route("/memorials", get(documents::list::<M>).post(documents::create::<M>))
        .route("/memorials/yahrzeits", get(memorials::yahrzeits))
        .route(
            "/memorials/{id}",
            get(documents::get::<M>)
                .put(documents::replace::<M>)
                .delete(documents::delete::<M>),
        )
        .route("/synagogues", get(synagogues::list))
        .route(
            "/synagogues/{id}",
            get(synagogues::get).put(synagogues::put).delete(synagogues::delete),
        )
        .route("/synagogues/{id}/preview", get(synagogues::preview))
        .fallback(api_not_found);

    let mut router = Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics));
    router = match state.config.http.web_dir.clone() {
        Some(dir) => router.fallback_service(crate::web::service(&dir)),
        None => router.fallback(api_not_found),
    };

    let trace = TraceLayer::new_for_http().make_span_with(|req: &Request| {
        let request_id = req
            .headers()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id)
    });

    router
        .method_not_allowed_fallback(method_not_allowed)
        // The limit sits inside `record_http` so its 413 gets the envelope and is counted.
        .layer(RequestBodyLimitLayer::new(state.config.http.body_limit_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), record_http))
        .layer(security_header("x-content-type-options", "nosniff"))
        .layer(security_header("x-frame-options", "DENY"))
        .layer(security_header("referrer-policy", "no-referrer"))
        .layer(security_header(
            "content-security-policy",
            "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'",
        ))
        .layer(trace)
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

fn security_header(name: &'static str, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(HeaderName::from_static(name), HeaderValue::from_static(value))
}

async fn api_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no_route", "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this endpoint",
    )
}

/// Counts requests by route template (never the raw path, which would explode cardinality).
async fn record_http(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let started = Instant::now();
    let mut response = next.run(req).await;
    // Bodies rejected by the size limit come back as plain text; give them our envelope.
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE
        && !response
            .headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
    {
        response = ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "request body is over the size limit",
        )
        .into_response();
    }
    let status = response.status().as_u16().to_string();
    state
        .metrics
        .http_requests
        .with_label_values(&[&route, &method, &status])
        .inc();
    state
        .metrics
        .http_duration
        .with_label_values(&[&route])
        .observe(started.elapsed().as_secs_f64());
    response
}
