//! The commands a real screen (`luach-agent run`) carries out on itself, sent through the REST
//! API: fetching its content again, new agent settings and a restart in place, an operator's
//! display power schedule, packages from the screen's own allow-list, and a device restart.
//! Each is checked on the screen's side (its files, its configured platform commands, its
//! process), not only in the execution's state.

use std::time::Duration;

use luach_tests::{Api, Must, online_agent, spawn_app, wait_for};
use serde_json::{Value, json};

async fn wait_online(api: &Api, device: &str) {
    wait_for("the screen to be online", Duration::from_secs(60), || async move {
        let (_, body) = api.get(&format!("/api/v1/devices/{device}")).await;
        (body["data"]["status"] == "online").then_some(())
    })
    .await;
}

/// Sends `command` to `device` and waits for its outcome: (HTTP status, state, detail).
async fn run(api: &Api, device: &str, command: Value) -> (u16, String, String, Value) {
    let (status, body) = api
        .post(
            &format!("/api/v1/devices/{device}/commands?wait_ms=20000"),
            &json!({ "command": command }),
        )
        .await;
    let e = &body["data"]["execution"];
    (
        status,
        e["state"].as_str().unwrap_or_default().to_owned(),
        e["detail"].as_str().unwrap_or_default().to_owned(),
        body,
    )
}

