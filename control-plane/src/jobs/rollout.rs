//! Staged roll-outs and maintenance windows, as pure functions of a job's spec, its counts
//! and the time.
//!
//! A roll-out job's executions are in roll-out order (`seq`); its phases are cumulative
//! bounds over that order ([`bounds`]). The engine sends only executions below the open
//! phase's bound, and after every pass asks [`step`] what the open phase allows:
//!
//! ```text
//!   phase k open ──▶ (every online screen of k answered, ≤ pause % failed) ──soak──▶ phase k+1 open
//!        │
//!        └──▶ more than pause % of k failed ──▶ job paused ──resume (accepts k)──▶ phase k+1 open
//! ```
//!
//! A phase is settled when nothing of it is in flight and all it still waits for are screens
//! that are offline: those get the update when they return, like any late screen, and do not
//! hold the roll-out back. The phase index after the last one means "every phase accepted":
//! no gate is left.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use sha2::{Digest, Sha256};

use super::spec::{JobSpec, Rollout, Window};
use crate::store::{JobRecord, Tally};

/// Where a staged roll-out stands, as the API and `job:progress` show it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct PhaseStatus {
    /// The open phase, from 0; equal to the number of phases once every phase was accepted.
    pub index: u32,
    /// Where each phase ends in roll-out order (cumulative screen counts; the last is every
    /// screen of the job).
    pub ends: Vec<u32>,
    /// When the open phase opened (none for the first).
    pub opened_at: Option<DateTime<Utc>>,
}

impl PhaseStatus {
    /// The roll-out status of `job`, when it is a roll-out.
    pub fn of(job: &JobRecord, spec: &JobSpec) -> Option<Self> {
        let rollout = spec.rollout.as_ref()?;
        Some(Self {
            index: job.phase,
            ends: bounds(rollout, job.total),
            opened_at: job.phase_at,
        })
    }
}

/// The screens a job reaches, in roll-out order. With a roll-out or a percentage (and no
/// explicit list of screens), the order is a stable shuffle by the job's id, so the first
/// phase is not always the same screens; a percentage then keeps that share (at least one).
pub fn order<T: AsRef<str>>(job_id: &str, mut devices: Vec<T>, shuffle: bool, percent: Option<f64>) -> Vec<T> {
    if shuffle || percent.is_some() {
        let rank = |d: &T| {
            Sha256::new()
                .chain_update(job_id)
                .chain_update([0])
                .chain_update(d.as_ref())
                .finalize()
        };
        devices.sort_by_cached_key(rank);
    }
    if let Some(p) = percent {
        let keep = share(devices.len(), p);
        devices.truncate(keep);
    }
    devices
}

/// `percent` % of `n`, rounded up, at least one (of a non-empty set).
fn share(n: usize, percent: f64) -> usize {
    if n == 0 {
        return 0;
    }
    let exact = (n as f64) * percent.clamp(0.0, 100.0) / 100.0;
    (exact.ceil() as usize).clamp(1, n)
}

/// The end (exclusive `seq`) of each phase over `total` executions: cumulative, rising,
/// without empty phases, the last reaching every execution (a last phase is added for the
/// screens the given phases do not reach).
pub fn bounds(rollout: &Rollout, total: u64) -> Vec<u32> {
    let total = u32::try_from(total).unwrap_or(u32::MAX);
    let mut out: Vec<u32> = Vec::with_capacity(rollout.phases.len() + 1);
    for p in &rollout.phases {
        let reach = match (p.screens, p.percent) {
            (Some(n), _) => n.min(total),
            (None, Some(x)) => u32::try_from(share(total as usize, x)).unwrap_or(total),
            (None, None) => continue,
        };
        if reach > out.last().copied().unwrap_or(0) {
            out.push(reach);
        }
    }
    if out.last().copied().unwrap_or(0) < total {
        out.push(total);
    }
    out
}

