//! Real MQTT clients (Debian's `mosquitto_pub` / `mosquitto_sub`) against the embedded broker's
//! mutual-TLS listener, with certificates from `luach-pki`.
//!
//! Clients connect to `localhost`, never `127.0.0.1`: libmosquitto sends the host name as SNI
//! even when it is an IP address, and rustls 0.22 (rumqttd's TLS stack) answers an IP address
//! in SNI with a `decode_error` alert (rustls `src/msgs/handshake.rs:225-237`).

#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use luach_broker::{BrokerSettings, Devices, EmbeddedBroker, LocalLink, Publisher, Revoked, TlsFiles, TopicRules};
use luach_pki::{DeviceCa, DeviceKey, OffsetDateTime};
use rumqttc::{MqttOptions, Transport};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Longest wait for anything that should happen.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// The device rules of the control plane: its message kinds, nothing refused yet.
pub fn devices() -> Devices {
    Devices {
        rules: TopicRules::new(["hello", "heartbeat", "metrics", "telemetry", "ack", "event"]),
        revoked: Revoked::default(),
    }
}

/// A client certificate and key on disk.
#[derive(Debug, Clone)]
pub struct Creds {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The certificate's serial number (lower-case hex), for revocation lists.
    pub serial: String,
}

/// A temporary directory with a device CA and the broker's TLS identity.
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca: DeviceCa,
    pub ca_path: PathBuf,
    pub server: Creds,
}

impl Pki {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = DeviceCa::generate("Luach test device CA", luach_pki::Duration::days(365)).unwrap();
        let ca_path = dir.path().join("ca.pem");
        std::fs::write(&ca_path, ca.certificate_pem()).unwrap();
        let sans = ["localhost".to_owned(), "127.0.0.1".to_owned()];
        let server = ca
            .issue_server_certificate(&sans, luach_pki::Duration::days(1))
            .unwrap();
        let server = write_creds(
            dir.path(),
            "server",
            &server.certificate.pem,
            &server.key_pem,
            &server.certificate.serial,
        );
        Self {
            dir,
            ca,
            ca_path,
            server,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A device key generated "on the device" and a certificate `ca` issued for its CSR.
    pub fn device(
        &self,
        ca: &DeviceCa,
        file: &str,
        device_id: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Creds {
        let key = DeviceKey::generate().unwrap();
        let csr = key.csr_pem(device_id).unwrap();
        let cert = ca
            .issue_device_certificate(&csr, device_id, device_id, from, to)
            .unwrap();
        write_creds(self.dir.path(), file, &cert.pem, &key.to_pem(), &cert.serial)
    }

    /// A device certificate valid from five minutes ago for a day.
    pub fn current_device(&self, file: &str, device_id: &str) -> Creds {
        let now = OffsetDateTime::now_utc();
        self.device(
            &self.ca,
            file,
            device_id,
            now - luach_pki::Duration::minutes(5),
            now + luach_pki::Duration::days(1),
        )
    }

    /// Certificates for `device` the broker must refuse: one from another CA with the same
    /// name, and one of its own CA that expired yesterday.
    pub fn foreign_and_expired(&self, device: &str) -> (Creds, Creds) {
        let now = OffsetDateTime::now_utc();
        let stranger = DeviceCa::generate("Luach test device CA", luach_pki::Duration::days(30)).unwrap();
        let minutes = luach_pki::Duration::minutes;
        let days = luach_pki::Duration::days;
        let foreign = self.device(&stranger, "foreign", device, now - minutes(5), now + days(1));
        let expired = self.device(&self.ca, "expired", device, now - days(2), now - days(1));
        (foreign, expired)
    }

    /// Broker settings: mutual-TLS listener on a free port, plain listener as asked.
    pub fn settings(&self, plain_listener: bool) -> BrokerSettings {
        BrokerSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            plain_listener,
            tls_listener: true,
            tls_listen: "127.0.0.1:0".parse().unwrap(),
            tls: Some(TlsFiles {
                cert_path: self.server.cert.clone(),
                key_path: self.server.key.clone(),
                ca_path: self.ca_path.clone(),
            }),
            ..BrokerSettings::default()
        }
    }
}

pub fn write_creds(dir: &Path, name: &str, cert_pem: &str, key_pem: &str, serial: &str) -> Creds {
    let creds = Creds {
        cert: dir.join(format!("{name}.pem")),
        key: dir.join(format!("{name}.key")),
        serial: serial.to_owned(),
    };
    std::fs::write(&creds.cert, cert_pem).unwrap();
    std::fs::write(&creds.key, key_pem).unwrap();
    creds
}

/// Messages received by a test's client, `(topic, payload)`, kept once seen.
pub struct Inbox {
    rx: mpsc::Receiver<(String, String)>,
    /// Everything received so far.
    pub seen: Vec<(String, String)>,
}

impl Inbox {
    pub fn new(rx: mpsc::Receiver<(String, String)>) -> Self {
        Self { rx, seen: Vec::new() }
    }

