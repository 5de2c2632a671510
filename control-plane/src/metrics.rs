//! Prometheus metrics of the control plane, served at `/metrics` in the text format.
//!
//! [`Metrics::families`] lists every family the server can export, with its type and label
//! names, including vectors that have seen no label values yet (absent from `/metrics`) and
//! the MQTT edge's and external broker's families (built at scrape time). Dashboards and
//! alert rules are checked against it.

use std::cell::RefCell;
use std::sync::Arc;

use prometheus::core::Collector;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The type of a metric family.
pub use prometheus::proto::MetricType as Kind;

/// A metric family the server registers: its name, type and variable label names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Family {
    pub name: String,
    pub kind: Kind,
    pub labels: Vec<String>,
}

/// The families `collector` exports, read from its descriptors (types from an empty collect).
fn describe(collector: &dyn Collector) -> Vec<Family> {
    let collected = collector.collect();
    collector
        .desc()
        .into_iter()
        .map(|desc| Family {
            name: desc.fq_name.clone(),
            kind: collected
                .iter()
                .find(|f| f.name() == desc.fq_name)
                .map_or(Kind::UNTYPED, |f| f.get_field_type()),
            labels: desc.variable_labels.clone(),
        })
        .collect()
}

/// All metric families, registered once per process (tests create one per application).
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    families: Arc<[Family]>,
    pub devices_connected: IntGauge,
    pub mqtt_messages_in: IntCounterVec,
    pub mqtt_messages_out: IntCounterVec,
    pub mqtt_bad_payloads: IntCounterVec,
    pub ingest_stored: IntCounter,
    pub ingest_batches: IntCounter,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub store_duration: HistogramVec,
    pub store_errors: IntCounterVec,
    pub socketio_clients: IntGauge,
    pub live_events_dropped: IntCounter,
    pub http_connections: IntGauge,
    pub http_connections_refused: IntCounter,
    pub audit_checkpoint_refusals: IntCounter,
    pub job_executions: IntCounterVec,
    pub alerts: IntCounterVec,
    pub alert_passes: IntCounter,
    pub notifications: IntCounterVec,
    pub telemetry_records: IntCounterVec,
    pub leases_held: IntGaugeVec,
    pub acks_relayed: IntCounterVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

const LATENCY_BUCKETS: &[f64] = &[
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The registry being filled by [`Metrics::new`], and what went into it.
struct Registrar {
    registry: Registry,
    families: RefCell<Vec<Family>>,
}

impl Registrar {
    fn register<T: Collector + Clone + 'static>(&self, metric: T) -> T {
        // Names are fixed and unique within this module, so registration cannot collide.
        match self.registry.register(Box::new(metric.clone())) {
            Ok(()) => self.families.borrow_mut().extend(describe(&metric)),
            Err(e) => tracing::error!(error = %e, "metric registration failed"),
        }
        metric
    }
}

fn counter_vec(registry: &Registrar, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), labels).unwrap_or_else(|e| unreachable_metric(name, e));
    registry.register(metric)
}

fn histogram_vec(registry: &Registrar, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec());
    let metric = HistogramVec::new(opts, labels).unwrap_or_else(|e| unreachable_metric(name, e));
    registry.register(metric)
}

