//! The official `socket.io-client` (npm) watching Luach's `/live` namespace, as a process
//! (`tests/js/live_watch.mjs`), read line by line.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

use crate::node_script;

/// What the watcher prints: `ready`, `refused: …`, `online`, `metrics`, `offline: REASON` for
/// its device, and `disconnected: REASON` when the server ends the connection.
pub struct LiveWatcher {
    child: Child,
    lines: tokio::io::Lines<BufReader<ChildStdout>>,
}

impl LiveWatcher {
    /// Watches `device` on the server at `base` with `token` (None: no credentials).
    pub fn start(base: &str, device: &str, token: Option<&str>) -> Self {
        Self::spawn(base, device, token, None)
    }

    /// Watches the job executions of `device` instead: it prints `execution: STATE` for each
    /// `job:execution` event and exits after a final state.
    pub async fn connect_jobs(base: &str, device: &str, token: &str) -> Self {
        let mut watcher = Self::spawn(base, device, Some(token), Some("jobs"));
        watcher.expect("ready").await;
        watcher
    }

    /// Watches the progress of job `job`: it prints `progress: STATE` for each `job:progress`
    /// event of that job.
    pub async fn connect_progress(base: &str, job: &str, token: &str) -> Self {
        let mut watcher = Self::spawn(base, job, Some(token), Some("progress"));
        watcher.expect("ready").await;
        watcher
    }

    fn spawn(base: &str, device: &str, token: Option<&str>, mode: Option<&str>) -> Self {
        let mut command = Command::new("node");
        if let Some(t) = token {
            command.env("LUACH_TOKEN", t);
        }
        let mut child = command
            .arg(node_script("live_watch.mjs"))
            .args([base, device])
            .args(mode)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("node not available ({e}); scripts/test.sh installs it"));
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        Self {
            child,
            lines: BufReader::new(stdout).lines(),
        }
    }

    /// A connected watcher (it printed `ready`).
    pub async fn connect(base: &str, device: &str, token: &str) -> Self {
        let mut watcher = Self::start(base, device, Some(token));
        watcher.expect("ready").await;
        watcher
    }

    /// The next line is `want` (within a minute).
    pub async fn expect(&mut self, want: &str) {
        self.expect_within(want, Duration::from_secs(60)).await;
    }

    /// The next line is `want`, within `within`.
    pub async fn expect_within(&mut self, want: &str, within: Duration) {
        let line = tokio::time::timeout(within, self.lines.next_line()).await;
        match line {
            Ok(Ok(Some(l))) if l == want => {}
            other => panic!("expected {want:?} from socket.io-client within {within:?}, got {other:?}"),
        }
    }

    /// Nothing is printed within `quiet`.
    pub async fn expect_nothing(&mut self, quiet: Duration) {
        if let Ok(line) = tokio::time::timeout(quiet, self.lines.next_line()).await {
            panic!("expected silence from socket.io-client, got {line:?}");
        }
    }

    /// The watcher exits successfully (it saw its device online, then offline).
    pub async fn expect_success(mut self) {
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await;
        assert!(
            matches!(status, Ok(Ok(s)) if s.success()),
            "socket.io-client watcher failed: {status:?}"
        );
    }
}
