//! Test harness: starts Luach's real binaries and the real services the tests talk to.
//!
//! - [`Server`] runs `luach-server` as a child process (or [`spawn_app`] runs the application
//!   in-process on port 0), each with its own data directory.
//! - [`Agent`] runs one `luach-agent run`; [`Sim`] runs `luach-agent sim`, as child processes.
//! - [`MongoWire`] starts a SecantusDB MongoDB-wire server; [`redis_url`] starts a private Redis.
//! - [`CuttingProxy`] cuts a screen's network on loopback and restores it.
//! - [`wait_for`] polls a condition until a deadline: tests never sleep to wait.
//!
//! Binaries are found beside the test executable (`target/<profile>/`); `scripts/test.sh`
//! builds them first. A missing service is a failure, never a skip: run `scripts/test.sh`,
//! which installs everything the suite needs.

mod api;
mod live;
pub mod mtls;
mod plain;
mod process;
mod proxy;
mod services;
pub mod sinks;
mod xvfb;

pub use api::Api;
pub use live::LiveWatcher;
pub use plain::{PlainScreen, sample_metrics};
pub use process::{
    ADMIN_EMAIL, ADMIN_PASSWORD, Agent, Server, ServerOptions, Sim, admin, bin_path, bulk_token, free_port, outcome,
    seed_tenant, seed_tenant_admin,
};
pub use proxy::CuttingProxy;
pub use services::{MongoWire, Mosquitto, RedisServer, node_script, python};
pub use xvfb::Xvfb;

use std::future::Future;
use std::time::{Duration, Instant};

/// `.must()`: unwraps a result in a test, panicking with the error's message.
pub trait Must<T> {
    fn must(self) -> T;
}

impl<T, E: std::fmt::Display> Must<T> for Result<T, E> {
    #[track_caller]
    fn must(self) -> T {
        self.unwrap_or_else(|e| panic!("{e}"))
    }
}

impl<T> Must<T> for Option<T> {
    #[track_caller]
    fn must(self) -> T {
        self.unwrap_or_else(|| panic!("expected a value, found none"))
    }
}

/// Polls `check` every 100 ms until it returns `Some`, or fails after `limit` with `what`.
pub async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An in-process application on ephemeral ports with its own data directory.
pub struct TestApp {
    /// Authenticated as the admin of tenant `default` (see [`ADMIN_EMAIL`]).
    pub api: Api,
    pub state: luach_control_plane::state::AppState,
    /// The cross-tenant store (what the admin CLI uses), for seeding.
    pub system: luach_control_plane::store::SystemStore,
    pub http: std::net::SocketAddr,
    pub mqtt: std::net::SocketAddr,
    pub shutdown: tokio_util::sync::CancellationToken,
    data_dir: std::path::PathBuf,
    _data: tempfile::TempDir,
}

/// Starts the application in-process. `configure` adjusts the config before start.
pub async fn spawn_app(configure: impl FnOnce(&mut luach_control_plane::Config)) -> TestApp {
    spawn_app_with_clock(configure, std::sync::Arc::new(luach_control_plane::auth::SystemClock)).await
}

/// [`spawn_app`] with the authentication clock given (tests move a `ManualClock` by hand).
pub async fn spawn_app_with_clock(
    configure: impl FnOnce(&mut luach_control_plane::Config),
    clock: std::sync::Arc<dyn luach_control_plane::auth::Clock>,
) -> TestApp {
    let data = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let mut config = luach_control_plane::Config::default();
    config.http.addr = "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}"));
    config.mqtt.listen = "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}"));
    // Some tests drive devices over the development listener (hostile payloads, bursts).
    config.mqtt.plain_listener = true;
    config.mqtt.tls_listen = "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}"));
    // A directory the server creates itself, as on a fresh install.
    config.data_dir = data.path().join("state");
    // Test clients send far more than a synagogue's dashboard; the quota tests set their own.
    config.quotas.api_requests_per_minute = 0;
    configure(&mut config);
    let app = luach_control_plane::Application::build_with_clock(config, clock)
        .await
        .unwrap_or_else(|e| panic!("application failed to start: {e:#}"));
    let state = app.state().clone();
    let system = app.system().clone();
    let token = seed_in_process(&state, &system).await;
    let http = app.http_addr();
    // An external broker's address is the test's own; the field then holds an unused one.
    let mqtt = app
        .mqtt_addr()
        .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    let shutdown = app.shutdown_token();
    tokio::spawn(async move {
        if let Err(e) = app.run_until_stopped().await {
            eprintln!("application stopped with error: {e:#}");
        }
    });
    TestApp {
        api: Api::new(format!("http://{http}")).with_token(&token),
        state,
        system,
        http,
        mqtt,
        shutdown,
        data_dir: data.path().join("state"),
        _data: data,
    }
}

