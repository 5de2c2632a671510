//! Telemetry that is never lost, end to end: `luach-agent sim` screens behind a TCP proxy that
//! cuts their network, killed while offline, and the history the control plane keeps.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use luach_tests::{Api, CuttingProxy, Must, Sim, TestApp, spawn_app, wait_for};
use serde_json::{Value, json};

/// Screens `{prefix}00000…` registered in tenant `default` (they use the plain listener).
async fn register(api: &Api, prefix: &str, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..count {
        let id = format!("{prefix}{i:05}");
        let (status, body) = api
            .post("/api/v1/devices", &json!({"id": id, "name": format!("Screen {i}")}))
            .await;
        assert_eq!(status, 201, "{body}");
        ids.push(id);
    }
    ids
}

/// Simulated screens through `proxy`, with their queues in `state` and metrics every second.
fn sim(app: &TestApp, proxy: &CuttingProxy, state: &Path, prefix: &str, count: usize, extra: &[&str]) -> Sim {
    let mqtt = proxy.addr().to_string();
    let state = state.display().to_string();
    let mut flags = vec![
        "--mqtt",
        mqtt.as_str(),
        "--state-dir",
        state.as_str(),
        "--metrics-secs",
        "1",
    ];
    flags.extend_from_slice(extra);
    Sim::start_plain(&app.api.base, count, prefix, &flags)
}

/// Every record of `device` in history, in (stream, seq) order, read page by page.
async fn all_records(api: &Api, device: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let path = format!("/api/v1/devices/{device}/telemetry?limit=500{after}");
        let (status, body) = api.get(&path).await;
        assert_eq!(status, 200, "{body}");
        out.extend(body["data"]["items"].as_array().must().iter().cloned());
        match body["data"]["next_after"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => return out,
        }
    }
}

async fn streams(api: &Api, device: &str) -> Vec<Value> {
    let (status, body) = api.get(&format!("/api/v1/devices/{device}/telemetry/streams")).await;
    assert_eq!(status, 200, "{body}");
    body["data"].as_array().must().clone()
}

/// Waits until `device` has one stream whose every sequence number up to at least `min_seq`
/// is stored or counted dropped (a record dropped unconfirmed may be stored too, hence at
/// least); returns that stream's report.
async fn drained(api: &Api, device: &str, min_seq: u64, limit: Duration) -> Value {
    wait_for(
        &format!("{device}'s telemetry drained past {min_seq}"),
        limit,
        || async move {
            let streams = streams(api, device).await;
            let [stream] = streams.as_slice() else { return None };
            let (stored, dropped, highest) = (
                stream["stored"].as_u64()?,
                stream["dropped"].as_u64()?,
                stream["highest_seq"].as_u64()?,
            );
            (highest >= min_seq && stored + dropped >= highest).then(|| stream.clone())
        },
    )
    .await
}

/// The highest sequence number `device` has in history (0 with none).
async fn highest(api: &Api, device: &str) -> u64 {
    streams(api, device)
        .await
        .iter()
        .filter_map(|s| s["highest_seq"].as_u64())
        .max()
        .unwrap_or(0)
}

