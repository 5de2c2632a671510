//! The audit log: changes through the API are chained with their authors (including a super
//! admin acting inside a tenant), and `luach-server audit verify` finds modification,
//! deletion, reordering and truncation, on SQLite copies of a real data directory and on
//! MongoDB.

use std::path::Path;
use std::time::Duration;

use luach_tests::{Api, MongoWire, Must, TestApp, bin_path, spawn_app, wait_for};
use serde_json::{Value, json};

async fn make_changes(app: &TestApp) -> Api {
    let api = &app.api;
    assert_eq!(
        api.post("/api/v1/devices", &json!({"id": "lobby1", "name": "Lobby"}))
            .await
            .0,
        201
    );
    assert_eq!(
        api.patch("/api/v1/devices/lobby1", &json!({"name": "Main lobby"}))
            .await
            .0,
        200
    );
    let (status, _) = api
        .post(
            "/api/v1/memorials",
            &json!({"name": "Sarah bat Avraham", "passed": {"civil": {"date": "2001-02-03"}}}),
        )
        .await;
    assert_eq!(status, 201);
    let root = app.user("default", "super_admin", "root@example.org").await;
    let acting = root
        .http
        .post(root.url("/api/v1/announcements"))
        .header("x-luach-tenant", "default")
        .json(&json!({"text_en": "Kiddush after davening"}));
    assert_eq!(root.send(acting).await.0, 201);
    assert_eq!(api.delete("/api/v1/devices/lobby1").await.0, 204);
    root
}

