//! Live events for dashboards and integrations, delivered over Socket.IO.
//!
//! Clients connect to the `/live` namespace with `auth: {token}` (an access token or a personal
//! access token; a super admin adds `tenant`) and are put in their tenant's room
//! (`tenant:{id}`) only; a handshake without valid credentials, or from a caller who may not
//! read devices, is refused with `connect_error`. Every event goes to exactly one tenant room.
//! With Redis configured, socketioxide's Redis adapter carries each emit to the clients of
//! every replica, over our own reconnecting driver ([`crate::live_redis`]) so a Redis restart
//! does not cut replicas apart.
//!
//! A connection lives no longer than its credentials: the [`Rechecker`] checks every
//! connection of this replica again every `live.recheck_secs`, and at once the connections of
//! a user whose credentials change here (logout, password, second factor, disabled, deleted,
//! token revoked), and disconnects those whose session or token has ended.

use chrono::{DateTime, Utc};
use luach_schemas::messages::Metrics as DeviceMetrics;
use luach_schemas::{DeviceId, TenantId};
use serde::Serialize;
use socketioxide::adapter::{Adapter, Emitter};
use socketioxide::extract::{SocketRef, State, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::{SocketIo, layer::SocketIoLayer};

use socketioxide_redis::{CustomRedisAdapter, RedisAdapterConfig, RedisAdapterCtr};

use crate::live_redis::ManagedDriver;

/// The Redis adapter on our reconnecting driver.
type RedisAdapter<E> = CustomRedisAdapter<E, ManagedDriver>;

use crate::auth::{ActAs, AuthService, Permission, Role};
use crate::metrics::Metrics;

/// The Socket.IO namespace for live status.
pub const NAMESPACE: &str = "/live";

/// Something that happened to a device, as sent to clients.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LiveEvent {
    Online {
        device_id: DeviceId,
        tenant_id: TenantId,
        at: DateTime<Utc>,
        agent_version: Option<String>,
    },
    Offline {
        device_id: DeviceId,
        tenant_id: TenantId,
        at: DateTime<Utc>,
        /// `last_will`, `goodbye` or `heartbeat_timeout`.
        reason: &'static str,
    },
    Metrics {
        device_id: DeviceId,
        tenant_id: TenantId,
        at: DateTime<Utc>,
        metrics: DeviceMetrics,
    },
    /// A job's state and counts changed (`job:progress`).
    Job {
        tenant_id: TenantId,
        #[serde(flatten)]
        progress: crate::jobs::Progress,
    },
    /// One screen's execution of a job changed (`job:execution`).
    Execution {
        tenant_id: TenantId,
        #[serde(flatten)]
        execution: crate::store::Execution,
    },
    /// An alert opened, was acknowledged or resolved (`alert:update`).
    Alert {
        tenant_id: TenantId,
        alert: crate::store::AlertRecord,
    },
}

impl LiveEvent {
    /// The Socket.IO event name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Online { .. } => "device:online",
            Self::Offline { .. } => "device:offline",
            Self::Metrics { .. } => "device:metrics",
            Self::Job { .. } => "job:progress",
            Self::Execution { .. } => "job:execution",
            Self::Alert { .. } => "alert:update",
        }
    }

    fn tenant(&self) -> &TenantId {
        match self {
            Self::Online { tenant_id, .. }
            | Self::Offline { tenant_id, .. }
            | Self::Metrics { tenant_id, .. }
            | Self::Job { tenant_id, .. }
            | Self::Execution { tenant_id, .. }
            | Self::Alert { tenant_id, .. } => tenant_id,
        }
    }

    fn body(&self) -> serde_json::Value {
        // The enum tag is the event name; clients receive just the inner object.
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(mut outer)) => {
                outer.values_mut().next().map(std::mem::take).unwrap_or_default()
            }
            _ => serde_json::Value::Null,
        }
    }
}

/// Room name of a tenant.
pub fn tenant_room(tenant: &TenantId) -> String {
    format!("tenant:{tenant}")
}

type RedisIo = SocketIo<RedisAdapter<Emitter>>;

/// The Socket.IO server, with the in-process or the Redis adapter.
#[derive(Clone)]
pub enum LiveIo {
    Local(SocketIo),
    Redis(RedisIo),
}

impl std::fmt::Debug for LiveIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Local(_) => "LiveIo::Local",
            Self::Redis(_) => "LiveIo::Redis",
        })
    }
}

