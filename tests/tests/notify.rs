//! Notifications end to end: alerts told by email to a real SMTP server, webhooks checked by
//! the official Standard Webhooks verifier (retries, 410, persistent failure, forbidden
//! destinations, a crash between commit and send), SMS and WhatsApp through a double of
//! Twilio's Messages API, holds for Shabbat and quiet hours, and silences.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use luach_control_plane::Config;
use luach_control_plane::auth::ManualClock;
use luach_tests::sinks::Sink;
use luach_tests::{Api, Must, PlainScreen, Server, ServerOptions, spawn_app, spawn_app_with_clock, wait_for};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(30);

/// Fast evaluation and sending, quick retries.
fn fast(c: &mut Config) {
    c.alerts.eval_secs = 1;
    c.notify.poll_ms = 100;
    c.notify.retry_base_secs = 1;
    c.notify.retry_max_secs = 4;
}

/// Makes a channel; answers its id and (webhooks) its signing secret.
async fn channel(api: &Api, body: Value) -> (String, Option<String>) {
    let (status, made) = api.post("/api/v1/notification-channels", &body).await;
    assert_eq!(status, 201, "{made}");
    let id = made["data"]["id"].as_str().must().to_owned();
    (id, made["data"]["secret"].as_str().map(str::to_owned))
}

/// The message log's entry that `pick` likes, once there is one.
async fn logged(api: &Api, what: &str, pick: impl Fn(&Value) -> bool) -> Value {
    let pick = &pick;
    wait_for(what, LIMIT, || async move {
        let (_, body) = api.get("/api/v1/notifications?limit=500").await;
        body["data"]["items"].as_array()?.iter().find(|m| pick(m)).cloned()
    })
    .await
}

async fn hot_rule(api: &Api, severity: &str, tag: &str) -> String {
    let (status, rule) = api
        .post(
            "/api/v1/alert-rules",
            &json!({"name": format!("Hot {tag}"), "severity": severity, "target": {"tags": [tag]},
                    "condition": {"metric": {"metric": "temperature_c", "direction": "above",
                                             "value": 75, "clear": 70}}}),
        )
        .await;
    assert_eq!(status, 201, "{rule}");
    rule["data"]["id"].as_str().must().to_owned()
}

