//! Child processes: `luach-server`, `luach-agent run` and `luach-agent sim`.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use crate::{Api, Must, wait_for};

/// Path of a workspace binary: beside the running executable (a tool such as `luach-bench` in
/// `target/<profile>/`) or one directory up (a test in `target/<profile>/deps/`).
pub fn bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
    let beside = exe.parent().map(|d| d.join(name));
    let above = exe.parent().and_then(Path::parent).map(|d| d.join(name));
    match (beside, above) {
        (Some(path), _) if path.exists() => path,
        (_, Some(path)) if path.exists() => path,
        _ => panic!(
            "{name} is missing beside {}: build the workspace binaries first (scripts/test.sh does)",
            exe.display()
        ),
    }
}

/// A free TCP port on loopback (bound and released), chosen below Linux's ephemeral range
/// (32768–60999) so that no outgoing connection can be given it before the server binds it.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    for _ in 0..64 {
        let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
        let port = 20_000 + u16::try_from(random % 12_768).unwrap_or(0);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// Options for a `luach-server` child.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub http: SocketAddr,
    /// The plain (development) MQTT listener.
    pub mqtt: SocketAddr,
    /// The mutual-TLS MQTT listener.
    pub mqtt_tls: SocketAddr,
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
            mqtt_tls: SocketAddr::from(([127, 0, 0, 1], free_port())),
            data_dir: data_dir.to_owned(),
            offline_after_secs: 90,
            extra_args: Vec::new(),
        }
    }
}

/// Runs `luach-server admin …` against `data_dir` (and the store flags among `extra`), feeding
/// `stdin`; returns (success, stdout + stderr).
pub fn admin(data_dir: &Path, extra: &[String], args: &[&str], stdin: &str) -> (bool, String) {
    use std::io::Write;
    let mut store_flags = Vec::new();
    let mut it = extra.iter();
    while let Some(flag) = it.next() {
        if flag == "--store"
            && let Some(v) = it.next()
        {
            store_flags.extend([flag.clone(), v.clone()]);
        }
    }
    let mut child = Command::new(bin_path("luach-server"))
        .arg("admin")
        .arg("--data-dir")
        .arg(data_dir)
        .args(&store_flags)
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning luach-server admin: {e}"));
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin.as_bytes());
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("luach-server admin: {e}"));
    outcome(&out)
}

/// Whether a finished command succeeded, and what it printed (stdout, then stderr).
pub fn outcome(out: &std::process::Output) -> (bool, String) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Email and password of the tenant admin that [`seed_tenant_admin`] creates.
pub const ADMIN_EMAIL: &str = "admin@default.example";
pub const ADMIN_PASSWORD: &str = "correct-horse-battery";

/// Makes sure the built-in tenant `default` and its admin exist (idempotent, through the admin
/// CLI) and returns a fresh personal access token of that admin.
pub fn seed_tenant_admin(data_dir: &Path, extra: &[String]) -> String {
    seed_tenant(data_dir, extra, "default", ADMIN_EMAIL)
}

/// Makes sure `tenant` and its admin `email` (password [`ADMIN_PASSWORD`]) exist, through the
/// admin CLI, and returns a fresh personal access token of that admin.
pub fn seed_tenant(data_dir: &Path, extra: &[String], tenant: &str, email: &str) -> String {
    let (ok, out) = admin(
        data_dir,
        extra,
        &["create-tenant", "--id", tenant, "--name", tenant],
        "",
    );
    assert!(ok || out.contains("already exists"), "create-tenant: {out}");
    let (ok, out) = admin(
        data_dir,
        extra,
        &[
            "create-user",
            "--email",
            email,
            "--role",
            "tenant_admin",
            "--tenant",
            tenant,
        ],
        &format!("{ADMIN_PASSWORD}\n"),
    );
    assert!(ok || out.contains("already exists"), "create-user: {out}");
    let (ok, out) = admin(
        data_dir,
        extra,
        &["create-token", "--email", email, "--name", "tests"],
        "",
    );
    assert!(ok, "create-token: {out}");
    out.trim().to_owned()
}

/// A running `luach-server serve`; killed on drop.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pub options: ServerOptions,
    pub api: Api,
}

