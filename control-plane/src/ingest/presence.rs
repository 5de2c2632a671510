//! Device presence: the store holds each screen's status, every replica proposes changes, and
//! the store says which took place.
//!
//! ```text
//!             hello / heartbeat / metrics / ack / telemetry (any live session)
//!   Offline ─────────────────────────────────────────────────────────────▶ Online
//!   Online  ── last will or goodbye carrying the *current* session ──────▶ Offline
//!   Online  ── store: last seen longer than `offline_after` ago (sweep) ─▶ Offline
//! ```
//! Behind an external broker several replicas share the uplink round-robin, so each sees only
//! some of a screen's messages and none can own its presence in memory. The tracker therefore
//! only *proposes*: a status write whenever this process believes the screen offline, and again
//! every [`PresenceTracker::reassert`] while it talks (so a screen taken offline by another
//! replica, whose later messages all came here, is corrected within that time). The store sets
//! a status only where it differs and reports the transitions
//! ([`crate::store::SystemStore::apply_presence`]); only those become `device:online` and
//! `device:offline` events, so each transition is announced once whichever replica saw it.
//! The timeout is swept in the store too ([`crate::store::SystemStore::expire_presence`]),
//! against the last seen time every replica writes.
//!
//! A last will from an older session (the device already reconnected) is ignored when this
//! process saw the newer session start, so a reconnect that races the broker's detection of
//! the old connection never shows a live device as offline. (A replica that never saw the new
//! session cannot tell; the screen's next message, at most one heartbeat later, corrects it.)
//! The tracker does no I/O: it turns observations into a [`Batch`] of coalesced store writes.

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

/// What announcing a device's transition needs beyond its store write.
#[derive(Debug, Clone)]
struct Note {
    tenant: TenantId,
    /// When the status was decided.
    at: DateTime<Utc>,
    /// Why it went offline (`last_will`, `goodbye`, `revoked`).
    reason: &'static str,
}

/// Store writes and events produced by one round of observations.
#[derive(Debug, Default)]
pub struct Batch {
    writes: HashMap<DeviceId, PresenceWrite>,
    notes: HashMap<DeviceId, Note>,
    /// Events that need no transition (metrics).
    pub events: Vec<LiveEvent>,
    /// Observations folded into this batch.
    pub observed: u64,
}

/// A batch taken for writing.
#[derive(Debug)]
pub struct Taken {
    pub writes: Vec<PresenceWrite>,
    pub events: Vec<LiveEvent>,
    notes: HashMap<DeviceId, Note>,
}

impl Taken {
    /// The `device:online` / `device:offline` events of the transitions the store reported.
    pub fn transition_events(&self, moved: &[(DeviceId, DeviceStatus)]) -> Vec<LiveEvent> {
        let writes: HashMap<&DeviceId, &PresenceWrite> = self.writes.iter().map(|w| (&w.device, w)).collect();
        moved
            .iter()
            .filter_map(|(device, status)| {
                let note = self.notes.get(device)?;
                Some(match status {
                    DeviceStatus::Online => {
                        let write = writes.get(device);
                        let agent_version = write
                            .and_then(|w| w.hello.as_ref().map(|h| h.agent_version.clone()))
                            .or_else(|| write.and_then(|w| w.metrics.as_ref().map(|(m, _)| m.agent_version.clone())));
                        LiveEvent::Online {
                            device_id: device.clone(),
                            tenant_id: note.tenant.clone(),
                            at: note.at,
                            agent_version,
                        }
                    }
                    DeviceStatus::Offline => LiveEvent::Offline {
                        device_id: device.clone(),
                        tenant_id: note.tenant.clone(),
                        at: note.at,
                        reason: note.reason,
                    },
                })
            })
            .collect()
    }
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

    /// Proposes `status` for `device` (the latest proposal in a batch wins).
    fn status(
        &mut self,
        device: &DeviceId,
        tenant: &TenantId,
        status: DeviceStatus,
        at: DateTime<Utc>,
        reason: &'static str,
    ) {
        self.write(device).status = Some(status);
        self.notes.insert(
            device.clone(),
            Note {
                tenant: tenant.clone(),
                at,
                reason,
            },
        );
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.events.is_empty()
    }

