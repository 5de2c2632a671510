//! The `luach-agent` command line, run as a process.

use std::process::Command;

fn agent() -> Command {
    Command::new(env!("CARGO_BIN_EXE_luach-agent"))
}

#[test]
fn zmanim_json_for_jerusalem_erev_shabbat() {
    let out = agent()
        .args([
            "zmanim",
            "--lat",
            "31.778",
            "--lon",
            "35.2354",
            "--elevation",
            "754",
            "--tz",
            "Asia/Jerusalem",
        ])
        .args(["--date", "2026-11-27", "--israel", "--candle-minutes", "40", "--json"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON: {e}"));
    assert_eq!(v["hebrew_date"]["month"], "Kislev");
    let zmanim = v["zmanim"].as_object().unwrap_or_else(|| panic!("no zmanim"));
    assert_eq!(zmanim.len(), 20);
    // Friday: candles are lit, 40 minutes before sea-level sunset; no havdalah.
    let time = |key: &str| {
        let text = zmanim[key].as_str().unwrap_or_default();
        chrono::DateTime::parse_from_rfc3339(text).unwrap_or_else(|e| panic!("{key} = {text:?}: {e}"))
    };
    assert_eq!(
        time("sea_level_sunset") - time("candle_lighting"),
        chrono::Duration::minutes(40)
    );
    assert!(
        zmanim["candle_lighting"]
            .as_str()
            .is_some_and(|t| t.ends_with("+02:00"))
    );
    assert!(zmanim["havdalah"].is_null());
}

#[test]
fn polar_night_zmanim_are_null_with_reasons() {
    let out = agent()
        .args([
            "zmanim",
            "--lat",
            "69.6492",
            "--lon",
            "18.9553",
            "--tz",
            "Europe/Oslo",
            "--date",
            "2026-12-21",
            "--json",
        ])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON: {e}"));
    assert!(v["zmanim"]["sunrise"].is_null());
    assert!(v["missing"]["sunrise"].is_string(), "{v}");
}

#[test]
fn bad_arguments_fail_cleanly() {
    for args in [
        vec![
            "zmanim",
            "--lat",
            "31",
            "--lon",
            "35",
            "--tz",
            "Mars/Olympus",
            "--date",
            "2026-01-01",
        ],
        vec![
            "zmanim",
            "--lat",
            "95",
            "--lon",
            "35",
            "--tz",
            "UTC",
            "--date",
            "2026-01-01",
        ],
        vec![
            "zmanim",
            "--lat",
            "31",
            "--lon",
            "35",
            "--tz",
            "UTC",
            "--date",
            "2026-02-30",
        ],
        vec!["sim", "--count", "0", "--mqtt", "127.0.0.1:1"],
        vec!["sim", "--count", "1", "--mqtt", "no-port"],
        vec![
            "sim",
            "--count",
            "1",
            "--mqtt",
            "127.0.0.1:1",
            "--id-prefix",
            "Bad/Prefix",
        ],
        vec!["run", "--state-dir", "/nonexistent/dir/x"],
    ] {
        let out = agent().args(&args).output().unwrap_or_else(|e| panic!("{e}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
        assert!(!stderr.trim().is_empty(), "{args:?} gave no message");
    }
}
