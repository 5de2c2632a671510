//! The HTTP API: one router built by [`app`], used by the server and by tests alike.

mod alerts;
mod announcements;
mod auth;
mod bundle;
pub mod describe;
mod devices;
mod documents;
mod enrolment;
mod extract;
mod jobs;
mod memorials;
mod notify;
mod openapi;
mod ops;
mod program;
mod queries;
mod releases;
pub mod reply;
pub mod routes;
mod screen;
mod shape;
mod synagogues;
mod telemetry;
mod tenant;
mod users;

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

pub use devices::{MAX_GROUP_CHARS, MAX_NAME_CHARS, MAX_NOTES_CHARS, MAX_PING_TIMEOUT_MS, MAX_TAG_CHARS, MAX_TAGS};
pub use extract::{OptionalJson, ValidJson, ValidQuery};
pub use routes::{Access, RouteSpec, Routes};
pub use tenant::{Caller, Client, Installation, Scope};

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Every API route with its access rule (paths relative to `/api/v1`).
pub fn routes() -> Routes {
    use crate::alerts::rule::AlertRule;
    use crate::auth::Permission::*;
    use Access::{Allowed, Authenticated, Device, OwnAccount, Public, Session};
    type A = crate::store::AnnouncementInput;
    type M = crate::store::MemorialInput;
    type L = crate::store::AliyotInput;
    type S = crate::store::ShiurInput;
    type T = crate::store::TimerInput;
    Routes::new()
        // Identity.
        .post("/auth/login", Public, auth::login)
        .post("/auth/refresh", Public, auth::refresh)
        .post("/auth/logout", Public, auth::logout)
        .get("/auth/me", Authenticated, auth::me)
        .post("/auth/password", Session, auth::change_password)
        .get("/auth/tokens", OwnAccount, auth::list_tokens)
        .post("/auth/tokens", OwnAccount, auth::create_token)
        .delete("/auth/tokens/{id}", OwnAccount, auth::revoke_token)
        .post("/auth/totp/setup", Session, auth::totp_setup)
        .post("/auth/totp/confirm", Session, auth::totp_confirm)
        .post("/auth/totp/disable", Session, auth::totp_disable)
        .get("/users", Allowed(UsersManage), users::list)
        .post("/users", Allowed(UsersManage), users::create)
        .get("/users/{id}", Allowed(UsersManage), users::get)
        .patch("/users/{id}", Allowed(UsersManage), users::update)
        .delete("/users/{id}", Allowed(UsersManage), users::delete)
        .get("/audit", Allowed(UsersManage), users::audit)
        .get("/tenant", Allowed(UsersManage), users::own_tenant)
        .get("/tenants", Allowed(TenantsManage), users::list_tenants)
        .post("/tenants", Allowed(TenantsManage), users::create_tenant)
        .get("/tenants/{id}", Allowed(TenantsManage), users::get_tenant)
        .post("/tenants/{id}/users", Allowed(TenantsManage), users::create_tenant_user)
        .put("/tenants/{id}/quota", Allowed(TenantsManage), users::set_quota)
        // Devices.
        .get("/openapi.json", Public, openapi::serve)
        .get("/agent/bootstrap", Public, ops::bootstrap)
        .get("/agent/bundle", Device, bundle::own)
        .get("/devices", Allowed(DevicesRead), devices::list)
        .post("/devices", Allowed(DevicesWrite), devices::create)
        .get("/devices/{id}", Allowed(DevicesRead), devices::get)
        .patch("/devices/{id}", Allowed(DevicesWrite), devices::update)
        .delete("/devices/{id}", Allowed(DevicesWrite), devices::delete)
        .post("/devices/{id}/ping", Allowed(DevicesCommand), devices::ping)
        .post("/devices/{id}/commands", Allowed(DevicesCommand), screen::command)
        .get("/devices/{id}/commands", Allowed(DevicesRead), screen::history)
        .post("/devices/{id}/screenshots", Allowed(DevicesCommand), screen::take)
        .get("/devices/{id}/screenshots", Allowed(DevicesRead), screen::list)
        .get("/devices/{id}/telemetry", Allowed(DevicesRead), telemetry::records)
        .get(
            "/devices/{id}/telemetry/streams",
            Allowed(DevicesRead),
            telemetry::streams,
        )
        .get(
            "/devices/{id}/metrics/{metric}",
            Allowed(DevicesRead),
            telemetry::series,
        )
        .get("/devices/{id}/screenshots/{shot}", Allowed(DevicesRead), screen::image)
        .delete(
            "/devices/{id}/screenshots/{shot}",
            Allowed(DevicesCommand),
            screen::delete,
        )
        .put("/agent/screenshots/{shot}", Device, screen::upload)
        // Jobs: commands for many screens, kept until every screen answered.
        .post("/jobs", Allowed(DevicesCommand), jobs::create)
        .get("/jobs", Allowed(DevicesRead), jobs::list)
        .get("/jobs/{id}", Allowed(DevicesRead), jobs::get)
        .get("/jobs/{id}/executions", Allowed(DevicesRead), jobs::executions)
        .post("/jobs/{id}/pause", Allowed(DevicesCommand), jobs::pause)
        .post("/jobs/{id}/resume", Allowed(DevicesCommand), jobs::resume)
        .post("/jobs/{id}/cancel", Allowed(DevicesCommand), jobs::cancel)
        // Signed agent releases: the installation's registry, and downloads for screens.
        .post("/releases", Allowed(ReleasesManage), releases::create)
        .get("/releases", Allowed(ReleasesRead), releases::list)
        .get("/releases/{id}", Allowed(ReleasesRead), releases::get)
        .delete("/releases/{id}", Allowed(ReleasesManage), releases::delete)
        .put(
            "/releases/{id}/artifact",
            Allowed(ReleasesManage),
            releases::put_artifact,
        )
        .get("/agent/releases/{id}/artifact", Device, releases::download)
        // Enrolment and device certificates.
        .post("/enrolment/requests", Public, enrolment::request)
        .get("/enrolment/requests/{device_id}", Public, enrolment::poll)
        .post("/enrolment/claims", Allowed(DevicesWrite), enrolment::claim)
        .post("/enrolment/claims/preview", Allowed(DevicesWrite), enrolment::preview)
        .get("/enrolment/tokens", Allowed(DevicesWrite), enrolment::list_tokens)
        .post("/enrolment/tokens", Allowed(DevicesWrite), enrolment::create_token)
        .delete("/enrolment/tokens/{id}", Allowed(DevicesWrite), enrolment::revoke_token)
        .get(
            "/devices/{id}/certificate",
            Allowed(DevicesRead),
            enrolment::certificate,
        )
        .post("/devices/{id}/certificate", Public, enrolment::renew)
        .post("/devices/{id}/certificate/nonce", Public, enrolment::nonce)
        .get(
            "/devices/{id}/certificates",
            Allowed(DevicesRead),
            enrolment::certificates,
        )
        .post("/devices/{id}/revoke", Allowed(DevicesWrite), enrolment::revoke)
        .get(
            "/devices/{id}/announcements",
            Allowed(ContentRead),
            announcements::showing,
        )
        .get("/devices/{id}/bundle", Allowed(ContentRead), bundle::get)
        .get("/devices/{id}/preview", Allowed(ContentRead), bundle::preview)
        .get("/devices/{id}/preview.png", Allowed(ContentRead), bundle::preview_png)
        // Content.
        .documents::<A>("/announcements", "/announcements/{id}")
        .documents::<M>("/memorials", "/memorials/{id}")
        .get("/memorials/yahrzeits", Allowed(ContentRead), memorials::yahrzeits)
        .documents::<L>("/aliyot", "/aliyot/{id}")
        .documents::<S>("/shiurim", "/shiurim/{id}")
        .documents::<T>("/timers", "/timers/{id}")
        // People who asked for reminders: addresses, so only for those who write content.
        .documents_as::<crate::notify::notices::Congregant>(
            "/congregants",
            "/congregants/{id}",
            ContentWrite,
            ContentWrite,
        )
        // Fleet.
        .documents_as::<crate::store::SavedQueryInput>("/queries", "/queries/{id}", DevicesRead, DevicesWrite)
        // Alerts: rules (documents; creating one checks the tenant's limit) and their alerts.
        .get("/alert-rules", Allowed(DevicesRead), documents::list::<AlertRule>)
        .post("/alert-rules", Allowed(DevicesWrite), alerts::create_rule)
        .post("/alert-rules/defaults", Allowed(DevicesWrite), alerts::restore_defaults)
        .get("/alert-rules/{id}", Allowed(DevicesRead), documents::get::<AlertRule>)
        .put(
            "/alert-rules/{id}",
            Allowed(DevicesWrite),
            documents::replace::<AlertRule>,
        )
        .delete(
            "/alert-rules/{id}",
            Allowed(DevicesWrite),
            documents::delete::<AlertRule>,
        )
        .get("/alerts", Allowed(DevicesRead), alerts::list)
        .get("/alerts/{id}", Allowed(DevicesRead), alerts::get)
        .post("/alerts/{id}/acknowledge", Allowed(DevicesCommand), alerts::acknowledge)
        .get("/alert-silences", Allowed(DevicesRead), notify::list_silences)
        .post("/alert-silences", Allowed(DevicesCommand), notify::create_silence)
        .get("/alert-silences/{id}", Allowed(DevicesRead), notify::get_silence)
        .post(
            "/alert-silences/{id}/expire",
            Allowed(DevicesCommand),
            notify::expire_silence,
        )
        .delete("/alert-silences/{id}", Allowed(DevicesCommand), notify::delete_silence)
        // Notifications: channels hold people's addresses; the log shows who was told what.
        .get("/notification-channels", Allowed(UsersManage), notify::list_channels)
        .post("/notification-channels", Allowed(UsersManage), notify::create_channel)
        .get("/notification-channels/{id}", Allowed(UsersManage), notify::get_channel)
        .put(
            "/notification-channels/{id}",
            Allowed(UsersManage),
            notify::replace_channel,
        )
        .delete(
            "/notification-channels/{id}",
            Allowed(UsersManage),
            notify::delete_channel,
        )
        .post(
            "/notification-channels/{id}/rotate-secret",
            Allowed(UsersManage),
            notify::rotate_secret,
        )
        .post(
            "/notification-channels/{id}/enable",
            Allowed(UsersManage),
            notify::enable_channel,
        )
        .post(
            "/notification-channels/{id}/test",
            Allowed(UsersManage),
            notify::test_channel,
        )
        .get("/notifications", Allowed(UsersManage), notify::messages)
        .get("/synagogues", Allowed(ContentRead), synagogues::list)
        .get("/synagogues/{id}", Allowed(ContentRead), synagogues::get)
        .put("/synagogues/{id}", Allowed(ContentWrite), synagogues::put)
        .delete("/synagogues/{id}", Allowed(ContentWrite), synagogues::delete)
        .get("/synagogues/{id}/preview", Allowed(ContentRead), synagogues::preview)
        .get(
            "/synagogues/{id}/preview.png",
            Allowed(ContentRead),
            bundle::synagogue_png,
        )
        .get(
            "/synagogues/{id}/holiday-times",
            Allowed(ContentRead),
            synagogues::holiday_times,
        )
}

