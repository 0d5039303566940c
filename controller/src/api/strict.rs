//! Strict decoding of our kinds: the one decoder the controller and
//! `render` share. Pure: text or JSON values in, typed objects or errors
//! naming each offending field out.
//!
//! Three checks, in order, each bounded:
//! 1. nesting depth ([`MAX_DEPTH`]), done without recursion, so a value
//!    nested thousands deep is refused before anything recurses into it;
//! 2. unknown fields, by walking the value beside the type's JSON schema
//!    (the full schema, embedded Kubernetes types included), with a
//!    suggestion when a known field is close (`timout` → `timeout`);
//! 3. types and required fields, by serde with the path of the failure.

use std::any::TypeId;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Deepest nesting of arrays and objects accepted in one object. Our own
/// kinds need about 20 levels (managedFields mirror them); serde_json
/// refuses 128, which would fail a whole list of objects.
pub const MAX_DEPTH: usize = 64;

/// At most this many unknown fields are reported for one object, so one
/// huge bad object cannot make a huge error message.
pub const MAX_REPORTED: usize = 20;

/// The meta-schema URL that marks the full schema, as opposed to the CRD's.
const FULL_SCHEMA_MARK: &str = "https://json-schema.org/draft/2020-12/schema";

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// Where, e.g. `spec.steps[0].timout`; empty for the object itself.
    pub path: String,
    /// What is wrong, e.g. `unknown field, did you mean timeout?`.
    pub message: String,
}

impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in one object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct StrictError(pub Vec<FieldProblem>);

impl fmt::Display for StrictError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl StrictError {
    fn one(path: impl Into<String>, message: impl Into<String>) -> Self {
        StrictError(vec![FieldProblem {
            path: path.into(),
            message: message.into(),
        }])
    }
}

/// Decodes JSON text strictly: depth first (on the text, before serde_json
/// builds anything), then as [`decode_value`].
pub fn decode_text<K: DeserializeOwned + JsonSchema + 'static>(text: &str) -> Result<K, StrictError> {
    if let Some(problem) = text_too_deep(text, MAX_DEPTH) {
        return Err(StrictError(vec![problem]));
    }
    let value: Value = serde_json::from_str(text).map_err(|error| StrictError::one("", error.to_string()))?;
    decode_value(value)
}

/// Decodes a JSON value strictly into `K`, with every unknown field (outside
/// `status`, which only controllers write) or the first type error.
pub fn decode_value<K: DeserializeOwned + JsonSchema + 'static>(value: Value) -> Result<K, StrictError> {
    if let Some(problem) = value_too_deep(&value, MAX_DEPTH) {
        return Err(StrictError(vec![problem]));
    }
    let schema = full_schema::<K>();
    let unknown = unknown_fields(&value, &schema);
    if !unknown.is_empty() {
        return Err(StrictError(unknown));
    }
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let message = error.inner().to_string();
        StrictError(vec![type_problem(&path, &message)])
    })
}

/// Separates the path from the message in an error of a type decoded by
/// hand from a value (see [`nested_error`]).
const NESTED_PATH_END: char = '\u{1f}';

/// The error text of a value decoded inside a hand-written `Deserialize`
/// (which serde cannot follow into): its own path travels in the text, and
/// [`type_problem`] appends it to the outer one.
pub(crate) fn nested_error(error: serde_path_to_error::Error<serde_json::Error>) -> String {
    nested_message(&error.path().to_string(), error.inner())
}

/// An error at `path` inside a value decoded by hand (see [`nested_error`]).
pub(crate) fn nested_message(path: &str, message: impl fmt::Display) -> String {
    format!("{path}{NESTED_PATH_END}{message}")
}

