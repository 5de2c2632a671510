//! Notifications: telling people about alerts by email, SMS, WhatsApp and webhooks.
//!
//! - [`channel`]: what a tenant writes (where to, which alerts, quiet hours, Shabbat hold),
//!   checked field by field; stored as documents (`notify_channel`).
//! - [`route`]: which channels a change tells of and from when; the resulting messages are
//!   written to the outbox (`store::outbox`) in the same transaction as the change.
//! - [`text`]: what the messages say, in English or Hebrew.
//! - [`dispatch`]: the task that sends due messages and records each attempt (retries with
//!   back-off and jitter, failing for good, disabling a webhook that is gone).
//! - [`notices`]: congregation notices, yahrzeit and aliyah reminders to the people who asked
//!   for them (documents `congregant`), queued by the dispatcher's task.
//! - [`send`]: the senders (SMTP, Twilio's Messages API, signed webhooks) and
//!   [`guard`]: where webhooks may not go.
//!
//! REST is in `api::notify` (`/notification-channels`, `/notifications`, `/congregants`).

pub mod channel;
pub mod dispatch;
pub mod guard;
pub mod notices;
pub mod route;
pub mod send;
pub mod text;

pub use dispatch::Dispatcher;
pub use send::Senders;
