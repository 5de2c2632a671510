//! `luach-bench --rollout`: a signed release of `--artifact-mb` MB rolled out to N simulated
//! screens as one `update` job, against a plain static file server doing the same downloads.
//!
//! Luach: `luach-server` trusting a fresh release root, with the release registered by an
//! installation administrator, and `luach-agent sim --count N --ota-root` (plain listener),
//! whose screens each check the metadata, download the artifact with their device token and
//! check it as it streams (SHA-256 and exact length). Timed from `POST /jobs` until the job
//! completed with every screen succeeded; the server's CPU over that time; the bytes each
//! screen reports it received. Peer in the same run: nginx (Debian package `nginx-light`, one
//! worker process) serving the same file, and a bare downloader (this binary with
//! `--bare-downloads`, its own process) fetching it N times with the same concurrency and
//! hashing each copy the way the screens do.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use luach_tests::{Api, free_port};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{Args, FLEET_ENV, Killed, proc_usage, sim, start_server_at};

/// `len` bytes that do not compress (xorshift), so no layer can shortcut them.
fn artifact(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

struct Figures {
    secs: f64,
    cpu_percent: f64,
    bytes_per_screen: f64,
}

async fn luach(bin: &Path, args: &Args, dir: &Path, bytes: &[u8]) -> anyhow::Result<Figures> {
    let (keys, _) = luach_ota::KeyDir::keygen(dir.join("keys"), 1, 1, chrono::Utc::now())?;
    let root_pub = dir.join("keys").join(luach_ota::ROOT_PUB_FILE);
    let token = luach_tests::seed_tenant_admin(dir, &[]);
    let manager = super::quota::super_admin_token(dir)?;
    let root_env = root_pub.display().to_string();
    let mut env = FLEET_ENV.to_vec();
    env.push(("LUACH_RELEASES__TRUSTED_ROOT", root_env.as_str()));
    let (server, base) = start_server_at(bin, dir, &env, (free_port(), free_port())).await?;
    let api = Api::new(base.clone()).with_token(&token);
    let release =
        luach_tests::register_release(&Api::new(base.clone()).with_token(&manager), &keys, "9.0.0", bytes).await;
    let _sim = sim(
        bin,
        args,
        &["--server", &base, "--plain-mqtt", "--ota-root", &root_env],
        "bench",
        &dir.join("sim-luach.log"),
    )?;
    let deadline = Instant::now() + Duration::from_secs(900);
    while api.count("online").await != Some(args.count) {
        if Instant::now() > deadline {
            bail!("not all {} screens online", args.count);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut body = json!({
        "command": {"type": "update", "release": release},
        "target": {"all": true},
        "concurrency": args.rollout_concurrency,
    });
    if args.rollout_rate > 0 {
        body["rate_per_minute"] = json!(args.rollout_rate);
    }
    let pid = server.0.id();
    let (cpu0, _) = proc_usage(pid)?;
    let (secs, id) = super::jobs::job_until_completed(
        &api,
        &body,
        args.count,
        Duration::from_millis(100),
        Duration::from_secs(3_600),
    )
    .await?;
    let (cpu1, _) = proc_usage(pid)?;
    // Each screen says how many bytes it received and checked.
    let mut received = 0u64;
    let mut after: Option<u64> = None;
    loop {
        let page = match after {
            Some(a) => format!("/api/v1/jobs/{id}/executions?limit=1000&after={a}"),
            None => format!("/api/v1/jobs/{id}/executions?limit=1000"),
        };
        let (_, body) = api.get(&page).await;
        let items = body["data"]["items"].as_array().context("executions")?;
        for e in items {
            let detail = e["detail"].as_str().unwrap_or_default();
            let n = detail
                .rsplit_once('(')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .and_then(|n| n.parse::<u64>().ok())
                .with_context(|| format!("no byte count in {detail:?}"))?;
            received += n;
        }
        after = items.last().and_then(|e| e["seq"].as_u64());
        if body["data"]["next_after"].is_null() {
            break;
        }
    }
    Ok(Figures {
        secs,
        cpu_percent: 100.0 * (cpu1 - cpu0) / secs,
        bytes_per_screen: received as f64 / args.count as f64,
    })
}

/// nginx with one process serving `dir/www/`, on a free port.
fn start_nginx(dir: &Path) -> anyhow::Result<(Killed, u16)> {
    let port = free_port();
    let conf = dir.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {dir}/nginx.pid;\nerror_log {dir}/nginx.log warn;\n\
             events {{ worker_connections 4096; }}\n\
             http {{ access_log off; sendfile on; client_body_temp_path {dir}; proxy_temp_path {dir}; \
             fastcgi_temp_path {dir}; uwsgi_temp_path {dir}; scgi_temp_path {dir};\n\
             server {{ listen 127.0.0.1:{port}; root {dir}/www; }} }}\n",
            dir = dir.display()
        ),
    )?;
    let child = Command::new("nginx")
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting nginx (Debian package `nginx-light`)")?;
    let nginx = Killed(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("nginx did not listen (log: {}/nginx.log)", dir.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((nginx, port))
}

fn peer(bin: &Path, args: &Args, dir: &Path, bytes: &[u8]) -> anyhow::Result<Figures> {
    std::fs::create_dir_all(dir.join("www"))?;
    std::fs::write(dir.join("www").join("artifact"), bytes)?;
    let (nginx, port) = start_nginx(dir)?;
    let (cpu0, _) = proc_usage(nginx.0.id())?;
    let started = Instant::now();
    let out = Command::new(bin.join("luach-bench"))
        .args(["--bare-downloads", &format!("http://127.0.0.1:{port}/artifact")])
        .args(["--count", &args.count.to_string()])
        .args(["--rollout-concurrency", &args.rollout_concurrency.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .context("running the bare downloader")?;
    let secs = started.elapsed().as_secs_f64();
    let (cpu1, _) = proc_usage(nginx.0.id())?;
    if !out.status.success() {
        bail!("the bare downloader failed");
    }
    let received: u64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("bytes received")?;
    Ok(Figures {
        secs,
        cpu_percent: 100.0 * (cpu1 - cpu0) / secs,
        bytes_per_screen: received as f64 / args.count as f64,
    })
}

/// The bare downloader: fetches `url` `count` times, `concurrency` at once, hashing each copy;
/// prints the bytes received. Every copy must hash the same.
pub async fn bare_downloads(url: &str, count: u64, concurrency: u64) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let results: Vec<anyhow::Result<(u64, Vec<u8>)>> = futures::stream::iter(0..count)
        .map(|_| {
            let http = http.clone();
            async move {
                let mut response = http.get(url).send().await?.error_for_status()?;
                let mut hash = Sha256::new();
                let mut n = 0u64;
                while let Some(chunk) = response.chunk().await? {
                    hash.update(&chunk);
                    n += chunk.len() as u64;
                }
                Ok((n, hash.finalize().to_vec()))
            }
        })
        .buffer_unordered(usize::try_from(concurrency.max(1)).unwrap_or(1))
        .collect()
        .await;
    let mut total = 0u64;
    let mut first: Option<Vec<u8>> = None;
    for r in results {
        let (n, digest) = r?;
        if first.get_or_insert_with(|| digest.clone()) != &digest {
            bail!("copies differ");
        }
        total += n;
    }
    println!("{total}");
    Ok(())
}

pub async fn run(bin: &Path, args: &Args, dir: &Path) -> anyhow::Result<()> {
    let len = usize::try_from(args.artifact_mb * 1_000_000).context("--artifact-mb")?;
    eprintln!(
        "luach-bench --rollout: {} MB to {} screens, {} at a time{}",
        args.artifact_mb,
        args.count,
        args.rollout_concurrency,
        if args.rollout_rate > 0 {
            format!(", at most {} a minute", args.rollout_rate)
        } else {
            String::new()
        }
    );
    let bytes = artifact(len);
    let luach_dir = dir.join("luach");
    std::fs::create_dir_all(&luach_dir)?;
    let l = luach(bin, args, &luach_dir, &bytes).await?;
    let peer_dir = dir.join("nginx");
    std::fs::create_dir_all(&peer_dir)?;
    let (bin2, args2, dir2) = (bin.to_owned(), args.clone(), peer_dir.clone());
    let p = tokio::task::spawn_blocking(move || peer(&bin2, &args2, &dir2, &bytes)).await??;
    println!("| figure | luach-server (update job) | nginx + bare downloader | luach / peer |");
    println!("|---|---|---|---|");
    println!(
        "| {} MB to {} screens, {} at a time: start → every screen done | {:.1} s | {:.1} s | {:.2} |",
        args.artifact_mb,
        args.count,
        args.rollout_concurrency,
        l.secs,
        p.secs,
        l.secs / p.secs
    );
    println!(
        "| server CPU over that time (one core = 100 %) | {:.0} % | {:.0} % | |",
        l.cpu_percent, p.cpu_percent
    );
    println!(
        "| bytes received per screen (artifact: {len}) | {:.0} | {:.0} | |",
        l.bytes_per_screen, p.bytes_per_screen
    );
    Ok(())
}
