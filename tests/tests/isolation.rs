//! Cross-tenant attack suite. Three tenants are seeded with canary strings in every kind of
//! record; each tenant's users then call every route with the other tenants' ids, forged
//! tenant fields and NoSQL operator injection. Nothing of another tenant may come back, no
//! answer may be a server error, and the victims' records must be unchanged afterwards.
//! Runs against SQLite and against a MongoDB wire server.

use luach_control_plane::api::route_table;
use luach_control_plane::auth::Role;
use luach_tests::{Api, MongoWire, Must, TestApp, spawn_app};
use serde_json::{Value, json};

const TENANTS: [&str; 3] = ["alpha", "beta", "gamma"];

fn canary(tenant: &str) -> String {
    format!("CANARY-{}-7f3a", tenant.to_uppercase())
}

/// Ids of one tenant's records.
#[derive(Debug, Default, Clone)]
struct Seeded {
    device: String,
    memorial: String,
    announcement: String,
    synagogue: String,
    user: String,
}

impl Seeded {
    fn ids(&self) -> Vec<&str> {
        vec![
            &self.device,
            &self.memorial,
            &self.announcement,
            &self.synagogue,
            &self.user,
        ]
    }
}

async fn seed(app: &TestApp, tenant: &str) -> (Api, Seeded) {
    let admin = app
        .user(
            &format!("t-{tenant}"),
            "tenant_admin",
            &format!("admin@{tenant}.example"),
        )
        .await;
    let mark = canary(tenant);
    let device = format!("{tenant}dev1");
    let (s, b) = admin
        .post("/api/v1/devices", &json!({"id": device, "name": mark, "notes": mark}))
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = admin
        .post(
            "/api/v1/memorials",
            &json!({"name": mark, "family": mark, "passed": {"civil": {"date": "2001-02-03"}}}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let memorial = b["data"]["id"].as_str().must().to_owned();
    let (s, b) = admin
        .post("/api/v1/announcements", &json!({"text_en": mark, "text_he": mark}))
        .await;
    assert_eq!(s, 201, "{b}");
    let announcement = b["data"]["id"].as_str().must().to_owned();
    let synagogue = format!("{tenant}-shul");
    let profile = json!({
        "name": mark, "address": mark, "latitude": 31.778, "longitude": 35.2354, "elevation_m": 754,
        "timezone": "Asia/Jerusalem", "israel": true, "nusach": "ashkenaz", "language": "he",
        "candle_lighting_minutes": 40, "schedule": {"rules": []}
    });
    let (s, b) = admin.put(&format!("/api/v1/synagogues/{synagogue}"), &profile).await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = admin
        .post(
            "/api/v1/users",
            &json!({"email": format!("gabbai@{tenant}.example"), "name": mark, "role": "gabbai", "password": "long-enough-pass"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let user = b["data"]["id"].as_str().must().to_owned();
    let seeded = Seeded {
        device,
        memorial,
        announcement,
        synagogue,
        user,
    };
    (admin, seeded)
}

/// Everything a tenant can read of its own records (to compare before and after the attacks).
async fn snapshot(admin: &Api, seeded: &Seeded) -> Vec<Value> {
    let mut out = Vec::new();
    for path in [
        format!("/api/v1/devices/{}", seeded.device),
        format!("/api/v1/memorials/{}", seeded.memorial),
        format!("/api/v1/announcements/{}", seeded.announcement),
        format!("/api/v1/synagogues/{}", seeded.synagogue),
        format!("/api/v1/users/{}", seeded.user),
    ] {
        let (status, mut body) = admin.get(&path).await;
        assert_eq!(status, 200, "{path}: {body}");
        // Presence fields move on their own; the rest must not.
        if let Some(d) = body["data"].as_object_mut() {
            for volatile in ["updated_at", "last_seen", "status"] {
                d.remove(volatile);
            }
        }
        out.push(body);
    }
    out
}

/// Bodies an attacker sends: empty, forged tenant fields, and NoSQL operators everywhere.
fn hostile_bodies(victim: &str, victim_ids: &[&str]) -> Vec<Value> {
    let tenant = format!("t-{victim}");
    vec![
        json!({}),
        json!({"tenant_id": tenant, "tenant": tenant, "id": victim_ids[0], "name": "x"}),
        json!({"id": {"$ne": null}, "tenant_id": {"$ne": null}, "name": {"$gt": ""}}),
        json!({"email": {"$ne": null}, "password": {"$ne": null}}),
        json!({"claim_code": {"$ne": null}, "role": "super_admin", "tenant_id": tenant}),
        json!({"text_en": "x", "targets": {"devices": [victim_ids[0]]}, "tenant_id": tenant}),
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

async fn attack(app: &TestApp) {
    let mut seeded = Vec::new();
    for tenant in TENANTS {
        seeded.push((tenant, seed(app, tenant).await));
    }
    let before: Vec<Vec<Value>> = {
        let mut v = Vec::new();
        for (_, (admin, s)) in &seeded {
            v.push(snapshot(admin, s).await);
        }
        v
    };

    let mut findings = Vec::new();
    let mut requests = 0usize;
    for (attacker, (attacker_api, _)) in &seeded {
        // The attacking tenant's admin (reaches every tenant route) and its least role. Routes
        // a role may not call are skipped: the permission matrix test covers those refusals.
        let mut attackers = vec![("tenant_admin", attacker_api.clone())];
        for role in ["viewer"] {
            let api = app
                .user(&format!("t-{attacker}"), role, &format!("{role}-x@{attacker}.example"))
                .await;
            attackers.push((role, api));
        }
        for (victim, (_, victim_seed)) in seeded.iter().filter(|(t, _)| t != attacker) {
            let leak = canary(victim);
            let victim_ids = victim_seed.ids();
            for route in route_table() {
                if route.path.starts_with("/auth/") || route.path.starts_with("/tenants") {
                    continue; // the caller's own account; installation routes (no tenant data)
                }
                let paths: Vec<String> = if route.path.contains("{id}") {
                    let mut ids: Vec<String> = victim_ids.iter().map(|s| (*s).to_owned()).collect();
                    ids.push("%7B%22%24ne%22%3Anull%7D".to_owned()); // {"$ne":null}
                    ids.push("%24where".to_owned());
                    ids.iter().map(|id| route.path.replace("{id}", id)).collect()
                } else {
                    vec![route.path.to_owned()]
                };
                let reads = route.method == reqwest::Method::GET || route.method == reqwest::Method::DELETE;
                // Reads vary the query string; writes vary the body.
                let queries = if reads {
                    hostile_queries(victim)
                } else {
                    hostile_queries(victim)[..2].to_vec()
                };
                let bodies = if reads {
                    vec![json!({})]
                } else {
                    hostile_bodies(victim, &victim_ids)
                };
                for path in paths {
                    for query in &queries {
                        for body in &bodies {
                            for (role, api) in &attackers {
                                if !route.access.allows_role(Role::parse(role).must()) {
                                    continue;
                                }
                                let url = api.url(&format!("/api/v1{path}{query}"));
                                let req = api.http.request(route.method.clone(), url).json(body);
                                let (status, answer) = api.send(req).await;
                                requests += 1;
                                let text = answer.to_string();
                                if text.contains(&leak) || status >= 500 || status == 0 {
                                    findings.push(format!(
                                        "{attacker}/{role} {} {path}{query} body {body}: {status} {text}",
                                        route.method
                                    ));
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(
        findings.is_empty(),
        "{} findings in {requests} requests:\n{}",
        findings.len(),
        findings.iter().take(30).cloned().collect::<Vec<_>>().join("\n")
    );
    // Lists of each tenant show its own canary and no one else's.
    for (tenant, (admin, _)) in &seeded {
        for list in [
            "/api/v1/devices",
            "/api/v1/memorials",
            "/api/v1/announcements",
            "/api/v1/synagogues",
            "/api/v1/users",
        ] {
            let (_, body) = admin.get(list).await;
            let text = body.to_string();
            assert!(
                text.contains(&canary(tenant)),
                "{tenant} {list} lost its own records: {text}"
            );
            for other in TENANTS.iter().filter(|t| *t != tenant) {
                assert!(!text.contains(&canary(other)), "{tenant} {list} shows {other}'s data");
            }
        }
    }
    // Nothing of the victims changed.
    for (i, (_, (admin, s))) in seeded.iter().enumerate() {
        assert_eq!(
            snapshot(admin, s).await,
            before[i],
            "records of tenant {} changed",
            TENANTS[i]
        );
    }
    eprintln!("{requests} hostile requests, no leak, no server error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_tenant_reaches_another_on_sqlite() {
    let app = spawn_app(|_| {}).await;
    attack(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_tenant_reaches_another_on_mongodb() {
    let mongo = MongoWire::start();
    let app = spawn_app(|c| c.store.url = mongo.url.clone().into()).await;
    attack(&app).await;
}
