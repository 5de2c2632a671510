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
//!
//! With `--storm`, after the rounds the broker is restarted under the connected screens —
//! `luach-server` killed and started again on the same ports and data (its embedded broker
//! starts empty), Mosquitto killed and started again on its port — and the bench times every
//! screen's return (Luach: N `hello`s counted by the new server's
//! `luach_mqtt_messages_in_total`; peer: N screens heard from again by the reconnected bare
//! controller), then the first batch after it and the one after that.

use std::collections::HashSet;
use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use luach_schemas::messages::{Ack, AckStatus, Command as DeviceCommand, CommandAction};
use luach_schemas::{DownKind, Envelope};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::json;

use luach_tests::{Api, free_port};

use super::{
    Args, FLEET_ENV, Killed, luach_fleet_at, mosquitto_sim, proc_usage, start_mosquitto, start_mosquitto_at,
    start_server_at,
};

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The `--storm` figures, in seconds: every screen back after the broker restarted, the first
/// batch after that, and the next one.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct Storm {
    reconnect: f64,
    first_batch: f64,
    second_batch: f64,
}

/// One job of `brightness` to every screen: seconds from the REST call until it completed
/// with every screen succeeded.
async fn luach_batch(api: &Api, args: &Args, round: u64) -> anyhow::Result<f64> {
    let body = json!({
        "command": {"type": "brightness", "percent": 40 + round % 50},
        "target": {"all": true},
        "concurrency": args.count.min(10_000),
    });
    let (secs, _) = job_until_completed(
        api,
        &body,
        args.count,
        Duration::from_millis(20),
        Duration::from_secs(600),
    )
    .await?;
    Ok(secs)
}

/// Creates the job `body` and polls it every `poll` until it completed with `count` screens
/// succeeded (at most `limit`); seconds from the REST call, and the job's id.
pub(crate) async fn job_until_completed(
    api: &Api,
    body: &serde_json::Value,
    count: u64,
    poll: Duration,
    limit: Duration,
) -> anyhow::Result<(f64, String)> {
    let started = Instant::now();
    let (status, answer) = api.post("/api/v1/jobs", body).await;
    if status != 201 {
        bail!("job not created: {status} {answer}");
    }
    let id = answer["data"]["id"].as_str().context("job id")?.to_owned();
    loop {
        let (_, job) = api.get(&format!("/api/v1/jobs/{id}")).await;
        if job["data"]["state"] == "completed" {
            if job["data"]["counts"]["succeeded"].as_u64() != Some(count) {
                bail!("job ended without every screen: {job}");
            }
            return Ok((started.elapsed().as_secs_f64(), id));
        }
        if started.elapsed() > limit {
            bail!("job not completed: {job}");
        }
        tokio::time::sleep(poll).await;
    }
}

/// Hellos the server has received since it started (its Prometheus counter).
async fn hellos(api: &Api) -> u64 {
    api.counter("luach_mqtt_messages_in_total{kind=\"hello\"}")
        .await
        .unwrap_or(0.0) as u64
}

