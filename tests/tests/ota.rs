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

/// An installation trusting a fresh release root made in `dir/keys`: the app, the release
/// keys, the root's public key (what screens trust) and an installation administrator.
async fn installation(dir: &Path) -> (TestApp, KeyDir, std::path::PathBuf, luach_tests::Api) {
    let (keys, _) = KeyDir::keygen(dir.join("keys"), 1, 1, Utc::now()).must();
    let root_pub = dir.join("keys").join(luach_ota::ROOT_PUB_FILE);
    let trusted = root_pub.clone();
    let app = spawn_app(move |c| c.releases.trusted_root = Some(trusted)).await;
    let root = app.user("default", "super_admin", "root@example.org").await;
    (app, keys, root_pub, root)
}

/// Rolls `release` out to `device`; the job's id.
async fn start_roll_out(app: &TestApp, release: &str, device: &str) -> String {
    let (status, job) = app
        .api
        .post(
            "/api/v1/jobs",
            &json!({"command": {"type": "update", "release": release},
                    "target": {"devices": [device]}, "timeout_s": 300}),
        )
        .await;
    assert_eq!(status, 201, "{job}");
    job["data"]["id"].as_str().must().to_owned()
}

/// The job's one execution once it ended.
async fn outcome(app: &TestApp, job: &str) -> Value {
    let api = &app.api;
    wait_for("the update's outcome", Duration::from_secs(240), || async move {
        let (_, body) = api.get(&format!("/api/v1/jobs/{job}/executions")).await;
        let execution = body["data"]["items"][0].clone();
        matches!(execution["state"].as_str(), Some("succeeded" | "failed" | "timed_out")).then_some(execution)
    })
    .await
}

/// Rolls `release` out to `device` and waits for the execution's outcome.
async fn roll_out(app: &TestApp, release: &str, device: &str) -> Value {
    let job = start_roll_out(app, release, device).await;
    outcome(app, &job).await
}

/// A screen: this build of the agent installed as 0.1.0 in `dir/install`, trusting `root_pub`,
/// started by its supervisor (with `env` and a health window of `window` seconds) and online
/// as `device`.
struct Screen {
    window: u64,
    install: std::path::PathBuf,
    state: std::path::PathBuf,
    token: String,
    device: String,
    supervisor: Agent,
}

impl Screen {
    async fn start(
        app: &TestApp,
        dir: &Path,
        root_pub: &Path,
        device: &str,
        env: &[(&str, &str)],
        window: u64,
    ) -> Self {
        let install = dir.join("install");
        let made = std::process::Command::new(bin_path("luach-agent"))
            .args(["install", "--version", "0.1.0", "--install-dir"])
            .arg(&install)
            .arg("--trust")
            .arg(root_pub)
            .output()
            .must();
        assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
        let token = bulk_token(&app.api, 1).await;
        let state = dir.join("state");
        let supervisor = Self::supervise(app, &install, &state, device, &token, env, window);
        reported_version(app, device, "0.1.0").await;
        Self {
            window,
            install,
            state,
            token,
            device: device.to_owned(),
            supervisor,
        }
    }

    fn supervise(
        app: &TestApp,
        install: &Path,
        state: &Path,
        device: &str,
        token: &str,
        env: &[(&str, &str)],
        window: u64,
    ) -> Agent {
        let mut all = vec![("LUACH_DISPLAY_OUTPUT", "none")];
        all.extend_from_slice(env);
        Agent::supervised(
            install,
            window,
            &app.api.base,
            state,
            &["--device-id", device, "--enrolment-token", token],
            &all,
        )
    }

    /// The service manager starts the supervisor again (as systemd's `Restart=always`).
    fn restart(&mut self, app: &TestApp) {
        self.supervisor = Self::supervise(
            app,
            &self.install,
            &self.state,
            &self.device,
            &self.token,
            &[],
            self.window,
        );
    }
}

/// The execution ended in `state` with `detail` in its detail.
fn assert_ended(execution: &Value, state: &str, detail: &str) {
    assert_eq!(execution["state"], state, "{execution}");
    assert!(
        execution["detail"].as_str().is_some_and(|d| d.contains(detail)),
        "{execution}"
    );
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
    let (app, keys, root_pub, root) = installation(dir.path()).await;

    // Only the installation's administrators register releases; a tenant admin may not.
    let (status, _) = app.api.post("/api/v1/releases", &json!({"metadata": "{}"})).await;
    assert_eq!(status, 403);
    let (status, body) = root.post("/api/v1/releases", &json!({"metadata": "{}"})).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("malformed_metadata"), "{body}");

    // The screen: this build of the agent installed as 0.1.0, trusting the root.
    let screen = Screen::start(&app, dir.path(), &root_pub, "ota1", &[], 90).await;
    let install = screen.install.clone();

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
    assert_ended(&execution, "succeeded", "updated to 0.2.0");
    reported_version(&app, "ota1", "0.2.0").await;
    assert_eq!(current(&install), "versions/0.2.0");

    // 0.3.0 is signed but cannot start: the supervisor rolls it back after three starts, the
    // screen says why, and the same release is refused from then on.
    let broken = register_release(&root, &keys, "0.3.0", b"#!/bin/sh\nexit 1\n").await;
    let execution = roll_out(&app, &broken, "ota1").await;
    assert_ended(&execution, "failed", "crashed_at_start");
    reported_version(&app, "ota1", "0.2.0").await;
    assert_eq!(current(&install), "versions/0.2.0");
    // Without a time-out of its own, an update job gives each screen an hour.
    let (status, job) = app
        .api
        .post(
            "/api/v1/jobs",
            &json!({"command": {"type": "update", "release": broken}, "target": {"devices": ["ota1"]}}),
        )
        .await;
    assert_eq!(status, 201, "{job}");
    assert_eq!(job["data"]["timeout_s"], 3600, "{job}");
    let again = outcome(&app, job["data"]["id"].as_str().must()).await;
    assert_ended(&again, "failed", "known_bad");
}

