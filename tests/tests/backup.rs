//! `luach-server backup` and `restore` with the real binaries, on SQLite and on MongoDB-wire:
//! a backup taken while the server runs restores into a fresh installation where every
//! screen (it reconnects with the certificate it already has), document and audit chain is
//! intact; one tenant's backup restores into another installation; restores that would
//! overwrite are refused.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use luach_tests::{
    Agent, Api, MongoWire, Must, Server, ServerOptions, bin_path, bulk_token, outcome, seed_tenant, wait_for,
};
use serde_json::json;

/// One installation's store: SQLite in its data directory, or its own MongoDB-wire server.
struct Installation {
    dir: tempfile::TempDir,
    _mongo: Option<MongoWire>,
    store: Vec<String>,
}

impl Installation {
    fn new(mongo: bool) -> Self {
        let mongo = mongo.then(MongoWire::start);
        let store = mongo
            .as_ref()
            .map(|m| vec!["--store".to_owned(), m.url.clone()])
            .unwrap_or_default();
        Self {
            dir: tempfile::tempdir().must(),
            _mongo: mongo,
            store,
        }
    }

    fn data(&self) -> &Path {
        self.dir.path()
    }

    /// `luach-server <command> --data-dir … [--store …] <args>`: (success, output).
    fn cli(&self, command: &str, args: &[&str]) -> (bool, String) {
        let out = Command::new(bin_path("luach-server"))
            .arg(command)
            .arg("--data-dir")
            .arg(self.data())
            .args(&self.store)
            .args(args)
            .env("RUST_BACKTRACE", "0")
            .output()
            .must();
        outcome(&out)
    }

    async fn serve(&self) -> Server {
        let mut options = ServerOptions::new(self.data());
        options.extra_args = self.store.clone();
        Server::start(options).await
    }
}

