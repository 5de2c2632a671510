//! The OpenAPI document covers every route with schemas generated from the handlers' types, and
//! schemathesis (PyPI) fuzzes the API from it, time-bounded, once per role, on seeded data with
//! the rate limits raised. Every run must: find no server error, no answer that its status or
//! schema leaves undocumented, no invalid input accepted; test every operation; and reach real
//! data (each read route the role may use answers 2xx at least once, counted by the server's
//! own metrics), so a run that only collects 404s and 422s fails.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;

use luach_control_plane::api::{Access, route_table};
use luach_control_plane::auth::Role;
use luach_tests::{Api, Must, TestApp, python, spawn_app};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_route() {
    let app = spawn_app(|_| {}).await;
    let (status, doc) = app.api.anonymous().get("/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let schemas = doc["components"]["schemas"].as_object().must();
    for route in route_table() {
        let op = &doc["paths"][format!("/api/v1{}", route.path)][route.method.as_str().to_lowercase()];
        assert!(
            op.is_object(),
            "{} {} missing from the document",
            route.method,
            route.path
        );
        assert_eq!(op["x-luach-access"], route.access.label());
        // Every operation names a success answer, and every JSON body is a real schema.
        let responses = op["responses"].as_object().must();
        assert!(
            responses.keys().any(|s| s.starts_with('2') || s == "304"),
            "{} {}: no success answer",
            route.method,
            route.path
        );
        for (status, answer) in responses {
            if let Some(schema) = answer.pointer("/content/application~1json/schema") {
                assert_ne!(
                    schema,
                    &json!({"type": "object"}),
                    "{} {} {status}: generic",
                    route.method,
                    route.path
                );
            }
        }
    }
    // Request bodies are the Rust types' schemas: required fields, no unknown fields.
    let login = &doc["paths"]["/api/v1/auth/login"]["post"]["requestBody"]["content"]["application/json"]["schema"];
    let name = login["$ref"].as_str().must().rsplit('/').next().must();
    let schema = &schemas[name];
    assert_eq!(schema["additionalProperties"], false, "{schema}");
    let required: BTreeSet<&str> = schema["required"]
        .as_array()
        .must()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(required, BTreeSet::from(["email", "password"]), "{schema}");
    // Request bodies never reach a schema of what the server writes (`…Out`): those can
    // require fields a request may leave out.
    let mut seen = BTreeSet::new();
    let mut todo: Vec<&Value> = doc["paths"]
        .as_object()
        .must()
        .values()
        .flat_map(|ops| ops.as_object().must().values())
        .filter_map(|op| op.pointer("/requestBody/content"))
        .flat_map(|content| content.as_object().must().values())
        .collect();
    while let Some(value) = todo.pop() {
        match value {
            Value::Object(map) => {
                if let Some(name) = map
                    .get("$ref")
                    .and_then(Value::as_str)
                    .and_then(|r| r.strip_prefix("#/components/schemas/"))
                {
                    assert!(!name.ends_with("Out"), "a request body refers to {name}");
                    if seen.insert(name.to_owned()) {
                        todo.push(&schemas[name]);
                    }
                }
                todo.extend(map.values());
            }
            Value::Array(items) => todo.extend(items),
            _ => {}
        }
    }
    assert!(seen.contains("PowerTime"), "{seen:?}");
    // Query parameters come from the query types.
    let list = &doc["paths"]["/api/v1/devices"]["get"]["parameters"];
    let names: BTreeSet<&str> = list
        .as_array()
        .must()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["after", "group", "limit", "status", "tag"]),
        "{list}"
    );
    // Errors carry every code of the server's table.
    let codes = &schemas["Error"]["properties"]["error"]["properties"]["code"]["enum"];
    let listed: BTreeSet<&str> = codes.as_array().must().iter().filter_map(Value::as_str).collect();
    let known: BTreeSet<&str> = luach_control_plane::error::ErrorCode::ALL
        .iter()
        .map(|c| c.as_str())
        .collect();
    assert_eq!(listed, known);
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert!(doc["paths"][path]["get"].is_object(), "{path} missing");
    }
}

/// The error table in docs/api.md is the server's own (`LUACH_BLESS=1` rewrites it).
#[test]
fn the_documented_error_table_is_the_servers() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/api.md");
    let text = std::fs::read_to_string(&path).must();
    let (begin, end) = ("<!-- error-table:begin -->\n", "<!-- error-table:end -->");
    let start = text.find(begin).must() + begin.len();
    let stop = text.find(end).must();
    let table = luach_control_plane::error::markdown_table();
    if std::env::var_os("LUACH_BLESS").is_some() {
        std::fs::write(&path, format!("{}{table}{}", &text[..start], &text[stop..])).must();
        return;
    }
    assert_eq!(
        &text[start..stop],
        table,
        "docs/api.md's error table differs from ErrorCode; run with LUACH_BLESS=1 to rewrite it"
    );
}

