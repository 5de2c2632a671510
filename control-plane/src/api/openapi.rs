//! The OpenAPI 3.1 document (`GET /api/v1/openapi.json`), generated from the route table so it
//! lists exactly the routes the server has, each with its path parameters, query parameters,
//! security requirement and access rule (`x-luach-access`). Request and response bodies are
//! described as JSON objects in the common envelopes; their fields are in docs/api.md.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::routes::{Access, RouteSpec};

/// Query parameters accepted by a route (validated by the handlers' `ValidQuery` types).
fn query_params(method: &str, path: &str) -> &'static [(&'static str, &'static str)] {
    match (method, path) {
        ("GET", "/devices") => &[
            ("status", "online or offline"),
            ("tag", "devices carrying this tag"),
            ("group", "devices in this group"),
            ("limit", "page size 1–500 (default 50)"),
            ("after", "next_after of the previous page"),
        ],
        ("GET", "/announcements" | "/memorials" | "/aliyot" | "/shiurim" | "/timers") => &[
            ("limit", "page size 1–500 (default 50)"),
            ("after", "next_after of the previous page"),
        ],
        ("GET", "/audit") => &[
            ("after", "records after this sequence number"),
            ("limit", "page size 1–500 (default 100)"),
        ],
        ("POST", "/devices/{id}/ping") => &[("timeout_ms", "wait for the acknowledgement, at most 30000")],
        ("GET", "/memorials/yahrzeits") => &[("from", "first civil date, YYYY-MM-DD"), ("days", "1–400")],
        ("GET", "/synagogues/{id}/preview") => &[("date", "civil date, YYYY-MM-DD")],
        ("GET", "/synagogues/{id}/holiday-times") => &[
            ("from", "first civil date, YYYY-MM-DD"),
            ("days", "1–60 (default 30)"),
            ("shabbat", "true: include ordinary Shabbatot"),
        ],
        ("GET", "/devices/{id}/announcements") => &[("at", "RFC 3339 instant (default now)")],
        _ => &[],
    }
}

fn operation(route: &RouteSpec) -> Value {
    let method = route.method.as_str();
    let mut parameters: Vec<Value> = route
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    for (name, description) in query_params(method, route.path) {
        parameters.push(json!({"name": name, "in": "query", "required": false,
                               "description": description, "schema": {"type": "string"}}));
    }
    let success = match method {
        "POST" if !route.path.contains("/auth/") && !route.path.ends_with("/ping") => "201",
        "DELETE" => "204",
        _ => "200",
    };
    let mut responses = Map::new();
    let bundle = route.path.ends_with("/bundle");
    responses.insert(
        success.into(),
        if success == "204" {
            json!({"description": "done"})
        } else if bundle {
            json!({"description": "the bundle's exact bytes (ETag and x-luach-bundle-sha256: their SHA-256)",
                   "content": {"application/json": {"schema": {"type": "object"}}}})
        } else {
            json!({"description": "success", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Data"}}}})
        },
    );
    if bundle {
        responses.insert(
            "304".into(),
            json!({"description": "not modified (If-None-Match names the current hash)"}),
        );
    }
    let mut errors: Vec<&str> = vec!["400", "404", "409", "422", "429"];
    if route.access != Access::Public {
        errors.extend(["401", "403"]);
    }
    if matches!(method, "POST" | "PUT" | "PATCH") {
        errors.extend(["413", "415"]);
    }
    for code in errors {
        responses.insert(code.into(), json!({"$ref": "#/components/responses/Error"}));
    }
    let mut op = json!({
        "operationId": format!("{}{}", method.to_lowercase(), route.path.replace(['/', '{', '}'], "_")),
        "summary": format!("{method} {}", route.path),
        "x-luach-access": route.access.label(),
        "parameters": parameters,
        "responses": responses,
        "security": match route.access {
            Access::Public => json!([]),
            Access::Device => json!([{"device": []}]),
            _ => json!([{"bearer": []}]),
        },
    });
    if matches!(method, "POST" | "PUT" | "PATCH") {
        op["requestBody"] = json!({
            "required": false,
            "content": {"application/json": {"schema": {"type": "object"}}}
        });
    }
    op
}

/// The document for `routes` (paths relative to `/api/v1`) plus the operational endpoints.
pub fn document(routes: &[RouteSpec]) -> Value {
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for route in routes {
        paths
            .entry(format!("/api/v1{}", route.path))
            .or_default()
            .insert(route.method.as_str().to_lowercase(), operation(route));
    }
    for (path, description) in [
        ("/healthz", "the process is up"),
        ("/readyz", "store and broker answer"),
        ("/metrics", "Prometheus text format"),
    ] {
        let mut ops = Map::new();
        ops.insert(
            "get".into(),
            json!({"operationId": format!("get{}", path.replace('/', "_")), "summary": description,
                   "security": [], "responses": {"200": {"description": description}, "503": {"description": "not ready"}}}),
        );
        paths.insert(path.into(), ops);
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Luach API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Fleet manager for synagogue display screens. Field-level documentation: docs/api.md."},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                "description": "An access token (JWT) from /api/v1/auth/login, or a personal access token (lp_…)"},
                "device": {"type": "apiKey", "in": "header", "name": "x-luach-device-token",
                "description": "A screen's device token, from its last bundle notice over MQTT"}},
            "schemas": {
                "Data": {"type": "object", "required": ["data"], "properties": {"data": {}}},
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                    "type": "object", "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                                   "fields": {"type": "array", "items": {"type": "object",
                                       "properties": {"path": {"type": "string"}, "message": {"type": "string"}}}}}}}}
            },
            "responses": {"Error": {"description": "error envelope",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}
        }
    })
}

/// `GET /api/v1/openapi.json`.
pub async fn serve() -> axum::Json<Value> {
    axum::Json(document(&super::route_table()))
}
