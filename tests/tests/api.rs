//! The REST API through real HTTP against an in-process server on ephemeral ports.

use luach_tests::{Must, spawn_app};
use serde_json::json;

#[tokio::test]
async fn device_crud_round_trip() {
    let app = spawn_app(|_| {}).await;
    let api = &app.api;

    let (code, body) = api
        .post(
            "/api/v1/devices",
            &json!({"id": "lobby1", "name": "מסך הלובי", "tags": ["lobby", "lobby"], "group": "main"}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["data"]["name"], "מסך הלובי");
    assert_eq!(body["data"]["tags"], json!(["lobby"]), "duplicate tags are folded");
    assert_eq!(body["data"]["status"], "offline");

    let (code, body) = api.post("/api/v1/devices", &json!({"id": "lobby1"})).await;
    assert_eq!((code, body["error"]["code"].as_str()), (409, Some("conflict")));

    let (code, body) = api.get("/api/v1/devices/lobby1").await;
    assert_eq!((code, body["data"]["group"].as_str()), (200, Some("main")));

    let (code, body) = api
        .patch(
            "/api/v1/devices/lobby1",
            &json!({"notes": "near the door", "group": null}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["notes"], "near the door");
    assert_eq!(body["data"]["group"], json!(null));
    assert_eq!(body["data"]["name"], "מסך הלובי", "absent fields stay");

    for i in 0..5 {
        let (code, _) = api
            .post(
                "/api/v1/devices",
                &json!({"id": format!("hall{i}"), "tags": if i % 2 == 0 { json!(["even"]) } else { json!([]) }}),
            )
            .await;
        assert_eq!(code, 201);
    }
    let (_, body) = api.get("/api/v1/devices?tag=even").await;
    assert_eq!(body["data"]["total"], 3);
    let (_, body) = api.get("/api/v1/devices?limit=2").await;
    assert_eq!(body["data"]["items"].as_array().map(Vec::len), Some(2));
    let after = body["data"]["next_after"].as_str().unwrap_or_default().to_owned();
    let (_, body) = api.get(&format!("/api/v1/devices?limit=2&after={after}")).await;
    assert_eq!(body["data"]["items"][0]["id"], "hall2");
    let (_, body) = api.get("/api/v1/devices?status=online").await;
    assert_eq!(body["data"]["total"], 0);

    let (code, _) = api.delete("/api/v1/devices/lobby1").await;
    assert_eq!(code, 204);
    let (code, body) = api.get("/api/v1/devices/lobby1").await;
    assert_eq!((code, body["error"]["code"].as_str()), (404, Some("not_found")));
    let (code, _) = api.delete("/api/v1/devices/lobby1").await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn bad_input_gets_the_error_envelope_with_field_paths() {
    let app = spawn_app(|c| c.http.body_limit_bytes = 4096).await;
    let api = &app.api;

    // Syntax error.
    let req = api
        .http
        .post(api.url("/api/v1/devices"))
        .header("content-type", "application/json")
        .body("{\"id\": ");
    let (code, body) = api.send(req).await;
    assert_eq!((code, body["error"]["code"].as_str()), (400, Some("malformed_json")));

    // Wrong content type.
    let req = api
        .http
        .post(api.url("/api/v1/devices"))
        .header("content-type", "text/plain")
        .body("{}");
    let (code, body) = api.send(req).await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (415, Some("unsupported_media_type"))
    );

    // Invalid id, unknown field (no mass assignment), wrong type: each names its path.
    for (payload, path) in [
        (json!({"id": "Bad/Id"}), "id"),
        (json!({"id": "ok1", "tenant_id": "other"}), "tenant_id"),
        (json!({"id": "ok1", "tags": ["a", 7]}), "tags[1]"),
        (json!({"id": {"$ne": null}}), "id"),
    ] {
        let (code, body) = api.post("/api/v1/devices", &payload).await;
        assert_eq!(code, 422, "{payload} → {body}");
        assert_eq!(body["error"]["code"], "validation_failed");
        assert_eq!(body["error"]["fields"][0]["path"], path, "{body}");
    }

    // Field limits, all reported at once.
    let (code, body) = api
        .post(
            "/api/v1/devices",
            &json!({"id": "ok2", "name": " ", "tags": ["x".repeat(41)], "group": ""}),
        )
        .await;
    assert_eq!(code, 422);
    let paths: Vec<_> = body["error"]["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert_eq!(paths, ["name", "tags[0]", "group"]);

    // Query strings.
    let (code, body) = api.get("/api/v1/devices?status=sleeping").await;
    assert_eq!((code, body["error"]["code"].as_str()), (400, Some("invalid_query")));
    assert_eq!(body["error"]["fields"][0]["path"], "status");
    let (code, body) = api.get("/api/v1/devices?limit=-1").await;
    assert_eq!(
        (code, body["error"]["fields"][0]["path"].as_str()),
        (400, Some("limit"))
    );
    let (code, _) = api.get("/api/v1/devices?limit=100000").await;
    assert_eq!(code, 200, "oversized pages are clamped, not refused");

    // Body limit.
    let big = json!({"id": "ok3", "notes": "n".repeat(8000)});
    let (code, body) = api.post("/api/v1/devices", &big).await;
    assert_eq!((code, body["error"]["code"].as_str()), (413, Some("payload_too_large")));

    // Unknown routes and methods, ids that cannot exist.
    let (code, body) = api.get("/api/v1/nothing").await;
    assert_eq!((code, body["error"]["code"].as_str()), (404, Some("no_route")));
    let (code, body) = api.send(api.http.put(api.url("/api/v1/devices"))).await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
    let (code, _) = api.get("/api/v1/devices/NOT-VALID").await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn operational_endpoints() {
    let app = spawn_app(|_| {}).await;
    let api = &app.api;
    let resp = api.http.get(api.url("/healthz")).send().await.must();
    assert_eq!(resp.status(), 200);
    for header in [
        "x-content-type-options",
        "x-frame-options",
        "content-security-policy",
        "x-request-id",
    ] {
        assert!(resp.headers().contains_key(header), "missing {header}");
    }
    let (code, body) = api.get("/readyz").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["checks"]["store"]["ok"], true);
    assert_eq!(body["checks"]["broker"]["ok"], true);
    let (code, body) = api.get("/api/v1/agent/bootstrap").await;
    assert_eq!(code, 200);
    assert_eq!(body["data"]["mqtt"], format!("127.0.0.1:{}", app.mqtt.port()));
}

#[tokio::test]
async fn cors_answers_only_configured_origins() {
    let app = spawn_app(|c| c.http.cors_origins = vec!["https://admin.example.org".into()]).await;
    let api = &app.api;
    let preflight = |origin: &'static str| {
        api.http
            .request(reqwest::Method::OPTIONS, api.url("/api/v1/devices"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let ok = preflight("https://admin.example.org").await.must();
    assert_eq!(
        ok.headers().get("access-control-allow-origin").map(|v| v.as_bytes()),
        Some(&b"https://admin.example.org"[..])
    );
    assert_eq!(
        ok.headers()
            .get("access-control-allow-credentials")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    let evil = preflight("https://evil.example").await.must();
    assert!(evil.headers().get("access-control-allow-origin").is_none());
    // Without configured origins there are no CORS headers at all.
    let plain = spawn_app(|_| {}).await;
    let resp = plain
        .api
        .http
        .get(plain.api.url("/api/v1/devices"))
        .header("origin", "https://admin.example.org")
        .send()
        .await
        .must();
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    // Origins are checked at start-up.
    let mut c = luach_control_plane::Config::default();
    c.http.cors_origins = vec!["*".into()];
    assert!(c.validate().is_err());
}

#[tokio::test]
async fn metrics_pass_promtool() {
    let app = spawn_app(|_| {}).await;
    // Generate some traffic so labelled families have samples.
    app.api.get("/api/v1/devices").await;
    app.api.get("/api/v1/devices/none").await;
    let text = app.api.metrics_text().await;
    for family in [
        "luach_devices_connected",
        "luach_http_requests_total",
        "luach_store_operation_duration_seconds",
        "luach_ingest_messages_stored_total",
    ] {
        assert!(text.contains(family), "{family} missing from /metrics:\n{text}");
    }
    assert!(
        text.contains(r#"route="/api/v1/devices/{id}""#),
        "routes are labelled by template:\n{text}"
    );
    luach_tests::promtool_check(&text);
}
