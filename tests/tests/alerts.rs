//! Alerts end to end: rules written over REST, screens reporting over MQTT, the evaluator
//! opening, holding and resolving alerts, operators acknowledging them.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use luach_control_plane::auth::ManualClock;
use luach_tests::{Must, PlainScreen, TestApp, spawn_app, spawn_app_with_clock, wait_for};
use serde_json::{Value, json};

/// Waits until the evaluator has made `n` more passes over every tenant.
async fn passes(app: &TestApp, n: u64) {
    let metrics = &app.state.metrics;
    let target = metrics.alert_passes.get() + n;
    wait_for("alert passes", Duration::from_secs(30), || async move {
        (metrics.alert_passes.get() >= target).then_some(())
    })
    .await;
}

/// The alerts of `device` (newest first) once `pick` finds one it likes.
async fn alert_where(app: &TestApp, device: &str, what: &str, pick: impl Fn(&Value) -> bool) -> Value {
    let api = &app.api;
    let path = format!("/api/v1/alerts?device={device}");
    let (path, pick) = (path.as_str(), &pick);
    wait_for(what, Duration::from_secs(30), || async move {
        let (_, body) = api.get(path).await;
        body["data"]["items"].as_array()?.iter().find(|a| pick(a)).cloned()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_screen_opens_an_alert_that_resolves_only_past_the_clear_line() {
    let app = spawn_app(|c| c.alerts.eval_secs = 1).await;
    let api = &app.api;
    // A rule with mistakes: every bad field is named.
    let (status, body) = api
        .post(
            "/api/v1/alert-rules",
            &json!({"name": "", "target": {"all": true, "group": "x"},
                    "condition": {"metric": {"metric": "temperature_c", "direction": "above", "value": 75, "clear": 80}}}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let paths: Vec<&str> = body["error"]["fields"]
        .as_array()
        .must()
        .iter()
        .map(|f| f["path"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(paths, ["name", "target", "condition.metric.clear"], "{body}");
    // Hot screens of the hall, for two seconds, clearing at 70 °C.
    let (status, rule) = api
        .post(
            "/api/v1/alert-rules",
            &json!({"name": "Hall screen hot", "severity": "critical", "target": {"tags": ["hall"]},
                    "condition": {"metric": {"metric": "temperature_c", "direction": "above",
                                             "value": 75, "clear": 70, "for_s": 2}}}),
        )
        .await;
    assert_eq!(status, 201, "{rule}");
    let rule_id = rule["data"]["id"].as_str().must().to_owned();

    let hot = PlainScreen::connect(&app, "hot1").await;
    let (status, body) = api.patch("/api/v1/devices/hot1", &json!({"tags": ["hall"]})).await;
    assert_eq!(status, 200, "{body}");
    // A screen outside the hall, as hot: the rule does not watch it.
    let lobby = PlainScreen::connect(&app, "lobby1").await;
    lobby.temperature(90.0).await;
    hot.temperature(80.0).await;
    let opened = alert_where(&app, "hot1", "the alert to open", |a| a["state"] == "open").await;
    assert_eq!(opened["rule_id"], rule_id.as_str(), "{opened}");
    assert_eq!(opened["severity"], "critical", "{opened}");
    assert_eq!(opened["value"], 80.0, "{opened}");
    assert!(opened["summary"].as_str().must().contains("80.0 °C"), "{opened}");
    let alert_id = opened["id"].as_str().must().to_owned();
    let (_, lobby_alerts) = api.get("/api/v1/alerts?device=lobby1").await;
    assert_eq!(lobby_alerts["data"]["total"], 0, "{lobby_alerts}");

    // Inside the band (70, 75]: it stays open however many passes run.
    hot.temperature(72.0).await;
    passes(&app, 3).await;
    let item = format!("/api/v1/alerts/{alert_id}");
    let (_, still) = api.get(&item).await;
    assert_eq!(still["data"]["state"], "open", "{still}");

    // Acknowledged once; another tenant sees nothing of it.
    let ack = format!("{item}/acknowledge");
    let (status, acked) = api.post(&ack, &json!({})).await;
    assert_eq!(status, 200, "{acked}");
    assert_eq!(acked["data"]["state"], "acknowledged", "{acked}");
    assert!(acked["data"]["acknowledged_by"].as_str().is_some(), "{acked}");
    assert_eq!(api.post(&ack, &json!({})).await.0, 409);
    let other = app.user("other", "tenant_admin", "admin@other.example").await;
    assert_eq!(other.get(&item).await.0, 404);
    assert_eq!(other.post(&ack, &json!({})).await.0, 404);
    let (_, theirs) = other.get("/api/v1/alerts").await;
    assert_eq!(theirs["data"]["total"], 0, "{theirs}");

    // At the clear line it resolves by itself, with the value that cleared it.
    hot.temperature(70.0).await;
    let resolved = alert_where(&app, "hot1", "the alert to resolve", |a| {
        a["id"] == alert_id.as_str() && a["state"] == "resolved"
    })
    .await;
    assert_eq!(resolved["resolved_value"], 70.0, "{resolved}");
    assert_eq!(resolved["resolution"], "the condition cleared", "{resolved}");
    assert!(resolved["acknowledged_at"].is_string(), "{resolved}");

    // A new breach is a new alert; disabling the rule resolves it.
    hot.temperature(85.0).await;
    let again = alert_where(&app, "hot1", "a second alert", |a| a["state"] == "open").await;
    assert_ne!(again["id"], alert_id.as_str());
    let mut disabled = rule["data"].clone();
    for field in ["id", "tenant_id", "created_at", "updated_at"] {
        disabled.as_object_mut().must().remove(field);
    }
    disabled["enabled"] = json!(false);
    let (status, body) = api.put(&format!("/api/v1/alert-rules/{rule_id}"), &disabled).await;
    assert_eq!(status, 200, "{body}");
    let ended = alert_where(&app, "hot1", "the second alert to resolve", |a| {
        a["id"] == again["id"] && a["state"] == "resolved"
    })
    .await;
    assert_eq!(ended["resolution"], "the rule was disabled", "{ended}");
    let (_, history) = api.get("/api/v1/alerts?state=resolved").await;
    assert_eq!(history["data"]["total"], 2, "{history}");
    let (_, active) = api.get("/api/v1/alerts?active=true").await;
    assert_eq!(active["data"]["total"], 0, "{active}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_screen_opens_the_default_offline_alert_after_ten_minutes() {
    let clock = ManualClock::new(Utc::now());
    let app = spawn_app_with_clock(|c| c.alerts.eval_secs = 1, Arc::new(clock.clone())).await;
    let api = &app.api;
    // The defaults: offline, temperature and disk, under fixed ids.
    let (status, rules) = api.post("/api/v1/alert-rules/defaults", &json!({})).await;
    assert_eq!(status, 200, "{rules}");
    let mut ids: Vec<&str> = rules["data"]
        .as_array()
        .must()
        .iter()
        .map(|r| r["id"].as_str().unwrap_or_default())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["default-disk", "default-offline", "default-temperature"]);

    let screen = PlainScreen::connect(&app, "quiet1").await;
    screen.goodbye().await;
    let path = "/api/v1/devices/quiet1";
    wait_for("the screen offline", Duration::from_secs(30), || async move {
        let (_, body) = api.get(path).await;
        (body["data"]["status"] == "offline").then_some(())
    })
    .await;
    // Nine minutes of silence: nothing yet.
    clock.advance(chrono::Duration::minutes(9));
    passes(&app, 2).await;
    let (_, none) = api.get("/api/v1/alerts?device=quiet1").await;
    assert_eq!(none["data"]["total"], 0, "{none}");
    // Past ten minutes: open, since the screen went quiet.
    clock.advance(chrono::Duration::minutes(2));
    let opened = alert_where(&app, "quiet1", "the offline alert", |a| a["state"] == "open").await;
    assert_eq!(
        (opened["rule_id"].as_str(), opened["severity"].as_str()),
        (Some("default-offline"), Some("critical")),
        "{opened}"
    );
    // Back online: resolved.
    luach_tests::publish_hello(&screen.client, "quiet1").await;
    let resolved = alert_where(&app, "quiet1", "the offline alert to resolve", |a| {
        a["state"] == "resolved"
    })
    .await;
    assert_eq!(resolved["id"], opened["id"], "{resolved}");
}
