//! Quotas per tenant (the licence of a synagogue on a shared installation): set by the super
//! admin, visible to the tenant's admin, enforced with clear errors, and one tenant's limit
//! never touches another's.

use luach_tests::{Must, spawn_app};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_are_set_shown_and_enforced_per_tenant() {
    let app = spawn_app(|c| {
        // The installation's default; `small` gets its own below.
        c.quotas.api_requests_per_minute = 1_000;
    })
    .await;
    let root = app.user("small", "super_admin", "root@example.org").await;
    let small = app.user("small", "tenant_admin", "admin@small.example").await;
    let big = app.user("big", "tenant_admin", "admin@big.example").await;

    // Only a super admin sets a quota; a tenant admin cannot raise their own.
    let quota = json!({"max_devices": 2, "api_requests_per_minute": 30, "max_content_bytes": 2000});
    let (status, _) = small.put("/api/v1/tenants/small/quota", &quota).await;
    assert_eq!(status, 403);
    let (status, body) = root.put("/api/v1/tenants/small/quota", &quota).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = root
        .put("/api/v1/tenants/small/quota", &json!({"max_devices": -1}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("validation_failed")),
        "{body}"
    );
    let (status, _) = root.put("/api/v1/tenants/nosuch/quota", &quota).await;
    assert_eq!(status, 404);

    // The tenant's admin sees limits and usage.
    let (status, own) = small.get("/api/v1/tenant").await;
    assert_eq!(status, 200, "{own}");
    assert_eq!(own["data"]["quota"]["limits"]["max_devices"], 2);
    assert_eq!(own["data"]["quota"]["usage"]["devices"], 0);

    // Devices.
    for id in ["q1", "q2"] {
        assert_eq!(small.post("/api/v1/devices", &json!({"id": id})).await.0, 201);
    }
    let (status, body) = small.post("/api/v1/devices", &json!({"id": "q3"})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("quota_exceeded")),
        "{body}"
    );
    assert!(body["error"]["message"].as_str().must().contains("devices"), "{body}");
    assert_eq!(
        big.post("/api/v1/devices", &json!({"id": "q3"})).await.0,
        201,
        "another tenant"
    );

    // Stored content.
    let long = "א".repeat(900);
    let (status, _) = small.post("/api/v1/announcements", &json!({"text_he": long})).await;
    assert_eq!(status, 201);
    let (status, body) = small.post("/api/v1/announcements", &json!({"text_he": long})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("quota_exceeded")),
        "{body}"
    );
    assert_eq!(
        big.post("/api/v1/announcements", &json!({"text_he": long})).await.0,
        201
    );

    // API requests per minute: the tenant is refused with Retry-After; the other one is not.
    let mut refused = None;
    for _ in 0..40 {
        let req = small
            .http
            .get(small.url("/api/v1/devices"))
            .bearer_auth(small.token.as_deref().must());
        let resp = req.send().await.must();
        if resp.status().as_u16() == 429 {
            let retry: u64 = resp.headers()["retry-after"].to_str().must().parse().must();
            let body: serde_json::Value = resp.json().await.must();
            refused = Some((retry, body));
            break;
        }
    }
    let (retry, body) = refused.must();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(body["error"]["code"], "api_quota_exceeded", "{body}");
    assert_eq!(
        big.get("/api/v1/devices").await.0,
        200,
        "another tenant keeps its own quota"
    );
}