/// The five routes of a document collection served by the generic handlers: list and create
/// on `collection`, get, replace and delete on `item`; reading needs `content:read`, writing
/// `content:write` (unless given others).
trait DocumentRoutes {
    fn documents<T: documents::ApiDocument>(self, collection: &'static str, item: &'static str) -> Self;
    /// [`DocumentRoutes::documents`] with other permissions for reading and writing.
    fn documents_as<T: documents::ApiDocument>(
        self,
        collection: &'static str,
        item: &'static str,
        read: crate::auth::Permission,
        write: crate::auth::Permission,
    ) -> Self;
}

impl DocumentRoutes for Routes {
    fn documents<T: documents::ApiDocument>(self, collection: &'static str, item: &'static str) -> Self {
        use crate::auth::Permission::{ContentRead, ContentWrite};
        self.documents_as::<T>(collection, item, ContentRead, ContentWrite)
    }

    fn documents_as<T: documents::ApiDocument>(
        self,
        collection: &'static str,
        item: &'static str,
        read: crate::auth::Permission,
        write: crate::auth::Permission,
    ) -> Self {
        self.get(collection, Access::Allowed(read), documents::list::<T>)
            .post(collection, Access::Allowed(write), documents::create::<T>)
            .get(item, Access::Allowed(read), documents::get::<T>)
            .put(item, Access::Allowed(write), documents::replace::<T>)
            .delete(item, Access::Allowed(write), documents::delete::<T>)
    }
}

