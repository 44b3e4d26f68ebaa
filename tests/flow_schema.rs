//! flows/schema.json must describe the same format as the Rust model:
//! the same keys for every section, the shipped flows valid against it,
//! and structurally broken flows invalid.
//!
//! The validator here covers the JSON Schema keywords the schema uses,
//! except `pattern` (no regex engine in the dependencies): `$ref`, `type`,
//! `properties`, `additionalProperties`, `required`, `items`, `enum`,
//! `const`, `oneOf`, `minItems`, `minProperties`, `minimum`, `maximum`,
//! `minLength`, `propertyNames`.

use std::collections::BTreeSet;
use std::fs;

use serde::de::DeserializeOwned;
use serde_json::Value;
use switchboard::flow::model;

fn schema() -> Value {
    serde_json::from_str(&fs::read_to_string("flows/schema.json").unwrap())
        .expect("schema.json is JSON")
}

fn yaml_as_json(path: &str) -> Value {
    let yaml: serde_yaml::Value = serde_yaml::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    serde_json::to_value(yaml).unwrap()
}

/// Errors of `value` against `schema` (empty: valid), with JSON paths.
fn validate(root: &Value, schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference
            .strip_prefix("#/definitions/")
            .expect("local $ref");
        let target = &root["definitions"][name];
        assert!(!target.is_null(), "dangling $ref {reference}");
        validate(root, target, value, path, errors);
    }
    if let Some(kind) = schema.get("type").and_then(Value::as_str) {
        let ok = match kind {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            other => panic!("type {other} not supported"),
        };
        if !ok {
            errors.push(format!("{path}: not {kind}"));
            return;
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        if !options.contains(value) {
            errors.push(format!("{path}: {value} not in enum"));
        }
    }
    if let Some(constant) = schema.get("const") {
        if constant != value {
            errors.push(format!("{path}: not {constant}"));
        }
    }
    if let Some(branches) = schema.get("oneOf").and_then(Value::as_array) {
        let matching = branches
            .iter()
            .filter(|b| {
                let mut e = Vec::new();
                validate(root, b, value, path, &mut e);
                e.is_empty()
            })
            .count();
        if matching != 1 {
            errors.push(format!("{path}: matches {matching} of oneOf"));
        }
    }
    if let Some(s) = value.as_str() {
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
            if (s.chars().count() as u64) < min {
                errors.push(format!("{path}: shorter than {min}"));
            }
        }
    }
    if let Some(n) = value.as_f64() {
        if schema
            .get("minimum")
            .and_then(Value::as_f64)
            .is_some_and(|m| n < m)
        {
            errors.push(format!("{path}: below minimum"));
        }
        if schema
            .get("maximum")
            .and_then(Value::as_f64)
            .is_some_and(|m| n > m)
        {
            errors.push(format!("{path}: above maximum"));
        }
    }
    if let Some(items) = value.as_array() {
        if schema
            .get("minItems")
            .and_then(Value::as_u64)
            .is_some_and(|m| (items.len() as u64) < m)
        {
            errors.push(format!("{path}: too few items"));
        }
        if let Some(item_schema) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                validate(root, item_schema, item, &format!("{path}[{i}]"), errors);
            }
        }
    }
    if let Some(object) = value.as_object() {
        if schema
            .get("minProperties")
            .and_then(Value::as_u64)
            .is_some_and(|m| (object.len() as u64) < m)
        {
            errors.push(format!("{path}: too few properties"));
        }
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for key in required.iter().filter_map(Value::as_str) {
                if !object.contains_key(key) {
                    errors.push(format!("{path}: missing {key}"));
                }
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        for (key, child) in object {
            let child_path = format!("{path}.{key}");
            if let Some(names) = schema.get("propertyNames") {
                validate(
                    root,
                    names,
                    &Value::String(key.clone()),
                    &format!("{child_path} (key)"),
                    errors,
                );
            }
            match (
                properties.and_then(|p| p.get(key)),
                schema.get("additionalProperties"),
            ) {
                (Some(property), _) => validate(root, property, child, &child_path, errors),
                (None, Some(Value::Bool(false))) => {
                    errors.push(format!("{child_path}: not allowed"))
                }
                (None, Some(additional)) if additional.is_object() => {
                    validate(root, additional, child, &child_path, errors)
                }
                _ => {}
            }
        }
    }
}

fn errors_of(path: &str) -> Vec<String> {
    let root = schema();
    let mut errors = Vec::new();
    validate(&root, &root, &yaml_as_json(path), "$", &mut errors);
    errors
}

