//! Operators act on a real screen (`luach-agent run`) through the REST API: screenshots go
//! from the screen's latest frame to the control plane and back to the screen's own tenant
//! only; display commands answer `unsupported` with a reason on a machine without the
//! hardware and run the configured platform command where one is set.

use std::path::Path;
use std::time::Duration;

use luach_board::{Board, Options, Status};
use luach_tests::{Agent, Api, Must, TestApp, board_png, spawn_app, wait_for};
use serde_json::{Value, json};

async fn online_agent(app: &TestApp, device: &str, state: &Path, clock: &str, env: &[(&str, &str)]) -> Agent {
    luach_tests::online_agent(app, device, state, clock, &[], env).await
}

async fn command(api: &Api, device: &str, body: Value) -> (u16, Value) {
    api.post(&format!("/api/v1/devices/{device}/commands"), &body).await
}

/// The execution's state and detail in a command's answer.
fn outcome(answer: &Value) -> (&str, &str) {
    let e = &answer["data"]["execution"];
    (
        e["state"].as_str().unwrap_or_default(),
        e["detail"].as_str().unwrap_or_default(),
    )
}

/// Sends `request` as it is and returns what the server answers before closing.
async fn raw_http(addr: std::net::SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.must();
    stream.write_all(request).await.must();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    // The head and the small error body; the connection may stay open for the unsent body.
    while !String::from_utf8_lossy(&answer).contains("}}") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .must()
            .must();
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

fn decode(png: &[u8]) -> tiny_skia::Pixmap {
    tiny_skia::Pixmap::decode_png(png).must()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_screenshot_is_the_screens_frame_and_stays_in_its_tenant() {
    let app = spawn_app(|c| c.screenshots.keep_per_device = 3).await;
    let api = &app.api;
    let profile = json!({
        "name": "Beth El", "latitude": 40.7128, "longitude": -74.006, "timezone": "America/New_York",
        "nusach": "ashkenaz", "language": "en",
    });
    assert_eq!(api.put("/api/v1/synagogues/main", &profile).await.0, 201);
    let state = tempfile::tempdir().must();
    let clock = "2026-12-04T18:30:00Z";
    let _agent = online_agent(&app, "lobby01", state.path(), clock, &[]).await;

    // Taken: the stored PNG is exactly the frame the renderer draws for the screen's bundle at
    // its clock's instant (the agent runs headless at 1920×1080). The screen picks up a new
    // bundle on its next tick, so the first screenshots may still show the frame before it.
    let bundle = luach_tests::stored_bundle(state.path()).must();
    let at = chrono::DateTime::parse_from_rfc3339(clock).must().to_utc();
    let expected = Board::new()
        .render(&bundle, at, Options::size(1920, 1080), Status::default())
        .must();
    let expected = expected.rgba();
    let shot = wait_for(
        "a screenshot of the screen's board",
        Duration::from_secs(20),
        || async move {
            let (status, taken) = api.post("/api/v1/devices/lobby01/screenshots", &json!({})).await;
            assert_eq!(status, 201, "{taken}");
            let shot = taken["data"]["id"].as_str().must().to_owned();
            assert_eq!(
                (taken["data"]["width"].as_u64(), taken["data"]["height"].as_u64()),
                (Some(1920), Some(1080))
            );
            assert_eq!(taken["data"]["device_id"], "lobby01");
            let resp = api
                .http
                .get(api.url(&format!("/api/v1/devices/lobby01/screenshots/{shot}")))
                .bearer_auth(api.token.as_deref().must())
                .send()
                .await
                .must();
            assert_eq!(resp.status().as_u16(), 200);
            assert_eq!(resp.headers()["content-type"], "image/png");
            let png = resp.bytes().await.must();
            assert_eq!(taken["data"]["bytes"].as_u64(), Some(png.len() as u64));
            (decode(&png).data() == expected).then_some(shot)
        },
    )
    .await;

    // Listed newest first; only the newest three are kept.
    let mut ids = vec![shot.clone()];
    for _ in 0..3 {
        let (status, taken) = api.post("/api/v1/devices/lobby01/screenshots", &json!({})).await;
        assert_eq!(status, 201, "{taken}");
        ids.push(taken["data"]["id"].as_str().must().to_owned());
    }
    let (status, list) = api.get("/api/v1/devices/lobby01/screenshots").await;
    assert_eq!(status, 200, "{list}");
    let listed: Vec<&str> = list["data"]
        .as_array()
        .must()
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    let newest: Vec<&str> = ids.iter().rev().take(3).map(String::as_str).collect();
    assert_eq!(listed, newest);
    let (status, _) = api.get(&format!("/api/v1/devices/lobby01/screenshots/{shot}")).await;
    assert_eq!(status, 404, "the oldest screenshot was not pruned");

    // Another tenant sees none of it and cannot take one.
    let other = app.user("other", "tenant_admin", "admin@other.example").await;
    let newest_id = newest[0];
    for path in [
        "/api/v1/devices/lobby01/screenshots".to_owned(),
        format!("/api/v1/devices/lobby01/screenshots/{newest_id}"),
    ] {
        assert_eq!(other.get(&path).await.0, 404, "{path}");
    }
    assert_eq!(
        other.post("/api/v1/devices/lobby01/screenshots", &json!({})).await.0,
        404
    );
    assert_eq!(
        other
            .delete(&format!("/api/v1/devices/lobby01/screenshots/{newest_id}"))
            .await
            .0,
        404
    );
    // A viewer sees screenshots but may not take them.
    let viewer = app.user("default", "viewer", "viewer@default.example").await;
    assert_eq!(viewer.get("/api/v1/devices/lobby01/screenshots").await.0, 200);
    assert_eq!(
        viewer.post("/api/v1/devices/lobby01/screenshots", &json!({})).await.0,
        403
    );

    // Uploads: a device token only, a PNG only, within the size limit, once per id.
    let token = app.device_token("default", "lobby01").await;
    let fresh = || uuid::Uuid::now_v7().hyphenated().to_string();
    let (status, body) = app
        .upload_screenshot(&token, &fresh(), b"GIF89a not a png".to_vec())
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("validation_failed")),
        "{body}"
    );
    let mut cut = board_png(320, 180);
    cut.truncate(cut.len() - 30);
    let (status, body) = app.upload_screenshot(&token, &fresh(), cut).await;
    assert_eq!(status, 422, "{body}");
    // Over the limit: refused on the declared length, before a byte of the body is read.
    let head = format!(
        "PUT /api/v1/agent/screenshots/{} HTTP/1.1\r\nhost: luach\r\nx-luach-device-token: {token}\r\n\
         content-type: image/png\r\ncontent-length: {}\r\n\r\n",
        fresh(),
        app.state.config.screenshots.max_bytes + 1
    );
    let answer = raw_http(app.http, head.as_bytes()).await;
    assert!(
        answer.starts_with("HTTP/1.1 413") && answer.contains("payload_too_large"),
        "{answer}"
    );
    let resp = app
        .api
        .http
        .put(app.api.url(&format!("/api/v1/agent/screenshots/{}", fresh())))
        .header("x-luach-device-token", &token)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .must();
    assert_eq!(resp.status().as_u16(), 415);
    let id = fresh();
    assert_eq!(app.upload_screenshot(&token, &id, board_png(320, 180)).await.0, 201);
    assert_eq!(app.upload_screenshot(&token, &id, board_png(320, 180)).await.0, 409);
    // An id the control plane did not just make (an old UUID v7, a v4) is refused.
    let old = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, 1_700_000_000, 0));
    assert_eq!(
        app.upload_screenshot(&token, &old.hyphenated().to_string(), board_png(320, 180))
            .await
            .0,
        404
    );
    let v4 = uuid::Uuid::new_v4().hyphenated().to_string();
    assert_eq!(app.upload_screenshot(&token, &v4, board_png(320, 180)).await.0, 404);
    // A user's token is not a device token.
    let req = app
        .api
        .http
        .put(app.api.url(&format!("/api/v1/agent/screenshots/{}", fresh())))
        .header("content-type", "image/png")
        .body(board_png(320, 180));
    assert_eq!(app.api.send(req).await.0, 401);

    // Deleted by hand, and with the device.
    let (status, _) = api.delete(&format!("/api/v1/devices/lobby01/screenshots/{id}")).await;
    assert_eq!(status, 204);
    assert_eq!(
        api.delete(&format!("/api/v1/devices/lobby01/screenshots/{id}")).await.0,
        404
    );
    assert_eq!(api.delete("/api/v1/devices/lobby01").await.0, 204);
    let kept = app.data_dir().join("screenshots").join("default").join("lobby01");
    assert!(!kept.exists(), "a deleted device's screenshots remain");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn display_commands_say_unsupported_without_hardware_and_run_configured_commands() {
    let app = spawn_app(|_| {}).await;
    let api = &app.api;
    let clock = "2026-12-04T18:30:00Z";

    // A machine with no backlight, no mixer, no CEC and no display: each command says why not.
    let bare_state = tempfile::tempdir().must();
    let bare = online_agent(&app, "bare01", bare_state.path(), clock, &[]).await;
    for (body, reason) in [
        (json!({"command": {"type": "brightness", "percent": 40}}), "backlight"),
        (json!({"command": {"type": "volume", "percent": 40}}), "mixer"),
        (json!({"command": {"type": "display_power", "on": false}}), "CEC"),
    ] {
        let (status, answer) = command(api, "bare01", body.clone()).await;
        assert_eq!(status, 200, "{answer}");
        let (state, detail) = outcome(&answer);
        assert_eq!(state, "failed", "{body}: {answer}");
        assert!(
            detail.starts_with("unsupported: ") && detail.contains(reason),
            "{body}: {detail}"
        );
        assert_eq!(answer["data"]["job"]["command"], body["command"]);
        assert_eq!(answer["data"]["job"]["counts"]["failed"], 1, "{answer}");
    }
    drop(bare);
    wait_for(
        "the bare screen to be offline",
        Duration::from_secs(60),
        || async move {
            let (_, body) = api.get("/api/v1/devices/bare01").await;
            (body["data"]["status"] == "offline").then_some(())
        },
    )
    .await;

    // The same commands through configured platform commands.
    let dir = tempfile::tempdir().must();
    let file = |name: &str| dir.path().join(name).display().to_string();
    let brightness = format!("echo \"$1\" > '{}'", file("brightness"));
    let volume = format!("echo \"$LUACH_VALUE\" > '{}'", file("volume"));
    let power = format!(
        "if [ \"$1\" = on ]; then echo on > '{}'; else echo 'the TV is not answering' >&2; exit 2; fi",
        file("power")
    );
    let tv_state = tempfile::tempdir().must();
    let _tv = online_agent(
        &app,
        "tv01",
        tv_state.path(),
        clock,
        &[
            ("LUACH_BRIGHTNESS_COMMAND", brightness.as_str()),
            ("LUACH_VOLUME_COMMAND", volume.as_str()),
            ("LUACH_DISPLAY_POWER_COMMAND", power.as_str()),
        ],
    )
    .await;
    let read = |name: &str| std::fs::read_to_string(file(name)).unwrap_or_default();
    let (status, answer) = command(api, "tv01", json!({"command": {"type": "brightness", "percent": 40}})).await;
    assert_eq!((status, outcome(&answer).0), (200, "succeeded"), "{answer}");
    assert_eq!(read("brightness"), "40\n");
    let (_, answer) = command(api, "tv01", json!({"command": {"type": "volume", "percent": 0}})).await;
    assert_eq!(outcome(&answer).0, "succeeded", "{answer}");
    assert_eq!(read("volume"), "0\n");
    let (_, answer) = command(api, "tv01", json!({"command": {"type": "display_power", "on": true}})).await;
    assert_eq!(outcome(&answer).0, "succeeded", "{answer}");
    assert_eq!(read("power"), "on\n");
    // A failing command is a failure with its reason, not a success.
    let (_, answer) = command(api, "tv01", json!({"command": {"type": "display_power", "on": false}})).await;
    let (state, detail) = outcome(&answer);
    assert_eq!(state, "failed", "{answer}");
    assert!(detail.contains("the TV is not answering"), "{answer}");
    let (_, answer) = command(api, "tv01", json!({"command": {"type": "ping"}})).await;
    assert_eq!(outcome(&answer), ("succeeded", "pong"), "{answer}");
    // Commands this agent does not carry out say so.
    let (_, answer) = command(api, "tv01", json!({"command": {"type": "reboot"}})).await;
    assert_eq!(outcome(&answer).0, "failed", "{answer}");

    // Bad requests never reach the screen.
    let (status, answer) = command(api, "tv01", json!({"command": {"type": "brightness", "percent": 101}})).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["fields"][0]["path"], "command.percent", "{answer}");
    assert_eq!(
        command(api, "tv01", json!({"command": {"type": "format_disk"}}))
            .await
            .0,
        422
    );
    assert_eq!(
        command(api, "tv01", json!({"command": {"type": "volume"}})).await.0,
        422
    );
    assert_eq!(read("volume"), "0\n");
    // An offline screen's command waits for it (202, queued); other tenants' screens are not
    // there at all.
    let (status, answer) = api
        .post(
            "/api/v1/devices/bare01/commands?wait_ms=300",
            &json!({"command": {"type": "ping"}}),
        )
        .await;
    assert_eq!((status, outcome(&answer).0), (202, "queued"), "{answer}");
    let other = app.user("other", "tenant_admin", "admin@other.example").await;
    assert_eq!(
        command(&other, "tv01", json!({"command": {"type": "volume", "percent": 90}}))
            .await
            .0,
        404
    );
    assert_eq!(read("volume"), "0\n");
}

