//! Test harness: starts Luach's real binaries and the real services the tests talk to.
//!
//! - [`Server`] runs `luach-server` as a child process (or [`spawn_app`] runs the application
//!   in-process on port 0), each with its own data directory.
//! - [`Sim`] runs `luach-agent sim` as a child process that a test can kill.
//! - [`MongoWire`] starts a SecantusDB MongoDB-wire server; [`redis_url`] starts a private Redis.
//! - [`wait_for`] polls a condition until a deadline: tests never sleep to wait.
//!
//! Binaries are found beside the test executable (`target/<profile>/`); `scripts/test.sh`
//! builds them first. A missing service is a failure, never a skip: run `scripts/test.sh`,
//! which installs everything the suite needs.

mod api;
mod process;
mod services;

pub use api::Api;
pub use process::{Server, ServerOptions, Sim, bin_path, free_port};
pub use services::{MongoWire, RedisServer, node_script, python};

use std::future::Future;
use std::time::{Duration, Instant};

/// `.must()`: unwraps a result in a test, panicking with the error's message.
pub trait Must<T> {
    fn must(self) -> T;
}

impl<T, E: std::fmt::Display> Must<T> for Result<T, E> {
    #[track_caller]
    fn must(self) -> T {
        self.unwrap_or_else(|e| panic!("{e}"))
    }
}

/// Polls `check` every 100 ms until it returns `Some`, or fails after `limit` with `what`.
pub async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An in-process application on ephemeral ports with its own data directory.
pub struct TestApp {
    pub api: Api,
    pub http: std::net::SocketAddr,
    pub mqtt: std::net::SocketAddr,
    pub shutdown: tokio_util::sync::CancellationToken,
    _data: tempfile::TempDir,
}

/// Starts the application in-process. `configure` adjusts the config before start.
pub async fn spawn_app(configure: impl FnOnce(&mut luach_control_plane::Config)) -> TestApp {
    let data = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let mut config = luach_control_plane::Config::default();
    config.http.addr = "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}"));
    config.mqtt.listen = "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}"));
    config.data_dir = data.path().to_owned();
    configure(&mut config);
    let app = luach_control_plane::Application::build(config)
        .await
        .unwrap_or_else(|e| panic!("application failed to start: {e:#}"));
    let http = app.http_addr();
    let mqtt = app.mqtt_addr();
    let shutdown = app.shutdown_token();
    tokio::spawn(async move {
        if let Err(e) = app.run_until_stopped().await {
            eprintln!("application stopped with error: {e:#}");
        }
    });
    TestApp {
        api: Api::new(format!("http://{http}")),
        http,
        mqtt,
        shutdown,
        _data: data,
    }
}

/// Fails unless `promtool check metrics` accepts `text` (Debian package `prometheus`).
pub fn promtool_check(text: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("promtool not available ({e}); scripts/test.sh installs the prometheus package"));
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .unwrap_or_else(|e| panic!("writing to promtool: {e}"));
    }
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "promtool rejected /metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