    /// Waits until a message with `payload` arrived; true if it did within the deadline.
    pub fn wait(&mut self, payload: &str) -> bool {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if self.saw(payload) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            if let Ok(m) = self.rx.recv_timeout(left.min(Duration::from_millis(100))) {
                self.seen.push(m);
            }
        }
    }

    /// True if a message with `payload` has arrived so far.
    pub fn saw(&mut self, payload: &str) -> bool {
        while let Ok(m) = self.rx.try_recv() {
            self.seen.push(m);
        }
        self.seen.iter().any(|(_, p)| p == payload)
    }
}

/// A broker (the embedded one, or the connection to an external one) and the control plane's
/// link, on a runtime of their own so the test body can block on client processes.
pub struct Broker<B = EmbeddedBroker> {
    pub rt: tokio::runtime::Runtime,
    pub broker: B,
    pub publisher: Publisher,
    /// What the link received.
    pub inbox: Inbox,
}

/// A runtime for a broker and its link.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

impl Broker {
    pub fn start(settings: &BrokerSettings) -> Self {
        let rt = runtime();
        let (broker, link) = rt
            .block_on(EmbeddedBroker::start(settings, "/tenants/+/up/#", devices()))
            .unwrap_or_else(|e| panic!("broker did not start: {e}"));
        Self::with_link(rt, broker, link)
    }

    pub fn tls_port(&self) -> u16 {
        self.broker.tls_addr().unwrap().port()
    }

    pub fn plain_port(&self) -> u16 {
        self.broker.plain_addr().unwrap().port()
    }
}

impl<B> Broker<B> {
    /// Reads `link` on `rt` into the test's inbox.
    pub fn with_link(rt: tokio::runtime::Runtime, broker: B, mut link: LocalLink) -> Self {
        let publisher = link.publisher();
        let (tx, inbound) = mpsc::channel();
        rt.spawn(async move {
            while let Ok(m) = link.next().await {
                let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
                if tx.send((text(&m.topic), text(&m.payload))).is_err() {
                    break;
                }
            }
        });
        Self {
            rt,
            broker,
            publisher,
            inbox: Inbox::new(inbound),
        }
    }

    /// Publishes through the control plane's in-process link.
    pub fn link_publish(&self, topic: &str, payload: &str) {
        self.rt
            .block_on(self.publisher.publish(topic.to_owned(), payload.as_bytes().to_vec()))
            .unwrap();
    }

    /// Waits until the link has received `payload`; true if it did within the deadline.
    pub fn link_wait(&mut self, payload: &str) -> bool {
        self.inbox.wait(payload)
    }

    /// True if the link has received a message with `payload` (so far).
    pub fn link_saw(&mut self, payload: &str) -> bool {
        self.inbox.saw(payload)
    }
}