/// Creates tenant `default` with its admin, and returns a personal token of the admin.
async fn seed_in_process(
    state: &luach_control_plane::state::AppState,
    system: &luach_control_plane::store::SystemStore,
) -> String {
    use luach_control_plane::auth::{Authority, NewUser, Role};
    use luach_control_plane::chain::Actor;
    let tenant = luach_schemas::TenantId::builtin();
    let cli = system.installation_scope(Actor::cli());
    // A restart on the same data (a test that restarts the server) finds them already there.
    if let Some(admin) = system.user_by_email(ADMIN_EMAIL).await.must() {
        return state
            .auth
            .create_token_for(&admin, "tests", None, 30)
            .await
            .must()
            .secret;
    }
    system
        .installation(&cli)
        .create_tenant(tenant.clone(), "Default".into(), chrono::Utc::now())
        .await
        .must();
    let admin = state
        .auth
        .create_user(
            Authority::Installation(&cli),
            NewUser {
                email: ADMIN_EMAIL.into(),
                name: "Admin".into(),
                role: Role::TenantAdmin,
                tenant_id: Some(tenant),
                password: ADMIN_PASSWORD.into(),
            },
        )
        .await
        .must();
    state
        .auth
        .create_token_for(&admin, "tests", None, 30)
        .await
        .must()
        .secret
}

impl TestApp {
    /// The application's data directory (SQLite file, keys, audit checkpoint).
    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    /// Creates a tenant (as the installation) with a user of `role`, and returns an API client
    /// logged in as that user through `/auth/login`.
    pub async fn user(&self, tenant: &str, role: &str, email: &str) -> Api {
        self.create_user(tenant, role, email).await;
        self.login(email, ADMIN_PASSWORD).await
    }

    /// Creates a tenant (as the installation) if it is missing, and a user of `role` in it
    /// (password [`ADMIN_PASSWORD`]).
    pub async fn create_user(&self, tenant: &str, role: &str, email: &str) -> luach_control_plane::store::User {
        use luach_control_plane::auth::{Authority, NewUser, Role};
        use luach_control_plane::chain::Actor;
        let tenant_id = luach_schemas::TenantId::parse(tenant).must();
        let cli = self.system.installation_scope(Actor::cli());
        let installation = self.system.installation(&cli);
        if installation.tenant(&tenant_id).await.must().is_none() {
            installation
                .create_tenant(tenant_id.clone(), tenant.into(), chrono::Utc::now())
                .await
                .must();
        }
        let role = Role::parse(role).must();
        self.state
            .auth
            .create_user(
                Authority::Installation(&cli),
                NewUser {
                    email: email.into(),
                    name: email.into(),
                    role,
                    tenant_id: role.is_tenant_role().then_some(tenant_id),
                    password: ADMIN_PASSWORD.into(),
                },
            )
            .await
            .must()
    }

    /// A personal access token of a new user of `role` in `tenant` (capped at `cap`).
    pub async fn token(&self, tenant: &str, role: &str, email: &str, cap: Option<&str>) -> String {
        let user = self.create_user(tenant, role, email).await;
        let cap = cap.map(|c| luach_control_plane::auth::Role::parse(c).must());
        self.state
            .auth
            .create_token_for(&user, "tests", cap, 30)
            .await
            .must()
            .secret
    }

    /// A device token for `device` of `tenant`, as the control plane mints for bundle fetches
    /// and screenshot uploads (the device must be enrolled).
    pub async fn device_token(&self, tenant: &str, device: &str) -> String {
        let id = luach_schemas::DeviceId::parse(device).must();
        let prefixes = self.system.prefixes_of(std::slice::from_ref(&id)).await.must();
        let tenant = luach_schemas::TenantId::parse(tenant).must();
        self.state.auth.device_token(&id, &tenant, prefixes.get(&id).must()).0
    }

