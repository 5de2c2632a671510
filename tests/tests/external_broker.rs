//! External broker mode end to end: `luach-server broker-config mosquitto` writes Mosquitto's
//! configuration, a private Mosquitto 2 (Debian package) runs with it, `luach-server` connects
//! to it as a client over mutual TLS, and screens enrolled through the REST API connect to
//! Mosquitto with their certificates. Revocation reaches the broker through the files the
//! server rewrites (ACL at once, after the SIGHUP it sends; CRL at the next start).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use luach_broker::BrokerMode;
use luach_schemas::{DownKind, Topic};
use luach_tests::mtls::{MtlsDevice, WAIT, csr, enrol_with_token, wait_status};
use luach_tests::{Mosquitto, Must, TestApp, bin_path, bulk_token, free_port, spawn_app};
use serde_json::json;

/// An installation's data directory and the Mosquitto configured for it.
struct Setup {
    _dir: tempfile::TempDir,
    data_dir: PathBuf,
    broker_dir: PathBuf,
    devices_port: u16,
    control_port: u16,
    /// The store both the CLI and the server use (default: SQLite in `data_dir`).
    store_url: Option<String>,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().must();
        Self {
            data_dir: dir.path().join("state"),
            broker_dir: dir.path().join("mosquitto"),
            devices_port: free_port(),
            control_port: free_port(),
            store_url: None,
            _dir: dir,
        }
    }

    /// The configuration file both the CLI and the server read.
    fn config_file(&self) -> PathBuf {
        let path = self.data_dir.with_file_name("luach.toml");
        let store = self
            .store_url
            .as_ref()
            .map(|url| format!("\n[store]\nurl = {url:?}\n"))
            .unwrap_or_default();
        std::fs::write(
            &path,
            format!(
                "data_dir = {data:?}\n\n[http]\npublic_mqtt_tls = \"127.0.0.1:{devices}\"\n\n[mqtt]\nmode = \"external\"\n\n\
                 [mqtt.external]\nhost = \"localhost\"\nport = {control}\n{store}",
                data = self.data_dir.display().to_string(),
                devices = self.devices_port,
                control = self.control_port,
            ),
        )
        .must();
        path
    }

    /// Runs `luach-server broker-config mosquitto` as an operator would.
    fn broker_config(&self) -> String {
        let out = Command::new(bin_path("luach-server"))
            .arg("--config")
            .arg(self.config_file())
            .args(["broker-config", "mosquitto", "--out"])
            .arg(&self.broker_dir)
            .args(["--devices-bind", "127.0.0.1", "--devices-port"])
            .arg(self.devices_port.to_string())
            .args(["--control-bind", "127.0.0.1", "--control-port"])
            .arg(self.control_port.to_string())
            .output()
            .must();
        let (ok, text) = luach_tests::outcome(&out);
        assert!(ok, "broker-config failed: {text}");
        text
    }

    /// The server in external mode, rewriting the broker's files and signalling `mosquitto`.
    async fn app(&self, mosquitto: &Mosquitto) -> TestApp {
        let (data_dir, broker_dir) = (self.data_dir.clone(), self.broker_dir.clone());
        let (devices, control, pid) = (self.devices_port, self.control_port, mosquitto.pid());
        let store_url = self.store_url.clone();
        spawn_app(move |c| {
            c.data_dir = data_dir;
            if let Some(url) = store_url {
                c.store.url = url.into();
            }
            c.presence.auto_register = false;
            c.http.public_mqtt_tls = Some(format!("127.0.0.1:{devices}"));
            c.mqtt.mode = BrokerMode::External;
            c.mqtt.external.host = "localhost".into();
            c.mqtt.external.port = control;
            c.mqtt.external.config_dir = Some(broker_dir);
            c.mqtt.external.reload_command = vec!["kill".into(), "-HUP".into(), pid.to_string()];
        })
        .await
    }
}

