//! The OpenAPI 3.1 document (`GET /api/v1/openapi.json`), generated from the route table: every
//! route the server has, with its path and query parameters, its request body and answers as
//! JSON Schemas generated from the handler's own types ([`super::describe`]), its security
//! requirement and its access rule (`x-luach-access`). The error envelope, with every code,
//! comes from [`ErrorCode`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value, json};

use super::describe::{Generators, Operation};
use super::routes::{Access, RouteSpec};
use crate::error::ErrorCode;

/// Error answers by status, each naming its codes.
fn error_answers() -> BTreeMap<u16, String> {
    let mut by_status: BTreeMap<u16, Vec<&str>> = BTreeMap::new();
    for code in ErrorCode::ALL {
        by_status.entry(code.status().as_u16()).or_default().push(code.as_str());
    }
    by_status
        .into_iter()
        .map(|(status, codes)| {
            let list: Vec<String> = codes.iter().map(|c| format!("`{c}`")).collect();
            (status, format!("error envelope: {}", list.join(", ")))
        })
        .collect()
}

fn operation(route: &RouteSpec, op: &Operation, errors: &BTreeMap<u16, String>) -> Value {
    let method = route.method.as_str();
    let mut parameters: Vec<Value> = route
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    for q in &op.query {
        parameters.push(json!({"name": q.name, "in": "query", "required": q.required, "schema": q.schema}));
    }
    let mut responses = Map::new();
    // A handler with two outcomes of one status (pending or issued) documents both bodies.
    let mut by_status: BTreeMap<u16, Vec<&super::describe::Answer>> = BTreeMap::new();
    for answer in &op.answers {
        by_status.entry(answer.status).or_default().push(answer);
    }
    for (status, answers) in by_status {
        let mut descriptions: Vec<&str> = answers.iter().map(|a| a.description.as_str()).collect();
        descriptions.dedup();
        let mut r = json!({"description": descriptions.join("; or ")});
        let bodies: Vec<&Value> = answers.iter().filter_map(|a| a.body.as_ref()).collect();
        let media = answers
            .iter()
            .find(|a| a.body.is_some())
            .map_or("application/json", |a| a.media);
        let schema = match bodies.as_slice() {
            [] => None,
            [one] => Some((*one).clone()),
            many => Some(json!({"oneOf": many})),
        };
        if let Some(schema) = schema {
            let mut content = Map::new();
            content.insert(media.to_owned(), json!({ "schema": schema }));
            r["content"] = Value::Object(content);
        }
        let headers: Map<String, Value> = answers
            .iter()
            .flat_map(|a| a.headers.iter())
            .map(|(name, description)| {
                (
                    (*name).to_owned(),
                    json!({"description": description, "schema": {"type": "string"}}),
                )
            })
            .collect();
        if !headers.is_empty() {
            r["headers"] = Value::Object(headers);
        }
        responses.insert(status.to_string(), r);
    }
    for (status, description) in errors {
        responses.insert(
            status.to_string(),
            json!({"description": description,
                   "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
        );
    }
    let mut out = json!({
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
    if let Some(body) = &op.body {
        let media = op.body_media.unwrap_or("application/json");
        out["requestBody"] = json!({"required": true, "content": {media: {"schema": body}}});
    } else if let Some(body) = &op.optional_body {
        out["requestBody"] = json!({"required": false, "content": {"application/json": {"schema": body}}});
    }
    out
}

/// Points every `$ref` to `#/components/schemas/{old}` at the renamed schema.
/// Whether `value` has a `$ref` to one of the schemas `renames` names.
fn refers_to(value: &Value, renames: &HashMap<String, String>) -> bool {
    match value {
        Value::Object(map) => map.iter().any(|(key, v)| {
            if key == "$ref" {
                v.as_str()
                    .and_then(|r| r.strip_prefix("#/components/schemas/"))
                    .is_some_and(|name| renames.contains_key(name))
            } else {
                refers_to(v, renames)
            }
        }),
        Value::Array(items) => items.iter().any(|v| refers_to(v, renames)),
        _ => false,
    }
}

fn rename_refs(value: &mut Value, renames: &HashMap<String, String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if key == "$ref"
                    && let Some(name) = v.as_str().and_then(|r| r.strip_prefix("#/components/schemas/"))
                    && let Some(new) = renames.get(name)
                {
                    *v = Value::String(format!("#/components/schemas/{new}"));
                } else {
                    rename_refs(v, renames);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rename_refs(v, renames)),
        _ => {}
    }
}

/// The document for `routes` (paths relative to `/api/v1`) plus the operational endpoints.
pub fn document(routes: &[RouteSpec]) -> Value {
    let mut generators = Generators::new();
    let mut described: Vec<(&RouteSpec, Operation)> =
        routes.iter().map(|r| (r, (r.describe)(&mut generators))).collect();
    // A type read and written differently (defaults, skipped fields) gets two schemas: the
    // written one is named `{Name}Out`.
    let input = generators.input.take_definitions(true);
    let mut output = generators.output.take_definitions(true);
    let mut renames: HashMap<String, String> = output
        .iter()
        .filter(|(name, schema)| input.get(*name).is_some_and(|i| i != *schema))
        .map(|(name, _)| (name.clone(), format!("{name}Out")))
        .collect();
    // A written schema that looks like its read twin but refers to a renamed one is written
    // differently too (its refs will point at the `Out` schemas): rename it as well, until no
    // more change, so a request body never reaches a written schema.
    loop {
        let more: Vec<String> = output
            .iter()
            .filter(|(name, schema)| {
                !renames.contains_key(*name) && input.contains_key(*name) && refers_to(schema, &renames)
            })
            .map(|(name, _)| name.clone())
            .collect();
        if more.is_empty() {
            break;
        }
        for name in more {
            renames.insert(name.clone(), format!("{name}Out"));
        }
    }
    for schema in output.values_mut() {
        rename_refs(schema, &renames);
    }
    for (_, op) in &mut described {
        for answer in &mut op.answers {
            if let Some(body) = &mut answer.body {
                rename_refs(body, &renames);
            }
        }
    }
    let mut schemas: BTreeMap<String, Value> = input.into_iter().collect();
    for (name, schema) in output {
        let name = renames.get(&name).cloned().unwrap_or(name);
        schemas.insert(name, schema);
    }
    let codes: BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    schemas.insert(
        "Error".into(),
        json!({"type": "object", "required": ["error"], "properties": {"error": {
            "type": "object", "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "enum": codes},
                "message": {"type": "string"},
                "fields": {"type": "array", "items": {"type": "object", "required": ["path", "message"],
                    "properties": {"path": {"type": "string"}, "message": {"type": "string"}}}}}}}}),
    );

    let errors = error_answers();
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for (route, op) in &described {
        paths
            .entry(format!("/api/v1{}", route.path))
            .or_default()
            .insert(route.method.as_str().to_lowercase(), operation(route, op, &errors));
    }
    for (path, description, content) in [
        (
            "/healthz",
            "the process is up: `{\"status\": \"ok\"}`",
            "application/json",
        ),
        (
            "/readyz",
            "store and broker answer: `{ready, checks: {store, broker}, store_backend}`; a failing check names itself in plain words",
            "application/json",
        ),
        ("/metrics", "Prometheus text format", "text/plain"),
    ] {
        let mut ops = Map::new();
        ops.insert(
            "get".into(),
            json!({"operationId": format!("get{}", path.replace('/', "_")), "summary": description,
                   "security": [],
                   "responses": {
                       "200": {"description": description, "content": {content: {"schema": {}}}},
                       "503": {"description": "not ready", "content": {content: {"schema": {}}}}}}),
        );
        paths.insert(path.into(), ops);
    }
    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {"title": "Luach API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Fleet manager for synagogue display screens. Guide: docs/api.md."},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                "description": "An access token (JWT) from /api/v1/auth/login, or a personal access token (lp_…)"},
                "device": {"type": "apiKey", "in": "header", "name": "x-luach-device-token",
                "description": "A screen's device token, from its last bundle notice over MQTT"}},
            "schemas": schemas,
        }
    })
}

/// `GET /api/v1/openapi.json`.
pub async fn serve() -> axum::Json<Value> {
    axum::Json(document(&super::route_table()))
}
