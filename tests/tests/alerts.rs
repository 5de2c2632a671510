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
    // The defaults, under fixed ids.
    let (status, rules) = api.post("/api/v1/alert-rules/defaults", &json!({})).await;
    assert_eq!(status, 200, "{rules}");
    let mut ids: Vec<&str> = rules["data"]
        .as_array()
        .must()
        .iter()
        .map(|r| r["id"].as_str().unwrap_or_default())
        .collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        [
            "default-cert-expiry",
            "default-content-stale",
            "default-disk",
            "default-disk-full",
            "default-flapping",
            "default-not-fetched",
            "default-offline",
            "default-shabbat-ready",
            "default-temperature"
        ]
    );

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

/// Creates a rule; returns its id.
async fn rule(app: &TestApp, body: Value) -> String {
    let (status, rule) = app.api.post("/api/v1/alert-rules", &body).await;
    assert_eq!(status, 201, "{rule}");
    rule["data"]["id"].as_str().must().to_owned()
}

/// Moves `clock` on by `secs` and waits for two passes, so one ran at the new time.
async fn tick(app: &TestApp, clock: &ManualClock, secs: i64) {
    clock.advance(chrono::Duration::seconds(secs));
    passes(app, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn falling_disk_flapping_and_unfetched_content_open_alerts() {
    let clock = ManualClock::new(Utc::now());
    let app = spawn_app_with_clock(|c| c.alerts.eval_secs = 1, Arc::new(clock.clone())).await;
    let api = &app.api;
    let falling = rule(
        &app,
        json!({"name": "Disk filling fast", "target": {"devices": ["disk1"]},
               "condition": {"rate": {"metric": "disk_free_mb", "direction": "falling", "per_hour": 1000, "window_s": 600}}}),
    )
    .await;
    let flapping = rule(
        &app,
        json!({"name": "Flapping", "target": {"devices": ["flap1"]},
               "condition": {"flapping": {"max": 2, "window_s": 600}}}),
    )
    .await;
    let unfetched = rule(
        &app,
        json!({"name": "No content for an hour", "target": {"all": true}, "schedule": {"cron": "* * * * *"},
               "condition": {"not_fetched": {"for_s": 3600}}}),
    )
    .await;

    // 100 MB more used every minute: 6,000 MB/h falling, judged once readings span 5 minutes.
    // (Its resolution is the same threshold decision as a metric's, tested above; the clock
    // cannot run far ahead of the screens' real-time metrics without making them stale.)
    let disk = PlainScreen::connect(&app, "disk1").await;
    let flap = PlainScreen::connect(&app, "flap1").await;
    let fetched = PlainScreen::connect(&app, "fresh1").await;
    assert_eq!(app.fetch_own_bundle("default", "fresh1").await, 200);
    for step in 0..7u64 {
        disk.report(luach_schemas::messages::Metrics {
            disk_used_bytes: (1 << 30) + step * 100_000_000,
            ..luach_tests::sample_metrics()
        })
        .await;
        tick(&app, &clock, 60).await;
    }
    let fast = alert_where(&app, "disk1", "the rate alert", |a| a["rule_id"] == falling.as_str()).await;
    let rate = fast["value"].as_f64().must();
    // About 6,000 MB/h: each reading is timed by the pass that first saw it.
    assert!((4_000.0..8_000.0).contains(&rate), "{fast}");
    assert!(fast["summary"].as_str().must().contains("falling"), "{fast}");
    // Three drops within the window: more than two is flapping.
    for _ in 0..3 {
        flap.goodbye().await;
        let path = "/api/v1/devices/flap1";
        wait_for("the screen offline", Duration::from_secs(30), || async move {
            let (_, body) = api.get(path).await;
            (body["data"]["status"] == "offline").then_some(())
        })
        .await;
        luach_tests::publish_hello(&flap.client, "flap1").await;
        wait_for("the screen back", Duration::from_secs(30), || async move {
            let (_, body) = api.get(path).await;
            (body["data"]["status"] == "online").then_some(())
        })
        .await;
    }
    let (_, device) = api.get("/api/v1/devices/flap1").await;
    assert_eq!(device["data"]["drops"], 3, "{device}");
    tick(&app, &clock, 10).await;
    let flapped = alert_where(&app, "flap1", "the flapping alert", |a| {
        a["rule_id"] == flapping.as_str()
    })
    .await;
    assert_eq!(flapped["value"], 3.0, "{flapped}");
    assert!(flapped["summary"].as_str().must().contains("3 times"), "{flapped}");

    // About an hour on: screens that never fetched their content are reported, the one that
    // holds its current content is not (whenever it last fetched); fetching resolves it at
    // the next run.
    let (_, none) = api.get("/api/v1/alerts?device=disk1&active=true").await;
    assert!(
        none["data"]["items"]
            .as_array()
            .must()
            .iter()
            .all(|a| a["rule_id"] != unfetched.as_str()),
        "{none}"
    );
    tick(&app, &clock, 3_700).await;
    let stale = alert_where(&app, "disk1", "the not-fetched alert", |a| {
        a["rule_id"] == unfetched.as_str()
    })
    .await;
    assert!(stale["summary"].as_str().must().contains("never fetched"), "{stale}");
    let (_, fresh) = api.get("/api/v1/alerts?device=fresh1").await;
    assert!(
        fresh["data"]["items"]
            .as_array()
            .must()
            .iter()
            .all(|a| a["rule_id"] != unfetched.as_str()),
        "{fresh}"
    );
    let (_, screen) = api.get("/api/v1/devices/fresh1").await;
    assert!(screen["data"]["bundle_sha256"].is_string(), "{screen}");
    assert_eq!(app.fetch_own_bundle("default", "disk1").await, 200);
    tick(&app, &clock, 60).await;
    alert_where(&app, "disk1", "the not-fetched alert to resolve", |a| {
        a["id"] == stale["id"] && a["state"] == "resolved"
    })
    .await;
    drop((fetched, flap));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screens_must_be_ready_two_hours_before_candle_lighting() {
    // Friday 4 December 2026 in Jerusalem: candles about 13:57 UTC, so the check starts
    // about 11:57.
    let clock = ManualClock::new("2026-12-04T10:00:00Z".parse().must());
    let app = spawn_app_with_clock(|c| c.alerts.eval_secs = 1, Arc::new(clock.clone())).await;
    let api = &app.api;
    let profile = json!({
        "name": "Ohel Moshe", "latitude": 31.778, "longitude": 35.2354, "timezone": "Asia/Jerusalem",
        "israel": true, "nusach": "ashkenaz", "language": "he", "candle_lighting_minutes": 40
    });
    assert_eq!(api.put("/api/v1/synagogues/main", &profile).await.0, 201);
    let ready = rule(
        &app,
        json!({"name": "Ready for Shabbat", "severity": "critical", "target": {"all": true},
               "schedule": {"cron": "*/5 * * * *", "timezone": "Asia/Jerusalem"},
               "condition": {"shabbat_ready": {}}}),
    )
    .await;
    let _good = PlainScreen::connect(&app, "good1").await;
    let _late = PlainScreen::connect(&app, "late1").await;
    assert_eq!(app.fetch_own_bundle("default", "good1").await, 200);
    // Before the window nothing is asked of them.
    tick(&app, &clock, 300).await;
    let (_, none) = api.get("/api/v1/alerts").await;
    assert_eq!(none["data"]["total"], 0, "{none}");
    // 12:30 UTC: inside it. The screen without its content is reported, at once.
    clock.advance(chrono::Duration::minutes(145));
    let opened = alert_where(&app, "late1", "the readiness alert", |a| a["rule_id"] == ready.as_str()).await;
    assert_eq!(opened["severity"], "critical", "{opened}");
    let summary = opened["summary"].as_str().must();
    assert!(
        summary.contains("without its current content") && summary.contains("Ohel Moshe"),
        "{opened}"
    );
    let (_, good) = api.get("/api/v1/alerts?device=good1").await;
    assert_eq!(good["data"]["total"], 0, "{good}");
    // Between runs nothing is read again: fetching shows at the next one.
    assert_eq!(app.fetch_own_bundle("default", "late1").await, 200);
    passes(&app, 2).await;
    let (_, still) = api
        .get(&format!("/api/v1/alerts/{}", opened["id"].as_str().must()))
        .await;
    assert_eq!(still["data"]["state"], "open", "{still}");
    tick(&app, &clock, 300).await;
    alert_where(&app, "late1", "the readiness alert to resolve", |a| {
        a["id"] == opened["id"] && a["state"] == "resolved"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filling_disks_and_ending_certificates_are_reported() {
    let app = spawn_app(|c| {
        c.alerts.eval_secs = 1;
        c.pki.device_cert_lifetime_secs = 10 * 86_400;
    })
    .await;
    let api = &app.api;
    // Three days of hourly history: 1 GB more every day, 2 GB left of 16 GiB.
    let screen = PlainScreen::connect(&app, "full1").await;
    let total: u64 = 16 << 30;
    let now = Utc::now();
    let used_at = |hours_ago: i64| total - 2_000_000_000 - (hours_ago as u64) * 1_000_000_000 / 24;
    let history = (0..72)
        .rev()
        .map(|h| {
            let metrics = luach_schemas::messages::Metrics {
                disk_used_bytes: used_at(h),
                ..luach_tests::sample_metrics()
            };
            (now - chrono::Duration::hours(h), metrics)
        })
        .collect();
    screen.history("history01", history).await;
    screen
        .report(luach_schemas::messages::Metrics {
            disk_used_bytes: used_at(0),
            ..luach_tests::sample_metrics()
        })
        .await;
    // A screen enrolled with a ten-day certificate.
    let token = luach_tests::bulk_token(api, 1).await;
    let (_, csr) = luach_tests::mtls::csr("cert1");
    let (status, issued) = luach_tests::mtls::enrol_with_token(api, "cert1", &csr, &token).await;
    assert!(status < 300, "{issued}");
    // The defaults: the disk and certificate checks run daily, and once when first seen.
    let (status, _) = api.post("/api/v1/alert-rules/defaults", &json!({})).await;
    assert_eq!(status, 200);
    let full = alert_where(&app, "full1", "the disk projection", |a| {
        a["rule_id"] == "default-disk-full"
    })
    .await;
    let days = full["value"].as_f64().must();
    assert!((1.5..2.5).contains(&days), "{full}");
    assert!(full["summary"].as_str().must().contains("projected full"), "{full}");
    let cert = alert_where(&app, "cert1", "the certificate alert", |a| {
        a["rule_id"] == "default-cert-expiry"
    })
    .await;
    let left = cert["value"].as_f64().must();
    assert!((9.9..=10.0).contains(&left), "{cert}");
}

/// Operators restoring the defaults at once, on MongoDB: each call succeeds or is told to try
/// again (409), never a server error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_defaults_are_restored_by_concurrent_calls_on_mongodb() {
    let mongo = luach_tests::MongoWire::start();
    let app = spawn_app(|c| c.store.url = mongo.url.clone().into()).await;
    let api = &app.api;
    for _ in 0..5 {
        let calls = (0..8).map(|_| async move { api.post("/api/v1/alert-rules/defaults", &json!({})).await });
        for (status, body) in futures::future::join_all(calls).await {
            assert!(status == 200 || status == 409, "{status} {body}");
        }
    }
    let (_, rules) = api.get("/api/v1/alert-rules").await;
    assert_eq!(rules["data"].as_array().must().len(), 9, "{rules}");
}