/// Lines the configured display-power command has written so far.
fn switches(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_screen_follows_its_power_schedule_on_its_own_clock() {
    let app = spawn_app(|_| {}).await;
    let api = &app.api;
    let profile = json!({
        "name": "Ohel Moshe", "latitude": 31.778, "longitude": 35.2354, "timezone": "Asia/Jerusalem",
        "israel": true, "nusach": "ashkenaz", "language": "he",
        "schedule": {"rules": [{"name": "שחרית", "time": {"fixed": "07:00"}, "days": ["weekday"]}]}
    });
    assert_eq!(api.put("/api/v1/synagogues/main", &profile).await.0, 201);
    let dir = tempfile::tempdir().must();
    let file = dir.path().join("power");
    let command = format!("echo \"$1\" >> '{}'", file.display());
    let env = [("LUACH_DISPLAY_POWER_COMMAND", command.as_str())];
    let state = tempfile::tempdir().must();

    // Enrolled, then given the schedule: off at 23:00, on half an hour before the first prayer.
    let agent = online_agent(&app, "hall02", state.path(), "2026-12-03T10:00:00Z", &env).await;
    let schedule = json!({"off": {"fixed": "23:00"}, "on": {"first_prayer": -30}});
    let bad = json!({"board": {"power": {"off": {"fixed": "23:75"}, "on": {"first_prayer": -30}}}});
    let (status, body) = api.patch("/api/v1/devices/hall02", &bad).await;
    assert_eq!(
        (status, body["error"]["fields"][0]["path"].as_str()),
        (422, Some("board.power.off.fixed")),
        "{body}"
    );
    let (status, body) = api
        .patch("/api/v1/devices/hall02", &json!({"board": {"power": schedule}}))
        .await;
    assert_eq!(status, 200, "{body}");
    wait_for("the screen to store the schedule", Duration::from_secs(30), || {
        let bundle = luach_tests::stored_bundle(state.path());
        async move { bundle?.board.power.is_some().then_some(()) }
    })
    .await;
    // At 10:00 the schedule asks for the display on, once.
    let file_ref = &file;
    wait_for("the display switched on", Duration::from_secs(10), || async move {
        (switches(file_ref) == ["on"]).then_some(())
    })
    .await;
    drop(agent);

    // Offline from here on (the server is gone), on the screen's own clock.
    app.shutdown.cancel();
    let run = |clock: &'static str| {
        Agent::start_with_env(
            &app.api.base,
            state.path(),
            &["--device-id", "hall02", "--clock-start", clock, "--clock-speed", "1"],
            &[("LUACH_DISPLAY_OUTPUT", "none"), env[0]],
        )
    };
    // Thursday 22:59:56 in Jerusalem (UTC+2): on, then off at 23:00.
    let evening = run("2026-12-03T20:59:56Z");
    wait_for(
        "the display switched off at 23:00",
        Duration::from_secs(20),
        || async move { (switches(file_ref) == ["on", "on", "off"]).then_some(()) },
    )
    .await;
    drop(evening);
    // Friday 06:29:57: still off, then on at 06:30, half an hour before Shacharit.
    let morning = run("2026-12-04T04:29:57Z");
    wait_for(
        "the display switched on at 06:30",
        Duration::from_secs(20),
        || async move { (switches(file_ref) == ["on", "on", "off", "off", "on"]).then_some(()) },
    )
    .await;
    drop(morning);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_runs_once_across_agent_restarts() {
    use luach_schemas::messages::{AckStatus, CommandAction};
    let app = spawn_app(|_| {}).await;
    let dir = tempfile::tempdir().must();
    let file = dir.path().join("volume");
    // Each run appends a line; the second kind of command takes a while.
    let command = format!(
        "if [ \"$1\" = 66 ]; then sleep 4; fi; echo \"$1\" >> '{}'",
        file.display()
    );
    let env = [("LUACH_VOLUME_COMMAND", command.as_str())];
    let state = tempfile::tempdir().must();
    let clock = "2026-12-03T10:00:00Z";
    let agent = online_agent(&app, "hall03", state.path(), clock, &env).await;
    let device = luach_schemas::DeviceId::parse("hall03").must();
    let tenant = luach_schemas::TenantId::parse("default").must();
    let prefixes = app.system.prefixes_of(std::slice::from_ref(&device)).await.must();
    let prefix = prefixes.get(&device).must().clone();
    let send = |id: &str, percent: u8, seconds: u64| {
        let (device, tenant, prefix, id) = (device.clone(), tenant.clone(), prefix.clone(), id.to_owned());
        let commands = app.state.commands.clone();
        async move {
            commands
                .send_as_and_wait(
                    id,
                    &tenant,
                    &device,
                    &prefix,
                    CommandAction::Volume { percent },
                    Duration::from_secs(seconds),
                )
                .await
        }
    };
    let lines = || std::fs::read_to_string(&file).unwrap_or_default();

    let first = send("volume-1", 20, 10).await.must();
    assert_eq!(first.status, AckStatus::Ok, "{first:?}");
    assert_eq!(lines(), "20\n");
    // The same id again: the same answer, and the command does not run again.
    let again = send("volume-1", 20, 10).await.must();
    assert_eq!((again.status, &again.detail), (first.status, &first.detail));
    assert_eq!(lines(), "20\n");

    // A slow command; the agent is killed while it runs (its caller stops waiting too).
    let waiting = tokio::spawn(send("volume-2", 66, 30));
    let seen_file = state.path().join("commands-seen.jsonl");
    let seen_ref = &seen_file;
    wait_for(
        "the screen to take the slow command",
        Duration::from_secs(10),
        || async move {
            std::fs::read_to_string(seen_ref)
                .ok()
                .filter(|s| s.contains("volume-2"))
        },
    )
    .await;
    drop(agent);
    waiting.abort();
    let api = &app.api;
    wait_for("the screen to be offline", Duration::from_secs(60), || async move {
        let (_, body) = api.get("/api/v1/devices/hall03").await;
        (body["data"]["status"] == "offline").then_some(())
    })
    .await;
    // Started again: what ran is answered from the seen set, what was cut short is not rerun.
    let _agent = online_agent(&app, "hall03", state.path(), clock, &env).await;
    let replay = send("volume-1", 20, 10).await.must();
    assert_eq!((replay.status, &replay.detail), (first.status, &first.detail));
    let cut = send("volume-2", 66, 10).await.must();
    assert_eq!(cut.status, AckStatus::Error, "{cut:?}");
    assert!(cut.detail.as_deref().must().contains("restarted"), "{cut:?}");
    let fresh = send("volume-3", 35, 10).await.must();
    assert_eq!(fresh.status, AckStatus::Ok, "{fresh:?}");
    // (The slow command's own process, left running when the agent was killed, may still
    // write its line; it never runs a second time.)
    let count = |value: &str| lines().lines().filter(|l| *l == value).count();
    assert_eq!((count("20"), count("35")), (1, 1), "{}", lines());
    assert!(count("66") <= 1, "{}", lines());
}
