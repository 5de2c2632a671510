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
//! Metrics samples and events go through the telemetry queue ([`outbox`]): numbered, written
//! to disk within a byte budget before they are sent, and deleted only when the control plane
//! answers that it stored them, so an outage or a restart loses none (a full budget drops the
//! oldest and counts them).
//!
//! The session runs over mutual TLS with a certificate from the control plane's device CA
//! ([`credentials`]): on first start the agent generates its own P-256 key, asks to be
//! enrolled ([`enrol`]) with a bulk token or with a claim code that someone types into the
//! dashboard, and afterwards renews the certificate for the same key after 2/3 of its life
//! ([`renew`]). Plain TCP remains for development (`--plain-mqtt`).
//!
//! The screen's content arrives as a bundle ([`bundle`]): the control plane announces each
//! version over MQTT, the agent fetches it over HTTP with the device token from the notice,
//! checks it and keeps it on disk, and shows the last good one while offline
//! (`luach-agent show` prints the day it draws, computed offline with `luach-content`).
//!
//! The screen itself ([`screen`], drawn by `luach-board`) answers commands that act on it
//! ([`actions`]): screenshots of the latest frame uploaded to the control plane; brightness,
//! volume, display power, device restarts and allow-listed packages through the [`platform`]
//! (sysfs backlight, ALSA, HDMI-CEC, DPMS, systemd, apt, or configured commands;
//! `unsupported` with the reason where absent); a full content fetch through the bundle task;
//! an operator's power schedule and agent settings kept in the state directory ([`settings`]);
//! and a restart of the agent in place, after the answer is on its way
//! ([`actions::Lifecycle`]). Every command id runs at most once across restarts ([`seen`]).
//!
//! The agent updates itself from signed releases ([`update`]): the `update` command's
//! metadata is verified against the screen's trusted root and counters, the artifact fetched
//! resumably and checked, staged in a slot of its own and switched in atomically; the
//! supervisor (`luach-agent supervise`, what the service runs) starts it on trial and rolls it
//! back when it does not connect, draw and report within the health window or keeps failing
//! to start.
//!
//! [`sim`] runs many simulated screens in one process, each with its own connection and
//! identity, for tests, demos and benchmarks.

pub mod actions;
pub mod backoff;
pub mod bundle;
pub mod credentials;
pub mod diagnostics;
pub mod display;
pub mod enrol;
pub mod identity;
pub mod outbox;
pub mod platform;
pub mod render;
pub mod renew;
pub mod sampler;
pub mod screen;
pub mod seen;
pub mod session;
pub mod settings;
pub mod sim;
pub mod simfx;
pub mod update;
pub mod zmanim;

/// Makes ring rustls's process-wide crypto provider. rustls 0.23 cannot pick one by itself
/// when more than one is compiled in (this workspace links both ring and aws-lc-rs), and
/// rumqttc's TLS setup would panic; call this once before any TLS connection.
pub fn install_crypto_provider() {
    // An error means a provider is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub use session::{DeviceSession, SessionConfig};
