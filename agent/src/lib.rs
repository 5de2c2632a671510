//! Luach screen agent.
//!
//! The agent keeps a screen connected to its control plane: it opens an MQTT session
//! ([`session`]) announcing itself with a hello, sends heartbeats and system metrics
//! ([`sampler`]) on configurable intervals, answers commands with acknowledgements
//! (de-duplicated by command id), and reconnects with exponential backoff and jitter
//! ([`backoff`]) whenever the link drops. Every session gets a fresh id carried by both the
//! hello and the MQTT last will, so the control plane can tell a stale will from a live
//! session.
//!
//! [`sim`] runs many simulated screens in one process, each with its own connection and
//! identity, for tests, demos and benchmarks.

pub mod backoff;
pub mod identity;
pub mod sampler;
pub mod session;
pub mod sim;

pub use session::{DeviceSession, SessionConfig};
