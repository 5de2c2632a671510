//! Operational endpoints: liveness, readiness, metrics, agent bootstrap.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use serde_json::json;

use super::devices::{DataBody, data};
use crate::state::AppState;

/// `/healthz`: the process is up.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
struct Check {
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// `/readyz`: the store answers and the broker accepts connections. The answer names what
/// failed in plain words (anyone may call it); the cause is logged.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let failed = |what: &'static str| Check {
        ok: false,
        error: Some(what.to_owned()),
    };
    let store = match tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => Check { ok: true, error: None },
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: store ping failed");
            failed("store unavailable")
        }
        Err(_) => {
            tracing::warn!("readiness: store ping timed out");
            failed("store did not answer in time")
        }
    };
    let broker = if !state.broker.running() {
        failed(if state.broker.external().is_some() {
            "not connected to the external mqtt broker"
        } else {
            "mqtt listener stopped"
        })
    } else if let Err(e) = state.commands.probe_broker().await {
        tracing::warn!(error = %e, "readiness: broker probe failed");
        failed("broker unavailable")
    } else {
        Check { ok: true, error: None }
    };
    let ready = store.ok && broker.ok;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(
            json!({"ready": ready, "checks": {"store": store, "broker": broker}, "store_backend": state.store.backend()}),
        ),
    )
}

/// `/metrics`: Prometheus text exposition format.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(state.broker.edge(), state.broker.external()),
    )
}

/// The host of the HTTP request (without its port), as agents reached this server.
fn request_host(headers: &HeaderMap) -> &str {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(host_without_port)
        .unwrap_or("localhost")
}

/// Where agents reach the broker's mutual-TLS listener: `http.public_mqtt_tls`, else the
/// request's host and the listener's port. `None` when the listener does not run. IPv6 hosts
/// come without brackets. With an external broker, `http.public_mqtt_tls` (which the
/// configuration then requires) names the broker's device listener.
pub(super) fn mqtt_tls_endpoint(state: &AppState, headers: &HeaderMap) -> Option<(String, u16)> {
    let port = match (state.broker.tls_addr(), state.broker.external()) {
        (Some(addr), _) => addr.port(),
        (None, Some(_)) => 8883,
        (None, None) => return None,
    };
    let (host, port) = match &state.config.http.public_mqtt_tls {
        // `Config::validate` checked the form.
        Some(public) => public
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.to_owned(), p.parse().ok()?)))
            .unwrap_or_else(|| (request_host(headers).to_owned(), port)),
        None => (request_host(headers).to_owned(), port),
    };
    Some((host.trim_start_matches('[').trim_end_matches(']').to_owned(), port))
}

/// Where an agent finds the broker.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Bootstrap {
    /// The plain development listener, `host:port`.
    mqtt: Option<String>,
    /// The mutual-TLS listener, `host:port`.
    mqtt_tls: Option<String>,
    /// The MQTT message schema version this server speaks.
    schema_version: u32,
}

/// `/api/v1/agent/bootstrap`: where an agent that knows only the server URL finds the broker:
/// `mqtt_tls` (mutual TLS, what enrolled agents use) and `mqtt` (the plain development
/// listener); each `null` when that listener does not run.
pub async fn bootstrap(State(state): State<AppState>, headers: HeaderMap) -> Json<DataBody<Bootstrap>> {
    let mqtt = state.broker.plain_addr().map(|addr| {
        state
            .config
            .http
            .public_mqtt
            .clone()
            .unwrap_or_else(|| format!("{}:{}", request_host(&headers), addr.port()))
    });
    let mqtt_tls = mqtt_tls_endpoint(&state, &headers).map(|(host, port)| {
        if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        }
    });
    data(Bootstrap {
        mqtt,
        mqtt_tls,
        schema_version: luach_schemas::SCHEMA_VERSION,
    })
}

fn host_without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        // [::1]:8080
        return rest.split(']').next().map_or(host, |h| &host[..h.len() + 2]);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_port_split() {
        assert_eq!(super::host_without_port("example.org:8080"), "example.org");
        assert_eq!(super::host_without_port("example.org"), "example.org");
        assert_eq!(super::host_without_port("[::1]:8080"), "[::1]");
    }
}
