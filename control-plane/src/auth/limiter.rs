//! Fixed-window counters for rate limits and account lockout, in-process or in Redis.
//!
//! A counter lives in the window `floor(now / window)`; counts from a past window never leak
//! into the next. Keys expire with their window: Redis by `EXPIRE`, the in-process limiter by
//! sweeping ended windows (and it holds at most [`MEMORY_MAX_KEYS`] keys). Time comes from the caller (see [`super::Clock`]), which keeps both
//! implementations testable without sleeping. Redis makes limits shared by every replica.
//!
//! While Redis cannot be reached, [`RedisLimiter`] counts in this process instead (each
//! replica then limits on its own, which still bounds a client) and goes back to Redis by
//! itself when it answers again: a Redis restart never takes the API down.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Most keys the in-process limiter holds; past it (after dropping ended windows) new keys
/// are refused as over their limit, so a flood of fresh addresses cannot exhaust memory.
pub const MEMORY_MAX_KEYS: usize = 1_000_000;

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

/// One key's current window.
#[derive(Debug, Clone, Copy)]
struct Slot {
    index: i64,
    /// When the window ends (seconds since the epoch); after it the slot is dropped.
    ends_at: i64,
    count: u64,
}

#[derive(Debug)]
struct Slots {
    map: HashMap<String, Slot>,
    /// Sweep ended windows when the map grows past this (doubling, so sweeps stay amortised)…
    sweep_at: usize,
    /// …or a minute after the last sweep.
    swept: i64,
}

/// Counters in this process's memory (one replica). Keys expire with their window.
#[derive(Debug)]
pub struct MemoryLimiter {
    slots: Mutex<Slots>,
    max_keys: usize,
}

impl Default for MemoryLimiter {
    fn default() -> Self {
        Self::with_max_keys(MEMORY_MAX_KEYS)
    }
}

impl MemoryLimiter {
    /// A limiter holding at most `max_keys` keys.
    pub fn with_max_keys(max_keys: usize) -> Self {
        Self {
            slots: Mutex::new(Slots {
                map: HashMap::new(),
                sweep_at: 1024,
                swept: 0,
            }),
            max_keys,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Slots) -> T) -> Result<T, LimiterError> {
        let mut slots = self
            .slots
            .lock()
            .map_err(|_| LimiterError("counter lock poisoned".into()))?;
        Ok(f(&mut slots))
    }

