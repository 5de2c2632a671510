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
