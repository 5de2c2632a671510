//! The screen: draws the board once a second from the last good bundle, on whatever display
//! there is, whether or not the control plane is reachable.
//!
//! It runs on a thread of its own (rendering is CPU work; the MQTT session and bundle fetches
//! stay on the async runtime) and reads what it needs each tick: the bundle the `current`
//! pointer names (re-read only when the pointer changes), whether the session is connected,
//! and the claim code while the screen waits to be enrolled. Each frame is compared with the
//! last and only the rows that changed go to the display. The clock can be injected (a start
//! instant and a speed) so tests and demos can run a screen through an evening in seconds.
//!
//! The display power schedule is followed here too, offline: an operator's (`power_schedule`,
//! kept in the state directory) when there is one, else the bundle's. When the state it asks
//! for changes (and once at start), the platform switches the display. Between switches an
//! operator's `display_power` command stands.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use luach_board::{Board, Frame, Options, Status};
use luach_content::{BoardLanguage, Bundle};
use luach_schemas::DeviceId;
use tokio_util::sync::CancellationToken;

use crate::bundle::BundleStore;
use crate::display::{Surface, changed_rows};
use crate::platform::{Effect, Platform};
use crate::session::SessionStats;

/// Frame size when there is no display (screenshots of a headless screen).
pub const HEADLESS_SIZE: (u32, u32) = (1920, 1080);

/// The time the board shows: the system clock, or an injected one for tests and demos.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// `None`: the system clock (it follows NTP adjustments).
    simulated: Option<Simulated>,
}

#[derive(Debug, Clone, Copy)]
struct Simulated {
    origin: Instant,
    start: DateTime<Utc>,
    /// Simulated seconds per real second (0 stops the clock).
    speed: f64,
}

impl Clock {
    pub fn system() -> Self {
        Self { simulated: None }
    }

    /// Starts at `start` and runs `speed` times as fast as real time (0: stopped).
    pub fn simulated(start: DateTime<Utc>, speed: f64) -> Self {
        Self {
            simulated: Some(Simulated {
                origin: Instant::now(),
                start,
                speed: speed.max(0.0),
            }),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self.simulated {
            None => Utc::now(),
            Some(s) => {
                let micros = (s.origin.elapsed().as_secs_f64() * s.speed * 1e6) as i64;
                s.start + chrono::Duration::microseconds(micros)
            }
        }
    }

    /// Real time until the shown clock reaches its next whole second (at most a second).
    fn until_next_second(&self) -> Duration {
        let speed = self.simulated.map_or(1.0, |s| s.speed);
        if speed <= 0.0 {
            return Duration::from_secs(1);
        }
        let into = f64::from(self.now().timestamp_subsec_micros()) / 1e6;
        Duration::from_secs_f64(((1.0 - into) / speed).clamp(0.001, 1.0))
    }
}

/// The latest frame, for screenshots.
pub type LatestFrame = Arc<Mutex<Option<Frame>>>;

/// What the screen loop reads.
pub struct ScreenInputs {
    pub state_dir: PathBuf,
    pub device_id: DeviceId,
    pub stats: Arc<SessionStats>,
    /// The claim code while the screen waits to be enrolled.
    pub claim_code: Arc<Mutex<Option<String>>>,
    pub latest: LatestFrame,
    /// Switches the display by the power schedule.
    pub platform: Arc<dyn Platform>,
    /// An operator's power schedule, followed instead of the bundle's.
    pub power: crate::settings::PowerOverride,
}

/// Follows the bundle's power schedule: switches the display when the state it asks for
/// changes. Switches are applied in order by a worker thread (a platform command may take
/// seconds; the board keeps drawing meanwhile).
#[derive(Debug, Default)]
struct PowerFollower {
    /// What the schedule last asked for (`None`: no schedule in force).
    asked: Option<bool>,
    worker: Option<std::sync::mpsc::Sender<(bool, DateTime<Utc>)>>,
}

impl PowerFollower {
    fn follow(
        &mut self,
        bundle: Option<&Bundle>,
        operator: Option<&luach_content::PowerSchedule>,
        at: DateTime<Utc>,
        platform: &Arc<dyn Platform>,
    ) {
        let wanted = match (bundle, operator) {
            (Some(b), Some(schedule)) => Some(b.display_on_by(schedule, at)),
            (b, _) => b.filter(|b| b.board.power.is_some()).map(|b| b.display_on(at)),
        };
        let switch = match (self.asked, wanted) {
            // The schedule asks for another state (or for the first time).
            (asked, Some(w)) if asked != Some(w) => Some(w),
            // A schedule that is gone leaves the display on.
            (Some(false), None) => Some(true),
            _ => None,
        };
        self.asked = wanted;
        let Some(on) = switch else { return };
        let worker = self.worker.get_or_insert_with(|| {
            let (tx, rx) = std::sync::mpsc::channel::<(bool, DateTime<Utc>)>();
            let platform = platform.clone();
            let spawned = std::thread::Builder::new().name("display-power".into()).spawn(move || {
                for (on, at) in rx {
                    match platform.apply(Effect::DisplayPower(on)) {
                        Ok(how) => tracing::info!(on, how = %how, at = %at, "display switched by its schedule"),
                        Err(e) => tracing::warn!(on, error = %e, "the power schedule could not switch the display"),
                    }
                }
            });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "the power schedule could not start its thread");
            }
            tx
        });
        if worker.send((on, at)).is_err() {
            tracing::warn!(on, "the power schedule's thread is gone; the display was not switched");
        }
    }
}

