//! Live events for dashboards and integrations, delivered over Socket.IO.
//!
//! Clients connect to the `/live` namespace and are put in their tenant's room
//! (`tenant:{id}`); every event goes to exactly one tenant room. With Redis configured,
//! socketioxide's Redis adapter carries each emit to the clients of every replica.

use chrono::{DateTime, Utc};
use luach_schemas::messages::Metrics as DeviceMetrics;
use luach_schemas::{DeviceId, TenantId};
use serde::Serialize;
use socketioxide::adapter::{Adapter, Emitter};
use socketioxide::extract::{SocketRef, State};
use socketioxide::{SocketIo, layer::SocketIoLayer};

use socketioxide_redis::{RedisAdapter, RedisAdapterCtr};

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
}

impl LiveEvent {
    /// The Socket.IO event name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Online { .. } => "device:online",
            Self::Offline { .. } => "device:offline",
            Self::Metrics { .. } => "device:metrics",
        }
    }

    fn tenant(&self) -> &TenantId {
        match self {
            Self::Online { tenant_id, .. } | Self::Offline { tenant_id, .. } | Self::Metrics { tenant_id, .. } => {
                tenant_id
            }
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

async fn on_connect<A: Adapter>(socket: SocketRef<A>, State(metrics): State<Metrics>) {
    // Until identity lands every client belongs to the built-in tenant.
    socket.join(tenant_room(&TenantId::builtin()));
    metrics.socketio_clients.inc();
    socket.on_disconnect(on_disconnect::<A>);
}

async fn on_disconnect<A: Adapter>(_socket: SocketRef<A>, State(metrics): State<Metrics>) {
    metrics.socketio_clients.dec();
}

impl LiveIo {
    /// Builds the Socket.IO layer; with `redis_url` the Redis adapter (RESP3) is used.
    pub async fn build(redis_url: Option<&str>, metrics: Metrics) -> Result<(LiveLayer, Self), LiveError> {
        match redis_url {
            None => {
                let (layer, io) = SocketIo::builder().with_state(metrics).build_layer();
                io.ns(NAMESPACE, on_connect::<socketioxide::adapter::LocalAdapter>);
                Ok((LiveLayer::Local(layer), Self::Local(io)))
            }
            Some(url) => {
                let url = if url.contains("protocol=") {
                    url.to_owned()
                } else if url.contains('?') {
                    format!("{url}&protocol=resp3")
                } else {
                    format!("{url}?protocol=resp3")
                };
                let client = redis::Client::open(url)?;
                let adapter = RedisAdapterCtr::new_with_redis(&client).await?;
                let (layer, io) = SocketIo::builder()
                    .with_state(metrics)
                    .with_adapter::<RedisAdapter<_>>(adapter)
                    .build_layer();
                io.ns(NAMESPACE, on_connect::<RedisAdapter<Emitter>>)
                    .await
                    .map_err(|e| LiveError::Namespace(e.to_string()))?;
                Ok((LiveLayer::Redis(layer), Self::Redis(io)))
            }
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
