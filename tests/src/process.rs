//! Child processes: `luach-server` and `luach-agent sim`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::Api;

/// Path of a workspace binary, built beside the test executable.
pub fn bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| panic!("unexpected test path {}", exe.display()));
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace binaries first (scripts/test.sh does)",
        path.display()
    );
    path
}

/// A free TCP port on loopback (bound and released; the OS does not reuse it at once).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// Options for a `luach-server` child.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub http: SocketAddr,
    pub mqtt: SocketAddr,
    pub data_dir: PathBuf,
    pub offline_after_secs: u64,
    pub extra_args: Vec<String>,
}

impl ServerOptions {
    /// Fresh ports on loopback and the given data directory.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            http: SocketAddr::from(([127, 0, 0, 1], free_port())),
            mqtt: SocketAddr::from(([127, 0, 0, 1], free_port())),
            data_dir: data_dir.to_owned(),
            offline_after_secs: 90,
            extra_args: Vec::new(),
        }
    }
}

/// A running `luach-server serve`; killed on drop.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pub options: ServerOptions,
    pub api: Api,
}

impl Server {
    /// Starts the server and waits until `/readyz` answers 200.
    pub async fn start(options: ServerOptions) -> Self {
        let log =
            std::fs::File::create(options.data_dir.join("server.log")).unwrap_or_else(|e| panic!("server log: {e}"));
        let child = Command::new(bin_path("luach-server"))
            .arg("serve")
            .args(["--http-addr", &options.http.to_string()])
            .args(["--mqtt-addr", &options.mqtt.to_string()])
            .arg("--data-dir")
            .arg(&options.data_dir)
            .args(["--offline-after", &options.offline_after_secs.to_string()])
            .args(&options.extra_args)
            .stdout(log.try_clone().unwrap_or_else(|e| panic!("server log: {e}")))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning luach-server: {e}"));
        let api = Api::new(format!("http://{}", options.http));
        let mut server = Self { child, options, api };
        let api = server.api.clone();
        let limit = std::time::Duration::from_secs(60);
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                let log = std::fs::read_to_string(server.options.data_dir.join("server.log")).unwrap_or_default();
                panic!("luach-server exited with {status}:\n{log}");
            }
            if api.get("/readyz").await.0 == 200 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "luach-server not ready within {limit:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        server
    }

    /// Kills the process at once (no graceful shutdown), like a crash or power loss.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The server's log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.options.data_dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A running `luach-agent sim`; killed on drop.
#[derive(Debug)]
pub struct Sim {
    child: Child,
}

impl Sim {
    /// Starts `count` simulated screens named `{prefix}00000…` against `server` (bootstrap)
    /// with fast heartbeats so tests observe changes quickly; `extra` flags (`--flag value`
    /// pairs) replace those defaults.
    pub fn start(server: &str, count: usize, prefix: &str, extra: &[&str]) -> Self {
        let mut flags = vec![
            ("--heartbeat-secs", "2"),
            ("--metrics-secs", "3"),
            ("--keep-alive-secs", "5"),
        ];
        flags.retain(|(flag, _)| !extra.contains(flag));
        let child = Command::new(bin_path("luach-agent"))
            .arg("sim")
            .args(["--server", server])
            .args(["--count", &count.to_string()])
            .args(["--id-prefix", prefix])
            .args(flags.iter().flat_map(|(f, v)| [*f, *v]))
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning luach-agent sim: {e}"));
        Self { child }
    }

    /// The simulator's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the simulator at once: its connections drop without a goodbye.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.kill();
    }
}
