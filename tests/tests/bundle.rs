//! Content bundles: one screen's content, versioned by its SHA-256, announced over MQTT,
//! fetched over HTTP with conditional requests, and kept by the agent for offline use; the
//! version changes exactly when the screen's content changes.

use std::time::Duration;

use luach_schemas::messages::BundleNotice;
use luach_schemas::{Topic, TopicPrefix, decode_bundle_notice};
use luach_tests::{Agent, Api, Must, bin_path, bulk_token, spawn_app, wait_for};
use serde_json::{Value, json};

async fn fetch(api: &Api, device: &str, etag: Option<&str>) -> (u16, Option<String>, Vec<u8>) {
    let mut req = api.http.get(api.url(&format!("/api/v1/devices/{device}/bundle")));
    if let Some(tag) = etag {
        req = req.header("if-none-match", tag);
    }
    let resp = req.bearer_auth(api.token.as_deref().must()).send().await.must();
    let status = resp.status().as_u16();
    let tag = resp.headers().get("etag").map(|v| v.to_str().must().to_owned());
    (status, tag, resp.bytes().await.must().to_vec())
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    data_encoding::HEXLOWER.encode(&sha2::Sha256::digest(bytes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundles_carry_the_screens_content_and_change_only_with_it() {
    let app = spawn_app(|_| {}).await;
    let api = &app.api;
    for (id, tags) in [("lobby1", json!(["lobby"])), ("hall1", json!(["hall"]))] {
        assert_eq!(
            api.post("/api/v1/devices", &json!({"id": id, "tags": tags})).await.0,
            201
        );
    }
    let profile = json!({
        "name": "Beit Knesset", "latitude": 31.778, "longitude": 35.2354, "elevation_m": 754,
        "timezone": "Asia/Jerusalem", "israel": true, "nusach": "ashkenaz", "language": "he",
        "candle_lighting_minutes": 40, "schedule": {"rules": []}
    });
    assert_eq!(api.put("/api/v1/synagogues/main", &profile).await.0, 201);
    let mut hall = profile.clone();
    hall["name"] = json!("Beit Midrash");
    hall["screens"] = json!({"tags": ["hall"]});
    // "a-hall" sorts before "main", so the hall screen shows it; the lobby falls through to main.
    assert_eq!(api.put("/api/v1/synagogues/a-hall", &hall).await.0, 201);
    let (status, _) = api
        .post(
            "/api/v1/announcements",
            &json!({"text_en": "Lobby only", "targets": {"tags": ["lobby"]}}),
        )
        .await;
    assert_eq!(status, 201);

    let (status, etag, bytes) = fetch(api, "lobby1", None).await;
    assert_eq!(status, 200);
    let etag = etag.must();
    // The ETag is the SHA-256 of the exact bytes.
    assert_eq!(etag, format!("\"{}\"", sha256_hex(&bytes)));
    let bundle: Value = serde_json::from_slice(&bytes).must();
    assert_eq!(bundle["format"], 1);
    assert_eq!(bundle["synagogue"]["name"], "Beit Knesset");
    assert_eq!(bundle["announcements"][0]["text_en"], "Lobby only");
    let (_, _, hall_bytes) = fetch(api, "hall1", None).await;
    let hall_bundle: Value = serde_json::from_slice(&hall_bytes).must();
    assert_eq!(hall_bundle["synagogue"]["name"], "Beit Midrash");
    assert_eq!(hall_bundle["announcements"], json!([]));

    // Unchanged content: 304 and no body; the same bytes on a full fetch.
    let (status, again, body) = fetch(api, "lobby1", Some(&etag)).await;
    assert_eq!((status, again.as_deref(), body.len()), (304, Some(etag.as_str()), 0));
    assert_eq!(fetch(api, "lobby1", None).await.2, bytes);
    // Content for other screens does not change this one's version; its own does.
    let (status, _) = api
        .post(
            "/api/v1/announcements",
            &json!({"text_en": "Hall only", "targets": {"tags": ["hall"]}}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(fetch(api, "lobby1", Some(&etag)).await.0, 304);
    let (status, _) = api.post("/api/v1/announcements", &json!({"text_en": "Everyone"})).await;
    assert_eq!(status, 201);
    let (status, changed, _) = fetch(api, "lobby1", Some(&etag)).await;
    assert_eq!(status, 200);
    assert_ne!(changed.must(), etag);
    // Other tenants' screens are not found.
    let other = app.user("other", "tenant_admin", "admin@other.example").await;
    assert_eq!(fetch(&other, "lobby1", None).await.0, 404);
}

/// A device on the plain (development) listener: subscribed to its own down topics, and
/// saying hello like the agent does.
struct FakeScreen {
    client: rumqttc::AsyncClient,
    notices: tokio::sync::mpsc::UnboundedReceiver<BundleNotice>,
}

impl FakeScreen {
    async fn connect(port: u16, device: &str) -> Self {
        use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
        let mut options = MqttOptions::new(device, "127.0.0.1", port);
        options.set_keep_alive(Duration::from_secs(30));
        let (client, mut eventloop) = AsyncClient::new(options, 16);
        client
            .subscribe(Topic::down_filter(&TopicPrefix::parse(device).must()), QoS::AtLeastOnce)
            .await
            .must();
        luach_tests::publish_hello(&client, device).await;
        let (tx, notices) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(event) = eventloop.poll().await {
                if let Event::Incoming(Packet::Publish(p)) = event
                    && let Ok(env) = decode_bundle_notice(&p.payload)
                    && tx.send(env.body).is_err()
                {
                    break;
                }
            }
        });
        Self { client, notices }
    }

    async fn next_notice(&mut self) -> BundleNotice {
        tokio::time::timeout(Duration::from_secs(20), self.notices.recv())
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("no bundle notice within 20 s"))
    }
}

async fn own_bundle(api: &Api, token: &str, etag: Option<&str>) -> (u16, Option<String>, Vec<u8>) {
    let mut req = api
        .http
        .get(api.url("/api/v1/agent/bundle"))
        .header("x-luach-device-token", token);
    if let Some(tag) = etag {
        req = req.header("if-none-match", tag);
    }
    let resp = req.send().await.must();
    let status = resp.status().as_u16();
    let sha = resp
        .headers()
        .get("x-luach-bundle-sha256")
        .map(|v| v.to_str().must().to_owned());
    (status, sha, resp.bytes().await.must().to_vec())
}

/// A screen is told its bundle version over MQTT when it connects and when its content
/// changes, and fetches the bundle with the device token from the notice; the token opens
/// nothing else and dies with the device.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screens_are_told_of_new_bundles_and_fetch_them_with_their_token() {
    let app = spawn_app(|_| {}).await;
    let api = &app.api;
    assert_eq!(
        api.post("/api/v1/devices", &json!({"id": "lobby1", "tags": ["lobby"]}))
            .await
            .0,
        201
    );
    let mut screen = FakeScreen::connect(app.mqtt.port(), "lobby1").await;

    // On connection: the current version, which is what the API serves.
    let first = screen.next_notice().await;
    assert_eq!(first.path, "/api/v1/agent/bundle");
    let (status, etag, bytes) = fetch(api, "lobby1", None).await;
    assert_eq!(status, 200);
    assert_eq!(etag.must(), format!("\"{}\"", first.sha256));
    let (status, sha, own) = own_bundle(api, &first.token, None).await;
    assert_eq!((status, sha.as_deref()), (200, Some(first.sha256.as_str())));
    assert_eq!(own, bytes);
    assert_eq!(sha256_hex(&own), first.sha256);
    let tag = format!("\"{}\"", first.sha256);
    assert_eq!(own_bundle(api, &first.token, Some(&tag)).await.0, 304);

    // A change the screen shows: a new notice naming the new version.
    let (status, _) = api
        .post("/api/v1/announcements", &json!({"text_en": "Kiddush after davening"}))
        .await;
    assert_eq!(status, 201);
    let second = screen.next_notice().await;
    assert_ne!(second.sha256, first.sha256);
    let (status, sha, body) = own_bundle(api, &second.token, Some(&tag)).await;
    assert_eq!((status, sha.as_deref()), (200, Some(second.sha256.as_str())));
    let bundle: Value = serde_json::from_slice(&body).must();
    assert_eq!(bundle["announcements"][0]["text_en"], "Kiddush after davening");

    // The token is a device credential only, and only a valid one is accepted.
    let no_token = api
        .anonymous()
        .send(api.http.get(api.url("/api/v1/agent/bundle")))
        .await;
    assert_eq!(no_token.0, 401, "{}", no_token.1);
    assert_eq!(own_bundle(api, api.token.as_deref().must(), None).await.0, 401);
    let mut forged = second.token.clone();
    forged.pop();
    forged.push(if second.token.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(own_bundle(api, &forged, None).await.0, 401);
    let as_user = api.with_token(&second.token).get("/api/v1/devices").await;
    assert_eq!(as_user.0, 401, "{}", as_user.1);

    // A deleted screen's token is refused at once.
    assert_eq!(api.delete("/api/v1/devices/lobby1").await.0, 204);
    assert_eq!(own_bundle(api, &second.token, None).await.0, 401);
    drop(screen.client);
}

/// A real agent fetches its bundle when told, keeps it on disk, and `luach-agent show` draws
/// from it offline exactly the day the control plane previews for that screen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_keeps_its_last_good_bundle_and_shows_the_previewed_day_offline() {
    let app = spawn_app(|c| c.mqtt.plain_listener = false).await;
    let api = app.api.clone();
    let profile = json!({
        "name": "Ohel Moshe", "latitude": 40.7128, "longitude": -74.006, "elevation_m": 10,
        "timezone": "America/New_York", "nusach": "ashkenaz", "language": "en",
        "schedule": {"rules": [
            {"name": "Mincha", "time": {"zman": "sunset", "offset_minutes": -15},
             "round": {"mode": "down", "minutes": 5}, "days": ["every_day"]}
        ]}
    });
    assert_eq!(api.put("/api/v1/synagogues/main", &profile).await.0, 201);
    let (status, _) = api
        .post(
            "/api/v1/announcements",
            &json!({"text_en": "Chanukah party", "ends_at": "2026-12-20T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = api
        .post(
            "/api/v1/aliyot",
            &json!({"date": "2026-12-05", "honours": [{"honour": "kohen", "name": "Moshe Katz"}]}),
        )
        .await;
    assert_eq!(status, 201);

    let token = bulk_token(&api, 1).await;
    let state = tempfile::tempdir().must();
    let agent = Agent::start(&api.base, state.path(), &["--enrolment-token", &token]);
    let current = state.path().join("bundle").join("current");
    let first = wait_for("the agent to store its bundle", Duration::from_secs(60), || {
        let current = current.clone();
        async move { std::fs::read_to_string(current).ok() }
    })
    .await;
    let device = std::fs::read_to_string(state.path().join("device-id")).must();

    let show = |date: &str| {
        let out = std::process::Command::new(bin_path("luach-agent"))
            .args(["show", "--date", date, "--state-dir"])
            .arg(state.path())
            .output()
            .must();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).must()
    };
    for date in ["2026-12-04", "2026-12-05"] {
        let mut offline = show(date);
        assert_eq!(offline["bundle"], first.as_str());
        offline.as_object_mut().must().remove("bundle");
        let (status, preview) = api.get(&format!("/api/v1/devices/{device}/preview?date={date}")).await;
        assert_eq!(status, 200, "{preview}");
        assert_eq!(
            offline, preview["data"],
            "the screen and the preview disagree on {date}"
        );
    }
    // The picture: the screen's renderer on its stored bundle and the control plane's preview
    // are the same pixels, in the screen's own settings (set here through the device API).
    let (status, _) = api
        .patch(
            &format!("/api/v1/devices/{device}"),
            &json!({"board": {"layout": "portrait", "theme": "dark", "language": "both"}}),
        )
        .await;
    assert_eq!(status, 200);
    let with_settings = wait_for(
        "the agent to store the bundle with its settings",
        Duration::from_secs(30),
        || {
            let (current, first) = (current.clone(), first.clone());
            async move { std::fs::read_to_string(current).ok().filter(|s| *s != first) }
        },
    )
    .await;
    let at = "2026-12-04T13:10:00Z";
    let drawn = state.path().join("drawn.png");
    let out = std::process::Command::new(bin_path("luach-agent"))
        .args(["render", "--size", "1080x1920", "--at", at, "--bundle"])
        .arg(state.path().join("bundle").join(format!("{with_settings}.json")))
        .arg("--out")
        .arg(&drawn)
        .output()
        .must();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let resp = api
        .http
        .get(api.url(&format!("/api/v1/devices/{device}/preview.png?at={at}")))
        .bearer_auth(api.token.as_deref().must())
        .send()
        .await
        .must();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["content-type"], "image/png");
    let preview = resp.bytes().await.must();
    assert!(
        preview.as_ref() == std::fs::read(&drawn).must().as_slice(),
        "the preview and the screen's own frame differ"
    );
    let (status, body) = api
        .get(&format!("/api/v1/devices/{device}/preview.png?at={at}&width=99999"))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["fields"][0]["path"], "width", "{body}");
    let (status, _) = api.get("/api/v1/devices/nosuchscreen/preview.png").await;
    assert_eq!(status, 404);
    let first = with_settings;

    let friday = show("2026-12-04");
    assert!(friday["day"]["zmanim"]["candle_lighting"].is_string(), "{friday}");
    assert_eq!(friday["announcements"][0]["text_en"], "Chanukah party");
    assert_eq!(show("2026-12-05")["aliyot"][0]["honours"][0]["name"], "Moshe Katz");
    assert_eq!(show("2026-12-20")["announcements"], json!([]));

    // An edit reaches the running screen.
    let mut changed = profile.clone();
    changed["name"] = json!("Ohel Moshe (new hall)");
    assert_eq!(api.put("/api/v1/synagogues/main", &changed).await.0, 200);
    let second = wait_for("the agent to store the new bundle", Duration::from_secs(30), || {
        let (current, first) = (current.clone(), first.clone());
        async move { std::fs::read_to_string(current).ok().filter(|s| *s != first) }
    })
    .await;
    let day = show("2026-12-04");
    assert_eq!(day["bundle"], second.as_str());

    // Offline: the control plane is gone, the screen still has its day.
    app.shutdown.cancel();
    assert_eq!(show("2026-12-04"), day);
    drop(agent);
    assert_eq!(show("2026-12-04"), day);
}
