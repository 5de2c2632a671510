//! Staged roll-outs of a signed release end to end: `luach-agent sim` screens that check each
//! release against the trusted root and download its artifact from the control plane. Phases
//! open by themselves when the one before is healthy, a failing phase pauses its job, a screen
//! that was offline gets the release when it returns, and Shabbat and maintenance windows at
//! each screen's synagogue hold it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use luach_control_plane::auth::ManualClock;
use luach_ota::KeyDir;
use luach_tests::LiveWatcher;
use luach_tests::{Api, Must, Sim, TestApp, register_release, wait_for};
use serde_json::{Value, json};

/// An installation trusting a fresh release root, with one signed release (0.2.0) of a
/// 256 KiB artifact registered; the release id and the root's public key.
struct Setup {
    app: TestApp,
    release: String,
    root_pub: PathBuf,
    _dir: tempfile::TempDir,
}

async fn setup(clock: Option<ManualClock>) -> Setup {
    let dir = tempfile::tempdir().must();
    let (keys, _) = KeyDir::keygen(dir.path().join("keys"), 1, 1, Utc::now()).must();
    let root_pub = dir.path().join("keys").join(luach_ota::ROOT_PUB_FILE);
    let trusted = root_pub.clone();
    let config = move |c: &mut luach_control_plane::Config| c.releases.trusted_root = Some(trusted);
    let app = match clock {
        Some(clock) => luach_tests::spawn_app_with_clock(config, Arc::new(clock)).await,
        None => luach_tests::spawn_app(config).await,
    };
    let root = app.user("default", "super_admin", "releases@example.org").await;
    let artifact: Vec<u8> = (0..256 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
    let release = register_release(&root, &keys, "0.2.0", &artifact).await;
    Setup {
        app,
        release,
        root_pub,
        _dir: dir,
    }
}

/// `count` simulated screens `PREFIX00000…` that carry out updates (with `extra` flags).
fn screens(s: &Setup, count: usize, prefix: &str, extra: &[&str]) -> Sim {
    let root = s.root_pub.display().to_string();
    let mut args = vec!["--ota-root", root.as_str()];
    args.extend_from_slice(extra);
    Sim::start_plain(&s.app.api.base, count, prefix, &args)
}

async fn wait_online(api: &Api, online: u64) {
    wait_for(&format!("{online} screens online"), Duration::from_secs(60), || {
        let api = api.clone();
        async move { (api.count("online").await? == online).then_some(()) }
    })
    .await;
}

async fn create(api: &Api, body: Value) -> Value {
    let (status, answer) = api.post("/api/v1/jobs", &body).await;
    assert_eq!(status, 201, "{answer}");
    answer["data"].clone()
}

async fn job_when(api: &Api, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let path = format!("/api/v1/jobs/{id}");
    wait_for(what, Duration::from_secs(120), || {
        let (api, path) = (api.clone(), path.clone());
        let done = &done;
        async move {
            let (_, body) = api.get(&path).await;
            done(&body["data"]).then(|| body["data"].clone())
        }
    })
    .await
}

async fn executions(api: &Api, id: &str) -> Vec<Value> {
    let (status, body) = api.get(&format!("/api/v1/jobs/{id}/executions?limit=1000")).await;
    assert_eq!(status, 200, "{body}");
    body["data"]["items"].as_array().must().clone()
}

/// The job's one execution, once it waits with `why` in its detail.
async fn held(api: &Api, id: &str, why: &str) -> Value {
    wait_for(&format!("held: {why}"), Duration::from_secs(30), || async move {
        let e = executions(api, id).await.into_iter().next()?;
        (e["state"] == "queued" && e["detail"].as_str().is_some_and(|d| d.contains(why))).then_some(e)
    })
    .await
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().must().parse().must()
}

async fn version_of(api: &Api, device: &str) -> Value {
    let (_, body) = api.get(&format!("/api/v1/devices/{device}")).await;
    body["data"]["agent_version"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phases_open_one_after_another_and_a_late_screen_gets_the_release_when_it_returns() {
    let s = setup(None).await;
    let api = &s.app.api;
    // The late screen is known, then goes away before the roll-out starts.
    let mut late = screens(&s, 1, "late", &[]);
    wait_online(api, 1).await;
    late.kill();
    wait_online(api, 0).await;
    let _fleet = screens(&s, 10, "stg", &[]);
    wait_online(api, 10).await;
    let token = api.token.clone().must();
    let mut watcher = LiveWatcher::connect_jobs(&api.base, "stg00009", &token).await;

    // In the order given: one screen, then half, then the rest (with the late one last).
    let mut devices: Vec<String> = (0..10).map(|i| format!("stg{i:05}")).collect();
    devices.push("late00000".into());
    let job = create(
        api,
        json!({"command": {"type": "update", "release": s.release},
               "target": {"devices": devices},
               "rollout": {"phases": [{"screens": 1}, {"percent": 50}], "soak_s": 1}}),
    )
    .await;
    let id = job["id"].as_str().must().to_owned();
    assert_eq!(job["phase"]["ends"], json!([1, 6, 11]), "{job}");
    assert_eq!(job["phase"]["index"], 0, "{job}");

    // Every online screen is updated; the job waits for the late one in its last phase.
    let waiting = job_when(api, &id, "ten screens updated", |j| j["counts"]["succeeded"] == 10).await;
    assert_eq!(
        (waiting["state"].as_str(), waiting["phase"]["index"].as_u64()),
        (Some("running"), Some(2)),
        "{waiting}"
    );
    assert!(waiting["phase"]["opened_at"].is_string(), "{waiting}");
    for state in ["sent", "received", "succeeded"] {
        watcher.expect(&format!("execution: {state}")).await;
    }
    let all = executions(api, &id).await;
    // A phase opens only once the one before finished, and after its soak.
    let finished = |range: std::ops::Range<usize>| all[range].iter().map(|e| time(&e["updated_at"])).max().must();
    let started = |range: std::ops::Range<usize>| all[range].iter().map(|e| time(&e["sent_at"])).min().must();
    assert!(
        started(1..6) >= finished(0..1) + chrono::Duration::seconds(1),
        "{all:?}"
    );
    assert!(
        started(6..10) >= finished(1..6) + chrono::Duration::seconds(1),
        "{all:?}"
    );
    for e in &all[..10] {
        assert!(e["detail"].as_str().must().contains("simulated update to 0.2.0"), "{e}");
    }
    assert_eq!(all[10]["state"], "queued", "{:?}", all[10]);
    assert_eq!(version_of(api, "stg00003").await, "0.2.0");

    // Back online, the late screen gets it, and the job completes.
    let _late = screens(&s, 1, "late", &[]);
    let done = job_when(api, &id, "the late screen updated", |j| j["state"] == "completed").await;
    assert_eq!(done["counts"]["succeeded"], 11, "{done}");
    wait_for("the late screen's version", Duration::from_secs(30), || async move {
        (version_of(api, "late00000").await == "0.2.0").then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_phase_pauses_the_roll_out_and_resuming_accepts_it() {
    let s = setup(None).await;
    let api = &s.app.api;
    let _fleet = screens(&s, 6, "bad", &["--fail", "update=1"]);
    wait_online(api, 6).await;
    let devices: Vec<String> = (0..6).map(|i| format!("bad{i:05}")).collect();
    let job = create(
        api,
        json!({"command": {"type": "update", "release": s.release},
               "target": {"devices": devices},
               "rollout": {"phases": [{"screens": 2}, {"screens": 4}], "pause_failure_percent": 50}}),
    )
    .await;
    let id = job["id"].as_str().must().to_owned();
    // Another tenant may roll the release out only to its own screens: it has none, and
    // names none of these; the roll-out itself is not there for it.
    let other = s.app.user("t-other", "tenant_admin", "admin@other.example").await;
    for target in [json!({"devices": ["bad00000"]}), json!({"all": true})] {
        let (status, body) = other
            .post(
                "/api/v1/jobs",
                &json!({"command": {"type": "update", "release": s.release}, "target": target,
                        "rollout": {"phases": [{"screens": 1}]}}),
            )
            .await;
        assert_eq!(status, 422, "{body}");
        assert!(
            body["error"]["fields"][0]["path"].as_str().must().starts_with("target"),
            "{body}"
        );
    }
    assert_eq!(other.get(&format!("/api/v1/jobs/{id}")).await.0, 404);
    assert_eq!(
        other.post(&format!("/api/v1/jobs/{id}/resume"), &json!({})).await.0,
        404
    );
    // Phase 1 (two screens) may lose one; both fail, so the job pauses by itself and the
    // other four screens are never sent the release.
    let paused = job_when(api, &id, "the roll-out paused", |j| j["state"] == "paused").await;
    let reason = paused["reason"].as_str().must();
    assert!(reason.contains("phase 1 of 3") && reason.contains("failed"), "{paused}");
    assert_eq!(paused["counts"]["failed"], 2, "{paused}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = executions(api, &id).await;
    assert!(
        all[2..].iter().all(|e| e["state"] == "queued" && e["attempt"] == 0),
        "{all:?}"
    );
    for e in &all[..2] {
        assert!(e["detail"].as_str().must().contains("injected failure"), "{e}");
    }

    // Resuming accepts phase 1; phase 2 fails too and pauses again.
    let (status, resumed) = api.post(&format!("/api/v1/jobs/{id}/resume"), &json!({})).await;
    assert_eq!(status, 200, "{resumed}");
    assert_eq!(resumed["data"]["phase"]["index"], 1, "{resumed}");
    let again = job_when(api, &id, "phase 2 paused", |j| {
        j["state"] == "paused" && j["counts"]["failed"] == 4
    })
    .await;
    assert!(again["reason"].as_str().must().contains("phase 2 of 3"), "{again}");
    let (_, body) = api.post(&format!("/api/v1/jobs/{id}/cancel"), &json!({})).await;
    assert_eq!(body["data"]["state"], "cancelled", "{body}");
    assert_eq!(body["data"]["counts"]["cancelled"], 2, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shabbat_and_maintenance_windows_hold_a_roll_out_at_the_screens_synagogue() {
    // Friday 4 December 2026, 18:00 in Jerusalem: Shabbat has begun there.
    let clock = ManualClock::new("2026-12-04T16:00:00Z".parse().must());
    let s = setup(Some(clock.clone())).await;
    let api = &s.app.api;
    let profile = json!({
        "name": "Ohel Moshe", "latitude": 31.778, "longitude": 35.2354, "timezone": "Asia/Jerusalem",
        "israel": true, "nusach": "ashkenaz", "language": "he", "candle_lighting_minutes": 40
    });
    assert_eq!(api.put("/api/v1/synagogues/main", &profile).await.0, 201);
    let _screen = screens(&s, 1, "win", &[]);
    wait_online(api, 1).await;
    // Only between 02:00 and 04:00 at the synagogue.
    let job = create(
        api,
        json!({"command": {"type": "update", "release": s.release},
               "target": {"all": true}, "windows": [{"start": "02:00", "end": "04:00"}],
               "rollout": {"phases": [{"percent": 100}]}}),
    )
    .await;
    let id = job["id"].as_str().must().to_owned();
    let e = held(api, &id, "Shabbat").await;
    assert!(
        time(&e["not_before"]).to_rfc3339().starts_with("2026-12-05T15:"),
        "havdalah: {e}"
    );
    assert_eq!(e["attempt"], 0, "{e}");

    // Saturday night at 18:00: Shabbat is out, but the window is closed until 02:00 (00:00 UTC).
    // (A day on, the first sign-in has expired; each step signs in again.)
    clock.advance(chrono::Duration::hours(24));
    let api = &s.app.user("default", "tenant_admin", "motzei@shabbat.example").await;
    let e = held(api, &id, "maintenance windows").await;
    assert_eq!(
        time(&e["not_before"]),
        "2026-12-06T00:00:00Z".parse::<DateTime<Utc>>().must(),
        "{e}"
    );
    assert_eq!(e["attempt"], 0, "{e}");

    // 02:30 at the synagogue: inside the window, the screen is updated.
    clock.advance(chrono::Duration::hours(8) + chrono::Duration::minutes(30));
    let api = &s.app.user("default", "tenant_admin", "window@shabbat.example").await;
    let done = job_when(api, &id, "the update inside the window", |j| j["state"] == "completed").await;
    assert_eq!(done["counts"]["succeeded"], 1, "{done}");
}
