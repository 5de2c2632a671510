//! The Grafana dashboards (`deploy/grafana/*.json`) and the Prometheus alert rules
//! (`deploy/prometheus/luach-rules.yml`) against the metric families the server registers
//! ([`Metrics::families`], which also lists vectors that have seen no label values and are
//! therefore absent from a scrape), and the rules against their promtool unit tests
//! (`deploy/prometheus/luach-rules.test.yml`).
//!
//! PromQL is read loosely here, not parsed (promtool checks the syntax):
//! - a metric is an identifier starting with `luach_` or `process_` outside quoted strings;
//!   it must be a registered family, or a histogram's with `_bucket`, `_sum` or `_count`;
//! - a matcher label is an identifier before `=`, `!=`, `=~` or `!~` in the braces right after
//!   a metric name; it must be a label of that family;
//! - a grouping label is one listed after `by`, `without`, `on` or `ignoring`; it must be a
//!   label of every metric in the expression;
//! - `instance` and `job` (added by Prometheus to every scraped series) are labels of every
//!   family, `le` of every `_bucket` series;
//! - a label a legend (`{{label}}`) or an alert's annotation (`$labels.label`) shows must be
//!   grouped by, or, in an expression without grouping, a label of one of its metrics.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use luach_control_plane::metrics::{Family, Kind, Metrics};
use luach_tests::Must;
use serde_json::Value;

const DASHBOARDS: [&str; 2] = ["deploy/grafana/luach-fleet.json", "deploy/grafana/luach-server.json"];
const RULES: &str = "deploy/prometheus/luach-rules.yml";
const RULES_TESTS: &str = "deploy/prometheus/luach-rules.test.yml";
/// Labels Prometheus adds to every series it scrapes.
const TARGET_LABELS: [&str; 2] = ["instance", "job"];
const HISTOGRAM_SERIES: [&str; 3] = ["_bucket", "_sum", "_count"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().must().to_owned()
}

fn families() -> BTreeMap<String, Family> {
    Metrics::new()
        .families()
        .into_iter()
        .map(|f| (f.name.clone(), f))
        .collect()
}

/// Runs promtool with `args` from the repository root; fails with its output unless it succeeds.
fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("promtool not available ({e}); scripts/test.sh installs the prometheus package"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {} failed:\n{text}", args.join(" "));
    text
}

// ------------------------------------------------------------------ loose PromQL reading

/// A series an expression selects: its name and the label names of its matchers.
#[derive(Debug)]
struct Selector {
    name: String,
    matchers: Vec<String>,
}

/// What an expression names: the series it selects (only `luach_*` and `process_*`) and the
/// labels it groups by.
#[derive(Debug, Default)]
struct Names {
    selectors: Vec<Selector>,
    grouping: BTreeSet<String>,
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// `expr` as identifiers and single punctuation characters, without quoted strings.
fn tokens(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = expr.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' || c == '\'' || c == '`' {
            let mut escaped = false;
            for d in chars.by_ref() {
                if d == c && !escaped {
                    break;
                }
                escaped = d == '\\' && !escaped;
            }
            out.push("\"\"".to_owned());
        } else if is_ident(c) {
            let mut ident = c.to_string();
            while let Some(&d) = chars.peek().filter(|d| is_ident(**d)) {
                ident.push(d);
                chars.next();
            }
            out.push(ident);
        } else if !c.is_whitespace() {
            out.push(c.to_string());
        }
    }
    out
}

fn read_names(expr: &str) -> Names {
    let tokens = tokens(expr);
    let mut names = Names::default();
    let mut i = 0;
    while i < tokens.len() {
        let t = tokens[i].as_str();
        if t.starts_with("luach_") || t.starts_with("process_") {
            let mut matchers = Vec::new();
            if tokens.get(i + 1).is_some_and(|n| n == "{") {
                i += 2;
                while i < tokens.len() && tokens[i] != "}" {
                    let label = tokens[i].chars().all(is_ident) && tokens[i] != "\"\"";
                    let op = tokens.get(i + 1).is_some_and(|n| n == "=" || n == "!");
                    if label && op {
                        matchers.push(tokens[i].clone());
                    }
                    i += 1;
                }
            }
            names.selectors.push(Selector {
                name: t.to_owned(),
                matchers,
            });
        } else if matches!(t, "by" | "without" | "on" | "ignoring") && tokens.get(i + 1).is_some_and(|n| n == "(") {
            i += 2;
            while i < tokens.len() && tokens[i] != ")" {
                if tokens[i] != "," {
                    names.grouping.insert(tokens[i].clone());
                }
                i += 1;
            }
        }
        i += 1;
    }
    names
}