/// Luach's rounds: seconds per batch, the server's CPU share over them, and with `--storm`
/// the figures after a server restart.
async fn luach_rounds(bin: &Path, args: &Args, dir: &Path) -> anyhow::Result<(Vec<f64>, f64, Option<Storm>)> {
    let ports = (free_port(), free_port());
    let fleet = luach_fleet_at(bin, args, dir, ports).await?;
    let (pid, api) = (fleet.server.0.id(), fleet.api.clone());
    let mut rounds = Vec::new();
    let (cpu0, _) = proc_usage(pid)?;
    let t0 = Instant::now();
    for round in 0..args.rounds {
        rounds.push(luach_batch(&api, args, round).await?);
    }
    let (cpu1, _) = proc_usage(pid)?;
    let cpu = 100.0 * (cpu1 - cpu0) / t0.elapsed().as_secs_f64();
    if !args.storm {
        return Ok((rounds, cpu, None));
    }
    // SIGKILL, then the same ports and data: the screens all come back at once.
    let (server, _sim) = (fleet.server, fleet.sim);
    drop(server);
    let restarted = Instant::now();
    let (_server, _) = start_server_at(bin, dir, &FLEET_ENV, ports).await?;
    while hellos(&api).await < args.count {
        if restarted.elapsed() > Duration::from_secs(900) {
            bail!("not every screen came back within 900 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reconnect = restarted.elapsed().as_secs_f64();
    let first_batch = luach_batch(&api, args, args.rounds).await?;
    let second_batch = luach_batch(&api, args, args.rounds + 1).await?;
    Ok((
        rounds,
        cpu,
        Some(Storm {
            reconnect,
            first_batch,
            second_batch,
        }),
    ))
}

/// The peer: Mosquitto, the same simulator, and the bare controller in its own process
/// (which prints its rounds as one JSON line, and with `--storm` the storm figures as another
/// once Mosquitto has been restarted under it).
fn mosquitto_rounds(bin: &Path, args: &Args, dir: &Path) -> anyhow::Result<(Vec<f64>, Option<Storm>)> {
    let (broker, port) = start_mosquitto(dir)?;
    let _sim = mosquitto_sim(bin, args, port, dir)?;
    let mut controller = Command::new(std::env::current_exe()?)
        .args(["--bare-controller", &port.to_string()])
        .args(["--count", &args.count.to_string(), "--rounds", &args.rounds.to_string()])
        .args(args.storm.then_some("--storm"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("running the bare controller")?;
    let stdout = controller.stdout.take().context("controller output")?;
    let controller = Killed(controller);
    let mut lines = std::io::BufReader::new(stdout).lines();
    let mut line =
        || -> anyhow::Result<String> { lines.next().transpose()?.context("the bare controller stopped early") };
    let rounds: Vec<f64> = serde_json::from_str(&line()?).context("bare controller rounds")?;
    let storm = if args.storm {
        drop(broker);
        let (broker, _) = start_mosquitto_at(dir, port)?;
        let storm: Storm = serde_json::from_str(&line()?).context("bare controller storm")?;
        drop(broker);
        Some(storm)
    } else {
        drop(broker);
        None
    };
    drop(controller);
    Ok((rounds, storm))
}

/// What the bare controller's MQTT task reports.
enum Heard {
    /// Any message from a screen (hello, heartbeat, metrics) but an ack.
    Up(String),
    Ack(Ack),
    /// The connection to the broker dropped (it reconnects by itself).
    Lost,
}

/// `--bare-controller PORT`: waits for `count` screens `mosq…` to be heard on Mosquitto, then
/// runs `rounds` batches (publish one command to each, wait for every `ok`) and prints the
/// seconds per round as a JSON array. With `storm`, it then waits for the broker to go away,
/// reconnects, waits for every screen to be heard again and runs two more batches, printing
/// [`Storm`] as a JSON line.
pub async fn bare_controller(port: u16, count: u64, rounds: u64, storm: bool) -> anyhow::Result<()> {
    let mut options = MqttOptions::new("bench-controller", "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_inflight(1_000);
    let (client, mut eventloop) = AsyncClient::new(options, 20_000);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Heard>();
    let resubscribe = client.clone();
    tokio::spawn(async move {
        loop {
            let heard = match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    // Every connection (a clean session) subscribes again.
                    if resubscribe.try_subscribe("/tenants/+/up/#", QoS::AtLeastOnce).is_err() {
                        eprintln!("bare controller: cannot subscribe");
                    }
                    continue;
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    // An ack is told by the envelope's type (one uplink topic) or its topic.
                    let ack = serde_json::from_slice::<Envelope<Ack>>(&p.payload)
                        .ok()
                        .filter(|e| e.kind == "ack");
                    match ack {
                        Some(e) => Heard::Ack(e.body),
                        None if p.topic.ends_with("/up/ack") => continue,
                        None => Heard::Up(p.topic.split('/').nth(2).unwrap_or("").to_owned()),
                    }
                }
                Ok(_) => continue,
                Err(_) => {
                    // rumqttc reconnects on the next poll.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    Heard::Lost
                }
            };
            if tx.send(heard).is_err() {
                break;
            }
        }
    });
    let devices = heard_from(&mut rx, count).await?;
    let mut out = Vec::new();
    for round in 0..rounds {
        out.push(bare_batch(&client, &mut rx, &devices, round).await?);
    }
    println!("{}", serde_json::to_string(&out)?);
    if !storm {
        return Ok(());
    }
    // The parent restarts Mosquitto now; time from the drop until every screen is back.
    loop {
        match tokio::time::timeout(Duration::from_secs(600), rx.recv()).await {
            Ok(Some(Heard::Lost)) => break,
            Ok(Some(_)) => {}
            _ => bail!("the broker never went away"),
        }
    }
    let lost = Instant::now();
    heard_from(&mut rx, count).await?;
    let reconnect = lost.elapsed().as_secs_f64();
    let first_batch = bare_batch(&client, &mut rx, &devices, rounds).await?;
    let second_batch = bare_batch(&client, &mut rx, &devices, rounds + 1).await?;
    let storm = Storm {
        reconnect,
        first_batch,
        second_batch,
    };
    println!("{}", serde_json::to_string(&storm)?);
    Ok(())
}

/// Waits until `count` distinct screens have been heard from; their ids, sorted.
async fn heard_from(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Heard>, count: u64) -> anyhow::Result<Vec<String>> {
    let mut seen = HashSet::new();
    while (seen.len() as u64) < count {
        match tokio::time::timeout(Duration::from_secs(900), rx.recv()).await {
            Ok(Some(Heard::Up(device))) if !device.is_empty() => {
                seen.insert(device);
            }
            Ok(Some(_)) => {}
            _ => bail!("only {} of {count} screens heard from on mosquitto", seen.len()),
        }
    }
    let mut devices: Vec<String> = seen.into_iter().collect();
    devices.sort();
    Ok(devices)
}

/// One batch: a command to each screen, then every `ok`; seconds.
async fn bare_batch(
    client: &AsyncClient,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Heard>,
    devices: &[String],
    round: u64,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut waiting = HashSet::new();
    for device in devices {
        let id = format!("bare.{round}.{device}");
        let command = DeviceCommand {
            command_id: id.clone(),
            expires_at: None,
            action: CommandAction::Brightness {
                percent: u8::try_from(40 + round % 50).unwrap_or(40),
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
            Ok(Some(Heard::Ack(ack))) if ack.status == AckStatus::Ok => {
                waiting.remove(&ack.command_id);
            }
            Ok(Some(_)) => {}
            _ => bail!("{} commands unanswered", waiting.len()),
        }
    }
    Ok(started.elapsed().as_secs_f64())
}

pub async fn run(bin: &Path, args: &Args, dir: &Path) -> anyhow::Result<()> {
    eprintln!(
        "luach-bench --jobs: {} screens, {} rounds{}",
        args.count,
        args.rounds,
        if args.storm { ", then a broker restart" } else { "" }
    );
    let luach_dir = dir.join("luach");
    std::fs::create_dir_all(&luach_dir)?;
    let (luach, cpu, luach_storm) = luach_rounds(bin, args, &luach_dir).await?;
    let mosq_dir = dir.join("mosquitto");
    std::fs::create_dir_all(&mosq_dir)?;
    let (bin2, args2, dir2) = (bin.to_owned(), args.clone(), mosq_dir.clone());
    let (bare, bare_storm) = tokio::task::spawn_blocking(move || mosquitto_rounds(&bin2, &args2, &dir2)).await??;
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
    if let (Some(l), Some(b)) = (luach_storm, bare_storm) {
        for (what, x, y) in [
            ("broker restarted → every screen back", l.reconnect, b.reconnect),
            ("first batch after the reconnect storm", l.first_batch, b.first_batch),
            ("the batch after that", l.second_batch, b.second_batch),
        ] {
            println!("| {what} | {x:.3} s | {y:.3} s | {:.2} |", x / y);
        }
    }
    Ok(())
}
