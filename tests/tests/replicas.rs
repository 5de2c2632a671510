//! Two `luach-server` processes as replicas of one installation: one MongoDB-wire store
//! (SecantusDB), one Redis, one Mosquitto they both connect to (external broker mode, a shared
//! subscription splitting device uplink between them), and one data directory (the device CA
//! and keys, as a shared volume would hold them). Screens are test devices over mutual TLS that
//! answer every command "ok".

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use luach_tests::mtls::{MtlsDevice, WAIT, csr, enrol_with_token, wait_status};
use luach_tests::{
    Api, LiveWatcher, MongoWire, Mosquitto, Must, RedisServer, bin_path, bulk_token, free_port, wait_for,
};
use serde_json::json;

/// One replica: a `luach-server serve` child with its own HTTP port; killed on drop.
struct Replica {
    name: &'static str,
    child: Child,
    api: Api,
    log: PathBuf,
}

impl Replica {
    async fn start(name: &'static str, config: &Path, logs: &Path, token: &str) -> Self {
        let http = format!("127.0.0.1:{}", free_port());
        let log = logs.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).must();
        let child = Command::new(bin_path("luach-server"))
            .arg("--config")
            .arg(config)
            .args(["serve", "--http-addr", &http])
            .stdout(out.try_clone().must())
            .stderr(out)
            .spawn()
            .must();
        let mut replica = Self {
            name,
            child,
            api: Api::new(format!("http://{http}")).with_token(token),
            log,
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while replica.api.get("/readyz").await.0 != 200 {
            if let Ok(Some(status)) = replica.child.try_wait() {
                panic!("replica {name} exited with {status}:\n{}", replica.log());
            }
            assert!(
                std::time::Instant::now() < deadline,
                "replica {name} not ready:\n{}",
                replica.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        replica
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether this replica holds lease `name` now (its `/metrics`).
    async fn holds(&self, lease: &str) -> bool {
        self.api
            .metrics_text()
            .await
            .contains(&format!("luach_lease_held{{lease=\"{lease}\"}} 1"))
    }

    /// `luach_acks_relayed_total{outcome}` of this replica.
    async fn relayed(&self, outcome: &str) -> f64 {
        let series = format!("luach_acks_relayed_total{{outcome=\"{outcome}\"}}");
        self.api.counter(&series).await.unwrap_or(0.0)
    }

    /// Kills the process at once, like a crash.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("---- replica {} log ----\n{}", self.name, self.log());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_screens_and_a_killed_one_loses_no_command() {
    let mongo = MongoWire::start();
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().must();
    let data_dir = dir.path().join("state");
    let broker_dir = dir.path().join("mosquitto");
    let (devices_port, control_port) = (free_port(), free_port());
    let conf = broker_dir.join("mosquitto.conf");
    // The file the test's Mosquitto runs with (a copy of the generated one, see `Mosquitto`):
    // the replicas signal whichever process runs with it.
    let running = broker_dir.join("mosquitto-test.conf");
    let config = dir.path().join("luach.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {data:?}\nredis = {redis:?}\n\n[http]\npublic_mqtt_tls = \"127.0.0.1:{devices_port}\"\n\n\
             [store]\nurl = {store:?}\n\n[quotas]\napi_requests_per_minute = 0\n\n[mqtt]\nmode = \"external\"\n\n\
             [mqtt.external]\nhost = \"localhost\"\nport = {control_port}\nconfig_dir = {broker:?}\n\
             reload_command = [\"pkill\", \"-HUP\", \"-f\", {conf:?}]\n",
            data = data_dir.display().to_string(),
            redis = redis.url,
            store = mongo.url,
            broker = broker_dir.display().to_string(),
            conf = running.display().to_string(),
        ),
    )
    .must();
    let out = Command::new(bin_path("luach-server"))
        .arg("--config")
        .arg(&config)
        .args(["broker-config", "mosquitto", "--out"])
        .arg(&broker_dir)
        .args([
            "--devices-bind",
            "127.0.0.1",
            "--devices-port",
            &devices_port.to_string(),
        ])
        .args([
            "--control-bind",
            "127.0.0.1",
            "--control-port",
            &control_port.to_string(),
        ])
        .output()
        .must();
    let (ok, text) = luach_tests::outcome(&out);
    assert!(ok, "broker-config: {text}");
    let _mosquitto = Mosquitto::start(&conf, devices_port);
    let token = luach_tests::seed_tenant_admin(&data_dir, &["--store".into(), mongo.url.clone()]);

    // A first (it creates the device CA and keys in the shared directory), then B.
    let mut a = Replica::start("a", &config, dir.path(), &token).await;
    let mut b = Replica::start("b", &config, dir.path(), &token).await;

    // Two screens enrol through A and connect to Mosquitto; B sees them online (one store).
    let enrol = bulk_token(&a.api, 2).await;
    let mut screens = Vec::new();
    for (id, session) in [("rpa", "s-rpa"), ("rpb", "s-rpb")] {
        let (key, request) = csr(id);
        let (status, issued) = enrol_with_token(&a.api, id, &request, &enrol).await;
        assert_eq!(status, 201, "{issued}");
        let mut screen = MtlsDevice::connect(devices_port, id, &key, &issued).await;
        screen.listen().await;
        screens.push((screen, session));
    }
    // Live events cross replicas: watchers on both see the screen come online, whichever
    // replica received its hello.
    let base = |r: &Replica| r.api.base.clone();
    let mut watchers = vec![
        LiveWatcher::connect(&base(&a), "rpa", &token).await,
        LiveWatcher::connect(&base(&b), "rpa", &token).await,
    ];
    for (screen, session) in &mut screens {
        screen.hello(session).await;
    }
    for w in &mut watchers {
        w.expect("online").await;
    }
    wait_status(&b.api, "rpb", "online").await;
    for (screen, _) in &mut screens {
        assert!(
            screen.notice(WAIT).await.is_some(),
            "{}: no bundle notice on hello",
            screen.id
        );
    }

    // Direct commands through either replica are answered, whichever replica the screen's
    // acknowledgement reaches (Mosquitto hands uplink to the group's members in turn, so of
    // several pings in a row through one replica some are answered through the other).
    for (replica, device) in [(&a, "rpa"), (&b, "rpb")] {
        for round in 0..5 {
            let (status, body) = replica
                .api
                .post(&format!("/api/v1/devices/{device}/ping"), &json!({}))
                .await;
            assert_eq!(status, 200, "round {round}, ping {device} via {}: {body}", replica.name);
        }
    }
    let answered = a.relayed("answered").await + b.relayed("answered").await;
    assert!(answered > 0.0, "no acknowledgement crossed replicas in 10 pings");

    // A content edit through B reaches both screens.
    let (status, body) = b
        .api
        .post("/api/v1/announcements", &json!({"text_en": "From replica B"}))
        .await;
    assert_eq!(status, 201, "{body}");
    for (screen, _) in &mut screens {
        assert!(
            screen.notice(WAIT).await.is_some(),
            "{}: no notice after an edit on B",
            screen.id
        );
    }

    // One replica runs the job engine. A job made there, whose maker dies at once, is still
    // carried out by the other once the lease lapses.
    let holder_a = wait_for("a jobs lease holder", WAIT, || {
        let (a, b) = (&a, &b);
        async move {
            match (a.holds("jobs").await, b.holds("jobs").await) {
                (true, false) => Some(true),
                (false, true) => Some(false),
                _ => None,
            }
        }
    })
    .await;
    let (leader, survivor) = if holder_a { (&mut a, &b) } else { (&mut b, &a) };
    for (screen, _) in &mut screens {
        while screen.commands.try_recv().is_ok() {}
    }
    let job = leader
        .api
        .create_job(&json!({"command": {"type": "ping"}, "target": {"all": true}}))
        .await;
    leader.kill();
    let done = survivor.api.wait_job(&job, "completed", Duration::from_secs(90)).await;
    assert_eq!(
        done["counts"]["succeeded"],
        2,
        "{done}\nsurvivor's log:\n{}",
        survivor.log()
    );
    assert!(survivor.holds("jobs").await);
    for (screen, _) in &mut screens {
        let id = tokio::time::timeout(WAIT, screen.commands.recv()).await;
        assert!(
            matches!(&id, Ok(Some(id)) if id.starts_with(&job)),
            "{}: no command of job {job}: {id:?}",
            screen.id
        );
    }
    // And the survivor alone answers direct commands.
    let (status, body) = survivor.api.post("/api/v1/devices/rpa/ping", &json!({})).await;
    assert_eq!(status, 200, "{body}");
}
