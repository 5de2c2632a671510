//! `--telemetry`: telemetry stored end to end. `luach-server` and `luach-agent sim --count N`
//! (plain listener, a metrics record per screen every `--metrics-secs`), measured over
//! `--window-secs`: records stored per second, the server's CPU, and the latency from a
//! screen making a record to the record being readable over REST (probed on ten screens
//! every 50 ms). Afterwards the SQLite file is checked for gaps: every stream's records up
//! to its highest stored sequence number must all be there (records still queued on a screen
//! come after it, so a gap is a lost record).
//!
//! The peer, in the same run: the same simulator against Mosquitto, with a bare controller
//! (this binary with `--bare-telemetry`, its own process) that answers each batch `stored`
//! without storing anything, and measures delivery latency the same way (record made →
//! controller received it).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;
use luach_schemas::messages::{Stored, TelemetryBatch};
use luach_schemas::{DownKind, Envelope};
use luach_tests::Api;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{Value, json};

use super::{Args, LuachFleet, luach_fleet, mosquitto_sim, proc_usage, start_mosquitto};

/// Probed screens.
const PROBES: u64 = 10;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn counter(api: &Api, series: &str) -> f64 {
    api.counter(series).await.unwrap_or(0.0)
}

/// Where probing `device` starts: after its newest stored record.
async fn tail(api: &Api, device: &str) -> Option<String> {
    let (_, body) = api.get(&format!("/api/v1/devices/{device}/telemetry/streams")).await;
    let s = body["data"].as_array()?.first()?.clone();
    Some(format!("{}:{}", s["stream"].as_str()?, s["highest_seq"].as_u64()?))
}

