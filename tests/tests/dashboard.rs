//! The dashboard in a real browser (Debian Chromium via playwright-core): a simulated screen
//! goes online and offline on the live device list, in English and in Hebrew (right-to-left);
//! a gabbai edits the synagogue, content and programme pages and reads holiday times.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use luach_tests::{Must, Sim, node_script, spawn_app};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

fn web_dist() -> PathBuf {
    let dist = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../control-plane/web/dist");
    assert!(
        dist.join("index.html").exists(),
        "dashboard not built: run `npm run build` in control-plane/web (scripts/test.sh does)"
    );
    dist
}

/// Runs a browser script signed in as `email` (password [`luach_tests::ADMIN_PASSWORD`]),
/// fails the test unless it succeeds, and returns what it printed.
async fn browser_script(script: &str, email: &str, args: &[&str]) -> Vec<u8> {
    browser_script_with(script, email, args, &[]).await
}

/// [`browser_script`] with extra environment for the script.
async fn browser_script_with(script: &str, email: &str, args: &[&str], env: &[(&str, &str)]) -> Vec<u8> {
    let out = Command::new("node")
        .envs(env.iter().copied())
        .env("LUACH_EMAIL", email)
        .env("LUACH_PASSWORD", luach_tests::ADMIN_PASSWORD)
        .arg(node_script(script))
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| panic!("node not available ({e}); scripts/test.sh installs it"));
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_a_screen_going_online_and_offline() {
    let dist = web_dist();
    let app = spawn_app(|c| c.http.web_dir = Some(dist)).await;
    let base = format!("http://{}", app.http);
    let shots = std::env::var_os("LUACH_SCREENSHOT_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    std::fs::create_dir_all(&shots).must();

    let mut sim = Sim::start(&app.api, 1, "dash", &[]).await;
    let mut browser = Command::new("node")
        .env("LUACH_EMAIL", luach_tests::ADMIN_EMAIL)
        .env("LUACH_PASSWORD", luach_tests::ADMIN_PASSWORD)
        .arg(node_script("dashboard.mjs"))
        .args([base.as_str(), "dash00000"])
        .arg(&shots)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("node not available ({e}); scripts/test.sh installs it"));
    let mut lines = BufReader::new(browser.stdout.take().unwrap_or_else(|| panic!("no stdout"))).lines();
    let line = tokio::time::timeout(Duration::from_secs(90), lines.next_line()).await;
    assert!(
        matches!(&line, Ok(Ok(Some(l))) if l == "online"),
        "browser did not see the screen online: {line:?}"
    );
    sim.kill();
    let line = tokio::time::timeout(Duration::from_secs(90), lines.next_line()).await;
    assert!(
        matches!(&line, Ok(Ok(Some(l))) if l == "offline"),
        "browser did not see the screen offline: {line:?}"
    );
    let status = tokio::time::timeout(Duration::from_secs(30), browser.wait()).await;
    assert!(
        matches!(status, Ok(Ok(s)) if s.success()),
        "browser script failed: {status:?}"
    );

    // The server serves the app shell for client-side routes too.
    let (code, _) = app.api.get("/some/client/route").await;
    assert_eq!(code, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gabbai_edits_the_schedule_and_sees_the_preview() {
    let app = spawn_app(|c| c.http.web_dir = Some(web_dist())).await;
    let base = format!("http://{}", app.http);
    let shots = std::env::var_os("LUACH_SCREENSHOT_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    std::fs::create_dir_all(&shots).unwrap_or_else(|e| panic!("{e}"));
    let gabbai = "gabbai@default.example";
    app.user("default", "gabbai", gabbai).await;
    let stdout = browser_script("synagogue.mjs", gabbai, &[base.as_str(), shots.to_str().must()]).await;
    let shown: serde_json::Value = serde_json::from_slice(&stdout).must();
    // What the page showed is what the API computes, to the minute: first stringently (the
    // default), where nightfall (a start) rounds up and Maariv at nightfall with it, while
    // candle lighting (a deadline) rounds down...
    let (code, body) = app.api.get("/api/v1/synagogues/main/preview?date=2026-12-04").await;
    assert_eq!(code, 200, "{body}");
    let day = &body["data"]["day"];
    assert_eq!(day["hebrew_date"]["month"], "Kislev");
    let exact = |key: &str| day["zmanim"][key].as_str().must().to_owned();
    assert_eq!(body["data"]["schedule"][0]["name"], "Mincha");
    let mincha = body["data"]["schedule"][0]["time"].as_str().must();
    assert_eq!(shown["mincha"], mincha[11..16], "{shown} {mincha}");
    assert_eq!(shown["candle_lighting"], exact("candle_lighting")[11..16], "{shown}");
    assert_eq!(
        shown["tzeit_8_5"],
        luach_tests::minute_of(&exact("tzeit_8_5"), |seconds| seconds > 0),
        "{shown}"
    );
    assert_eq!(shown["maariv"], shown["tzeit_8_5"]);
    // ...then with the rule the gabbai chose, "seconds dropped", saved and followed.
    let (_, stored) = app.api.get("/api/v1/synagogues/main").await;
    assert_eq!(stored["data"]["display"]["minutes"]["mode"], "down", "{stored}");
    let date = shown["down"]["date"].as_str().must();
    let (_, later) = app
        .api
        .get(&format!("/api/v1/synagogues/main/preview?date={date}"))
        .await;
    let tzeit = later["data"]["day"]["zmanim"]["tzeit_8_5"].as_str().must();
    assert_eq!(shown["down"]["tzeit_8_5"], tzeit[11..16], "{tzeit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gabbai_manages_announcements_and_memorials() {
    let app = spawn_app(|c| c.http.web_dir = Some(web_dist())).await;
    let base = format!("http://{}", app.http);
    let shots = std::env::var_os("LUACH_SCREENSHOT_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    std::fs::create_dir_all(&shots).must();
    let gabbai = "gabbai@default.example";
    app.user("default", "gabbai", gabbai).await;
    // A passing a year and a few weeks ago: its first yahrzeit is near.
    let passed = (chrono::Utc::now().date_naive() - chrono::Duration::days(365 - 25)).to_string();
    let stdout = browser_script(
        "content.mjs",
        gabbai,
        &[base.as_str(), shots.to_str().must(), passed.as_str()],
    )
    .await;
    let shown: serde_json::Value = serde_json::from_slice(&stdout).must();
    // The page shows exactly the yahrzeits the API computes, and the memorial was stored.
    let (_, memorials) = app.api.get("/api/v1/memorials").await;
    assert_eq!(memorials["data"][0]["name"], "Sarah bat Avraham");
    assert_eq!(memorials["data"][0]["passed"]["civil"]["date"], passed.as_str());
    let (_, coming) = app.api.get("/api/v1/memorials/yahrzeits?days=60").await;
    let ids: Vec<&str> = coming["data"]
        .as_array()
        .must()
        .iter()
        .filter_map(|y| y["memorial_id"].as_str())
        .collect();
    // The first yahrzeit is 354 or 384 days after the passing: 14 or 44 days from now.
    assert_eq!(ids.len(), 1, "{coming}");
    assert_eq!(shown["yahrzeits"], serde_json::json!(ids));
    let (_, announcements) = app.api.get("/api/v1/announcements").await;
    assert_eq!(
        announcements["data"],
        serde_json::json!([]),
        "the removed announcement is still there"
    );
}

/// A shown time as the page writes it (a dash for none).
fn clock(v: &serde_json::Value) -> String {
    v.as_str().map_or_else(|| "—".to_owned(), str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gabbai_edits_the_programme_and_reads_holiday_times() {
    use serde_json::json;
    let app = spawn_app(|c| c.http.web_dir = Some(web_dist())).await;
    let base = format!("http://{}", app.http);
    let shots = std::env::var_os("LUACH_SCREENSHOT_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    std::fs::create_dir_all(&shots).must();
    let synagogue = json!({
        "name": "Beit Knesset", "address": "King George 56", "latitude": 31.778, "longitude": 35.2354,
        "elevation_m": 754, "timezone": "Asia/Jerusalem", "israel": true, "nusach": "ashkenaz",
        "language": "he", "candle_lighting_minutes": 40,
        "schedule": {"rules": [
            {"name": "Mincha", "time": {"zman": "sunset", "offset_minutes": -15},
             "round": {"mode": "down", "minutes": 5}, "days": ["every_day"]}
        ]}
    });
    let (status, body) = app.api.put("/api/v1/synagogues/main", &synagogue).await;
    assert_eq!(status, 201, "{body}");
    let gabbai = "gabbai@default.example";
    app.user("default", "gabbai", gabbai).await;
    // A fixed window (Friday 2026-12-04 and 2026-12-11 in it), never today's.
    let (from, days, reading) = ("2026-12-01", "14", "2026-12-05");
    let stdout = browser_script(
        "programme.mjs",
        gabbai,
        &[base.as_str(), shots.to_str().must(), from, days, reading],
    )
    .await;
    let shown: serde_json::Value = serde_json::from_slice(&stdout).must();

    // Each refused entry was shown with the path of its field.
    for (form, path) in [
        ("aliyot", "honours[1].honour"),
        ("shiur", "schedule.days"),
        ("timer", "show_before_minutes"),
    ] {
        let text = shown["errors"][form].as_str().must();
        assert!(text.contains(path), "{form}: {text}");
    }

    // The lists show exactly what is stored.
    let (_, aliyot) = app.api.get("/api/v1/aliyot").await;
    let stored = &aliyot["data"];
    assert_eq!(stored.as_array().must().len(), 1, "{aliyot}");
    assert_eq!(stored[0]["date"], reading);
    assert_eq!(stored[0]["note"], "Vayishlach");
    assert_eq!(
        stored[0]["honours"],
        json!([
            {"honour": "kohen", "name": "ר׳ אהרן כהן"},
            {"honour": "levi", "name": "ר׳ משה לוי"},
            {"honour": "shlishi", "name": "ר׳ יעקב ישראלי"}
        ])
    );
    assert_eq!(
        shown["aliyot"],
        json!([{"id": stored[0]["id"], "date": reading, "honours": stored[0]["honours"]}])
    );

    let (_, shiurim) = app.api.get("/api/v1/shiurim").await;
    let stored = &shiurim["data"];
    assert_eq!(stored.as_array().must().len(), 1, "{shiurim}");
    assert_eq!(stored[0]["teacher"], "הרב כהן");
    assert_eq!(stored[0]["location"], "Beit midrash");
    assert_eq!(
        stored[0]["schedule"],
        json!({"name": "Daf Yomi", "time": {"zman": "sunset", "offset_minutes": -60},
               "round": {"mode": "down", "minutes": 5}, "days": ["weekday"]})
    );
    assert_eq!(
        shown["shiurim"],
        json!([{"id": stored[0]["id"], "title": "Daf Yomi", "time": "Sunset −60 min"}])
    );

    let (_, timers) = app.api.get("/api/v1/timers").await;
    let stored = &timers["data"];
    assert_eq!(stored.as_array().must().len(), 1, "{timers}");
    assert_eq!(stored[0]["label_he"], "הדלקת נרות");
    assert_eq!(stored[0]["target"], json!({"zman": "candle_lighting"}));
    assert_eq!(
        shown["timers"],
        json!([{"id": stored[0]["id"], "label": stored[0]["label_en"],
                "target": "Candle lighting", "show_before_minutes": stored[0]["show_before_minutes"]}])
    );
    assert_eq!(stored[0]["show_before_minutes"], 90);

    // Holiday times: the page showed the API's days and times for the same window.
    let (status, times) = app
        .api
        .get(&format!(
            "/api/v1/synagogues/main/holiday-times?from={from}&days={days}&shabbat=true"
        ))
        .await;
    assert_eq!(status, 200, "{times}");
    let expected: Vec<serde_json::Value> = times["data"]["days"]
        .as_array()
        .must()
        .iter()
        .map(|d| json!({"date": d["date"], "candle_lighting": clock(&d["candle_lighting_shown"]), "havdalah": clock(&d["havdalah_shown"])}))
        .collect();
    assert_eq!(shown["holidays"], json!(expected));
    let friday = expected.iter().find(|d| d["date"] == "2026-12-04").must();
    assert_ne!(friday["candle_lighting"], "—", "{times}");

    // Hebrew: right-to-left, translated honours and month names.
    assert_eq!(shown["hebrew"]["dir"], "rtl");
    assert_eq!(shown["hebrew"]["kohen"], "כהן");
    assert!(
        shown["hebrew"]["month"].as_str().must().contains("כסלו"),
        "{}",
        shown["hebrew"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_adds_a_waiting_screen_by_its_claim_code() {
    let app = spawn_app(|c| {
        c.http.web_dir = Some(web_dist());
        c.quotas.max_devices = 5;
    })
    .await;
    let base = format!("http://{}", app.http);
    // A screen waiting for enrolment: its own key, a CSR, a claim code.
    let key = luach_pki::DeviceKey::generate().must();
    let csr = key.csr_pem("waiting1").must();
    let (status, pending) = app
        .api
        .anonymous()
        .post(
            "/api/v1/enrolment/requests",
            &serde_json::json!({"device_id": "waiting1", "csr_pem": csr}),
        )
        .await;
    assert_eq!(status, 201, "{pending}");
    let code = pending["data"]["claim_code"].as_str().must().to_owned();
    // Afterwards the same id asks again with another key (a reset screen, or someone else).
    let other_key = luach_pki::DeviceKey::generate().must();
    let other_csr = other_key.csr_pem("waiting1").must();
    let stdout = browser_script_with(
        "claim.mjs",
        luach_tests::ADMIN_EMAIL,
        &[base.as_str(), code.as_str(), "waiting1"],
        &[("LUACH_REKEY_CSR", other_csr.as_str())],
    )
    .await;
    let out = String::from_utf8_lossy(&stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"claimed"), "{out}");
    // The tenant admin sees the plan: one screen of five.
    assert!(lines.iter().any(|l| l.starts_with("plan: Screens: 1 of 5")), "{out}");
    assert_eq!(&lines[lines.len() - 2..], ["cancelled", "rekeyed"], "{out}");
    // The screen is the tenant's, with the name typed; its certificate is now for the new key.
    let (status, device) = app.api.get("/api/v1/devices/waiting1").await;
    assert_eq!(
        (status, device["data"]["name"].as_str()),
        (200, Some("Lobby screen")),
        "{device}"
    );
    let (status, history) = app.api.get("/api/v1/devices/waiting1/certificates").await;
    assert_eq!(status, 200, "{history}");
    let ends: Vec<&Value> = history["data"].as_array().must().iter().map(|c| &c["end"]).collect();
    assert_eq!(ends, [&Value::Null, &json!("superseded")], "{history}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_sets_a_screens_board_and_sees_its_picture() {
    let app = spawn_app(|c| c.http.web_dir = Some(web_dist())).await;
    let base = format!("http://{}", app.http);
    let shots = std::env::var_os("LUACH_SCREENSHOT_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    std::fs::create_dir_all(&shots).must();
    let (code, body) = app
        .api
        .post("/api/v1/devices", &json!({"id": "lobby1", "name": "Lobby"}))
        .await;
    assert_eq!(code, 201, "{body}");
    let operator = "operator@default.example";
    app.user("default", "operator", operator).await;
    browser_script("board.mjs", operator, &[base.as_str(), "lobby1", shots.to_str().must()]).await;
    // The page saved the settings on the screen's record; its picture is drawn in them.
    let (code, body) = app.api.get("/api/v1/devices/lobby1").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body["data"]["board"],
        json!({"layout": "auto", "theme": "high_contrast", "language": "both",
               "power": {"off": {"fixed": "23:00"}, "on": {"first_prayer": -30}}})
    );
    let png = app
        .api
        .http
        .get(app.api.url("/api/v1/devices/lobby1/preview.png"))
        .bearer_auth(app.api.token.as_deref().must())
        .send()
        .await
        .must()
        .bytes()
        .await
        .must();
    let frame = image_corner(&png);
    assert_eq!(frame, [0, 0, 0], "the high-contrast background");
}

/// The colour of the pixel at (4, 4) of a PNG.
fn image_corner(png: &[u8]) -> [u8; 3] {
    let pixmap = tiny_skia::Pixmap::decode_png(png).must();
    let p = pixmap.pixel(4, 4).must();
    [p.red(), p.green(), p.blue()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_sees_what_a_screen_shows_and_controls_its_display() {
    let app = spawn_app(|c| c.http.web_dir = Some(web_dist())).await;
    let base = format!("http://{}", app.http);
    let shots = std::env::var_os("LUACH_SCREENSHOT_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    std::fs::create_dir_all(&shots).must();
    // A real screen, headless, whose brightness goes through a configured command and which
    // has no way to switch its display off.
    let state = tempfile::tempdir().must();
    let brightness = state.path().join("brightness-set");
    let command = format!("echo \"$1\" > '{}'", brightness.display());
    let token = luach_tests::bulk_token(&app.api, 1).await;
    let _agent = luach_tests::Agent::start_with_env(
        &app.api.base,
        state.path(),
        &["--device-id", "hall1", "--enrolment-token", &token],
        &[
            ("LUACH_DISPLAY_OUTPUT", "none"),
            ("LUACH_BRIGHTNESS_COMMAND", command.as_str()),
        ],
    );
    let api = &app.api;
    luach_tests::wait_for(
        "the screen to be online",
        std::time::Duration::from_secs(60),
        || async move {
            let (_, body) = api.get("/api/v1/devices/hall1").await;
            (body["data"]["status"] == "online").then_some(())
        },
    )
    .await;
    let operator = "operator@default.example";
    app.user("default", "operator", operator).await;
    let out = browser_script("screen.mjs", operator, &[base.as_str(), "hall1", shots.to_str().must()]).await;
    let seen: Value = serde_json::from_slice(out.trim_ascii()).must();
    assert_eq!(seen["width"], 1920, "{seen}");
    assert_eq!(seen["brightness"]["kind"], "ok", "{seen}");
    assert_eq!(std::fs::read_to_string(&brightness).must(), "30\n");
    // Unsupported, with the reason, in Hebrew.
    assert_eq!(seen["power"]["kind"], "unsupported", "{seen}");
    let text = seen["power"]["text"].as_str().must();
    assert!(text.contains("אינו יכול") && text.contains("CEC"), "{text}");
    // The screenshot the page showed is stored for the screen.
    let (_, list) = app.api.get("/api/v1/devices/hall1/screenshots").await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1), "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_sends_a_command_to_many_screens_and_follows_it() {
    let app = spawn_app(|c| c.http.web_dir = Some(web_dist())).await;
    let base = format!("http://{}", app.http);
    let shots = std::env::var_os("LUACH_SCREENSHOT_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    std::fs::create_dir_all(&shots).must();
    // Three simulated screens that cannot reboot.
    let _sim = Sim::start_plain(&app.api.base, 3, "jobs", &["--fail", "reboot=1"]);
    let api = &app.api;
    luach_tests::wait_for("three screens online", Duration::from_secs(60), || async move {
        (api.count("online").await? == 3).then_some(())
    })
    .await;
    let operator = "jobs@default.example";
    app.user("default", "operator", operator).await;
    let out = browser_script("jobs.mjs", operator, &[base.as_str(), shots.to_str().must()]).await;
    let seen: Value = serde_json::from_slice(out.trim_ascii()).must();
    // In Hebrew: three of three screens done, each failure with the screen's reason.
    assert_eq!(seen["brightness"]["progress"], "3 מתוך 3 מסכים הסתיימו", "{seen}");
    assert!(
        seen["brightness"]["counts"].as_str().must().contains("בוצעה 3"),
        "{seen}"
    );
    let failures = seen["failures"].as_array().must();
    assert_eq!(failures.len(), 2, "{seen}");
    assert!(
        failures.iter().all(|f| f.as_str().must().contains("injected failure")),
        "{seen}"
    );
    assert!(
        seen["invalid"]["text"].as_str().must().contains("command.percent"),
        "{seen}"
    );
    assert_eq!(seen["invalid"]["marked"], "true", "{seen}");
    assert_eq!(seen["paused"], "מושהית", "{seen}");
    assert_eq!(seen["cancelled"]["state"], "בוטלה", "{seen}");
    assert_eq!(seen["cancelled"]["actions"], 0, "{seen}");
    // What the page showed is what the server holds.
    let (_, jobs) = app.api.get("/api/v1/jobs").await;
    let states: Vec<&str> = jobs["data"]["items"]
        .as_array()
        .must()
        .iter()
        .map(|j| j["state"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(states, ["cancelled", "completed", "completed"], "{jobs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_rolls_a_release_out_in_phases_and_resumes_it_after_a_failed_phase() {
    let dir = tempfile::tempdir().must();
    let (keys, _) = luach_ota::KeyDir::keygen(dir.path().join("keys"), 1, 1, chrono::Utc::now()).must();
    let root_pub = dir.path().join("keys").join(luach_ota::ROOT_PUB_FILE);
    let trusted = root_pub.clone();
    let app = spawn_app(move |c| {
        c.http.web_dir = Some(web_dist());
        c.releases.trusted_root = Some(trusted);
    })
    .await;
    let root = app.user("default", "super_admin", "releases@example.org").await;
    luach_tests::register_release(&root, &keys, "0.2.0", &[7u8; 64 * 1024]).await;
    let base = format!("http://{}", app.http);
    let shots = std::env::var_os("LUACH_SCREENSHOT_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    std::fs::create_dir_all(&shots).must();
    // Two screens that take updates and one whose updates fail.
    let root_arg = root_pub.display().to_string();
    let _good = Sim::start_plain(&app.api.base, 2, "good", &["--ota-root", &root_arg]);
    let _bad = Sim::start_plain(
        &app.api.base,
        1,
        "bad",
        &["--ota-root", &root_arg, "--fail", "update=1"],
    );
    let api = &app.api;
    luach_tests::wait_for("three screens online", Duration::from_secs(60), || async move {
        (api.count("online").await? == 3).then_some(())
    })
    .await;
    let operator = "rollout@default.example";
    app.user("default", "operator", operator).await;
    let devices = "good00000, bad00000, good00001";
    let out = browser_script(
        "rollout.mjs",
        operator,
        &[base.as_str(), shots.to_str().must(), devices],
    )
    .await;
    let seen: Value = serde_json::from_slice(out.trim_ascii()).must();
    assert_eq!(seen["release"], "0.2.0 (stable)", "{seen}");
    // Phase 2 (the failing screen) paused the roll-out by itself, in Hebrew, with the reason.
    assert_eq!(seen["paused"]["state"], "מושהית", "{seen}");
    assert_eq!(seen["paused"]["phase"], "שלב 2 מתוך 3: מסכים 2–2", "{seen}");
    assert!(
        seen["paused"]["reason"].as_str().must().contains("phase 2 of 3"),
        "{seen}"
    );
    assert!(seen["paused"]["latest"].as_str().must().contains("bad00000"), "{seen}");
    // Resuming accepted it; the last phase completed the job.
    assert_eq!(seen["completed"]["phase"], "שלב 3 מתוך 3: מסכים 3–3", "{seen}");
    let (_, good) = api.get("/api/v1/devices/good00001").await;
    assert_eq!(good["data"]["agent_version"], "0.2.0", "{good}");
    let (_, bad) = api.get("/api/v1/devices/bad00000").await;
    assert_ne!(bad["data"]["agent_version"], "0.2.0", "{bad}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_filters_tags_and_commands_screens_and_reads_a_screens_history() {
    let app = spawn_app(|c| c.http.web_dir = Some(web_dist())).await;
    let base = format!("http://{}", app.http);
    let shots = std::env::var_os("LUACH_SCREENSHOT_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    std::fs::create_dir_all(&shots).must();
    let api = &app.api;
    for i in 0..3 {
        let id = format!("fleet{i:05}");
        assert_eq!(
            api.post("/api/v1/devices", &json!({"id": id, "name": format!("מסך {i}")}))
                .await
                .0,
            201
        );
    }
    let _sim = Sim::start_plain(&app.api.base, 3, "fleet", &["--metrics-secs", "1"]);
    luach_tests::wait_for("three screens online", Duration::from_secs(60), || async move {
        (api.count("online").await? == 3).then_some(())
    })
    .await;
    let operator = "fleet@default.example";
    app.user("default", "operator", operator).await;
    let out = browser_script("fleet.mjs", operator, &[base.as_str(), shots.to_str().must(), "fleet"]).await;
    let seen: Value = serde_json::from_slice(out.trim_ascii()).must();
    assert_eq!(seen["searched"]["rows"], 1, "{seen}");
    assert_eq!(
        seen["searched"]["focused"], "filter-text",
        "typing keeps the search box: {seen}"
    );
    assert_eq!(seen["searched"]["summary"], "מוצגים 1 מתוך 3", "{seen}");
    assert_eq!(seen["selected"], "2 נבחרו", "{seen}");
    assert_eq!(seen["tagged"], "עודכנו 2 מתוך 2 מסכים", "{seen}");
    assert_eq!(seen["byTag"], 2, "{seen}");
    assert_eq!(seen["bySaved"], json!({"rows": 2, "tag": "lobby"}), "{seen}");
    assert_eq!(seen["schedule"], "לוח זמנים להדלקת התצוגה", "{seen}");
    assert!(seen["sent"].as_str().must().starts_with("נשלח ל־2 מסכים"), "{seen}");
    for chart in ["chart-cpu_percent", "chart-mem_used_bytes", "chart-disk_used_bytes"] {
        assert!(
            seen["charts"].as_array().must().iter().any(|c| c == chart),
            "{chart}: {seen}"
        );
    }
    assert!(seen["command"].as_str().must().contains("30%"), "{seen}");
    assert!(seen["kept"].as_str().must().contains("חסרות: 0"), "{seen}");
    // What the page did is what the server holds.
    for (id, tagged) in [("fleet00000", true), ("fleet00001", true), ("fleet00002", false)] {
        let (_, d) = api.get(&format!("/api/v1/devices/{id}")).await;
        assert_eq!(d["data"]["tags"] == json!(["lobby"]), tagged, "{d}");
        assert_eq!(d["data"]["group"] == "north", tagged, "{d}");
    }
    let (_, queries) = api.get("/api/v1/queries").await;
    assert_eq!(queries["data"][0]["name"], "לובי", "{queries}");
    assert_eq!(queries["data"][0]["query"], json!({"tag": "lobby"}), "{queries}");
    let (_, jobs) = api.get("/api/v1/jobs").await;
    // Newest first: the schedule for the saved query, then the selection's brightness.
    let items = jobs["data"]["items"].as_array().must();
    assert_eq!(
        items[0]["command"],
        json!({"type": "power_schedule", "schedule": {"off": {"fixed": "23:00"}, "on": {"first_prayer": -30}}}),
        "{jobs}"
    );
    assert_eq!(items[0]["target"]["query"], queries["data"][0]["id"], "{jobs}");
    assert_eq!(items[0]["total"], 2, "{jobs}");
    assert_eq!(
        items[1]["command"],
        json!({"type": "brightness", "percent": 30}),
        "{jobs}"
    );
    assert_eq!(items[1]["total"], 2, "{jobs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_writes_an_alert_rule_and_acknowledges_its_alert_live() {
    let app = spawn_app(|c| {
        c.http.web_dir = Some(web_dist());
        c.alerts.eval_secs = 1;
    })
    .await;
    let base = format!("http://{}", app.http);
    let shots = std::env::var_os("LUACH_SCREENSHOT_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    std::fs::create_dir_all(&shots).must();
    let operator = "alerts@default.example";
    app.user("default", "operator", operator).await;
    let screen = luach_tests::PlainScreen::connect(&app, "hall1").await;
    let (status, body) = app.api.patch("/api/v1/devices/hall1", &json!({"tags": ["hall"]})).await;
    assert_eq!(status, 200, "{body}");
    let args = [base.as_str(), shots.to_str().must()];
    let page = browser_script("alerts.mjs", operator, &args);
    // The screen heats up once the page saved its rule, and cools down once the page
    // acknowledged the alert.
    let drive = async {
        let api = &app.api;
        luach_tests::wait_for("the rule saved", Duration::from_secs(90), || async move {
            let (_, rules) = api.get("/api/v1/alert-rules").await;
            (rules["data"].as_array()?.len() == 1).then_some(())
        })
        .await;
        screen.temperature(81.0).await;
        luach_tests::wait_for("the alert acknowledged", Duration::from_secs(90), || async move {
            let (_, alerts) = api.get("/api/v1/alerts?state=acknowledged").await;
            (alerts["data"]["total"] == 1).then_some(())
        })
        .await;
        screen.temperature(60.0).await;
    };
    let (out, ()) = tokio::join!(page, drive);
    let seen: Value = serde_json::from_slice(out.trim_ascii()).must();
    assert!(
        seen["errors"].as_str().must().contains("condition.metric.value"),
        "{seen}"
    );
    assert_eq!(seen["marked"], "true", "{seen}");
    assert!(seen["rules"][0].as_str().must().contains("מסכי האולם חמים"), "{seen}");
    // In Hebrew: open, critical, the screen's id; then acknowledged; then resolved.
    assert_eq!(seen["opened"]["state"], "פתוחה", "{seen}");
    assert_eq!(seen["opened"]["severity"], "critical", "{seen}");
    assert_eq!(seen["opened"]["device"], "hall1", "{seen}");
    assert_eq!(seen["acknowledged"], "אושרה", "{seen}");
    assert_eq!(seen["resolved"], "נסגרה", "{seen}");
    // What the page showed is what the server holds.
    let (_, alerts) = app.api.get("/api/v1/alerts").await;
    let alert = &alerts["data"]["items"][0];
    assert_eq!(alert["state"], "resolved", "{alerts}");
    assert_eq!(
        alert["acknowledged_by"].as_str().map(|w| w.contains(operator)),
        Some(true),
        "{alerts}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_admin_sets_up_a_channel_tests_it_and_silences_an_alert() {
    let smtp = luach_tests::sinks::Sink::start(&["smtp"]);
    let app = spawn_app(|c| {
        c.http.web_dir = Some(web_dist());
        c.alerts.eval_secs = 1;
        c.notify.poll_ms = 100;
        c.notify.smtp = Some(smtp.smtp_config());
    })
    .await;
    let base = format!("http://{}", app.http);
    let shots = std::env::var_os("LUACH_SCREENSHOT_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    std::fs::create_dir_all(&shots).must();
    let admin = "notify-admin@default.example";
    app.user("default", "tenant_admin", admin).await;
    // An open alert for the page to silence.
    let (status, rule) = app
        .api
        .post(
            "/api/v1/alert-rules",
            &json!({"name": "Hot", "target": {"all": true},
                    "condition": {"metric": {"metric": "temperature_c", "direction": "above", "value": 75}}}),
        )
        .await;
    assert_eq!(status, 201, "{rule}");
    let screen = luach_tests::PlainScreen::connect(&app, "hall1").await;
    screen.temperature(81.0).await;
    let api = &app.api;
    luach_tests::wait_for("the alert open", Duration::from_secs(30), || async move {
        let (_, alerts) = api.get("/api/v1/alerts?state=open").await;
        (alerts["data"]["total"] == 1).then_some(())
    })
    .await;
    let args = [base.as_str(), shots.to_str().must()];
    let out = browser_script("notify.mjs", admin, &args).await;
    let seen: Value = serde_json::from_slice(out.trim_ascii()).must();
    assert!(seen["errors"].as_str().must().contains("to[0]"), "{seen}");
    assert_eq!(seen["marked"], "true", "{seen}");
    assert!(seen["channels"][0].as_str().must().contains("הגבאי"), "{seen}");
    assert!(seen["logged"].as_str().must().contains("נשלחה"), "{seen}");
    // The test message reached the SMTP server, in Hebrew, from the page's channel.
    let mail = smtp.next("the test message", Duration::from_secs(30));
    assert_eq!(mail["to"], json!(["gabbai@example.org"]), "{mail}");
    assert_eq!(mail["subject"], "[לוח] הודעת בדיקה לערוץ הגבאי", "{mail}");
    // The silence the page made is the server's: the alert's rule on its screen.
    assert_eq!(seen["silences"].as_array().must().len(), 1, "{seen}");
    let (_, silences) = app.api.get("/api/v1/alert-silences").await;
    let s = &silences["data"][0];
    assert_eq!(s["matchers"]["device_id"], "hall1", "{silences}");
    assert_eq!(s["matchers"]["rule_id"], rule["data"]["id"], "{silences}");
    assert!(s["created_by"].as_str().must().contains(admin), "{silences}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gabbai_records_a_familys_yahrzeit_reminder_with_its_consent() {
    let app = spawn_app(|c| c.http.web_dir = Some(web_dist())).await;
    let base = format!("http://{}", app.http);
    let shots = std::env::var_os("LUACH_SCREENSHOT_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    std::fs::create_dir_all(&shots).must();
    let gabbai = "reminders-gabbai@default.example";
    app.user("default", "gabbai", gabbai).await;
    let (status, plaque) = app
        .api
        .post(
            "/api/v1/memorials",
            &json!({"name": "שרה בת אברהם", "family": "כהן", "passed": {"hebrew": {"year": 5780, "month": 10, "day": 10}}}),
        )
        .await;
    assert_eq!(status, 201, "{plaque}");
    let args = [base.as_str(), shots.to_str().must()];
    let out = browser_script("reminders.mjs", gabbai, &args).await;
    let seen: Value = serde_json::from_slice(out.trim_ascii()).must();
    assert!(seen["errors"].as_str().must().contains("consent.given_on"), "{seen}");
    assert_eq!(seen["marked"], "true", "{seen}");
    let listed = seen["listed"][0].as_str().must();
    assert!(listed.contains("רבקה כהן") && listed.contains("שרה בת אברהם"), "{seen}");
    // What the page saved is the server's, consent and all.
    let (_, people) = app.api.get("/api/v1/congregants").await;
    let c = &people["data"][0];
    assert_eq!(c["yahrzeits"], json!([plaque["data"]["id"]]), "{people}");
    assert_eq!(
        c["consent"],
        json!({"given_on": "2026-12-01", "how": "טופס חתום במשרד"}),
        "{people}"
    );
}
