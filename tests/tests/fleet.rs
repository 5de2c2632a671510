//! End to end with the real binaries: `luach-server` and `luach-agent sim` as processes.

use std::time::Duration;

use luach_tests::{Must, Server, ServerOptions, Sim, promtool_check, wait_for};
use serde_json::json;

const FLEET: u64 = 20;

async fn wait_counts(server: &Server, online: u64, offline: u64, limit: Duration) {
    let api = server.api.clone();
    wait_for(&format!("{online} online and {offline} offline"), limit, || {
        let api = api.clone();
        async move {
            let (on, off) = (api.count("online").await?, api.count("offline").await?);
            (on == online && off == offline).then_some(())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_online_survives_server_restart_then_goes_offline() {
    let dir = tempfile::tempdir().must();
    let options = ServerOptions::new(dir.path());
    let mut server = Server::start(options.clone()).await;
    // The simulator knows only the server URL and a bulk enrolment token: every screen enrols,
    // discovers the broker through bootstrap and connects over mutual TLS.
    let mut sim = Sim::start(&server.api, FLEET as usize, "fleet", &[]).await;

    wait_counts(&server, FLEET, 0, Duration::from_secs(60)).await;

    // Every device reported hello details and metrics.
    let (_, body) = server.api.get("/api/v1/devices/fleet00007").await;
    assert_eq!(
        body["data"]["platform"].as_str().map(|p| p.starts_with("linux")),
        Some(true),
        "{body}"
    );
    assert!(body["data"]["agent_version"].is_string(), "{body}");
    let api = server.api.clone();
    wait_for("metrics snapshot stored", Duration::from_secs(30), || {
        let api = api.clone();
        async move {
            let (_, body) = api.get("/api/v1/devices/fleet00007").await;
            body["data"]["metrics"]["mem_total_bytes"].as_u64().filter(|m| *m > 0)
        }
    })
    .await;

    // A ping travels REST → broker → agent → ack → REST.
    let (code, body) = server.api.post("/api/v1/devices/fleet00003/ping", &json!({})).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["status"], "ok");
    let (code, body) = server.api.post("/api/v1/devices/nosuch/ping", &json!({})).await;
    assert_eq!((code, body["error"]["code"].as_str()), (404, Some("not_found")));

    // /metrics with live traffic still passes promtool and counts the fleet.
    let text = server.api.metrics_text().await;
    promtool_check(&text);
    assert!(text.contains(&format!("luach_devices_connected {FLEET}")), "{text}");

    // Restart the server (hard kill, same ports and data): agents come back by themselves.
    server.kill();
    let server = Server::start(options).await;
    wait_counts(&server, FLEET, 0, Duration::from_secs(90)).await;

    // Kill the simulator: the broker fires every last will, all go offline.
    sim.kill();
    wait_counts(&server, 0, FLEET, Duration::from_secs(30)).await;
    let (code, body) = server.api.post("/api/v1/devices/fleet00003/ping", &json!({})).await;
    assert_eq!((code, body["error"]["code"].as_str()), (409, Some("device_offline")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_devices_time_out() {
    // A device whose process is frozen keeps its TCP connection open and sends nothing;
    // the heartbeat timeout (not the last will) must take it offline.
    let dir = tempfile::tempdir().must();
    let mut options = ServerOptions::new(dir.path());
    options.offline_after_secs = 3;
    let server = Server::start(options).await;
    let sim = Sim::start(
        &server.api,
        3,
        "frozen",
        &["--keep-alive-secs", "600", "--heartbeat-secs", "1"],
    )
    .await;
    wait_counts(&server, 3, 0, Duration::from_secs(60)).await;
    let pid = sim.pid();
    let stop = std::process::Command::new("kill")
        .args(["-STOP", &pid.to_string()])
        .status();
    assert!(
        stop.map(|s| s.success()).unwrap_or(false),
        "could not freeze the simulator"
    );
    wait_counts(&server, 0, 3, Duration::from_secs(30)).await;
    let _ = std::process::Command::new("kill")
        .args(["-CONT", &pid.to_string()])
        .status();
    // Thawed, its heartbeats bring it back.
    wait_counts(&server, 3, 0, Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_on_mongodb_tracks_a_fleet() {
    // `--store mongodb://…` selects the MongoDB backend for the whole server.
    let mongo = luach_tests::MongoWire::start();
    let dir = tempfile::tempdir().must();
    let mut options = ServerOptions::new(dir.path());
    options.extra_args = vec!["--store".into(), mongo.url.clone()];
    let server = Server::start(options).await;
    let (_, ready) = server.api.get("/readyz").await;
    assert_eq!(ready["store_backend"], "mongodb", "{ready}");
    let (code, _) = server
        .api
        .post(
            "/api/v1/devices",
            &json!({"id": "mongo00001", "name": "מסך", "tags": ["pre"]}),
        )
        .await;
    assert_eq!(code, 201);
    let mut sim = Sim::start(&server.api, 5, "mongo", &[]).await;
    wait_counts(&server, 5, 0, Duration::from_secs(60)).await;
    // The pre-registered device kept its operator fields when it came online.
    let (_, body) = server.api.get("/api/v1/devices/mongo00001").await;
    assert_eq!(
        (body["data"]["name"].as_str(), body["data"]["status"].as_str()),
        (Some("מסך"), Some("online"))
    );
    sim.kill();
    wait_counts(&server, 0, 5, Duration::from_secs(30)).await;
}
