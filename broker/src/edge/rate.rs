//! Per-device rate limits on what a screen sends: a token bucket for messages and one for
//! bytes. A screen that sends faster than its bucket refills is disconnected (a screen's
//! agent, with its heartbeat, metrics and telemetry batches, stays far below the defaults).

use std::time::{Duration, Instant};

/// A token bucket: up to `burst` tokens, refilled at `per_sec` tokens a second.
#[derive(Debug, Clone)]
pub struct Bucket {
    burst: f64,
    per_sec: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket at `now`.
    pub fn new(burst: u64, per_sec: u64, now: Instant) -> Self {
        Self {
            burst: burst as f64,
            per_sec: per_sec as f64,
            tokens: burst as f64,
            at: now,
        }
    }

    /// Takes `n` tokens at `now`; false (and nothing taken) when there are not enough.
    pub fn take(&mut self, n: u64, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at);
        self.at = self.at.max(now);
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.per_sec).min(self.burst);
        let n = n as f64;
        if n > self.tokens {
            return false;
        }
        self.tokens -= n;
        true
    }
}

/// The limits of one device's uplink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Messages a second, sustained, and the burst allowed above it.
    pub messages_per_sec: u64,
    pub message_burst: u64,
    /// Payload bytes a second, sustained, and the burst allowed above it.
    pub bytes_per_sec: u64,
    pub byte_burst: u64,
}

/// Why a device's message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OverRate {
    #[error("more than {0} messages a second")]
    Messages(u64),
    #[error("more than {0} bytes a second")]
    Bytes(u64),
}

/// One device's uplink meter.
#[derive(Debug, Clone)]
pub struct Meter {
    limits: RateLimits,
    messages: Bucket,
    bytes: Bucket,
}

impl Meter {
    pub fn new(limits: RateLimits, now: Instant) -> Self {
        Self {
            limits,
            messages: Bucket::new(limits.message_burst, limits.messages_per_sec, now),
            bytes: Bucket::new(limits.byte_burst, limits.bytes_per_sec, now),
        }
    }

    /// Counts one message of `len` payload bytes at `now`.
    pub fn admit(&mut self, len: usize, now: Instant) -> Result<(), OverRate> {
        if !self.messages.take(1, now) {
            return Err(OverRate::Messages(self.limits.messages_per_sec));
        }
        if !self.bytes.take(len as u64, now) {
            return Err(OverRate::Bytes(self.limits.bytes_per_sec));
        }
        Ok(())
    }
}

/// How long until `n` tokens are back in an empty bucket refilled at `per_sec` (for
/// documentation and tests).
pub fn refill_time(n: u64, per_sec: u64) -> Duration {
    Duration::from_secs_f64(n as f64 / per_sec.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(5, 2, t0);
        assert!((0..5).all(|_| b.take(1, t0)));
        assert!(!b.take(1, t0), "burst spent");
        assert!(b.take(1, t0 + refill_time(1, 2)));
        assert!(!b.take(1, t0 + refill_time(1, 2)));
        // Never more than the burst, however long it rested.
        let later = t0 + Duration::from_secs(3_600);
        assert!(b.take(5, later));
        assert!(!b.take(1, later));
        // A clock that goes back refills nothing and takes nothing extra.
        assert!(!b.take(1, t0));
    }

    #[test]
    fn a_meter_counts_messages_and_bytes() {
        let t0 = Instant::now();
        let limits = RateLimits {
            messages_per_sec: 10,
            message_burst: 20,
            bytes_per_sec: 1_000,
            byte_burst: 4_000,
        };
        let mut m = Meter::new(limits, t0);
        assert_eq!(m.admit(3_000, t0), Ok(()));
        assert_eq!(m.admit(3_000, t0), Err(OverRate::Bytes(1_000)));
        let mut m = Meter::new(limits, t0);
        for _ in 0..20 {
            assert_eq!(m.admit(10, t0), Ok(()));
        }
        assert_eq!(m.admit(10, t0), Err(OverRate::Messages(10)));
        assert_eq!(m.admit(10, t0 + Duration::from_millis(100)), Ok(()));
    }
}