impl Setup {
    /// Publishes as the control plane (its certificate from the service CA) with
    /// `mosquitto_pub`, on the control plane's listener.
    fn control_plane_publish(&self, topic: &str, payload: &[u8]) {
        let service = self.data_dir.join("pki").join("service");
        let file = self.broker_dir.join("payload.json");
        std::fs::write(&file, payload).must();
        let out = Command::new("mosquitto_pub")
            .args(["-h", "localhost", "-p", &self.control_port.to_string(), "-q", "1"])
            .arg("--cafile")
            .arg(self.broker_dir.join("device-ca.pem"))
            .arg("--cert")
            .arg(service.join("control-plane.pem"))
            .arg("--key")
            .arg(service.join("control-plane.key"))
            .args(["-i", "test-control-plane", "-t", topic, "-f"])
            .arg(&file)
            .output()
            .must();
        assert!(
            out.status.success(),
            "mosquitto_pub as the control plane: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screens_work_through_an_external_mosquitto_and_revoked_ones_are_cut_off() {
    let setup = Setup::new();
    let printed = setup.broker_config();
    for file in [
        "mosquitto.conf",
        "devices.acl",
        "control-plane.acl",
        "devices.crl",
        "device-ca.pem",
        "service-ca.pem",
        "broker.pem",
        "broker.key",
    ] {
        assert!(setup.broker_dir.join(file).exists(), "{file} missing: {printed}");
    }
    assert!(printed.contains("0 unexpired device certificates"), "{printed}");
    let mut mosquitto = Mosquitto::start(&setup.broker_dir.join("mosquitto.conf"), setup.devices_port);
    let app = setup.app(&mosquitto).await;

    // The server reports the external broker, and advertises it to agents.
    let (status, ready) = app.api.anonymous().get("/readyz").await;
    assert_eq!(status, 200, "{ready}");
    let metrics = app.api.metrics_text().await;
    assert!(metrics.contains("luach_mqtt_external_connected 1"), "{metrics}");
    let (_, boot) = app.api.anonymous().get("/api/v1/agent/bootstrap").await;
    assert_eq!(
        boot["data"]["mqtt_tls"].as_str(),
        Some(format!("127.0.0.1:{}", setup.devices_port).as_str())
    );

    // Two screens enrol; the ACL's patterns admit them: nothing is rewritten or reloaded.
    let token = bulk_token(&app.api, 3).await;
    let (key_a, csr_a) = csr("exta");
    let (status, issued_a) = enrol_with_token(&app.api, "exta", &csr_a, &token).await;
    assert_eq!(status, 201, "{issued_a}");
    let (key_b, csr_b) = csr("extb");
    let (_, issued_b) = enrol_with_token(&app.api, "extb", &csr_b, &token).await;
    let acl = read(&setup.broker_dir.join("devices.acl"));
    assert!(
        acl.contains("pattern read /tenants/%u/down/#") && !acl.lines().any(|l| l.starts_with("user ")),
        "{acl}"
    );
    assert!(!mosquitto.log().contains("Reloading config"), "{}", mosquitto.log());

    // exta speaks the earlier layout (up/{kind}), extb the one uplink topic.
    let port = setup.devices_port;
    let mut a = MtlsDevice::connect(port, "exta", &key_a, &issued_a).await;
    let mut b = MtlsDevice::connect(port, "extb", &key_b, &issued_b).await;
    b.one_topic = true;
    for (device, session) in [(&mut a, "a1"), (&mut b, "b1")] {
        device.listen().await;
        device.hello(session).await;
    }
    // Uplink: presence stored from the hello the control plane read through Mosquitto.
    wait_status(&app.api, "exta", "online").await;
    wait_status(&app.api, "extb", "online").await;
    // Downlink: the bundle notice sent on hello reaches each screen through Mosquitto.
    assert!(a.notice(WAIT).await.is_some(), "exta got no bundle notice");
    assert!(b.notice(WAIT).await.is_some(), "extb got no bundle notice");
    // An edit reaches both.
    let (status, _) = app
        .api
        .post("/api/v1/announcements", &json!({"text_en": "Through the broker"}))
        .await;
    assert_eq!(status, 201);
    let notice_a = a.notice(WAIT).await.must();
    assert!(b.notice(WAIT).await.is_some());

    // Revocation: the server rewrites the ACL (the enrolment's prefix denied everything) and
    // the CRL and signals Mosquitto, which then delivers nothing more to the revoked
    // enrolment, whoever sends it.
    let (status, _) = app.api.post("/api/v1/devices/exta/revoke", &json!({})).await;
    assert_eq!(status, 200);
    let acl = read(&setup.broker_dir.join("devices.acl"));
    assert!(
        acl.contains(&format!("user {}\ntopic deny #\n", a.prefix)) && !acl.contains(&format!("user {}", b.prefix)),
        "{acl}"
    );
    luach_tests::wait_for("mosquitto re-read its files", WAIT, || {
        let log = mosquitto.log();
        async move { log.contains("Reloading config").then_some(()) }
    })
    .await;
    // The control plane's identity publishes the notice to both down topics, a's first; b's
    // copy arriving proves a's would have by then.
    let payload =
        luach_schemas::Envelope::new("n1", DownKind::Bundle.as_str(), chrono::Utc::now(), notice_a).to_bytes();
    for prefix in [&a.prefix, &b.prefix] {
        setup.control_plane_publish(&Topic::Down(prefix.clone(), DownKind::Bundle).to_string(), &payload);
    }
    assert!(b.notice(WAIT).await.is_some(), "extb lost its notices");
    assert!(
        a.notice(Duration::from_millis(500)).await.is_none(),
        "the revoked screen still receives messages"
    );

    // After Mosquitto restarts (it reads the CRL when it starts), the revoked certificate is
    // refused at the handshake; the other screen reconnects and works.
    mosquitto.restart();
    let refused = MtlsDevice::try_connect(port, "exta", &key_a, &issued_a).await;
    assert!(
        refused.is_err(),
        "a revoked certificate connected to the restarted broker\n{}",
        mosquitto.log()
    );
    // The control plane reconnects by itself (after 1 s, then 2 s…).
    luach_tests::wait_for("the control plane reconnected", Duration::from_secs(40), || {
        let api = app.api.clone();
        async move {
            let metrics = api.metrics_text().await;
            (metrics.contains("luach_mqtt_external_connects_total 2")
                && metrics.contains("luach_mqtt_external_connected 1"))
            .then_some(())
        }
    })
    .await;
    let mut b = MtlsDevice::connect(port, "extb", &key_b, &issued_b).await;
    b.listen().await;
    b.hello("b2").await;
    assert!(
        b.notice(Duration::from_secs(40)).await.is_some(),
        "the control plane did not come back after the broker's restart"
    );
}

/// A burst of enrolments changes nothing the broker holds: its ACL's patterns admit every
/// screen by its certificate's CN, so no file is rewritten and Mosquitto reloads nothing, and
/// every screen works at once. A revocation then names the refused prefix. On MongoDB-wire,
/// so both stores' reads of the unexpired certificates are exercised (the other test uses
/// SQLite).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_enrolments_needs_no_broker_reload() {
    const SCREENS: usize = 12;
    let mongo = luach_tests::MongoWire::start();
    let mut setup = Setup::new();
    setup.store_url = Some(mongo.url.clone());
    setup.broker_config();
    let mosquitto = Mosquitto::start(&setup.broker_dir.join("mosquitto.conf"), setup.devices_port);
    let app = setup.app(&mosquitto).await;
    let token = bulk_token(&app.api, u32::try_from(SCREENS).must()).await;
    let acl_path = setup.broker_dir.join("devices.acl");
    let acl_before = read(&acl_path);

    let mut enrolments = tokio::task::JoinSet::new();
    for i in 0..SCREENS {
        let (api, token) = (app.api.clone(), token.clone());
        enrolments.spawn(async move {
            let device = format!("burst{i:02}");
            let (key, csr) = csr(&device);
            let (status, issued) = enrol_with_token(&api, &device, &csr, &token).await;
            assert_eq!(status, 201, "{issued}");
            (device, key, issued)
        });
    }
    let mut screens = Vec::new();
    while let Some(done) = enrolments.join_next().await {
        screens.push(done.must());
    }
    assert_eq!(read(&acl_path), acl_before, "enrolments rewrote the ACL");
    assert_eq!(
        mosquitto.log().matches("Reloading config").count(),
        0,
        "enrolments made the broker reload"
    );

    let mut devices = Vec::new();
    for (i, (device, key, issued)) in screens.iter().enumerate() {
        let mut session = MtlsDevice::connect(setup.devices_port, device, key, issued).await;
        session.listen().await;
        session.hello(&format!("s{i}")).await;
        devices.push(session);
    }
    for (device, _, _) in &screens {
        wait_status(&app.api, device, "online").await;
    }
    for session in &mut devices {
        assert!(session.notice(WAIT).await.is_some(), "a screen got no bundle notice");
    }

    // A revocation is the change that reaches the broker: the prefix is denied, one reload.
    let (status, _) = app.api.post("/api/v1/devices/burst00/revoke", &json!({})).await;
    assert_eq!(status, 200);
    let revoked = devices.iter().find(|d| d.id.as_str() == "burst00").must();
    let denied = format!("user {}\ntopic deny #\n", revoked.prefix);
    let acl = read(&acl_path);
    let entries = acl.lines().filter(|l| l.starts_with("user ")).count();
    assert!(acl.contains(&denied) && entries == 1, "{acl}");
    luach_tests::wait_for("mosquitto re-read its files", WAIT, || {
        let log = mosquitto.log();
        async move { log.contains("Reloading config").then_some(()) }
    })
    .await;
}

/// Bad external-mode configuration is refused with the setting named, before anything is
/// written or connected.
#[test]
fn bad_external_settings_get_clear_errors() {
    let setup = Setup::new();
    for (config, named) in [
        (
            "[mqtt]\nmode = \"external\"\n".to_owned(),
            "http.public_mqtt_tls",
        ),
        (
            "[http]\npublic_mqtt_tls = \"127.0.0.1:8883\"\n[mqtt]\nmode = \"external\"\n[mqtt.external]\nshare_group = \"a/b\"\n"
                .to_owned(),
            "external.share_group",
        ),
        (
            "[http]\npublic_mqtt_tls = \"127.0.0.1:8883\"\n[mqtt]\nmode = \"external\"\n[mqtt.external]\nkeep_alive_secs = 1\n"
                .to_owned(),
            "external.keep_alive_secs",
        ),
        ("[mqtt]\nmode = \"elsewhere\"\n".to_owned(), "mode"),
    ] {
        let file = setup.data_dir.with_file_name("bad.toml");
        std::fs::write(&file, format!("data_dir = {:?}\n{config}", setup.data_dir.display().to_string())).must();
        let out = Command::new(bin_path("luach-server"))
            .arg("--config")
            .arg(&file)
            .args(["broker-config", "mosquitto", "--out"])
            .arg(&setup.broker_dir)
            .env("RUST_BACKTRACE", "0")
            .output()
            .must();
        let (ok, text) = luach_tests::outcome(&out);
        assert!(!ok, "accepted:\n{config}");
        assert!(text.contains(named), "{named} not named for:\n{config}\n{text}");
        assert!(!text.contains("panicked"), "{text}");
        assert!(!setup.broker_dir.join("mosquitto.conf").exists(), "files written for:\n{config}");
    }
}