/// Ids of what [`seed`] created, for schemathesis to use as path parameters.
#[derive(Default)]
struct Seeded {
    ids: BTreeMap<&'static str, Vec<String>>,
    /// The seeding tenant admin's token.
    token: String,
}

async fn created(api: &Api, path: &str, body: Value) -> String {
    let (status, answer) = api.post(path, &body).await;
    assert_eq!(status, 201, "{path}: {answer}");
    answer["data"]["id"].as_str().must().to_owned()
}

/// Gives the tenant `default` (again before each role's run, as the previous run may have
/// deleted or revoked what it found) enrolled screens, a synagogue with a schedule, plaques,
/// announcements, the programme, a bulk token and users.
async fn seed(app: &TestApp, round: usize, releases: &luach_ota::KeyDir) -> Seeded {
    // A fresh tenant admin each round: an earlier run may have disabled the previous one.
    let token = app
        .token("default", "tenant_admin", &format!("seed{round}@fuzz.example"), None)
        .await;
    let api = &app.api.with_token(&token);
    let mut seeded = Seeded::default();
    // Enrolled screens (a bulk token), so their certificate routes have something to show.
    let bulk = luach_tests::bulk_token(api, 12).await;
    let mut devices = Vec::new();
    for i in 0..12 {
        let id = format!("fuzz{round}x{i:02}");
        let key = luach_pki::DeviceKey::generate().must();
        let body = json!({"device_id": id, "csr_pem": key.csr_pem(&id).must(), "enrolment_token": bulk});
        let (status, answer) = api.anonymous().post("/api/v1/enrolment/requests", &body).await;
        assert_eq!(status, 201, "{answer}");
        devices.push(id);
    }
    // Screenshots, uploaded as the screens upload them; the same ids on every screen, so any
    // seeded (screen, screenshot) pair names one.
    let shots: Vec<String> = (0..3).map(|_| uuid::Uuid::now_v7().hyphenated().to_string()).collect();
    for device in &devices {
        let token = app.device_token("default", device).await;
        for shot in &shots {
            let (status, body) = app
                .upload_screenshot(&token, shot, luach_tests::board_png(320, 180))
                .await;
            assert_eq!(status, 201, "{body}");
        }
    }
    seeded.ids.insert("screenshots", shots);
    // Jobs for the (offline) screens: they stay queued, so every job route has one to read.
    let mut jobs = Vec::new();
    for device in devices.iter().take(3) {
        let body = json!({"command": {"type": "ping"}, "target": {"devices": [device]}});
        let (status, answer) = api.post("/api/v1/jobs", &body).await;
        assert_eq!(status, 201, "{answer}");
        jobs.push(answer["data"]["id"].as_str().must().to_owned());
    }
    seeded.ids.insert("jobs", jobs);
    seeded.ids.insert(
        "metrics",
        luach_control_plane::store::METRICS
            .iter()
            .map(|m| (*m).to_owned())
            .collect(),
    );
    seeded.ids.insert("devices", devices);
    let profile = json!({
        "name": "Beth El", "latitude": 40.7128, "longitude": -74.006, "timezone": "America/New_York",
        "nusach": "ashkenaz", "language": "en", "schedule": {"rules": [
            {"name": "Shacharit", "time": {"fixed": "07:00"}, "days": ["every_day"]},
            {"name": "Mincha", "time": {"zman": "sunset", "offset_minutes": -15}, "days": ["weekday"]}]}
    });
    let (status, body) = api.put("/api/v1/synagogues/main", &profile).await;
    assert!(matches!(status, 200 | 201), "{body}");
    seeded.ids.insert("synagogues", vec!["main".into()]);
    // A second synagogue for every screen, out of schemathesis's dictionary: when the run
    // points `main` at other screens, the screens' previews still have a day. Deletions draw
    // their ids from spares, so `main` stays for the synagogue routes' reads.
    for id in ["zz-every-screen", "spare-a", "spare-b"] {
        let (status, body) = api.put(&format!("/api/v1/synagogues/{id}"), &profile).await;
        assert!(matches!(status, 200 | 201), "{body}");
    }
    seeded
        .ids
        .insert("spare_synagogues", vec!["spare-a".into(), "spare-b".into()]);
    let mut memorials = Vec::new();
    for i in 0..4 {
        memorials.push(
            created(
                api,
                "/api/v1/memorials",
                json!({"name": format!("Plaque {i}"), "passed": {"civil": {"date": format!("2001-02-0{}", i + 1)}}}),
            )
            .await,
        );
    }
    seeded.ids.insert("memorials", memorials);
    let mut announcements = Vec::new();
    for i in 0..4 {
        announcements.push(created(api, "/api/v1/announcements", json!({"text_en": format!("Notice {i}")})).await);
    }
    seeded.ids.insert("announcements", announcements);
    let mut queries = Vec::new();
    for (name, tag) in [("Lobby", "lobby"), ("Hall", "hall")] {
        queries.push(created(api, "/api/v1/queries", json!({"name": name, "query": {"tag": tag}})).await);
    }
    seeded.ids.insert("queries", queries);
    // Alert rules (none of them can fire on screens that never connected) and open alerts.
    let mut rules = Vec::new();
    for minutes in [10, 30] {
        let rule = json!({"name": format!("Silent {minutes} min"), "target": {"all": true},
                          "condition": {"offline": {"for_s": minutes * 60}}});
        rules.push(created(api, "/api/v1/alert-rules", rule).await);
    }
    let mut alerts = Vec::new();
    for (rule, device) in rules.iter().zip(&seeded.ids["devices"]) {
        alerts.push(luach_tests::seed_alert(app, "default", rule, device, "Silent", false).await);
    }
    seeded.ids.insert("alert_rules", rules);
    seeded.ids.insert("alerts", alerts);
    let ends = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let silence = json!({"matchers": {"device_id": seeded.ids["devices"][0]}, "ends_at": ends, "comment": "fuzz"});
    seeded.ids.insert(
        "alert_silences",
        vec![created(api, "/api/v1/alert-silences", silence).await],
    );
    let hook = json!({"name": "Ops", "kind": "webhook", "url": "https://hooks.example.org/luach"});
    seeded.ids.insert(
        "notification_channels",
        vec![created(api, "/api/v1/notification-channels", hook).await],
    );
    let person = json!({"name": "Reuven", "contact": {"kind": "email", "to": "reuven@example.org"},
                        "aliyot": true, "consent": {"given_on": "2026-11-01", "how": "signed form"}});
    seeded
        .ids
        .insert("congregants", vec![created(api, "/api/v1/congregants", person).await]);
    let today = chrono::Utc::now().date_naive();
    let aliyah = json!({"date": today, "honours": [{"honour": "kohen", "name": "Reuven"}]});
    seeded
        .ids
        .insert("aliyot", vec![created(api, "/api/v1/aliyot", aliyah).await]);
    let shiur = json!({"teacher": "Rabbi Levi", "schedule": {"name": "Daf Yomi", "time": {"fixed": "06:15"}, "days": ["every_day"]}});
    seeded
        .ids
        .insert("shiurim", vec![created(api, "/api/v1/shiurim", shiur).await]);
    let timer = json!({"label_en": "Candles", "target": {"zman": "candle_lighting"}, "show_before_minutes": 30});
    seeded
        .ids
        .insert("timers", vec![created(api, "/api/v1/timers", timer).await]);
    let (_, tokens) = api.get("/api/v1/enrolment/tokens").await;
    let token_ids = tokens["data"]
        .as_array()
        .must()
        .iter()
        .filter_map(|t| t["id"].as_str())
        .map(str::to_owned);
    seeded.ids.insert("enrolment_tokens", token_ids.collect());
    seeded.ids.insert("tenants", vec!["default".into(), "other".into()]);
    // A signed release of the installation's registry (a new version each round: the last
    // round's super admin may delete it).
    let root = app
        .user("default", "super_admin", &format!("releases{round}@fuzz.example"))
        .await;
    let release = luach_tests::register_release(&root, releases, &format!("0.{}.0", round + 1), b"fuzz").await;
    seeded.ids.insert("releases", vec![release]);
    seeded.token = token;
    seeded
}