    /// Keys currently held (ended windows may linger until the next sweep).
    pub fn len(&self) -> usize {
        self.with(|s| s.map.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl Limiter for MemoryLimiter {
    async fn hit(&self, key: &str, window: Duration, now: DateTime<Utc>) -> Result<Window, LimiterError> {
        let (index, resets_in_secs) = window_of(window, now);
        let t = now.timestamp();
        let max_keys = self.max_keys;
        self.with(|slots| {
            if slots.map.len() >= slots.sweep_at || t - slots.swept >= 60 {
                slots.map.retain(|_, slot| slot.ends_at > t);
                slots.sweep_at = (slots.map.len() * 2).max(1024);
                slots.swept = t;
            }
            if !slots.map.contains_key(key) && slots.map.len() >= max_keys {
                tracing::warn!(
                    keys = slots.map.len(),
                    "rate limiter full; refusing new clients until windows end"
                );
                return Window {
                    count: u64::MAX,
                    resets_in_secs,
                };
            }
            let slot = slots.map.entry(key.to_owned()).or_insert(Slot {
                index,
                ends_at: t + resets_in_secs as i64,
                count: 0,
            });
            if slot.index != index {
                *slot = Slot {
                    index,
                    ends_at: t + resets_in_secs as i64,
                    count: 0,
                };
            }
            slot.count += 1;
            Window {
                count: slot.count,
                resets_in_secs,
            }
        })
    }

    async fn peek(&self, key: &str, window: Duration, now: DateTime<Utc>) -> Result<Window, LimiterError> {
        let (index, resets_in_secs) = window_of(window, now);
        self.with(|slots| Window {
            count: slots.map.get(key).filter(|s| s.index == index).map_or(0, |s| s.count),
            resets_in_secs,
        })
    }

    async fn clear(&self, key: &str, _window: Duration, _now: DateTime<Utc>) -> Result<(), LimiterError> {
        self.with(|slots| {
            slots.map.remove(key);
        })
    }
}

/// Counters in Redis, shared by every replica; in this process while Redis is unreachable.
pub struct RedisLimiter {
    conn: redis::aio::ConnectionManager,
    local: MemoryLimiter,
    /// Counting locally since Redis last failed.
    degraded: std::sync::atomic::AtomicBool,
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
        Ok(Self {
            conn,
            local: MemoryLimiter::default(),
            degraded: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn key(key: &str, index: i64) -> String {
        format!("luach:limit:{key}:{index}")
    }

    /// Redis answered: leave local counting if it was on.
    fn answered(&self) {
        if self.degraded.swap(false, std::sync::atomic::Ordering::Relaxed) {
            tracing::info!("redis answers again; rate limits are shared by every replica again");
        }
    }

    /// Redis failed: count locally (said once per outage).
    fn failed(&self, e: &redis::RedisError) {
        if !self.degraded.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::warn!(error = %e, "redis unreachable; rate limits count in this replica until it answers");
        }
    }

    /// `redis`'s answer, or while Redis cannot be reached, `local`'s (futures do nothing until
    /// awaited, so the one not needed never runs).
    async fn redis_or_local<T>(
        &self,
        redis: impl std::future::Future<Output = redis::RedisResult<T>>,
        local: impl std::future::Future<Output = Result<T, LimiterError>>,
    ) -> Result<T, LimiterError> {
        match redis.await {
            Ok(v) => {
                self.answered();
                Ok(v)
            }
            Err(e) => {
                self.failed(&e);
                local.await
            }
        }
    }

    async fn redis_hit(&self, key: &str, window: Duration, now: DateTime<Utc>) -> redis::RedisResult<Window> {
        let (index, resets_in_secs) = window_of(window, now);
        let name = Self::key(key, index);
        let mut conn = self.conn.clone();
        let (count,): (u64,) = redis::pipe()
            .atomic()
            .incr(&name, 1u64)
            .expire(&name, (window.as_secs().max(1) * 2) as i64)
            .ignore()
            .query_async(&mut conn)
            .await?;
        Ok(Window { count, resets_in_secs })
    }

    async fn redis_peek(&self, key: &str, window: Duration, now: DateTime<Utc>) -> redis::RedisResult<Window> {
        let (index, resets_in_secs) = window_of(window, now);
        let mut conn = self.conn.clone();
        let count: Option<u64> = redis::cmd("GET")
            .arg(Self::key(key, index))
            .query_async(&mut conn)
            .await?;
        Ok(Window {
            count: count.unwrap_or(0),
            resets_in_secs,
        })
    }

    async fn redis_clear(&self, key: &str, window: Duration, now: DateTime<Utc>) -> redis::RedisResult<()> {
        let (index, _) = window_of(window, now);
        let mut conn = self.conn.clone();
        let _: u64 = redis::cmd("DEL")
            .arg(Self::key(key, index))
            .query_async(&mut conn)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl Limiter for RedisLimiter {
    async fn hit(&self, key: &str, window: Duration, now: DateTime<Utc>) -> Result<Window, LimiterError> {
        self.redis_or_local(self.redis_hit(key, window, now), self.local.hit(key, window, now))
            .await
    }

    async fn peek(&self, key: &str, window: Duration, now: DateTime<Utc>) -> Result<Window, LimiterError> {
        self.redis_or_local(self.redis_peek(key, window, now), self.local.peek(key, window, now))
            .await
    }

    async fn clear(&self, key: &str, window: Duration, now: DateTime<Utc>) -> Result<(), LimiterError> {
        // Both: a window counted locally during an outage is cleared too.
        self.local.clear(key, window, now).await?;
        self.redis_or_local(self.redis_clear(key, window, now), async { Ok(()) })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[tokio::test]
    async fn ended_windows_are_swept_and_the_map_is_bounded() -> Result<(), LimiterError> {
        let limiter = MemoryLimiter::with_max_keys(2000);
        let minute = Duration::from_secs(60);
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 0).single().expect("time");
        for i in 0..1500 {
            limiter.hit(&format!("k{i}"), minute, t0).await?;
        }
        assert_eq!(limiter.len(), 1500);
        // A minute later every window has ended: the next sweep drops them all.
        let t1 = t0 + chrono::Duration::seconds(61);
        for i in 0..10 {
            limiter.hit(&format!("n{i}"), minute, t1).await?;
        }
        assert!(limiter.len() <= 10, "{} keys left", limiter.len());
        // Full of live windows: a new key is refused, known keys still count.
        for i in 0..2000 {
            limiter.hit(&format!("m{i}"), minute, t1).await?;
        }
        assert_eq!(limiter.hit("fresh", minute, t1).await?.count, u64::MAX);
        assert_eq!(limiter.hit("m1", minute, t1).await?.count, 2);
        Ok(())
    }

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