/// The HTTP layer that serves `/socket.io/`, for either adapter.
pub enum LiveLayer {
    Local(SocketIoLayer),
    Redis(SocketIoLayer<RedisAdapter<Emitter>>),
}

impl std::fmt::Debug for LiveLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LiveLayer")
    }
}

impl LiveLayer {
    /// Mounts Socket.IO on `router`.
    pub fn apply<S: Clone + Send + Sync + 'static>(self, router: axum::Router<S>) -> axum::Router<S> {
        match self {
            Self::Local(layer) => router.layer(layer),
            Self::Redis(layer) => router.layer(layer),
        }
    }
}

/// Errors setting up live delivery.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("socket.io namespace: {0}")]
    Namespace(String),
}

/// Why a Socket.IO handshake was refused (sent to the client as `connect_error`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(&'static str);

/// Connect middleware: authenticates the handshake and records the caller's tenant.
async fn authenticate<A: Adapter>(
    socket: SocketRef<A>,
    TryData(auth): TryData<serde_json::Value>,
    State(service): State<AuthService>,
) -> Result<(), Refused> {
    let auth = auth.unwrap_or_default();
    let token = auth
        .get("token")
        .and_then(serde_json::Value::as_str)
        .ok_or(Refused("authentication required: connect with auth: {token}"))?;
    let act_as = match auth.get("tenant").and_then(serde_json::Value::as_str) {
        Some(t) => Some(ActAs {
            tenant: TenantId::parse(t).map_err(|_| Refused("tenant is not a tenant id"))?,
            role: Role::Viewer,
        }),
        None => None,
    };
    let principal = service
        .authenticate(token, act_as, None)
        .await
        .map_err(|_| Refused("invalid credentials"))?;
    if !principal.may(Permission::DevicesRead) {
        return Err(Refused("this account may not watch devices"));
    }
    let tenant = principal.tenant.ok_or(Refused("a tenant is required"))?;
    socket.extensions.insert(tenant);
    socket.extensions.insert(LiveCredential {
        bearer: token.to_owned(),
        user_id: principal.user.id,
    });
    Ok(())
}

/// The credential a connection was opened with, checked again while it lives.
#[derive(Clone)]
struct LiveCredential {
    bearer: String,
    user_id: String,
}

async fn on_connect<A: Adapter>(socket: SocketRef<A>, State(metrics): State<Metrics>) {
    let Some(tenant) = socket.extensions.get::<TenantId>() else {
        // Unreachable: the middleware refuses handshakes without a tenant.
        let _ = socket.disconnect();
        return;
    };
    socket.join(tenant_room(&tenant));
    metrics.socketio_clients.inc();
    socket.on_disconnect(on_disconnect::<A>);
}

async fn on_disconnect<A: Adapter>(_socket: SocketRef<A>, State(metrics): State<Metrics>) {
    metrics.socketio_clients.dec();
}

impl LiveIo {
    /// Builds the Socket.IO layer; with `redis_url` the Redis adapter (RESP3) is used.
    pub async fn build(
        redis_url: Option<&str>,
        metrics: Metrics,
        auth: AuthService,
    ) -> Result<(LiveLayer, Self), LiveError> {
        match redis_url {
            None => {
                type A = socketioxide::adapter::LocalAdapter;
                let (layer, io) = SocketIo::builder().with_state(metrics).with_state(auth).build_layer();
                io.ns(NAMESPACE, on_connect::<A>.with(authenticate::<A>));
                Ok((LiveLayer::Local(layer), Self::Local(io)))
            }
            Some(url) => {
                let client = redis::Client::open(resp3(url))?;
                let driver = ManagedDriver::connect(client).await?;
                let adapter = RedisAdapterCtr::new_with_driver(driver, RedisAdapterConfig::default());
                let (layer, io) = SocketIo::builder()
                    .with_state(metrics)
                    .with_state(auth)
                    .with_adapter::<RedisAdapter<_>>(adapter)
                    .build_layer();
                type A = RedisAdapter<Emitter>;
                io.ns(NAMESPACE, on_connect::<A>.with(authenticate::<A>))
                    .await
                    .map_err(|e| LiveError::Namespace(e.to_string()))?;
                Ok((LiveLayer::Redis(layer), Self::Redis(io)))
            }
        }
    }

