//! The OpenAPI document covers every route, and schemathesis (PyPI) fuzzes the API from it,
//! time-bounded, as a tenant admin: no request may produce a server error.

use std::process::Stdio;

use luach_control_plane::api::route_table;
use luach_tests::{Must, python, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_route() {
    let app = spawn_app(|_| {}).await;
    let (status, doc) = app.api.anonymous().get("/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    for route in route_table() {
        let op = &doc["paths"][format!("/api/v1{}", route.path)][route.method.as_str().to_lowercase()];
        assert!(
            op.is_object(),
            "{} {} missing from the document",
            route.method,
            route.path
        );
        assert_eq!(op["x-luach-access"], route.access.label());
    }
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert!(doc["paths"][path]["get"].is_object(), "{path} missing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error() {
    let app = spawn_app(|c| c.auth.login_attempts_per_ip_per_minute = 1_000_000).await;
    let token = app.api.token.clone().must();
    let schemathesis = python().parent().must().join("schemathesis");
    let seconds = std::env::var("LUACH_FUZZ_SECONDS").unwrap_or_else(|_| "60".into());
    let out = tokio::process::Command::new(&schemathesis)
        .arg("run")
        .arg(format!("http://{}/api/v1/openapi.json", app.http))
        .args(["--checks", "not_a_server_error"])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--max-time", &seconds])
        .args(["--workers", "2"])
        .args(["--phases", "examples,coverage,fuzzing"])
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
    // A run that tested nothing would also exit 0.
    assert!(report.contains("passed"), "schemathesis ran no operation:\n{report}");
    println!("{report}");
}
