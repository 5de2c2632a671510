//! `luach-load`: an HTTP load generator for the REST API (a measurement tool, not a test).
//!
//! Runs in its own process so that the server it measures shares the machine only as any
//! client would. It sends requests **open loop** at `--rate` per second (a request's latency
//! counts from the moment it was due, so a stalled server cannot hide its stall by slowing the
//! generator down), with at most `--concurrency` in flight, for `--secs` seconds, and prints
//! one JSON line: requests, answers by status, and latency percentiles in milliseconds.
//!
//! The request mix (`--mix`) is a comma-separated list of `weight:METHOD:path`; `{device}` in a
//! path is replaced by one of the `--devices` ids in turn. For example:
//!
//! ```text
//! luach-load --base http://127.0.0.1:8080 --token lp_… --rate 100 --secs 30 \
//!   --devices bench00001,bench00002 \
//!   --mix '4:GET:/api/v1/devices?limit=50,4:GET:/api/v1/devices/{device},1:PATCH:/api/v1/devices/{device}'
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use serde::Serialize;

#[derive(Debug, Parser)]
#[command(about = "Open-loop HTTP load for the Luach REST API; prints a JSON summary")]
struct Args {
    /// Base URL of the server, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    base: String,
    /// Bearer token sent with every request.
    #[arg(long, env = "LUACH_LOAD_TOKEN")]
    token: String,
    /// Requests per second.
    #[arg(long, default_value_t = 50.0)]
    rate: f64,
    /// Most requests in flight; a due request waits for a free slot (and its wait counts).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// How long to send, seconds.
    #[arg(long, default_value_t = 30)]
    secs: u64,
    /// Request mix: `weight:METHOD:path` entries separated by commas.
    #[arg(long, default_value = "1:GET:/api/v1/devices?limit=50")]
    mix: String,
    /// Device ids substituted for `{device}`, comma-separated.
    #[arg(long, default_value = "")]
    devices: String,
    /// A label copied into the summary.
    #[arg(long, default_value = "")]
    label: String,
}

#[derive(Debug, Clone)]
struct Entry {
    method: reqwest::Method,
    path: String,
}

fn parse_mix(mix: &str) -> anyhow::Result<Vec<Entry>> {
    let mut out = Vec::new();
    for part in mix.split(',').filter(|p| !p.trim().is_empty()) {
        let mut fields = part.trim().splitn(3, ':');
        let (Some(weight), Some(method), Some(path)) = (fields.next(), fields.next(), fields.next()) else {
            bail!("mix entry {part:?} is not weight:METHOD:path");
        };
        let weight: usize = weight.parse().with_context(|| format!("weight of {part:?}"))?;
        let method = reqwest::Method::from_bytes(method.as_bytes()).with_context(|| format!("method of {part:?}"))?;
        for _ in 0..weight {
            out.push(Entry {
                method: method.clone(),
                path: path.to_owned(),
            });
        }
    }
    if out.is_empty() {
        bail!("the mix is empty");
    }
    Ok(out)
}

/// The summary printed at the end.
#[derive(Debug, Serialize)]
struct Summary {
    label: String,
    requests: usize,
    /// Answers with a 2xx status.
    ok: usize,
    /// Answers by status; 0 = transport error.
    statuses: std::collections::BTreeMap<u16, usize>,
    seconds: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.rate.is_finite() || args.rate <= 0.0 || args.concurrency == 0 || args.secs == 0 {
        bail!("--rate, --concurrency and --secs must be positive");
    }
    let mix = Arc::new(parse_mix(&args.mix)?);
    let devices: Arc<Vec<String>> = Arc::new(
        args.devices
            .split(',')
            .filter(|d| !d.is_empty())
            .map(str::to_owned)
            .collect(),
    );
    if devices.is_empty() && mix.iter().any(|e| e.path.contains("{device}")) {
        bail!("the mix names {{device}} but --devices is empty");
    }
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(Duration::from_secs(30))
        .build()?;
    let slots = Arc::new(tokio::sync::Semaphore::new(args.concurrency));
    let turn = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u16, f64)>();
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let started = Instant::now();
    let end = started + Duration::from_secs(args.secs);
    let mut due = started;
    while due < end {
        tokio::time::sleep_until(due.into()).await;
        let permit = Arc::clone(&slots).acquire_owned().await?;
        let (http, mix, devices, turn, tx) = (
            http.clone(),
            Arc::clone(&mix),
            Arc::clone(&devices),
            Arc::clone(&turn),
            tx.clone(),
        );
        let (base, token) = (args.base.clone(), args.token.clone());
        let scheduled = due;
        tokio::spawn(async move {
            let n = turn.fetch_add(1, Ordering::Relaxed);
            let entry = &mix[n % mix.len()];
            let path = match devices.get(n % devices.len().max(1)) {
                Some(d) => entry.path.replace("{device}", d),
                None => entry.path.clone(),
            };
            let mut req = http
                .request(entry.method.clone(), format!("{base}{path}"))
                .bearer_auth(token);
            if entry.method == reqwest::Method::PATCH {
                req = req.json(&serde_json::json!({"notes": format!("load {n}")}));
            }
            let status = match req.send().await {
                Ok(r) => {
                    let s = r.status().as_u16();
                    let _ = r.bytes().await;
                    s
                }
                Err(_) => 0,
            };
            let _ = tx.send((status, scheduled.elapsed().as_secs_f64() * 1000.0));
            drop(permit);
        });
        due += interval;
    }
    drop(tx);
    let mut latencies = Vec::new();
    let mut statuses = std::collections::BTreeMap::new();
    while let Some((status, ms)) = rx.recv().await {
        *statuses.entry(status).or_insert(0) += 1;
        latencies.push(ms);
    }
    latencies.sort_by(f64::total_cmp);
    let ok = statuses
        .iter()
        .filter(|(s, _)| (200..300).contains(*s))
        .map(|(_, n)| n)
        .sum();
    let summary = Summary {
        label: args.label,
        requests: latencies.len(),
        ok,
        statuses,
        seconds: started.elapsed().as_secs_f64(),
        p50_ms: percentile(&latencies, 50.0),
        p90_ms: percentile(&latencies, 90.0),
        p99_ms: percentile(&latencies, 99.0),
        max_ms: latencies.last().copied().unwrap_or(0.0),
    };
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_and_percentiles() {
        let mix = parse_mix("2:GET:/a,1:PATCH:/b/{device}").unwrap_or_default();
        assert_eq!(mix.len(), 3);
        assert_eq!(mix[2].method, reqwest::Method::PATCH);
        assert!(parse_mix("x:GET:/a").is_err());
        assert!(parse_mix("").is_err());
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
    }
}
