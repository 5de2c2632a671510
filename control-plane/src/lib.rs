//! Luach control plane: the server behind every screen.
//!
//! One process (`luach-server serve`) runs:
//! - an embedded MQTT broker ([`luach_broker`], rumqttd) that screens connect to over mutual
//!   TLS with certificates from the device CA ([`enrolment`]);
//! - the [`ingest`] pipeline, which reads every device's messages through an in-process link,
//!   tracks presence as a state machine and writes coalesced batches to the [`store`];
//! - the HTTP [`api`] (axum) under `/api/v1`, plus `/healthz`, `/readyz`, `/metrics`;
//! - [`live`] events over Socket.IO (socketioxide), fanned out through Redis when configured;
//! - the [`jobs`] engine (commands for many screens) and the [`alerts`] evaluator (tenant rules
//!   against the screens' presence and metrics);
//! - the dashboard's static files.
//!
//! Storage ([`store`]) is one seam over SQLite (default, a file in the data directory) and
//! MongoDB: handlers reach tenant data only through a [`store::TenantStore`] opened with the
//! caller's [`store::TenantScope`]; cross-tenant lookups live in the [`store::SystemStore`],
//! which only the services hold. Every change is recorded in a keyed hash chain ([`chain`],
//! [`audit`]). Start reading at [`app::Application`].
//!
//! Behind an external broker several processes can serve one installation: singleton work
//! (job passes, alert evaluation, the [`retention`] sweep) runs on the holder of a [`lease`], presence transitions
//! are decided by the store ([`ingest`]), and command answers that reach another replica are
//! passed on through Redis ([`relay`]).

pub mod admin;
pub mod alerts;
pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod bundle;
pub mod chain;
pub mod commands;
pub mod config;
pub mod down;
pub mod enrolment;
pub mod error;
pub mod external_broker;
pub mod ingest;
pub mod jobs;
pub mod keys;
pub mod lease;
pub mod live;
mod live_redis;
pub mod metrics;
pub mod notify;
pub mod relay;
pub mod releases;
pub mod retention;
pub mod screenshots;
pub mod serve;
pub mod state;
pub mod store;
pub mod web;

pub use app::Application;
pub use config::Config;