/// Records lost: per stream, sequence numbers at or below its highest stored one that are
/// not stored.
pub(crate) fn gaps(db: &Path) -> anyhow::Result<(i64, i64)> {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let (missing, stored) = conn.query_row(
        "SELECT COALESCE(SUM(m - c), 0), COALESCE(SUM(c), 0) FROM \
         (SELECT MAX(seq) AS m, COUNT(*) AS c FROM telemetry GROUP BY tenant_id, device_id, stream)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok((missing, stored))
}

async fn luach(bin: &Path, args: &Args, dir: &Path) -> anyhow::Result<Value> {
    let LuachFleet {
        server,
        sim: fleet,
        api,
        online_secs,
        ..
    } = luach_fleet(bin, args, dir).await?;
    let pid = server.0.id();
    eprintln!("luach: {} screens online after {online_secs:.1} s", args.count);
    tokio::time::sleep(Duration::from_secs(10 + 2 * args.metrics_secs)).await;
    let devices: Vec<String> = (0..PROBES.min(args.count)).map(|i| format!("bench{i:05}")).collect();
    let mut after = Vec::new();
    for d in &devices {
        after.push(tail(&api, d).await.context("a probed screen has no telemetry")?);
    }
    let stored = "luach_telemetry_records_total{outcome=\"stored\"}";
    let (cpu0, _) = proc_usage(pid)?;
    let stored0 = counter(&api, stored).await;
    let t0 = Instant::now();
    let mut latencies = Vec::new();
    let mut turn = 0usize;
    while t0.elapsed() < Duration::from_secs(args.window_secs) {
        let i = turn % devices.len();
        turn += 1;
        let path = format!(
            "/api/v1/devices/{}/telemetry?kind=metrics&limit=500&after={}",
            devices[i], after[i]
        );
        let (status, body) = api.get(&path).await;
        let now = Utc::now();
        if status == 200 {
            for r in body["data"]["items"].as_array().into_iter().flatten() {
                if let Some(at) = r["at"].as_str().and_then(|a| a.parse::<chrono::DateTime<Utc>>().ok()) {
                    latencies.push((now - at).num_microseconds().unwrap_or(0) as f64 / 1000.0);
                }
            }
            if let Some(next) = body["data"]["items"].as_array().and_then(|a| a.last()) {
                after[i] = format!("{}:{}", next["stream"].as_str().unwrap_or(""), next["seq"]);
            }
        }
        tokio::time::sleep(Duration::from_millis(50 / PROBES.max(1))).await;
    }
    let secs = t0.elapsed().as_secs_f64();
    let (cpu1, rss) = proc_usage(pid)?;
    let stored1 = counter(&api, stored).await;
    let duplicates = counter(&api, "luach_telemetry_records_total{outcome=\"duplicate\"}").await;
    drop(fleet);
    drop(server);
    let (missing, in_history) = gaps(&dir.join("luach.sqlite3"))?;
    latencies.sort_by(f64::total_cmp);
    Ok(json!({
        "online_secs": online_secs,
        "records_per_sec": (stored1 - stored0) / secs,
        "cpu_percent": 100.0 * (cpu1 - cpu0) / secs,
        "rss_mib": rss as f64 / 1_048_576.0,
        "p50_ms": percentile(&latencies, 0.5),
        "p99_ms": percentile(&latencies, 0.99),
        "samples": latencies.len(),
        "missing": missing,
        "stored": in_history,
        "duplicates": duplicates,
    }))
}

async fn peer(bin: &Path, args: &Args, dir: &Path) -> anyhow::Result<Value> {
    let (broker, port) = start_mosquitto(dir)?;
    let pid = broker.0.id();
    let controller = Command::new(bin.join("luach-bench"))
        .args(["--bare-telemetry", &port.to_string()])
        .args(["--count", &args.count.to_string()])
        .args(["--window-secs", &args.window_secs.to_string()])
        .args(["--metrics-secs", &args.metrics_secs.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting the bare controller")?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _fleet = mosquitto_sim(bin, args, port, dir)?;
    let (cpu0, _) = proc_usage(pid)?;
    let t0 = Instant::now();
    let out = tokio::task::spawn_blocking(move || controller.wait_with_output()).await??;
    let secs = t0.elapsed().as_secs_f64();
    let (cpu1, _) = proc_usage(pid)?;
    if !out.status.success() {
        bail!("the bare controller failed");
    }
    let mut figures: Value = serde_json::from_slice(&out.stdout).context("bare controller output")?;
    // Mosquitto's CPU over the controller's whole run (connecting included).
    figures["broker_cpu_percent"] = json!(100.0 * (cpu1 - cpu0) / secs);
    Ok(figures)
}

/// `--bare-telemetry PORT`: waits for `count` screens `mosq…` to send telemetry, answers every
/// batch `stored`, then over `window` seconds counts records per second and the latency from a
/// record's making to its arrival here; prints them as JSON.
pub async fn bare_controller(port: u16, count: u64, window: u64, metrics_secs: u64) -> anyhow::Result<()> {
    let mut options = MqttOptions::new("bench-telemetry", "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_inflight(1_000);
    options.set_max_packet_size(64 * 1024, 64 * 1024);
    let (client, mut eventloop) = AsyncClient::new(options, 20_000);
    // Screens send every kind on one uplink topic; telemetry is told by the envelope's type.
    client.subscribe("/tenants/+/up/#", QoS::AtLeastOnce).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, TelemetryBatch)>();
    tokio::spawn(async move {
        while let Ok(event) = eventloop.poll().await {
            if let Event::Incoming(Packet::Publish(p)) = event {
                let device = p.topic.split('/').nth(2).unwrap_or("").to_owned();
                if let Ok(env) = serde_json::from_slice::<Envelope<TelemetryBatch>>(&p.payload)
                    && env.kind == "telemetry"
                    && tx.send((device, env.body)).is_err()
                {
                    break;
                }
            }
        }
    });
    let mut seen = std::collections::HashSet::new();
    let started = Instant::now();
    let mut measuring: Option<Instant> = None;
    let mut latencies = Vec::new();
    let mut records = 0u64;
    let settle = Duration::from_secs(10 + 2 * metrics_secs);
    let mut settled_at: Option<Instant> = None;
    loop {
        let next = tokio::time::timeout(Duration::from_secs(900), rx.recv()).await;
        let Ok(Some((device, batch))) = next else {
            bail!("telemetry stopped arriving");
        };
        let now = Utc::now();
        let (first, last) = batch.range();
        let stored = Stored {
            stream: batch.stream.clone(),
            first,
            last,
        };
        let answer = Envelope::new(uuid::Uuid::now_v7().to_string(), DownKind::Stored.as_str(), now, stored);
        client
            .publish(
                format!("/tenants/{device}/down/stored"),
                QoS::AtLeastOnce,
                false,
                answer.to_bytes(),
            )
            .await?;
        seen.insert(device);
        if settled_at.is_none() && seen.len() as u64 >= count {
            eprintln!(
                "peer: {count} screens sending after {:.1} s",
                started.elapsed().as_secs_f64()
            );
            settled_at = Some(Instant::now());
        }
        if measuring.is_none() && settled_at.is_some_and(|t| t.elapsed() >= settle) {
            measuring = Some(Instant::now());
        }
        if let Some(t0) = measuring {
            for r in &batch.records {
                latencies.push((now - r.at).num_microseconds().unwrap_or(0) as f64 / 1000.0);
            }
            records += batch.records.len() as u64;
            if t0.elapsed() >= Duration::from_secs(window) {
                let secs = t0.elapsed().as_secs_f64();
                latencies.sort_by(f64::total_cmp);
                let out = json!({
                    "records_per_sec": records as f64 / secs,
                    "p50_ms": percentile(&latencies, 0.5),
                    "p99_ms": percentile(&latencies, 0.99),
                    "samples": latencies.len(),
                });
                println!("{out}");
                return Ok(());
            }
        }
    }
}

pub async fn run(bin: &Path, args: &Args, dir: &Path) -> anyhow::Result<()> {
    eprintln!(
        "luach-bench --telemetry: {} screens, a record each every {} s (≈{:.0} records/s offered), window {} s",
        args.count,
        args.metrics_secs,
        args.count as f64 / args.metrics_secs as f64,
        args.window_secs
    );
    let luach_dir = dir.join("luach");
    std::fs::create_dir_all(&luach_dir)?;
    let l = luach(bin, args, &luach_dir).await?;
    let mosq_dir = dir.join("mosquitto");
    std::fs::create_dir_all(&mosq_dir)?;
    let m = peer(bin, args, &mosq_dir).await?;
    let f = |v: &Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    println!(
        "| figure | luach-server (stored, readable over REST) | mosquitto + bare controller (delivered) | ratio |"
    );
    println!("|---|---|---|---|");
    println!(
        "| records/s | {:.0} | {:.0} | {:.2} |",
        f(&l, "records_per_sec"),
        f(&m, "records_per_sec"),
        f(&l, "records_per_sec") / f(&m, "records_per_sec")
    );
    for (name, key) in [("p50 latency, ms", "p50_ms"), ("p99 latency, ms", "p99_ms")] {
        println!(
            "| {name} | {:.0} | {:.0} | {:.2} |",
            f(&l, key),
            f(&m, key),
            f(&l, key) / f(&m, key)
        );
    }
    println!(
        "| CPU (one core = 100%) | {:.1}% | {:.1}% (broker) | {:.2} |",
        f(&l, "cpu_percent"),
        f(&m, "broker_cpu_percent"),
        f(&l, "cpu_percent") / f(&m, "broker_cpu_percent")
    );
    println!();
    println!(
        "luach: {} records in history, {} missing below a stream's highest stored record, {} duplicates refused; RSS {:.0} MiB; {} latency samples; online after {:.0} s",
        l["stored"],
        l["missing"],
        l["duplicates"],
        f(&l, "rss_mib"),
        l["samples"],
        f(&l, "online_secs")
    );
    Ok(())
}