impl Server {
    /// Seeds the default tenant's admin, starts the server and waits until `/readyz` answers
    /// 200. `api` carries the admin's token.
    pub async fn start(options: ServerOptions) -> Self {
        let token = seed_tenant_admin(&options.data_dir, &options.extra_args);
        let log =
            std::fs::File::create(options.data_dir.join("server.log")).unwrap_or_else(|e| panic!("server log: {e}"));
        let child = Command::new(bin_path("luach-server"))
            .env("LUACH_MQTT__PLAIN_LISTENER", "true")
            .arg("serve")
            .args(["--http-addr", &options.http.to_string()])
            .args(["--mqtt-addr", &options.mqtt.to_string()])
            .args(["--mqtt-tls-addr", &options.mqtt_tls.to_string()])
            .arg("--data-dir")
            .arg(&options.data_dir)
            .args(["--offline-after", &options.offline_after_secs.to_string()])
            .args(&options.extra_args)
            .stdout(log.try_clone().unwrap_or_else(|e| panic!("server log: {e}")))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning luach-server: {e}"));
        let api = Api::new(format!("http://{}", options.http)).with_token(&token);
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
    /// Starts `count` simulated screens named `{prefix}00000…` that enrol the way real screens
    /// do: `api` (a tenant user who may enrol devices) creates a bulk enrolment token through
    /// the API, and every screen enrols with it and connects over mutual TLS to the broker the
    /// server's bootstrap names. Fast heartbeats let tests observe changes quickly; `extra`
    /// flags (`--flag value` pairs) replace those defaults.
    pub async fn start(api: &Api, count: usize, prefix: &str, extra: &[&str]) -> Self {
        let token = bulk_token(api, u32::try_from(count).must()).await;
        Self::spawn(&api.base, count, prefix, &[], Some(&token), extra)
    }

    /// Like [`Sim::start`] but on the broker's plain development listener (no enrolment,
    /// devices registered on their first hello with `presence.auto_register`).
    pub fn start_plain(server: &str, count: usize, prefix: &str, extra: &[&str]) -> Self {
        Self::spawn(server, count, prefix, &["--plain-mqtt"], None, extra)
    }

    /// The token goes in the environment (`LUACH_ENROLMENT_TOKEN`), never on the command line
    /// where other users could read it.
    fn spawn(server: &str, count: usize, prefix: &str, mode: &[&str], token: Option<&str>, extra: &[&str]) -> Self {
        let mut flags = vec![
            ("--heartbeat-secs", "2"),
            ("--metrics-secs", "3"),
            ("--keep-alive-secs", "5"),
        ];
        flags.retain(|(flag, _)| !extra.contains(flag));
        let mut command = Command::new(bin_path("luach-agent"));
        match token {
            Some(token) => command.env("LUACH_ENROLMENT_TOKEN", token),
            None => command.env_remove("LUACH_ENROLMENT_TOKEN"),
        };
        let child = command
            .arg("sim")
            .args(["--server", server])
            .args(["--count", &count.to_string()])
            .args(["--id-prefix", prefix])
            .args(mode)
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

/// A bulk enrolment token (`le_…`) for `uses` screens, made through the API.
pub async fn bulk_token(api: &Api, uses: u32) -> String {
    let (status, body) = api
        .post(
            "/api/v1/enrolment/tokens",
            &serde_json::json!({"name": "test batch", "max_uses": uses}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["data"]["token"].as_str().must().to_owned()
}

/// `run --server SERVER --heartbeat-secs 2 --metrics-secs 2 --state-dir STATE_DIR`.
fn run_args(server: &str, state_dir: &std::path::Path) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = [
        "run",
        "--server",
        server,
        "--heartbeat-secs",
        "2",
        "--metrics-secs",
        "2",
        "--state-dir",
    ]
    .into_iter()
    .map(Into::into)
    .collect();
    args.push(state_dir.as_os_str().to_owned());
    args
}

/// A `luach-agent run` process whose stdout lines arrive on a channel.
pub struct Agent {
    child: Child,
    lines: std_mpsc::Receiver<String>,
}

impl Agent {
    /// Starts `luach-agent run --server SERVER --state-dir STATE_DIR EXTRA…` (heartbeats and
    /// metrics every 2 s).
    pub fn start(server: &str, state_dir: &std::path::Path, extra: &[&str]) -> Self {
        Self::start_with_env(server, state_dir, extra, &[("LUACH_DISPLAY_OUTPUT", "none")])
    }

    /// [`Agent::start`] with extra environment (a `DISPLAY` to draw the board on).
    pub fn start_with_env(server: &str, state_dir: &std::path::Path, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(bin_path("luach-agent"));
        cmd.args(run_args(server, state_dir)).args(extra);
        Self::spawn(cmd, env)
    }

    /// `INSTALL/bin/luach-agent supervise --install-dir INSTALL --health-window-secs WINDOW --
    /// run …` (as [`Agent::start`]): the screen's service, which updates and rolls back.
    pub fn supervised(
        install: &std::path::Path,
        window_secs: u64,
        server: &str,
        state_dir: &std::path::Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let mut cmd = Command::new(install.join("bin").join("luach-agent"));
        cmd.arg("supervise")
            .arg("--install-dir")
            .arg(install)
            .args(["--health-window-secs", &window_secs.to_string(), "--"])
            .args(run_args(server, state_dir))
            .args(extra);
        Self::spawn(cmd, env)
    }

    fn spawn(mut cmd: Command, env: &[(&str, &str)]) -> Self {
        let mut child = cmd
            .env("RUST_LOG", "warn")
            .env_remove("LUACH_ENROLMENT_TOKEN")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .must();
        let stdout = child.stdout.take().must();
        let (tx, lines) = std_mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// The first stdout line starting with `prefix`, without it.
    pub async fn line_after(&self, prefix: &str) -> String {
        wait_for(
            &format!("the agent to print {prefix:?}"),
            Duration::from_secs(30),
            || {
                let found = self
                    .lines
                    .try_iter()
                    .find_map(|l| l.strip_prefix(prefix).map(str::to_owned));
                async move { found }
            },
        )
        .await
    }
}

impl Agent {
    /// The agent's process id (kept across a restart in place).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `within` for the agent to exit by itself; its exit status.
    pub async fn exit_within(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let until = std::time::Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if std::time::Instant::now() >= until {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the agent as a service manager does (SIGTERM) and waits for it to exit.
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