/// The `seq` range of phase `k` (the whole of the last phase once every phase is accepted).
pub fn range(bounds: &[u32], k: u32) -> std::ops::Range<u32> {
    let k = (k as usize).min(bounds.len().saturating_sub(1));
    let start = if k == 0 { 0 } else { bounds[k - 1] };
    start..bounds.get(k).copied().unwrap_or(0)
}

/// Executions with `seq` below this may be sent while phase `k` is open.
pub fn reach(bounds: &[u32], k: u32) -> u32 {
    range(bounds, k).end
}

/// What the open phase allows now.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Nothing to do (no gate, or the phase is still going; the text says why).
    Stay(String),
    /// Open the next phase.
    Open,
    /// Pause the job, with this reason.
    Pause(String),
}

/// The open phase's state, as the engine sees it.
#[derive(Debug, Clone, Copy, Default)]
pub struct PhaseView {
    pub tally: Tally,
    /// Queued executions of the phase whose screens are offline now.
    pub waiting_offline: u64,
}

fn failures(t: &Tally) -> u64 {
    t.counts.failed + t.counts.timed_out
}

/// True when more than the roll-out's pause share of the phase's finished executions failed
/// (the test a settled phase passes or fails; resuming a job it paused accepts the phase).
pub fn failed_too_often(rollout: &Rollout, t: &Tally) -> bool {
    let finished = t.counts.finished();
    finished > 0 && failures(t) as f64 * 100.0 > rollout.pause_failure_percent * finished as f64
}

/// What phase `k` of `bounds` allows at `now`.
pub fn step(rollout: &Rollout, bounds: &[u32], k: u32, view: &PhaseView, now: DateTime<Utc>) -> Step {
    let n = bounds.len() as u32;
    if k >= n {
        return Step::Stay("every phase is open".into());
    }
    let r = range(bounds, k);
    let size = u64::from(r.end - r.start);
    let t = &view.tally;
    let label = format!("phase {} of {n}", k + 1);
    let pause = |finished: u64| {
        format!(
            "{label}: {} of {finished} screens failed (more than {} %); resume to accept the phase and go on",
            failures(t),
            rollout.pause_failure_percent
        )
    };
    // Certain to fail the phase whatever the rest does: stop now.
    if failures(t) as f64 * 100.0 > rollout.pause_failure_percent * size as f64 {
        return Step::Pause(pause(t.counts.finished()));
    }
    let settled = t.counts.in_flight() == 0 && t.counts.queued <= view.waiting_offline;
    if !settled {
        return Step::Stay(format!("{label} in progress"));
    }
    if t.counts.finished() == 0 {
        return Step::Stay(format!("{label}: waiting for a screen of the phase to come online"));
    }
    if failed_too_often(rollout, t) {
        return Step::Pause(pause(t.counts.finished()));
    }
    if k + 1 == n {
        return Step::Stay(format!("{label} is the last"));
    }
    let opens = t.last_final.unwrap_or(now) + Duration::seconds(i64::from(rollout.soak_s));
    if now < opens {
        return Step::Stay(format!("{label} healthy; the next opens at {opens}"));
    }
    Step::Open
}

/// When a screen in time zone `tz` may start next under `windows`: `None` when it may start
/// now (inside a window, or no windows given), otherwise when the next window opens.
pub fn window_wait<Tz: TimeZone>(windows: &[Window], tz: &Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if windows.is_empty() {
        return None;
    }
    let mut next: Option<DateTime<Utc>> = None;
    for (from, to) in spans(windows, tz, now) {
        if from <= now && now < to {
            return None;
        }
        if from > now && next.is_none_or(|n| from < n) {
            next = Some(from);
        }
    }
    next
}

/// When the window of `windows` that `now` is inside (in time zone `tz`) closes; `None`
/// outside every window. Overlapping windows count as one.
pub fn window_close<Tz: TimeZone>(windows: &[Window], tz: &Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let all: Vec<_> = spans(windows, tz, now).collect();
    let mut close = all
        .iter()
        .filter(|(from, to)| *from <= now && now < *to)
        .map(|(_, to)| *to)
        .max()?;
    // A window opening before this one closes carries on.
    while let Some(later) = all
        .iter()
        .filter(|(from, to)| *from <= close && close < *to)
        .map(|(_, to)| *to)
        .max()
    {
        close = later;
    }
    Some(close)
}

