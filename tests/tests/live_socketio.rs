//! Live status over Socket.IO, checked with the official `socket.io-client` (npm).

use std::process::Stdio;
use std::time::Duration;

use luach_tests::{RedisServer, Sim, node_script, spawn_app};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

struct Watcher {
    child: Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Watcher {
    /// Watches `device` with `token` (None: no credentials in the handshake).
    fn start(base: &str, device: &str, token: Option<&str>) -> Self {
        let mut command = Command::new("node");
        if let Some(t) = token {
            command.env("LUACH_TOKEN", t);
        }
        let mut child = command
            .arg(node_script("live_watch.mjs"))
            .args([base, device])
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

    async fn expect(&mut self, want: &str) {
        let line = tokio::time::timeout(Duration::from_secs(60), self.lines.next_line()).await;
        match line {
            Ok(Ok(Some(l))) if l == want => {}
            other => panic!("expected {want:?} from socket.io-client, got {other:?}"),
        }
    }

    /// Fails if the watcher prints anything within `quiet`.
    async fn expect_nothing(&mut self, quiet: Duration) {
        if let Ok(line) = tokio::time::timeout(quiet, self.lines.next_line()).await {
            panic!("expected silence from socket.io-client, got {line:?}");
        }
    }

    async fn expect_success(mut self) {
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await;
        assert!(
            matches!(status, Ok(Ok(s)) if s.success()),
            "socket.io-client watcher failed: {status:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_io_client_sees_device_online_metrics_offline() {
    let app = spawn_app(|_| {}).await;
    let base = format!("http://{}", app.http);
    let mut watcher = Watcher::start(&base, "livews00000", app.api.token.as_deref());
    // Another tenant's viewer, watching the same device id, must see nothing of it.
    let stranger = app.user("other-shul", "viewer", "viewer@other.example").await;
    let mut foreign = Watcher::start(&base, "livews00000", stranger.token.as_deref());
    foreign.expect("ready").await;
    watcher.expect("ready").await;
    let mut sim = Sim::start(&app.api, 1, "livews", &[]).await;
    watcher.expect("online").await;
    watcher.expect("metrics").await;
    sim.kill();
    watcher.expect("offline").await;
    watcher.expect_success().await;
    foreign.expect_nothing(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_without_valid_credentials_are_refused() {
    let app = spawn_app(|_| {}).await;
    let base = format!("http://{}", app.http);
    let mut anonymous = Watcher::start(&base, "x", None);
    anonymous
        .expect("refused: authentication required: connect with auth: {token}")
        .await;
    let mut forged = Watcher::start(&base, "x", Some("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."));
    forged.expect("refused: invalid credentials").await;
    let gabbai = app.user("default", "gabbai", "gabbai@default.example").await;
    let mut allowed = Watcher::start(&base, "x", gabbai.token.as_deref());
    allowed.expect("ready").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_adapter_fans_events_out_between_replicas() {
    // Two replicas share a Redis; the client watches replica B while the device connects to
    // replica A's broker.
    let redis = RedisServer::start();
    let with_redis = |c: &mut luach_control_plane::Config| c.redis = Some(redis.url.clone().into());
    let a = spawn_app(with_redis).await;
    let b = spawn_app(with_redis).await;
    let mut watcher = Watcher::start(&format!("http://{}", b.http), "fanout00000", b.api.token.as_deref());
    watcher.expect("ready").await;
    let mut sim = Sim::start(&a.api, 1, "fanout", &[]).await;
    watcher.expect("online").await;
    watcher.expect("metrics").await;
    sim.kill();
    watcher.expect("offline").await;
    watcher.expect_success().await;
}
