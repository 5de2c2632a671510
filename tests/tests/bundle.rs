//! Content bundles over HTTP: one screen's content, versioned by its SHA-256, fetched with
//! conditional requests; the version changes exactly when the screen's content changes.

use luach_tests::{Api, Must, spawn_app};
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
