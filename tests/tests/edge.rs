//! The HTTP edge and the data directory under abuse: no client can add metric series at will,
//! hold connections open without sending, or take every connection; readiness answers in plain
//! words; one tenant cannot take every pending command; secrets at rest are private and a key
//! file others can read stops the server.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use luach_tests::{MongoWire, Must, TestApp, spawn_app, wait_for};
use serde_json::json;

fn raw(app: &TestApp, request: &str) -> String {
    let mut stream = TcpStream::connect(app.http).must();
    stream.set_read_timeout(Some(Duration::from_secs(10))).must();
    stream.write_all(request.as_bytes()).must();
    let mut out = String::new();
    let _ = stream.read_to_string(&mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_methods_add_no_metric_series() {
    let app = spawn_app(|_| {}).await;
    for method in ["RND123", "XYZZY", "FOO"] {
        let answer = raw(
            &app,
            &format!("{method} / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"),
        );
        assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    }
    let text = app.api.metrics_text().await;
    assert!(!text.contains("RND123") && !text.contains("XYZZY"), "{text}");
    assert!(text.contains("method=\"other\""), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_connections_are_capped() {
    let app = spawn_app(|c| {
        c.http.header_read_timeout_secs = 1;
        c.http.max_connections = 4;
    })
    .await;
    // Headers that never finish: the server closes the connection.
    let mut slow = TcpStream::connect(app.http).must();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n").must();
    slow.set_read_timeout(Some(Duration::from_secs(10))).must();
    let started = Instant::now();
    let mut buf = [0u8; 512];
    let n = slow.read(&mut buf).unwrap_or(0);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "held open for {:?}",
        started.elapsed()
    );
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(n == 0 || answer.starts_with("HTTP/1.1 408"), "{answer}");

    // Connections beyond the cap are closed at once; the server still serves within it.
    let idle: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(app.http).must()).collect();
    let over = wait_for("a refused connection", Duration::from_secs(10), || {
        let addr = app.http;
        async move {
            let mut extra = TcpStream::connect(addr).ok()?;
            extra.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
            let _ = extra.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n");
            let mut buf = [0u8; 64];
            // Closed without an answer.
            matches!(extra.read(&mut buf), Ok(0) | Err(_)).then_some(())
        }
    })
    .await;
    let () = over;
    drop(idle);
    // Once the idle ones are gone, requests are served again.
    let api = app.api.clone();
    wait_for(
        "service after the idle connections closed",
        Duration::from_secs(10),
        || {
            let api = api.clone();
            async move { (api.get("/healthz").await.0 == 200).then_some(()) }
        },
    )
    .await;
    let text = app.api.metrics_text().await;
    let refused: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("luach_http_connections_refused_total "))
        .and_then(|v| v.trim().parse().ok())
        .must();
    assert!(refused >= 1.0, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_answers_in_plain_words() {
    let mongo = MongoWire::start();
    let app = spawn_app(|c| c.store.url = mongo.url.clone().into()).await;
    assert_eq!(app.api.get("/readyz").await.0, 200);
    drop(mongo);
    let (status, body) = wait_for("not ready", Duration::from_secs(30), || {
        let api = app.api.clone();
        async move {
            let (status, body) = api.get("/readyz").await;
            (status == 503).then_some((status, body))
        }
    })
    .await;
    assert_eq!(status, 503);
    let store = body["checks"]["store"]["error"].as_str().must();
    assert!(
        store == "store unavailable" || store == "store did not answer in time",
        "raw errors must not leak: {body}"
    );
}

/// A FakeScreen on the plain listener: says hello, never acknowledges a command.
async fn silent_screen(app: &TestApp, device: &str) -> rumqttc::AsyncClient {
    use rumqttc::{AsyncClient, MqttOptions};
    let mut options = MqttOptions::new(device, "127.0.0.1", app.mqtt.port());
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(options, 16);
    tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    luach_tests::publish_hello(&client, device).await;
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenant_cannot_take_every_pending_command() {
    let app = spawn_app(|c| c.commands.max_pending_per_tenant = 1).await;
    let _a = silent_screen(&app, "silenta1").await;
    let other = app.user("other", "tenant_admin", "admin@other.example").await;
    wait_for("silenta1 online", Duration::from_secs(20), || {
        let api = app.api.clone();
        async move { (api.get("/api/v1/devices/silenta1").await.1["data"]["status"] == "online").then_some(()) }
    })
    .await;
    // The development listener registers unknown screens in `default`; move one to `other`
    // by pre-registering it there before it says hello.
    assert_eq!(other.post("/api/v1/devices", &json!({"id": "silentb1"})).await.0, 201);
    let _b = silent_screen(&app, "silentb1").await;
    wait_for("silentb1 online", Duration::from_secs(20), || {
        let api = other.clone();
        async move { (api.get("/api/v1/devices/silentb1").await.1["data"]["status"] == "online").then_some(()) }
    })
    .await;
    let api = app.api.clone();
    let first = tokio::spawn(async move {
        api.post("/api/v1/devices/silenta1/ping?timeout_ms=4000", &json!({}))
            .await
    });
    // Once the first command is out and waits for its acknowledgement...
    wait_for("the first command sent", Duration::from_secs(10), || {
        let api = app.api.clone();
        async move {
            let text = api.metrics_text().await;
            text.lines()
                .any(|l| l == "luach_mqtt_messages_out_total{kind=\"command\"} 1")
                .then_some(())
        }
    })
    .await;
    // ...the tenant's second command is refused...
    let (status, second) = app
        .api
        .post("/api/v1/devices/silenta1/ping?timeout_ms=100", &json!({}))
        .await;
    assert_eq!(status, 429, "{second}");
    assert_eq!(second["error"]["code"], "too_many_requests", "{second}");
    // ...while another tenant's command still goes out (and times out: the screen is silent).
    let (status, body) = other
        .post("/api/v1/devices/silentb1/ping?timeout_ms=500", &json!({}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (504, Some("device_timeout")),
        "{body}"
    );
    assert_eq!(first.await.must().0, 504);
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).must().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_at_rest_are_private_and_loose_keys_stop_the_server() {
    let app = spawn_app(|_| {}).await;
    let dir = app.data_dir().to_owned();
    // Something is written, so the WAL exists.
    assert_eq!(app.api.post("/api/v1/devices", &json!({"id": "perm1"})).await.0, 201);
    assert_eq!(mode(&dir) & 0o077, 0, "data directory {:o}", mode(&dir));
    for file in [
        "luach.sqlite3",
        "luach.sqlite3-wal",
        "auth/jwt.key",
        "audit/chain.key",
        "pki/ca.key",
    ] {
        let path = dir.join(file);
        assert_eq!(mode(&path) & 0o077, 0, "{file} is {:o}", mode(&path));
    }
    for sub in ["auth", "audit", "pki"] {
        assert_eq!(mode(&dir.join(sub)) & 0o077, 0, "{sub}/ is {:o}", mode(&dir.join(sub)));
    }
    app.shutdown.cancel();

    // A key file someone loosened: the server refuses to start and says which and why.
    for file in ["auth/jwt.key", "audit/chain.key", "pki/ca.key"] {
        let path = dir.join(file);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).must();
        let mut config = luach_control_plane::Config {
            data_dir: dir.clone(),
            ..Default::default()
        };
        config.http.addr = "127.0.0.1:0".parse().must();
        config.mqtt.listen = "127.0.0.1:0".parse().must();
        config.mqtt.tls_listen = "127.0.0.1:0".parse().must();
        let started = luach_control_plane::Application::build(config).await;
        let message = match started {
            Ok(_) => panic!("started with {file} at 0644"),
            Err(e) => format!("{e:#}"),
        };
        assert!(
            message.contains(file.rsplit('/').next().must()) && message.contains("644"),
            "{message}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).must();
    }
}
