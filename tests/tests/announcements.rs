//! Announcements through the REST API: validation, windows, targeting, priority.

use luach_tests::spawn_app;
use serde_json::{Value, json};

fn texts(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["text_en"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn screens_show_the_announcements_meant_for_them() {
    let app = spawn_app(|_| {}).await;
    let api = &app.api;
    for (id, tags) in [("lobby1", json!(["entrance"])), ("women1", json!(["women"]))] {
        let (code, _) = api.post("/api/v1/devices", &json!({"id": id, "tags": tags})).await;
        assert_eq!(code, 201);
    }
    let posts = [
        json!({"text_en": "Kiddush after davening", "text_he": "קידוש אחרי התפילה", "priority": 10}),
        json!({"text_en": "Shiur in the women's section", "targets": {"tags": ["women"]}, "priority": 50}),
        json!({"text_en": "Lobby only", "targets": {"devices": ["lobby1"]}}),
        json!({"text_en": "Chanukah party", "priority": 90,
               "starts_at": "2026-12-06T16:00:00Z", "ends_at": "2026-12-07T00:00:00Z"}),
    ];
    for p in &posts {
        let (code, body) = api.post("/api/v1/announcements", p).await;
        assert_eq!(code, 201, "{body}");
    }

    let (_, body) = api
        .get("/api/v1/devices/lobby1/announcements?at=2026-12-01T10:00:00Z")
        .await;
    assert_eq!(texts(&body), ["Kiddush after davening", "Lobby only"]);
    let (_, body) = api
        .get("/api/v1/devices/women1/announcements?at=2026-12-06T18:00:00Z")
        .await;
    assert_eq!(
        texts(&body),
        [
            "Chanukah party",
            "Shiur in the women's section",
            "Kiddush after davening"
        ]
    );
    let (code, _) = api.get("/api/v1/devices/nosuch/announcements").await;
    assert_eq!(code, 404);

    let (_, list) = api.get("/api/v1/announcements?limit=2").await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(2));
    let id = list["data"][0]["id"].as_str().unwrap_or_default().to_owned();
    let (code, _) = api.delete(&format!("/api/v1/announcements/{id}")).await;
    assert_eq!(code, 204);
    let (code, _) = api.get(&format!("/api/v1/announcements/{id}")).await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn bad_announcements_are_refused_with_paths() {
    let app = spawn_app(|_| {}).await;
    let api = &app.api;
    for (body, path) in [
        (json!({"text_en": " "}), "text_he"),
        (
            json!({"text_en": "x", "starts_at": "2026-12-02T00:00:00Z", "ends_at": "2026-12-01T00:00:00Z"}),
            "ends_at",
        ),
        (json!({"text_en": "x", "priority": 101}), "priority"),
        (
            json!({"text_en": "x", "targets": {"devices": ["Not/A/Device"]}}),
            "targets.devices[0]",
        ),
        (json!({"text_en": "x", "starts_at": "yesterday"}), "starts_at"),
        (json!({"text_en": "x", "tenant_id": "other"}), "tenant_id"),
    ] {
        let (code, resp) = api.post("/api/v1/announcements", &body).await;
        assert_eq!(code, 422, "{body} → {resp}");
        assert_eq!(resp["error"]["fields"][0]["path"], path, "{resp}");
    }
}