/// `SIGKILL` at each step of an update, in the agent or in the supervisor: the screen always
/// comes back running exactly the old or the new version from a complete slot, the command is
/// answered, and an interrupted update can be rolled out again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_killed_at_any_step_leaves_the_old_or_the_new_version() {
    let dir = tempfile::tempdir().must();
    let (app, keys, root_pub, root) = installation(dir.path()).await;
    let agent = std::fs::read(bin_path("luach-agent")).must();
    let release = register_release(&root, &keys, "0.2.0", &agent).await;
    // Steps before the switch leave the old version (the update is reported interrupted);
    // steps after it end in the new one.
    let steps = [
        ("download", false),
        ("verify", false),
        ("stage", false),
        ("swap", false),
        ("first_start", true),
        ("health", true),
        ("commit", true),
    ];
    // Every step in every round (`LUACH_CRASH_ROUNDS`, 3 by default), each on a fresh screen.
    let rounds: usize = std::env::var("LUACH_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    for (round, (step, switched)) in (0..rounds).flat_map(|r| steps.into_iter().map(move |s| (r, s))) {
        let device = format!("crash{round}{}", step.replace('_', ""));
        let home = dir.path().join(&device);
        let marker = home.join("killed");
        std::fs::create_dir_all(&home).must();
        let marker_text = marker.display().to_string();
        // The agent's crash-test switches (`luach_agent::update::KILL_AT_ENV`, `KILL_ONCE_ENV`).
        let env = [
            ("LUACH_TEST_KILL_AT", step),
            ("LUACH_TEST_KILL_ONCE", marker_text.as_str()),
        ];
        let mut screen = Screen::start(&app, &home, &root_pub, &device, &env, 90).await;
        let job = start_roll_out(&app, &release, &device).await;
        if step == "first_start" {
            // The supervisor itself died; the service manager starts it again.
            let died = screen.supervisor.exit_within(Duration::from_secs(60)).await;
            assert!(
                died.is_some_and(|s| !s.success()),
                "{step}: the supervisor did not die: {died:?}"
            );
            screen.restart(&app);
        }
        let execution = outcome(&app, &job).await;
        assert!(marker.exists(), "{step}: the kill point was never reached");
        let expected = if switched { "0.2.0" } else { "0.1.0" };
        let slot = format!("versions/{expected}");
        reported_version(&app, &device, expected).await;
        assert_eq!(current(&screen.install), slot, "{step}");
        assert!(screen.install.join(&slot).join("luach-agent").is_file(), "{step}");
        if switched {
            assert_eq!(execution["state"], "succeeded", "{step}: {execution}");
        } else {
            assert_ended(&execution, "failed", "interrupted");
            // Rolled out again, it goes through.
            let again = roll_out(&app, &release, &device).await;
            assert_eq!(again["state"], "succeeded", "{step}: {again}");
            reported_version(&app, &device, "0.2.0").await;
        }
    }
}

/// Real builds of the agent (this one, signed as later versions, told by `LUACH_TEST_FAULT`
/// to misbehave as that version) that exit at start, hang without reporting, or cannot reach
/// the server: each is rolled back by itself, the screen reports why and keeps its version,
/// and a release that failed is never tried again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_builds_that_crash_hang_or_cannot_connect_are_rolled_back() {
    let dir = tempfile::tempdir().must();
    let (app, keys, root_pub, root) = installation(dir.path()).await;
    let faults = [("LUACH_TEST_FAULT", "0.3.0:exit,0.4.0:hang,0.5.0:offline")];
    let screen = Screen::start(&app, dir.path(), &root_pub, "ota3", &faults, 30).await;
    let agent = std::fs::read(bin_path("luach-agent")).must();
    let mut failed = Vec::new();
    for (version, code) in [
        ("0.3.0", "crashed_at_start"),
        ("0.4.0", "health_timeout"),
        ("0.5.0", "health_timeout"),
    ] {
        let release = register_release(&root, &keys, version, &agent).await;
        let execution = roll_out(&app, &release, "ota3").await;
        assert_ended(&execution, "failed", code);
        reported_version(&app, "ota3", "0.1.0").await;
        assert_eq!(current(&screen.install), "versions/0.1.0", "{version}");
        failed.push(release);
    }
    // A newer release does not bring the failed ones back: each is refused as known bad.
    for release in &failed {
        let execution = roll_out(&app, release, "ota3").await;
        assert_ended(&execution, "failed", "known_bad");
    }
    let good = register_release(&root, &keys, "0.6.0", &agent).await;
    let execution = roll_out(&app, &good, "ota3").await;
    assert_ended(&execution, "succeeded", "updated to 0.6.0");
    reported_version(&app, "ota3", "0.6.0").await;
}