/// The route table: method, path and access rule of every API route.
pub fn route_table() -> Vec<RouteSpec> {
    routes().into_parts().1
}

/// Builds the complete HTTP application (API, operational endpoints, dashboard).
pub fn app(state: AppState) -> Router {
    let (api, _) = routes().into_parts();
    let api = api
        .fallback(api_not_found)
        .layer(middleware::from_fn_with_state(state.clone(), routes::authenticate));

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

    let router = router.method_not_allowed_fallback(method_not_allowed);
    let router = match cors(&state.config.http.cors_origins) {
        Some(layer) => router.layer(layer),
        None => router,
    };
    router
        // The limit sits inside `record_http` so its 413 gets the envelope and is counted.
        .layer(middleware::from_fn_with_state(state.clone(), limit_body))
        .layer(middleware::from_fn_with_state(state.clone(), record_http))
        .layer(security_header("x-content-type-options", "nosniff"))
        .layer(security_header("x-frame-options", "DENY"))
        .layer(security_header("referrer-policy", "no-referrer"))
        .layer(security_header(
            "content-security-policy",
            "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: blob:; style-src 'self'; frame-ancestors 'none'",
        ))
        .layer(trace)
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

/// CORS for the configured origins only (credentials allowed, so never a wildcard).
fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{Method, header};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let list: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(list))
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                REQUEST_ID,
                HeaderName::from_static(routes::ACT_TENANT_HEADER),
                HeaderName::from_static(routes::ACT_ROLE_HEADER),
            ])
            .expose_headers([REQUEST_ID, header::RETRY_AFTER])
            .allow_credentials(true)
            .max_age(std::time::Duration::from_secs(600)),
    )
}

