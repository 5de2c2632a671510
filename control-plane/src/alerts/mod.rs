//! Alerts: tenant rules evaluated against the screens, and the alerts they open.
//!
//! - [`rule`]: what a tenant writes (target, condition, severity), checked field by field, and
//!   the defaults every new tenant starts with.
//! - [`lifecycle`]: the alert state machine (open → acknowledged → resolved) and the one
//!   decision taken per (rule, screen) and reading, with hysteresis and `for_s`.
//! - [`trend`]: readings over time, for rate, flapping and disk projections.
//! - [`checks`]: scheduled checks (content, certificates, disks, Shabbat readiness).
//! - [`engine`]: the evaluator task (one per installation, under a lease).
//! - [`silence`]: silences, which keep matching alerts from telling anyone.
//!
//! Alerts are stored through the tenant handle (`TenantStore::alerts`); rules are tenant
//! documents (`alert_rule`). REST is in `api::alerts`, live updates are `alert:update`.

pub mod checks;
pub mod engine;
pub mod lifecycle;
pub mod rule;
pub mod silence;
pub mod trend;

pub use engine::AlertEngine;