fn unreachable_metric<T>(name: &str, e: prometheus::Error) -> T {
    // Only reachable with an invalid metric name literal in this file.
    panic!("metric {name} is malformed: {e}")
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registrar {
            registry: Registry::new(),
            families: RefCell::new(Vec::new()),
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).unwrap_or_else(|e| unreachable_metric(name, e));
            registry.register(g)
        };
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).unwrap_or_else(|e| unreachable_metric(name, e));
            registry.register(c)
        };
        Self {
            devices_connected: gauge(
                "luach_devices_connected",
                "Devices online (the store's view, the same on every replica).",
            ),
            acks_relayed: counter_vec(
                &registry,
                "luach_acks_relayed_total",
                "Command acknowledgements crossing replicas through Redis: sent (no caller here), answered (a caller here got one relayed).",
                &["outcome"],
            ),
            leases_held: {
                let opts = Opts::new(
                    "luach_lease_held",
                    "1 while this replica holds the lease of a singleton task, by lease name.",
                );
                let g =
                    IntGaugeVec::new(opts, &["lease"]).unwrap_or_else(|e| unreachable_metric("luach_lease_held", e));
                registry.register(g)
            },
            mqtt_messages_in: counter_vec(
                &registry,
                "luach_mqtt_messages_in_total",
                "MQTT messages received from devices, by kind.",
                &["kind"],
            ),
            mqtt_messages_out: counter_vec(
                &registry,
                "luach_mqtt_messages_out_total",
                "MQTT messages published to devices, by kind.",
                &["kind"],
            ),
            job_executions: counter_vec(
                &registry,
                "luach_job_executions_total",
                "Job executions that ended, by final state.",
                &["state"],
            ),
            alerts: counter_vec(
                &registry,
                "luach_alerts_total",
                "Alert transitions, by what happened (opened, acknowledged, resolved).",
                &["transition"],
            ),
            alert_passes: counter("luach_alert_passes_total", "Evaluations of every tenant's alert rules."),
            notifications: counter_vec(
                &registry,
                "luach_notifications_total",
                "Notification attempts, by channel kind and outcome (sent, retried, failed).",
                &["kind", "outcome"],
            ),
            telemetry_records: counter_vec(
                &registry,
                "luach_telemetry_records_total",
                "Telemetry records received, by outcome (stored, duplicate, too_old).",
                &["outcome"],
            ),
            mqtt_bad_payloads: counter_vec(
                &registry,
                "luach_mqtt_bad_payloads_total",
                "Device messages refused, by reason.",
                &["reason"],
            ),
            ingest_stored: counter(
                "luach_ingest_messages_stored_total",
                "Device messages whose effect was written to the store.",
            ),
            ingest_batches: counter("luach_ingest_batches_total", "Presence batches written to the store."),
            http_requests: counter_vec(
                &registry,
                "luach_http_requests_total",
                "HTTP requests, by route template, method and status.",
                &["route", "method", "status"],
            ),
            http_duration: histogram_vec(
                &registry,
                "luach_http_request_duration_seconds",
                "HTTP request latency, by route template.",
                &["route"],
            ),
            store_duration: histogram_vec(
                &registry,
                "luach_store_operation_duration_seconds",
                "Store operation latency, by operation.",
                &["op"],
            ),
            store_errors: counter_vec(
                &registry,
                "luach_store_errors_total",
                "Failed store operations, by operation.",
                &["op"],
            ),
            socketio_clients: gauge("luach_socketio_clients", "Connected Socket.IO clients."),
            live_events_dropped: counter(
                "luach_live_events_dropped_total",
                "Live events dropped because the delivery queue was full.",
            ),
            http_connections: gauge("luach_http_connections", "Open HTTP connections."),
            http_connections_refused: counter(
                "luach_http_connections_refused_total",
                "HTTP connections closed at accept because http.max_connections were open.",
            ),
            audit_checkpoint_refusals: counter(
                "luach_audit_checkpoint_refusals_total",
                "Audit chain heads not written to the checkpoint because the chain did not extend it.",
            ),
            families: registry.families.take().into(),
            registry: registry.registry,
        }
    }

    /// Every family the server exports, with its type and label names: this registry's
    /// (including vectors with no values yet) and those of the MQTT edge and the external
    /// broker connection (present while they run).
    pub fn families(&self) -> Vec<Family> {
        let mut out = self.families.to_vec();
        out.extend(edge_families(&luach_broker::EdgeCounts::default(), 0).families);
        out.extend(external_families(false, &luach_broker::external::ExternalCounts::default()).families);
        out
    }

    /// Renders every family in the Prometheus text exposition format, with the MQTT edge's
    /// counters when it runs.
    pub fn render(&self, edge: Option<&luach_broker::Edge>, external: Option<&luach_broker::ExternalBroker>) -> String {
        let mut families = self.registry.gather();
        if let Some(edge) = edge {
            families.extend(edge_families(&edge.counts(), edge.refused().1).gather("mqtt edge"));
        }
        if let Some(external) = external {
            families.extend(external_families(external.connected(), external.counts()).gather("external broker"));
        }
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&families, &mut buf) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// Metric families built at scrape time from values read off atomics (a registry of their
/// own, so the broker crate keeps no Prometheus types). A family that cannot be built is
/// logged and left out; the rest are rendered.
struct Scraped {
    registry: Registry,
    families: Vec<Family>,
    errors: Vec<String>,
}

impl Scraped {
    fn new() -> Self {
        Self {
            registry: Registry::new(),
            families: Vec::new(),
            errors: Vec::new(),
        }
    }

    fn register(&mut self, family: Result<Box<dyn Collector>, prometheus::Error>) {
        let registered = family.and_then(|f| {
            let described = describe(f.as_ref());
            self.registry.register(f).map(|()| described)
        });
        match registered {
            Ok(described) => self.families.extend(described),
            Err(e) => self.errors.push(e.to_string()),
        }
    }

    fn gauge(&mut self, name: &str, help: &str, value: i64) {
        self.register(IntGauge::new(name, help).map(|g| {
            g.set(value);
            Box::new(g) as Box<dyn Collector>
        }));
    }

    fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.register(IntCounter::new(name, help).map(|c| {
            c.inc_by(value);
            Box::new(c) as Box<dyn Collector>
        }));
    }

    fn counter_by(&mut self, name: &str, help: &str, label: &str, values: &[(&str, u64)]) {
        self.register(IntCounterVec::new(Opts::new(name, help), &[label]).map(|family| {
            for (value, n) in values {
                family.with_label_values(&[value]).inc_by(*n);
            }
            Box::new(family) as Box<dyn Collector>
        }));
    }

    fn gather(self, what: &str) -> Vec<prometheus::proto::MetricFamily> {
        for e in self.errors {
            tracing::error!(error = %e, what, "metric not rendered");
        }
        self.registry.gather()
    }
}

