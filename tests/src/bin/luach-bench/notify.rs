//! `luach-bench --notify`: the notification outbox and the alert evaluator.
//!
//! **Outbox.** `--messages` webhook messages are queued (channel test messages over REST) while
//! the server dispatches nothing (`notify.dispatch = false`); the server is restarted with
//! dispatch on, and the figure is messages recorded sent per second, from the restart until
//! the last is recorded. The receiver is `luach-bench --webhook-sink PORT`, its own process: a
//! minimal HTTP/1.1 server answering 204. The peer, in the same run: this process POSTing the
//! same number of signed bodies to the same receiver with the dispatcher's concurrency (16),
//! with nothing stored.
//!
//! **Evaluator.** `--count` screens (`luach-agent sim`, plain listener) report; the server
//! evaluates with `alerts.eval_secs = 1`. Its CPU is measured over `--window-secs` with no
//! rules, then with 50 rules per tenant (metric rules over all screens and over tags, and
//! offline rules); the difference per second is the cost of one pass over every screen with
//! 50 rules. At the default period (15 s) that cost is spread over 15 s; at 3,000 records/s
//! 45,000 records arrive per period, which gives the cost per record.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use luach_tests::{Api, free_port};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Args, Killed, proc_usage, start_server, start_server_at, wait_online};

/// Requests in flight at once (the dispatcher's default `notify.concurrency`).
const CONCURRENCY: usize = 16;
/// Rules per tenant in the evaluator half.
const RULES: usize = 50;