#[test]
fn shipped_flows_are_valid_against_the_schema() {
    for path in [
        "flows/support.yaml",
        "flows/examples/helpdesk.yaml",
        "tests/flows/routing.yaml",
    ] {
        let errors = errors_of(path);
        assert!(errors.is_empty(), "{path}: {errors:#?}");
    }
}

#[test]
fn structurally_broken_flows_are_invalid_against_the_schema() {
    for (file, error) in [
        (
            "unknown-key",
            "$.nodes.main.intents[0].exmaples: not allowed",
        ),
        ("unknown-key-top-level", "$.greting: not allowed"),
        ("missing-key", "$.nodes.main.intents[0]: missing then"),
        (
            "unknown-step",
            "$.nodes.main.intents[0].then[0]: matches 0 of oneOf",
        ),
        (
            "unknown-strategy",
            "$.groups.desk.strategy: \"round-robin\" not in enum",
        ),
        ("wrong-type", "$.nodes.main.no_input.limit: not integer"),
        (
            "bad-dtmf-key",
            "$.nodes.main.keys.10 (key): \"10\" not in enum",
        ),
        (
            "intent-without-examples",
            "$.nodes.main.intents[0].examples: too few items",
        ),
        (
            "reprompt-limit-zero",
            "$.nodes.main.no_match.limit: below minimum",
        ),
        (
            "capacity-zero",
            "$.destinations.operator.capacity: below minimum",
        ),
        (
            "two-addresses",
            "$.destinations.operator: matches 2 of oneOf",
        ),
        ("empty-greeting", "$.greeting: shorter than 1"),
    ] {
        let errors = errors_of(&format!("tests/flows/broken/{file}.yaml"));
        assert!(
            errors.iter().any(|e| e == error),
            "{file}: want {error:?} in {errors:#?}"
        );
    }
}

/// The keys serde accepts for `T`, read from its unknown-field error.
fn serde_keys<T: DeserializeOwned>() -> BTreeSet<String> {
    let error = match serde_yaml::from_str::<T>("zz_not_a_key: 1") {
        Ok(_) => panic!("accepted an unknown key"),
        Err(e) => e.to_string(),
    };
    let expected = error
        .split("expected ")
        .nth(1)
        .unwrap_or_else(|| panic!("{error}"));
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

fn schema_keys(schema: &Value, definition: Option<&str>) -> BTreeSet<String> {
    let section = match definition {
        Some(name) => &schema["definitions"][name],
        None => schema,
    };
    section["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("{definition:?} has no properties"))
        .keys()
        .cloned()
        .collect()
}

#[test]
fn schema_keys_match_the_model() {
    let schema = schema();
    let pairs: Vec<(Option<&str>, BTreeSet<String>)> = vec![
        (None, serde_keys::<model::Flow>()),
        (Some("node"), serde_keys::<model::Node>()),
        (Some("intent"), serde_keys::<model::Intent>()),
        (Some("slot"), serde_keys::<model::Slot>()),
        (Some("reprompt"), serde_keys::<model::Reprompt>()),
        (Some("destination"), serde_keys::<model::Destination>()),
        (Some("skills"), serde_keys::<model::Skills>()),
        (Some("group"), serde_keys::<model::Group>()),
        (Some("schedule"), serde_keys::<model::Schedule>()),
        (Some("weekly"), serde_keys::<model::Weekly>()),
        (Some("trunk"), serde_keys::<model::Trunk>()),
        (Some("callers"), serde_keys::<model::Callers>()),
        (Some("region"), serde_keys::<model::Region>()),
        (Some("customers"), serde_keys::<model::CustomerSource>()),
        (Some("webhook"), serde_keys::<model::Webhook>()),
        (Some("routing"), serde_keys::<model::Routing>()),
        (
            Some("intentDetection"),
            serde_keys::<model::IntentDetection>(),
        ),
        (Some("llm"), serde_keys::<model::LlmSettings>()),
    ];
    for (definition, keys) in pairs {
        assert_eq!(schema_keys(&schema, definition), keys, "{definition:?}");
    }
    // Steps: one schema branch per step keyword (hangup is a bare word).
    let branches: BTreeSet<String> = schema["definitions"]["step"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| {
            let keys = b["properties"]
                .as_object()
                .into_iter()
                .flat_map(|p| p.keys().cloned());
            keys.chain(b["const"].as_str().map(String::from))
        })
        .collect();
    let keywords: BTreeSet<String> = ["say", "transfer", "goto", "collect", "hangup"]
        .map(String::from)
        .into();
    assert_eq!(branches, keywords);
}
