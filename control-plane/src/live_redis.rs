//! The Redis pub/sub driver under the Socket.IO Redis adapter, built on `redis`'s
//! `ConnectionManager` so that live events keep crossing replicas after Redis restarts.
//!
//! `socketioxide-redis` ships a driver on one `MultiplexedConnection`: when Redis goes away that
//! connection is gone for good, and its channel subscriptions with it, so every replica keeps
//! serving its own clients but none hears the others again until it is restarted. The adapter
//! takes any [`Driver`]; this one reconnects (exponential backoff, the manager's) and
//! re-subscribes to every channel it had (the manager's automatic resubscription, which needs
//! RESP3 push messages). Messages published while Redis is down are lost, as with any pub/sub:
//! live events are hints, and the dashboard reloads after every reconnect.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, PushInfo, PushKind, RedisError};
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use tokio::sync::mpsc;

/// Longest wait between reconnection attempts.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(10);

type Handlers = Arc<RwLock<HashMap<String, mpsc::Sender<ChanItem>>>>;

/// A [`Driver`] that survives Redis restarts. Clones share the connection and the handlers.
#[derive(Clone)]
pub struct ManagedDriver {
    handlers: Handlers,
    conn: ConnectionManager,
}

impl std::fmt::Debug for ManagedDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedDriver").finish_non_exhaustive()
    }
}

/// Hands a pub/sub message to the stream of its channel; anything else is ignored.
fn route(push: PushInfo, handlers: &Handlers) {
    if !matches!(push.kind, PushKind::Message | PushKind::SMessage) {
        return;
    }
    let mut data = push.data.into_iter();
    let (Some(channel), Some(payload)) = (data.next(), data.next()) else {
        return;
    };
    let (Ok(channel), Ok(payload)) = (
        redis::from_redis_value::<String>(channel),
        redis::from_redis_value::<Vec<u8>>(payload),
    ) else {
        tracing::warn!("unreadable redis pub/sub message ignored");
        return;
    };
    let handlers = handlers.read().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(tx) = handlers.get(&channel)
        && tx.try_send((channel, payload)).is_err()
    {
        tracing::warn!("redis pub/sub channel full or closed; message dropped");
    }
}

impl ManagedDriver {
    /// Connects to the Redis of `client` (which must speak RESP3: `?protocol=resp3`).
    pub async fn connect(client: redis::Client) -> Result<Self, RedisError> {
        let handlers: Handlers = Arc::default();
        let for_push = handlers.clone();
        let config = ConnectionManagerConfig::new()
            .set_push_sender(move |push: PushInfo| {
                route(push, &for_push);
                Ok::<(), std::convert::Infallible>(())
            })
            .set_automatic_resubscription()
            .set_max_delay(MAX_RECONNECT_DELAY);
        let conn = ConnectionManager::new_with_config(client, config).await?;
        Ok(Self { handlers, conn })
    }
}

impl Driver for ManagedDriver {
    type Error = RedisError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), Self::Error> {
        self.conn.clone().publish::<_, _, redis::Value>(chan, val).await?;
        Ok(())
    }

    async fn subscribe(&self, chan: String, size: usize) -> Result<MessageStream<ChanItem>, Self::Error> {
        let (tx, rx) = mpsc::channel(size);
        self.handlers
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(chan.clone(), tx);
        self.conn.clone().subscribe(chan.as_str()).await?;
        Ok(MessageStream::new(rx))
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), Self::Error> {
        self.handlers
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&chan);
        self.conn.clone().unsubscribe(chan).await?;
        Ok(())
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, Self::Error> {
        let (_, count): (String, u16) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(chan)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(count)
    }
}
