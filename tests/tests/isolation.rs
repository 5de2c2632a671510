//! Cross-tenant attack suite. Three tenants are seeded with a canary string in every kind of
//! record (devices, certificates, screenshots, synagogues, memorials, announcements, aliyot, shiurim,
//! timers, saved fleet queries, alert rules, alerts, users, personal tokens, bulk enrolment tokens). Each tenant's
//! users then call every
//! route of the route table (new routes join by themselves) with every path parameter filled
//! with the other tenants' ids of every kind, forged tenant fields, NoSQL operator injection and
//! bodies carrying a "plant" canary. Nothing of another tenant may come back, no answer may be a
//! server error, nothing planted may appear in a victim's data, and the victims' records,
//! personal tokens and audit chains must be unchanged afterwards. On SQLite and on a MongoDB
//! wire server.

use std::collections::BTreeMap;

use futures::StreamExt;
use luach_control_plane::api::{Access, route_table};
use luach_control_plane::auth::Role;
use luach_tests::{Api, MongoWire, Must, TestApp, bulk_token, spawn_app};
use serde_json::{Value, json};

/// Hostile requests in flight at once.
const IN_FLIGHT: usize = 8;

const TENANTS: [&str; 3] = ["alpha", "beta", "gamma"];

fn canary(tenant: &str) -> String {
    format!("CANARY-{}-7f3a", tenant.to_uppercase())
}

/// What of `tenant` a list shows: the canary, or (the message log, which shows neither names
/// nor texts) its webhook's masked address.
fn mark_in(list: &str, tenant: &str) -> String {
    if list == "/api/v1/notifications" {
        format!("https://{tenant}.example.org/")
    } else {
        canary(tenant)
    }
}

fn plant(attacker: &str) -> String {
    format!("PLANT-{}-c41b", attacker.to_uppercase())
}

/// One tenant's seeded records: its admin, its ids by path-parameter name, and the lists and
/// items to compare before and after.
struct Seeded {
    admin: Api,
    /// A personal token of the admin: must still work after the attacks.
    pat: Api,
    /// Values for each path parameter name (`id`, `device_id`).
    ids: BTreeMap<&'static str, Vec<String>>,
    /// Item paths whose answers must not change.
    items: Vec<String>,
}

async fn created(api: &Api, path: &str, body: Value) -> String {
    let (status, answer) = api.post(path, &body).await;
    assert_eq!(status, 201, "{path}: {answer}");
    answer["data"]["id"].as_str().must().to_owned()
}

