//! Which device is connected where: the sessions of each topic prefix (one enrolment of one
//! screen), each with its own bounded downlink queue. Messages for a screen go straight to its
//! sessions; the broker's router never holds a filter per screen.
//!
//! A session is named by its prefix and client id, as rumqttd named it (`{O}.{client id}`): a
//! second connection with the same pair takes the session over (the older one is closed, as
//! MQTT does for a duplicate client id), and a session leaves only its own entry, so one that
//! was taken over and ends later does not remove its successor. A screen's agent holds one
//! session; a prefix may hold a few more (a technician's tool with the screen's certificate),
//! up to a cap.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

/// A message for a device.
#[derive(Debug, Clone)]
pub struct Down {
    pub topic: String,
    pub payload: Bytes,
}

/// Why a session was told to close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kick {
    /// The same device connected again with the same client id.
    TakenOver,
    /// Its certificate was revoked or superseded.
    Refused,
}

/// What became of a message handed to [`Registry::deliver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Queued,
    /// No session for the prefix: the device is offline (the command outbox redelivers).
    Offline,
    /// The session's queue is full (a device that does not read); the message is dropped.
    Full,
}

/// The prefix already holds the most sessions one prefix may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the device already holds {0} sessions")]
pub struct TooManySessions(pub usize);

struct Entry {
    client_id: String,
    generation: u64,
    serial: String,
    downlink: mpsc::Sender<Down>,
    kick: Option<oneshot::Sender<Kick>>,
    wants_up: Arc<AtomicBool>,
}

impl Entry {
    fn kick(mut self, why: Kick, watchers: &AtomicUsize) {
        if self.wants_up.load(Ordering::Relaxed) {
            watchers.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(k) = self.kick.take() {
            let _ = k.send(why);
        }
    }
}

/// Counters of the downlink, for metrics.
#[derive(Debug, Default)]
pub struct DownlinkCounts {
    pub queued: AtomicU64,
    pub offline: AtomicU64,
    pub full: AtomicU64,
}

/// The sessions by prefix. Cheap to clone.
#[derive(Clone, Default)]
pub struct Registry {
    sessions: Arc<Mutex<HashMap<String, Vec<Entry>>>>,
    total: Arc<AtomicUsize>,
    /// Sessions with `wants_up` set, so the common case (none) skips the loop-back.
    watchers: Arc<AtomicUsize>,
    next_generation: Arc<AtomicU64>,
    counts: Arc<DownlinkCounts>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("sessions", &self.len()).finish()
    }
}

