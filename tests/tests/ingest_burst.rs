//! A burst of valid device messages is ingested completely: rumqttd keeps one commit log per
//! subscription filter, and the control plane's filter must hold a burst while the writer works.

use std::process::Command;
use std::time::Duration;

use luach_tests::{python, spawn_app, wait_for};

const BURST: u64 = 20_000;

fn counter(text: &str, line_prefix: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(line_prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_messages_is_ingested_without_loss() {
    let app = spawn_app(|_| {}).await;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("py/burst_mqtt.py");
    let out = Command::new(python())
        .arg(&script)
        .args(["127.0.0.1", &app.mqtt.port().to_string(), "burst1", &BURST.to_string()])
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "burst client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let api = app.api.clone();
    wait_for(
        "every heartbeat of the burst to be stored",
        Duration::from_secs(60),
        || {
            let api = api.clone();
            async move {
                let text = api.metrics_text().await;
                let received = counter(&text, "luach_mqtt_messages_in_total{kind=\"heartbeat\"} ");
                let stored = counter(&text, "luach_ingest_messages_stored_total ");
                (received == BURST && stored == BURST + 1).then_some(())
            }
        },
    )
    .await;
}
