//! `luach-bench --jobs`: a batch command to N screens, from the REST call to every execution
//! stored as succeeded, against Mosquitto plus a bare controller doing the same publish/ack
//! round on the same machine.
//!
//! Luach: `luach-server` and `luach-agent sim --count N` (plain listener), then `--rounds`
//! jobs of `brightness` to every screen (concurrency N), each timed from `POST /jobs` until
//! `GET /jobs/{id}` says `completed` with N succeeded. Peer: a private Mosquitto, the same
//! simulator, and a bare controller (this binary with `--bare-controller`, its own process)
//! that publishes the same N command envelopes at QoS 1 and waits for the N outcome acks,
//! keeping nothing. The simulated screens do the same work in both (a `received` ack, then
//! the outcome).

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use luach_schemas::messages::{Ack, AckStatus, Command as DeviceCommand, CommandAction};
use luach_schemas::{DownKind, Envelope};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::json;

use super::{Args, Killed, luach_fleet, mosquitto_sim, proc_usage, start_mosquitto};

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Luach's rounds: seconds per batch, and the server's CPU share over them.
async fn luach_rounds(bin: &Path, args: &Args, dir: &Path) -> anyhow::Result<(Vec<f64>, f64)> {
    let fleet = luach_fleet(bin, args, dir).await?;
    let (pid, api) = (fleet.server.0.id(), &fleet.api);
    let mut rounds = Vec::new();
    let (cpu0, _) = proc_usage(pid)?;
    let t0 = Instant::now();
    for round in 0..args.rounds {
        let body = json!({
            "command": {"type": "brightness", "percent": 40 + round},
            "target": {"all": true},
            "concurrency": args.count.min(10_000),
        });
        let started = Instant::now();
        let (status, answer) = api.post("/api/v1/jobs", &body).await;
        if status != 201 {
            bail!("job not created: {status} {answer}");
        }
        let id = answer["data"]["id"].as_str().context("job id")?.to_owned();
        loop {
            let (_, job) = api.get(&format!("/api/v1/jobs/{id}")).await;
            if job["data"]["state"] == "completed" {
                if job["data"]["counts"]["succeeded"].as_u64() != Some(args.count) {
                    bail!("job ended without every screen: {job}");
                }
                break;
            }
            if started.elapsed() > Duration::from_secs(600) {
                bail!("job not completed: {job}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        rounds.push(started.elapsed().as_secs_f64());
    }
    let (cpu1, _) = proc_usage(pid)?;
    Ok((rounds, 100.0 * (cpu1 - cpu0) / t0.elapsed().as_secs_f64()))
}

/// The peer: Mosquitto, the same simulator, and the bare controller in its own process.
fn mosquitto_rounds(bin: &Path, args: &Args, dir: &Path) -> anyhow::Result<Vec<f64>> {
    let (broker, port) = start_mosquitto(dir)?;
    let _broker: Killed = broker;
    let _sim = mosquitto_sim(bin, args, port, dir)?;
    let out = Command::new(std::env::current_exe()?)
        .args(["--bare-controller", &port.to_string()])
        .args(["--count", &args.count.to_string(), "--rounds", &args.rounds.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .context("running the bare controller")?;
    if !out.status.success() {
        bail!("the bare controller failed");
    }
    serde_json::from_slice(&out.stdout).context("bare controller output")
}

/// `--bare-controller PORT`: waits for `count` screens `mosq…` to say hello on Mosquitto, then
/// runs `rounds` batches (publish one command to each, wait for every `ok`) and prints the
/// seconds per round as a JSON array.
pub async fn bare_controller(port: u16, count: u64, rounds: u64) -> anyhow::Result<()> {
    let mut options = MqttOptions::new("bench-controller", "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_inflight(1_000);
    let (client, mut eventloop) = AsyncClient::new(options, 20_000);
    client.subscribe("/tenants/+/up/#", QoS::AtLeastOnce).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Option<Ack>)>();
    tokio::spawn(async move {
        loop {
            let event = match eventloop.poll().await {
                Ok(event) => event,
                Err(e) => {
                    eprintln!("bare controller: mqtt: {e}");
                    break;
                }
            };
            if let Event::Incoming(Packet::Publish(p)) = event {
                let device = p.topic.split('/').nth(2).unwrap_or("").to_owned();
                let ack = p
                    .topic
                    .ends_with("/up/ack")
                    .then(|| serde_json::from_slice::<Envelope<Ack>>(&p.payload).ok())
                    .flatten()
                    .map(|e| e.body);
                let hello = p.topic.ends_with("/up/hello");
                if (hello || ack.is_some()) && tx.send((if hello { device } else { String::new() }, ack)).is_err() {
                    break;
                }
            }
        }
    });
    let mut hellos = HashSet::new();
    while (hellos.len() as u64) < count {
        match tokio::time::timeout(Duration::from_secs(600), rx.recv()).await {
            Ok(Some((device, None))) if !device.is_empty() => {
                hellos.insert(device);
            }
            Ok(Some(_)) => {}
            _ => bail!("not all screens connected to mosquitto"),
        }
    }
    let mut devices: Vec<String> = hellos.into_iter().collect();
    devices.sort();
    let mut out = Vec::new();
    for round in 0..rounds {
        let started = Instant::now();
        let mut waiting = HashSet::new();
        for device in &devices {
            let id = format!("bare.{round}.{device}");
            let command = DeviceCommand {
                command_id: id.clone(),
                expires_at: None,
                action: CommandAction::Brightness {
                    percent: u8::try_from(40 + round).unwrap_or(40),
                },
            };
            let envelope = Envelope::new(id.clone(), DownKind::Command.as_str(), chrono::Utc::now(), command);
            client
                .publish(
                    format!("/tenants/{device}/down/command"),
                    QoS::AtLeastOnce,
                    false,
                    envelope.to_bytes(),
                )
                .await?;
            waiting.insert(id);
        }
        while !waiting.is_empty() {
            match tokio::time::timeout(Duration::from_secs(600), rx.recv()).await {
                Ok(Some((_, Some(ack)))) if ack.status == AckStatus::Ok => {
                    waiting.remove(&ack.command_id);
                }
                Ok(Some(_)) => {}
                _ => bail!("{} commands unanswered", waiting.len()),
            }
        }
        out.push(started.elapsed().as_secs_f64());
    }
    println!("{}", serde_json::to_string(&out)?);
    Ok(())
}

pub async fn run(bin: &Path, args: &Args, dir: &Path) -> anyhow::Result<()> {
    eprintln!("luach-bench --jobs: {} screens, {} rounds", args.count, args.rounds);
    let luach_dir = dir.join("luach");
    std::fs::create_dir_all(&luach_dir)?;
    let (luach, cpu) = luach_rounds(bin, args, &luach_dir).await?;
    let mosq_dir = dir.join("mosquitto");
    std::fs::create_dir_all(&mosq_dir)?;
    let (bin2, args2, dir2) = (bin.to_owned(), args.clone(), mosq_dir.clone());
    let bare = tokio::task::spawn_blocking(move || mosquitto_rounds(&bin2, &args2, &dir2)).await??;
    let (l, b) = (median(luach.clone()), median(bare.clone()));
    println!("| figure | luach-server (jobs) | mosquitto + bare controller | luach / peer |");
    println!("|---|---|---|---|");
    println!(
        "| batch of {} commands, REST call → all stored succeeded (median of {}) | {l:.3} s | {b:.3} s | {:.2} |",
        args.count,
        args.rounds,
        l / b
    );
    println!(
        "| rounds | {} | {} | |",
        luach.iter().map(|x| format!("{x:.3}")).collect::<Vec<_>>().join(", "),
        bare.iter().map(|x| format!("{x:.3}")).collect::<Vec<_>>().join(", ")
    );
    println!("| luach-server CPU over the rounds | {cpu:.0} % | | |");
    Ok(())
}