/// Puts a missing field into the path (`spec.steps[0].name: required`
/// reads better than `spec.steps[0]: missing field `name``).
fn type_problem(path: &str, message: &str) -> FieldProblem {
    if let Some((inner, message)) = message.split_once(NESTED_PATH_END) {
        let joined = match (path, inner) {
            (".", inner) => inner.to_string(),
            (outer, ".") => outer.to_string(),
            (outer, inner) if inner.starts_with('[') => format!("{outer}{inner}"),
            (outer, inner) => format!("{outer}.{inner}"),
        };
        return type_problem(&joined, message);
    }
    let path = if path == "." { "" } else { path };
    if let Some(rest) = message.strip_prefix("missing field `")
        && let Some(field) = rest.strip_suffix('`')
    {
        let full = if path.is_empty() {
            field.to_string()
        } else {
            format!("{path}.{field}")
        };
        return FieldProblem {
            path: full,
            message: "required field is missing".to_string(),
        };
    }
    FieldProblem {
        path: path.to_string(),
        message: message.to_string(),
    }
}

// ---------------------------------------------------------------- depth

/// One level of the path while scanning: a key of an object or an index of
/// an array.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn render_path(steps: &[Step]) -> String {
    let mut out = String::new();
    for step in steps {
        match step {
            Step::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Step::Index(index) => out.push_str(&format!("[{index}]")),
        }
    }
    out
}

/// The path shown for a too-deep value: its first levels, then `...`.
fn deep_path(steps: &[Step]) -> String {
    const SHOWN: usize = 8;
    let mut path = render_path(&steps[..steps.len().min(SHOWN)]);
    if steps.len() > SHOWN {
        path.push_str("...");
    }
    path
}

fn too_deep(steps: &[Step], limit: usize) -> FieldProblem {
    FieldProblem {
        path: deep_path(steps),
        message: format!("nested more than {limit} levels deep (the limit for any value)"),
    }
}

/// True for the server's field-ownership records, which mirror the object's
/// own shape: a too-deep value is reported where the user wrote it instead.
fn is_managed_fields(steps: &[Step]) -> bool {
    matches!(steps, [Step::Key(a), Step::Key(b), ..] if a == "metadata" && b == "managedFields")
}

/// The first value nested deeper than `limit` in a JSON value, found
/// without recursion.
pub fn value_too_deep(value: &Value, limit: usize) -> Option<FieldProblem> {
    let mut frames: Vec<Frame> = open(value).into_iter().collect();
    let mut path: Vec<Step> = Vec::new();
    let mut managed_fields_problem = None;
    while let Some(frame) = frames.last_mut() {
        let next = match frame {
            Frame::Object(entries) => entries.next().map(|(key, child)| (Step::Key(key.clone()), child)),
            Frame::Array(items) => items.next().map(|(index, child)| (Step::Index(index), child)),
        };
        let Some((step, child)) = next else {
            frames.pop();
            path.pop();
            continue;
        };
        if let Some(child_frame) = open(child) {
            path.push(step);
            if frames.len() >= limit {
                if !is_managed_fields(&path) {
                    return Some(too_deep(&path, limit));
                }
                managed_fields_problem.get_or_insert_with(|| too_deep(&path, limit));
                path.pop();
                continue;
            }
            frames.push(child_frame);
        }
    }
    managed_fields_problem
}

/// An open container while walking a value: what is left of its members.
enum Frame<'a> {
    Object(serde_json::map::Iter<'a>),
    Array(std::iter::Enumerate<std::slice::Iter<'a, Value>>),
}

fn open(value: &Value) -> Option<Frame<'_>> {
    match value {
        Value::Object(map) => Some(Frame::Object(map.iter())),
        Value::Array(items) => Some(Frame::Array(items.iter().enumerate())),
        _ => None,
    }
}