/// The labels a series of `name` has, or `None` when the server registers no such family.
fn series_labels(families: &BTreeMap<String, Family>, name: &str) -> Option<BTreeSet<String>> {
    let mut labels: BTreeSet<String> = TARGET_LABELS.iter().map(|l| (*l).to_owned()).collect();
    if let Some(family) = families.get(name) {
        labels.extend(family.labels.iter().cloned());
        return Some(labels);
    }
    let (family, suffix) = HISTOGRAM_SERIES
        .iter()
        .find_map(|s| Some((families.get(name.strip_suffix(s)?)?, *s)))?;
    if family.kind != Kind::HISTOGRAM {
        return None;
    }
    labels.extend(family.labels.iter().cloned());
    if suffix == "_bucket" {
        labels.insert("le".to_owned());
    }
    Some(labels)
}

/// What is wrong with `expr` (from `place`) and with the labels `shown` of its result (legend,
/// annotations), by the rules in this file's overview.
fn check_expr(families: &BTreeMap<String, Family>, place: &str, expr: &str, shown: &[String]) -> Vec<String> {
    let names = read_names(expr);
    let mut problems = Vec::new();
    let mut every: Option<BTreeSet<String>> = None;
    let mut any = BTreeSet::new();
    for s in &names.selectors {
        let Some(labels) = series_labels(families, &s.name) else {
            problems.push(format!(
                "{place}: `{}` is not a family the server registers ({expr})",
                s.name
            ));
            continue;
        };
        for m in s.matchers.iter().filter(|m| !labels.contains(*m)) {
            problems.push(format!("{place}: `{}` has no label `{m}` ({expr})", s.name));
        }
        any.extend(labels.iter().cloned());
        every = Some(match every {
            None => labels,
            Some(every) => every.intersection(&labels).cloned().collect(),
        });
    }
    if !problems.is_empty() {
        return problems;
    }
    let every = every.unwrap_or_default();
    for g in names.grouping.iter().filter(|g| !every.contains(*g)) {
        problems.push(format!(
            "{place}: grouping by `{g}`, which not every metric has ({expr})"
        ));
    }
    let available = if names.grouping.is_empty() {
        &any
    } else {
        &names.grouping
    };
    for l in shown.iter().filter(|l| !available.contains(*l)) {
        problems.push(format!(
            "{place}: shows label `{l}`, which the result does not have ({expr})"
        ));
    }
    problems
}

/// The `{{label}}` placeholders of a Grafana legend, or the `$labels.label` of an annotation.
fn shown_labels(text: &str, opening: &str) -> Vec<String> {
    text.split(opening)
        .skip(1)
        .map(|rest| {
            rest.trim_start()
                .chars()
                .take_while(|c| is_ident(*c))
                .collect::<String>()
        })
        .filter(|l| !l.is_empty())
        .collect()
}

// ------------------------------------------------------------------ the files

fn dashboard(path: &str) -> Value {
    let text = std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every panel of a dashboard, those inside collapsed rows too.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().into_iter().flatten() {
        out.push(p);
        out.extend(p["panels"].as_array().into_iter().flatten());
    }
    out
}

/// A dashboard's queries: `(where, expr, legend)` for every panel target, and the template
/// variables' queries.
fn dashboard_queries(path: &str, dashboard: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for p in panels(dashboard) {
        for (i, t) in p["targets"].as_array().into_iter().flatten().enumerate() {
            out.push((
                format!(
                    "{path}: panel {} \"{}\" target {i}",
                    p["id"],
                    p["title"].as_str().unwrap_or("")
                ),
                t["expr"].as_str().unwrap_or("").to_owned(),
                t["legendFormat"].as_str().unwrap_or("").to_owned(),
            ));
        }
    }
    for v in dashboard["templating"]["list"].as_array().into_iter().flatten() {
        if v["type"] == "query" {
            let query = v["query"]["query"].as_str().or(v["query"].as_str()).unwrap_or("");
            out.push((
                format!("{path}: variable {}", v["name"]),
                query.to_owned(),
                String::new(),
            ));
        }
    }
    out
}