fn verify(data_dir: &Path, extra: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(bin_path("luach-server"))
        .args(["audit", "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .arg("verify")
        .env("RUST_BACKTRACE", "0")
        .output()
        .must();
    luach_tests::outcome(&out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_are_chained_with_their_authors() {
    let app = spawn_app(|_| {}).await;
    let root = make_changes(&app).await;
    let (status, body) = app.api.get("/api/v1/audit").await;
    assert_eq!(status, 200, "{body}");
    let records = body["data"].as_array().must();
    let actions: Vec<&str> = records.iter().filter_map(|r| r["action"].as_str()).collect();
    // Seeding (tenant admin by the test harness) comes first; then the API changes in order.
    let tail: Vec<&str> = actions.iter().rev().take(5).rev().copied().collect();
    assert_eq!(
        tail,
        [
            "device.create",
            "device.update",
            "memorial.put",
            "announcement.put",
            "device.delete"
        ],
        "{actions:?}"
    );
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r["seq"], i as i64 + 1);
        if i > 0 {
            assert_eq!(r["prev_hash"], records[i - 1]["hash"], "chain broken at {i}");
        }
    }
    let by = |action: &str| records.iter().rev().find(|r| r["action"] == action).must().clone();
    assert_eq!(by("device.create")["actor"]["email"], luach_tests::ADMIN_EMAIL);
    assert_eq!(by("device.create")["target"], "devices/lobby1");
    let acted = by("announcement.put");
    assert_eq!(acted["actor"]["email"], "root@example.org", "{acted}");
    assert_eq!(acted["actor"]["acting_as_role"], "tenant_admin");
    // Paging, and no credentials anywhere.
    let (_, page) = app.api.get("/api/v1/audit?after=2&limit=2").await;
    assert_eq!(page["data"][0]["seq"], 3);
    assert_eq!(page["data"].as_array().map(Vec::len), Some(2));
    assert!(!body.to_string().contains("argon2"));
    // Other tenants see their own (empty) log; the installation's records are not theirs.
    let other = app.user("other", "tenant_admin", "admin@other.example").await;
    let (_, theirs) = other.get("/api/v1/audit").await;
    assert!(!theirs.to_string().contains("lobby1"));
    drop(root);
}

/// A consistent copy of the SQLite store, the checkpoint and the chain key of `from` in a
/// new directory.
fn copy_data_dir(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().must();
    let conn = rusqlite::Connection::open(from.join("luach.sqlite3")).must();
    let target = to.path().join("luach.sqlite3");
    conn.execute("VACUUM INTO ?1", [target.to_str().must()]).must();
    std::fs::create_dir_all(to.path().join("audit")).must();
    for file in ["audit/checkpoint.json", "audit/chain.key"] {
        std::fs::copy(from.join(file), to.path().join(file)).must();
    }
    to
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_finds_every_kind_of_tampering() {
    let app = spawn_app(|c| c.audit.checkpoint_secs = 1).await;
    make_changes(&app).await;
    let data_dir = app.data_dir().to_owned();
    let (_, body) = app.api.get("/api/v1/audit?limit=500").await;
    let last = body["data"].as_array().must().last().must()["seq"].as_i64().must();
    // Wait for the checkpoint to cover every record.
    wait_for("audit checkpoint", Duration::from_secs(30), || {
        let path = data_dir.join("audit/checkpoint.json");
        async move {
            let heads: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
            (heads["default"]["seq"].as_i64() == Some(last)).then_some(())
        }
    })
    .await;

    let intact = copy_data_dir(&data_dir);
    let (ok, out) = verify(intact.path(), &[]);
    assert!(ok, "intact log refused: {out}");
    assert!(out.contains("audit log intact"), "{out}");

    let cases = [
        (
            "modified",
            "UPDATE audit SET body = json_set(body, '$.detail', json('{\"name\":\"evil\"}')) WHERE tenant = 'default' AND seq = 2",
        ),
        ("deleted", "DELETE FROM audit WHERE tenant = 'default' AND seq = 2"),
        (
            "reordered",
            "UPDATE audit SET body = CASE seq \
               WHEN 2 THEN (SELECT body FROM audit WHERE tenant = 'default' AND seq = 3) \
               ELSE (SELECT body FROM audit WHERE tenant = 'default' AND seq = 2) END \
             WHERE tenant = 'default' AND seq IN (2, 3)",
        ),
        (
            "truncated",
            "DELETE FROM audit WHERE tenant = 'default' AND seq = (SELECT MAX(seq) FROM audit WHERE tenant = 'default')",
        ),
        ("chain removed", "DELETE FROM audit WHERE tenant = 'default'"),
    ];
    for (name, sql) in cases {
        let copy = copy_data_dir(&data_dir);
        let conn = rusqlite::Connection::open(copy.path().join("luach.sqlite3")).must();
        let changed = conn.execute(sql, []).must();
        assert!(changed > 0, "{name}: the tampering changed nothing");
        drop(conn);
        let (ok, out) = verify(copy.path(), &[]);
        assert!(!ok, "{name} not detected:\n{out}");
        assert!(out.contains("PROBLEM default"), "{name}: {out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_chains_hold_on_mongodb_and_modification_is_found() {
    let mongo = MongoWire::start();
    let app = spawn_app(|c| {
        c.store.url = mongo.url.clone().into();
        c.audit.checkpoint_secs = 1;
    })
    .await;
    make_changes(&app).await;
    // The application's data directory holds the chain key and the checkpoint.
    let data_dir = app.data_dir().to_owned();
    let store = ["--store", mongo.url.as_str()];
    wait_for("audit checkpoint", Duration::from_secs(30), || {
        let path = data_dir.join("audit/checkpoint.json");
        async move { path.exists().then_some(()) }
    })
    .await;
    let (ok, out) = verify(&data_dir, &store);
    assert!(ok, "{out}");
    assert!(out.contains("audit log intact"), "{out}");
    let client = mongodb::Client::with_uri_str(&mongo.url).await.must();
    let audit = client.database("luach").collection::<bson::Document>("audit");
    let changed = audit
        .update_one(
            bson::doc! {"tenant": "default", "seq": 2i64},
            bson::doc! {"$set": {"target": "devices/someone-else"}},
        )
        .await
        .must();
    assert_eq!(changed.modified_count, 1);
    let (ok, out) = verify(&data_dir, &store);
    assert!(!ok && out.contains("record 2 was modified"), "{out}");
}

/// Sign-ins, enrolment, revocation, re-keying, bulk tokens and personal tokens are in the
/// tenant's chain, with their authors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_and_device_trust_are_audited() {
    let app = spawn_app(|c| c.mqtt.plain_listener = false).await;
    let api = &app.api;
    // A failed and a successful sign-in.
    let anon = api.anonymous();
    let wrong = json!({"email": luach_tests::ADMIN_EMAIL, "password": "not-the-password"});
    assert_eq!(anon.post("/api/v1/auth/login", &wrong).await.0, 401);
    let session = app.login(luach_tests::ADMIN_EMAIL, luach_tests::ADMIN_PASSWORD).await;
    // A personal token, created and revoked.
    let (_, token) = session.post("/api/v1/auth/tokens", &json!({"name": "script"})).await;
    let path = format!("/api/v1/auth/tokens/{}", token["data"]["id"].as_str().must());
    assert_eq!(session.delete(&path).await.0, 204);
    // A bulk token, a screen enrolled with it, revoked.
    let bulk = luach_tests::bulk_token(api, 1).await;
    let key = luach_pki::DeviceKey::generate().must();
    let body = json!({"device_id": "audited1", "csr_pem": key.csr_pem("audited1").must(), "enrolment_token": bulk});
    assert_eq!(anon.post("/api/v1/enrolment/requests", &body).await.0, 201);
    assert_eq!(api.post("/api/v1/devices/audited1/revoke", &json!({})).await.0, 200);
    let (_, tokens) = api.get("/api/v1/enrolment/tokens").await;
    let bulk_id = tokens["data"][0]["id"].as_str().must().to_owned();
    assert_eq!(api.delete(&format!("/api/v1/enrolment/tokens/{bulk_id}")).await.0, 204);

    let (_, audit) = api.get("/api/v1/audit?limit=500").await;
    let records = audit["data"].as_array().must();
    let find = |action: &str| {
        records
            .iter()
            .find(|r| r["action"] == action)
            .unwrap_or_else(|| panic!("{action} missing from {audit}"))
    };
    assert_eq!(find("login.failure")["detail"]["reason"], "password");
    assert_eq!(find("login.success")["actor"]["email"], luach_tests::ADMIN_EMAIL);
    // (The harness's own token, "tests", was created first.)
    assert!(
        records
            .iter()
            .any(|r| r["action"] == "token.create" && r["detail"]["name"] == "script"),
        "{audit}"
    );
    find("token.revoke");
    find("enrolment_token.create");
    find("enrolment_token.revoke");
    let enrol = find("device.enrol");
    assert_eq!(enrol["actor"]["kind"], "device");
    assert!(enrol["detail"]["via"].as_str().must().starts_with("token "), "{enrol}");
    assert_eq!(find("certificate.revoke")["target"], "devices/audited1");
    // Secrets never appear.
    let text = audit.to_string();
    assert!(!text.contains(token["data"]["secret"].as_str().must()) && !text.contains(&bulk));
    // Unknown emails go to the installation's chain under a digest, not the text typed.
    let unknown = json!({"email": "typo@example.org", "password": "whatever-it-was"});
    assert_eq!(anon.post("/api/v1/auth/login", &unknown).await.0, 401);
    let installation = app.system.audit_records("_installation", 0, None).await.must();
    let failure = installation.iter().rev().find(|r| r.action == "login.failure").must();
    assert!(
        failure.target.starts_with("emails/") && !failure.target.contains("typo"),
        "{failure:?}"
    );
}

/// The checkpoint only moves forward: while the server runs, a truncated chain is refused
/// (metric, error log) and the checkpoint keeps the head it had.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_checkpoint_refuses_a_truncated_chain() {
    let app = spawn_app(|c| c.audit.checkpoint_secs = 1).await;
    make_changes(&app).await;
    let data_dir = app.data_dir().to_owned();
    let (_, body) = app.api.get("/api/v1/audit?limit=500").await;
    let last = body["data"].as_array().must().last().must()["seq"].as_i64().must();
    let checkpointed = |seq: i64| {
        let path = data_dir.join("audit/checkpoint.json");
        async move {
            let heads: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
            (heads["default"]["seq"].as_i64() == Some(seq)).then_some(heads)
        }
    };
    let before = wait_for("audit checkpoint", Duration::from_secs(30), || checkpointed(last)).await;
    // Someone with database access deletes the newest records and adds a forged one.
    let conn = rusqlite::Connection::open(data_dir.join("luach.sqlite3")).must();
    conn.busy_timeout(Duration::from_secs(5)).must();
    let n = conn
        .execute("DELETE FROM audit WHERE tenant = 'default' AND seq >= ?1", [last - 1])
        .must();
    assert_eq!(n, 2);
    drop(conn);
    // The next change extends the shortened chain; the checkpoint must not follow it.
    assert_eq!(app.api.post("/api/v1/devices", &json!({"id": "after1"})).await.0, 201);
    let refused = wait_for("a refused checkpoint", Duration::from_secs(30), || {
        let api = app.api.clone();
        async move {
            let text = api.metrics_text().await;
            text.lines()
                .find_map(|l| l.strip_prefix("luach_audit_checkpoint_refusals_total "))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|v| *v >= 1.0)
        }
    })
    .await;
    assert!(refused >= 1.0);
    let heads: Value = serde_json::from_slice(&std::fs::read(data_dir.join("audit/checkpoint.json")).must()).must();
    assert_eq!(
        heads["default"], before["default"],
        "the checkpoint followed a truncated chain"
    );
    // And verification names the truncation.
    let copy = copy_data_dir(&data_dir);
    let (ok, out) = verify(copy.path(), &[]);
    assert!(!ok && out.contains("truncated or rewritten"), "{out}");
}

/// Without a checkpoint, verification fails unless the operator asks for the chains alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_needs_a_checkpoint_unless_told_otherwise() {
    let app = spawn_app(|c| c.audit.checkpoint_secs = 1).await;
    make_changes(&app).await;
    let data_dir = app.data_dir().to_owned();
    wait_for("audit checkpoint", Duration::from_secs(30), || {
        let path = data_dir.join("audit/checkpoint.json");
        async move { path.exists().then_some(()) }
    })
    .await;
    let copy = copy_data_dir(&data_dir);
    std::fs::remove_file(copy.path().join("audit/checkpoint.json")).must();
    let (ok, out) = verify(copy.path(), &[]);
    assert!(!ok && out.contains("no checkpoint"), "{out}");
    let out = std::process::Command::new(bin_path("luach-server"))
        .args(["audit", "--data-dir"])
        .arg(copy.path())
        .args(["verify", "--without-checkpoint"])
        .output()
        .must();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("audit log intact"), "{text}");
}