/// The external broker connection's state and counters, read at scrape time.
fn external_families(connected: bool, c: &luach_broker::external::ExternalCounts) -> Scraped {
    use std::sync::atomic::Ordering::Relaxed;
    let mut out = Scraped::new();
    out.gauge(
        "luach_mqtt_external_connected",
        "1 while the control plane is connected to the external MQTT broker.",
        i64::from(connected),
    );
    for (name, help, value) in [
        (
            "luach_mqtt_external_connects_total",
            "Connections the external broker accepted.",
            &c.connects,
        ),
        (
            "luach_mqtt_external_failures_total",
            "Connections to the external broker lost or refused.",
            &c.failures,
        ),
        (
            "luach_mqtt_external_received_total",
            "Device messages received from the external broker.",
            &c.received,
        ),
        (
            "luach_mqtt_external_published_total",
            "Messages published to devices through the external broker.",
            &c.published,
        ),
    ] {
        out.counter(name, help, value.load(Relaxed));
    }
    out
}

/// The edge's counters as metric families, read from its atomics at scrape time, and how many
/// enrolments it refuses.
fn edge_families(c: &luach_broker::EdgeCounts, refused_enrolments: usize) -> Scraped {
    let mut out = Scraped::new();
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    out.gauge(
        "luach_mqtt_edge_sockets",
        "Sockets open on the MQTT TLS port (handshaking or connected).",
        count(c.open),
    );
    out.gauge(
        "luach_mqtt_edge_handshakes",
        "TLS handshakes and CONNECTs in progress on the MQTT TLS port.",
        count(c.handshaking),
    );
    out.gauge(
        "luach_mqtt_edge_sessions",
        "Device sessions connected through the edge.",
        count(c.sessions),
    );
    out.gauge(
        "luach_mqtt_edge_refused_enrolments",
        "Enrolments (topic prefixes) whose certificates the edge refuses: revoked or superseded.",
        count(refused_enrolments),
    );
    out.counter_by(
        "luach_mqtt_edge_session_ends_total",
        "Device sessions ended, by why.",
        "reason",
        &[
            ("disconnect", c.ended_clean),
            ("lost", c.ended_lost),
            ("taken_over", c.taken_over),
            ("refused", c.refused),
            ("violation", c.violations),
            ("over_rate", c.over_rate),
            ("bad_will", c.bad_will),
        ],
    );
    out.counter_by(
        "luach_mqtt_edge_downlink_total",
        "Messages for devices handed to the edge, by what became of them.",
        "result",
        &[
            ("queued", c.downlink_queued),
            ("offline", c.downlink_offline),
            ("full", c.downlink_full),
        ],
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The type and label names `families` lists for `name`.
    fn listed(families: &[Family], name: &str) -> (Kind, Vec<String>) {
        let family = families
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("{name} not listed"));
        (family.kind, family.labels.clone())
    }

    fn labels(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn families_list_vectors_without_values_and_the_broker_families() {
        let metrics = Metrics::new();
        let families = metrics.families();
        let text = metrics.render(None, None);

        assert!(!text.contains("luach_http_requests_total"), "{text}");
        assert_eq!(
            listed(&families, "luach_http_requests_total"),
            (Kind::COUNTER, labels(&["route", "method", "status"]))
        );
        assert_eq!(
            listed(&families, "luach_store_operation_duration_seconds"),
            (Kind::HISTOGRAM, labels(&["op"]))
        );
        assert_eq!(listed(&families, "luach_devices_connected"), (Kind::GAUGE, vec![]));
        assert_eq!(
            listed(&families, "luach_mqtt_edge_session_ends_total"),
            (Kind::COUNTER, labels(&["reason"]))
        );
        assert_eq!(
            listed(&families, "luach_mqtt_edge_downlink_total"),
            (Kind::COUNTER, labels(&["result"]))
        );
        assert_eq!(
            listed(&families, "luach_mqtt_external_connected"),
            (Kind::GAUGE, vec![])
        );

        let mut names: Vec<_> = families.iter().map(|f| f.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), families.len(), "a family is listed twice");
    }

    #[test]
    fn every_rendered_family_is_listed_with_its_type() {
        let metrics = Metrics::new();
        metrics
            .http_requests
            .with_label_values(&["/api/v1/devices", "GET", "200"])
            .inc();
        metrics
            .http_duration
            .with_label_values(&["/api/v1/devices"])
            .observe(0.01);
        metrics.leases_held.with_label_values(&["jobs"]).set(1);
        let families = metrics.families();
        let text = metrics.render(None, None);
        let types: Vec<(&str, &str)> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_once(' '))
            .collect();
        assert!(types.len() > 10, "{text}");
        for (name, kind) in types {
            let (listed, _) = listed(&families, name);
            assert_eq!(format!("{listed:?}").to_lowercase(), kind, "{name}");
        }
    }
}