async fn announcements(api: &Api) -> Vec<String> {
    let (status, body) = api.get("/api/v1/announcements").await;
    assert_eq!(status, 200, "{body}");
    body["data"]
        .as_array()
        .must()
        .iter()
        .map(|a| a["text_en"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn wait_online(api: &Api, device: &str) {
    let api = api.clone();
    let path = format!("/api/v1/devices/{device}");
    wait_for(&format!("{device} online"), Duration::from_secs(60), || {
        let (api, path) = (api.clone(), path.clone());
        async move { (api.get(&path).await.1["data"]["status"] == "online").then_some(()) }
    })
    .await;
}

async fn round_trip(mongo: bool) {
    let a = Installation::new(mongo);
    let server = a.serve().await;
    let api = server.api.clone();
    assert_eq!(
        api.post("/api/v1/announcements", &json!({"text_en": "Kiddush after musaf"}))
            .await
            .0,
        201
    );
    // A second tenant with a document of its own.
    let other_token = seed_tenant(a.data(), &a.store, "other", "admin@other.example");
    let other = Api::new(api.base.clone()).with_token(&other_token);
    assert_eq!(
        other
            .post("/api/v1/announcements", &json!({"text_en": "Other shul's notice"}))
            .await
            .0,
        201
    );
    // A real screen enrols and comes online.
    let token = bulk_token(&api, 1).await;
    let screen = tempfile::tempdir().must();
    let agent = Agent::start(&api.base, screen.path(), &["--enrolment-token", &token]);
    let device_file = screen.path().join("device-id");
    let device = wait_for("the screen to enrol", Duration::from_secs(60), || {
        let f = device_file.clone();
        async move { std::fs::read_to_string(f).ok() }
    })
    .await;
    wait_online(&api, &device).await;

    // The server has checkpointed both tenants' audit chains (every 10 s), so the tenant's
    // backup carries its head too.
    let checkpoint = a.data().join("audit").join("checkpoint.json");
    wait_for("the audit checkpoint of both tenants", Duration::from_secs(60), || {
        let checkpoint = checkpoint.clone();
        async move {
            let text = std::fs::read_to_string(checkpoint).ok()?;
            (text.contains("\"other\"") && text.contains("\"default\"")).then_some(())
        }
    })
    .await;

    // Backups while the server runs and the screen reports.
    let work = tempfile::tempdir().must();
    let whole = work.path().join("luach.tar.gz");
    let (ok, said) = a.cli("backup", &["--out", whole.to_str().must()]);
    assert!(ok, "backup: {said}");
    assert!(said.contains("rows"), "{said}");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&whole).must().permissions());
    assert_eq!(mode & 0o777, 0o600, "the archive holds keys: owner only");
    let tenant = work.path().join("other.tar.gz");
    let (ok, said) = a.cli("backup", &["--tenant", "other", "--out", tenant.to_str().must()]);
    assert!(ok, "tenant backup: {said}");
    let (ok, said) = a.cli(
        "backup",
        &["--tenant", "nosuch", "--out", work.path().join("x").to_str().must()],
    );
    assert!(!ok && said.contains("no tenant nosuch"), "{said}");
    let (ok, said) = a.cli("backup", &["--out", whole.to_str().must()]);
    assert!(!ok && said.contains("exists"), "{said}");
    drop(agent);
    drop(server);

    // The whole installation into a fresh one.
    let b = Installation::new(mongo);
    let (ok, said) = b.cli("restore", &["--from", whole.to_str().must()]);
    assert!(ok, "restore: {said}");
    assert!(said.contains("restored the installation"), "{said}");
    let (ok, said) = b.cli("audit", &["verify"]);
    assert!(ok, "audit verify after restore: {said}");
    // Once is enough: a second restore would overwrite.
    let (ok, said) = b.cli("restore", &["--from", whole.to_str().must()]);
    assert!(!ok && said.contains("already exists"), "{said}");

    let server = b.serve().await;
    let api = server.api.clone();
    assert_eq!(announcements(&api).await, ["Kiddush after musaf"]);
    let (_, listed) = api.get("/api/v1/devices").await;
    let ids: Vec<&str> = listed["data"]["items"]
        .as_array()
        .must()
        .iter()
        .filter_map(|d| d["id"].as_str())
        .collect();
    assert_eq!(ids, [device.as_str()], "{listed}");
    // The screen reconnects to the restored installation with the certificate it has.
    let (_, before) = api.get(&format!("/api/v1/devices/{device}")).await;
    assert_eq!(before["data"]["status"], "offline", "{before}");
    let _agent = Agent::start(&api.base, screen.path(), &[]);
    wait_online(&api, &device).await;
    drop(server);

    // One tenant into another installation that seals audit chains with the same key.
    let c = Installation::new(mongo);
    std::fs::create_dir_all(c.data().join("audit")).must();
    let key_file = c.data().join("audit").join("chain.key");
    std::fs::copy(a.data().join("audit").join("chain.key"), &key_file).must();
    std::fs::set_permissions(&key_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).must();
    // An archive that would make a super admin is refused, and nothing of it is kept.
    let forged = forge(&tenant, work.path(), "store/users.jsonl", |rows| {
        rows.replace("tenant_admin", "super_admin")
    });
    let (ok, said) = c.cli("restore", &["--from", forged.to_str().must()]);
    assert!(
        !ok && said.contains("super admin") && said.contains("nothing was restored"),
        "{said}"
    );
    let (ok, said) = c.cli("restore", &["--from", tenant.to_str().must()]);
    assert!(ok, "tenant restore: {said}");
    assert!(said.contains("restored tenant other"), "{said}");
    let (ok, said) = c.cli("restore", &["--from", tenant.to_str().must()]);
    assert!(!ok && said.contains("already holds tenant other"), "{said}");
    let (ok, said) = c.cli("audit", &["verify"]);
    assert!(ok, "audit verify after the tenant restore: {said}");
    let server = c.serve().await;
    let token = seed_tenant(c.data(), &c.store, "other", "admin@other.example");
    let other = Api::new(server.api.base.clone()).with_token(&token);
    assert_eq!(announcements(&other).await, ["Other shul's notice"]);
    // Only that tenant came across.
    assert_eq!(announcements(&server.api).await, Vec::<String>::new());
}

/// A copy of `archive` with `file` changed by `edit` and its checksum in the manifest made to
/// match, as someone who wants the restore to accept it would do.
fn forge(archive: &Path, work: &Path, file: &str, edit: impl Fn(String) -> String) -> std::path::PathBuf {
    use sha2::Digest;
    let dir = work.join("forged");
    std::fs::create_dir_all(&dir).must();
    let run = |cmd: &mut Command| assert!(cmd.status().must().success());
    run(Command::new("tar").arg("-xzf").arg(archive).arg("-C").arg(&dir));
    let edited = edit(std::fs::read_to_string(dir.join(file)).must());
    std::fs::write(dir.join(file), &edited).must();
    let manifest_path = dir.join("manifest.json");
    let mut manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(&manifest_path).must()).must();
    let digest: String = sha2::Sha256::digest(edited.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    manifest["files"][file] = serde_json::Value::String(digest);
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).must()).must();
    let out = work.join("forged.tar.gz");
    run(Command::new("tar").arg("-czf").arg(&out).arg("-C").arg(&dir).arg("."));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_backups_restore_whole_and_per_tenant() {
    round_trip(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongodb_backups_restore_whole_and_per_tenant() {
    round_trip(true).await;
}

#[test]
fn a_damaged_or_foreign_archive_is_refused_with_the_reason() {
    let a = Installation::new(false);
    let work = tempfile::tempdir().must();
    let junk = work.path().join("junk.tar.gz");
    std::fs::write(&junk, b"not an archive").must();
    let (ok, said) = a.cli("restore", &["--from", junk.to_str().must()]);
    assert!(!ok && said.contains("is not a luach backup"), "{said}");
    let (ok, said) = a.cli("restore", &["--from", work.path().join("missing").to_str().must()]);
    assert!(!ok && said.contains("opening"), "{said}");

    // A real backup with one byte of a row changed fails its checksum.
    let (ok, said) = luach_tests::admin(a.data(), &[], &["create-tenant", "--id", "t1", "--name", "T1"], "");
    assert!(ok, "{said}");
    let archive = work.path().join("b.tar.gz");
    let (ok, said) = a.cli("backup", &["--out", archive.to_str().must()]);
    assert!(ok, "{said}");
    let unpacked = work.path().join("u");
    std::fs::create_dir_all(&unpacked).must();
    let run = |cmd: &mut Command| assert!(cmd.status().must().success());
    run(Command::new("tar").arg("-xzf").arg(&archive).arg("-C").arg(&unpacked));
    let rows = unpacked.join("store").join("tenants.jsonl");
    let text = std::fs::read_to_string(&rows).must().replace("T1", "T2");
    std::fs::write(&rows, text).must();
    let damaged = work.path().join("damaged.tar.gz");
    run(Command::new("tar")
        .arg("-czf")
        .arg(&damaged)
        .arg("-C")
        .arg(&unpacked)
        .arg("."));
    let fresh = Installation::new(false);
    let (ok, said) = fresh.cli("restore", &["--from", damaged.to_str().must()]);
    assert!(!ok && said.contains("does not match its checksum"), "{said}");

    // A link in the archive could make the restore read or write elsewhere: refused.
    std::os::unix::fs::symlink("/etc/passwd", unpacked.join("store").join("users.jsonl")).must();
    let linked = work.path().join("linked.tar.gz");
    run(Command::new("tar")
        .arg("-czf")
        .arg(&linked)
        .arg("-C")
        .arg(&unpacked)
        .arg("."));
    let (ok, said) = fresh.cli("restore", &["--from", linked.to_str().must()]);
    assert!(!ok && said.contains("users.jsonl is not a plain file"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mongodb_collection_is_backed_up_or_deliberately_not() {
    // The collections the schema makes (migrations create each with its indexes) against
    // the ones a backup's manifest lists.
    let a = Installation::new(true);
    let (ok, said) = luach_tests::admin(a.data(), &a.store, &["create-tenant", "--id", "t1", "--name", "T1"], "");
    assert!(ok, "{said}");
    let work = tempfile::tempdir().must();
    let archive = work.path().join("b.tar.gz");
    let (ok, said) = a.cli("backup", &["--out", archive.to_str().must()]);
    assert!(ok, "{said}");
    let unpacked = work.path().join("u");
    std::fs::create_dir_all(&unpacked).must();
    assert!(
        Command::new("tar")
            .arg("-xzf")
            .arg(&archive)
            .arg("-C")
            .arg(&unpacked)
            .status()
            .must()
            .success()
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(unpacked.join("manifest.json")).must()).must();
    let listed: Vec<&str> = manifest["tables"]
        .as_array()
        .must()
        .iter()
        .filter_map(|t| t[0].as_str())
        .collect();
    let url = &a.store[1];
    let client = mongodb::Client::with_uri_str(url).await.must();
    let collections = client.database("luach").list_collection_names().await.must();
    assert!(collections.len() > 10, "{collections:?}");
    for c in &collections {
        assert!(
            listed.contains(&c.as_str()) || ["leases", "_migrations"].contains(&c.as_str()),
            "collection {c} is neither backed up nor deliberately left out: {listed:?}"
        );
    }
}