fn security_header(name: &'static str, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(HeaderName::from_static(name), HeaderValue::from_static(value))
}

async fn api_not_found() -> ApiError {
    ApiError::new(ErrorCode::NoRoute, "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(ErrorCode::MethodNotAllowed, "method not allowed on this endpoint")
}

/// The method as a metric label: the methods the API serves, anything else `other` (so no
/// client can add label values at will).
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts requests by route template (never the raw path, which would explode cardinality).
/// Where screens upload screenshots; its bodies may be larger than the API's other bodies.
pub(crate) const SCREENSHOT_UPLOADS: &str = "/api/v1/agent/screenshots/";

/// Caps request bodies: `screenshots.max_bytes` for screenshot uploads,
/// `releases.max_artifact_bytes` for release artifacts, `http.body_limit_bytes` for everything
/// else. A declared length over the limit is refused at once; a body that grows
/// past it fails when read (both 413).
async fn limit_body(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let limit = if path.starts_with(SCREENSHOT_UPLOADS) {
        state.config.screenshots.max_bytes
    } else if path.starts_with("/api/v1/releases/") && path.ends_with("/artifact") {
        usize::try_from(state.config.releases.max_artifact_bytes).unwrap_or(usize::MAX)
    } else {
        state.config.http.body_limit_bytes
    };
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return ApiError::new(ErrorCode::PayloadTooLarge, "request body is over the size limit").into_response();
    }
    // Axum's body extractors answer 413 when this limit cuts the body short.
    next.run(req.map(|body| axum::body::Body::new(http_body_util::Limited::new(body, limit))))
        .await
}

async fn record_http(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(req.method());
    let started = Instant::now();
    let mut response = next.run(req).await;
    // Bodies rejected by the size limit come back as plain text; give them our envelope.
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE
        && !response
            .headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
    {
        response = ApiError::new(ErrorCode::PayloadTooLarge, "request body is over the size limit").into_response();
    }
    let status = response.status().as_u16().to_string();
    state
        .metrics
        .http_requests
        .with_label_values(&[route.as_str(), method, status.as_str()])
        .inc();
    state
        .metrics
        .http_duration
        .with_label_values(&[&route])
        .observe(started.elapsed().as_secs_f64());
    response
}