/// schemathesis.toml: path parameters drawn from the seeded ids most of the time.
fn config(seeded: &Seeded, users: &[String]) -> String {
    let mut out = String::new();
    let mut dictionary = |name: &str, values: &[String]| {
        let list: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
        out.push_str(&format!("[dictionaries.{name}]\nvalues = [{}]\n\n", list.join(", ")));
    };
    for (name, values) in &seeded.ids {
        dictionary(name, values);
    }
    dictionary("users", users);
    for (regex, param, dict) in [
        (
            r"^/api/v1/devices/\{id\}(?!/screenshots/\{shot\}|/metrics/\{metric\})",
            "id",
            "devices",
        ),
        (r"^/api/v1/enrolment/requests/\{device_id\}", "device_id", "devices"),
        (r"^/api/v1/memorials/\{id\}", "id", "memorials"),
        (r"^/api/v1/announcements/\{id\}", "id", "announcements"),
        (r"^/api/v1/queries/\{id\}", "id", "queries"),
        (r"^/api/v1/alert-rules/\{id\}", "id", "alert_rules"),
        (r"^/api/v1/alerts/\{id\}", "id", "alerts"),
        (r"^/api/v1/alert-silences/\{id\}", "id", "alert_silences"),
        (r"^/api/v1/notification-channels/\{id\}", "id", "notification_channels"),
        (r"^/api/v1/congregants/\{id\}", "id", "congregants"),
        (r"^/api/v1/aliyot/\{id\}", "id", "aliyot"),
        (r"^/api/v1/shiurim/\{id\}", "id", "shiurim"),
        (r"^/api/v1/timers/\{id\}", "id", "timers"),
        (r"^/api/v1/enrolment/tokens/\{id\}", "id", "enrolment_tokens"),
        (r"^/api/v1/tenants/\{id\}", "id", "tenants"),
        (r"^/api/v1/users/\{id\}", "id", "users"),
        (r"^/api/v1/jobs/\{id\}", "id", "jobs"),
        (r"^/api/v1/releases/\{id\}", "id", "releases"),
        (r"^/api/v1/agent/releases/\{id\}", "id", "releases"),
    ] {
        out.push_str(&format!(
            "[[operations]]\ninclude-path-regex = {regex:?}\nparameters = {{ \"path.{param}\" = {{ dictionary = \"{dict}\", probability = 0.8 }} }}\n\n"
        ));
    }
    for (method, dict) in [("exclude-method", "synagogues"), ("include-method", "spare_synagogues")] {
        out.push_str(&format!(
            "[[operations]]\ninclude-path-regex = \"^/api/v1/synagogues/\\\\{{id\\\\}}\"\n{method} = \"DELETE\"\nparameters = {{ \"path.id\" = {{ dictionary = \"{dict}\", probability = 0.8 }} }}\n\n"
        ));
    }
    out.push_str(concat!(
        "[[operations]]\ninclude-path-regex = \"^/api/v1/devices/\\\\{id\\\\}/screenshots/\\\\{shot\\\\}$\"\n",
        "parameters = { \"path.id\" = { dictionary = \"devices\", probability = 0.8 }, ",
        "\"path.shot\" = { dictionary = \"screenshots\", probability = 0.8 } }\n\n",
        "[[operations]]\ninclude-path-regex = \"^/api/v1/devices/\\\\{id\\\\}/metrics/\\\\{metric\\\\}$\"\n",
        "parameters = { \"path.id\" = { dictionary = \"devices\", probability = 0.8 }, ",
        "\"path.metric\" = { dictionary = \"metrics\", probability = 0.8 } }\n\n",
    ));
    out
}