/// Fails the test (never skips it) when a client tool is missing.
pub fn require_tool(name: &str, package: &str) {
    if let Err(e) = Command::new(name).arg("--help").output() {
        panic!("{name} is required for this test and could not be run ({e}); install Debian's {package} package");
    }
}

fn tls_args(cmd: &mut Command, port: u16, ca: &Path, creds: Option<&Creds>) {
    cmd.args(["-h", "localhost", "-p", &port.to_string(), "--cafile"])
        .arg(ca);
    if let Some(c) = creds {
        cmd.arg("--cert").arg(&c.cert).arg("--key").arg(&c.key);
    }
}

/// What `mosquitto_pub` did.
#[derive(Debug)]
pub struct PubOutcome {
    pub status: ExitStatus,
    pub output: String,
}

impl PubOutcome {
    /// One line for the matrix.
    pub fn summary(&self) -> String {
        let last = self
            .output
            .lines()
            .filter(|l| !l.starts_with("Client "))
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" | ");
        format!("exit {}: {last}", self.status.code().unwrap_or(-1))
    }
}

/// `mosquitto_pub` over the TLS listener (`creds = None`: no client certificate).
pub fn tls_publish(
    port: u16,
    ca: &Path,
    creds: Option<&Creds>,
    client_id: &str,
    topic: &str,
    payload: &str,
    qos: u8,
) -> PubOutcome {
    let mut cmd = Command::new("mosquitto_pub");
    tls_args(&mut cmd, port, ca, creds);
    run_pub(cmd, client_id, topic, payload, qos)
}

/// `mosquitto_pub` over the plain listener.
pub fn plain_publish(port: u16, client_id: &str, topic: &str, payload: &str, qos: u8) -> PubOutcome {
    let mut cmd = Command::new("mosquitto_pub");
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
    run_pub(cmd, client_id, topic, payload, qos)
}

