//! Receivers of notifications, started by the test (`tests/py/notify_sinks.py`): a real SMTP
//! server, a webhook receiver checking each request with the official Standard Webhooks
//! verifier, and a double of Twilio's Messages API that checks requests as Twilio documents
//! them. Each reports what it received as JSON lines, read here.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::python;

/// The auth token the Twilio double checks.
pub const TWILIO_TOKEN: &str = "tw-secret-token";

/// A running receiver; stopped on drop.
pub struct Sink {
    child: Child,
    lines: mpsc::Receiver<Value>,
    pub port: u16,
}

impl Sink {
    /// Starts `notify_sinks.py` with `args` (its mode first) and waits until it listens.
    pub fn start(args: &[&str]) -> Self {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("py/notify_sinks.py");
        let mut child = Command::new(python())
            .arg(&script)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "starting {}: {e} (scripts/test.sh installs its packages)",
                    script.display()
                )
            });
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    break;
                };
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let ready = lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("notify_sinks.py {args:?} did not start: {e}"));
        let port = ready["ready"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or_else(|| panic!("notify_sinks.py said {ready}"));
        Self { child, lines, port }
    }

    /// The server's settings for sending email through this SMTP sink.
    pub fn smtp_config(&self) -> luach_control_plane::config::SmtpConfig {
        luach_control_plane::config::SmtpConfig {
            host: "127.0.0.1".into(),
            port: Some(self.port),
            security: luach_control_plane::config::SmtpSecurity::None,
            username: None,
            password: None,
            from: "Luach <alerts@luach.example>".into(),
        }
    }

    /// The server's settings for Twilio's Messages API at this double (started with `--sid`
    /// `sid` and `--token tw-secret-token`), sending SMS from +15005550006 and WhatsApp from
    /// +14155238886.
    pub fn twilio_config(&self, sid: &str) -> luach_control_plane::config::TwilioConfig {
        luach_control_plane::config::TwilioConfig {
            base_url: format!("http://127.0.0.1:{}", self.port),
            account_sid: sid.into(),
            auth_token: TWILIO_TOKEN.to_owned().into(),
            sms_from: Some("+15005550006".into()),
            whatsapp_from: Some("+14155238886".into()),
        }
    }

    /// The double of Twilio's Messages API for account `sid`.
    pub fn twilio(sid: &str) -> Self {
        Self::start(&["twilio", "--sid", sid, "--token", TWILIO_TOKEN])
    }

    /// The next thing received, within `limit`.
    pub fn next(&self, what: &str, limit: Duration) -> Value {
        self.lines
            .recv_timeout(limit)
            .unwrap_or_else(|e| panic!("waiting for {what}: {e}"))
    }

    /// Everything received within `quiet` of each other thing (none: an empty list).
    pub fn drain(&self, quiet: Duration) -> Vec<Value> {
        let mut all = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while let Ok(v) = self.lines.recv_timeout(quiet) {
            all.push(v);
            if Instant::now() > deadline {
                break;
            }
        }
        all
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
