//! Real services for tests: a MongoDB-wire server (SecantusDB), Redis, Node and Python.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

/// The Python with the test packages (SecantusDB, paho-mqtt): `$LUACH_PYTHON` or `python3`.
pub fn python() -> PathBuf {
    std::env::var_os("LUACH_PYTHON").map_or_else(|| PathBuf::from("python3"), PathBuf::from)
}

fn venv_bin(name: &str) -> PathBuf {
    // secantusd-py lives beside the venv's python.
    let py = python();
    match py.parent() {
        Some(dir) if dir.join(name).exists() => dir.join(name),
        _ => PathBuf::from(name),
    }
}

fn wait_port(port: u16, child: &mut Child, what: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited with {status} before listening");
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on {port} within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A private SecantusDB server (real MongoDB wire protocol); stopped on drop.
#[derive(Debug)]
pub struct MongoWire {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl MongoWire {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let port = free_port();
        let bin = venv_bin("secantusd-py");
        let mut child = Command::new(&bin)
            .args(["--port", &port.to_string(), "--storage-path"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} ({e}); scripts/test.sh installs SecantusDB",
                    bin.display()
                )
            });
        wait_port(port, &mut child, "secantusd-py", Duration::from_secs(60));
        Self {
            child,
            url: format!("mongodb://127.0.0.1:{port}/?directConnection=true"),
            _dir: dir,
        }
    }
}

impl Drop for MongoWire {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private Redis on a free port; stopped on drop.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    pub url: String,
}

impl RedisServer {
    pub fn start() -> Self {
        let port = free_port();
        Self {
            child: Self::spawn(port),
            url: format!("redis://127.0.0.1:{port}"),
        }
    }

    /// Stops Redis (SIGKILL: its clients see the connection drop) and starts it again, empty,
    /// on the same port.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let port = self
            .url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("redis url {}", self.url));
        self.child = Self::spawn(port);
    }

    fn spawn(port: u16) -> Child {
        let mut child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server ({e}); scripts/test.sh installs it"));
        wait_port(port, &mut child, "redis-server", Duration::from_secs(20));
        child
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Path of a Node script under `tests/js/` (its modules come from the repository root).
pub fn node_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("js").join(name)
}

/// A private Mosquitto 2 run with a configuration file (the one `luach-server broker-config
/// mosquitto` wrote); stopped on drop. Its log goes to `mosquitto.log` beside the file.
#[derive(Debug)]
pub struct Mosquitto {
    child: Child,
    conf: PathBuf,
    /// A port it listens on, waited for at every start.
    port: u16,
}

impl Mosquitto {
    pub fn start(conf: &std::path::Path, port: u16) -> Self {
        let conf = Self::runnable(conf);
        let child = Self::spawn(&conf, port);
        Self { child, conf, port }
    }

    /// Run as root, Mosquitto would switch to user `mosquitto`, who cannot read the test's
    /// private directory: a copy of the file with `user root` first keeps it root.
    fn runnable(conf: &std::path::Path) -> PathBuf {
        let text = std::fs::read_to_string(conf).unwrap_or_else(|e| panic!("{}: {e}", conf.display()));
        let copy = conf.with_file_name("mosquitto-test.conf");
        std::fs::write(&copy, format!("user root\n{text}")).unwrap_or_else(|e| panic!("{}: {e}", copy.display()));
        copy
    }

    fn spawn(conf: &std::path::Path, port: u16) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(conf.with_file_name("mosquitto.log"))
            .unwrap_or_else(|e| panic!("mosquitto log: {e}"));
        let mut child = Command::new("mosquitto")
            .arg("-c")
            .arg(conf)
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start mosquitto ({e}); scripts/test.sh installs it"));
        wait_port(port, &mut child, "mosquitto", Duration::from_secs(20));
        child
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.conf.with_file_name("mosquitto.log")).unwrap_or_default()
    }

    /// Stops it and starts it again with the same file (it then re-reads the CRL and CAs).
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Self::spawn(&self.conf, self.port);
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
