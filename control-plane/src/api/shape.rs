//! Request bodies must have the JSON shape their schema names before serde reads them.
//!
//! serde's derived `Deserialize` also builds a struct from a JSON *array* of its fields in
//! order, so `[null, null]` would pass as a body whose fields are all optional, anywhere in a
//! document. The API promises (and documents in OpenAPI) that every object is an object. So a
//! body is first read as JSON, its JSON types are checked against the same `schemars` schema the
//! OpenAPI document shows (objects, arrays, strings, numbers, integers, booleans, null, through
//! `$ref`, `anyOf`/`oneOf`/`allOf`, `properties`, `additionalProperties` and `items`), and only
//! then does serde read it; serde still checks everything else (required fields, unknown
//! fields, enums, identifiers, ranges).

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use schemars::JsonSchema;
use serde_json::Value;

use crate::error::FieldError;

/// Each body type's schema, generated once.
static SCHEMAS: LazyLock<Mutex<HashMap<TypeId, Arc<Value>>>> = LazyLock::new(Mutex::default);

/// The schema `T` is read with (its definitions under `$defs`).
pub fn schema_of<T: JsonSchema + 'static>() -> Arc<Value> {
    let mut cache = SCHEMAS.lock().unwrap_or_else(|p| p.into_inner());
    Arc::clone(cache.entry(TypeId::of::<T>()).or_insert_with(|| {
        let generator = schemars::generate::SchemaSettings::draft2020_12()
            .for_deserialize()
            .into_generator();
        Arc::new(generator.into_root_schema_for::<T>().to_value())
    }))
}

/// Checks `value`'s JSON types against `schema`; the error names the first path that differs.
pub fn check(value: &Value, schema: &Value) -> Result<(), FieldError> {
    check_at(value, schema, schema, &mut String::new(), 0)
}

/// Deeper schemas than this are not followed (the API's types nest far less).
const MAX_DEPTH: usize = 64;

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn has_type(value: &Value, ty: &str) -> bool {
    match ty {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "integer" => value.as_f64().is_some_and(|f| f.fract() == 0.0),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => true,
    }
}

/// One error for a value no alternative accepts: the types they expect at this path together,
/// or else the error found deepest inside the value.
fn merged(errors: Vec<FieldError>, path: &str, value: &Value) -> FieldError {
    let expected: Option<Vec<&str>> = errors
        .iter()
        .map(|e| {
            (e.path == path)
                .then(|| e.message.strip_prefix("expected ")?.split(", found ").next())
                .flatten()
        })
        .collect();
    if let Some(expected) = expected {
        let mut kinds: Vec<&str> = expected.iter().flat_map(|e| e.split(" or ")).collect();
        kinds.dedup();
        return FieldError::new(
            path.to_owned(),
            format!("expected {}, found {}", kinds.join(" or "), kind(value)),
        );
    }
    errors
        .into_iter()
        .max_by_key(|e| e.path.len())
        .unwrap_or_else(|| FieldError::new(path.to_owned(), "no alternative matches".to_owned()))
}

/// Follows a local `$ref` (`#/$defs/Name`).
fn resolve<'a>(schema: &'a Value, root: &'a Value) -> &'a Value {
    let mut current = schema;
    for _ in 0..MAX_DEPTH {
        let Some(reference) = current.get("$ref").and_then(Value::as_str) else {
            return current;
        };
        match reference.strip_prefix('#').and_then(|pointer| root.pointer(pointer)) {
            Some(target) => current = target,
            None => return current,
        }
    }
    current
}

fn check_at(value: &Value, schema: &Value, root: &Value, path: &mut String, depth: usize) -> Result<(), FieldError> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    let schema = resolve(schema, root);
    let fail = |path: &str, message: String| Err(FieldError::new(path.to_owned(), message));
    match schema {
        Value::Bool(false) => return fail(path, "no value is allowed here".into()),
        Value::Object(_) => {}
        _ => return Ok(()),
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(alternatives) = schema.get(key).and_then(Value::as_array) {
            let mut errors = Vec::new();
            for alternative in alternatives {
                let mut inner = path.clone();
                match check_at(value, alternative, root, &mut inner, depth + 1) {
                    Ok(()) => {
                        errors.clear();
                        break;
                    }
                    Err(e) => errors.push(e),
                }
            }
            if !errors.is_empty() {
                return Err(merged(errors, path, value));
            }
        }
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for part in all {
            check_at(value, part, root, path, depth + 1)?;
        }
    }
    if let Some(ty) = schema.get("type") {
        let types: Vec<&str> = match ty {
            Value::String(t) => vec![t.as_str()],
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !types.is_empty() && !types.iter().any(|t| has_type(value, t)) {
            return fail(path, format!("expected {}, found {}", types.join(" or "), kind(value)));
        }
    }
    match value {
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (key, field) in map {
                let Some(field_schema) = properties.and_then(|p| p.get(key)).or(additional) else {
                    continue;
                };
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                let result = check_at(field, field_schema, root, path, depth + 1);
                path.truncate(len);
                result?;
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items").filter(|i| i.is_object() || i.is_boolean()) {
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    let result = check_at(item, item_schema, root, path, depth + 1);
                    path.truncate(len);
                    result?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[derive(serde::Deserialize, schemars::JsonSchema)]
    #[allow(dead_code)]
    struct Inner {
        a: Option<u32>,
        b: Option<String>,
    }

    #[derive(serde::Deserialize, schemars::JsonSchema)]
    #[allow(dead_code)]
    struct Body {
        name: Option<String>,
        inner: Option<Inner>,
        list: Option<Vec<Inner>>,
    }

    fn checked(value: Value) -> Result<(), String> {
        check(&value, &schema_of::<Body>()).map_err(|e| format!("{}: {}", e.path, e.message))
    }

    #[test]
    fn arrays_never_stand_in_for_objects() {
        assert_eq!(checked(json!({})), Ok(()));
        assert_eq!(
            checked(json!({"name": "x", "inner": {"a": 1}, "list": [{"b": "y"}]})),
            Ok(())
        );
        assert_eq!(checked(json!({"inner": null})), Ok(()));
        assert_eq!(
            checked(json!([null, null, null])),
            Err(": expected object, found an array".into())
        );
        assert_eq!(
            checked(json!({"inner": [1, "y"]})),
            Err("inner: expected object or null, found an array".into())
        );
        assert_eq!(
            checked(json!({"list": [{"a": 1}, [2, "z"]]})),
            Err("list[1]: expected object, found an array".into())
        );
        assert_eq!(
            checked(json!({"inner": {"a": 1.5}})),
            Err("inner.a: expected integer or null, found a number".into())
        );
    }
}