/// The first value nested deeper than `limit` in JSON text, found by a
/// scan without recursion (strings skipped, escapes honoured). Malformed
/// text is left to the JSON parser to report.
pub fn text_too_deep(text: &str, limit: usize) -> Option<FieldProblem> {
    let bytes = text.as_bytes();
    let mut path: Vec<Step> = Vec::new();
    // Per open container: is it an object, and is a key expected next.
    let mut containers: Vec<(bool, bool)> = Vec::new();
    // Levels beyond `limit` are counted, not recorded.
    let mut hidden = 0usize;
    let mut managed_fields_problem = None;
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'"' => {
                let end = string_end(bytes, at);
                if hidden == 0
                    && let Some((true, expect_key)) = containers.last_mut()
                    && *expect_key
                {
                    *expect_key = false;
                    let key = String::from_utf8_lossy(&bytes[at + 1..end.saturating_sub(1).max(at + 1)]);
                    if let Some(Step::Key(last)) = path.last_mut() {
                        *last = key.into_owned();
                    }
                }
                at = end;
                continue;
            }
            opening @ (b'{' | b'[') => {
                if hidden > 0 || containers.len() >= limit {
                    if hidden == 0 {
                        if !is_managed_fields(&path) {
                            return Some(too_deep(&path, limit));
                        }
                        managed_fields_problem.get_or_insert_with(|| too_deep(&path, limit));
                    }
                    hidden += 1;
                } else {
                    let is_object = opening == b'{';
                    containers.push((is_object, is_object));
                    path.push(if is_object {
                        Step::Key(String::new())
                    } else {
                        Step::Index(0)
                    });
                }
            }
            b'}' | b']' => {
                if hidden > 0 {
                    hidden -= 1;
                } else {
                    containers.pop();
                    path.pop();
                }
            }
            b',' if hidden == 0 => match (containers.last_mut(), path.last_mut()) {
                (Some((true, expect_key)), _) => *expect_key = true,
                (Some((false, _)), Some(Step::Index(index))) => *index += 1,
                _ => {}
            },
            _ => {}
        }
        at += 1;
    }
    managed_fields_problem
}

/// Splits JSON text holding an object or an array into its top-level parts,
/// without recursion and without parsing the parts: for an object, each
/// key (as written) and the text of its value; for an array, an empty key
/// and the text of each item. None if the text is not an object or array
/// (or is cut short); the parts themselves are left for a parser to check.
pub fn split_top_level(text: &str) -> Option<Vec<(&str, &str)>> {
    let bytes = text.as_bytes();
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace())?;
    let is_object = match bytes[start] {
        b'{' => true,
        b'[' => false,
        _ => return None,
    };
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut part_start = start + 1;
    let mut key: &str = "";
    let mut expect_key = is_object;
    let mut at = start;
    while at < bytes.len() {
        match bytes[at] {
            b'"' => {
                let end = string_end(bytes, at);
                if depth == 1 && expect_key {
                    key = text.get(at + 1..end.saturating_sub(1)).unwrap_or_default();
                    expect_key = false;
                }
                at = end;
                continue;
            }
            b':' if depth == 1 && is_object => part_start = at + 1,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    let part = text[part_start..at].trim();
                    if !part.is_empty() {
                        parts.push((key, part));
                    }
                    return Some(parts);
                }
            }
            b',' if depth == 1 => {
                parts.push((key, text[part_start..at].trim()));
                part_start = at + 1;
                expect_key = is_object;
            }
            _ => {}
        }
        at += 1;
    }
    None
}

/// The index just past the string starting at `start` (a `"`).
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut at = start + 1;
    while at < bytes.len() {
        match bytes[at] {
            b'\\' => at += 2,
            b'"' => return at + 1,
            _ => at += 1,
        }
    }
    bytes.len()
}

// ---------------------------------------------------------------- schema

/// The full JSON schema of `K` (embedded Kubernetes types included, unlike
/// the CRD's), generated once per type.
fn full_schema<K: JsonSchema + 'static>() -> Arc<Value> {
    static CACHE: OnceLock<Mutex<HashMap<TypeId, Arc<Value>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(schema) = cache.lock().ok().and_then(|map| map.get(&TypeId::of::<K>()).cloned()) {
        return schema;
    }
    let mut generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    // kube's derived schema of a kind leaves out the fields every object has.
    let metadata = generator
        .subschema_for::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>()
        .to_value();
    let mut schema = generator.into_root_schema_for::<K>().to_value();
    if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut)
        && properties.contains_key("spec")
    {
        let text = serde_json::json!({ "type": "string" });
        properties.entry("apiVersion").or_insert_with(|| text.clone());
        properties.entry("kind").or_insert(text);
        properties.entry("metadata").or_insert(metadata);
    }
    let schema = Arc::new(schema);
    if let Ok(mut map) = cache.lock() {
        map.insert(TypeId::of::<K>(), schema.clone());
    }
    schema
}

