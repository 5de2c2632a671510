//! Live status over Socket.IO, checked with the official `socket.io-client` (npm).

use std::time::Duration;

use luach_tests::{LiveWatcher, RedisServer, Sim, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_io_client_sees_device_online_metrics_offline() {
    let app = spawn_app(|_| {}).await;
    let base = format!("http://{}", app.http);
    let mut watcher = LiveWatcher::start(&base, "livews00000", app.api.token.as_deref());
    // Another tenant's viewer, watching the same device id, must see nothing of it.
    let stranger = app.user("other-shul", "viewer", "viewer@other.example").await;
    let mut foreign = LiveWatcher::start(&base, "livews00000", stranger.token.as_deref());
    foreign.expect("ready").await;
    watcher.expect("ready").await;
    let mut sim = Sim::start(&app.api, 1, "livews", &[]).await;
    watcher.expect("online").await;
    watcher.expect("metrics").await;
    sim.kill();
    watcher.expect("offline: last_will").await;
    watcher.expect_success().await;
    foreign.expect_nothing(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_without_valid_credentials_are_refused() {
    let app = spawn_app(|_| {}).await;
    let base = format!("http://{}", app.http);
    let mut anonymous = LiveWatcher::start(&base, "x", None);
    anonymous
        .expect("refused: authentication required: connect with auth: {token}")
        .await;
    let mut forged = LiveWatcher::start(&base, "x", Some("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."));
    forged.expect("refused: invalid credentials").await;
    let gabbai = app.user("default", "gabbai", "gabbai@default.example").await;
    let mut allowed = LiveWatcher::start(&base, "x", gabbai.token.as_deref());
    allowed.expect("ready").await;
}

/// Two replicas share a Redis (restarted under them first when `restart` is set); a client
/// watches replica B while a screen `PREFIX00000` connects to replica A's broker and then
/// drops: B's client sees it come online, report and go offline.
async fn events_cross_replicas(prefix: &str, restart: bool) {
    let mut redis = RedisServer::start();
    let with_redis = |c: &mut luach_control_plane::Config| c.redis = Some(redis.url.clone().into());
    let a = spawn_app(with_redis).await;
    let b = spawn_app(with_redis).await;
    if restart {
        // Redis goes away under both replicas and comes back empty.
        redis.restart();
    }
    let device = format!("{prefix}00000");
    let mut watcher = LiveWatcher::start(&format!("http://{}", b.http), &device, b.api.token.as_deref());
    watcher.expect("ready").await;
    let mut sim = Sim::start(&a.api, 1, prefix, &[]).await;
    watcher.expect("online").await;
    watcher.expect("metrics").await;
    sim.kill();
    watcher.expect("offline: last_will").await;
    watcher.expect_success().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_adapter_fans_events_out_between_replicas() {
    events_cross_replicas("fanout", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_events_cross_replicas_again_after_redis_restarts() {
    events_cross_replicas("return", true).await;
}
