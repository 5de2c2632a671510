//! Upgrading a database written by the first release (`tests/fixtures/upgrade/first-release`,
//! made with `scripts/make-upgrade-fixture.sh` and that release's binaries): `luach-server
//! migrate` lists and applies the schema migrations, the server then serves every record the
//! old release wrote (tenants, users and their passwords, personal tokens, devices with Hebrew
//! names, enrolled and revoked screens, content), and the old audit chain still verifies,
//! continued by the new release's keyed records. On SQLite and on MongoDB.

use std::path::{Path, PathBuf};

use luach_tests::{Api, MongoWire, Must, Server, ServerOptions, bin_path};
use serde_json::{Value, json};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/upgrade/first-release")
}

fn facts(kind: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixtures().join(format!("facts-{kind}.json"))).must()).must()
}

/// `luach-server <args> --data-dir DIR [store]`; returns (success, output).
fn server_cli(args: &[&str], data_dir: &Path, store: &[&str]) -> (bool, String) {
    let mut command = std::process::Command::new(bin_path("luach-server"));
    command.args(args).arg("--data-dir").arg(data_dir).args(store);
    // Only `migrate` itself may migrate: the other commands refuse a database that lacks some.
    command
        .env("LUACH_STORE__MIGRATE_ON_START", "false")
        .env("RUST_BACKTRACE", "0");
    let out = command.output().must();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The old release's checkpoint beside the data, as an operator's data directory holds it.
fn place_checkpoint(data_dir: &Path, kind: &str) {
    std::fs::create_dir_all(data_dir.join("audit")).must();
    std::fs::copy(
        fixtures().join(format!("checkpoint-{kind}.json")),
        data_dir.join("audit/checkpoint.json"),
    )
    .must();
}

async fn migrate_and_serve(data_dir: &Path, store: &[&str], kind: &str) {
    // Before migrating, the server refuses to touch the old schema.
    let (ok, out) = server_cli(&["audit", "verify"], data_dir, store);
    assert!(!ok && out.contains("luach-server migrate"), "{out}");
    // A backup takes the database as it is: refused, never migrated, even where the server
    // would migrate at start (the dry run below still lists every migration).
    let archive = data_dir.with_extension("backup.tar.gz");
    let backup = std::process::Command::new(bin_path("luach-server"))
        .args(["backup", "--out"])
        .arg(&archive)
        .arg("--data-dir")
        .arg(data_dir)
        .args(store)
        .env("RUST_BACKTRACE", "0")
        .output()
        .must();
    let said = String::from_utf8_lossy(&backup.stderr);
    assert!(
        !backup.status.success() && said.contains("luach-server migrate"),
        "{said}"
    );
    assert!(!archive.exists());
    let (ok, out) = server_cli(&["migrate", "--dry-run"], data_dir, store);
    assert!(ok, "{out}");
    assert!(out.contains("would apply 1") && out.contains("would apply 2"), "{out}");
    let (ok, out) = server_cli(&["migrate"], data_dir, store);
    assert!(ok && out.contains("applied 2"), "{out}");
    let (ok, out) = server_cli(&["migrate"], data_dir, store);
    assert!(ok && out.contains("schema is current"), "{out}");
    // The first release's chain verifies against its own checkpoint.
    let (ok, out) = server_cli(&["audit", "verify"], data_dir, store);
    assert!(ok, "{out}");

    let mut options = ServerOptions::new(data_dir);
    options.extra_args = store.iter().map(|s| (*s).to_owned()).collect();
    let server = Server::start(options).await;
    let anon = Api::new(server.api.base.clone());
    let (status, body) = anon
        .post(
            "/api/v1/auth/login",
            &json!({"email": "admin@a.example", "password": "fixture-password-1"}),
        )
        .await;
    assert_eq!(status, 200, "the old password signs in: {body}");
    let admin = anon.with_token(body["data"]["access_token"].as_str().must());
    assert_eq!(body["data"]["user"]["name"], "אדמין");

    let facts = facts(kind);
    let (_, devices) = admin.get("/api/v1/devices").await;
    let ids: Vec<&str> = devices["data"]["items"]
        .as_array()
        .must()
        .iter()
        .filter_map(|d| d["id"].as_str())
        .collect();
    let expected: Vec<&str> = facts["devices"]
        .as_array()
        .must()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut sorted = expected.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "{devices}");
    let (_, lobby) = admin.get("/api/v1/devices/lobby1").await;
    assert_eq!(lobby["data"]["name"], "מסך הלובי");
    assert_eq!(lobby["data"]["notes"], "edited once");
    // Devices written before revisions exist start at revision 1 and update by compare-and-set.
    let (status, patched) = admin
        .patch("/api/v1/devices/lobby1", &json!({"notes": "after upgrade"}))
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["data"]["revision"], 2);

    let revoked = facts["revoked"].as_str().must();
    let (_, cert) = admin.get(&format!("/api/v1/devices/{revoked}/certificate")).await;
    assert_eq!(cert["data"]["status"], "revoked", "{cert}");
    let (_, history) = admin.get("/api/v1/devices/fixt00000/certificates").await;
    assert_eq!(history["data"].as_array().map(Vec::len), Some(1), "{history}");
    assert!(history["data"][0]["end"].is_null(), "still current: {history}");

    let memorial = facts["memorial"].as_str().must();
    let (status, plaque) = admin.get(&format!("/api/v1/memorials/{memorial}")).await;
    assert_eq!((status, plaque["data"]["name"].as_str()), (200, Some("שרה בת אברהם")));
    let (status, shul) = admin.get("/api/v1/synagogues/main").await;
    assert_eq!((status, shul["data"]["name"].as_str()), (200, Some("בית כנסת")));
    let (_, announcements) = admin.get("/api/v1/announcements").await;
    assert_eq!(announcements["data"][0]["text_he"], "שבת שלום");
    let (_, users) = admin.get("/api/v1/users").await;
    assert!(users.to_string().contains("gabbai@a.example"), "{users}");
    let (_, tokens) = admin.get("/api/v1/auth/tokens").await;
    assert!(tokens.to_string().contains("\"fixture\""), "{tokens}");
    let (_, tenant) = admin.get("/api/v1/tenant").await;
    assert_eq!(tenant["data"]["name"], "Beit Knesset A");

    // The old records, then this release's keyed ones: one chain that verifies.
    let (_, audit) = admin.get("/api/v1/audit?limit=500").await;
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .must()
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"device.update") && actions.contains(&"login.success"),
        "{actions:?}"
    );
    drop(server);
    let (ok, out) = server_cli(&["audit", "verify"], data_dir, store);
    assert!(ok && out.contains("audit log intact"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_release_sqlite_database_upgrades() {
    let dir = tempfile::tempdir().must();
    let sql = std::fs::read_to_string(fixtures().join("sqlite.sql")).must();
    let conn = rusqlite::Connection::open(dir.path().join("luach.sqlite3")).must();
    conn.execute_batch(&sql).must();
    drop(conn);
    place_checkpoint(dir.path(), "sqlite");
    migrate_and_serve(dir.path(), &[], "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_release_mongodb_database_upgrades() {
    let mongo = MongoWire::start();
    let dump: Value = serde_json::from_slice(&std::fs::read(fixtures().join("mongo.json")).must()).must();
    let client = mongodb::Client::with_uri_str(&mongo.url).await.must();
    let db = client.database("luach");
    for (collection, docs) in dump.as_object().must() {
        let docs: Vec<bson::Document> = docs
            .as_array()
            .must()
            .iter()
            .map(|d| match bson::Bson::try_from(d.clone()).must() {
                bson::Bson::Document(doc) => doc,
                other => panic!("{collection}: not a document: {other}"),
            })
            .collect();
        if !docs.is_empty() {
            db.collection::<bson::Document>(collection)
                .insert_many(docs)
                .await
                .must();
        }
    }
    let dir = tempfile::tempdir().must();
    place_checkpoint(dir.path(), "mongo");
    let store = ["--store", mongo.url.as_str()];
    migrate_and_serve(dir.path(), &store, "mongo").await;
}