/// Every occurrence of `windows` (in time zone `tz`) from the day before `now` to a week
/// after, as UTC spans.
fn spans<'a, Tz: TimeZone>(
    windows: &'a [Window],
    tz: &'a Tz,
    now: DateTime<Utc>,
) -> impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>)> + 'a {
    let today = now.with_timezone(tz).date_naive();
    // Yesterday's window may still be open (it spans midnight); a week ahead holds every
    // window's next start.
    (-1..=7).flat_map(move |offset| {
        let day = today + Duration::days(offset);
        windows.iter().filter_map(move |w| {
            let (start, end) = w.times()?;
            let weekday = day.weekday().num_days_from_sunday() as u8;
            if w.days.as_ref().is_some_and(|d| !d.contains(&weekday)) {
                return None;
            }
            let end_day = if end > start { day } else { day + Duration::days(1) };
            Some((local(tz, day, start)?, local(tz, end_day, end)?))
        })
    })
}

/// A local wall-clock time as UTC: the earlier of an ambiguous time, and for a time the clocks
/// skip, the same time an hour later.
fn local<Tz: TimeZone>(tz: &Tz, day: NaiveDate, t: chrono::NaiveTime) -> Option<DateTime<Utc>> {
    let at = day.and_time(t);
    tz.from_local_datetime(&at)
        .earliest()
        .or_else(|| tz.from_local_datetime(&(at + Duration::hours(1))).earliest())
        .map(|d| d.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::spec::Phase;
    use crate::store::Counts;

    fn rollout(phases: &[(Option<u32>, Option<f64>)]) -> Rollout {
        Rollout {
            phases: phases
                .iter()
                .map(|&(screens, percent)| Phase { screens, percent })
                .collect(),
            soak_s: 600,
            pause_failure_percent: 20.0,
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn bounds_are_cumulative_rising_and_reach_every_screen() {
        let r = rollout(&[(Some(1), None), (None, Some(10.0)), (None, Some(50.0))]);
        assert_eq!(bounds(&r, 1000), vec![1, 100, 500, 1000]);
        // Phases that reach no further than the one before disappear.
        assert_eq!(bounds(&r, 5), vec![1, 3, 5]);
        assert_eq!(bounds(&r, 1), vec![1]);
        assert_eq!(bounds(&rollout(&[(None, Some(100.0))]), 7), vec![7]);
        assert_eq!(bounds(&rollout(&[(Some(50), None)]), 7), vec![7]);
        assert_eq!(range(&[1, 3, 5], 0), 0..1);
        assert_eq!(range(&[1, 3, 5], 2), 3..5);
        // Past the last phase: everything is open.
        assert_eq!(reach(&[1, 3, 5], 3), 5);
    }

    #[test]
    fn order_is_a_stable_shuffle_and_a_share() {
        let devices: Vec<String> = (0..100).map(|i| format!("d{i:03}")).collect();
        let a = order("job-a", devices.clone(), true, None);
        assert_eq!(a, order("job-a", devices.clone(), true, None));
        assert_ne!(a, devices, "shuffled");
        assert_ne!(a, order("job-b", devices.clone(), true, None), "by job");
        assert_eq!(order("job-a", devices.clone(), false, None), devices, "kept");
        let ten = order("job-a", devices.clone(), false, Some(10.0));
        assert_eq!(ten.len(), 10);
        assert_eq!(ten[..], a[..10]);
        assert_eq!(order("j", vec!["x", "y"], false, Some(0.1)).len(), 1);
    }

    fn view(counts: Counts, waiting_offline: u64, last: &str) -> PhaseView {
        PhaseView {
            tally: Tally {
                counts,
                ever_sent: 0,
                last_final: Some(at(last)),
            },
            waiting_offline,
        }
    }

    #[test]
    fn a_healthy_phase_opens_the_next_after_the_soak() {
        let r = rollout(&[(Some(1), None), (None, Some(50.0))]);
        let b = bounds(&r, 10);
        assert_eq!(b, vec![1, 5, 10]);
        let done = Counts {
            succeeded: 1,
            ..Counts::default()
        };
        let v = view(done, 0, "2026-12-01T10:00:00Z");
        assert!(matches!(step(&r, &b, 0, &v, at("2026-12-01T10:05:00Z")), Step::Stay(_)));
        assert_eq!(step(&r, &b, 0, &v, at("2026-12-01T10:10:00Z")), Step::Open);
        // Still going: one in flight.
        let going = Counts {
            succeeded: 3,
            sent: 1,
            ..Counts::default()
        };
        assert!(
            matches!(step(&r, &b, 1, &view(going, 0, "2026-12-01T10:00:00Z"), at("2026-12-02T00:00:00Z")), Step::Stay(s) if s.contains("in progress"))
        );
        // Settled with one screen offline: it gets the update later; the phase goes on.
        let late = Counts {
            succeeded: 3,
            queued: 1,
            ..Counts::default()
        };
        assert_eq!(
            step(
                &r,
                &b,
                1,
                &view(late, 1, "2026-12-01T10:00:00Z"),
                at("2026-12-02T00:00:00Z")
            ),
            Step::Open
        );
        // …but a queued screen that is online (held, backing off) is still the phase's.
        assert!(matches!(
            step(
                &r,
                &b,
                1,
                &view(late, 0, "2026-12-01T10:00:00Z"),
                at("2026-12-02T00:00:00Z")
            ),
            Step::Stay(_)
        ));
        // Every screen of the phase offline: nothing to judge by.
        let none = Counts {
            queued: 4,
            ..Counts::default()
        };
        assert!(
            matches!(step(&r, &b, 1, &view(none, 4, "2026-12-01T10:00:00Z"), at("2026-12-02T00:00:00Z")), Step::Stay(s) if s.contains("come online"))
        );
        // The last phase has nothing after it; past it there is no gate.
        let last = Counts {
            succeeded: 5,
            ..Counts::default()
        };
        assert!(
            matches!(step(&r, &b, 2, &view(last, 0, "2026-12-01T10:00:00Z"), at("2026-12-02T00:00:00Z")), Step::Stay(s) if s.contains("last"))
        );
        assert!(matches!(
            step(
                &r,
                &b,
                3,
                &view(Counts::default(), 0, "2026-12-01T10:00:00Z"),
                at("2026-12-02T00:00:00Z")
            ),
            Step::Stay(_)
        ));
    }

    #[test]
    fn a_failing_phase_pauses_early_or_when_settled() {
        let r = rollout(&[(None, Some(50.0))]);
        let b = bounds(&r, 20);
        let now = at("2026-12-02T00:00:00Z");
        // 10 screens in phase 1, 20 % allowed: 3 failures can no longer pass.
        let early = Counts {
            failed: 2,
            timed_out: 1,
            queued: 7,
            ..Counts::default()
        };
        assert!(
            matches!(step(&r, &b, 0, &view(early, 0, "2026-12-01T10:00:00Z"), now), Step::Pause(s) if s.contains("3 of 3"))
        );
        // Two of ten may fail, but not two of the four that answered while six are offline.
        let settled = Counts {
            failed: 2,
            succeeded: 2,
            queued: 6,
            ..Counts::default()
        };
        let v = view(settled, 6, "2026-12-01T10:00:00Z");
        assert!(matches!(step(&r, &b, 0, &v, now), Step::Pause(_)));
        assert!(failed_too_often(&r, &v.tally));
        let fine = Counts {
            failed: 2,
            succeeded: 8,
            ..Counts::default()
        };
        let v = view(fine, 0, "2026-12-01T10:00:00Z");
        assert_eq!(step(&r, &b, 0, &v, now), Step::Open);
        assert!(!failed_too_often(&r, &v.tally));
        // No failures allowed: the first one pauses.
        let strict = Rollout {
            pause_failure_percent: 0.0,
            ..r.clone()
        };
        let one = Counts {
            failed: 1,
            queued: 9,
            ..Counts::default()
        };
        assert!(matches!(
            step(&strict, &b, 0, &view(one, 0, "2026-12-01T10:00:00Z"), now),
            Step::Pause(_)
        ));
    }

    fn window(days: Option<Vec<u8>>, start: &str, end: &str) -> Window {
        Window {
            days,
            start: start.into(),
            end: end.into(),
        }
    }

    #[test]
    fn windows_in_local_time() {
        let tz = chrono_tz::Asia::Jerusalem; // UTC+2 in December
        let nightly = [window(None, "02:00", "05:00")];
        // 03:00 local: inside.
        assert_eq!(window_wait(&nightly, &tz, at("2026-12-02T01:00:00Z")), None);
        // 12:00 local: the next opens at 02:00 local tomorrow.
        assert_eq!(
            window_wait(&nightly, &tz, at("2026-12-02T10:00:00Z")),
            Some(at("2026-12-03T00:00:00Z"))
        );
        // A window across midnight, opened yesterday, is still open.
        let late = [window(None, "22:00", "02:00")];
        assert_eq!(window_wait(&late, &tz, at("2026-12-01T23:30:00Z")), None);
        assert_eq!(
            window_wait(&late, &tz, at("2026-12-02T01:00:00Z")),
            Some(at("2026-12-02T20:00:00Z"))
        );
        // Only on Mondays (1): from Wednesday 2 December 2026, next Monday the 7th.
        let mondays = [window(Some(vec![1]), "09:00", "10:00")];
        assert_eq!(
            window_wait(&mondays, &tz, at("2026-12-02T10:00:00Z")),
            Some(at("2026-12-07T07:00:00Z"))
        );
        // No windows: any time; UTC for a screen of no synagogue.
        assert_eq!(window_wait(&[], &tz, at("2026-12-02T10:00:00Z")), None);
        assert_eq!(
            window_wait(&nightly, &Utc, at("2026-12-02T10:00:00Z")),
            Some(at("2026-12-03T02:00:00Z"))
        );
    }

    #[test]
    fn a_window_closes_at_its_end_or_at_the_end_of_one_it_runs_into() {
        let tz = chrono_tz::Asia::Jerusalem; // UTC+2 in December
        let night = [window(None, "22:00", "07:00")];
        // 23:30 local: closes at 07:00 local tomorrow; 06:00 local: at 07:00 today.
        assert_eq!(
            window_close(&night, &tz, at("2026-12-02T21:30:00Z")),
            Some(at("2026-12-03T05:00:00Z"))
        );
        assert_eq!(
            window_close(&night, &tz, at("2026-12-03T04:00:00Z")),
            Some(at("2026-12-03T05:00:00Z"))
        );
        assert_eq!(window_close(&night, &tz, at("2026-12-03T10:00:00Z")), None);
        let chained = [window(None, "22:00", "07:00"), window(None, "06:00", "09:00")];
        assert_eq!(
            window_close(&chained, &tz, at("2026-12-02T21:30:00Z")),
            Some(at("2026-12-03T07:00:00Z"))
        );
        assert_eq!(window_close(&[], &tz, at("2026-12-02T21:30:00Z")), None);
    }

    #[test]
    fn windows_across_a_clock_change() {
        // New York springs forward at 02:00 on 8 March 2026: 02:30 does not exist that day.
        let tz = chrono_tz::America::New_York;
        let w = [window(None, "02:30", "04:00")];
        let next = window_wait(&w, &tz, at("2026-03-08T05:00:00Z"));
        assert_eq!(next, Some(at("2026-03-08T07:30:00Z")), "03:30 EDT, an hour on");
    }
}
