//! `luach-bench --board`: the board on a screen.
//!
//! 1. Full-frame render time per layout and size (`luach-board`, in this process).
//! 2. `luach-agent run` (its own process) drawing the demo synagogue on a private Xvfb from a
//!    stored bundle, with no server: time from start to the first frame on the display, then
//!    resident memory and CPU over the window with the clock ticking each second.
//! 3. The peer in the same run: Debian's Chromium in kiosk mode on the same display showing an
//!    HTML board of the same texts with a clock ticking each second (what browser-based
//!    signage players run), measured the same way (its whole process tree).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;
use luach_board::{Board, Layout, Options, Status};
use luach_tests::Xvfb;

use super::{Killed, proc_usage};

const WIDTH: u32 = 1920;
const HEIGHT: u32 = 1080;

/// Milliseconds per frame: median and mean of `n` renders after a warm-up.
fn render_times(layout: Layout, (w, h): (u32, u32), n: usize) -> anyhow::Result<(f64, f64)> {
    let mut board = Board::new();
    let at = Utc::now();
    let bundle = luach_board::demo::bundle_at(at);
    let options = Options::size(w, h).layout(layout);
    for _ in 0..3 {
        board.render(&bundle, at, options, Status::default())?;
    }
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let t = at + chrono::Duration::seconds(i as i64);
        let started = Instant::now();
        board.render(&bundle, t, options, Status::default())?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let mean = times.iter().sum::<f64>() / n as f64;
    Ok((times[n / 2], mean))
}

/// Waits until the middle of the screen is no longer black; the time it took from `since`.
fn first_frame(x: &Xvfb, since: Instant) -> anyhow::Result<Duration> {
    while since.elapsed() < Duration::from_secs(60) {
        if x.grab(WIDTH / 2, HEIGHT / 2, 1, 1)?.iter().any(|c| *c > 16) {
            return Ok(since.elapsed());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    bail!("nothing was drawn within a minute")
}

/// A process and its descendants, from /proc.
fn tree(root: u32) -> Vec<u32> {
    let mut all = vec![root];
    let mut i = 0;
    while i < all.len() {
        let parent = all[i];
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for e in entries.flatten() {
                let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                    continue;
                };
                let ppid = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .ok()
                    .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.to_owned()))
                    .and_then(|rest| rest.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok()));
                if ppid == Some(parent) && !all.contains(&pid) {
                    all.push(pid);
                }
            }
        }
        i += 1;
    }
    all
}

/// CPU seconds and RSS bytes of a process tree.
fn tree_usage(root: u32) -> (f64, u64) {
    tree(root)
        .into_iter()
        .filter_map(|pid| proc_usage(pid).ok())
        .fold((0.0, 0), |(c, r), (cpu, rss)| (c + cpu, r + rss))
}

/// First frame, RSS and CPU% of `child`'s tree over `window`.
struct Player {
    first_frame: Duration,
    rss: u64,
    cpu_percent: f64,
}

fn measure(child: &Killed, x: &Xvfb, started: Instant, window: Duration) -> anyhow::Result<Player> {
    let first_frame = first_frame(x, started)?;
    std::thread::sleep(Duration::from_secs(5));
    let pid = child.0.id();
    let (cpu0, _) = tree_usage(pid);
    let t0 = Instant::now();
    std::thread::sleep(window);
    let (cpu1, rss) = tree_usage(pid);
    Ok(Player {
        first_frame,
        rss,
        cpu_percent: 100.0 * (cpu1 - cpu0) / t0.elapsed().as_secs_f64(),
    })
}