    /// Puts back writes that could not be stored; fields written since then take precedence.
    pub fn requeue(&mut self, taken: Taken) {
        for old in taken.writes {
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
        for (device, note) in taken.notes {
            self.notes.entry(device).or_insert(note);
        }
    }

    /// Takes the coalesced writes (one per device) and events, leaving the batch empty.
    pub fn take(&mut self) -> Taken {
        self.observed = 0;
        Taken {
            writes: self.writes.drain().map(|(_, w)| w).collect(),
            events: std::mem::take(&mut self.events),
            notes: std::mem::take(&mut self.notes),
        }
    }
}

#[derive(Debug, Clone)]
struct Live {
    tenant: TenantId,
    /// What this process last proposed for the device.
    online: bool,
    session: Option<String>,
    /// When this process last proposed "online".
    asserted: Option<DateTime<Utc>>,
}

/// This process's view of the devices that talked to it.
#[derive(Debug)]
pub struct PresenceTracker {
    devices: HashMap<DeviceId, Live>,
    reassert: Duration,
}

impl PresenceTracker {
    /// `offline_after`: the presence time-out; "online" is proposed again a quarter of it
    /// after the last proposal.
    pub fn new(offline_after: std::time::Duration) -> Self {
        let timeout = Duration::from_std(offline_after).unwrap_or(Duration::seconds(90));
        Self {
            devices: HashMap::new(),
            reassert: timeout / 4,
        }
    }

    /// How long after proposing "online" this process proposes it again while the device talks.
    pub fn reassert(&self) -> Duration {
        self.reassert
    }

    /// The tenant of a device seen before, without a store round trip.
    pub fn tenant_of(&self, device: &DeviceId) -> Option<&TenantId> {
        self.devices.get(device).map(|l| &l.tenant)
    }

    /// Drops a device (it was deleted); its next message resolves its tenant afresh.
    pub fn forget(&mut self, device: &DeviceId) {
        self.devices.remove(device);
    }

    /// The store's sweep took `device` offline: its next message proposes "online".
    pub fn expired(&mut self, device: &DeviceId) {
        if let Some(live) = self.devices.get_mut(device) {
            live.online = false;
            live.asserted = None;
        }
    }

