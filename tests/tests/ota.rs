//! Signed updates end to end: a release manager registers signed releases, an operator rolls
//! them out as a job, and a real screen (`luach-agent supervise` over an install directory)
//! installs the good one, reports the new version and commits, while a broken one is rolled
//! back by itself, reported with its reason, and never tried again.

use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use luach_ota::KeyDir;
use luach_tests::{Agent, bin_path, bulk_token};
use luach_tests::{Must, TestApp, register_release, spawn_app, wait_for};
use serde_json::{Value, json};

/// Rolls `release` out to `device` and waits for the execution's outcome.
async fn roll_out(app: &TestApp, release: &str, device: &str) -> Value {
    let (status, job) = app
        .api
        .post(
            "/api/v1/jobs",
            &json!({"command": {"type": "update", "release": release},
                    "target": {"devices": [device]}, "timeout_s": 300}),
        )
        .await;
    assert_eq!(status, 201, "{job}");
    let id = job["data"]["id"].as_str().must().to_owned();
    let api = &app.api;
    wait_for("the update's outcome", Duration::from_secs(240), || {
        let id = id.clone();
        async move {
            let (_, body) = api.get(&format!("/api/v1/jobs/{id}/executions")).await;
            let execution = body["data"]["items"][0].clone();
            matches!(execution["state"].as_str(), Some("succeeded" | "failed" | "timed_out")).then_some(execution)
        }
    })
    .await
}

async fn reported_version(app: &TestApp, device: &str, version: &str) {
    let api = &app.api;
    wait_for(
        &format!("{device} to report {version}"),
        Duration::from_secs(120),
        || async move {
            let (_, body) = api.get(&format!("/api/v1/devices/{device}")).await;
            (body["data"]["status"] == "online" && body["data"]["agent_version"] == version).then_some(())
        },
    )
    .await;
}

fn current(install: &Path) -> String {
    std::fs::read_link(install.join("current"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_update_is_installed_and_a_broken_one_rolled_back() {
    let dir = tempfile::tempdir().must();
    let (keys, _) = KeyDir::keygen(dir.path().join("keys"), 1, 1, Utc::now()).must();
    let root_pub = dir.path().join("keys").join(luach_ota::ROOT_PUB_FILE);
    let trusted = root_pub.clone();
    let app = spawn_app(move |c| c.releases.trusted_root = Some(trusted)).await;
    let root = app.user("default", "super_admin", "root@example.org").await;

    // Only the installation's administrators register releases; a tenant admin may not.
    let (status, _) = app.api.post("/api/v1/releases", &json!({"metadata": "{}"})).await;
    assert_eq!(status, 403);
    let (status, body) = root.post("/api/v1/releases", &json!({"metadata": "{}"})).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("malformed_metadata"), "{body}");

    // The screen: this build of the agent installed as 0.1.0, trusting the root.
    let install = dir.path().join("install");
    let made = std::process::Command::new(bin_path("luach-agent"))
        .args(["install", "--version", "0.1.0", "--install-dir"])
        .arg(&install)
        .arg("--trust")
        .arg(&root_pub)
        .output()
        .must();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let token = bulk_token(&app.api, 1).await;
    let state = dir.path().join("state");
    let _screen = Agent::supervised(
        &install,
        90,
        &app.api.base,
        &state,
        &["--device-id", "ota1", "--enrolment-token", &token],
        &[("LUACH_DISPLAY_OUTPUT", "none")],
    );
    reported_version(&app, "ota1", "0.1.0").await;

    // 0.2.0 is the same build, signed as the next version: it installs, passes its health
    // check, commits, and the screen reports it.
    let agent = std::fs::read(bin_path("luach-agent")).must();
    let good = register_release(&root, &keys, "0.2.0", &agent).await;
    let (_, listed) = app.api.get("/api/v1/releases").await;
    assert_eq!(
        listed["data"][0]["version"], "0.2.0",
        "tenants see the registry: {listed}"
    );
    let execution = roll_out(&app, &good, "ota1").await;
    assert_eq!(execution["state"], "succeeded", "{execution}");
    assert!(
        execution["detail"]
            .as_str()
            .is_some_and(|d| d.contains("updated to 0.2.0")),
        "{execution}"
    );
    reported_version(&app, "ota1", "0.2.0").await;
    assert_eq!(current(&install), "versions/0.2.0");

    // 0.3.0 is signed but cannot start: the supervisor rolls it back after three starts, the
    // screen says why, and the same release is refused from then on.
    let broken = register_release(&root, &keys, "0.3.0", b"#!/bin/sh\nexit 1\n").await;
    let execution = roll_out(&app, &broken, "ota1").await;
    assert_eq!(execution["state"], "failed", "{execution}");
    assert!(
        execution["detail"]
            .as_str()
            .is_some_and(|d| d.contains("crashed_at_start")),
        "{execution}"
    );
    reported_version(&app, "ota1", "0.2.0").await;
    assert_eq!(current(&install), "versions/0.2.0");
    let again = roll_out(&app, &broken, "ota1").await;
    assert_eq!(again["state"], "failed", "{again}");
    assert!(
        again["detail"].as_str().is_some_and(|d| d.contains("known_bad")),
        "{again}"
    );
}
