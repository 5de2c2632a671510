//! Alerts: tenant rules evaluated against the screens, and the alerts they open.
//!
//! - [`rule`]: what a tenant writes (target, condition, severity), checked field by field, and
//!   the defaults every new tenant starts with.
//! - [`lifecycle`]: the alert state machine (open → acknowledged → resolved) and the one
//!   decision taken per (rule, screen) and reading, with hysteresis and `for_s`.
//! - [`engine`]: the evaluator task (one per installation, under a lease).
//!
//! Alerts are stored through the tenant handle (`TenantStore::alerts`); rules are tenant
//! documents (`alert_rule`). REST is in `api::alerts`, live updates are `alert:update`.

pub mod engine;
pub mod lifecycle;
pub mod rule;
pub mod silence;

pub use engine::AlertEngine;