/// Schema for an embedded type: `T`'s own schema when the full schema is
/// generated (for strict decoding), an open object in the CRD, whose size
/// is limited (see `common::any_object`).
pub fn embedded<T: JsonSchema>(generator: &mut schemars::SchemaGenerator, crd_form: Value) -> schemars::Schema {
    if generator.settings().meta_schema.as_deref() == Some(FULL_SCHEMA_MARK) {
        generator.subschema_for::<T>()
    } else {
        schemars::Schema::try_from(crd_form).unwrap_or_default()
    }
}

/// What the schema says about the members of an object.
#[derive(Default)]
struct ObjectRules<'s> {
    /// Named properties and their schemas.
    properties: Vec<(&'s str, &'s Value)>,
    /// The schema of any other key (a map), if any.
    additional: Option<&'s Value>,
    /// Any key is fine (free-form object, or no object rules at all).
    open: bool,
}

/// The alternatives a schema stands for: `$ref`s followed, `anyOf`, `oneOf`
/// and `allOf` expanded, at most `MAX_ALTERNATIVES` and `MAX_HOPS` deep.
fn alternatives<'s>(schema: &'s Value, root: &'s Value) -> Vec<&'s Value> {
    const MAX_HOPS: usize = 16;
    const MAX_ALTERNATIVES: usize = 32;
    let mut out = Vec::new();
    let mut pending = vec![(schema, 0usize)];
    while let Some((schema, hops)) = pending.pop() {
        if hops > MAX_HOPS || out.len() >= MAX_ALTERNATIVES {
            continue;
        }
        if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
            if let Some(resolved) = target.strip_prefix('#').and_then(|pointer| root.pointer(pointer)) {
                pending.push((resolved, hops + 1));
            }
            continue;
        }
        let mut combined = false;
        for key in ["anyOf", "oneOf", "allOf"] {
            if let Some(items) = schema.get(key).and_then(Value::as_array) {
                combined = true;
                pending.extend(items.iter().map(|item| (item, hops + 1)));
            }
        }
        if !combined || schema.get("properties").is_some() {
            out.push(schema);
        }
    }
    out
}

fn object_rules<'s>(schema: &'s Value, root: &'s Value) -> ObjectRules<'s> {
    let mut rules = ObjectRules::default();
    let alternatives = alternatives(schema, root);
    if !alternatives.iter().any(|a| allows(a, "object")) {
        // Not an object schema at all: serde reports the type error.
        rules.open = true;
    }
    for alternative in alternatives.into_iter().filter(|a| allows(a, "object")) {
        let Some(fields) = alternative.as_object() else {
            rules.open = true; // `true` schema
            continue;
        };
        let properties = fields.get("properties").and_then(Value::as_object);
        let additional = fields.get("additionalProperties");
        if let Some(properties) = properties {
            rules
                .properties
                .extend(properties.iter().map(|(name, schema)| (name.as_str(), schema)));
        }
        match additional {
            Some(Value::Bool(false)) => {}
            Some(Value::Bool(true)) => rules.open = true,
            Some(schema) => rules.additional = rules.additional.or(Some(schema)),
            None if properties.is_none() => {
                // No rules for members: a free-form object, or not an object
                // schema at all (serde then reports a type error).
                rules.open = true;
            }
            None => {}
        }
    }
    rules
}

/// True when a schema admits values of JSON type `kind` (no `type` admits any).
fn allows(schema: &Value, kind: &str) -> bool {
    match schema.get("type") {
        None => true,
        Some(Value::String(one)) => one == kind,
        Some(Value::Array(many)) => many.iter().any(|t| t == kind),
        Some(_) => true,
    }
}

fn items_schema<'s>(schema: &'s Value, root: &'s Value) -> Option<&'s Value> {
    alternatives(schema, root)
        .into_iter()
        .filter(|a| allows(a, "array"))
        .find_map(|alternative| alternative.get("items").filter(|items| items.is_object()))
}

