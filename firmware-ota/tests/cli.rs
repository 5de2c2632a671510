//! The `luach-ota` binary end to end: key ceremony, signing, verifying, every tampered input,
//! rotation and revocation.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use luach_ota::testing::{Fixture, Tamper};
use luach_ota::{Metadata, Policy, rfc3339_string};

const NOW: &str = "2030-03-01T12:00:00Z";
const EXPIRES: &str = "2099-01-01T00:00:00Z";
const TARGET: &str = "x86_64-unknown-linux-gnu";

fn luach_ota(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_luach-ota"))
        .args(args)
        .output()
        .expect("run luach-ota")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn ok(o: Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// Asserts exit code 1 and a `refused (<code>): …` line, returning the line.
#[track_caller]
fn refused(o: Output, code: &str) -> String {
    let err = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "expected {code}; stdout: {}\nstderr: {err}",
        stdout(&o)
    );
    assert!(
        err.starts_with(&format!("refused ({code}): ")),
        "expected {code}, got: {err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(stdout(&o).is_empty());
    err
}

/// Asserts exit code `code` and one clear error line without a panic, returning stderr.
#[track_caller]
fn fails(o: Output, code: i32) -> String {
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(code), "stdout: {}\nstderr: {err}", stdout(&o));
    assert!(err.starts_with("error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn s(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

struct Ceremony {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    keys: PathBuf,
    artifact: PathBuf,
}

impl Ceremony {
    fn new(release_keys: &str, threshold: &str) -> Self {
        let tmp = tempfile::tempdir().expect("temporary directory");
        let dir = tmp.path().to_owned();
        let keys = dir.join("keys");
        ok(luach_ota(&[
            "keygen",
            "--out",
            s(&keys),
            "--release-keys",
            release_keys,
            "--threshold",
            threshold,
        ]));
        let artifact = dir.join("fw.bin");
        std::fs::write(&artifact, Fixture::new().artifact()).expect("write artifact");
        Self {
            _tmp: tmp,
            dir,
            keys,
            artifact,
        }
    }

    fn root_pub(&self) -> PathBuf {
        self.keys.join("root.pub")
    }

    fn sign(&self, version: &str, out: &str, extra: &[&str]) -> PathBuf {
        let out = self.dir.join(out);
        let mut args = vec![
            "sign",
            "--keys",
            s(&self.keys),
            "--artifact",
            s(&self.artifact),
            "--version",
            version,
            "--target",
            TARGET,
            "--channel",
            "stable",
            "--expires",
            EXPIRES,
            "--out",
            s(&out),
        ];
        args.extend_from_slice(extra);
        ok(luach_ota(&args));
        out
    }

    fn verify(&self, metadata: &Path, extra: &[&str]) -> Output {
        let root = self.root_pub();
        let mut args = vec![
            "verify",
            "--trust",
            s(&root),
            "--metadata",
            s(metadata),
            "--artifact",
            s(&self.artifact),
            "--target",
            TARGET,
            "--now",
            NOW,
        ];
        args.extend_from_slice(extra);
        luach_ota(&args)
    }

    fn key_ids(&self, prefix: &str) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(&self.keys)
            .expect("list keys")
            .filter_map(|e| {
                let name = e.expect("entry").file_name().into_string().expect("UTF-8 name");
                name.strip_prefix(prefix)?.strip_suffix(".key").map(str::to_owned)
            })
            .collect();
        ids.sort();
        ids
    }
}

fn key_list(dir: &Path) -> serde_json::Value {
    let out = ok(luach_ota(&["inspect", s(dir)]));
    serde_json::from_str(&out).expect("inspect prints JSON")
}

#[test]
fn keygen_sign_verify_inspect() {
    let c = Ceremony::new("1", "1");
    for file in ["root.key", "root.pub", "keys.json"] {
        assert!(c.keys.join(file).exists(), "{file}");
    }
    let ids = c.key_ids("release-");
    assert_eq!(ids.len(), 1);
    assert!(c.keys.join(format!("release-{}.pub", ids[0])).exists());

    let metadata = c.sign("1.3.0", "m.json", &["--min-from", "1.0.0"]);
    let out = ok(c.verify(
        &metadata,
        &[
            "--installed",
            "1.2.0",
            "--highest-installed",
            "1.2.0",
            "--channel",
            "stable",
        ],
    ));
    let fixture = Fixture::new();
    let sha = luach_ota::Sha256Digest::of(fixture.artifact());
    assert_eq!(
        out,
        format!(
            "valid: 1.3.0 for {TARGET} on stable, artifact {} bytes sha256 {sha}\n",
            fixture.artifact().len()
        )
    );

    let inspected = luach_ota(&["inspect", s(&metadata)]);
    assert!(stderr(&inspected).contains("UNVERIFIED"));
    let v: serde_json::Value = serde_json::from_str(&ok(inspected)).expect("JSON");
    assert_eq!(v["verified"], false);
    assert_eq!(v["release"]["payload"]["version"], "1.3.0");
    assert_eq!(v["release"]["payload"]["target"], TARGET);
    assert_eq!(v["release"]["payload"]["min_from_version"], "1.0.0");
    assert_eq!(v["release"]["payload"]["artifact"]["sha256"], sha.to_string());
    assert_eq!(v["release"]["signatures_claimed_by"][0], ids[0]);
    assert_eq!(v["keys"]["payload"]["version"], 1);
    assert_eq!(v["keys"]["payload"]["release_keys"][0]["key_id"], ids[0]);
}

fn policy_args(p: &Policy) -> Vec<String> {
    let mut args = vec![
        "--target".to_owned(),
        p.target.to_string(),
        "--now".to_owned(),
        rfc3339_string(&p.now),
        "--keys-version-floor".to_owned(),
        p.keys_version_floor.to_string(),
    ];
    let optional = [
        (
            "--highest-installed",
            p.highest_installed.as_ref().map(ToString::to_string),
        ),
        ("--installed", p.installed.as_ref().map(ToString::to_string)),
        ("--channel", p.channel.as_ref().map(ToString::to_string)),
    ];
    for (flag, value) in optional {
        if let Some(value) = value {
            args.extend([flag.to_owned(), value]);
        }
    }
    args
}

fn verify_case(dir: &Path, case: &luach_ota::testing::Case) -> Output {
    let (root, metadata, artifact) = (dir.join("root.pub"), dir.join("m.json"), dir.join("fw.bin"));
    std::fs::write(&root, &case.root_pem).expect("write root");
    std::fs::write(&metadata, &case.metadata).expect("write metadata");
    std::fs::write(&artifact, &case.artifact).expect("write artifact");
    let mut args: Vec<String> = [
        "verify",
        "--trust",
        s(&root),
        "--metadata",
        s(&metadata),
        "--artifact",
        s(&artifact),
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend(policy_args(&case.policy));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    luach_ota(&args)
}

#[test]
fn every_tampered_case_is_refused_with_its_code() {
    let fixture = Fixture::new();
    let tmp = tempfile::tempdir().expect("temporary directory");
    ok(verify_case(tmp.path(), &fixture.valid()));
    assert!(Tamper::ALL.len() >= 14);
    for tamper in Tamper::ALL {
        let line = refused(
            verify_case(tmp.path(), &fixture.tampered(*tamper)),
            tamper.expected().as_str(),
        );
        assert!(line.len() > 20, "{tamper:?}: {line}");
    }
}

#[test]
fn rotation_revokes_the_old_key_and_the_floor_makes_it_stick() {
    let c = Ceremony::new("1", "1");
    let old = c.sign("1.0.0", "old.json", &[]);
    let old_id = c.key_ids("release-").remove(0);
    let out = ok(luach_ota(&["rotate", "--keys", s(&c.keys)]));
    assert!(out.contains("key list version 2"), "{out}");
    assert!(out.contains(&format!("revoked: {old_id}")), "{out}");
    let new = c.sign("1.1.0", "new.json", &[]);
    let new_meta = key_list(&new);
    assert_eq!(new_meta["keys"]["payload"]["version"], 2);
    assert_ne!(new_meta["release"]["signatures_claimed_by"][0], old_id.as_str());
    ok(c.verify(&new, &["--keys-version-floor", "2"]));

    // The old key's signature next to the new key list: the revocation is named.
    let old_m = Metadata::parse(&std::fs::read(&old).expect("read")).expect("parse");
    let new_m = Metadata::parse(&std::fs::read(&new).expect("read")).expect("parse");
    let mixed = c.dir.join("mixed.json");
    let forged = Metadata {
        keys: new_m.keys,
        release: old_m.release,
    };
    std::fs::write(&mixed, forged.to_bytes().expect("bytes")).expect("write");
    let line = refused(c.verify(&mixed, &["--keys-version-floor", "2"]), "revoked_key");
    assert!(line.contains(&old_id), "{line}");

    // The old metadata with its old key list verifies only for a screen that never saw v2.
    ok(c.verify(&old, &["--keys-version-floor", "1"]));
    let line = refused(c.verify(&old, &["--keys-version-floor", "2"]), "key_list_rollback");
    assert!(line.contains("key list version 1 is older than version 2"), "{line}");
}

#[test]
fn rotate_with_an_offline_root_and_keep_old_then_revoke() {
    let c = Ceremony::new("1", "1");
    let offline = c.dir.join("vault-root.key");
    std::fs::rename(c.keys.join("root.key"), &offline).expect("move root offline");
    let err = fails(luach_ota(&["rotate", "--keys", s(&c.keys)]), 1);
    assert!(err.contains("root.key"), "{err}");

    let first = c.key_ids("release-").remove(0);
    let out = ok(luach_ota(&[
        "rotate",
        "--keys",
        s(&c.keys),
        "--root-key",
        s(&offline),
        "--keep-old",
    ]));
    assert!(
        out.contains("key list version 2") && out.contains("revoked: none"),
        "{out}"
    );
    let both = c.sign("2.0.0", "both.json", &[]);
    let meta = key_list(&both);
    assert_eq!(
        meta["release"]["signatures_claimed_by"].as_array().map(Vec::len),
        Some(2)
    );
    ok(c.verify(&both, &[]));

    let out = ok(luach_ota(&[
        "revoke",
        "--keys",
        s(&c.keys),
        "--key-id",
        &first,
        "--root-key",
        s(&offline),
    ]));
    assert!(
        out.contains("key list version 3") && out.contains(&format!("revoked: {first}")),
        "{out}"
    );
    let after = c.sign("2.1.0", "after.json", &[]);
    let meta = key_list(&after);
    assert_eq!(
        meta["release"]["signatures_claimed_by"].as_array().map(Vec::len),
        Some(1)
    );
    assert_ne!(meta["release"]["signatures_claimed_by"][0], first.as_str());
    ok(c.verify(&after, &["--keys-version-floor", "3"]));

    // The last key cannot go: the threshold would be out of reach.
    let last = meta["release"]["signatures_claimed_by"][0]
        .as_str()
        .expect("id")
        .to_owned();
    let err = fails(
        luach_ota(&[
            "revoke",
            "--keys",
            s(&c.keys),
            "--key-id",
            &last,
            "--root-key",
            s(&offline),
        ]),
        1,
    );
    assert!(
        err.contains("revocation needs 1 authorised release key(s) but 0"),
        "{err}"
    );
    assert_eq!(
        key_list(&c.sign("2.2.0", "still.json", &[]))["keys"]["payload"]["version"],
        3
    );

    // Another installation's root cannot rotate these keys.
    let stranger = Ceremony::new("1", "1");
    let err = fails(
        luach_ota(&[
            "rotate",
            "--keys",
            s(&c.keys),
            "--root-key",
            s(&stranger.keys.join("root.key")),
        ]),
        1,
    );
    assert!(err.contains("is not the root"), "{err}");
}

#[test]
fn threshold_two_needs_two_keys_present() {
    let c = Ceremony::new("2", "2");
    let ids = c.key_ids("release-");
    let both = c.sign("1.0.0", "m.json", &[]);
    ok(c.verify(&both, &[]));
    let err = fails(luach_ota(&["revoke", "--keys", s(&c.keys), "--key-id", &ids[0]]), 1);
    assert!(err.contains("revocation needs 2"), "{err}");
    std::fs::remove_file(c.keys.join(format!("release-{}.key", ids[0]))).expect("remove one key");
    let err = fails(
        luach_ota(&[
            "sign",
            "--keys",
            s(&c.keys),
            "--artifact",
            s(&c.artifact),
            "--version",
            "1.1.0",
            "--target",
            TARGET,
            "--channel",
            "stable",
            "--expires",
            EXPIRES,
            "--out",
            s(&c.dir.join("one.json")),
        ]),
        1,
    );
    assert!(err.contains("signing needs 2 authorised release key(s) but 1"), "{err}");
}

#[test]
fn keygen_refuses_to_overwrite_and_keeps_keys_private() {
    let c = Ceremony::new("1", "1");
    let before = std::fs::read(c.keys.join("root.key")).expect("read");
    let err = fails(luach_ota(&["keygen", "--out", s(&c.keys)]), 1);
    assert!(err.contains("root.key already exists"), "{err}");
    assert_eq!(std::fs::read(c.keys.join("root.key")).expect("read"), before);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: PathBuf| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(c.keys.join("root.key")), 0o600);
        for id in c.key_ids("release-") {
            assert_eq!(mode(c.keys.join(format!("release-{id}.key"))), 0o600);
        }
        std::fs::set_permissions(c.keys.join("root.key"), std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = fails(luach_ota(&["rotate", "--keys", s(&c.keys)]), 1);
        assert!(err.contains("must be 0600"), "{err}");
    }
    let err = fails(
        luach_ota(&["keygen", "--out", s(&c.dir.join("x")), "--threshold", "2"]),
        1,
    );
    assert!(err.contains("needs 2"), "{err}");
}

#[test]
fn bad_input_gets_one_clear_line() {
    let c = Ceremony::new("1", "1");
    let good = c.sign("1.0.0", "m.json", &[]);
    let sign = |flag: &str, value: &str| {
        let mut args = vec![
            ("--keys", s(&c.keys).to_owned()),
            ("--artifact", s(&c.artifact).to_owned()),
            ("--version", "1.1.0".to_owned()),
            ("--target", TARGET.to_owned()),
            ("--channel", "stable".to_owned()),
            ("--expires", EXPIRES.to_owned()),
            ("--out", s(&c.dir.join("bad.json")).to_owned()),
        ];
        for (f, v) in &mut args {
            if *f == flag {
                *v = value.to_owned();
            }
        }
        let mut flat = vec!["sign".to_owned()];
        for (f, v) in args {
            flat.extend([f.to_owned(), v]);
        }
        luach_ota(&flat.iter().map(String::as_str).collect::<Vec<_>>())
    };
    // Usage errors (clap): exit 2, naming the flag.
    for (flag, value) in [
        ("--version", "1.2"),
        ("--target", "X86_64"),
        ("--channel", "beta channel"),
        ("--expires", "2099-01-01"),
    ] {
        let err = fails(sign(flag, value), 2);
        assert!(err.contains(flag), "{flag}: {err}");
    }
    // Files and values the library refuses: exit 1, naming the file or field.
    let err = fails(sign("--artifact", s(&c.dir.join("missing.bin"))), 1);
    assert!(err.contains("--artifact") && err.contains("missing.bin"), "{err}");
    let err = fails(sign("--keys", s(&c.dir.join("nokeys"))), 1);
    assert!(err.contains("nokeys"), "{err}");
    let err = fails(sign("--expires", "2001-01-01T00:00:00Z"), 1);
    assert!(err.contains("--expires"), "{err}");
    let err = fails(sign("--version", "1.1.0+build.7"), 1);
    assert!(err.contains("build metadata"), "{err}");

    let line = refused(
        luach_ota(&[
            "verify",
            "--trust",
            s(&c.dir.join("nope.pub")),
            "--metadata",
            s(&good),
            "--artifact",
            s(&c.artifact),
        ]),
        "io",
    );
    assert!(line.contains("nope.pub"), "{line}");
    let line = refused(
        luach_ota(&[
            "verify",
            "--trust",
            s(&c.keys.join("root.key")),
            "--metadata",
            s(&good),
            "--artifact",
            s(&c.artifact),
        ]),
        "invalid_key",
    );
    assert!(line.contains("root.key"), "{line}");
    let line = refused(c.verify(&c.root_pub(), &[]), "malformed_metadata");
    assert!(line.contains("metadata file"), "{line}");
    fails(c.verify(&good, &["--highest-installed", "latest"]), 2);
    fails(c.verify(&good, &["--now", "noon"]), 2);
    fails(luach_ota(&["revoke", "--keys", s(&c.keys), "--key-id", "ABC"]), 2);
    let err = fails(luach_ota(&["inspect", s(&c.dir.join("none.json"))]), 1);
    assert!(err.contains("none.json"), "{err}");
}
