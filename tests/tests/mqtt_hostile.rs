//! Malformed and hostile MQTT traffic from real clients never crashes or stalls ingest.

use std::process::Command;
use std::time::Duration;

use luach_tests::{python, spawn_app, wait_for};

fn metric(text: &str, prefix: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_payloads_are_counted_and_ingest_keeps_going() {
    let app = spawn_app(|c| c.ingest.bad_payload_log_interval_secs = 3600).await;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("py/hostile_mqtt.py");
    let out = Command::new(python())
        .arg(&script)
        .args(["127.0.0.1", &app.mqtt.port().to_string(), "goodpaho1"])
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "hostile client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // mosquitto_pub too: a second independent client implementation.
    let status = Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &app.mqtt.port().to_string(),
            "-i",
            "evil2",
            "-q",
            "1",
        ])
        .args(["-t", "/tenants/evil2/up/metrics", "-m", "{\"v\":1,\"id\":\"x\"}"])
        .status()
        .unwrap_or_else(|e| panic!("mosquitto_pub not available ({e}); scripts/test.sh installs mosquitto-clients"));
    assert!(status.success());

    // The valid hello sent after all the garbage arrives: the pipeline did not stall.
    let api = app.api.clone();
    wait_for("the good device to come online", Duration::from_secs(30), || {
        let api = api.clone();
        async move {
            let (_, body) = api.get("/api/v1/devices/goodpaho1").await;
            (body["data"]["status"] == "online").then_some(())
        }
    })
    .await;
    let (code, body) = app.api.get("/readyz").await;
    assert_eq!(code, 200, "{body}");

    let text = app.api.metrics_text().await;
    for reason in ["json", "schema", "version", "type_mismatch", "too_large", "topic"] {
        let n = metric(&text, &format!("luach_mqtt_bad_payloads_total{{reason=\"{reason}\"}}"));
        assert!(n > 0, "no bad payloads counted for {reason}:\n{text}");
    }
    // Garbage never registered a device; only the good one exists.
    let (_, body) = app.api.get("/api/v1/devices").await;
    assert_eq!(body["data"]["total"], 1, "{body}");
}