    /// This replica's connections of `/live` with their credentials.
    fn connections(&self) -> Vec<(LiveCredential, Box<dyn FnOnce() + Send>)> {
        fn collect<A: Adapter>(sockets: Vec<SocketRef<A>>) -> Vec<(LiveCredential, Box<dyn FnOnce() + Send>)> {
            sockets
                .into_iter()
                .filter_map(|s| {
                    let cred = s.extensions.get::<LiveCredential>()?;
                    let close: Box<dyn FnOnce() + Send> = Box::new(move || {
                        let _ = s.disconnect();
                    });
                    Some((cred, close))
                })
                .collect()
        }
        match self {
            Self::Local(io) => io.of(NAMESPACE).map(|ns| collect(ns.sockets())).unwrap_or_default(),
            Self::Redis(io) => io.of(NAMESPACE).map(|ns| collect(ns.sockets())).unwrap_or_default(),
        }
    }

    /// Sends `event` to its tenant's room. Delivery failures are logged, never fatal.
    pub async fn emit(&self, event: &LiveEvent) {
        let room = tenant_room(event.tenant());
        let body = event.body();
        let result = match self {
            Self::Local(io) => match io.of(NAMESPACE) {
                Some(ns) => ns.to(room).emit(event.name(), &body).await.map_err(|e| e.to_string()),
                None => Err("namespace missing".to_owned()),
            },
            Self::Redis(io) => match io.of(NAMESPACE) {
                Some(ns) => ns.to(room).emit(event.name(), &body).await.map_err(|e| e.to_string()),
                None => Err("namespace missing".to_owned()),
            },
        };
        if let Err(error) = result {
            tracing::warn!(%error, event = event.name(), "live event not delivered");
        }
    }
}

/// Most live events waiting for delivery; when full, new events are dropped and counted.
pub const LIVE_QUEUE: usize = 10_000;

/// Hands events to the delivery task without waiting for Socket.IO (or Redis).
#[derive(Debug, Clone)]
pub struct LiveSink {
    tx: tokio::sync::mpsc::Sender<LiveEvent>,
    metrics: Metrics,
}

impl LiveSink {
    /// Starts the delivery task; it ends when every sink is dropped.
    pub fn spawn(io: LiveIo, metrics: Metrics) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<LiveEvent>(LIVE_QUEUE);
        let task = tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                io.emit(&event).await;
            }
        });
        (Self { tx, metrics }, task)
    }

    /// Queues an event. Never waits: a full queue (clients far behind) drops the event, which
    /// `luach_live_events_dropped_total` counts; clients re-read state when they reconnect.
    pub fn send(&self, event: LiveEvent) {
        if self.tx.try_send(event).is_err() {
            self.metrics.live_events_dropped.inc();
        }
    }
}

/// Ends live connections whose credentials ended.
pub struct Rechecker {
    io: LiveIo,
    auth: AuthService,
    every: std::time::Duration,
}

impl std::fmt::Debug for Rechecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rechecker").finish_non_exhaustive()
    }
}

impl Rechecker {
    pub fn new(io: LiveIo, auth: AuthService, every: std::time::Duration) -> Self {
        Self { io, auth, every }
    }

    /// Checks the connections (all, or only `user`'s) and disconnects those no longer valid;
    /// returns how many it closed.
    async fn sweep(&self, user: Option<&str>) -> usize {
        let mut closed = 0;
        for (cred, close) in self.io.connections() {
            if user.is_some_and(|u| u != cred.user_id) {
                continue;
            }
            if !self.auth.still_valid(&cred.bearer).await {
                close();
                closed += 1;
            }
        }
        if closed > 0 {
            tracing::info!(closed, "live connections whose credentials ended were closed");
        }
        closed
    }

    /// Runs until `shutdown`.
    pub async fn run(self, shutdown: tokio_util::sync::CancellationToken) {
        let mut changes = self.auth.credential_changes();
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {
                    self.sweep(None).await;
                }
                changed = changes.recv() => match changed {
                    Ok(user) => {
                        self.sweep(Some(&user)).await;
                    }
                    // Missed some: check everyone.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        self.sweep(None).await;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }
}

/// `url` asking for RESP3 (push messages, which the reconnecting driver needs), unless it
/// names a protocol itself.
pub(crate) fn resp3(url: &str) -> String {
    if url.contains("protocol=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&protocol=resp3")
    } else {
        format!("{url}?protocol=resp3")
    }
}