fn run_pub(mut cmd: Command, client_id: &str, topic: &str, payload: &str, qos: u8) -> PubOutcome {
    cmd.args([
        "-d",
        "-i",
        client_id,
        "-t",
        topic,
        "-m",
        payload,
        "-q",
        &qos.to_string(),
    ]);
    let out = cmd.output().unwrap();
    PubOutcome {
        status: out.status,
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// A running `mosquitto_sub -d -v` and everything it printed.
pub struct Sub {
    child: Child,
    lines: mpsc::Receiver<String>,
    pub log: Vec<String>,
}

impl Sub {
    /// `mosquitto_sub` with line-buffered output: piped, it would block-buffer its debug lines
    /// (SUBACK) until the next message.
    fn command() -> Command {
        let mut cmd = Command::new("stdbuf");
        cmd.args(["-oL", "-eL", "mosquitto_sub"]);
        cmd
    }

    /// Subscribes over the TLS listener.
    pub fn tls(port: u16, ca: &Path, creds: &Creds, client_id: &str, filter: &str) -> Self {
        let mut cmd = Self::command();
        tls_args(&mut cmd, port, ca, Some(creds));
        Self::spawn(cmd, client_id, filter)
    }

    /// Subscribes over the plain listener.
    pub fn plain(port: u16, client_id: &str, filter: &str) -> Self {
        let mut cmd = Self::command();
        cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
        Self::spawn(cmd, client_id, filter)
    }

    fn spawn(mut cmd: Command, client_id: &str, filter: &str) -> Self {
        // -W bounds the process's life even if the test forgets it.
        cmd.args(["-d", "-v", "-q", "1", "-W", "120", "-i", client_id, "-t", filter])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let (tx, lines) = mpsc::channel();
        for stream in [
            child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
            child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Self {
            child,
            lines,
            log: Vec::new(),
        }
    }

    fn drain(&mut self) {
        while let Ok(l) = self.lines.try_recv() {
            self.log.push(l);
        }
    }

    /// Waits for a printed line satisfying `pred`, or for the process to end.
    pub fn wait_for(&mut self, pred: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + DEADLINE;
        loop {
            self.drain();
            if self.log.iter().any(|l| pred(l)) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match self.lines.recv_timeout(left.min(Duration::from_millis(100))) {
                Ok(l) => self.log.push(l),
                // Both output streams closed: the process ended.
                Err(mpsc::RecvTimeoutError::Disconnected) => return self.log.iter().any(|l| pred(l)),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// Waits for the broker's SUBACK.
    pub fn subscribed(&mut self) -> bool {
        self.wait_for(|l| l.contains("received SUBACK"))
    }

    /// Waits until a message with `payload` was printed.
    pub fn received(&mut self, payload: &str) -> bool {
        self.wait_for(|l| is_message(l, payload))
    }

    /// True if a message with `payload` has been printed so far.
    pub fn saw(&mut self, payload: &str) -> bool {
        self.drain();
        self.log.iter().any(|l| is_message(l, payload))
    }

    /// Waits for the process to end; its exit status, or `None` if it still runs.
    pub fn wait_exit(&mut self) -> Option<ExitStatus> {
        let deadline = Instant::now() + DEADLINE;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.wait_for(|_| false);
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// True while the process runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The output lines that are not the client's own debug chatter.
    pub fn summary(&mut self) -> String {
        self.drain();
        self.log
            .iter()
            .filter(|l| !l.starts_with("Client "))
            .cloned()
            .collect::<Vec<_>>()
            .join(" | ")
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `-v` output line `topic payload`.
fn is_message(line: &str, payload: &str) -> bool {
    line.starts_with('/') && line.rsplit(' ').next() == Some(payload)
}

/// The authorisation matrix: what was tried, what was expected, what happened.
#[derive(Default)]
pub struct Matrix {
    rows: Vec<(String, &'static str, String, bool)>,
    /// Messages that reached a client or the link that must not have.
    pub unauthorised_deliveries: usize,
}

impl Matrix {
    pub fn row(&mut self, case: impl Into<String>, expected: &'static str, observed: impl Into<String>, ok: bool) {
        self.rows.push((case.into(), expected, observed.into(), ok));
    }

    pub fn leak(&mut self, case: &str, what: &str) {
        self.unauthorised_deliveries += 1;
        self.row(format!("{case}: LEAK"), "nothing delivered", what.to_owned(), false);
    }

    /// Prints the matrix and fails if any row failed or anything leaked.
    pub fn finish(self) {
        let mut report = String::from("\nauthorisation matrix:\n");
        for (case, expected, observed, ok) in &self.rows {
            report.push_str(&format!(
                "  [{}] {case}\n        expected: {expected}\n        observed: {observed}\n",
                if *ok { "ok" } else { "FAIL" }
            ));
        }
        report.push_str(&format!(
            "  unauthorised deliveries: {}\n",
            self.unauthorised_deliveries
        ));
        eprintln!("{report}");
        assert_eq!(self.unauthorised_deliveries, 0, "{report}");
        assert!(self.rows.iter().all(|r| r.3), "{report}");
    }
}

/// A TLS client configuration trusting the CA in `pki` with `creds` as client certificate.
pub fn client_config(pki: &Pki, creds: &Creds) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(&pki.ca_path).unwrap() {
        roots.add(ca.unwrap()).unwrap();
    }
    let chain = CertificateDer::pem_file_iter(&creds.cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&creds.key).unwrap();
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .unwrap(),
    )
}

/// A device's rumqttc client options for a mutual-TLS port on `localhost`.
pub fn device(pki: &Pki, creds: &Creds, port: u16, client_id: &str) -> MqttOptions {
    let mut options = MqttOptions::new(client_id, "localhost", port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_max_packet_size(256 * 1024, 256 * 1024);
    options.set_transport(Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(
        client_config(pki, creds),
    )));
    options
}

/// A TCP port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// A private Mosquitto 2 (Debian's `mosquitto` package) run with the configuration
/// `luach_broker::external::mosquitto::config` writes for the files in `dir`; stopped on drop.
pub struct Mosquitto {
    child: Child,
    dir: PathBuf,
}

impl Mosquitto {
    /// Starts it and waits until both listeners accept connections. `user root` keeps a
    /// root-run Mosquitto from switching to user `mosquitto`, who cannot read the test's files
    /// (it changes nothing when the test does not run as root).
    pub fn start(dir: &Path, listeners: &luach_broker::external::mosquitto::Listeners) -> Self {
        let conf = dir.join("mosquitto-test.conf");
        let text = luach_broker::external::mosquitto::config(dir, listeners);
        std::fs::write(&conf, format!("user root\n{text}")).unwrap();
        let log = std::fs::File::create(dir.join("mosquitto.log")).unwrap();
        let mut child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start mosquitto ({e}); install Debian's mosquitto package"));
        let deadline = Instant::now() + DEADLINE;
        for port in [listeners.devices_port, listeners.control_port] {
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "mosquitto exited ({status}): {}",
                        std::fs::read_to_string(dir.join("mosquitto.log")).unwrap_or_default()
                    );
                }
                assert!(Instant::now() < deadline, "mosquitto does not listen on {port}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Self {
            child,
            dir: dir.to_owned(),
        }
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("mosquitto.log")).unwrap_or_default()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A device that stays connected on one rumqttc connection, subscribing and publishing on it
/// as the agent does (a broker that takes the certificate's identity as client id allows a
/// device one connection at a time).
pub struct Device {
    client: rumqttc::AsyncClient,
    inbox: Inbox,
    /// Connections accepted and lost so far.
    connects: Arc<std::sync::atomic::AtomicUsize>,
    losses: Arc<std::sync::atomic::AtomicUsize>,
}

impl Device {
    /// Connects on `rt`, subscribes to `filter` and returns once the broker acknowledged both.
    pub fn connect(rt: &tokio::runtime::Runtime, options: MqttOptions, filter: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (client, mut events) = rumqttc::AsyncClient::new(options, 64);
        let (tx, inbound) = mpsc::channel();
        let (ready_tx, ready) = mpsc::channel();
        let connects = Arc::new(AtomicUsize::new(0));
        let losses = Arc::new(AtomicUsize::new(0));
        let (c, l) = (connects.clone(), losses.clone());
        rt.spawn(async move {
            loop {
                match events.poll().await {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                        c.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(ack))) => {
                        let _ = ready_tx.send(ack.return_codes);
                    }
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
                        if tx.send((p.topic.clone(), text(&p.payload))).is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => {
                        l.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        });
        rt.block_on(client.subscribe(filter, rumqttc::QoS::AtLeastOnce))
            .unwrap();
        let codes = ready.recv_timeout(DEADLINE).expect("no SUBACK");
        assert!(
            codes
                .iter()
                .all(|c| matches!(c, rumqttc::SubscribeReasonCode::Success(_))),
            "subscription to {filter} refused: {codes:?}"
        );
        Self {
            client,
            inbox: Inbox::new(inbound),
            connects,
            losses,
        }
    }

    /// Publishes at QoS 1.
    pub fn publish(&self, rt: &tokio::runtime::Runtime, topic: &str, payload: &str) {
        rt.block_on(
            self.client
                .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload.as_bytes().to_vec()),
        )
        .unwrap();
    }

    /// Waits until a message with `payload` arrived; true if it did within the deadline.
    pub fn received(&mut self, payload: &str) -> bool {
        self.inbox.wait(payload)
    }

    /// True if a message with `payload` has arrived so far.
    pub fn saw(&mut self, payload: &str) -> bool {
        self.inbox.saw(payload)
    }

    /// True while the first connection has never been lost.
    pub fn never_dropped(&self) -> bool {
        use std::sync::atomic::Ordering;
        self.connects.load(Ordering::SeqCst) == 1 && self.losses.load(Ordering::SeqCst) == 0
    }
}