/// Successful answers per (method, route) in the server's metrics.
async fn successes(api: &Api) -> BTreeMap<(String, String), u64> {
    let text = api.metrics_text().await;
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("luach_http_requests_total{")) {
        let label = |name: &str| {
            line.split(&format!("{name}=\""))
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_default()
                .to_owned()
        };
        if !label("status").starts_with('2') {
            continue;
        }
        let count: u64 = line.rsplit(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0);
        *out.entry((label("method"), label("route"))).or_insert(0) += count;
    }
    out
}

/// Runs schemathesis as one caller; returns the operations it tested and its report.
async fn fuzz(app: &TestApp, token: &str, dir: &std::path::Path, seconds: &str) -> (BTreeSet<String>, String) {
    let schemathesis = python().parent().must().join("schemathesis");
    let junit = dir.join("junit.xml");
    let out = tokio::process::Command::new(&schemathesis)
        .current_dir(dir)
        .arg("run")
        .arg(format!("http://{}/api/v1/openapi.json", app.http))
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance,negative_data_rejection",
        ])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--max-time", seconds])
        // One worker: hypothesis parses lambda sources with `ast.parse`, which is not thread-safe
        // on CPython 3.11 ("AST constructor recursion depth mismatch" under two workers).
        .args(["--workers", "1"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--report", "junit", "--report-junit-path"])
        .arg(&junit)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{} not available ({e}); scripts/test.sh installs it",
                schemathesis.display()
            )
        });
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "schemathesis found problems:\n{report}");
    let xml = std::fs::read_to_string(&junit).unwrap_or_else(|e| panic!("no JUnit report ({e}):\n{report}"));
    let tested: BTreeSet<String> = xml
        .split("<testcase ")
        .skip(1)
        .filter_map(|case| case.split("name=\"").nth(1))
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect();
    assert!(
        !xml.contains("<failure") && !xml.contains("<error"),
        "schemathesis reported failures:\n{xml}\n{report}"
    );
    (tested, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_as_every_role_finds_nothing() {
    let keys_dir = tempfile::tempdir().must();
    let (releases, _) = luach_ota::KeyDir::keygen(keys_dir.path().join("keys"), 1, 1, chrono::Utc::now()).must();
    let trusted = keys_dir.path().join("keys").join(luach_ota::ROOT_PUB_FILE);
    // Limits that would answer most generated requests with 429 are raised for the run.
    let app = spawn_app(move |c| {
        c.releases.trusted_root = Some(trusted);
        c.auth.login_attempts_per_ip_per_minute = 1_000_000;
        c.auth.max_failed_logins = 1_000_000;
        c.enrolment.requests_per_ip_per_minute = 1_000_000;
        c.enrolment.claims_per_user_per_minute = 1_000_000;
        c.enrolment.renewals_per_device_per_hour = 1_000_000;
        c.enrolment.max_pending = 1_000_000;
        c.enrolment.max_pending_per_source = 1_000_000;
    })
    .await;
    app.create_user("other", "tenant_admin", "admin@other.example").await;
    // Later runs may delete or disable what earlier ones need, so the strongest roles go last.
    let roles = ["viewer", "operator", "gabbai", "tenant_admin", "super_admin"];
    let mut tokens = Vec::new();
    for role in roles {
        tokens.push(app.token("default", role, &format!("{role}@fuzz.example"), None).await);
    }
    let dir = tempfile::tempdir().must();
    let seconds = std::env::var("LUACH_FUZZ_SECONDS").unwrap_or_else(|_| "60".into());
    let (_, doc) = app.api.get("/api/v1/openapi.json").await;
    let operations: BTreeSet<String> = doc["paths"]
        .as_object()
        .must()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .must()
                .keys()
                .map(move |m| format!("{} {path}", m.to_uppercase()))
        })
        .collect();
    assert_eq!(operations.len(), route_table().len() + 3);
    // Schemathesis does not test the operation that serves the document it was given.
    let mut operations = operations;
    operations.remove("GET /api/v1/openapi.json");
    for (round, (role, token)) in roles.iter().zip(&tokens).enumerate() {
        let seeded = seed(&app, round, &releases).await;
        let (_, users) = app.api.with_token(&seeded.token).get("/api/v1/users").await;
        let user_ids: Vec<String> = users["data"]
            .as_array()
            .must()
            .iter()
            .filter_map(|u| u["id"].as_str())
            .map(str::to_owned)
            .collect();
        std::fs::write(dir.path().join("schemathesis.toml"), config(&seeded, &user_ids)).must();
        let before = successes(&app.api).await;
        let (tested, report) = fuzz(&app, token, dir.path(), &seconds).await;
        let untested: Vec<&String> = operations.difference(&tested).collect();
        assert!(
            untested.is_empty(),
            "{role}: schemathesis did not test {untested:?}:\n{report}"
        );
        let after = successes(&app.api).await;
        let reached: BTreeSet<(String, String)> = after
            .iter()
            .filter(|(k, n)| before.get(*k).copied().unwrap_or(0) < **n)
            .map(|(k, _)| k.clone())
            .collect();
        // Every read the role may make, on seeded ids, succeeded at least once. (Reads that
        // need a device's own credentials or a poll secret cannot, by design.)
        let role_value = Role::parse(role).must();
        let missed: Vec<String> = route_table()
            .iter()
            .filter(|r| r.method.as_str() == "GET" && r.access != Access::Device)
            .filter(|r| r.path != "/enrolment/requests/{device_id}")
            .filter(|r| r.access.allows_role(role_value))
            .map(|r| ("GET".to_owned(), format!("/api/v1{}", r.path)))
            .filter(|k| !reached.contains(k))
            .map(|(m, p)| format!("{m} {p}"))
            .collect();
        assert!(missed.is_empty(), "{role}: no 2xx answer for {missed:?}\n{report}");
        println!(
            "{role}: {} operations, {} routes answered 2xx",
            tested.len(),
            reached.len()
        );
    }
}