/// Starts the screen thread; it stops when `shutdown` is cancelled.
pub fn spawn(
    surface: Option<Box<dyn Surface>>,
    clock: Clock,
    inputs: ScreenInputs,
    shutdown: CancellationToken,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("screen".into())
        .spawn(move || run(surface, clock, inputs, &shutdown))
}

fn run(mut surface: Option<Box<dyn Surface>>, clock: Clock, inputs: ScreenInputs, shutdown: &CancellationToken) {
    let mut board = Board::new();
    let store = BundleStore::new(&inputs.state_dir, inputs.device_id.clone());
    let pointer = inputs.state_dir.join("bundle").join("current");
    let mut named: Option<String> = None;
    let mut bundle: Option<Bundle> = None;
    let mut last_contact = clock.now();
    let (width, height) = surface.as_ref().map_or(HEADLESS_SIZE, |s| s.size());
    let mut power = PowerFollower::default();
    if let Some(s) = &surface {
        println!("luach-agent: drawing the board on {}", s.describe());
    }
    while !shutdown.is_cancelled() {
        let at = clock.now();
        // A new bundle is picked up when the pointer names another one.
        let now_named = std::fs::read_to_string(&pointer).ok();
        if now_named != named || bundle.is_none() {
            // `load` falls back to the newest stored bundle that checks out.
            if let Some(stored) = store.load() {
                bundle = Some(stored.bundle);
            }
            named = now_named;
        }
        let connected = inputs.stats.connected.load(Ordering::Relaxed) > 0;
        if connected {
            last_contact = at;
        }
        let status = Status {
            offline_since: (!connected).then_some(last_contact),
        };
        power.follow(bundle.as_ref(), inputs.power.get().as_ref(), at, &inputs.platform);
        let claim = inputs.claim_code.lock().ok().and_then(|c| c.clone());
        let drawn = match (&bundle, claim) {
            (Some(b), _) => board.render(b, at, Options::size(width, height), status),
            (None, Some(code)) => board.render_claim(&code, BoardLanguage::Both, Options::size(width, height)),
            (None, None) => board.render(&luach_board::demo::empty(), at, Options::size(width, height), status),
        };
        match drawn {
            Ok(frame) => {
                // The latest frame (kept for screenshots) is also what the display shows, so the
                // new one is compared with it: one full frame kept, not two.
                let mut latest = inputs.latest.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Some(s) = surface.as_mut() {
                    let full = s.needs_full_redraw();
                    let previous = latest.as_ref().map(|f| f.rgba()).filter(|_| !full);
                    for band in changed_rows(previous, frame.rgba(), width) {
                        if let Err(e) = s.present(frame.rgba(), band) {
                            tracing::error!(error = %e, "the display failed; continuing headless");
                            surface = None;
                            break;
                        }
                    }
                }
                *latest = Some(frame);
            }
            Err(e) => tracing::error!(error = %e, "the board could not be drawn"),
        }
        std::thread::sleep(clock.until_next_second());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_injected_clock_starts_where_told_and_runs_at_its_speed() {
        let start = DateTime::parse_from_rfc3339("2026-12-04T23:59:58+02:00")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let stopped = Clock::simulated(start, 0.0);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(stopped.now(), start);
        assert_eq!(stopped.until_next_second(), Duration::from_secs(1));
        let fast = Clock::simulated(start, 100.0);
        std::thread::sleep(Duration::from_millis(50));
        let moved = (fast.now() - start).num_milliseconds();
        assert!((4_000..60_000).contains(&moved), "{moved} ms");
        assert!(fast.until_next_second() <= Duration::from_millis(10));
    }
}
