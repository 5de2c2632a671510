//! A live connection lives no longer than the credentials it was opened with: logging out,
//! changing the password, removing the second factor, being disabled or deleted, or having
//! the personal token revoked ends the user's Socket.IO connections within seconds (at once on
//! this replica, and by the periodic re-check on any replica). Checked with the official
//! `socket.io-client`.

use std::time::Duration;

use luach_tests::{Api, LiveWatcher, Must, spawn_app};
use serde_json::json;

/// The server closes the connection within a few seconds.
async fn closed_by_server(w: &mut LiveWatcher) {
    w.expect_within("disconnected: io server disconnect", Duration::from_secs(15))
        .await;
}

async fn still_open(w: &mut LiveWatcher) {
    w.expect_nothing(Duration::from_secs(2)).await;
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
    let mut w = LiveWatcher::connect(&base, "nodevice", &token(&leaving)).await;
    let bystander = app.user("default", "viewer", "bystander@default.example").await;
    let mut unaffected = LiveWatcher::connect(&base, "nodevice", &token(&bystander)).await;
    assert_eq!(leaving.post("/api/v1/auth/logout", &json!({})).await.0, 204);
    closed_by_server(&mut w).await;
    still_open(&mut unaffected).await;

    // Password change (the same user signed in twice: both connections end).
    let changing = app.user("default", "gabbai", "changing@default.example").await;
    let second = app.login("changing@default.example", luach_tests::ADMIN_PASSWORD).await;
    let mut w1 = LiveWatcher::connect(&base, "nodevice", &token(&changing)).await;
    let mut w2 = LiveWatcher::connect(&base, "nodevice", &token(&second)).await;
    let (status, body) = changing
        .post(
            "/api/v1/auth/password",
            &json!({"current_password": luach_tests::ADMIN_PASSWORD, "new_password": "another-long-passphrase"}),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    closed_by_server(&mut w1).await;
    closed_by_server(&mut w2).await;

    // Disabled, then deleted, by their tenant's admin.
    let disabled = app.user("default", "viewer", "disabled@default.example").await;
    let mut w = LiveWatcher::connect(&base, "nodevice", &token(&disabled)).await;
    let (_, me) = disabled.get("/api/v1/auth/me").await;
    let id = me["data"]["user"]["id"].as_str().must().to_owned();
    let (status, body) = admin
        .patch(&format!("/api/v1/users/{id}"), &json!({"disabled": true}))
        .await;
    assert_eq!(status, 200, "{body}");
    closed_by_server(&mut w).await;
    let deleted = app.user("default", "viewer", "deleted@default.example").await;
    let mut w = LiveWatcher::connect(&base, "nodevice", &token(&deleted)).await;
    let (_, me) = deleted.get("/api/v1/auth/me").await;
    let id = me["data"]["user"]["id"].as_str().must().to_owned();
    assert_eq!(admin.delete(&format!("/api/v1/users/{id}")).await.0, 204);
    closed_by_server(&mut w).await;

    // A revoked personal token.
    let (status, body) = admin
        .post("/api/v1/auth/tokens", &json!({"name": "wall display"}))
        .await;
    assert_eq!(status, 201, "{body}");
    let secret = body["data"]["secret"].as_str().must().to_owned();
    let mut w = LiveWatcher::connect(&base, "nodevice", &secret).await;
    let path = format!("/api/v1/auth/tokens/{}", body["data"]["id"].as_str().must());
    assert_eq!(admin.delete(&path).await.0, 204);
    closed_by_server(&mut w).await;
    still_open(&mut unaffected).await;
}

/// Another replica's change reaches this replica's connections by the periodic re-check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ended_elsewhere_closes_the_connection_here() {
    let app = spawn_app(|c| c.live.recheck_secs = 1).await;
    let base = format!("http://{}", app.http);
    let user = app.user("default", "viewer", "elsewhere@default.example").await;
    let mut w = LiveWatcher::connect(&base, "nodevice", &token(&user)).await;
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
    closed_by_server(&mut w).await;
}
