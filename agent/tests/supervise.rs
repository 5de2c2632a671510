//! `luach-agent supervise` as a state machine over real processes: a version on trial that
//! exits at start, one that hangs, a crash in the middle of a rollback, and a crash before
//! the switch. The slots hold small programs that write which version runs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use luach_agent::update::journal::{Ending, Journal, Trial};
use luach_agent::update::layout::Link;
use luach_agent::update::{JournalFile, Layout};
use luach_ota::Version;

fn v(s: &str) -> Version {
    Version::parse(s).unwrap_or_else(|e| panic!("{e}"))
}

/// A program that appends `name` to `log` and then behaves as `then` says.
fn program(dir: &Path, name: &str, log: &Path, then: &str) -> PathBuf {
    let path = dir.join(format!("{name}.sh"));
    let body = format!("#!/bin/sh\necho {name} >> {}\n{then}\n", log.display());
    std::fs::write(&path, body).unwrap_or_else(|e| panic!("{e}"));
    path
}

/// An install dir running 0.1.0 (which keeps running), with 0.2.0 staged and switched in on
/// trial; `new` is what 0.2.0 does.
fn trial_of(dir: &Path, new: &str) -> (Layout, PathBuf) {
    let log = dir.join("runs.log");
    let layout = Layout::new(dir.join("install"));
    let old = program(dir, "0.1.0", &log, "exec sleep 600");
    let new = program(dir, "0.2.0", &log, new);
    layout
        .install_first(&old, &v("0.1.0"), None)
        .unwrap_or_else(|e| panic!("{e}"));
    layout.stage(&v("0.2.0"), &new, b"{}").unwrap_or_else(|e| panic!("{e}"));
    JournalFile::new(&layout.update_dir())
        .save(&Journal {
            highest_installed: Some(v("0.1.0")),
            trial: Some(Trial {
                command_id: "job.1.1".into(),
                version: v("0.2.0"),
                previous: v("0.1.0"),
                starts: 0,
                deadline: None,
                rolling_back: None,
            }),
            ..Journal::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
    layout
        .point(Link::Previous, &v("0.1.0"))
        .unwrap_or_else(|e| panic!("{e}"));
    layout
        .point(Link::Current, &v("0.2.0"))
        .unwrap_or_else(|e| panic!("{e}"));
    (layout, log)
}

struct Supervisor(Child);

impl Drop for Supervisor {
    /// `SIGTERM`, as the service manager stops it: the supervisor stops its agent first.
    fn drop(&mut self) {
        let pid = i32::try_from(self.0.id()).ok().and_then(rustix::process::Pid::from_raw);
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn supervise(layout: &Layout, window_secs: u64, kill_at: Option<&str>) -> Supervisor {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_luach-agent"));
    cmd.args(["supervise", "--install-dir"])
        .arg(layout.root())
        .args(["--health-window-secs", &window_secs.to_string(), "--", "run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(point) = kill_at {
        cmd.env(luach_agent::update::KILL_AT_ENV, point);
    }
    Supervisor(cmd.spawn().unwrap_or_else(|e| panic!("{e}")))
}

fn runs(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Waits (up to a minute) until `done` holds.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn journal(layout: &Layout) -> Journal {
    JournalFile::new(&layout.update_dir())
        .load()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn assert_rolled_back(layout: &Layout, log: &Path, code: &str) {
    wait_for("the old version to run again", || {
        runs(log).last().is_some_and(|r| r == "0.1.0")
    });
    let j = journal(layout);
    assert_eq!(layout.version(Link::Current).ok().flatten(), Some(v("0.1.0")));
    assert!(j.trial.is_none(), "{j:?}");
    assert!(j.bad.contains(&v("0.2.0")), "the version is not tried again: {j:?}");
    assert_eq!(j.highest_installed, Some(v("0.1.0")), "the counter stays");
    let last = j.last.unwrap_or_else(|| panic!("an outcome"));
    assert_eq!(
        (last.ending, last.command_id.as_str(), last.reported),
        (Ending::RolledBack, "job.1.1", false)
    );
    assert_eq!(last.why.map(|w| w.code), Some(code.to_owned()));
}

#[test]
fn a_version_that_exits_at_start_is_rolled_back_after_three_starts() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (layout, log) = trial_of(dir.path(), "exit 3");
    let _supervisor = supervise(&layout, 600, None);
    assert_rolled_back(&layout, &log, "crashed_at_start");
    assert_eq!(runs(&log), ["0.2.0", "0.2.0", "0.2.0", "0.1.0"]);
}

#[test]
fn a_version_that_hangs_is_stopped_and_rolled_back_when_the_window_passes() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (layout, log) = trial_of(dir.path(), "exec sleep 600");
    let started = Instant::now();
    let _supervisor = supervise(&layout, 2, None);
    assert_rolled_back(&layout, &log, "health_timeout");
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(runs(&log), ["0.2.0", "0.1.0"]);
}

#[test]
fn a_crash_in_the_middle_of_a_rollback_is_finished_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (layout, log) = trial_of(dir.path(), "exit 3");
    let mut first = supervise(&layout, 600, Some("rollback"));
    let status = first.0.wait().unwrap_or_else(|e| panic!("{e}"));
    assert!(!status.success(), "killed at the rollback: {status:?}");
    let j = journal(&layout);
    let trial = j.trial.unwrap_or_else(|| panic!("still on trial"));
    assert_eq!(trial.rolling_back.map(|w| w.code), Some("crashed_at_start".to_owned()));
    assert_eq!(
        layout.version(Link::Current).ok().flatten(),
        Some(v("0.2.0")),
        "killed before the switch"
    );
    let _second = supervise(&layout, 600, None);
    assert_rolled_back(&layout, &log, "crashed_at_start");
}

#[test]
fn a_crash_before_the_switch_leaves_the_old_version_and_says_so() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (layout, log) = trial_of(dir.path(), "exit 3");
    // The old version recorded the trial, then died before switching.
    layout
        .point(Link::Current, &v("0.1.0"))
        .unwrap_or_else(|e| panic!("{e}"));
    let _supervisor = supervise(&layout, 600, None);
    wait_for("the old version", || runs(&log) == ["0.1.0"]);
    let j = journal(&layout);
    assert!(j.trial.is_none() && j.bad.is_empty(), "{j:?}");
    let last = j.last.unwrap_or_else(|| panic!("an outcome"));
    assert_eq!(last.ending, Ending::Refused);
    assert_eq!(last.why.map(|w| w.code), Some("interrupted".to_owned()));
}
