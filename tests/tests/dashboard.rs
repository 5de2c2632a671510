//! The dashboard in a real browser (Debian Chromium via playwright-core): a simulated screen
//! goes online and offline on the live device list, in English and in Hebrew (right-to-left).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use luach_tests::{Must, Sim, node_script, spawn_app};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_a_screen_going_online_and_offline() {
    let dist = web_dist();
    let app = spawn_app(|c| c.http.web_dir = Some(dist)).await;
    let base = format!("http://{}", app.http);
    let shots = std::env::var_os("LUACH_SCREENSHOT_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    std::fs::create_dir_all(&shots).must();

    let mut sim = Sim::start(&base, 1, "dash", &[]);
    let mut browser = Command::new("node")
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
    let out = Command::new("node")
        .arg(node_script("synagogue.mjs"))
        .arg(&base)
        .arg(&shots)
        .output()
        .await
        .unwrap_or_else(|e| panic!("node not available ({e}); scripts/test.sh installs it"));
    assert!(
        out.status.success(),
        "browser script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    // What the page showed is what the API computes.
    let (code, body) = app.api.get("/api/v1/synagogues/main/preview?date=2026-12-04").await;
    assert_eq!(code, 200, "{body}");
    let mincha = body["data"]["schedule"][0]["time"].as_str().unwrap_or_default();
    assert_eq!(body["data"]["schedule"][0]["name"], "Mincha");
    assert_eq!(
        shown,
        mincha.get(11..16).unwrap_or_default(),
        "page showed {shown}, API says {mincha}"
    );
    assert_eq!(body["data"]["day"]["hebrew_date"]["month"], "Kislev");
}
