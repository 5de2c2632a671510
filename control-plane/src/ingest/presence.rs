//! Device presence as a state machine, fed by observations and the clock.
//!
//! ```text
//!             hello / heartbeat / metrics / ack / telemetry (any live session)
//!   Offline ─────────────────────────────────────────────────────────────▶ Online
//!   Online  ── last will or goodbye carrying the *current* session ──────▶ Offline
//!   Online  ── no message for `offline_after` ───────────────────────────▶ Offline
//! ```
//! A last will from an older session (the device already reconnected) is ignored, so a
//! reconnect that races the broker's detection of the old connection never shows a live
//! device as offline. The tracker does no I/O: it turns observations into a [`Batch`] of
//! coalesced store writes and live events that the writer applies.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use chrono::{DateTime, Duration, Utc};
use luach_schemas::messages::{Hello, Metrics};
use luach_schemas::{DeviceId, TenantId};

use crate::live::LiveEvent;
use crate::store::{DeviceStatus, HelloInfo, PresenceWrite};

/// What a device's message tells the tracker.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    Hello(Hello),
    Heartbeat {
        session: String,
    },
    Metrics(Metrics),
    /// Any other message from the device (ack, telemetry): proof of life only.
    Activity,
    /// The session ended: `reason` is `last_will` or `goodbye`.
    SessionEnded {
        session: String,
        reason: &'static str,
    },
}

#[derive(Debug, Clone)]
struct Live {
    tenant: TenantId,
    online: bool,
    session: Option<String>,
    last_seen: DateTime<Utc>,
}

/// Store writes and events produced by one round of observations.
#[derive(Debug, Default)]
pub struct Batch {
    writes: HashMap<DeviceId, PresenceWrite>,
    pub events: Vec<LiveEvent>,
    /// Observations folded into this batch.
    pub observed: u64,
}