/// A session's side of its registry entry.
#[derive(Debug)]
pub struct Attached {
    pub generation: u64,
    pub downlink: mpsc::Receiver<Down>,
    pub kicked: oneshot::Receiver<Kick>,
    /// Set by the session while one of its subscriptions can match the prefix's own uplink
    /// topics (a tool watching `/tenants/{prefix}/#`); only then is uplink looped back to it.
    pub wants_up: Arc<AtomicBool>,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Entry>>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers the session `client_id` of `prefix` with a downlink queue of `queue`
    /// messages, taking over (closing) a session with the same pair; refused when the prefix
    /// holds `max_per_prefix` other sessions.
    pub fn attach(
        &self,
        prefix: &str,
        client_id: &str,
        serial: &str,
        queue: usize,
        max_per_prefix: usize,
    ) -> Result<Attached, TooManySessions> {
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let (downlink, rx) = mpsc::channel(queue.max(1));
        let (kick, kicked) = oneshot::channel();
        let wants_up = Arc::new(AtomicBool::new(false));
        let entry = Entry {
            client_id: client_id.to_owned(),
            generation,
            serial: serial.to_owned(),
            downlink,
            kick: Some(kick),
            wants_up: wants_up.clone(),
        };
        let mut sessions = self.lock();
        let entries = sessions.entry(prefix.to_owned()).or_default();
        match entries.iter().position(|e| e.client_id == client_id) {
            Some(i) => std::mem::replace(&mut entries[i], entry).kick(Kick::TakenOver, &self.watchers),
            None if entries.len() >= max_per_prefix => return Err(TooManySessions(entries.len())),
            None => {
                entries.push(entry);
                self.total.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(Attached {
            generation,
            downlink: rx,
            kicked,
            wants_up,
        })
    }

    /// Removes the session `generation` of `prefix`, if it is still registered.
    pub fn detach(&self, prefix: &str, generation: u64) {
        let mut sessions = self.lock();
        if let Some(entries) = sessions.get_mut(prefix)
            && let Some(i) = entries.iter().position(|e| e.generation == generation)
        {
            let entry = entries.swap_remove(i);
            if entry.wants_up.load(Ordering::Relaxed) {
                self.watchers.fetch_sub(1, Ordering::Relaxed);
            }
            self.total.fetch_sub(1, Ordering::Relaxed);
            if entries.is_empty() {
                sessions.remove(prefix);
            }
        }
    }

    /// Hands a message to every session of `prefix` without waiting.
    pub fn deliver(&self, prefix: &str, down: Down) -> Delivery {
        let delivery = self.send(prefix, down, false);
        let counter = match delivery {
            Delivery::Queued => &self.counts.queued,
            Delivery::Offline => &self.counts.offline,
            Delivery::Full => &self.counts.full,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        delivery
    }

    /// Loops a message a device of `prefix` published back to the prefix's sessions that
    /// subscribed to its uplink (MQTT delivers a publish to every matching subscription).
    pub fn loop_back(&self, prefix: &str, up: impl FnOnce() -> Down) {
        if self.watchers.load(Ordering::Relaxed) > 0 {
            self.send(prefix, up(), true);
        }
    }

    /// Marks a session as watching its prefix's uplink, or not.
    pub fn set_watching(&self, wants_up: &AtomicBool, watching: bool) {
        if wants_up.swap(watching, Ordering::Relaxed) != watching {
            if watching {
                self.watchers.fetch_add(1, Ordering::Relaxed);
            } else {
                self.watchers.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    fn send(&self, prefix: &str, down: Down, only_watchers: bool) -> Delivery {
        let senders: Vec<mpsc::Sender<Down>> = match self.lock().get(prefix) {
            None => return Delivery::Offline,
            Some(entries) => entries
                .iter()
                .filter(|e| !only_watchers || e.wants_up.load(Ordering::Relaxed))
                .map(|e| e.downlink.clone())
                .collect(),
        };
        let mut delivery = Delivery::Offline;
        for tx in senders {
            match tx.try_send(down.clone()) {
                Ok(()) => delivery = Delivery::Queued,
                Err(mpsc::error::TrySendError::Full(_)) if delivery == Delivery::Offline => delivery = Delivery::Full,
                Err(_) => {}
            }
        }
        delivery
    }

    /// Closes the sessions of `prefix` because its certificates no longer count. True when
    /// one was connected.
    pub fn refuse_prefix(&self, prefix: &str) -> bool {
        let entries = self.lock().remove(prefix).unwrap_or_default();
        self.total.fetch_sub(entries.len(), Ordering::Relaxed);
        let any = !entries.is_empty();
        entries.into_iter().for_each(|e| e.kick(Kick::Refused, &self.watchers));
        any
    }

    /// Closes every session connected with the certificate `serial`; how many there were.
    pub fn refuse_serial(&self, serial: &str) -> usize {
        let mut refused = Vec::new();
        {
            let mut sessions = self.lock();
            for entries in sessions.values_mut() {
                let mut i = 0;
                while i < entries.len() {
                    if entries[i].serial == serial {
                        refused.push(entries.swap_remove(i));
                    } else {
                        i += 1;
                    }
                }
            }
            sessions.retain(|_, e| !e.is_empty());
        }
        self.total.fetch_sub(refused.len(), Ordering::Relaxed);
        let n = refused.len();
        refused.into_iter().for_each(|e| e.kick(Kick::Refused, &self.watchers));
        n
    }

    /// Connected sessions.
    pub fn len(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when a session for `prefix` is registered.
    pub fn is_connected(&self, prefix: &str) -> bool {
        self.lock().contains_key(prefix)
    }

    pub fn counts(&self) -> &DownlinkCounts {
        &self.counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attach(registry: &Registry, prefix: &str, client: &str, serial: &str, queue: usize) -> Attached {
        registry
            .attach(prefix, client, serial, queue, 2)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn down(topic: &str) -> Down {
        Down {
            topic: topic.into(),
            payload: Bytes::from_static(b"x"),
        }
    }

    #[test]
    fn a_message_reaches_the_session_of_its_prefix_and_no_other() {
        let registry = Registry::default();
        let mut a = attach(&registry, "pa", "one", "01", 4);
        let mut b = attach(&registry, "pb", "one", "02", 4);
        assert_eq!(
            registry.deliver("pa", down("/tenants/pa/down/command")),
            Delivery::Queued
        );
        assert_eq!(
            registry.deliver("pc", down("/tenants/pc/down/command")),
            Delivery::Offline
        );
        assert_eq!(
            a.downlink.try_recv().map(|d| d.topic).ok().as_deref(),
            Some("/tenants/pa/down/command")
        );
        assert!(b.downlink.try_recv().is_err());
        assert_eq!(registry.counts().offline.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_full_queue_drops_instead_of_waiting() {
        let registry = Registry::default();
        let _a = attach(&registry, "pa", "one", "01", 2);
        for _ in 0..2 {
            assert_eq!(registry.deliver("pa", down("t")), Delivery::Queued);
        }
        assert_eq!(registry.deliver("pa", down("t")), Delivery::Full);
    }

    #[test]
    fn a_second_connection_takes_over_and_the_first_cannot_remove_it() {
        let registry = Registry::default();
        let mut first = attach(&registry, "pa", "one", "01", 4);
        let second = attach(&registry, "pa", "one", "01", 4);
        assert_eq!(first.kicked.try_recv(), Ok(Kick::TakenOver));
        registry.detach("pa", first.generation);
        assert!(registry.is_connected("pa"), "the successor stays");
        registry.detach("pa", second.generation);
        assert!(registry.is_empty());
    }

    #[test]
    fn refusal_closes_by_prefix_or_by_serial() {
        let registry = Registry::default();
        let mut a = attach(&registry, "pa", "one", "0a", 4);
        let mut b = attach(&registry, "pb", "one", "0b", 4);
        assert!(registry.refuse_prefix("pa"));
        assert_eq!(a.kicked.try_recv(), Ok(Kick::Refused));
        assert!(!registry.refuse_prefix("pa"));
        assert_eq!(registry.refuse_serial("0b"), 1);
        assert_eq!(b.kicked.try_recv(), Ok(Kick::Refused));
        assert!(registry.is_empty());
    }
}