/// An alert or recording rule of a rules file, read line by line (the rules file keeps each
/// `expr` on one line or in a block scalar).
#[derive(Debug, Default)]
struct Rule {
    name: String,
    expr: String,
    shown: Vec<String>,
}

fn rules(text: &str) -> Vec<Rule> {
    let mut out: Vec<Rule> = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start().trim_start_matches("- ");
        if let Some(name) = trimmed.strip_prefix("alert:").or(trimmed.strip_prefix("record:")) {
            out.push(Rule {
                name: name.trim().to_owned(),
                ..Rule::default()
            });
        } else if let (Some(expr), Some(rule)) = (trimmed.strip_prefix("expr:"), out.last_mut()) {
            let expr = expr.trim();
            if expr.starts_with('|') || expr.starts_with('>') {
                let indent = line.len() - line.trim_start().len();
                while let Some(next) = lines.next_if(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
                {
                    rule.expr.push_str(next.trim());
                    rule.expr.push(' ');
                }
            } else {
                rule.expr = expr.trim_matches(|c| c == '"' || c == '\'').to_owned();
            }
        } else if let Some(rule) = out.last_mut() {
            rule.shown.extend(shown_labels(line, "$labels."));
        }
    }
    out
}

// ------------------------------------------------------------------ tests

#[test]
fn dashboards_and_rules_name_only_what_the_server_exports() {
    let families = families();
    let mut problems = Vec::new();
    let mut checked = 0;
    for path in DASHBOARDS {
        for (place, expr, legend) in dashboard_queries(path, &dashboard(path)) {
            problems.extend(check_expr(&families, &place, &expr, &shown_labels(&legend, "{{")));
            checked += 1;
        }
    }
    let text = std::fs::read_to_string(root().join(RULES)).must();
    let rules = rules(&text);
    assert!(rules.len() >= 4, "read {} rules from {RULES}", rules.len());
    for rule in &rules {
        assert!(!rule.expr.is_empty(), "{RULES}: {} has no expr", rule.name);
        problems.extend(check_expr(
            &families,
            &format!("{RULES}: {}", rule.name),
            &rule.expr,
            &rule.shown,
        ));
        checked += 1;
    }
    assert!(checked > 40, "only {checked} expressions read");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_check_catches_a_missing_family_and_a_wrong_label() {
    let mut families = families();
    let expr = r#"sum by (lease) (luach_lease_held{lease="jobs"})"#;
    assert_eq!(
        check_expr(&families, "t", expr, &["lease".to_owned()]),
        Vec::<String>::new()
    );

    let wrong = [
        r#"sum(luach_lease_held{name="jobs"})"#,
        "sum by (route) (luach_lease_held)",
        "luach_lease_held_bucket",
        "histogram_quantile(0.9, sum by (le) (rate(luach_store_errors_total_bucket[5m])))",
        "process_resident_memory_bytes",
    ];
    for expr in wrong {
        assert_eq!(check_expr(&families, "t", expr, &[]).len(), 1, "{expr}");
    }
    assert_eq!(
        check_expr(
            &families,
            "t",
            "sum by (lease) (luach_lease_held)",
            &["instance".to_owned()]
        )
        .len(),
        1
    );
    // A quoted string that looks like a metric is not one.
    assert!(check_expr(&families, "t", r#"luach_http_requests_total{route="/luach_x"}"#, &[]).is_empty());

    families.remove("luach_lease_held");
    let problems = check_expr(&families, "t", expr, &[]);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("`luach_lease_held` is not a family")),
        "{problems:?}"
    );
}

#[test]
fn dashboards_are_well_formed() {
    let mut uids = BTreeSet::new();
    for path in DASHBOARDS {
        let d = dashboard(path);
        let uid = d["uid"].as_str().filter(|s| !s.is_empty());
        assert!(
            uid.is_some_and(|u| uids.insert(u.to_owned())),
            "{path}: uid missing or repeated"
        );
        assert!(d["title"].as_str().is_some_and(|s| !s.is_empty()), "{path}: no title");
        assert_eq!(d["schemaVersion"], 39, "{path}");

        let vars = d["templating"]["list"].as_array().must();
        let var = |name: &str| {
            vars.iter()
                .find(|v| v["name"] == name)
                .unwrap_or_else(|| panic!("{path}: no variable {name}"))
        };
        assert_eq!(var("datasource")["type"], "datasource", "{path}");
        assert_eq!(var("datasource")["query"], "prometheus", "{path}");
        let instance = var("instance");
        assert_eq!(
            instance["query"]["query"], "label_values(luach_devices_connected, instance)",
            "{path}"
        );
        assert_eq!(instance["datasource"]["uid"], "${datasource}", "{path}");

        let mut ids = BTreeSet::new();
        let panels = panels(&d);
        assert!(panels.len() > 5, "{path}: {} panels", panels.len());
        for p in panels {
            let title = p["title"].as_str().unwrap_or("");
            let id = p["id"]
                .as_u64()
                .unwrap_or_else(|| panic!("{path}: panel \"{title}\" has no id"));
            assert!(ids.insert(id), "{path}: panel id {id} is used twice");
            assert!(!title.is_empty(), "{path}: panel {id} has no title");
            assert!(
                p["gridPos"]["w"].is_u64() && p["gridPos"]["h"].is_u64(),
                "{path}: panel {id} has no gridPos"
            );
            if p["type"] == "row" {
                continue;
            }
            assert!(
                p["type"] == "timeseries" || p["type"] == "stat",
                "{path}: panel {id} is a {}",
                p["type"]
            );
            assert!(
                p["description"].as_str().is_some_and(|s| s.len() > 20),
                "{path}: panel \"{title}\" does not explain itself"
            );
            assert_eq!(p["datasource"]["uid"], "${datasource}", "{path}: panel \"{title}\"");
            let targets = p["targets"].as_array().filter(|t| !t.is_empty());
            let targets = targets.unwrap_or_else(|| panic!("{path}: panel \"{title}\" has no target"));
            let mut refs = BTreeSet::new();
            for t in targets {
                assert!(
                    t["expr"].as_str().is_some_and(|e| !e.trim().is_empty()),
                    "{path}: \"{title}\": empty expr"
                );
                assert!(
                    refs.insert(t["refId"].as_str().must()),
                    "{path}: \"{title}\": refId repeated"
                );
                if !t["datasource"].is_null() {
                    assert_eq!(t["datasource"]["uid"], "${datasource}", "{path}: \"{title}\"");
                }
            }
        }
    }
}

#[test]
fn dashboard_queries_are_valid_promql() {
    // promtool has no query linter; every panel query becomes a recording rule of a scratch
    // rules file instead, Grafana's interval variables replaced by a duration.
    let mut file = String::from("groups:\n  - name: dashboards\n    rules:\n");
    let mut n = 0;
    for path in DASHBOARDS {
        for (place, expr, _) in dashboard_queries(path, &dashboard(path)) {
            if place.contains(": variable ") {
                continue;
            }
            let expr = ["$__rate_interval", "$__interval", "$__range"]
                .iter()
                .fold(expr, |e, v| e.replace(v, "5m"));
            file.push_str(&format!(
                "      - record: dashboard:query_{n}\n        expr: {}\n",
                serde_json::to_string(&expr).must()
            ));
            n += 1;
        }
    }
    let dir = tempfile::tempdir().must();
    let rules = dir.path().join("dashboards.yml");
    std::fs::write(&rules, file).must();
    let out = promtool(&["check", "rules", rules.to_str().must()]);
    assert!(out.contains(&format!("{n} rules found")), "{out}");
}

#[test]
fn alert_rules_pass_promtool_check() {
    let out = promtool(&["check", "rules", RULES]);
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn alert_rules_pass_their_unit_tests() {
    // Every alert of the rules file has a case in the unit tests.
    let tests = std::fs::read_to_string(root().join(RULES_TESTS)).must();
    for rule in rules(&std::fs::read_to_string(root().join(RULES)).must()) {
        assert!(
            tests.contains(&format!("alertname: {}\n", rule.name)),
            "{RULES_TESTS} does not test {}",
            rule.name
        );
    }
    let out = promtool(&["test", "rules", RULES_TESTS]);
    assert!(out.contains("SUCCESS"), "{out}");
}
