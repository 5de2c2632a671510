//! The `diagnostics` command's answer: what an operator needs to understand a screen from afar
//! (versions, addresses, memory, disks, the telemetry queue and the agent's recent log lines),
//! as JSON in the acknowledgement's detail, at most [`MAX_BYTES`].
//!
//! The recent log lines come from [`RecentLog`], a tracing layer that keeps the last
//! [`LOG_LINES`] events at INFO and above whatever the console's filter shows. The agent never
//! logs secrets (tokens and keys are not formatted into events), so the lines may leave the
//! screen.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};

use serde::Serialize;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use crate::outbox::Outbox;

/// Largest answer, in bytes of JSON (an acknowledgement must stay under 16 KiB).
pub const MAX_BYTES: usize = 8 * 1024;
/// Log lines kept.
pub const LOG_LINES: usize = 50;
/// Longest log line kept, in bytes.
const MAX_LINE: usize = 300;
/// Most disks and addresses listed.
const MAX_ITEMS: usize = 16;

fn recent() -> &'static Mutex<VecDeque<String>> {
    static RECENT: OnceLock<Mutex<VecDeque<String>>> = OnceLock::new();
    RECENT.get_or_init(|| Mutex::new(VecDeque::with_capacity(LOG_LINES)))
}

/// Keeps the process's last [`LOG_LINES`] events at INFO and above for [`report`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RecentLog;

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value}");
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary.
fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

impl<S: Subscriber> Layer<S> for RecentLog {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        // More verbose levels compare greater.
        if *meta.level() > Level::INFO {
            return;
        }
        let mut line = Line(format!(
            "{} {} {}:",
            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ"),
            meta.level(),
            meta.target()
        ));
        event.record(&mut line);
        let mut kept = recent().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if kept.len() >= LOG_LINES {
            kept.pop_front();
        }
        kept.push_back(truncate(line.0, MAX_LINE));
    }
}

#[derive(Debug, Serialize)]
struct Disk {
    mount: String,
    total_bytes: u64,
    free_bytes: u64,
}

#[derive(Debug, Serialize)]
struct Telemetry {
    stream: String,
    queued: u64,
    dropped: u64,
    next_seq: u64,
}

#[derive(Debug, Serialize)]
struct Report {
    agent_version: &'static str,
    platform: String,
    hostname: Option<String>,
    os: Option<String>,
    uptime_s: u64,
    /// `interface address/prefix`, loopback left out.
    addresses: Vec<String>,
    memory_used_bytes: u64,
    memory_total_bytes: u64,
    disks: Vec<Disk>,
    telemetry: Telemetry,
    /// Oldest first.
    recent_log: Vec<String>,
}

/// The answer to `diagnostics`, as JSON of at most [`MAX_BYTES`] (the oldest log lines go
/// first when it would be longer).
pub fn report(outbox: &Outbox) -> String {
    let mut system = sysinfo::System::new();
    system.refresh_memory();
    let disks = sysinfo::Disks::new_with_refreshed_list();
    let networks = sysinfo::Networks::new_with_refreshed_list();
    let mut addresses: Vec<String> = networks
        .iter()
        .flat_map(|(name, data)| {
            data.ip_networks()
                .iter()
                .filter(|n| !n.addr.is_loopback())
                .map(move |n| format!("{name} {}/{}", n.addr, n.prefix))
        })
        .collect();
    addresses.sort();
    addresses.truncate(MAX_ITEMS);
    let stats = outbox.stats();
    let mut report = Report {
        agent_version: crate::sampler::agent_version(),
        platform: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
        hostname: sysinfo::System::host_name(),
        os: sysinfo::System::long_os_version(),
        uptime_s: sysinfo::System::uptime(),
        addresses,
        memory_used_bytes: system.used_memory(),
        memory_total_bytes: system.total_memory(),
        disks: disks
            .list()
            .iter()
            .take(MAX_ITEMS)
            .map(|d| Disk {
                mount: truncate(d.mount_point().display().to_string(), 200),
                total_bytes: d.total_space(),
                free_bytes: d.available_space(),
            })
            .collect(),
        telemetry: Telemetry {
            stream: stats.stream,
            queued: stats.queued,
            dropped: stats.dropped,
            next_seq: stats.next_seq,
        },
        recent_log: recent()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .cloned()
            .collect(),
    };
    loop {
        let text = serde_json::to_string(&report).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
        if text.len() <= MAX_BYTES || report.recent_log.is_empty() {
            return text;
        }
        report.recent_log.remove(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn the_report_names_the_agent_and_keeps_recent_lines_within_its_size() {
        let outbox = Outbox::in_memory(4096);
        let subscriber = tracing_subscriber::registry().with(RecentLog);
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!("not kept");
            for i in 0..200 {
                tracing::warn!(attempt = i, "{}", "x".repeat(400));
            }
            tracing::info!(device_id = "abc", "connected");
        });
        let text = report(&outbox);
        assert!(text.len() <= MAX_BYTES, "{} bytes", text.len());
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(v["agent_version"], crate::sampler::agent_version());
        assert_eq!(v["telemetry"]["queued"], 0);
        let lines = v["recent_log"].as_array().cloned().unwrap_or_default();
        assert!(!lines.is_empty() && lines.len() <= LOG_LINES);
        let last = lines.last().and_then(|l| l.as_str()).unwrap_or_default();
        assert!(
            last.contains("INFO") && last.contains("connected") && last.contains("device_id=abc"),
            "{last}"
        );
        assert!(
            lines
                .iter()
                .all(|l| !l.as_str().unwrap_or_default().contains("not kept"))
        );
    }
}
