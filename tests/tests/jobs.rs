//! Jobs end to end with the real binaries: `luach-server` killed and restarted (and its Redis
//! restarted), `luach-agent sim` screens that log every effect they apply.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use luach_tests::{Api, LiveWatcher, Must, RedisServer, Server, ServerOptions, Sim, spawn_app, wait_for};
use serde_json::{Value, json};

async fn wait_online(api: &Api, online: u64, limit: Duration) {
    wait_for(&format!("{online} screens online"), limit, || {
        let api = api.clone();
        async move { (api.count("online").await? == online).then_some(()) }
    })
    .await;
}

/// Every execution of job `id`.
async fn executions(api: &Api, id: &str) -> Vec<Value> {
    let (status, body) = api.get(&format!("/api/v1/jobs/{id}/executions?limit=1000")).await;
    assert_eq!(status, 200, "{body}");
    body["data"]["items"].as_array().must().clone()
}

/// The effects the simulated screens applied: (device, command id, action), in order.
fn effects(log: &Path) -> Vec<(String, String, String)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| {
            let f = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
            (f("device"), f("command_id"), f("action"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_survives_three_server_kills_and_every_screen_applies_it_once() {
    const FLEET: u64 = 200;
    let dir = tempfile::tempdir().must();
    let log = dir.path().join("effects.jsonl");
    // Live events go through a Redis, which is restarted once while the job runs.
    let mut redis = RedisServer::start();
    let mut options = ServerOptions::new(dir.path());
    options.extra_args = vec!["--redis".into(), redis.url.clone()];
    let mut server = Server::start(options.clone()).await;
    let log_arg = log.display().to_string();
    // Each brightness change takes a while, so kills land while executions are in flight.
    let _sim = Sim::start(
        &server.api,
        FLEET as usize,
        "crash",
        &[
            "--effects-log",
            &log_arg,
            "--delay-ms",
            "brightness=1000",
            "--enrol-concurrency",
            "32",
        ],
    )
    .await;
    wait_online(&server.api, FLEET, Duration::from_secs(120)).await;

    let id = server
        .api
        .create_job(
            &json!({"command": {"type": "brightness", "percent": 30}, "target": {"all": true}, "concurrency": 20}),
        )
        .await;
    for kill in 0..3 {
        // Let some executions be sent, answered or in flight, then kill the server.
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        if kill == 1 {
            redis.restart();
        }
        let (_, job) = server.api.get(&format!("/api/v1/jobs/{id}")).await;
        let counts = &job["data"]["counts"];
        eprintln!("kill {kill}: {counts}");
        assert!(
            counts["queued"].as_u64().must() > 0,
            "the job ended before kill {kill}: {counts}"
        );
        server.kill();
        server = Server::start(options.clone()).await;
    }
    // Every screen said hello to the last server: none of them was lost in the moment between
    // its broker accepting connections and its ingest listening.
    let api = server.api.clone();
    wait_for(
        "every screen's hello after the last restart",
        Duration::from_secs(120),
        || {
            let api = api.clone();
            async move {
                let text = api.http.get(api.url("/metrics")).send().await.ok()?.text().await.ok()?;
                let hellos = text
                    .lines()
                    .find_map(|l| l.strip_prefix("luach_mqtt_messages_in_total{kind=\"hello\"} "))?
                    .trim()
                    .parse::<f64>()
                    .ok()?;
                (hellos >= FLEET as f64).then_some(())
            }
        },
    )
    .await;
    let job = server.api.wait_job(&id, "completed", Duration::from_secs(240)).await;
    assert_eq!(job["counts"]["succeeded"], FLEET, "{job}");
    assert_eq!(job["total"], FLEET, "{job}");

    // Every screen applied the command exactly once, under the command id its execution ended
    // with.
    let applied = effects(&log);
    let mut per_device: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (device, command_id, action) in &applied {
        assert_eq!(action, "brightness");
        per_device.entry(device.clone()).or_default().push(command_id.clone());
    }
    assert_eq!(per_device.len() as u64, FLEET, "screens that applied it");
    let twice: Vec<_> = per_device.iter().filter(|(_, ids)| ids.len() != 1).collect();
    assert!(twice.is_empty(), "applied more than once: {twice:?}");
    for e in executions(&server.api, &id).await {
        assert_eq!(e["state"], "succeeded", "{e}");
        let device = e["device_id"].as_str().must();
        assert_eq!(
            per_device[device],
            vec![e["command_id"].as_str().must().to_owned()],
            "{e}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_screen_gets_its_commands_in_order_and_never_expired_ones() {
    let dir = tempfile::tempdir().must();
    let log = dir.path().join("effects.jsonl");
    let log_arg = log.display().to_string();
    let mut options = ServerOptions::new(dir.path());
    options.offline_after_secs = 5;
    let server = Server::start(options).await;
    let api = &server.api;
    let plain = format!("http://{}", server.options.http);
    let sim_args = ["--effects-log", log_arg.as_str()];
    let mut sim = Sim::start_plain(&plain, 2, "order", &sim_args);
    wait_online(api, 2, Duration::from_secs(60)).await;
    sim.kill();
    wait_online(api, 0, Duration::from_secs(30)).await;

    // While both screens are away: three commands, one of which expires before they return.
    let target = json!({"devices": ["order00000", "order00001"]});
    let first = api
        .create_job(&json!({"command": {"type": "brightness", "percent": 10}, "target": target}))
        .await;
    let expiring = api
        .create_job(&json!({"command": {"type": "reboot"}, "target": target, "expires_in_s": 1}))
        .await;
    let second = api
        .create_job(&json!({"command": {"type": "volume", "percent": 20}, "target": target}))
        .await;
    let third = api
        .create_job(&json!({"command": {"type": "refresh_content"}, "target": target}))
        .await;
    let job = api.wait_job(&expiring, "completed", Duration::from_secs(30)).await;
    assert_eq!(job["counts"]["skipped"], 2, "{job}");
    let (_, job) = api.get(&format!("/api/v1/jobs/{first}")).await;
    assert_eq!(job["data"]["counts"]["queued"], 2, "{job}");

    let _back = Sim::start_plain(&plain, 2, "order", &sim_args);
    for id in [&first, &second, &third] {
        let job = api.wait_job(id, "completed", Duration::from_secs(60)).await;
        assert_eq!(job["counts"]["succeeded"], 2, "{job}");
    }
    let mut per_device: HashMap<String, Vec<String>> = HashMap::new();
    for (device, _, action) in effects(&log) {
        per_device.entry(device).or_default().push(action);
    }
    for device in ["order00000", "order00001"] {
        assert_eq!(
            per_device.get(device).cloned().unwrap_or_default(),
            ["brightness", "volume", "refresh_content"],
            "{device}"
        );
    }
    for e in executions(api, &expiring).await {
        assert_eq!(e["state"], "skipped", "{e}");
        assert!(e["detail"].as_str().must().contains("expired"), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_threshold_pause_resume_and_sequential_stop() {
    let dir = tempfile::tempdir().must();
    let server = Server::start(ServerOptions::new(dir.path())).await;
    let api = &server.api;
    let plain = format!("http://{}", server.options.http);
    let _sim = Sim::start_plain(
        &plain,
        60,
        "roll",
        &[
            "--fail",
            "brightness=0.3",
            "--fail",
            "display_power=1",
            "--delay-ms",
            "volume=300",
        ],
    );
    wait_online(api, 60, Duration::from_secs(60)).await;

    // 30% of brightness changes fail: the job stops once more than 10% of at least 20 failed.
    let aborted = api
        .create_job(
            &json!({"command": {"type": "brightness", "percent": 50}, "target": {"all": true},
               "concurrency": 4, "abort": {"failure_percent": 10.0, "min_executions": 20}}),
        )
        .await;
    let job = api.wait_job(&aborted, "aborted", Duration::from_secs(60)).await;
    let counts = &job["counts"];
    let finished = counts["succeeded"].as_u64().must() + counts["failed"].as_u64().must();
    assert!(finished >= 20, "{job}");
    assert!(counts["cancelled"].as_u64().must() > 0, "{job}");
    assert_eq!(counts["queued"], 0, "{job}");
    assert!(job["reason"].as_str().must().contains("more than 10%"), "{job}");

    // Pause: nothing new starts; resume: it finishes.
    let paused = api
        .create_job(&json!({"command": {"type": "volume", "percent": 5}, "target": {"all": true}, "concurrency": 2}))
        .await;
    let (status, body) = api.post(&format!("/api/v1/jobs/{paused}/pause"), &json!({})).await;
    assert_eq!(
        (status, body["data"]["state"].as_str()),
        (200, Some("paused")),
        "{body}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_, before) = api.get(&format!("/api/v1/jobs/{paused}")).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, after) = api.get(&format!("/api/v1/jobs/{paused}")).await;
    assert_eq!(before["data"]["counts"], after["data"]["counts"], "a paused job moved");
    assert!(after["data"]["counts"]["queued"].as_u64().must() > 0, "{after}");
    // Pausing twice is a conflict, not a silent success.
    assert_eq!(
        api.post(&format!("/api/v1/jobs/{paused}/pause"), &json!({})).await.0,
        409
    );
    let (status, _) = api.post(&format!("/api/v1/jobs/{paused}/resume"), &json!({})).await;
    assert_eq!(status, 200);
    let job = api.wait_job(&paused, "completed", Duration::from_secs(90)).await;
    assert_eq!(job["counts"]["succeeded"], 60, "{job}");

    // Every open page hears of an operator's pause and cancel at once: here nothing is in
    // flight (one screen a minute, the first done), so no move of the engine would tell it.
    let slow = api
        .create_job(&json!({"command": {"type": "ping"}, "target": {"all": true}, "rate_per_minute": 1}))
        .await;
    let path = format!("/api/v1/jobs/{slow}");
    let path = path.as_str();
    wait_for(
        "the slow job's first screen done",
        Duration::from_secs(30),
        || async move {
            let (_, job) = api.get(path).await;
            let c = &job["data"]["counts"];
            (c["succeeded"] == 1 && c["sent"] == 0 && c["received"] == 0).then_some(())
        },
    )
    .await;
    let token = api.token.clone().must();
    let mut progress = LiveWatcher::connect_progress(&api.base, &slow, &token).await;
    let (status, _) = api.post(&format!("/api/v1/jobs/{slow}/pause"), &json!({})).await;
    assert_eq!(status, 200);
    progress
        .expect_within("progress: paused", Duration::from_secs(10))
        .await;
    let (status, _) = api.post(&format!("/api/v1/jobs/{slow}/cancel"), &json!({})).await;
    assert_eq!(status, 200);
    progress
        .expect_within("progress: cancelled", Duration::from_secs(10))
        .await;

    // Sequential: one screen at a time, stopping at the first failure (every display_power
    // fails on these screens).
    let sequential = api
        .create_job(
            &json!({"command": {"type": "display_power", "on": false}, "mode": "sequential",
               "target": {"devices": ["roll00003", "roll00001", "roll00002"]}}),
        )
        .await;
    let job = api.wait_job(&sequential, "aborted", Duration::from_secs(30)).await;
    assert_eq!(
        (job["counts"]["failed"].as_u64(), job["counts"]["skipped"].as_u64()),
        (Some(1), Some(2)),
        "{job}"
    );
    let list = executions(api, &sequential).await;
    let order: Vec<(&str, &str)> = list
        .iter()
        .map(|e| {
            (
                e["device_id"].as_str().unwrap_or_default(),
                e["state"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        order,
        [
            ("roll00003", "failed"),
            ("roll00001", "skipped"),
            ("roll00002", "skipped")
        ]
    );
    assert!(
        list[0]["detail"].as_str().must().contains("injected failure"),
        "{list:?}"
    );

    // Cancel: queued executions end as cancelled; a cancelled job cannot resume.
    let cancelled = api
        .create_job(&json!({"command": {"type": "ping"}, "target": {"all": true}, "rate_per_minute": 1}))
        .await;
    let (status, body) = api.post(&format!("/api/v1/jobs/{cancelled}/cancel"), &json!({})).await;
    assert_eq!(
        (status, body["data"]["state"].as_str()),
        (200, Some("cancelled")),
        "{body}"
    );
    assert!(body["data"]["counts"]["cancelled"].as_u64().must() >= 59, "{body}");
    assert_eq!(
        api.post(&format!("/api/v1/jobs/{cancelled}/resume"), &json!({}))
            .await
            .0,
        409
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_replay_creates_one_job() {
    let app = spawn_app(|_| {}).await;
    let api = &app.api;
    assert_eq!(
        api.post("/api/v1/devices", &json!({"id": "idem01", "name": "Hall"}))
            .await
            .0,
        201
    );
    let body = json!({"command": {"type": "ping"}, "target": {"devices": ["idem01"]}});
    let post = |key: &str, body: &Value| {
        let req = api
            .http
            .post(api.url("/api/v1/jobs"))
            .header("Idempotency-Key", key)
            .json(body);
        api.send(req)
    };
    let (status, first) = post("key-1", &body).await;
    assert_eq!(status, 201, "{first}");
    let (status, again) = post("key-1", &body).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["data"]["id"], first["data"]["id"]);
    // The same key with another body is refused; another key makes another job.
    let other = json!({"command": {"type": "reboot"}, "target": {"devices": ["idem01"]}});
    let (status, refused) = post("key-1", &other).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{refused}"
    );
    assert_eq!(post("key-2", &other).await.0, 201);
    let (_, list) = api.get("/api/v1/jobs").await;
    assert_eq!(list["data"]["total"], 2, "{list}");
    assert_eq!(post("", &body).await.0, 422);

    // Bad requests name their fields; a missing screen is named by its position.
    let (status, answer) = api
        .post(
            "/api/v1/jobs",
            &json!({"command": {"type": "volume", "percent": 150}, "target": {"devices": ["idem01", "nosuch"]}}),
        )
        .await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["fields"][0]["path"], "command.percent", "{answer}");
    let (status, answer) = api
        .post(
            "/api/v1/jobs",
            &json!({"command": {"type": "ping"}, "target": {"devices": ["nosuch"]}}),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["fields"][0]["path"].as_str()),
        (422, Some("target.devices[0]")),
        "{answer}"
    );
    let (status, answer) = api
        .post(
            "/api/v1/jobs",
            &json!({"command": {"type": "ping"}, "target": {"tags": ["none-here"]}}),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["fields"][0]["path"].as_str()),
        (422, Some("target")),
        "{answer}"
    );

    // Emergency commands are for tenant admins only.
    let operator = app.user("default", "operator", "op@idem.example").await;
    let emergency = json!({"command": {"type": "ping"}, "target": {"devices": ["idem01"]}, "emergency": true});
    assert_eq!(operator.post("/api/v1/jobs", &emergency).await.0, 403);
    assert_eq!(api.post("/api/v1/jobs", &emergency).await.0, 201);
    // The creation is in the audit log, emergency flag and all.
    let (_, audit) = api.get("/api/v1/audit?limit=500").await;
    let created: Vec<&Value> = audit["data"]
        .as_array()
        .must()
        .iter()
        .filter(|r| r["action"] == "job.create")
        .collect();
    assert_eq!(created.len(), 3, "{audit}");
    assert!(
        created.iter().any(|r| r["detail"]["spec"]["emergency"] == true),
        "{created:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_shabbat_a_command_waits_for_havdalah_and_an_emergency_goes_through() {
    use luach_control_plane::auth::ManualClock;
    // Friday 4 December 2026, 18:00 in Jerusalem: Shabbat has begun there.
    let clock = ManualClock::new("2026-12-04T16:00:00Z".parse().must());
    let app = luach_tests::spawn_app_with_clock(|_| {}, std::sync::Arc::new(clock.clone())).await;
    let api = &app.api;
    let profile = json!({
        "name": "Ohel Moshe", "latitude": 31.778, "longitude": 35.2354, "timezone": "Asia/Jerusalem",
        "israel": true, "nusach": "ashkenaz", "language": "he", "candle_lighting_minutes": 40
    });
    assert_eq!(api.put("/api/v1/synagogues/main", &profile).await.0, 201);
    let dir = tempfile::tempdir().must();
    let log = dir.path().join("effects.jsonl");
    let log_arg = log.display().to_string();
    let _sim = Sim::start_plain(&api.base, 1, "shab", &["--effects-log", &log_arg]);
    wait_online(api, 1, Duration::from_secs(60)).await;

    let held = api
        .create_job(&json!({"command": {"type": "brightness", "percent": 10}, "target": {"devices": ["shab00000"]}}))
        .await;
    let emergency = api
        .create_job(
            &json!({"command": {"type": "brightness", "percent": 70}, "target": {"devices": ["shab00000"]},
               "emergency": true}),
        )
        .await;
    api.wait_job(&emergency, "completed", Duration::from_secs(30)).await;
    let waiting = executions(api, &held).await;
    assert_eq!(waiting[0]["state"], "queued", "{waiting:?}");
    assert!(waiting[0]["detail"].as_str().must().contains("Shabbat"), "{waiting:?}");
    let until: chrono::DateTime<chrono::Utc> = waiting[0]["not_before"].as_str().must().parse().must();
    assert!(
        until.to_rfc3339().starts_with("2026-12-05T15:"),
        "havdalah in Jerusalem: {until}"
    );
    let applied: Vec<String> = effects(&log).into_iter().map(|(_, id, _)| id).collect();
    assert_eq!(applied.len(), 1, "only the emergency went through: {applied:?}");
    assert!(applied[0].starts_with(&emergency), "{applied:?}");

    // After havdalah the held command goes out by itself.
    clock.advance(chrono::Duration::hours(24));
    // (A day later the first sign-in has expired; sign in again.)
    let api = &app.user("default", "tenant_admin", "motzei@shabbat.example").await;
    let job = api.wait_job(&held, "completed", Duration::from_secs(30)).await;
    assert_eq!(job["counts"]["succeeded"], 1, "{job}");
    let applied: Vec<String> = effects(&log).into_iter().map(|(_, id, _)| id).collect();
    assert_eq!(applied.len(), 2, "{applied:?}");
    assert!(applied[1].starts_with(&held), "{applied:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnostics_report_the_screen_its_queue_and_its_log() {
    let app = spawn_app(|_| {}).await;
    let api = &app.api;
    assert_eq!(api.post("/api/v1/devices", &json!({"id": "diag00000"})).await.0, 201);
    let _sim = Sim::start_plain(&api.base, 1, "diag", &[]);
    wait_online(api, 1, Duration::from_secs(60)).await;
    let (status, body) = api
        .post(
            "/api/v1/devices/diag00000/commands?wait_ms=20000",
            &json!({"command": {"type": "diagnostics"}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let execution = &body["data"]["execution"];
    assert_eq!(execution["state"], "succeeded", "{body}");
    let report: Value = serde_json::from_str(execution["detail"].as_str().must()).must();
    assert!(
        report["agent_version"].as_str().is_some_and(|v| !v.is_empty()),
        "{report}"
    );
    assert!(report["memory_total_bytes"].as_u64().must() > 0, "{report}");
    assert!(report["telemetry"]["stream"].as_str().must().len() >= 8, "{report}");
    assert!(report["telemetry"]["next_seq"].as_u64().must() >= 2, "{report}");
    // The agent's own recent lines, INFO and above, whatever its console shows.
    let log = report["recent_log"].as_array().must();
    assert!(log.iter().any(|l| l.as_str().must().contains("connected")), "{report}");
    // The screen's command history shows it.
    let (status, history) = api.get("/api/v1/devices/diag00000/commands").await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(
        history["data"][0]["command"],
        json!({"type": "diagnostics"}),
        "{history}"
    );
    assert_eq!(history["data"][0]["execution"]["state"], "succeeded", "{history}");
    // Parameters are refused with their path.
    let (status, body) = api
        .post(
            "/api/v1/devices/diag00000/commands",
            &json!({"command": {"type": "diagnostics", "verbose": true}}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_query_names_its_screens_and_simulated_screens_take_every_command() {
    let app = spawn_app(|_| {}).await;
    let api = &app.api;
    for (id, name, tags) in [
        ("sq00000", "Lobby east", json!(["lobby"])),
        ("sq00001", "Lobby west", json!(["lobby"])),
        ("sq00002", "Hall", json!(["hall"])),
        ("sq00003", "Lobby spare", json!(["lobby"])),
    ] {
        let body = json!({"id": id, "name": name, "tags": tags});
        assert_eq!(api.post("/api/v1/devices", &body).await.0, 201);
    }
    let dir = tempfile::tempdir().must();
    let log = dir.path().join("effects.jsonl");
    let log_arg = log.display().to_string();
    // Three of the four run; the spare stays offline.
    let _sim = Sim::start_plain(&api.base, 3, "sq", &["--effects-log", &log_arg]);
    wait_online(api, 3, Duration::from_secs(60)).await;

    let (status, body) = api
        .post(
            "/api/v1/queries",
            &json!({"name": "Lobby, online", "query": {"tag": "lobby", "status": "online", "text": "LOBBY"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let query = body["data"]["id"].as_str().must().to_owned();
    let (status, body) = api
        .post("/api/v1/queries", &json!({"name": "", "query": {"colour": "red"}}))
        .await;
    assert_eq!(status, 422, "{body}");

    // Each command the agent knows, to the screens the query names when the job is made.
    let commands = [
        json!({"type": "power_schedule", "schedule": {"off": {"fixed": "23:00"}, "on": {"first_prayer": -30}}}),
        json!({"type": "power_schedule", "schedule": null}),
        json!({"type": "set_settings", "settings": {"metrics_secs": 30}}),
        json!({"type": "install_package", "package": "fonts-noto-core"}),
        json!({"type": "refresh_content"}),
        json!({"type": "restart_agent"}),
        json!({"type": "reboot"}),
    ];
    for command in &commands {
        let id = api
            .create_job(&json!({"command": command, "target": {"query": query}}))
            .await;
        let job = api.wait_job(&id, "completed", Duration::from_secs(60)).await;
        assert_eq!(
            (job["total"].as_u64(), job["counts"]["succeeded"].as_u64()),
            (Some(2), Some(2)),
            "{job}"
        );
        let mut devices: Vec<String> = executions(api, &id)
            .await
            .iter()
            .map(|e| e["device_id"].as_str().must().to_owned())
            .collect();
        devices.sort();
        assert_eq!(devices, ["sq00000", "sq00001"], "{command}");
    }
    let applied = effects(&log);
    assert_eq!(applied.len(), 2 * commands.len(), "{applied:?}");
    for action in [
        "power_schedule",
        "set_settings",
        "install_package",
        "refresh_content",
        "restart_agent",
        "reboot",
    ] {
        assert!(applied.iter().any(|(_, _, a)| a == action), "{action}: {applied:?}");
    }

    // A query that is gone (or never was) is named in the refusal.
    assert_eq!(api.delete(&format!("/api/v1/queries/{query}")).await.0, 204);
    let (status, body) = api
        .post(
            "/api/v1/jobs",
            &json!({"command": {"type": "ping"}, "target": {"query": query}}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["fields"][0]["path"].as_str()),
        (422, Some("target.query")),
        "{body}"
    );
}
