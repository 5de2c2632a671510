//! A live connection lives no longer than the credentials it was opened with: logging out,
//! changing the password, removing the second factor, being disabled or deleted, or having
//! the personal token revoked ends the user's Socket.IO connections within seconds (at once on
//! this replica, and by the periodic re-check on any replica). Checked with the official
//! `socket.io-client`.

use std::process::Stdio;
use std::time::Duration;

use luach_tests::{Api, Must, node_script, spawn_app};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

struct Watcher {
    _child: Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Watcher {
    async fn connect(base: &str, token: &str) -> Self {
        let mut child = Command::new("node")
            .env("LUACH_TOKEN", token)
            .arg(node_script("live_watch.mjs"))
            .args([base, "nodevice"])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("node not available ({e}); scripts/test.sh installs it"));
        let stdout = child.stdout.take().must();
        let mut watcher = Self {
            _child: child,
            lines: BufReader::new(stdout).lines(),
        };
        watcher.expect("ready", Duration::from_secs(60)).await;
        watcher
    }

    async fn expect(&mut self, want: &str, within: Duration) {
        let line = tokio::time::timeout(within, self.lines.next_line()).await;
        match line {
            Ok(Ok(Some(l))) if l == want => {}
            other => panic!("expected {want:?} from socket.io-client within {within:?}, got {other:?}"),
        }
    }

    /// The server closes the connection within a few seconds.
    async fn closed_by_server(&mut self) {
        self.expect("disconnected: io server disconnect", Duration::from_secs(15))
            .await;
    }

    async fn still_open(&mut self) {
        if let Ok(line) = tokio::time::timeout(Duration::from_secs(2), self.lines.next_line()).await {
            panic!("expected the connection to stay open, got {line:?}");
        }
    }
}

fn token(api: &Api) -> String {
    api.token.clone().must()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_connections_end_with_their_credentials() {
    let app = spawn_app(|c| c.live.recheck_secs = 1).await;
    let base = format!("http://{}", app.http);
    let admin = app.user("default", "tenant_admin", "boss@default.example").await;

    // Logout.
    let leaving = app.user("default", "viewer", "leaving@default.example").await;
    let mut w = Watcher::connect(&base, &token(&leaving)).await;
    let bystander = app.user("default", "viewer", "bystander@default.example").await;
    let mut unaffected = Watcher::connect(&base, &token(&bystander)).await;
    assert_eq!(leaving.post("/api/v1/auth/logout", &json!({})).await.0, 204);
    w.closed_by_server().await;
    unaffected.still_open().await;

    // Password change (the same user signed in twice: both connections end).
    let changing = app.user("default", "gabbai", "changing@default.example").await;
    let second = app.login("changing@default.example", luach_tests::ADMIN_PASSWORD).await;
    let mut w1 = Watcher::connect(&base, &token(&changing)).await;
    let mut w2 = Watcher::connect(&base, &token(&second)).await;
    let (status, body) = changing
        .post(
            "/api/v1/auth/password",
            &json!({"current_password": luach_tests::ADMIN_PASSWORD, "new_password": "another-long-passphrase"}),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    w1.closed_by_server().await;
    w2.closed_by_server().await;

    // Disabled, then deleted, by their tenant's admin.
    let disabled = app.user("default", "viewer", "disabled@default.example").await;
    let mut w = Watcher::connect(&base, &token(&disabled)).await;
    let (_, me) = disabled.get("/api/v1/auth/me").await;
    let id = me["data"]["user"]["id"].as_str().must().to_owned();
    let (status, body) = admin
        .patch(&format!("/api/v1/users/{id}"), &json!({"disabled": true}))
        .await;
    assert_eq!(status, 200, "{body}");
    w.closed_by_server().await;
    let deleted = app.user("default", "viewer", "deleted@default.example").await;
    let mut w = Watcher::connect(&base, &token(&deleted)).await;
    let (_, me) = deleted.get("/api/v1/auth/me").await;
    let id = me["data"]["user"]["id"].as_str().must().to_owned();
    assert_eq!(admin.delete(&format!("/api/v1/users/{id}")).await.0, 204);
    w.closed_by_server().await;

    // A revoked personal token.
    let (status, body) = admin
        .post("/api/v1/auth/tokens", &json!({"name": "wall display"}))
        .await;
    assert_eq!(status, 201, "{body}");
    let secret = body["data"]["secret"].as_str().must().to_owned();
    let mut w = Watcher::connect(&base, &secret).await;
    let path = format!("/api/v1/auth/tokens/{}", body["data"]["id"].as_str().must());
    assert_eq!(admin.delete(&path).await.0, 204);
    w.closed_by_server().await;
    unaffected.still_open().await;
}

/// Another replica's change reaches this replica's connections by the periodic re-check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ended_elsewhere_closes_the_connection_here() {
    let app = spawn_app(|c| c.live.recheck_secs = 1).await;
    let base = format!("http://{}", app.http);
    let user = app.user("default", "viewer", "elsewhere@default.example").await;
    let mut w = Watcher::connect(&base, &token(&user)).await;
    // End every session straight in the store, as another replica would: no event reaches this
    // replica, only the re-check.
    let stored = app
        .system
        .user_by_email("elsewhere@default.example")
        .await
        .must()
        .must();
    app.system
        .end_credentials(
            &stored,
            "test",
            chrono::Utc::now(),
            &luach_control_plane::chain::Actor::cli(),
        )
        .await
        .must();
    w.closed_by_server().await;
}