impl Batch {
    fn write(&mut self, device: &DeviceId) -> &mut PresenceWrite {
        self.writes.entry(device.clone()).or_insert_with(|| PresenceWrite {
            device: device.clone(),
            last_seen: None,
            status: None,
            hello: None,
            metrics: None,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.events.is_empty()
    }

    /// Puts back writes that could not be stored; fields written since then take precedence.
    pub fn requeue(&mut self, writes: Vec<PresenceWrite>) {
        for old in writes {
            match self.writes.entry(old.device.clone()) {
                Entry::Vacant(e) => {
                    e.insert(old);
                }
                Entry::Occupied(mut e) => {
                    let newer = e.get_mut();
                    newer.last_seen = newer.last_seen.max(old.last_seen);
                    newer.status = newer.status.or(old.status);
                    newer.hello = newer.hello.take().or(old.hello);
                    newer.metrics = newer.metrics.take().or(old.metrics);
                }
            }
        }
    }

    /// Takes the coalesced writes (one per device) and events, leaving the batch empty.
    pub fn take(&mut self) -> (Vec<PresenceWrite>, Vec<LiveEvent>) {
        self.observed = 0;
        (
            self.writes.drain().map(|(_, w)| w).collect(),
            std::mem::take(&mut self.events),
        )
    }
}

/// In-memory presence of every device that has talked to this process.
#[derive(Debug)]
pub struct PresenceTracker {
    devices: HashMap<DeviceId, Live>,
    offline_after: Duration,
    online: usize,
}

impl PresenceTracker {
    pub fn new(offline_after: std::time::Duration) -> Self {
        Self {
            devices: HashMap::new(),
            offline_after: Duration::from_std(offline_after).unwrap_or(Duration::seconds(90)),
            online: 0,
        }
    }

    /// The tenant of a device seen before, without a store round trip.
    pub fn tenant_of(&self, device: &DeviceId) -> Option<&TenantId> {
        self.devices.get(device).map(|l| &l.tenant)
    }

    /// Devices currently online.
    pub fn online_count(&self) -> usize {
        self.online
    }

    /// Drops a device (it was deleted); its next message resolves its tenant afresh.
    pub fn forget(&mut self, device: &DeviceId) {
        if let Some(live) = self.devices.remove(device)
            && live.online
        {
            self.online -= 1;
        }
    }

    /// A device's certificate was revoked: it is offline from now on (also in the store when
    /// this process never saw it) and forgotten. Its later messages are dropped because its
    /// tenant no longer resolves (`IngestRepo::tenants_of`).
    pub fn revoke(&mut self, device: &DeviceId, now: DateTime<Utc>, batch: &mut Batch) {
        if self.devices.get(device).is_some_and(|l| l.online) {
            self.set_offline(device, now, "revoked", batch);
        } else {
            batch.write(device).status = Some(DeviceStatus::Offline);
        }
        self.forget(device);
    }

    fn set_online(
        &mut self,
        device: &DeviceId,
        session: Option<String>,
        now: DateTime<Utc>,
        agent_version: Option<String>,
        batch: &mut Batch,
    ) {
        let Some(live) = self.devices.get_mut(device) else {
            return;
        };
        let came_online = !live.online;
        live.online = true;
        if session.is_some() {
            live.session = session;
        }
        if came_online {
            self.online += 1;
            batch.write(device).status = Some(DeviceStatus::Online);
            batch.events.push(LiveEvent::Online {
                device_id: device.clone(),
                tenant_id: live.tenant.clone(),
                at: now,
                agent_version,
            });
        }
    }

    fn set_offline(&mut self, device: &DeviceId, now: DateTime<Utc>, reason: &'static str, batch: &mut Batch) {
        let Some(live) = self.devices.get_mut(device) else {
            return;
        };
        if !live.online {
            return;
        }
        live.online = false;
        live.session = None;
        self.online -= 1;
        batch.write(device).status = Some(DeviceStatus::Offline);
        batch.events.push(LiveEvent::Offline {
            device_id: device.clone(),
            tenant_id: live.tenant.clone(),
            at: now,
            reason,
        });
    }

    /// Folds one observation of `device` (belonging to `tenant`) into `batch`.
    pub fn observe(
        &mut self,
        device: &DeviceId,
        tenant: &TenantId,
        obs: Observation,
        now: DateTime<Utc>,
        batch: &mut Batch,
    ) {
        batch.observed += 1;
        match self.devices.entry(device.clone()) {
            Entry::Occupied(mut e) => {
                let live = e.get_mut();
                live.tenant = tenant.clone();
                if now > live.last_seen {
                    live.last_seen = now;
                }
            }
            Entry::Vacant(e) => {
                e.insert(Live {
                    tenant: tenant.clone(),
                    online: false,
                    session: None,
                    last_seen: now,
                });
            }
        }
        if let Observation::SessionEnded { session, reason } = obs {
            let current = self.devices.get(device).and_then(|l| l.session.clone());
            // A will of an older session arrives after the device has already reconnected.
            if current.as_deref().is_none_or(|c| c == session) {
                self.set_offline(device, now, reason, batch);
            }
            return;
        }
        batch.write(device).last_seen = Some(now);
        match obs {
            Observation::Hello(hello) => {
                // A hello always starts a new session, even when the old one looked alive.
                let write = batch.write(device);
                write.hello = Some(HelloInfo {
                    agent_version: hello.agent_version.clone(),
                    platform: hello.platform.clone(),
                    ip: hello.ip.clone(),
                });
                self.set_online(device, Some(hello.session), now, Some(hello.agent_version), batch);
            }
            Observation::Heartbeat { session } => self.set_online(device, Some(session), now, None, batch),
            Observation::Metrics(metrics) => {
                batch.write(device).metrics = Some((metrics.clone(), now));
                let version = Some(metrics.agent_version.clone());
                self.set_online(device, None, now, version, batch);
                batch.events.push(LiveEvent::Metrics {
                    device_id: device.clone(),
                    tenant_id: tenant.clone(),
                    at: now,
                    metrics,
                });
            }
            Observation::Activity => self.set_online(device, None, now, None, batch),
            Observation::SessionEnded { .. } => {}
        }
    }

    /// Marks devices silent for longer than `offline_after` as offline.
    pub fn expire(&mut self, now: DateTime<Utc>, batch: &mut Batch) {
        let cutoff = now - self.offline_after;
        let stale: Vec<DeviceId> = self
            .devices
            .iter()
            .filter(|(_, l)| l.online && l.last_seen < cutoff)
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            self.set_offline(&id, now, "heartbeat_timeout", batch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> DeviceId {
        DeviceId::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    fn hello(session: &str) -> Observation {
        Observation::Hello(Hello {
            agent_version: "1.0.0".into(),
            session: session.into(),
            platform: "linux-x86_64".into(),
            ip: None,
            uptime_s: 1,
        })
    }

    fn names(batch: &mut Batch) -> Vec<&'static str> {
        batch.take().1.iter().map(LiveEvent::name).collect()
    }

    #[test]
    fn hello_then_will_goes_online_then_offline() {
        let mut t = PresenceTracker::new(std::time::Duration::from_secs(90));
        let (d, ten, now) = (id("d1"), TenantId::builtin(), Utc::now());
        let mut b = Batch::default();
        t.observe(&d, &ten, hello("s1"), now, &mut b);
        assert_eq!(names(&mut b), ["device:online"]);
        assert_eq!(t.online_count(), 1);
        t.observe(
            &d,
            &ten,
            Observation::SessionEnded {
                session: "s1".into(),
                reason: "last_will",
            },
            now,
            &mut b,
        );
        assert_eq!(names(&mut b), ["device:offline"]);
        assert_eq!(t.online_count(), 0);
    }

    #[test]
    fn stale_will_of_replaced_session_is_ignored() {
        let mut t = PresenceTracker::new(std::time::Duration::from_secs(90));
        let (d, ten, now) = (id("d1"), TenantId::builtin(), Utc::now());
        let mut b = Batch::default();
        t.observe(&d, &ten, hello("s1"), now, &mut b);
        t.observe(&d, &ten, hello("s2"), now, &mut b);
        b.take();
        t.observe(
            &d,
            &ten,
            Observation::SessionEnded {
                session: "s1".into(),
                reason: "last_will",
            },
            now,
            &mut b,
        );
        assert!(names(&mut b).is_empty());
        assert_eq!(t.online_count(), 1);
    }

    #[test]
    fn revoked_device_goes_offline_and_is_forgotten() {
        let mut t = PresenceTracker::new(std::time::Duration::from_secs(90));
        let (d, ten, now) = (id("d1"), TenantId::builtin(), Utc::now());
        let mut b = Batch::default();
        t.observe(&d, &ten, hello("s1"), now, &mut b);
        b.take();
        t.revoke(&d, now, &mut b);
        assert_eq!(t.online_count(), 0);
        assert_eq!(t.tenant_of(&d), None);
        let (writes, events) = b.take();
        assert_eq!(writes.len(), 1);
        assert_eq!(writes[0].status, Some(DeviceStatus::Offline));
        assert_eq!(
            events.iter().map(LiveEvent::name).collect::<Vec<_>>(),
            ["device:offline"]
        );
        // Never seen by this process: the store is still told.
        t.revoke(&id("d2"), now, &mut b);
        let (writes, events) = b.take();
        assert_eq!((writes.len(), events.len()), (1, 0));
    }

    #[test]
    fn silence_expires_and_heartbeat_revives() {
        let mut t = PresenceTracker::new(std::time::Duration::from_secs(90));
        let (d, ten, now) = (id("d1"), TenantId::builtin(), Utc::now());
        let mut b = Batch::default();
        t.observe(&d, &ten, hello("s1"), now, &mut b);
        b.take();
        t.expire(now + Duration::seconds(89), &mut b);
        assert!(names(&mut b).is_empty());
        t.expire(now + Duration::seconds(91), &mut b);
        assert_eq!(names(&mut b), ["device:offline"]);
        t.observe(
            &d,
            &ten,
            Observation::Heartbeat { session: "s1".into() },
            now + Duration::seconds(95),
            &mut b,
        );
        assert_eq!(names(&mut b), ["device:online"]);
    }

    #[test]
    fn writes_coalesce_per_device() {
        let mut t = PresenceTracker::new(std::time::Duration::from_secs(90));
        let (d, ten, now) = (id("d1"), TenantId::builtin(), Utc::now());
        let mut b = Batch::default();
        t.observe(&d, &ten, hello("s1"), now, &mut b);
        for i in 1..5 {
            t.observe(
                &d,
                &ten,
                Observation::Heartbeat { session: "s1".into() },
                now + Duration::seconds(i),
                &mut b,
            );
        }
        assert_eq!(b.observed, 5);
        let (writes, _) = b.take();
        assert_eq!(writes.len(), 1);
        assert_eq!(writes[0].status, Some(DeviceStatus::Online));
        assert_eq!(writes[0].last_seen, Some(now + Duration::seconds(4)));
    }

    #[test]
    fn model_online_count_matches_events() {
        // Model-based check: random observation sequences keep the online counter equal to
        // (online events − offline events) and never negative.
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut t = PresenceTracker::new(std::time::Duration::from_secs(10));
        let ten = TenantId::builtin();
        let ids: Vec<DeviceId> = (0..5).map(|i| id(&format!("d{i}"))).collect();
        let mut now = Utc::now();
        let mut balance: i64 = 0;
        for _ in 0..2_000 {
            let d = &ids[rng.random_range(0..ids.len())];
            let session = format!("s{}", rng.random_range(0..3));
            let obs = match rng.random_range(0..5) {
                0 => hello(&session),
                1 => Observation::Heartbeat { session },
                2 => Observation::Activity,
                3 => Observation::SessionEnded {
                    session,
                    reason: "last_will",
                },
                _ => {
                    now += Duration::seconds(rng.random_range(0..15));
                    let mut b = Batch::default();
                    t.expire(now, &mut b);
                    balance -= b.take().1.len() as i64;
                    continue;
                }
            };
            let mut b = Batch::default();
            t.observe(d, &ten, obs, now, &mut b);
            for e in b.take().1 {
                match e.name() {
                    "device:online" => balance += 1,
                    "device:offline" => balance -= 1,
                    _ => {}
                }
            }
            assert_eq!(balance, t.online_count() as i64);
        }
    }
}