async fn tagged(api: &Api, device: &str, tag: &str) {
    let (status, body) = api
        .patch(&format!("/api/v1/devices/{device}"), &json!({"tags": [tag]}))
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_screen_is_told_by_email_in_english_and_hebrew_and_again_when_it_cools() {
    let smtp = Sink::start(&["smtp"]);
    let app = spawn_app(|c| {
        fast(c);
        c.notify.smtp = Some(smtp.smtp_config());
    })
    .await;
    let api = &app.api;
    // SMS is not set up here: the channel is refused, naming the key to set.
    let (status, body) = api
        .post(
            "/api/v1/notification-channels",
            &json!({"name": "Texts", "kind": "sms", "to": ["+972501234567"]}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["fields"][0]["path"], "kind", "{body}");
    assert!(
        body["error"]["fields"][0]["message"]
            .as_str()
            .must()
            .contains("notify.twilio")
    );
    let (status, body) = api
        .post(
            "/api/v1/notification-channels",
            &json!({"name": "Gabbai", "kind": "email", "to": ["not-an-address"]}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["fields"][0]["path"], "to[0]", "{body}");

    channel(
        api,
        json!({"name": "Gabbai", "kind": "email", "to": ["gabbai@example.org"]}),
    )
    .await;
    channel(
        api,
        json!({"name": "Rav", "kind": "email", "to": ["rav@example.org"], "language": "he"}),
    )
    .await;
    hot_rule(api, "warning", "hall").await;
    let screen = PlainScreen::connect(&app, "hall1").await;
    tagged(api, "hall1", "hall").await;
    screen.temperature(81.0).await;

    let mut opened: Vec<Value> = (0..2).map(|_| smtp.next("the alert emails", LIMIT)).collect();
    opened.sort_by_key(|m| m["to"][0].as_str().unwrap_or_default().to_owned());
    let (gabbai, rav) = (&opened[0], &opened[1]);
    assert_eq!(gabbai["to"], json!(["gabbai@example.org"]), "{gabbai}");
    assert_eq!(gabbai["from"], "alerts@luach.example", "{gabbai}");
    assert_eq!(gabbai["subject"], "[Luach] Alert: Hot hall on hall1", "{gabbai}");
    assert!(gabbai["text"].as_str().must().contains("81.0 °C"), "{gabbai}");
    assert_eq!(rav["to"], json!(["rav@example.org"]), "{rav}");
    assert_eq!(rav["subject"], "[לוח] התראה: Hot hall — hall1", "{rav}");
    assert!(rav["text"].as_str().must().contains("במסך hall1"), "{rav}");

    // Inside the hysteresis band nothing changes; below the clear line the alert resolves.
    screen.temperature(72.0).await;
    assert_eq!(smtp.drain(Duration::from_secs(3)), Vec::<Value>::new());
    screen.temperature(65.0).await;
    let resolved: Vec<Value> = (0..2).map(|_| smtp.next("the resolution emails", LIMIT)).collect();
    assert!(
        resolved
            .iter()
            .any(|m| m["subject"] == "[Luach] Resolved: Hot hall on hall1"),
        "{resolved:?}"
    );
    assert!(resolved.iter().any(|m| m["subject"] == "[לוח] נפתרה: Hot hall — hall1"));

    // The log: four messages sent, recipients masked, the server's reply kept.
    let (status, log) = api.get("/api/v1/notifications").await;
    assert_eq!(status, 200, "{log}");
    let items = log["data"]["items"].as_array().must();
    assert_eq!(items.len(), 4, "{log}");
    for m in items {
        assert_eq!(m["state"], "sent", "{m}");
        assert_eq!(m["attempts"], 1, "{m}");
        assert!(m["receipt"].as_str().must().starts_with("250"), "{m}");
        assert!(
            !m.to_string().contains("gabbai@"),
            "the log shows addresses masked: {m}"
        );
    }
    assert!(items.iter().any(|m| m["recipient"] == "g***@example.org"));
    assert_eq!(
        app.state
            .metrics
            .notifications
            .with_label_values(&["email", "sent"])
            .get(),
        4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_retried_with_backoff_and_disabled_when_gone_or_failing() {
    let app = spawn_app(|c| {
        fast(c);
        c.notify.max_attempts = 3;
        c.notify.webhooks.allow_private = true;
    })
    .await;
    let api = &app.api;
    let dir = tempfile::tempdir().must();
    // Each receiver reads its channel's secret from a file written once the channel exists.
    let receiver = |name: &str, extra: &[&str]| {
        let file = dir.path().join(name);
        std::fs::write(&file, "").must();
        let path = file.display().to_string();
        let mut args = vec!["webhook", "--secret-file", path.as_str()];
        args.extend_from_slice(extra);
        (Sink::start(&args), file)
    };
    let hook = |sink: &Sink, name: &str| json!({"name": name, "kind": "webhook", "url": format!("http://127.0.0.1:{}/hooks/luach?token=t0p", sink.port)});

    // Fails twice with 503, then takes it.
    let (flaky, flaky_secret) = receiver("flaky", &["--fail", "2", "--status", "503"]);
    let (flaky_id, secret) = channel(api, hook(&flaky, "Flaky")).await;
    let secret = secret.must();
    assert!(secret.starts_with("whsec_"), "{secret}");
    std::fs::write(&flaky_secret, &secret).must();
    // The secret is shown once; reading the channel shows only that there is one.
    let (_, read) = api.get(&format!("/api/v1/notification-channels/{flaky_id}")).await;
    assert_eq!(read["data"]["has_secret"], true, "{read}");
    assert!(read["data"].get("secret").is_none(), "{read}");
    let (status, queued) = api
        .post(&format!("/api/v1/notification-channels/{flaky_id}/test"), &json!({}))
        .await;
    assert_eq!(status, 202, "{queued}");
    let tries: Vec<Value> = (0..3).map(|_| flaky.next("three attempts", LIMIT)).collect();
    for t in &tries {
        assert_eq!(t["verified"], true, "the official verifier accepts every attempt: {t}");
        assert_eq!(t["id"], tries[0]["id"], "every attempt carries the same webhook-id");
        assert_eq!(t["body"]["type"], "channel.test", "{t}");
    }
    assert_eq!(tries[2]["answered"], 204);
    let at = |i: usize| tries[i]["at"].as_f64().must();
    let (first, second) = (at(1) - at(0), at(2) - at(1));
    // Back-off with equal jitter: about 0.5–1 s, then 1–2 s.
    assert!((0.4..1.6).contains(&first), "first wait {first}");
    assert!(
        second >= 0.9 && second >= first * 0.9,
        "second wait {second} after {first}"
    );
    let sent = logged(api, "the message sent", |m| {
        m["channel_id"] == flaky_id.as_str() && m["state"] == "sent"
    })
    .await;
    assert_eq!(sent["attempts"], 3, "{sent}");
    assert_eq!(sent["receipt"], "HTTP 204", "{sent}");
    let origin = format!("http://127.0.0.1:{}/…", flaky.port);
    assert_eq!(
        sent["recipient"],
        origin.as_str(),
        "the path's token is not shown: {sent}"
    );

    // 410 Gone: failed at once, and the channel disabled.
    let (gone, gone_secret) = receiver("gone", &["--fail", "100", "--status", "410"]);
    let (gone_id, secret) = channel(api, hook(&gone, "Gone")).await;
    std::fs::write(&gone_secret, secret.must()).must();
    api.post(&format!("/api/v1/notification-channels/{gone_id}/test"), &json!({}))
        .await;
    assert_eq!(gone.next("the one attempt", LIMIT)["answered"], 410);
    let failed = logged(api, "the 410", |m| {
        m["channel_id"] == gone_id.as_str() && m["state"] == "failed"
    })
    .await;
    assert_eq!(failed["attempts"], 1, "{failed}");
    let (_, read) = api.get(&format!("/api/v1/notification-channels/{gone_id}")).await;
    assert!(
        read["data"]["disabled"]["reason"].as_str().must().contains("410"),
        "{read}"
    );
    let (status, _) = api
        .post(&format!("/api/v1/notification-channels/{gone_id}/test"), &json!({}))
        .await;
    assert_eq!(status, 409, "a disabled channel takes no test");
    assert_eq!(
        gone.drain(Duration::from_secs(2)).len(),
        0,
        "nothing more went to a 410"
    );

    // Failing every attempt: given up after max_attempts (3), and the channel disabled.
    let (down, down_secret) = receiver("down", &["--fail", "100", "--status", "500"]);
    let (down_id, old_secret) = channel(api, hook(&down, "Down")).await;
    let old_secret = old_secret.must();
    std::fs::write(&down_secret, &old_secret).must();
    api.post(&format!("/api/v1/notification-channels/{down_id}/test"), &json!({}))
        .await;
    let failed = logged(api, "the given-up message", |m| {
        m["channel_id"] == down_id.as_str() && m["state"] == "failed"
    })
    .await;
    assert_eq!(failed["attempts"], 3, "{failed}");
    assert!(
        failed["last_error"]
            .as_str()
            .must()
            .contains("gave up after 3 attempts"),
        "{failed}"
    );
    let (_, read) = api.get(&format!("/api/v1/notification-channels/{down_id}")).await;
    assert!(read["data"]["disabled"].is_object(), "{read}");
    // Enabled again by the operator, with a rotated secret: the old one no longer verifies.
    let (status, rotated) = api
        .post(
            &format!("/api/v1/notification-channels/{down_id}/rotate-secret"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["data"]["secret"].as_str().must();
    assert!(
        new_secret.starts_with("whsec_") && new_secret != old_secret,
        "{rotated}"
    );
    let (status, enabled) = api
        .post(&format!("/api/v1/notification-channels/{down_id}/enable"), &json!({}))
        .await;
    assert_eq!(status, 200, "{enabled}");
    assert!(enabled["data"]["disabled"].is_null(), "{enabled}");
    let (status, _) = api
        .post(&format!("/api/v1/notification-channels/{down_id}/test"), &json!({}))
        .await;
    assert_eq!(status, 202);
    let attempt = down.drain(Duration::from_secs(2));
    let attempt = attempt.last().must();
    assert_eq!(
        attempt["verified"], false,
        "signed with the new secret, checked with the old: {attempt}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_to_internal_addresses_are_refused_even_through_names_and_redirects() {
    let dir = tempfile::tempdir().must();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, "").must();
    let path = secret_file.display().to_string();
    // A loopback service that must never be reached, and an allowed receiver (127.0.0.2, let
    // through by `allow_networks`) that redirects there.
    let inside = Sink::start(&["webhook", "--secret-file", &path]);
    let target = format!("http://127.0.0.1:{}/internal", inside.port);
    let redirector = Sink::start(&[
        "webhook",
        "--host",
        "127.0.0.2",
        "--secret-file",
        &path,
        "--redirect",
        &target,
    ]);
    let app = spawn_app(|c| {
        fast(c);
        c.notify.webhooks.allow_networks = vec!["127.0.0.2/32".into()];
    })
    .await;
    let api = &app.api;
    let cases = [
        (target.clone(), "127.0.0.1 is a loopback address"),
        (
            "http://169.254.169.254/latest/meta-data/".to_owned(),
            "169.254.169.254 is a link-local address",
        ),
        ("http://10.0.0.1/hook".to_owned(), "10.0.0.1 is a private address"),
        (
            format!("http://localhost:{}/by-name", inside.port),
            "localhost resolves to",
        ),
        (
            format!("http://127.0.0.2:{}/redirects", redirector.port),
            "127.0.0.1 is a loopback address",
        ),
    ];
    for (url, why) in &cases {
        let (id, _) = channel(api, json!({"name": "Inside", "kind": "webhook", "url": url})).await;
        let (status, _) = api
            .post(&format!("/api/v1/notification-channels/{id}/test"), &json!({}))
            .await;
        assert_eq!(status, 202);
        let failed = logged(api, why, |m| m["channel_id"] == id.as_str() && m["state"] == "failed").await;
        let error = failed["last_error"].as_str().must();
        assert!(error.starts_with("refused: ") && error.contains(why), "{url}: {error}");
        assert_eq!(failed["attempts"], 1, "a refused destination is not retried: {failed}");
    }
    // The redirector was asked once; the loopback service never.
    assert_eq!(redirector.drain(Duration::from_secs(1)).len(), 1);
    assert_eq!(inside.drain(Duration::from_secs(1)), Vec::<Value>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_and_whatsapp_go_through_twilios_messages_api() {
    let sid = "AC0123456789abcdef0123456789abcdef";
    let twilio = Sink::twilio(sid);
    let app = spawn_app(|c| {
        fast(c);
        c.notify.twilio = Some(twilio.twilio_config(sid));
    })
    .await;
    let api = &app.api;
    let (sms, _) = channel(
        api,
        json!({"name": "Gabbai's phone", "kind": "sms", "to": ["+972501234567"], "language": "he",
               "route": {"min_severity": "critical"}}),
    )
    .await;
    let (wa, _) = channel(
        api,
        json!({"name": "Board WhatsApp", "kind": "whatsapp", "to": ["+972501234568"], "route": {"min_severity": "info"}}),
    )
    .await;
    api.post(&format!("/api/v1/notification-channels/{sms}/test"), &json!({}))
        .await;
    let got = twilio.next("the SMS", LIMIT);
    assert_eq!(got["ok"], true, "{got}");
    assert_eq!(got["to"], "+972501234567");
    assert_eq!(got["from"], "+15005550006");
    assert!(got["body"].as_str().must().contains("הודעת בדיקה"), "{got}");
    let sent = logged(api, "the SMS logged", |m| {
        m["channel_id"] == sms.as_str() && m["state"] == "sent"
    })
    .await;
    assert_eq!(sent["receipt"], got["sid"], "{sent}");
    assert_eq!(sent["recipient"], "+972*******67", "{sent}");

    // A warning alert goes to WhatsApp only (the SMS channel wants critical ones).
    hot_rule(api, "warning", "lobby").await;
    let screen = PlainScreen::connect(&app, "lobby1").await;
    tagged(api, "lobby1", "lobby").await;
    screen.temperature(90.0).await;
    let got = twilio.next("the WhatsApp message", LIMIT);
    assert_eq!(got["ok"], true, "{got}");
    assert_eq!(got["to"], "whatsapp:+972501234568");
    assert_eq!(got["from"], "whatsapp:+14155238886");
    assert!(
        got["body"]
            .as_str()
            .must()
            .starts_with("[Luach] Alert: Hot lobby on lobby1"),
        "{got}"
    );
    let sent = logged(api, "the WhatsApp message logged", |m| {
        m["channel_id"] == wa.as_str() && m["state"] == "sent"
    })
    .await;
    assert_eq!(sent["event"], "alert.opened", "{sent}");
    assert_eq!(sent["receipt"], got["sid"], "{sent}");
    assert_eq!(
        twilio.drain(Duration::from_secs(2)),
        Vec::<Value>::new(),
        "no SMS for a warning"
    );
}

/// Friday 27 November 2026, 20:00 in Jerusalem: Shabbat has begun there. (The clock is set in
/// the past so that what screens report now is fresh to it.)
fn friday_evening() -> DateTime<Utc> {
    "2026-11-27T18:00:00Z".parse().must()
}

fn move_to(clock: &ManualClock, at: DateTime<Utc>) {
    use luach_control_plane::auth::Clock;
    clock.advance(at - clock.now());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shabbat_and_quiet_hours_hold_messages_and_silences_stop_them() {
    let smtp = Sink::start(&["smtp"]);
    let friday = friday_evening();
    let clock = ManualClock::new(friday);
    let app = spawn_app_with_clock(
        |c| {
            fast(c);
            c.notify.smtp = Some(smtp.smtp_config());
        },
        Arc::new(clock.clone()),
    )
    .await;
    let api = &app.api;
    let profile = json!({
        "name": "Ohel Moshe", "latitude": 31.778, "longitude": 35.2354, "timezone": "Asia/Jerusalem",
        "israel": true, "nusach": "ashkenaz", "language": "he", "candle_lighting_minutes": 40
    });
    assert_eq!(api.put("/api/v1/synagogues/main", &profile).await.0, 201);
    let (shabbat_ch, _) = channel(
        api,
        json!({"name": "Gabbai", "kind": "email", "to": ["gabbai@example.org"], "route": {"min_severity": "info"}}),
    )
    .await;
    // Keeps no Shabbat hold but has quiet hours from 19:00 to 23:00 local.
    let (quiet_ch, _) = channel(
        api,
        json!({"name": "Night desk", "kind": "email", "to": ["desk@example.org"], "shabbat": "off",
               "quiet_hours": {"start": "19:00", "end": "23:00"}, "route": {"min_severity": "info"}}),
    )
    .await;

    hot_rule(api, "warning", "hall").await;
    hot_rule(api, "critical", "ark").await;
    let hall = PlainScreen::connect(&app, "hall1").await;
    tagged(api, "hall1", "hall").await;
    hall.temperature(80.0).await;
    let held = logged(api, "the held message", |m| {
        m["channel_id"] == shabbat_ch.as_str() && m["event"] == "alert.opened"
    })
    .await;
    assert_eq!(held["state"], "pending", "{held}");
    let synagogue: luach_content::SynagogueProfile = serde_json::from_value(profile.clone()).must();
    let havdalah = luach_content::rest::rest_until(&synagogue, friday).must().must();
    assert_eq!(
        held["next_at"].as_str().must().parse::<DateTime<Utc>>().must(),
        havdalah,
        "{held}"
    );
    assert!(held["hold"].as_str().must().contains("havdalah"), "{held}");
    let quiet = logged(api, "the message held for quiet hours", |m| {
        m["channel_id"] == quiet_ch.as_str() && m["event"] == "alert.opened"
    })
    .await;
    assert!(quiet["hold"].as_str().must().contains("quiet hours"), "{quiet}");
    let quiet_end = quiet["next_at"].as_str().must().parse::<DateTime<Utc>>().must();
    assert_eq!(quiet_end, friday + chrono::Duration::hours(3), "23:00 local");

    // A critical alert is urgent: it goes through Shabbat (and the quiet hours, by default).
    let ark = PlainScreen::connect(&app, "ark1").await;
    tagged(api, "ark1", "ark").await;
    ark.temperature(85.0).await;
    let urgent = smtp.next("the urgent email", LIMIT);
    assert!(urgent["subject"].as_str().must().contains("Hot ark"), "{urgent}");
    let urgent2 = smtp.next("the urgent email to the desk", LIMIT);
    assert!(urgent2["subject"].as_str().must().contains("Hot ark"), "{urgent2}");
    assert_eq!(
        smtp.drain(Duration::from_secs(2)),
        Vec::<Value>::new(),
        "the held ones wait"
    );

    // A silence on the lobby's screen: its alert opens, and no one is told.
    let lobby = PlainScreen::connect(&app, "lobby1").await;
    tagged(api, "lobby1", "hall").await;
    let (status, silence) = api
        .post(
            "/api/v1/alert-silences",
            &json!({"matchers": {"device_id": "lobby1"}, "ends_at": (friday + chrono::Duration::hours(2)).to_rfc3339(),
                    "comment": "being repaired"}),
        )
        .await;
    assert_eq!(status, 201, "{silence}");
    lobby.temperature(82.0).await;
    let alert = wait_for("the lobby's alert", LIMIT, || async move {
        let (_, body) = api.get("/api/v1/alerts?device=lobby1").await;
        body["data"]["items"].as_array()?.first().cloned()
    })
    .await;
    let alert_id = alert["id"].as_str().must();
    let (_, log) = api.get("/api/v1/notifications?limit=500").await;
    assert!(
        !log["data"]["items"]
            .as_array()
            .must()
            .iter()
            .any(|m| m["subject_id"] == alert_id),
        "a silenced alert tells no one: {log}"
    );

    // After the quiet hours, the desk hears; after havdalah, the gabbai.
    move_to(&clock, quiet_end + chrono::Duration::seconds(1));
    let desk = smtp.next("the desk's email after quiet hours", LIMIT);
    assert_eq!(desk["to"], json!(["desk@example.org"]), "{desk}");
    assert!(desk["subject"].as_str().must().contains("Hot hall"), "{desk}");
    assert_eq!(
        smtp.drain(Duration::from_secs(2)),
        Vec::<Value>::new(),
        "the gabbai's still waits"
    );
    move_to(&clock, havdalah + chrono::Duration::seconds(1));
    let gabbai = smtp.next("the gabbai's email after havdalah", LIMIT);
    assert_eq!(gabbai["to"], json!(["gabbai@example.org"]), "{gabbai}");
    assert!(gabbai["subject"].as_str().must().contains("Hot hall"), "{gabbai}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_committed_before_a_crash_is_delivered_once_after_the_restart() {
    let data = tempfile::tempdir().must();
    let secret_file = data.path().join("secret");
    std::fs::write(&secret_file, "").must();
    let receiver = Sink::start(&["webhook", "--secret-file", &secret_file.display().to_string()]);
    // The first run writes messages but sends none (`notify.dispatch = false`): the state a
    // crash between the commit and the send leaves.
    let config = |dispatch: bool| {
        let file = data.path().join(format!("notify-{dispatch}.toml"));
        let text = format!(
            "[alerts]\neval_secs = 1\n[notify]\ndispatch = {dispatch}\npoll_ms = 100\n[notify.webhooks]\nallow_private = true\n"
        );
        std::fs::write(&file, text).must();
        vec!["--config".to_owned(), file.display().to_string()]
    };
    let mut options = ServerOptions::new(&data.path().join("state"));
    options.extra_args = config(false);
    let mut server = Server::start(options.clone()).await;
    let api = server.api.clone();
    let url = format!("http://127.0.0.1:{}/hook", receiver.port);
    let (channel_id, secret) = channel(&api, json!({"name": "Ops", "kind": "webhook", "url": url})).await;
    std::fs::write(&secret_file, secret.must()).must();
    hot_rule(&api, "warning", "hall").await;
    let screen = PlainScreen::connect_to(&api, options.mqtt, "hall1").await;
    tagged(&api, "hall1", "hall").await;
    screen.temperature(80.0).await;
    let queued = logged(&api, "the queued message", |m| m["channel_id"] == channel_id.as_str()).await;
    assert_eq!(queued["state"], "pending", "{queued}");
    server.kill();
    drop(screen);

    let mut options = options.clone();
    options.extra_args = config(true);
    let server = Server::start(options).await;
    let got = receiver.next("the message after the restart", LIMIT);
    assert_eq!(got["verified"], true, "{got}");
    assert_eq!(got["id"], queued["id"], "{got}");
    assert_eq!(got["body"]["type"], "alert.opened", "{got}");
    assert_eq!(got["body"]["data"]["alert"]["device_id"], "hall1", "{got}");
    let sent = logged(&server.api, "the message sent", |m| {
        m["id"] == queued["id"] && m["state"] == "sent"
    })
    .await;
    assert_eq!(sent["attempts"], 1, "{sent}");
    assert_eq!(
        receiver.drain(Duration::from_secs(3)),
        Vec::<Value>::new(),
        "delivered once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn families_are_reminded_of_yahrzeits_and_the_honoured_of_their_aliyot() {
    let smtp = Sink::start(&["smtp"]);
    let sid = "AC0123456789abcdef0123456789abcdef";
    let twilio = Sink::twilio(sid);
    // Sunday 13 December 2026, 10:00 in Jerusalem.
    let clock = ManualClock::new("2026-12-13T08:00:00Z".parse().must());
    let app = spawn_app_with_clock(
        |c| {
            fast(c);
            c.notify.notices_every_secs = 1;
            c.notify.smtp = Some(smtp.smtp_config());
            c.notify.twilio = Some(twilio.twilio_config(sid));
        },
        Arc::new(clock.clone()),
    )
    .await;
    let api = &app.api;
    let profile = json!({
        "name": "Ohel Moshe", "latitude": 31.778, "longitude": 35.2354, "timezone": "Asia/Jerusalem",
        "israel": true, "nusach": "ashkenaz", "language": "he", "candle_lighting_minutes": 40
    });
    assert_eq!(api.put("/api/v1/synagogues/main", &profile).await.0, 201);
    // Passed 10 Tevet 5780: this year's yahrzeit is Sunday 20 December 2026.
    let (status, memorial) = api
        .post(
            "/api/v1/memorials",
            &json!({"name": "שרה בת אברהם", "passed": {"hebrew": {"year": 5780, "month": 10, "day": 10}}}),
        )
        .await;
    assert_eq!(status, 201, "{memorial}");
    let memorial_id = memorial["data"]["id"].as_str().must();
    let (status, reading) = api
        .post(
            "/api/v1/aliyot",
            &json!({"date": "2026-12-19", "note": "Shacharit",
                    "honours": [{"honour": "shlishi", "name": "Moshe ben Avraham"}, {"honour": "maftir", "name": "David"}]}),
        )
        .await;
    assert_eq!(status, 201, "{reading}");

    // No reminder without consent, and only to an address a message can reach.
    let (status, body) = api
        .post(
            "/api/v1/congregants",
            &json!({"name": "Rivka", "contact": {"kind": "email", "to": "rivka@example.org"}, "yahrzeits": [memorial_id]}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = api
        .post(
            "/api/v1/congregants",
            &json!({"name": "Rivka", "contact": {"kind": "sms", "to": "050-123"}, "yahrzeits": [memorial_id],
                    "consent": {"given_on": "2026-11-30", "how": "signed form at the office"}}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["fields"][0]["path"], "contact.to", "{body}");
    // A viewer may not read people's addresses.
    let viewer = app.user("default", "viewer", "viewer@example.org").await;
    assert_eq!(viewer.get("/api/v1/congregants").await.0, 403);

    let (status, family) = api
        .post(
            "/api/v1/congregants",
            &json!({"name": "Rivka", "contact": {"kind": "email", "to": "rivka@example.org"}, "language": "he",
                    "yahrzeits": [memorial_id], "yahrzeit_days_before": 7,
                    "consent": {"given_on": "2026-11-30", "how": "signed form at the office"}}),
        )
        .await;
    assert_eq!(status, 201, "{family}");
    let (status, honoured) = api
        .post(
            "/api/v1/congregants",
            &json!({"name": "Moshe ben Avraham", "contact": {"kind": "whatsapp", "to": "+972501234569"},
                    "language": "en", "aliyot": true, "aliyah_days_before": 2,
                    "consent": {"given_on": "2026-12-01", "how": "by phone to the gabbai"}}),
        )
        .await;
    assert_eq!(status, 201, "{honoured}");

    // Seven days before the yahrzeit: the family's email, in Hebrew, once.
    let mail = smtp.next("the yahrzeit reminder", LIMIT);
    assert_eq!(mail["to"], json!(["rivka@example.org"]), "{mail}");
    assert_eq!(mail["subject"], "[לוח] יום השנה של שרה בת אברהם", "{mail}");
    let text = mail["text"].as_str().must();
    assert!(text.contains("י׳ טבת") && text.contains("Ohel Moshe"), "{mail}");
    assert_eq!(smtp.drain(Duration::from_secs(3)), Vec::<Value>::new(), "sent once");
    let sent = logged(api, "the reminder logged", |m| m["event"] == "notice.yahrzeit").await;
    assert_eq!(sent["state"], "sent", "{sent}");
    assert_eq!(sent["channel_id"], "", "{sent}");
    assert_eq!(sent["recipient"], "r***@example.org", "{sent}");
    // The honour is six days away: not yet.
    assert_eq!(twilio.drain(Duration::from_secs(1)), Vec::<Value>::new());

    // Friday night: the aliyah is due, but it is Shabbat in Jerusalem; the reminder waits for
    // havdalah.
    clock.advance(chrono::Duration::hours(5 * 24 + 8));
    let held = logged(api, "the aliyah reminder held", |m| m["event"] == "notice.aliyah").await;
    assert_eq!(held["state"], "pending", "{held}");
    assert!(held["hold"].as_str().must().contains("havdalah"), "{held}");
    assert_eq!(twilio.drain(Duration::from_secs(2)), Vec::<Value>::new());
    clock.advance(chrono::Duration::hours(24));
    let got = twilio.next("the aliyah reminder", LIMIT);
    assert_eq!(got["to"], "whatsapp:+972501234569", "{got}");
    let body = got["body"].as_str().must();
    assert!(
        body.starts_with("[Luach] Your honour at the Torah reading: Shlishi") && body.contains("Shacharit"),
        "{got}"
    );
    assert_eq!(twilio.drain(Duration::from_secs(2)), Vec::<Value>::new(), "sent once");
}
