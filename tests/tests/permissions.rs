//! The role × route × method matrix: printed from the route table, compared with the
//! checked-in `tests/expected/permissions.txt`, and enforced live by calling every route as
//! every role. Regenerate the file after an intended change with `LUACH_BLESS=1`.

use luach_control_plane::api::{Access, route_table};
use luach_control_plane::auth::{Permission, Role};
use luach_tests::{Api, Must, spawn_app};
use serde_json::json;

const COLUMNS: [&str; 6] = [
    "super_admin",
    "tenant_admin",
    "gabbai",
    "operator",
    "viewer",
    "anonymous",
];

/// Whether `who` may call a route with `access`; a super admin (without acting inside a
/// tenant) reaches no tenant data.
fn allowed(access: Access, who: &str) -> bool {
    match (who, access) {
        (_, Access::Public) => true,
        ("anonymous", _) | (_, Access::Device) => false,
        ("super_admin", Access::Allowed(p)) => !p.is_tenant_permission() && Role::SuperAdmin.permissions().contains(p),
        (role, access) => access.allows_role(Role::parse(role).must()),
    }
}

fn matrix() -> String {
    let mut out = format!(
        "{:<7} {:<34} {:<16} {}\n",
        "method",
        "path",
        "access",
        COLUMNS.join(" ")
    );
    for route in route_table() {
        let cells: Vec<String> = COLUMNS
            .iter()
            .map(|who| {
                format!(
                    "{:<width$}",
                    if allowed(route.access, who) { "Y" } else { "-" },
                    width = who.len()
                )
            })
            .collect();
        out.push_str(&format!(
            "{:<7} {:<34} {:<16} {}\n",
            route.method.as_str(),
            route.path,
            route.access.label(),
            cells.join(" ").trim_end()
        ));
    }
    out
}

#[test]
fn the_matrix_matches_the_checked_in_table() {
    let expected_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("expected/permissions.txt");
    let actual = matrix();
    println!("{actual}");
    if std::env::var_os("LUACH_BLESS").is_some() {
        std::fs::write(&expected_path, &actual).must();
    }
    let expected = std::fs::read_to_string(&expected_path).must();
    assert_eq!(actual, expected, "the permission matrix changed; review and re-bless");
    // Every permission is used by some route, and no route is left without a rule; except
    // `commands:emergency`, which guards a field (a job's `emergency` flag) rather than a route
    // (tests/tests/jobs.rs checks it: operators are refused, tenant admins are not).
    for p in Permission::ALL
        .into_iter()
        .filter(|p| *p != Permission::CommandsEmergency)
    {
        assert!(
            route_table().iter().any(|r| r.access == Access::Allowed(p)),
            "{} guards no route",
            p.as_str()
        );
    }
}

/// A concrete path for a route template (ids that exist nowhere).
fn concrete(path: &str) -> String {
    path.replace("{id}", "zznone1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_enforces_the_matrix_live() {
    let app = spawn_app(|_| {}).await;
    // Signed-in sessions (what the dashboard has): credential routes need one.
    let mut clients: Vec<(&str, Api)> = Vec::new();
    for who in COLUMNS {
        if who == "anonymous" {
            clients.push((who, app.api.anonymous()));
            continue;
        }
        clients.push((who, app.user("default", who, &format!("{who}@matrix.example")).await));
    }

    let mut violations = Vec::new();
    for route in route_table() {
        if route.path == "/auth/login" || route.path == "/auth/refresh" {
            continue; // public, and answer for credentials in the body, not the caller
        }
        for (who, api) in &mut clients {
            let req = api
                .http
                .request(
                    route.method.clone(),
                    api.url(&format!("/api/v1{}", concrete(route.path))),
                )
                .json(&json!({}));
            let (status, body) = api.send(req).await;
            let permitted = allowed(route.access, who);
            let refused = matches!(status, 401 | 403);
            // No answer at all is never a pass.
            if permitted == refused || status >= 500 || status == 0 {
                violations.push(format!(
                    "{who:<12} {} {}: {status} {body} (matrix says {})",
                    route.method,
                    route.path,
                    if permitted { "allowed" } else { "refused" }
                ));
            }
            if !permitted {
                // Device routes take no user credentials at all.
                let expected = if *who == "anonymous" || route.access == Access::Device {
                    401
                } else {
                    403
                };
                if status != expected {
                    violations.push(format!(
                        "{who:<12} {} {}: {status}, expected {expected}",
                        route.method, route.path
                    ));
                }
            }
            if route.path == "/auth/logout" && *who != "anonymous" {
                // That ended the session: sign in again for the routes that follow.
                *api = app
                    .login(&format!("{who}@matrix.example"), luach_tests::ADMIN_PASSWORD)
                    .await;
            }
        }
    }
    assert!(violations.is_empty(), "matrix violations:\n{}", violations.join("\n"));
}

/// A personal access token never reaches the credential routes, whatever its cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_tokens_cannot_change_credentials() {
    let app = spawn_app(|_| {}).await;
    let token = app.token("default", "tenant_admin", "pat@matrix.example", None).await;
    let api = app.api.with_token(&token);
    for route in route_table().into_iter().filter(|r| r.access == Access::Session) {
        let req = api
            .http
            .request(route.method.clone(), api.url(&format!("/api/v1{}", route.path)))
            .json(&json!({}));
        let (status, body) = api.send(req).await;
        assert_eq!(status, 403, "{} {}: {body}", route.method, route.path);
        assert_eq!(body["error"]["code"], "session_required", "{}", route.path);
    }
}