    /// Fetches `device`'s own bundle as the screen does (`GET /agent/bundle` with its device
    /// token); returns the status.
    pub async fn fetch_own_bundle(&self, tenant: &str, device: &str) -> u16 {
        let token = self.device_token(tenant, device).await;
        let req = self
            .api
            .http
            .get(self.api.url("/api/v1/agent/bundle"))
            .header("x-luach-device-token", token);
        req.send().await.must().status().as_u16()
    }

    /// Uploads `png` as screenshot `shot` of the screen holding `device_token`, as the agent does.
    pub async fn upload_screenshot(&self, device_token: &str, shot: &str, png: Vec<u8>) -> (u16, serde_json::Value) {
        let req = self
            .api
            .http
            .put(self.api.url(&format!("/api/v1/agent/screenshots/{shot}")))
            .header("x-luach-device-token", device_token)
            .header("content-type", "image/png")
            .body(png);
        self.api.anonymous().send(req).await
    }

    /// Logs in through the API and returns a client carrying the access token.
    pub async fn login(&self, email: &str, password: &str) -> Api {
        let anon = self.api.anonymous();
        let (status, body) = anon
            .post(
                "/api/v1/auth/login",
                &serde_json::json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(status, 200, "login {email}: {body}");
        anon.with_token(body["data"]["access_token"].as_str().must())
    }
}

/// The bundle an agent with state directory `state_dir` keeps as current, once it has one.
pub fn stored_bundle(state_dir: &std::path::Path) -> Option<luach_content::Bundle> {
    let dir = state_dir.join("bundle");
    let sha = std::fs::read_to_string(dir.join("current")).ok()?;
    luach_content::Bundle::parse(&std::fs::read(dir.join(format!("{sha}.json"))).ok()?, None, None).ok()
}

/// A real board PNG of `width`×`height` (the demo synagogue with nothing assigned).
pub fn board_png(width: u32, height: u32) -> Vec<u8> {
    luach_board::Board::new()
        .render(
            &luach_board::demo::empty(),
            chrono::Utc::now(),
            luach_board::Options::size(width, height),
            luach_board::Status::default(),
        )
        .must()
        .png()
        .must()
}

/// Fails unless `promtool check metrics` accepts `text` (Debian package `prometheus`).
pub fn promtool_check(text: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("promtool not available ({e}); scripts/test.sh installs the prometheus package"));
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .unwrap_or_else(|e| panic!("writing to promtool: {e}"));
    }
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "promtool rejected /metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Publishes a hello for `device` on the plain listener, as a development screen does (its id
/// is its topic prefix there), with session id `s1`.
pub async fn publish_hello(client: &rumqttc::AsyncClient, device: &str) {
    use luach_schemas::messages::Hello;
    use luach_schemas::{Envelope, Topic, TopicPrefix, UpKind};
    let hello = Hello {
        agent_version: "0.0.0-test".into(),
        session: "s1".into(),
        platform: "test".into(),
        ip: None,
        uptime_s: 1,
    };
    let topic = Topic::Up(TopicPrefix::parse(device).must(), UpKind::Hello).to_string();
    client
        .publish(
            topic,
            rumqttc::QoS::AtLeastOnce,
            false,
            Envelope::new("h1", "hello", chrono::Utc::now(), hello).to_bytes(),
        )
        .await
        .must();
}

