//! `luach-server` command line, run as a process.

use std::process::Command;

fn server() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_luach-server"));
    // Start from a clean environment so a developer's LUACH_* variables do not leak in.
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("LUACH_")) {
        c.env_remove(key);
    }
    c
}

fn example_config() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/luach-server.example.toml")
}

#[test]
fn print_config_merges_file_env_and_flags_in_order() {
    let out = server()
        .args(["--config"])
        .arg(example_config())
        .env("LUACH_PRESENCE__OFFLINE_AFTER_SECS", "45")
        .env(
            "LUACH_STORE__URL",
            "mongodb://admin:hunter2@db.example.org/?replicaSet=rs0",
        )
        .args(["print-config", "--http-addr", "127.0.0.1:9999"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let config: toml::Value = toml::from_str(&text).unwrap_or_else(|e| panic!("print-config is not TOML: {e}\n{text}"));
    assert_eq!(config["data_dir"].as_str(), Some("/var/lib/luach"), "file");
    assert_eq!(config["presence"]["auto_register"].as_bool(), Some(false), "file");
    assert_eq!(
        config["presence"]["offline_after_secs"].as_integer(),
        Some(45),
        "env over file"
    );
    assert_eq!(config["http"]["addr"].as_str(), Some("127.0.0.1:9999"), "flag over all");
    assert!(!text.contains("hunter2"), "secret printed:\n{text}");
    assert!(text.contains("admin:***@db.example.org"), "{text}");
}

#[test]
fn bad_configuration_names_the_key_and_fails() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    type Case<'a> = (Vec<String>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec!["print-config".into()],
            vec![("LUACH_PRESENCE__OFFLINE_AFTER_SECS", "soon")],
            "offline_after_secs",
        ),
        (
            vec!["print-config".into()],
            vec![("LUACH_HTTP__NO_SUCH_KEY", "1")],
            "no_such_key",
        ),
        (
            vec!["print-config".into(), "--store".into(), "postgres://x".into()],
            vec![],
            "store.url",
        ),
        (
            vec!["print-config".into(), "--redis".into(), "http://x".into()],
            vec![],
            "redis",
        ),
        (
            vec![
                "--config".into(),
                dir.path().join("missing.toml").display().to_string(),
                "print-config".into(),
            ],
            vec![],
            "missing.toml",
        ),
        (
            vec!["print-config".into(), "--http-addr".into(), "nowhere".into()],
            vec![],
            "http-addr",
        ),
    ];
    for (args, env, key) in cases {
        let mut cmd = server();
        cmd.args(&args);
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap_or_else(|e| panic!("{e}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} {env:?} succeeded");
        assert!(
            stderr.to_lowercase().contains(key),
            "{args:?} {env:?}: error does not name {key}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn taken_ports_fail_with_a_clear_message() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = taken.local_addr().map(|a| a.port()).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = server()
        .args([
            "serve",
            "--http-addr",
            "127.0.0.1:0",
            "--mqtt-tls-addr",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&port.to_string()) && stderr.contains("mqtt"),
        "{stderr}"
    );
}

#[test]
fn prometheus_rules_are_valid() {
    let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus/luach-rules.yml");
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .unwrap_or_else(|e| panic!("promtool not available ({e}); scripts/test.sh installs it"));
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