/// A screen's own count of dropped records, from its queue's state file.
fn agent_dropped(state: &Path, device: &str) -> u64 {
    let text = std::fs::read_to_string(state.join(device).join("telemetry").join("state.json")).must();
    serde_json::from_str::<Value>(&text).must()["dropped"].as_u64().must()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_made_offline_arrive_once_after_an_outage_with_two_agent_kills() {
    let app = spawn_app(|_| {}).await;
    let api = &app.api;
    let proxy = CuttingProxy::start(app.mqtt).await;
    let state = tempfile::tempdir().must();
    let devices = register(api, "tel", 3).await;
    let mut fleet = sim(&app, &proxy, state.path(), "tel", 3, &[]);
    for d in &devices {
        drained(api, d, 3, Duration::from_secs(60)).await;
    }

    // The network goes down; the screens keep recording, and are killed twice meanwhile.
    proxy.cut();
    let cut_at = chrono::Utc::now();
    let before: BTreeMap<String, u64> = {
        let mut m = BTreeMap::new();
        for d in &devices {
            m.insert(d.clone(), highest(api, d).await);
        }
        m
    };
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_secs(5)).await;
        fleet.kill();
        fleet = sim(&app, &proxy, state.path(), "tel", 3, &[]);
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    for d in &devices {
        assert_eq!(highest(api, d).await, before[d], "{d}: nothing arrives while cut");
    }
    let restored_at = chrono::Utc::now();
    proxy.restore();

    for d in &devices {
        // 15 s offline at one record a second, plus the two restarts' events.
        let report = drained(api, d, before[d] + 12, Duration::from_secs(90)).await;
        assert_eq!(report["dropped"], 0, "{d}: {report}");
    }
    // The screens stop, so the history and the series below are read from the same records.
    fleet.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    for d in &devices {
        let records = all_records(api, d).await;
        let keys: Vec<(String, u64)> = records
            .iter()
            .map(|r| (r["stream"].as_str().must().to_owned(), r["seq"].as_u64().must()))
            .collect();
        let distinct: BTreeSet<_> = keys.iter().cloned().collect();
        assert_eq!(distinct.len(), keys.len(), "{d}: a record is in history twice");
        // One stream across both kills, numbered without a gap.
        let seqs: Vec<u64> = keys.iter().map(|(_, s)| *s).collect();
        let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(seqs, expected, "{d}: every record arrives, in order");
        // Three runs of the agent, each said it started; the two started offline too.
        let started: Vec<&Value> = records
            .iter()
            .filter(|r| r["kind"] == "event" && r["body"]["name"] == "agent_started")
            .collect();
        assert_eq!(started.len(), 3, "{d}: {started:?}");
        // Records made while cut arrived late, at their own time.
        let offline: Vec<&Value> = records
            .iter()
            .filter(|r| {
                let at: chrono::DateTime<chrono::Utc> = r["at"].as_str().must().parse().must();
                at > cut_at && at < restored_at
            })
            .collect();
        assert!(offline.len() >= 10, "{d}: {} records made offline", offline.len());
        for r in offline {
            let received: chrono::DateTime<chrono::Utc> = r["received"].as_str().must().parse().must();
            assert!(received >= restored_at, "{d}: {r}");
        }
        // The history of a metric includes the outage.
        let (status, series) = api
            .get(&format!(
                "/api/v1/devices/{d}/metrics/mem_total_bytes?from={}&step_s=10",
                (cut_at - chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ))
            .await;
        assert_eq!(status, 200, "{series}");
        let counted: u64 = series["data"]["points"]
            .as_array()
            .must()
            .iter()
            .filter_map(|p| p["count"].as_u64())
            .sum();
        let metrics = records.iter().filter(|r| r["kind"] == "metrics").count() as u64;
        assert_eq!(counted, metrics, "{d}: every metrics record counts once in the series");
    }
    let text = api.metrics_text().await;
    assert!(
        text.contains("luach_telemetry_records_total{outcome=\"stored\"}"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_disk_budget_drops_the_oldest_and_the_count_is_exact() {
    let app = spawn_app(|_| {}).await;
    let api = &app.api;
    let proxy = CuttingProxy::start(app.mqtt).await;
    let state = tempfile::tempdir().must();
    let devices = register(api, "tiny", 1).await;
    let device = &devices[0];
    let mut fleet = sim(
        &app,
        &proxy,
        state.path(),
        "tiny",
        1,
        &["--telemetry-budget-bytes", "1024"],
    );
    drained(api, device, 2, Duration::from_secs(60)).await;

    proxy.cut();
    let before = highest(api, device).await;
    // About 12 metrics records of ~300 bytes: four times what 1 KiB holds.
    tokio::time::sleep(Duration::from_secs(12)).await;
    proxy.restore();
    let report = drained(api, device, before + 10, Duration::from_secs(90)).await;
    // The screen may drop once more while its backlog drains (new records keep coming into
    // the tiny budget); its report of that follows with its next batch. So wait until the
    // server's count matches the screen's own, then stop the screen.
    let report = wait_for(
        "the server's drop count to match the screen's",
        Duration::from_secs(60),
        || {
            let (report, dir) = (report.clone(), state.path().to_owned());
            async move {
                let now = drained(api, device, report["highest_seq"].as_u64()?, Duration::from_secs(30)).await;
                (now["dropped"].as_u64()? == agent_dropped(&dir, device)).then_some(now)
            }
        },
    )
    .await;
    fleet.kill();

    let dropped = report["dropped"].as_u64().must();
    assert!(dropped >= 5, "{report}");
    let records = all_records(api, device).await;
    let seqs: BTreeSet<u64> = records.iter().map(|r| r["seq"].as_u64().must()).collect();
    assert_eq!(seqs.len(), records.len());
    let highest = report["highest_seq"].as_u64().must();
    let missing: Vec<u64> = (1..=highest).filter(|s| !seqs.contains(s)).collect();
    assert_eq!(report["missing"].as_u64().must(), missing.len() as u64, "{report}");
    // Only dropped records are missing: every one the screen dropped unless it was stored
    // just before the link failed (sent, its confirmation lost): the batch in flight at the
    // cut, a record or two at one a second.
    assert!(
        !missing.is_empty() && missing.len() as u64 <= dropped,
        "{missing:?} of {dropped}"
    );
    assert!(dropped - missing.len() as u64 <= 3, "{missing:?} of {dropped}");
    // The oldest went: what is missing is one run of records made around the cut.
    assert!(missing.iter().all(|s| *s + 1 >= before), "{missing:?} after {before}");
    assert_eq!(
        missing.last().copied().must() - missing[0] + 1,
        missing.len() as u64,
        "{missing:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_answers_bad_queries_clearly() {
    let app = spawn_app(|_| {}).await;
    let api = &app.api;
    register(api, "hist", 1).await;
    for (path, status) in [
        ("/api/v1/devices/hist00000/telemetry?kind=logs", 400),
        ("/api/v1/devices/hist00000/telemetry?limit=0", 400),
        ("/api/v1/devices/hist00000/telemetry?after=nocolon", 400),
        ("/api/v1/devices/hist00000/metrics/cpu_percent?step_s=1", 400),
        (
            "/api/v1/devices/hist00000/metrics/cpu_percent?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
            400,
        ),
        (
            "/api/v1/devices/hist00000/metrics/cpu_percent?from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            400,
        ),
        ("/api/v1/devices/hist00000/metrics/fan_rpm", 404),
        ("/api/v1/devices/nosuch/metrics/cpu_percent", 404),
        ("/api/v1/devices/nosuch/telemetry", 404),
        ("/api/v1/devices/hist00000/metrics/cpu_percent", 200),
        ("/api/v1/devices/hist00000/telemetry", 200),
        ("/api/v1/devices/hist00000/telemetry/streams", 200),
    ] {
        let (got, body) = api.get(path).await;
        assert_eq!(got, status, "{path}: {body}");
        if status == 400 {
            assert_eq!(body["error"]["code"], "invalid_query", "{path}: {body}");
        }
    }
}
