//! Fixed-window counters for rate limits and account lockout, in-process or in Redis.
//!
//! A counter lives in the window `floor(now / window)`; a key's window index is part of its
//! name, so counts from a past window never leak into the next and Redis keys expire by
//! themselves. Time comes from the caller (see [`super::Clock`]), which keeps both
//! implementations testable without sleeping. Redis makes limits shared by every replica.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Keys kept by the in-process limiter before windows that have passed are swept.
const SWEEP_AT: usize = 100_000;

/// A counter backend failed (Redis unreachable).
#[derive(Debug, thiserror::Error)]
#[error("rate limiter: {0}")]
pub struct LimiterError(String);

/// Where a key's current window stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub count: u64,
    /// Seconds until the window ends (at least 1).
    pub resets_in_secs: u64,
}

fn window_of(window: Duration, now: DateTime<Utc>) -> (i64, u64) {
    let len = window.as_secs().max(1) as i64;
    let t = now.timestamp();
    let index = t.div_euclid(len);
    let resets_in = ((index + 1) * len - t).max(1) as u64;
    (index, resets_in)
}

/// Fixed-window counters.
#[async_trait]
pub trait Limiter: Send + Sync + std::fmt::Debug {
    /// Adds one to `key` in its current window and returns the window.
    async fn hit(&self, key: &str, window: Duration, now: DateTime<Utc>) -> Result<Window, LimiterError>;
    /// The current window of `key` without counting.
    async fn peek(&self, key: &str, window: Duration, now: DateTime<Utc>) -> Result<Window, LimiterError>;
    /// Forgets `key`'s current window (e.g. after a successful login).
    async fn clear(&self, key: &str, window: Duration, now: DateTime<Utc>) -> Result<(), LimiterError>;
}

/// Counters in this process's memory (one replica).
#[derive(Debug, Default)]
pub struct MemoryLimiter {
    counts: Mutex<HashMap<(String, i64), u64>>,
}

impl MemoryLimiter {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<(String, i64), u64>) -> T) -> Result<T, LimiterError> {
        let mut map = self
            .counts
            .lock()
            .map_err(|_| LimiterError("counter lock poisoned".into()))?;
        Ok(f(&mut map))
    }
}

#[async_trait]
impl Limiter for MemoryLimiter {
    async fn hit(&self, key: &str, window: Duration, now: DateTime<Utc>) -> Result<Window, LimiterError> {
        let (index, resets_in_secs) = window_of(window, now);
        self.with(|map| {
            if map.len() >= SWEEP_AT {
                // Drop every window that has ended; a window is never longer than a day here.
                let horizon = now.timestamp() - 86_400;
                map.retain(|(_, i), _| *i * window.as_secs().max(1) as i64 >= horizon);
            }
            let count = map.entry((key.to_owned(), index)).or_insert(0);
            *count += 1;
            Window {
                count: *count,
                resets_in_secs,
            }
        })
    }

    async fn peek(&self, key: &str, window: Duration, now: DateTime<Utc>) -> Result<Window, LimiterError> {
        let (index, resets_in_secs) = window_of(window, now);
        self.with(|map| Window {
            count: map.get(&(key.to_owned(), index)).copied().unwrap_or(0),
            resets_in_secs,
        })
    }

    async fn clear(&self, key: &str, window: Duration, now: DateTime<Utc>) -> Result<(), LimiterError> {
        let (index, _) = window_of(window, now);
        self.with(|map| {
            map.remove(&(key.to_owned(), index));
        })
    }
}

/// Counters in Redis, shared by every replica.
pub struct RedisLimiter {
    conn: redis::aio::ConnectionManager,
}

impl std::fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisLimiter")
    }
}

impl RedisLimiter {
    pub async fn connect(url: &str) -> Result<Self, LimiterError> {
        let client = redis::Client::open(url).map_err(|e| LimiterError(e.to_string()))?;
        let conn = redis::aio::ConnectionManager::new(client)
            .await
            .map_err(|e| LimiterError(e.to_string()))?;
        Ok(Self { conn })
    }

    fn key(key: &str, index: i64) -> String {
        format!("luach:limit:{key}:{index}")
    }
}

fn redis_err(e: redis::RedisError) -> LimiterError {
    LimiterError(e.to_string())
}

#[async_trait]
impl Limiter for RedisLimiter {
    async fn hit(&self, key: &str, window: Duration, now: DateTime<Utc>) -> Result<Window, LimiterError> {
        let (index, resets_in_secs) = window_of(window, now);
        let name = Self::key(key, index);
        let mut conn = self.conn.clone();
        let (count,): (u64,) = redis::pipe()
            .atomic()
            .incr(&name, 1u64)
            .expire(&name, (window.as_secs().max(1) * 2) as i64)
            .ignore()
            .query_async(&mut conn)
            .await
            .map_err(redis_err)?;
        Ok(Window { count, resets_in_secs })
    }

    async fn peek(&self, key: &str, window: Duration, now: DateTime<Utc>) -> Result<Window, LimiterError> {
        let (index, resets_in_secs) = window_of(window, now);
        let mut conn = self.conn.clone();
        let count: Option<u64> = redis::cmd("GET")
            .arg(Self::key(key, index))
            .query_async(&mut conn)
            .await
            .map_err(redis_err)?;
        Ok(Window {
            count: count.unwrap_or(0),
            resets_in_secs,
        })
    }

    async fn clear(&self, key: &str, window: Duration, now: DateTime<Utc>) -> Result<(), LimiterError> {
        let (index, _) = window_of(window, now);
        let mut conn = self.conn.clone();
        let _: u64 = redis::cmd("DEL")
            .arg(Self::key(key, index))
            .query_async(&mut conn)
            .await
            .map_err(redis_err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[tokio::test]
    async fn counts_per_window_and_resets() -> Result<(), LimiterError> {
        let limiter = MemoryLimiter::default();
        let minute = Duration::from_secs(60);
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 10).single().expect("time");
        for expected in 1..=3 {
            assert_eq!(limiter.hit("k", minute, t0).await?.count, expected);
        }
        let w = limiter.peek("k", minute, t0).await?;
        assert_eq!((w.count, w.resets_in_secs), (3, 50));
        assert_eq!(limiter.peek("other", minute, t0).await?.count, 0);
        let next = t0 + chrono::Duration::seconds(50);
        assert_eq!(limiter.peek("k", minute, next).await?.count, 0);
        limiter.clear("k", minute, t0).await?;
        assert_eq!(limiter.peek("k", minute, t0).await?.count, 0);
        Ok(())
    }
}
