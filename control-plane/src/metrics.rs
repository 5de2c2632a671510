//! Prometheus metrics of the control plane, served at `/metrics` in the text format.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// All metric families, registered once per process (tests create one per application).
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
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

fn register<T: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: T) -> T {
    // Names are fixed and unique within this module, so registration cannot collide.
    if let Err(e) = registry.register(Box::new(metric.clone())) {
        tracing::error!(error = %e, "metric registration failed");
    }
    metric
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), labels).unwrap_or_else(|e| unreachable_metric(name, e));
    register(registry, metric)
}

fn histogram_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec());
    let metric = HistogramVec::new(opts, labels).unwrap_or_else(|e| unreachable_metric(name, e));
    register(registry, metric)
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
        let registry = Registry::new();
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).unwrap_or_else(|e| unreachable_metric(name, e));
            register(&registry, g)
        };
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).unwrap_or_else(|e| unreachable_metric(name, e));
            register(&registry, c)
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
                register(&registry, g)
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
            registry,
        }
    }

    /// Renders every family in the Prometheus text exposition format, with the MQTT edge's
    /// counters when it runs.
    pub fn render(&self, edge: Option<&luach_broker::Edge>, external: Option<&luach_broker::ExternalBroker>) -> String {
        let mut families = self.registry.gather();
        if let Some(edge) = edge {
            families.extend(edge_families(edge));
        }
        if let Some(external) = external {
            families.extend(external_families(external));
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
    errors: Vec<String>,
}

impl Scraped {
    fn new() -> Self {
        Self {
            registry: Registry::new(),
            errors: Vec::new(),
        }
    }

    fn register(&mut self, family: Result<Box<dyn prometheus::core::Collector>, prometheus::Error>) {
        if let Err(e) = family.and_then(|f| self.registry.register(f)) {
            self.errors.push(e.to_string());
        }
    }

    fn gauge(&mut self, name: &str, help: &str, value: i64) {
        self.register(IntGauge::new(name, help).map(|g| {
            g.set(value);
            Box::new(g) as Box<dyn prometheus::core::Collector>
        }));
    }

    fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.register(IntCounter::new(name, help).map(|c| {
            c.inc_by(value);
            Box::new(c) as Box<dyn prometheus::core::Collector>
        }));
    }

    fn counter_by(&mut self, name: &str, help: &str, label: &str, values: &[(&str, u64)]) {
        self.register(IntCounterVec::new(Opts::new(name, help), &[label]).map(|family| {
            for (value, n) in values {
                family.with_label_values(&[value]).inc_by(*n);
            }
            Box::new(family) as Box<dyn prometheus::core::Collector>
        }));
    }

    fn gather(self, what: &str) -> Vec<prometheus::proto::MetricFamily> {
        for e in self.errors {
            tracing::error!(error = %e, what, "metric not rendered");
        }
        self.registry.gather()
    }
}

/// The external broker connection's counters, read at scrape time.
fn external_families(external: &luach_broker::ExternalBroker) -> Vec<prometheus::proto::MetricFamily> {
    use std::sync::atomic::Ordering::Relaxed;
    let c = external.counts();
    let mut out = Scraped::new();
    out.gauge(
        "luach_mqtt_external_connected",
        "1 while the control plane is connected to the external MQTT broker.",
        i64::from(external.connected()),
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
    out.gather("external broker")
}

/// The edge's counters as metric families, read from its atomics at scrape time.
fn edge_families(edge: &luach_broker::Edge) -> Vec<prometheus::proto::MetricFamily> {
    let c = edge.counts();
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
        count(edge.refused().1),
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
    out.gather("mqtt edge")
}