/// The first field error's path of a refused request.
fn error_path(body: &Value) -> &str {
    body["error"]["fields"][0]["path"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_fetches_its_content_again_and_takes_settings_and_restarts_in_place() {
    let app = spawn_app(|_| {}).await;
    let api = &app.api;
    let state = tempfile::tempdir().must();
    let agent = online_agent(&app, "kiosk1", state.path(), "2026-12-03T10:00:00Z", &[], &[]).await;
    let pid = agent.pid();

    // The content again, in full: the answer names the bundle the screen now holds.
    let current = state.path().join("bundle").join("current");
    std::fs::remove_file(
        state
            .path()
            .join("bundle")
            .join(format!("{}.json", std::fs::read_to_string(&current).must().trim())),
    )
    .must();
    let (status, exec, detail, body) = run(api, "kiosk1", json!({"type": "refresh_content"})).await;
    assert_eq!((status, exec.as_str()), (200, "succeeded"), "{body}");
    assert_eq!(detail, std::fs::read_to_string(&current).must().trim());
    assert!(state.path().join("bundle").join(format!("{detail}.json")).is_file());

    // Settings are checked field by field on the server…
    let (status, body) = api
        .post(
            "/api/v1/devices/kiosk1/commands",
            &json!({"command": {"type": "set_settings", "settings": {"heartbeat_secs": 0}}}),
        )
        .await;
    assert_eq!(
        (status, error_path(&body)),
        (422, "command.settings.heartbeat_secs"),
        "{body}"
    );
    let (status, body) = api
        .post(
            "/api/v1/devices/kiosk1/commands",
            &json!({"command": {"type": "set_settings", "settings": {"log_level": "debug"}}}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    // …kept by the screen, which restarts in place to apply them.
    let (status, exec, detail, body) = run(
        api,
        "kiosk1",
        json!({"type": "set_settings", "settings": {"metrics_secs": 7}}),
    )
    .await;
    assert_eq!((status, exec.as_str()), (200, "succeeded"), "{body}");
    assert!(detail.contains("\"metrics_secs\":7"), "{detail}");
    agent.line_after("luach-agent: restarting").await;
    let applied = agent.line_after("luach-agent: settings from the control plane: ").await;
    assert_eq!(applied, r#"{"metrics_secs":7}"#);
    let kept: Value = serde_json::from_slice(&std::fs::read(state.path().join("settings.json")).must()).must();
    assert_eq!(kept, json!({"metrics_secs": 7}));
    agent.line_after("luach-agent: device kiosk1").await;
    wait_online(api, "kiosk1").await;

    // A restart on its own; the same process (exec), back online, and it answers.
    let (status, exec, _, body) = run(api, "kiosk1", json!({"type": "restart_agent"})).await;
    assert_eq!((status, exec.as_str()), (200, "succeeded"), "{body}");
    agent.line_after("luach-agent: restarting").await;
    agent.line_after("luach-agent: device kiosk1").await;
    assert_eq!(agent.pid(), pid);
    wait_online(api, "kiosk1").await;
    let (_, exec, detail, body) = run(api, "kiosk1", json!({"type": "ping"})).await;
    assert_eq!((exec.as_str(), detail.as_str()), ("succeeded", "pong"), "{body}");
    // Each restart ran once: the commands' outcomes were kept before the process ended.
    let seen = std::fs::read_to_string(state.path().join("commands-seen.jsonl")).must();
    assert_eq!(seen.matches("\"status\":\"ok\"").count(), 4, "{seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_power_schedule_stands_in_for_the_contents_until_cleared() {
    let app = spawn_app(|_| {}).await;
    let api = &app.api;
    let profile = json!({
        "name": "Ohel Moshe", "latitude": 31.778, "longitude": 35.2354, "timezone": "Asia/Jerusalem",
        "israel": true, "nusach": "ashkenaz", "language": "he"
    });
    assert_eq!(api.put("/api/v1/synagogues/main", &profile).await.0, 201);
    let dir = tempfile::tempdir().must();
    let file = dir.path().join("power");
    let command = format!("echo \"$1\" >> '{}'", file.display());
    let env = [("LUACH_DISPLAY_POWER_COMMAND", command.as_str())];
    let state = tempfile::tempdir().must();
    // Thursday 12:00 in Jerusalem; the content has no schedule, so the display is left alone.
    let agent = online_agent(&app, "hall05", state.path(), "2026-12-03T10:00:00Z", &[], &env).await;
    let switches = || std::fs::read_to_string(&file).unwrap_or_default();
    assert_eq!(switches(), "");

    let bad = json!({"type": "power_schedule", "schedule": {"off": {"fixed": "11:60"}, "on": {"fixed": "23:30"}}});
    let (status, body) = api
        .post("/api/v1/devices/hall05/commands", &json!({ "command": bad }))
        .await;
    assert_eq!(
        (status, error_path(&body)),
        (422, "command.schedule.off.fixed"),
        "{body}"
    );

    // Off since 11:00, on at 23:30: at noon the display goes off.
    let schedule = json!({"off": {"fixed": "11:00"}, "on": {"fixed": "23:30"}});
    let (status, exec, _, body) = run(api, "hall05", json!({"type": "power_schedule", "schedule": schedule})).await;
    assert_eq!((status, exec.as_str()), (200, "succeeded"), "{body}");
    wait_for("the display to go off", Duration::from_secs(10), || {
        let s = switches();
        async move { (s == "off\n").then_some(()) }
    })
    .await;
    let kept: Value = serde_json::from_slice(&std::fs::read(state.path().join("power-schedule.json")).must()).must();
    assert_eq!(kept["schedule"], schedule);

    // Kept across a restart of the agent, which switches the display off again as it starts.
    drop(agent);
    let agent = online_agent(&app, "hall05", state.path(), "2026-12-03T10:00:00Z", &[], &env).await;
    wait_for("the display to be kept off", Duration::from_secs(10), || {
        let s = switches();
        async move { (s == "off\noff\n").then_some(()) }
    })
    .await;

    // Cleared: back to the content's (none), so the display comes back on.
    let (_, exec, detail, body) = run(api, "hall05", json!({"type": "power_schedule", "schedule": null})).await;
    assert_eq!(exec, "succeeded", "{body}");
    assert!(detail.contains("content's power schedule"), "{detail}");
    wait_for("the display to come back on", Duration::from_secs(10), || {
        let s = switches();
        async move { (s == "off\noff\non\n").then_some(()) }
    })
    .await;
    assert!(!state.path().join("power-schedule.json").exists());
    drop(agent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packages_come_only_from_the_screens_allow_list_and_a_reboot_runs_after_the_answer() {
    let app = spawn_app(|_| {}).await;
    let api = &app.api;
    let dir = tempfile::tempdir().must();
    let installed = dir.path().join("installed");
    let rebooted = dir.path().join("rebooted");
    let package_command = format!("echo \"$1\" >> '{}'", installed.display());
    let reboot_command = format!("echo reboot >> '{}'", rebooted.display());
    let env = [
        ("LUACH_PACKAGE_COMMAND", package_command.as_str()),
        ("LUACH_REBOOT_COMMAND", reboot_command.as_str()),
    ];
    let state = tempfile::tempdir().must();
    let mut agent = online_agent(
        &app,
        "lobby9",
        state.path(),
        "2026-12-03T10:00:00Z",
        &["--allow-package", "fonts-noto-core"],
        &env,
    )
    .await;

    // A name no package manager takes is refused before any screen sees it.
    let (status, body) = api
        .post(
            "/api/v1/devices/lobby9/commands",
            &json!({"command": {"type": "install_package", "package": "x; rm -rf /"}}),
        )
        .await;
    assert_eq!((status, error_path(&body)), (422, "command.package"), "{body}");
    let (_, exec, detail, body) = run(
        api,
        "lobby9",
        json!({"type": "install_package", "package": "fonts-noto-core"}),
    )
    .await;
    assert_eq!(exec, "succeeded", "{body}");
    assert!(detail.contains("fonts-noto-core installed"), "{detail}");
    // The screen decides what may be installed on it, whatever the control plane asks.
    let (_, exec, detail, body) = run(
        api,
        "lobby9",
        json!({"type": "install_package", "package": "openssh-server"}),
    )
    .await;
    assert_eq!(exec, "failed", "{body}");
    assert!(detail.contains("allow-list"), "{detail}");
    assert_eq!(std::fs::read_to_string(&installed).must(), "fonts-noto-core\n");

    // Reboot: answered first, then the agent says goodbye and restarts the device.
    let (_, exec, detail, body) = run(api, "lobby9", json!({"type": "reboot"})).await;
    assert_eq!(exec, "succeeded", "{body}");
    assert!(detail.contains("restarts now"), "{detail}");
    let status = agent.exit_within(Duration::from_secs(20)).await.must();
    assert!(status.success(), "{status}");
    assert_eq!(std::fs::read_to_string(&rebooted).must(), "reboot\n");
    wait_for("the screen to be offline", Duration::from_secs(30), || async move {
        let (_, body) = api.get("/api/v1/devices/lobby9").await;
        (body["data"]["status"] == "offline").then_some(())
    })
    .await;
}
