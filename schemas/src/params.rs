//! Parameters of the commands that carry more than a number: agent settings and a package
//! name (a display power schedule is `luach_content::PowerSchedule`, as in the bundle). The control plane checks them when a job is created and the
//! agent checks them again before it acts, with the same code, so both give the same
//! field-path errors.

use serde::{Deserialize, Serialize};

/// Longest package name.
pub const MAX_PACKAGE_NAME: usize = 128;

/// A problem with one field: its path below the parameter (`windows[0].on`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl Problem {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Agent settings the control plane may change. Absent fields are left as they are; a field
/// set to `null` is not accepted (leave it out instead). Settings received win over the
/// agent's command-line flags until they are changed again.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentSettings {
    /// Seconds between heartbeats (1–3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_secs: Option<u64>,
    /// Seconds between metrics reports (1–86400).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_secs: Option<u64>,
    /// MQTT keep-alive in seconds (5–600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive_secs: Option<u64>,
    /// Bytes of telemetry kept while the control plane cannot be reached (1 KiB–1 GiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry_budget_bytes: Option<u64>,
}

/// The accepted range of each [`AgentSettings`] field.
pub const SETTING_RANGES: [(&str, u64, u64); 4] = [
    ("heartbeat_secs", 1, 3_600),
    ("metrics_secs", 1, 86_400),
    ("keep_alive_secs", 5, 600),
    ("telemetry_budget_bytes", 1_024, 1 << 30),
];

impl AgentSettings {
    fn fields(&self) -> [Option<u64>; 4] {
        [
            self.heartbeat_secs,
            self.metrics_secs,
            self.keep_alive_secs,
            self.telemetry_budget_bytes,
        ]
    }

    /// The problems as one line (`path: message; …`), for an agent's answer or log.
    pub fn check(&self) -> Result<(), String> {
        let problems: Vec<String> = self.problems().iter().map(ToString::to_string).collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// Every problem, with the field names as paths.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if self.fields().iter().all(Option::is_none) {
            out.push(Problem::new("", "set at least one setting"));
        }
        for ((name, min, max), value) in SETTING_RANGES.iter().zip(self.fields()) {
            if let Some(v) = value
                && !(*min..=*max).contains(&v)
            {
                out.push(Problem::new(*name, format!("must be {min}–{max}")));
            }
        }
        out
    }

    /// These settings with `newer`'s fields on top.
    pub fn merged(&self, newer: &Self) -> Self {
        Self {
            heartbeat_secs: newer.heartbeat_secs.or(self.heartbeat_secs),
            metrics_secs: newer.metrics_secs.or(self.metrics_secs),
            keep_alive_secs: newer.keep_alive_secs.or(self.keep_alive_secs),
            telemetry_budget_bytes: newer.telemetry_budget_bytes.or(self.telemetry_budget_bytes),
        }
    }
}

/// Why `name` is not a package name a screen's package manager could take: a Debian package
/// (`fonts-noto-core`: lower-case letters, digits, `+ - .`, starting with a letter or digit, at
/// least two characters) or an Android application id (`org.example.app`: dot-separated
/// segments of letters, digits and `_`, each starting with a letter, at least two).
pub fn package_name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > MAX_PACKAGE_NAME {
        return Some(format!("must be 1 to {MAX_PACKAGE_NAME} characters"));
    }
    let debian = name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b));
    let android = name.split('.').count() >= 2
        && name.split('.').all(|seg| {
            seg.starts_with(|c: char| c.is_ascii_alphabetic())
                && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        });
    (!debian && !android).then(|| {
        "must be a Debian package name (fonts-noto-core) or an Android application id (org.example.app)".to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_per_field_and_merge_newest_first() {
        let bad = AgentSettings {
            heartbeat_secs: Some(0),
            telemetry_budget_bytes: Some(10),
            ..AgentSettings::default()
        };
        let paths: Vec<String> = bad.problems().into_iter().map(|p| p.path).collect();
        assert_eq!(paths, ["heartbeat_secs", "telemetry_budget_bytes"]);
        assert_eq!(AgentSettings::default().problems().len(), 1);
        let old = AgentSettings {
            heartbeat_secs: Some(30),
            metrics_secs: Some(60),
            ..AgentSettings::default()
        };
        let new = AgentSettings {
            metrics_secs: Some(10),
            ..AgentSettings::default()
        };
        let merged = old.merged(&new);
        assert_eq!((merged.heartbeat_secs, merged.metrics_secs), (Some(30), Some(10)));
    }

    #[test]
    fn package_names_follow_debian_or_android() {
        for good in [
            "fonts-noto-core",
            "libvpx7",
            "g++",
            "org.example.board",
            "tv.luach.Agent_2",
        ] {
            assert_eq!(package_name_problem(good), None, "{good}");
        }
        for bad in [
            "",
            "a",
            "-x",
            "Fonts",
            "x; rm -rf /",
            "a b",
            ".org",
            "../x",
            "Org.Ex-ample",
        ] {
            assert!(package_name_problem(bad).is_some(), "{bad}");
        }
    }
}
