//! Routes with their access rule declared beside them, checked by one layer.
//!
//! [`Routes`] registers each (method, path, handler) together with its [`Access`]; the access
//! check wraps that one method, so a route cannot exist without a rule. The table is public
//! ([`route_table`]) so tests print and compare the role × route matrix, and the OpenAPI
//! document lists the same routes, each described by its handler's types ([`super::describe`]).

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::handler::Handler;
use axum::http::{HeaderMap, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodFilter;

use super::describe::{Describe, Generators, Operation};
use super::tenant::tenant_required;
use crate::auth::{ActAs, DevicePrincipal, Permission, Principal, Role};
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// Header with which a super admin acts inside a tenant.
pub const ACT_TENANT_HEADER: &str = "x-luach-tenant";
/// Optional header lowering the role a super admin acts with (default `tenant_admin`).
pub const ACT_ROLE_HEADER: &str = "x-luach-role";

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (login, refresh, agent bootstrap).
    Public,
    /// Any authenticated caller, also while acting inside a tenant (who am I).
    Authenticated,
    /// The caller's own account and personal tokens; never while acting inside a tenant.
    OwnAccount,
    /// The caller's own password and second factor: only in a signed-in session (never with
    /// a personal access token) and never while acting inside a tenant.
    Session,
    /// Callers whose effective role grants the permission.
    Allowed(Permission),
    /// A screen with its device token (header `x-luach-device-token`); never a user.
    Device,
}

impl Access {
    pub fn label(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Authenticated => "authenticated",
            Self::OwnAccount => "own-account",
            Self::Session => "session",
            Self::Allowed(p) => p.as_str(),
            Self::Device => "device",
        }
    }

    /// Whether a caller with `role` (not acting inside a tenant) passes, for the matrix.
    pub fn allows_role(self, role: Role) -> bool {
        match self {
            Self::Public | Self::Authenticated | Self::OwnAccount | Self::Session => true,
            Self::Allowed(p) => role.permissions().contains(p),
            Self::Device => false,
        }
    }
}

/// One row of the route table.
#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub method: Method,
    /// Path under `/api/v1`, in axum syntax (`/devices/{id}`).
    pub path: &'static str,
    pub access: Access,
    /// What the handler takes and answers, read from its types (for the OpenAPI document).
    pub describe: fn(&mut Generators) -> Operation,
}

fn describe_of<H: Describe<T>, T>(g: &mut Generators) -> Operation {
    H::describe(g)
}

/// A router under construction plus its table.
pub struct Routes {
    router: Router<AppState>,
    table: Vec<RouteSpec>,
}