/// The HTML board of the peer: the demo synagogue's texts, a clock ticking each second.
const HTML: &str = r#"<!doctype html><html lang="he" dir="rtl"><head><meta charset="utf-8"><style>
body{margin:0;background:#f4efe3;font-family:'Noto Sans','Noto Sans Hebrew',sans-serif;color:#1a1a1a}
header{background:#1d2b4f;color:#fff;height:220px;display:flex;justify-content:space-between;align-items:center;padding:0 28px}
#clock{font-size:150px;font-weight:bold;color:#f5d37a;font-variant-numeric:tabular-nums}
main{display:grid;grid-template-columns:540px 640px 1fr;gap:16px;padding:16px 28px}
section{background:#fffcf5;border-top:4px solid #c9a24b;padding:16px;font-size:42px}
.t{font-size:88px;font-weight:bold;color:#142e6b}
footer{position:fixed;bottom:0;width:100%;height:92px;background:#1d2b4f;color:#fff;font-size:42px}
</style></head><body>
<header><div><b style="font-size:52px;color:#f5d37a">בית הכנסת אהל משה</b><br>חנוכה: נר ראשון</div>
<div id="clock"></div><div><b style="font-size:52px">כ״ד כסלו תשפ״ז</b><br>יום שישי, 4 בדצמבר 2026</div></header>
<main><section><b>זמני היום</b><br>עלות השחר 05:06<br>הנץ החמה 06:18<br>סוף זמן ק״ש 08:56<br>חצות 11:29<br>שקיעה 16:39<br>צאת הכוכבים 17:14</section>
<section><b>זמני תפילות</b><br>הדלקת נרות <span class="t">15:54</span><br>שחרית <span class="t">06:30</span><br>מנחה <span class="t">16:04</span></section>
<section><b>הודעות</b><br>קידוש לכבוד בר המצווה של יונתן כהן אחרי התפילה. כל הקהל מוזמן!</section></main>
<footer>דף יומי: ערכין י״ז</footer>
<script>function tick(){document.getElementById('clock').textContent=new Date().toTimeString().slice(0,8)}tick();setInterval(tick,1000)</script>
</body></html>"#;

pub fn run(bin: &Path, window_secs: u64, dir: &Path) -> anyhow::Result<()> {
    println!("## Render time per frame (luach-board, release, one core)\n");
    println!("| layout | size | median | mean |");
    println!("|---|---|---|---|");
    for (layout, size) in [
        (Layout::Landscape, (1280, 720)),
        (Layout::Landscape, (1920, 1080)),
        (Layout::Landscape, (3840, 2160)),
        (Layout::Portrait, (1080, 1920)),
        (Layout::Portrait, (2160, 3840)),
    ] {
        let (median, mean) = render_times(layout, size, 30)?;
        println!(
            "| {} | {}×{} | {median:.1} ms | {mean:.1} ms |",
            layout.key(),
            size.0,
            size.1
        );
    }

    let x = Xvfb::start(WIDTH, HEIGHT, 600)?;
    let display = x.display.clone();
    let window = Duration::from_secs(window_secs);

    // The agent, offline, with a stored bundle of the demo synagogue.
    let state = dir.join("screen");
    let bundle_dir = state.join("bundle");
    std::fs::create_dir_all(&bundle_dir)?;
    std::fs::write(state.join("device-id"), "benchscreen")?;
    let mut bundle = luach_board::demo::bundle_at(Utc::now());
    bundle.device_id = "benchscreen".into();
    let bytes = bundle.to_bytes();
    let sha = luach_content::bundle::sha256_hex(&bytes);
    std::fs::write(bundle_dir.join(format!("{sha}.json")), &bytes)?;
    std::fs::write(bundle_dir.join("current"), &sha)?;
    let closed = luach_tests::free_port();
    let started = Instant::now();
    let agent = Killed(
        Command::new(bin.join("luach-agent"))
            .args([
                "run",
                "--plain-mqtt",
                "--mqtt",
                &format!("127.0.0.1:{closed}"),
                "--display",
                "x11",
            ])
            .arg("--state-dir")
            .arg(&state)
            .env("DISPLAY", &display)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("luach-agent")?,
    );
    let ours = measure(&agent, &x, started, window)?;
    drop(agent);

    // The peer: Chromium in kiosk mode showing the HTML board.
    let page = dir.join("board.html");
    std::fs::write(&page, HTML)?;
    let profile = dir.join("chromium-profile");
    let started = Instant::now();
    let chromium = Killed(
        Command::new("/usr/bin/chromium")
            .args([
                "--kiosk",
                "--no-sandbox",
                "--no-first-run",
                "--disable-gpu",
                "--disable-quic",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                &format!("--window-size={WIDTH},{HEIGHT}"),
                "--window-position=0,0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("file://{}", page.display()))
            .env("DISPLAY", &display)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("chromium (Debian package chromium)")?,
    );
    let peer = measure(&chromium, &x, started, window)?;
    drop(chromium);

    let mib = |b: u64| b as f64 / 1_048_576.0;
    println!("\n## The board on a 1920×1080 display (Xvfb), clock ticking, {window_secs} s window\n");
    println!("| figure | luach-agent run | chromium kiosk (HTML board) | luach / chromium |");
    println!("|---|---|---|---|");
    println!(
        "| first frame after start | {:.0} ms | {:.0} ms | {:.2} |",
        ours.first_frame.as_secs_f64() * 1000.0,
        peer.first_frame.as_secs_f64() * 1000.0,
        ours.first_frame.as_secs_f64() / peer.first_frame.as_secs_f64()
    );
    println!(
        "| resident memory | {:.1} MiB | {:.1} MiB | {:.2} |",
        mib(ours.rss),
        mib(peer.rss),
        ours.rss as f64 / peer.rss as f64
    );
    println!(
        "| CPU (one core = 100%) | {:.2}% | {:.2}% | {:.2} |",
        ours.cpu_percent,
        peer.cpu_percent,
        ours.cpu_percent / peer.cpu_percent.max(0.01)
    );
    Ok(())
}