/// Starts `luach-agent run` as `device` against `app` (enrolled with a bulk token, headless,
/// its board clock stopped at `clock`, with `extra` arguments and `env`), and waits until it is
/// online with its bundle stored.
pub async fn online_agent(
    app: &TestApp,
    device: &str,
    state: &std::path::Path,
    clock: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Agent {
    let token = bulk_token(&app.api, 1).await;
    let mut all_env = vec![("LUACH_DISPLAY_OUTPUT", "none")];
    all_env.extend_from_slice(env);
    let mut args = vec![
        "--device-id",
        device,
        "--enrolment-token",
        &token,
        "--clock-start",
        clock,
        "--clock-speed",
        "0",
    ];
    args.extend_from_slice(extra);
    let agent = Agent::start_with_env(&app.api.base, state, &args, &all_env);
    let api = &app.api;
    wait_for(
        "the screen to be online",
        std::time::Duration::from_secs(60),
        || async move {
            let (_, body) = api.get(&format!("/api/v1/devices/{device}")).await;
            (body["data"]["status"] == "online").then_some(())
        },
    )
    .await;
    let current = state.join("bundle").join("current");
    wait_for(
        "the screen to store its bundle",
        std::time::Duration::from_secs(60),
        || {
            let current = current.clone();
            async move { std::fs::read_to_string(current).ok() }
        },
    )
    .await;
    agent
}

/// Signs `artifact` as release `version` (this build's target, channel `stable`, valid for 30
/// days) with the release keys in `keys`, registers it through `admin` (a super admin) and
/// uploads the artifact; the release's id.
pub async fn register_release(admin: &Api, keys: &luach_ota::KeyDir, version: &str, artifact: &[u8]) -> String {
    let now = chrono::Utc::now();
    let release = luach_ota::Release {
        version: luach_ota::Version::parse(version).must(),
        target: luach_ota::Target::parse(luach_ota::BUILD_TARGET).must(),
        channel: luach_ota::Channel::parse("stable").must(),
        artifact: luach_ota::Artifact::of_bytes(artifact),
        min_from_version: None,
        issued_at: now - chrono::Duration::minutes(1),
        expires: now + chrono::Duration::days(30),
    };
    let metadata = String::from_utf8(keys.sign_release(&release).must()).must();
    let (status, body) = admin
        .post("/api/v1/releases", &serde_json::json!({"metadata": metadata}))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["data"]["status"], "awaiting_artifact");
    let id = body["data"]["id"].as_str().must().to_owned();
    let req = admin
        .http
        .put(admin.url(&format!("/api/v1/releases/{id}/artifact")))
        .header("content-type", "application/octet-stream")
        .body(artifact.to_vec());
    let (status, body) = admin.send(req).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "ready");
    id
}

/// `HH:MM` of a local ISO 8601 time with seconds (`2026-12-04T17:14:10+02:00`), moved to the
/// next minute when `bump` says so for its seconds: the tests' own statement of a rounding,
/// independent of the code under test.
pub fn minute_of(iso: &str, bump: impl Fn(u32) -> bool) -> String {
    let t = chrono::DateTime::parse_from_rfc3339(iso).must();
    let t = if bump(chrono::Timelike::second(&t)) {
        t + chrono::Duration::minutes(1)
    } else {
        t
    };
    t.format("%H:%M").to_string()
}

/// Opens an alert of `rule` on `device` in `tenant` directly in the store (as the evaluator
/// would), with `summary`; resolved at once when `resolved`. Its id.
pub async fn seed_alert(
    app: &TestApp,
    tenant: &str,
    rule: &str,
    device: &str,
    summary: &str,
    resolved: bool,
) -> String {
    use luach_control_plane::store::{AlertRecord, AlertState, Severity};
    let tenant_id = luach_schemas::TenantId::parse(tenant).must();
    let scope = app
        .system
        .scope(tenant_id.clone(), luach_control_plane::chain::Actor::system());
    let alerts = app.system.tenant(&scope).alerts();
    let now = chrono::Utc::now();
    let opened = alerts
        .open(
            AlertRecord {
                id: uuid::Uuid::now_v7().to_string(),
                tenant_id,
                rule_id: rule.to_owned(),
                rule_name: summary.to_owned(),
                device_id: luach_schemas::DeviceId::parse(device).must(),
                severity: Severity::Critical,
                state: AlertState::Open,
                summary: summary.to_owned(),
                value: None,
                since: now,
                opened_at: now,
                acknowledged_at: None,
                acknowledged_by: None,
                resolved_at: None,
                resolution: None,
                resolved_value: None,
                updated_at: now,
            },
            Vec::new(),
        )
        .await
        .must();
    if resolved {
        let mut next = opened.clone();
        next.state = AlertState::Resolved;
        next.resolved_at = Some(now);
        next.resolution = Some(summary.to_owned());
        assert!(alerts.moved(&opened, &next, Vec::new()).await.must());
    }
    opened.id
}