async fn seed(app: &TestApp, tenant: &str) -> Seeded {
    let admin = app
        .user(
            &format!("t-{tenant}"),
            "tenant_admin",
            &format!("admin@{tenant}.example"),
        )
        .await;
    let mark = canary(tenant);
    let device = format!("{tenant}dev1");
    let (status, b) = admin
        .post(
            "/api/v1/devices",
            &json!({"id": device, "name": mark, "notes": mark, "tags": [mark]}),
        )
        .await;
    assert_eq!(status, 201, "{b}");
    // An enrolled screen (certificate, history) and a bulk token named with the canary.
    let token = bulk_token(&admin, 3).await;
    let enrolled = format!("{tenant}enr1");
    let key = luach_pki::DeviceKey::generate().must();
    let body = json!({"device_id": enrolled, "csr_pem": key.csr_pem(&enrolled).must(), "enrolment_token": token});
    let (status, b) = admin.anonymous().post("/api/v1/enrolment/requests", &body).await;
    assert_eq!(status, 201, "{b}");
    assert_eq!(
        admin
            .patch(&format!("/api/v1/devices/{enrolled}"), &json!({"name": mark}))
            .await
            .0,
        200
    );
    let (status, b) = admin
        .post("/api/v1/enrolment/tokens", &json!({"name": mark, "max_uses": 2}))
        .await;
    assert_eq!(status, 201, "{b}");
    let enrolment_token = b["data"]["id"].as_str().must().to_owned();
    let query = created(
        &admin,
        "/api/v1/queries",
        json!({"name": mark, "query": {"text": mark, "status": "online"}}),
    )
    .await;
    let memorial = created(
        &admin,
        "/api/v1/memorials",
        json!({"name": mark, "family": mark, "passed": {"civil": {"date": "2001-02-03"}}}),
    )
    .await;
    let announcement = created(
        &admin,
        "/api/v1/announcements",
        json!({"text_en": mark, "text_he": mark}),
    )
    .await;
    let synagogue = format!("{tenant}-shul");
    let profile = json!({
        "name": mark, "address": mark, "latitude": 31.778, "longitude": 35.2354, "elevation_m": 754,
        "timezone": "Asia/Jerusalem", "israel": true, "nusach": "ashkenaz", "language": "he",
        "candle_lighting_minutes": 40, "schedule": {"rules": []}
    });
    assert_eq!(
        admin.put(&format!("/api/v1/synagogues/{synagogue}"), &profile).await.0,
        201
    );
    let aliyot = created(
        &admin,
        "/api/v1/aliyot",
        json!({"date": "2026-12-05", "note": mark, "honours": [{"honour": "kohen", "name": mark}]}),
    )
    .await;
    let shiur = created(
        &admin,
        "/api/v1/shiurim",
        json!({"teacher": mark, "schedule": {"name": mark, "time": {"fixed": "20:00"}, "days": ["weekday"]}}),
    )
    .await;
    let timer = created(
        &admin,
        "/api/v1/timers",
        json!({"label_en": mark, "target": {"at": "2027-01-01T10:00:00Z"}, "show_before_minutes": 60}),
    )
    .await;
    let user = created(
        &admin,
        "/api/v1/users",
        json!({"email": format!("gabbai@{tenant}.example"), "name": mark, "role": "gabbai", "password": "long-enough-pass"}),
    )
    .await;
    let (status, b) = admin.post("/api/v1/auth/tokens", &json!({"name": mark})).await;
    assert_eq!(status, 201, "{b}");
    let pat_id = b["data"]["id"].as_str().must().to_owned();
    let pat = admin.with_token(b["data"]["secret"].as_str().must());
    // A screenshot of the enrolled screen, uploaded with its device token.
    let shot = uuid::Uuid::now_v7().hyphenated().to_string();
    let device_token = app.device_token(&format!("t-{tenant}"), &enrolled).await;
    let (status, b) = app
        .upload_screenshot(&device_token, &shot, luach_tests::board_png(320, 180))
        .await;
    assert_eq!(status, 201, "{b}");
    // A job for the (offline) screen: it waits, queued, for the whole test.
    let (status, b) = admin
        .post(
            "/api/v1/jobs",
            &json!({"command": {"type": "brightness", "percent": 40}, "target": {"devices": [device]}}),
        )
        .await;
    assert_eq!(status, 201, "{b}");
    let job = b["data"]["id"].as_str().must().to_owned();
    // Telemetry history of the screen: a metrics sample and an event carrying the canary.
    let at = chrono::Utc::now() - chrono::Duration::hours(1);
    let (tenant_id, device_id) = (
        luach_schemas::TenantId::parse(&format!("t-{tenant}")).must(),
        luach_schemas::DeviceId::parse(&device).must(),
    );
    let row = |seq: u64, kind: &str, body: Value| luach_control_plane::store::TelemetryRow {
        tenant_id: tenant_id.clone(),
        device_id: device_id.clone(),
        stream: "isolation1".into(),
        seq,
        at,
        received: at,
        kind: kind.into(),
        body,
    };
    let rows = [
        row(1, "metrics", json!({"cpu_percent": 12.5, "agent_version": mark})),
        row(2, "event", json!({"name": "agent_started", "detail": mark})),
    ];
    let report = luach_control_plane::store::StreamReport {
        tenant_id: tenant_id.clone(),
        device_id: device_id.clone(),
        stream: "isolation1".into(),
        dropped: 0,
        highest_seq: 2,
        stored: 0,
        missing: 0,
        updated_at: at,
    };
    assert_eq!(app.system.store_telemetry(&rows, &[report]).await.must(), 2);
    // An alert rule and a (resolved, so no evaluation moves it) alert naming the canary.
    let rule = created(
        &admin,
        "/api/v1/alert-rules",
        json!({"name": mark, "target": {"tags": [mark]}, "condition": {"offline": {"for_s": 600}}}),
    )
    .await;
    let alert = luach_tests::seed_alert(app, &format!("t-{tenant}"), &rule, &device, &mark, true).await;
    // A silence, a notification channel and a message in the log, all naming the canary.
    let ends = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let silence = created(
        &admin,
        "/api/v1/alert-silences",
        json!({"matchers": {"device_id": device}, "ends_at": ends, "comment": mark}),
    )
    .await;
    let channel = created(
        &admin,
        "/api/v1/notification-channels",
        json!({"name": mark, "kind": "webhook", "url": format!("https://{tenant}.example.org/h")}),
    )
    .await;
    let (status, b) = admin
        .post(&format!("/api/v1/notification-channels/{channel}/test"), &json!({}))
        .await;
    assert_eq!(status, 202, "{b}");
    // A congregant who asked for reminders, with the canary as their name.
    let congregant = created(
        &admin,
        "/api/v1/congregants",
        json!({"name": mark, "contact": {"kind": "email", "to": format!("{tenant}@example.org")},
               "aliyot": true, "consent": {"given_on": "2026-11-01", "how": mark}}),
    )
    .await;
    let window = format!(
        "from={}&to={}",
        (at - chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ"),
        (at + chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ")
    );
    let ids = BTreeMap::from([
        (
            "id",
            vec![
                query.clone(),
                rule.clone(),
                alert.clone(),
                silence.clone(),
                channel.clone(),
                congregant.clone(),
                job.clone(),
                device.clone(),
                enrolled.clone(),
                memorial.clone(),
                announcement.clone(),
                synagogue.clone(),
                aliyot.clone(),
                shiur.clone(),
                timer.clone(),
                user.clone(),
                pat_id,
                enrolment_token,
                format!("t-{tenant}"),
            ],
        ),
        ("device_id", vec![device.clone(), enrolled.clone()]),
        ("shot", vec![shot.clone()]),
        ("metric", vec!["cpu_percent".to_owned()]),
    ]);
    let items = vec![
        format!("/api/v1/devices/{device}"),
        format!("/api/v1/devices/{enrolled}"),
        format!("/api/v1/devices/{enrolled}/certificate"),
        format!("/api/v1/devices/{enrolled}/screenshots"),
        format!("/api/v1/jobs/{job}"),
        format!("/api/v1/jobs/{job}/executions"),
        format!("/api/v1/devices/{device}/telemetry"),
        format!("/api/v1/devices/{device}/telemetry/streams"),
        format!("/api/v1/devices/{device}/metrics/cpu_percent?{window}"),
        format!("/api/v1/memorials/{memorial}"),
        format!("/api/v1/queries/{query}"),
        format!("/api/v1/alert-rules/{rule}"),
        format!("/api/v1/alerts/{alert}"),
        format!("/api/v1/alert-silences/{silence}"),
        format!("/api/v1/notification-channels/{channel}"),
        format!("/api/v1/congregants/{congregant}"),
        format!("/api/v1/announcements/{announcement}"),
        format!("/api/v1/synagogues/{synagogue}"),
        format!("/api/v1/aliyot/{aliyot}"),
        format!("/api/v1/shiurim/{shiur}"),
        format!("/api/v1/timers/{timer}"),
        format!("/api/v1/users/{user}"),
        "/api/v1/enrolment/tokens".to_owned(),
        "/api/v1/auth/tokens".to_owned(),
    ];
    Seeded { admin, pat, ids, items }
}

/// Everything a tenant can read of its own records (to compare before and after the attacks).
async fn snapshot(s: &Seeded) -> Vec<Value> {
    let mut out = Vec::new();
    for path in &s.items {
        let (status, mut body) = s.admin.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        // Presence fields and last-use stamps move on their own; the rest must not.
        if let Some(d) = body["data"].as_object_mut() {
            for volatile in [
                "updated_at",
                "last_seen",
                "status",
                "metrics",
                "metrics_at",
                "drops",
                "bundle_sha256",
                "bundle_fetched_at",
            ] {
                d.remove(volatile);
            }
        }
        if let Some(list) = body["data"].as_array_mut() {
            for item in list {
                if let Some(o) = item.as_object_mut() {
                    o.remove("last_used_at");
                }
            }
        }
        out.push(body);
    }
    out
}

/// Lists whose whole content is read for leaks and plants.
const LISTS: [&str; 18] = [
    "/api/v1/devices",
    "/api/v1/queries",
    "/api/v1/alert-rules",
    "/api/v1/alerts",
    "/api/v1/alert-silences",
    "/api/v1/notification-channels",
    "/api/v1/notifications",
    "/api/v1/congregants",
    "/api/v1/memorials",
    "/api/v1/announcements",
    "/api/v1/synagogues",
    "/api/v1/aliyot",
    "/api/v1/shiurim",
    "/api/v1/timers",
    "/api/v1/users",
    "/api/v1/enrolment/tokens",
    "/api/v1/auth/tokens",
    "/api/v1/audit?limit=500",
];

/// Bodies an attacker sends: empty, forged tenant fields, NoSQL operators, and valid-looking
/// content carrying the attacker's plant canary and the victim's ids.
fn hostile_bodies(attacker: &str, victim: &str, victim_ids: &[String]) -> Vec<Value> {
    let tenant = format!("t-{victim}");
    let p = plant(attacker);
    let first = victim_ids.first().cloned().unwrap_or_default();
    vec![
        json!({}),
        json!({"tenant_id": tenant, "tenant": tenant, "id": first, "name": p, "notes": p}),
        json!({"id": {"$ne": null}, "tenant_id": {"$ne": null}, "name": {"$gt": ""}}),
        json!({"email": {"$ne": null}, "password": {"$ne": null}, "claim_code": {"$ne": null}}),
        json!({"text_en": p, "text_he": p, "targets": {"devices": [first]}, "tenant_id": tenant}),
        // A job aimed at the victim's saved query (the first of its ids).
        json!({"command": {"type": "ping"}, "target": {"query": first}, "name": p, "query": {"text": p}}),
        json!({"name": p, "family": p, "passed": {"civil": {"date": "2001-02-03"}}, "tenant_id": tenant}),
        json!({"email": format!("plant@{attacker}.example"), "name": p, "role": "tenant_admin",
               "password": "long-enough-pass", "tenant_id": tenant, "max_uses": 1}),
    ]
}

fn hostile_queries(victim: &str) -> Vec<String> {
    vec![
        String::new(),
        format!("?tenant_id=t-{victim}"),
        "?status[$ne]=x&tag[$ne]=x".to_owned(),
        "?after[$gt]=&limit=500".to_owned(),
        "?from=2001-01-01&days=366".to_owned(),
        "?date=2026-12-04&at=2026-12-04T10:00:00Z".to_owned(),
    ]
}

/// Every concrete path of a route template: each `{name}` filled with each of `ids[name]`
/// (plus injection attempts).
fn concrete_paths(template: &str, ids: &BTreeMap<&'static str, Vec<String>>) -> Vec<String> {
    let mut paths = vec![template.to_owned()];
    for (name, values) in ids {
        let placeholder = format!("{{{name}}}");
        if !template.contains(&placeholder) {
            continue;
        }
        let mut all = values.clone();
        all.push("%7B%22%24ne%22%3Anull%7D".to_owned()); // {"$ne":null}
        all.push("%24where".to_owned());
        paths = paths
            .iter()
            .flat_map(|p| all.iter().map(|v| p.replace(&placeholder, v)).collect::<Vec<_>>())
            .collect();
    }
    assert!(
        !paths.iter().any(|p| p.contains('{')),
        "{template}: a parameter nobody fills"
    );
    paths
}

async fn attack(app: &TestApp) {
    let mut seeded = Vec::new();
    for tenant in TENANTS {
        seeded.push((tenant, seed(app, tenant).await));
    }
    let mut before = Vec::new();
    for (_, s) in &seeded {
        before.push(snapshot(s).await);
    }

    let mut findings = Vec::new();
    let mut requests = 0usize;
    let mut viewers = Vec::new();
    for (attacker, _) in &seeded {
        let viewer = app
            .user(
                &format!("t-{attacker}"),
                "viewer",
                &format!("viewer-x@{attacker}.example"),
            )
            .await;
        viewers.push(viewer);
    }
    let mut shots = Vec::new();
    for ((attacker, attacker_seed), viewer) in seeded.iter().zip(&viewers) {
        // The attacking tenant's admin (reaches every tenant route) and its least role, signed
        // in; and the admin's personal token. Routes a role may not call are skipped here: the
        // permission matrix covers those refusals.
        let attackers = [("tenant_admin", &attacker_seed.admin), ("viewer", viewer)];
        for (victim, victim_seed) in seeded.iter().filter(|(t, _)| t != attacker) {
            let leak = canary(victim);
            let victim_ids = &victim_seed.ids["id"];
            for route in route_table() {
                if matches!(route.access, Access::Device) || route.path == "/auth/logout" {
                    continue; // no user credentials; the attacker's own session
                }
                let templated = route.path.contains('{');
                let reads = route.method == reqwest::Method::GET || route.method == reqwest::Method::DELETE;
                let queries = match (reads, templated) {
                    (true, false) => hostile_queries(victim),
                    _ => hostile_queries(victim)[..2].to_vec(),
                };
                let bodies = if reads {
                    vec![json!({})]
                } else {
                    hostile_bodies(attacker, victim, victim_ids)
                };
                for path in concrete_paths(route.path, &victim_seed.ids) {
                    for query in &queries {
                        for body in &bodies {
                            for (role, api) in attackers {
                                if route.access.allows_role(Role::parse(role).must()) {
                                    let target = format!("{path}{query}");
                                    shots.push((
                                        *attacker,
                                        role,
                                        api,
                                        route.method.clone(),
                                        target,
                                        body.clone(),
                                        leak.clone(),
                                    ));
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    // Sent a few at a time: the server, not the client's round trips, sets the pace.
    requests += shots.len();
    let hits: Vec<Option<String>> = futures::stream::iter(shots)
        .map(|(attacker, role, api, method, target, body, leak)| async move {
            let req = api
                .http
                .request(method.clone(), api.url(&format!("/api/v1{target}")))
                .json(&body);
            let (status, answer) = api.send(req).await;
            let text = answer.to_string();
            (text.contains(&leak) || status >= 500 || status == 0)
                .then(|| format!("{attacker}/{role} {method} {target} body {body}: {status} {text}"))
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    findings.extend(hits.into_iter().flatten());
    assert!(
        findings.is_empty(),
        "{} findings in {requests} requests:\n{}",
        findings.len(),
        findings.iter().take(30).cloned().collect::<Vec<_>>().join("\n")
    );
    for (i, (tenant, s)) in seeded.iter().enumerate() {
        // Every list shows the tenant's own canary and nothing of, or planted by, anyone else.
        for list in LISTS {
            let (status, body) = s.admin.get(list).await;
            assert_eq!(status, 200, "{tenant} {list}: {body}");
            let text = body.to_string();
            if list != "/api/v1/audit?limit=500" {
                assert!(
                    text.contains(&mark_in(list, tenant)),
                    "{tenant} {list} lost its own records: {text}"
                );
            }
            for other in TENANTS.iter().filter(|t| *t != tenant) {
                assert!(
                    !text.contains(&mark_in(list, other)),
                    "{tenant} {list} shows {other}'s data"
                );
                assert!(
                    !text.contains(&plant(other)),
                    "{other} planted into {tenant} {list}: {text}"
                );
            }
        }
        // Nothing of the victims changed, and their personal tokens still work.
        assert_eq!(snapshot(s).await, before[i], "records of tenant {tenant} changed");
        assert_eq!(
            s.pat.get("/api/v1/auth/me").await.0,
            200,
            "{tenant}'s token was revoked by someone else"
        );
    }
    eprintln!("{requests} hostile requests, no leak, no plant, no server error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_tenant_reaches_another_on_sqlite() {
    let app = spawn_app(|c| c.mqtt.plain_listener = false).await;
    attack(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_tenant_reaches_another_on_mongodb() {
    let mongo = MongoWire::start();
    let app = spawn_app(|c| {
        c.store.url = mongo.url.clone().into();
        c.mqtt.plain_listener = false;
    })
    .await;
    attack(&app).await;
}
