//! `luach-agent run`, the single-screen agent, as a process: it creates and keeps its
//! identity, finds the broker through the server, comes online, answers a ping, and says
//! goodbye on SIGTERM.

use std::time::Duration;

use luach_tests::{Agent, LiveWatcher, Must, spawn_app, wait_for};
use serde_json::json;

/// The plain development listener; tests/tests/enrolment.rs covers enrolment.
const PLAIN: &[&str] = &["--plain-mqtt"];

async fn status(api: &luach_tests::Api, id: &str) -> Option<String> {
    let (_, body) = api.get(&format!("/api/v1/devices/{id}")).await;
    body["data"]["status"].as_str().map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_screen_agent_keeps_its_identity_and_says_goodbye() {
    // A long heartbeat timeout: going offline below can only come from the goodbye.
    let app = spawn_app(|c| c.presence.offline_after_secs = 600).await;
    let state = tempfile::tempdir().must();
    let base = app.api.base.clone();

    let mut agent = Agent::start(&base, state.path(), PLAIN);
    let id = wait_for("the agent to create its identity", Duration::from_secs(30), || {
        let file = state.path().join("device-id");
        async move { std::fs::read_to_string(file).ok() }
    })
    .await;
    assert_eq!(id.len(), 26, "{id}");
    let api = app.api.clone();
    wait_for("the agent online", Duration::from_secs(30), || {
        let (api, id) = (api.clone(), id.clone());
        async move { (status(&api, &id).await.as_deref() == Some("online")).then_some(()) }
    })
    .await;
    let (code, body) = app.api.post(&format!("/api/v1/devices/{id}/ping"), &json!({})).await;
    assert_eq!((code, body["data"]["status"].as_str()), (200, Some("ok")), "{body}");

    // SIGTERM: a clean goodbye takes the screen offline at once, and says so: the live event
    // names the goodbye (a last will or a missed heartbeat would name themselves).
    let token = app.api.token.clone().must();
    let mut watcher = LiveWatcher::connect(&base, &id, &token).await;
    agent.terminate();
    watcher.expect_within("offline: goodbye", Duration::from_secs(10)).await;
    assert_eq!(status(&api, &id).await.as_deref(), Some("offline"));

    // Restarted, it is the same screen.
    let _agent = Agent::start(&base, state.path(), PLAIN);
    wait_for("the same screen back online", Duration::from_secs(30), || {
        let (api, id) = (api.clone(), id.clone());
        async move { (status(&api, &id).await.as_deref() == Some("online")).then_some(()) }
    })
    .await;
    assert_eq!(std::fs::read_to_string(state.path().join("device-id")).must(), id);
    let (_, body) = app.api.get("/api/v1/devices").await;
    assert_eq!(body["data"]["total"], 1);
}