/// Internal: the webhook receiver. Answers every request 204, keeping connections open.
pub async fn webhook_sink(port: u16) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    loop {
        let (mut conn, _) = listener.accept().await?;
        tokio::spawn(async move {
            let mut buf = Vec::with_capacity(4096);
            let mut chunk = [0u8; 8192];
            loop {
                // One request: headers up to the blank line, then content-length bytes.
                let Some(end) = find(&buf, b"\r\n\r\n") else {
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    continue;
                };
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while buf.len() < end + 4 + length {
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                buf.drain(..end + 4 + length);
                if conn
                    .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn start_sink(bin: &Path) -> anyhow::Result<(Killed, u16)> {
    let port = free_port();
    let child = std::process::Command::new(bin.join("luach-bench"))
        .args(["--webhook-sink", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .context("starting the webhook sink")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("the webhook sink did not listen");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((Killed(child), port))
}

async fn sent(api: &Api) -> f64 {
    api.counter(r#"luach_notifications_total{kind="webhook",outcome="sent"}"#)
        .await
        .unwrap_or(0.0)
}

/// Messages sent per second by the server's dispatcher.
async fn outbox(bin: &Path, args: &Args, dir: &Path, port: u16) -> anyhow::Result<(f64, String)> {
    let token = luach_tests::seed_tenant_admin(dir, &[]);
    let off = [
        ("LUACH_NOTIFY__DISPATCH", "false"),
        ("LUACH_NOTIFY__WEBHOOKS__ALLOW_PRIVATE", "true"),
        ("LUACH_QUOTAS__API_REQUESTS_PER_MINUTE", "0"),
    ];
    let ports = (free_port(), free_port());
    let (server, base) = start_server_at(bin, dir, &off, ports).await?;
    let api = Api::new(base).with_token(&token);
    let (status, made) = api
        .post(
            "/api/v1/notification-channels",
            &json!({"name": "Bench", "kind": "webhook", "url": format!("http://127.0.0.1:{port}/hook")}),
        )
        .await;
    if status != 201 {
        bail!("making the channel: {status} {made}");
    }
    let secret = made["data"]["secret"].as_str().context("secret")?.to_owned();
    let path = format!(
        "/api/v1/notification-channels/{}/test",
        made["data"]["id"].as_str().context("id")?
    );
    let queued = Instant::now();
    let failures = AtomicU64::new(0);
    futures::stream::iter(0..args.messages)
        .for_each_concurrent(CONCURRENCY, |_| {
            let (api, path, failures) = (&api, &path, &failures);
            async move {
                if api.post(path, &json!({})).await.0 != 202 {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
        .await;
    let failed = failures.load(Ordering::Relaxed);
    if failed > 0 {
        bail!("{failed} test messages were not queued");
    }
    eprintln!(
        "  queued {} messages in {:.1} s",
        args.messages,
        queued.elapsed().as_secs_f64()
    );
    drop(server);
    let on = [
        ("LUACH_NOTIFY__WEBHOOKS__ALLOW_PRIVATE", "true"),
        ("LUACH_NOTIFY__POLL_MS", "50"),
    ];
    let started = Instant::now();
    let (_server, _) = start_server_at(bin, dir, &on, ports).await?;
    let target = args.messages as f64;
    let deadline = Instant::now() + Duration::from_secs(900);
    while sent(&api).await < target {
        if Instant::now() > deadline {
            bail!("only {} of {target} messages sent", sent(&api).await);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok((target / started.elapsed().as_secs_f64(), secret))
}

/// The peer: the same POSTs straight from this process, nothing stored.
async fn bare_posts(count: u64, port: u16, secret: &str) -> anyhow::Result<f64> {
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/hook");
    let body = json!({"type": "channel.test", "timestamp": chrono::Utc::now().to_rfc3339(),
                      "data": {"channel_id": "bench", "message": "This is a test."}})
    .to_string();
    let failures = AtomicU64::new(0);
    let started = Instant::now();
    futures::stream::iter(0..count)
        .for_each_concurrent(CONCURRENCY, |i| {
            let (client, url, body, failures) = (&client, &url, &body, &failures);
            async move {
                let id = format!("msg_{i}");
                let ts = chrono::Utc::now().timestamp();
                let signature = luach_control_plane::notify::send::signature(secret, &id, ts, body).unwrap_or_default();
                let ok = client
                    .post(url)
                    .header("content-type", "application/json")
                    .header("webhook-id", &id)
                    .header("webhook-timestamp", ts.to_string())
                    .header("webhook-signature", signature)
                    .body(body.clone())
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if !ok {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
        .await;
    let failed = failures.load(Ordering::Relaxed);
    if failed > 0 {
        bail!("{failed} bare POSTs failed");
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// Server CPU per second over `secs`, read from /proc.
async fn cpu_per_sec(pid: u32, secs: u64) -> anyhow::Result<f64> {
    let (before, _) = proc_usage(pid)?;
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let (after, _) = proc_usage(pid)?;
    Ok((after - before) / secs as f64)
}

/// 50 rules: metric rules over every screen and over a tag, and offline rules.
fn rule(i: usize) -> serde_json::Value {
    let target = if i.is_multiple_of(2) {
        json!({"all": true})
    } else {
        json!({"tags": [format!("floor{}", i % 5)]})
    };
    let condition = match i % 5 {
        0 => json!({"offline": {"for_s": 600 + i * 60}}),
        1 => json!({"metric": {"metric": "temperature_c", "direction": "above", "value": 90 + i, "for_s": 300}}),
        2 => json!({"metric": {"metric": "cpu_percent", "direction": "above", "value": 99, "for_s": 600}}),
        3 => json!({"metric": {"metric": "memory_percent", "direction": "above", "value": 99.5, "for_s": 600}}),
        _ => json!({"metric": {"metric": "disk_free_mb", "direction": "below", "value": 1, "for_s": 600}}),
    };
    json!({"name": format!("Bench rule {i}"), "target": target, "condition": condition})
}

/// Server CPU per second without rules and with 50, at one pass a second.
async fn evaluator(bin: &Path, args: &Args, dir: &Path) -> anyhow::Result<(f64, f64)> {
    let token = luach_tests::seed_tenant_admin(dir, &[]);
    let env = [
        ("LUACH_ALERTS__EVAL_SECS", "1"),
        ("LUACH_QUOTAS__API_REQUESTS_PER_MINUTE", "0"),
    ];
    let (server, base) = start_server(bin, dir, &env).await?;
    let api = Api::new(base).with_token(&token);
    let _sim = super::sim(
        bin,
        args,
        &["--server", &api.base, "--plain-mqtt"],
        "bench",
        &dir.join("sim-luach.log"),
    )?;
    wait_online(&api, args.count, Duration::from_secs(900)).await?;
    // A tenant made through the admin CLI starts with the default rules: none for the
    // baseline.
    let (_, defaults) = api.get("/api/v1/alert-rules?limit=500").await;
    for rule in defaults["data"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let id = rule["id"].as_str().unwrap_or_default();
        api.delete(&format!("/api/v1/alert-rules/{id}")).await;
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    let pid = server.0.id();
    let without = cpu_per_sec(pid, args.window_secs).await?;
    for i in 0..RULES {
        let (status, body) = api.post("/api/v1/alert-rules", &rule(i)).await;
        if status != 201 {
            bail!("rule {i}: {status} {body}");
        }
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let with = cpu_per_sec(pid, args.window_secs).await?;
    Ok((without, with))
}

pub async fn run(bin: &Path, args: &Args, dir: &Path) -> anyhow::Result<()> {
    let (_sink, port) = start_sink(bin)?;
    eprintln!("luach-bench --notify: {} webhook messages", args.messages);
    let outbox_dir = dir.join("outbox");
    std::fs::create_dir_all(&outbox_dir)?;
    let (luach, secret) = outbox(bin, args, &outbox_dir, port).await?;
    let bare = bare_posts(args.messages, port, &secret).await?;
    println!(
        "outbox: {luach:.0} webhook messages/s sent and recorded; bare POSTs {bare:.0}/s; ratio {:.2}",
        luach / bare
    );
    eprintln!(
        "luach-bench --notify: {} screens, {RULES} rules, window {} s",
        args.count, args.window_secs
    );
    let eval_dir = dir.join("evaluator");
    std::fs::create_dir_all(&eval_dir)?;
    let (without, with) = evaluator(bin, args, &eval_dir).await?;
    let per_pass = (with - without).max(0.0);
    println!(
        "evaluator: server CPU {:.1}% of a core without rules, {:.1}% with {RULES} at one pass a second: \
         {:.0} ms of CPU per pass over {} screens",
        without * 100.0,
        with * 100.0,
        per_pass * 1000.0,
        args.count
    );
    println!(
        "  at the default period (15 s): {:.2}% of one core; at 3,000 records/s, {:.2} µs per record",
        per_pass / 15.0 * 100.0,
        per_pass / 45_000.0 * 1e6
    );
    if args.json {
        println!(
            "{}",
            json!({"outbox_per_sec": luach, "bare_posts_per_sec": bare, "cpu_without_rules": without,
                   "cpu_with_rules": with, "cpu_per_pass_s": per_pass, "screens": args.count, "rules": RULES})
        );
    }
    Ok(())
}