macro_rules! verb {
    ($name:ident, $method:ident, $filter:ident) => {
        pub fn $name<H, T>(self, path: &'static str, access: Access, handler: H) -> Self
        where
            H: Handler<T, AppState> + Describe<T>,
            T: 'static,
        {
            self.add(Method::$method, MethodFilter::$filter, path, access, handler)
        }
    };
}

impl Routes {
    pub fn new() -> Self {
        Self {
            router: Router::new(),
            table: Vec::new(),
        }
    }

    verb!(get, GET, GET);
    verb!(post, POST, POST);
    verb!(put, PUT, PUT);
    verb!(patch, PATCH, PATCH);
    verb!(delete, DELETE, DELETE);

    fn add<H, T>(mut self, method: Method, filter: MethodFilter, path: &'static str, access: Access, handler: H) -> Self
    where
        H: Handler<T, AppState> + Describe<T>,
        T: 'static,
    {
        let guarded = axum::routing::on(filter, handler).layer(middleware::from_fn(move |req: Request, next: Next| {
            authorize(access, req, next)
        }));
        self.router = self.router.route(path, guarded);
        self.table.push(RouteSpec {
            method,
            path,
            access,
            describe: describe_of::<H, T>,
        });
        self
    }

    pub fn into_parts(self) -> (Router<AppState>, Vec<RouteSpec>) {
        (self.router, self.table)
    }
}

impl Default for Routes {
    fn default() -> Self {
        Self::new()
    }
}

/// The per-route check: 401 without valid credentials, 403 without the permission.
async fn authorize(access: Access, req: Request, next: Next) -> Response {
    if access == Access::Public {
        return next.run(req).await;
    }
    let failure = req.extensions().get::<AuthFailure>().map(|f| f.0.clone());
    if access == Access::Device {
        return if req.extensions().get::<DevicePrincipal>().is_some() {
            next.run(req).await
        } else {
            failure
                .unwrap_or_else(|| ApiError::unauthorized("a device token is required"))
                .into_response()
        };
    }
    let Some(principal) = req.extensions().get::<Principal>() else {
        return failure
            .unwrap_or_else(|| ApiError::unauthorized("valid credentials are required"))
            .into_response();
    };
    let verdict = match access {
        Access::Public | Access::Authenticated => Ok(()),
        Access::Device => Err(ApiError::unauthorized("a device token is required")),
        Access::OwnAccount | Access::Session if principal.acting_as.is_some() => Err(ApiError::forbidden(
            "credentials cannot be changed while acting inside a tenant",
        )),
        Access::Session if !principal.credential.is_session() => Err(ApiError::new(
            ErrorCode::SessionRequired,
            "sign in with your password to change credentials or the second factor; personal access tokens cannot",
        )),
        Access::OwnAccount | Access::Session => Ok(()),
        Access::Allowed(p) if p.is_tenant_permission() && principal.tenant.is_none() => Err(tenant_required()),
        Access::Allowed(p) if principal.may(p) => Ok(()),
        Access::Allowed(_) => Err(ApiError::forbidden("your role does not allow this")),
    };
    if let Err(e) = verdict {
        return e.into_response();
    }
    let changes_screens = matches!(
        access,
        Access::Allowed(Permission::ContentWrite | Permission::DevicesWrite)
    ) && req.method() != Method::GET;
    let tenant = principal.tenant.clone();
    let mut response = next.run(req).await;
    if changes_screens
        && response.status().is_success()
        && let Some(tenant) = tenant
    {
        response.extensions_mut().insert(ScreensChanged(tenant));
    }
    response
}

/// Marks a response to a successful write that may change what a tenant's screens show; the
/// authentication layer passes it on to the bundle notifier.
#[derive(Debug, Clone)]
struct ScreensChanged(luach_schemas::TenantId);

/// Why the bearer credentials were refused (answered only by routes that need them).
#[derive(Debug, Clone)]
struct AuthFailure(ApiError);

pub use luach_content::bundle::DEVICE_TOKEN_HEADER;

/// Resolves `Authorization: Bearer …` (and the act-as headers) into a [`Principal`], or a
/// device token into a [`DevicePrincipal`].
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let device_token = req
        .headers()
        .get(DEVICE_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|t| t.trim().to_owned());
    if let Some(token) = device_token {
        match state.auth.authenticate_device(&token).await {
            Ok(device) => {
                req.extensions_mut().insert(device);
            }
            Err(e) => {
                req.extensions_mut().insert(AuthFailure(ApiError::from(e)));
            }
        }
        return next.run(req).await;
    }
    let bearer = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(|t| t.trim().to_owned());
    if let Some(token) = bearer {
        let request_id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let outcome = match act_as(req.headers()) {
            Ok(act) => state
                .auth
                .authenticate(&token, act, request_id)
                .await
                .map_err(ApiError::from),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(principal) => {
                if let Some(act) = &principal.acting_as {
                    let peer = req
                        .extensions()
                        .get::<ConnectInfo<std::net::SocketAddr>>()
                        .map(|c| c.0.ip().to_string());
                    tracing::info!(
                        target: "audit",
                        actor = %principal.user.id,
                        tenant = %act.tenant,
                        role = %act.role,
                        method = %req.method(),
                        path = %req.uri().path(),
                        peer,
                        "super admin acting inside a tenant"
                    );
                }
                // Every call of a tenant's users and tokens counts against its API quota.
                if let Err(e) = state.auth.admit(&principal).await {
                    return e.into_response();
                }
                req.extensions_mut().insert(principal);
                let response = next.run(req).await;
                if let Some(ScreensChanged(tenant)) = response.extensions().get::<ScreensChanged>() {
                    state.bundles.tenant_changed(tenant.clone());
                }
                return response;
            }
            Err(e) => {
                req.extensions_mut().insert(AuthFailure(e));
            }
        }
    }
    next.run(req).await
}

fn act_as(headers: &HeaderMap) -> Result<Option<ActAs>, ApiError> {
    let Some(tenant) = headers.get(ACT_TENANT_HEADER) else {
        return Ok(None);
    };
    let bad = |m: &str| ApiError::new(ErrorCode::InvalidHeader, m.to_owned());
    let tenant = tenant
        .to_str()
        .ok()
        .and_then(|t| luach_schemas::TenantId::parse(t).ok())
        .ok_or_else(|| bad("x-luach-tenant is not a tenant id"))?;
    let role = match headers.get(ACT_ROLE_HEADER) {
        None => Role::TenantAdmin,
        Some(r) => r
            .to_str()
            .ok()
            .and_then(Role::parse)
            .filter(|r| r.is_tenant_role())
            .ok_or_else(|| bad("x-luach-role must be a tenant role"))?,
    };
    Ok(Some(ActAs { tenant, role }))
}