/// The fields of `value` that `K`'s schema does not know (at most
/// [`MAX_REPORTED`]), without decoding it: for `convert`, which reports
/// them as losses rather than failing.
pub fn unknown_fields_of<K: JsonSchema + 'static>(value: &Value) -> Vec<FieldProblem> {
    if let Some(problem) = value_too_deep(value, MAX_DEPTH) {
        return vec![problem];
    }
    unknown_fields(value, &full_schema::<K>())
}

/// Renames every key that `K`'s schema does not know but that matches one
/// of its fields regardless of case (`mountpath` → `mountPath`), as Go's
/// JSON decoding, and so Tekton, reads them. Returns how many it renamed.
/// For `convert` only: our own kinds are decoded by exact name.
pub fn match_field_case<K: JsonSchema + 'static>(value: &mut Value) -> usize {
    let schema = full_schema::<K>();
    let mut renamed = 0;
    fix_case(value, &schema, &schema, 0, &mut renamed);
    renamed
}

/// One level of [`match_field_case`]; bounded by `MAX_DEPTH`.
fn fix_case(value: &mut Value, schema: &Value, root: &Value, depth: usize, renamed: &mut usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match value {
        Value::Object(members) => {
            let rules = object_rules(schema, root);
            let keys: Vec<String> = members.keys().cloned().collect();
            for key in keys {
                let mut name = key.clone();
                let known = |name: &str| rules.properties.iter().find(|(n, _)| *n == name).map(|(_, s)| *s);
                if known(&key).is_none()
                    && let Some((field, _)) = rules
                        .properties
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case(&key) && !members.contains_key(*n))
                    && let Some(child) = members.remove(&key)
                {
                    name = field.to_string();
                    members.insert(name.clone(), child);
                    *renamed += 1;
                }
                let child_schema = known(&name).or(rules.additional);
                if let (Some(child_schema), Some(child)) = (child_schema, members.get_mut(&name)) {
                    fix_case(child, child_schema, root, depth + 1, renamed);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = items_schema(schema, root) {
                for item in items {
                    fix_case(item, item_schema, root, depth + 1, renamed);
                }
            }
        }
        _ => {}
    }
}

/// Every key of `value` (outside `status`) its schema does not know.
fn unknown_fields(value: &Value, root: &Value) -> Vec<FieldProblem> {
    let mut problems = Vec::new();
    let mut path = Vec::new();
    walk(value, root, root, &mut path, &mut problems);
    problems
}

/// Checks one value against its schema. Recursion is bounded: the value
/// was checked to be at most `MAX_DEPTH` deep, and each call goes one level
/// down in the value.
fn walk(value: &Value, schema: &Value, root: &Value, path: &mut Vec<Step>, problems: &mut Vec<FieldProblem>) {
    if problems.len() >= MAX_REPORTED || path.len() > MAX_DEPTH {
        return;
    }
    match value {
        Value::Object(members) => {
            let rules = object_rules(schema, root);
            for (key, child) in members {
                if path.is_empty() && key == "status" {
                    continue;
                }
                let known = rules.properties.iter().find(|(name, _)| name == key).map(|(_, s)| *s);
                let child_schema = match (known, rules.additional) {
                    (Some(schema), _) | (None, Some(schema)) => schema,
                    (None, None) if rules.open => continue,
                    (None, None) => {
                        path.push(Step::Key(key.clone()));
                        let names: Vec<&str> = rules.properties.iter().map(|(name, _)| *name).collect();
                        problems.push(FieldProblem {
                            path: render_path(path),
                            message: unknown_message(key, &names),
                        });
                        path.pop();
                        if problems.len() >= MAX_REPORTED {
                            return;
                        }
                        continue;
                    }
                };
                path.push(Step::Key(key.clone()));
                walk(child, child_schema, root, path, problems);
                path.pop();
            }
        }
        Value::Array(items) => {
            let Some(item_schema) = items_schema(schema, root) else {
                return;
            };
            for (index, item) in items.iter().enumerate() {
                path.push(Step::Index(index));
                walk(item, item_schema, root, path, problems);
                path.pop();
            }
        }
        _ => {}
    }
}

/// `unknown field`, with the closest known name when one is close enough
/// to be a likely misspelling.
pub fn unknown_message(key: &str, known: &[&str]) -> String {
    match closest(key, known) {
        Some(name) => format!("unknown field, did you mean {name}?"),
        None if known.is_empty() => "unknown field".to_string(),
        None => {
            let mut names: Vec<&str> = known.to_vec();
            names.sort_unstable();
            format!("unknown field (known: {})", names.join(", "))
        }
    }
}

/// The known name closest to `key`: equal ignoring case, one a prefix of the
/// other, or within an edit distance (swaps count as one edit) of about a
/// third of its length.
pub fn closest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    let lower = key.to_ascii_lowercase();
    if let Some(name) = known.iter().find(|name| name.to_ascii_lowercase() == lower) {
        return Some(name);
    }
    let allowed = (key.chars().count() / 3).max(1);
    let best = known
        .iter()
        .map(|name| (strsim::osa_distance(&lower, &name.to_ascii_lowercase()), *name))
        .min();
    if let Some((distance, name)) = best
        && distance <= allowed
    {
        return Some(name);
    }
    known
        .iter()
        .find(|name| key.len() >= 4 && (name.starts_with(key) || key.starts_with(*name)) && name.len() >= 4)
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nested(depth: usize) -> Value {
        let mut value = json!("x");
        for _ in 0..depth {
            value = json!([value]);
        }
        value
    }

    #[test]
    fn suggestions_for_misspellings() {
        assert_eq!(closest("timout", &["timeout", "name"]), Some("timeout"));
        assert_eq!(
            closest("serviceAccount", &["serviceAccountName", "timeout"]),
            Some("serviceAccountName")
        );
        assert_eq!(closest("Image", &["image"]), Some("image"));
        assert_eq!(closest("zzzzzz", &["image", "name"]), None);
    }

    #[test]
    fn depth_is_found_in_values_and_text_with_the_path() {
        let value = json!({"spec": {"params": [{"name": "p", "value": nested(100)}]}});
        let problem = value_too_deep(&value, MAX_DEPTH).expect("too deep");
        assert!(problem.path.starts_with("spec.params[0].value[0]"), "{problem}");
        let text = serde_json::to_string(&value).expect("json");
        let problem = text_too_deep(&text, MAX_DEPTH).expect("too deep");
        assert!(problem.path.starts_with("spec.params[0].value[0]"), "{problem}");
        assert!(value_too_deep(&json!({"a": nested(10)}), MAX_DEPTH).is_none());
        assert!(text_too_deep(r#"{"a": "[[[[{{{{", "b": [1, 2]}"#, 3).is_none());
    }

    #[test]
    fn json_text_splits_into_its_top_level_parts() {
        let parts = split_top_level(r#" {"items": [ {"a": "}"}, [1, [2]] ], "metadata": {"x": 1}, "k": "v,"} "#);
        assert_eq!(
            parts,
            Some(vec![
                ("items", r#"[ {"a": "}"}, [1, [2]] ]"#),
                ("metadata", r#"{"x": 1}"#),
                ("k", r#""v,""#)
            ])
        );
        let items = split_top_level(r#"[ {"a": "}"}, [1, [2]] ]"#);
        assert_eq!(items, Some(vec![("", r#"{"a": "}"}"#), ("", "[1, [2]]")]));
        assert_eq!(split_top_level("[]"), Some(vec![]));
        assert_eq!(split_top_level("[1, 2"), None);
        assert_eq!(split_top_level(&"[".repeat(100_000)), None);
    }

    #[test]
    fn the_text_scan_does_not_recurse() {
        let text = "[".repeat(1_000_000);
        assert!(text_too_deep(&text, MAX_DEPTH).is_some());
    }

    #[test]
    fn managed_fields_are_reported_only_when_nothing_else_is() {
        let text = serde_json::to_string(&json!({
            "metadata": {"managedFields": [{"fieldsV1": nested(80)}]},
            "spec": {"x": nested(80)}
        }))
        .expect("json");
        let problem = text_too_deep(&text, MAX_DEPTH).expect("too deep");
        assert!(problem.path.starts_with("spec.x"), "{problem}");
    }
}