    /// A device's certificate was revoked: it is offline from now on and forgotten. Its later
    /// messages are dropped because its tenant no longer resolves (`IngestRepo::tenants_of`).
    /// (A device this process never saw is still written offline, without an event: the
    /// replica that saw it announces nothing either, which the dashboard's next read shows.)
    pub fn revoke(&mut self, device: &DeviceId, now: DateTime<Utc>, batch: &mut Batch) {
        match self.devices.get(device).map(|l| l.tenant.clone()) {
            Some(tenant) => batch.status(device, &tenant, DeviceStatus::Offline, now, "revoked"),
            None => batch.write(device).status = Some(DeviceStatus::Offline),
        }
        self.forget(device);
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
        let live = self.devices.entry(device.clone()).or_insert_with(|| Live {
            tenant: tenant.clone(),
            online: false,
            session: None,
            asserted: None,
        });
        live.tenant = tenant.clone();
        if let Observation::SessionEnded { session, reason } = obs {
            // A will of an older session arrives after the device has already reconnected.
            if live.session.as_deref().is_none_or(|c| c == session) {
                live.online = false;
                live.session = None;
                live.asserted = None;
                batch.status(device, tenant, DeviceStatus::Offline, now, reason);
            }
            return;
        }
        let write = batch.write(device);
        write.last_seen = write.last_seen.max(Some(now));
        match obs {
            Observation::Hello(hello) => {
                write.hello = Some(HelloInfo {
                    agent_version: hello.agent_version,
                    platform: hello.platform,
                    ip: hello.ip,
                });
                live.session = Some(hello.session);
            }
            Observation::Heartbeat { session } => live.session = Some(session),
            Observation::Metrics(metrics) => {
                write.metrics = Some((metrics.clone(), now));
                batch.events.push(LiveEvent::Metrics {
                    device_id: device.clone(),
                    tenant_id: tenant.clone(),
                    at: now,
                    metrics,
                });
            }
            Observation::Activity | Observation::SessionEnded { .. } => {}
        }
        let due = !live.online || live.asserted.is_none_or(|at| now - at >= self.reassert);
        if due {
            live.online = true;
            live.asserted = Some(now);
            batch.status(device, tenant, DeviceStatus::Online, now, "");
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

    fn will(session: &str) -> Observation {
        Observation::SessionEnded {
            session: session.into(),
            reason: "last_will",
        }
    }

    fn heartbeat(session: &str) -> Observation {
        Observation::Heartbeat {
            session: session.into(),
        }
    }

    /// The status each write of the batch proposes.
    fn proposed(batch: &mut Batch) -> Vec<Option<DeviceStatus>> {
        batch.take().writes.iter().map(|w| w.status).collect()
    }

    /// A model of the store's compare-and-set: applies the proposals, returns what moved.
    fn apply(store: &mut HashMap<DeviceId, DeviceStatus>, taken: &Taken) -> Vec<(DeviceId, DeviceStatus)> {
        let mut moved = Vec::new();
        for w in &taken.writes {
            if let Some(s) = w.status {
                let old = store.insert(w.device.clone(), s);
                if old != Some(s) {
                    moved.push((w.device.clone(), s));
                }
            }
        }
        moved
    }

    #[test]
    fn hello_then_will_proposes_online_then_offline() {
        let mut t = PresenceTracker::new(std::time::Duration::from_secs(90));
        let (d, ten, now) = (id("d1"), TenantId::builtin(), Utc::now());
        let mut b = Batch::default();
        t.observe(&d, &ten, hello("s1"), now, &mut b);
        assert_eq!(proposed(&mut b), [Some(DeviceStatus::Online)]);
        t.observe(&d, &ten, will("s1"), now, &mut b);
        assert_eq!(proposed(&mut b), [Some(DeviceStatus::Offline)]);
    }

    #[test]
    fn stale_will_of_replaced_session_is_ignored() {
        let mut t = PresenceTracker::new(std::time::Duration::from_secs(90));
        let (d, ten, now) = (id("d1"), TenantId::builtin(), Utc::now());
        let mut b = Batch::default();
        t.observe(&d, &ten, hello("s1"), now, &mut b);
        t.observe(&d, &ten, hello("s2"), now, &mut b);
        b.take();
        t.observe(&d, &ten, will("s1"), now, &mut b);
        assert!(b.is_empty());
        // The current session's will does count.
        t.observe(&d, &ten, will("s2"), now, &mut b);
        assert_eq!(proposed(&mut b), [Some(DeviceStatus::Offline)]);
    }

    #[test]
    fn revoked_device_goes_offline_and_is_forgotten() {
        let mut t = PresenceTracker::new(std::time::Duration::from_secs(90));
        let (d, ten, now) = (id("d1"), TenantId::builtin(), Utc::now());
        let mut b = Batch::default();
        t.observe(&d, &ten, hello("s1"), now, &mut b);
        b.take();
        t.revoke(&d, now, &mut b);
        assert_eq!(t.tenant_of(&d), None);
        let taken = b.take();
        assert_eq!(taken.writes.len(), 1);
        let events = taken.transition_events(&[(d.clone(), DeviceStatus::Offline)]);
        assert!(
            matches!(&events[..], [LiveEvent::Offline { reason: "revoked", .. }]),
            "{events:?}"
        );
    }

    #[test]
    fn online_is_proposed_again_after_a_quarter_of_the_timeout() {
        let mut t = PresenceTracker::new(std::time::Duration::from_secs(80));
        let (d, ten, now) = (id("d1"), TenantId::builtin(), Utc::now());
        let mut b = Batch::default();
        t.observe(&d, &ten, hello("s1"), now, &mut b);
        assert_eq!(proposed(&mut b), [Some(DeviceStatus::Online)]);
        // Within the reassertion time only "last seen" moves: the cheap write.
        t.observe(&d, &ten, heartbeat("s1"), now + Duration::seconds(19), &mut b);
        let taken = b.take();
        assert!(taken.writes[0].is_seen_only(), "{taken:?}");
        t.observe(&d, &ten, heartbeat("s1"), now + Duration::seconds(20), &mut b);
        assert_eq!(proposed(&mut b), [Some(DeviceStatus::Online)]);
        // The store's sweep took it offline: the next message proposes online at once.
        t.expired(&d);
        t.observe(&d, &ten, Observation::Activity, now + Duration::seconds(21), &mut b);
        assert_eq!(proposed(&mut b), [Some(DeviceStatus::Online)]);
    }

    #[test]
    fn writes_coalesce_per_device() {
        let mut t = PresenceTracker::new(std::time::Duration::from_secs(90));
        let (d, ten, now) = (id("d1"), TenantId::builtin(), Utc::now());
        let mut b = Batch::default();
        t.observe(&d, &ten, hello("s1"), now, &mut b);
        for i in 1..5 {
            t.observe(&d, &ten, heartbeat("s1"), now + Duration::seconds(i), &mut b);
        }
        assert_eq!(b.observed, 5);
        let taken = b.take();
        assert_eq!(taken.writes.len(), 1);
        assert_eq!(taken.writes[0].status, Some(DeviceStatus::Online));
        assert_eq!(taken.writes[0].last_seen, Some(now + Duration::seconds(4)));
    }

    #[test]
    fn only_transitions_the_store_reports_are_announced() {
        let mut t = PresenceTracker::new(std::time::Duration::from_secs(90));
        let (d, ten, now) = (id("d1"), TenantId::builtin(), Utc::now());
        let mut b = Batch::default();
        t.observe(&d, &ten, hello("s1"), now, &mut b);
        let taken = b.take();
        assert!(taken.transition_events(&[]).is_empty());
        let events = taken.transition_events(&[(d.clone(), DeviceStatus::Online)]);
        assert!(
            matches!(&events[..], [LiveEvent::Online { agent_version: Some(v), .. }] if v == "1.0.0"),
            "{events:?}"
        );
    }

    #[test]
    fn replicas_sharing_the_uplink_agree_with_the_truth() {
        // Model-based check: two trackers (replicas) get a random split of each device's
        // messages, a model store applies their proposals by compare-and-set, and a sweep
        // expires silent devices. Within one reassertion time of a message, the store shows
        // the device as its messages say, and announced transitions alternate per device.
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let timeout = std::time::Duration::from_secs(40);
        let mut replicas = [PresenceTracker::new(timeout), PresenceTracker::new(timeout)];
        let reassert = replicas[0].reassert();
        let ten = TenantId::builtin();
        let ids: Vec<DeviceId> = (0..4).map(|i| id(&format!("d{i}"))).collect();
        let mut store: HashMap<DeviceId, DeviceStatus> = HashMap::new();
        let mut announced: HashMap<DeviceId, DeviceStatus> = HashMap::new();
        // When the store last took each device offline.
        let mut offline_at: HashMap<DeviceId, DateTime<Utc>> = HashMap::new();
        // What each device's own messages say, and when it last talked.
        let mut truth: HashMap<DeviceId, (DeviceStatus, DateTime<Utc>)> = HashMap::new();
        let mut now = Utc::now();
        let mut corrected_late = 0;
        for _ in 0..5_000 {
            now += Duration::seconds(rng.random_range(0..4));
            let d = ids[rng.random_range(0..ids.len())].clone();
            let obs = match rng.random_range(0..10) {
                0 => will("s1"),
                1 => hello("s1"),
                _ => heartbeat("s1"),
            };
            let said = if matches!(obs, Observation::SessionEnded { .. }) {
                DeviceStatus::Offline
            } else {
                DeviceStatus::Online
            };
            truth.insert(d.clone(), (said, now));
            let mut b = Batch::default();
            replicas[rng.random_range(0..2)].observe(&d, &ten, obs, now, &mut b);
            let taken = b.take();
            let moved = apply(&mut store, &taken);
            for e in taken.transition_events(&moved) {
                let (device, s) = match &e {
                    LiveEvent::Online { device_id, .. } => (device_id.clone(), DeviceStatus::Online),
                    LiveEvent::Offline { device_id, .. } => (device_id.clone(), DeviceStatus::Offline),
                    _ => continue,
                };
                assert_ne!(
                    announced.insert(device.clone(), s),
                    Some(s),
                    "a transition announced twice"
                );
                if s == DeviceStatus::Offline {
                    offline_at.insert(device, now);
                }
            }
            match said {
                // A will is shown at once.
                DeviceStatus::Offline => assert_eq!(store.get(&d), Some(&DeviceStatus::Offline)),
                // A talking device shown offline is corrected by its first message a
                // reassertion time after the store took it offline, whichever replica gets it.
                DeviceStatus::Online => {
                    if store.get(&d) != Some(&DeviceStatus::Online) {
                        let since = offline_at.get(&d).copied().unwrap_or(now);
                        assert!(now - since < reassert, "{d} still offline {:?} after", now - since);
                        corrected_late += 1;
                    }
                }
            }
            // The store's sweep: silent devices go offline, and every replica hears of it.
            let timeout = Duration::from_std(timeout).unwrap_or_default();
            for (device, (_, seen)) in &truth {
                if now - *seen > timeout && store.get(device) == Some(&DeviceStatus::Online) {
                    store.insert(device.clone(), DeviceStatus::Offline);
                    assert_ne!(
                        announced.insert(device.clone(), DeviceStatus::Offline),
                        Some(DeviceStatus::Offline)
                    );
                    offline_at.insert(device.clone(), now);
                    for replica in &mut replicas {
                        replica.expired(device);
                    }
                }
            }
        }
        // The split really produced the case this design is for.
        assert!(corrected_late > 0);
    }
}
