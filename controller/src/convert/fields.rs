//! Taking a Tekton mapping apart field by field, so that every field is
//! either carried over, renamed, or reported: none is dropped silently.

use serde_json::{Map, Value};

/// Something the conversion could not carry over exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loss {
    /// The source and document, e.g. `ci.yaml: Pipeline "build"`.
    pub document: String,
    /// The Tekton field, e.g. `spec.tasks[0].taskRef.resolver`.
    pub field: String,
    /// What happened to it and why.
    pub why: String,
}

impl std::fmt::Display for Loss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.document, self.field, self.why)
    }
}

/// The losses of one document.
#[derive(Debug, Default)]
pub struct Losses {
    /// Names the document in every loss.
    pub document: String,
    /// Everything reported so far, in the order found.
    pub items: Vec<Loss>,
}

impl Losses {
    pub fn push(&mut self, field: impl Into<String>, why: impl Into<String>) {
        self.items.push(Loss {
            document: self.document.clone(),
            field: field.into(),
            why: why.into(),
        });
    }
}

/// A mapping being converted: fields are taken out as they are handled;
/// whatever is left at the end is reported.
pub struct Fields {
    map: Map<String, Value>,
    /// Where the mapping is (`spec.steps[1]`), the prefix of its fields.
    pub at: String,
}

impl Fields {
    /// Takes a value that must be a mapping; anything else is reported and
    /// treated as empty.
    pub fn of(value: Value, at: &str, losses: &mut Losses) -> Fields {
        let map = match value {
            Value::Object(map) => map,
            Value::Null => Map::new(),
            other => {
                losses.push(at, format!("expected a mapping, found {}; dropped", kind_of(&other)));
                Map::new()
            }
        };
        Fields {
            map,
            at: at.to_string(),
        }
    }

    pub fn field(&self, key: &str) -> String {
        if self.at.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.at)
        }
    }

    /// The field `key`; Tekton decodes with Go's JSON, which matches field
    /// names regardless of case, so `TaskSpec` is `taskSpec` to it (and
    /// here) when no field of the exact name is there.
    pub fn take(&mut self, key: &str) -> Option<Value> {
        let exact = self.map.remove(key);
        let value = exact.or_else(|| {
            let same = self.map.keys().find(|k| k.eq_ignore_ascii_case(key)).cloned()?;
            self.map.remove(&same)
        });
        value.filter(|v| !v.is_null())
    }

    /// A string field; a non-string is reported and dropped.
    pub fn take_str(&mut self, key: &str, losses: &mut Losses) -> Option<String> {
        match self.take(key)? {
            Value::String(text) => Some(text),
            other => {
                losses.push(
                    self.field(key),
                    format!("expected a string, found {}; dropped", kind_of(&other)),
                );
                None
            }
        }
    }

    /// Moves `key` unchanged into `out`.
    pub fn copy(&mut self, key: &str, out: &mut Map<String, Value>) {
        self.copy_as(key, key, out);
    }

    /// Moves `from` into `out` under the name `to`.
    pub fn copy_as(&mut self, from: &str, to: &str, out: &mut Map<String, Value>) {
        if let Some(value) = self.take(from) {
            out.insert(to.to_string(), value);
        }
    }

    /// Reports a field this engine has no equivalent for, with the reason.
    pub fn unsupported(&mut self, key: &str, why: &str, losses: &mut Losses) {
        if self.take(key).is_some() {
            losses.push(self.field(key), why);
        }
    }

    /// The fields nobody took, for a mapping passed on whole.
    pub fn into_rest(self) -> Map<String, Value> {
        self.map
    }

    /// Reports every field nobody took.
    pub fn finish(self, losses: &mut Losses) {
        for key in self.map.keys() {
            if !self.map[key].is_null() {
                losses.push(self.field(key), "this field has no equivalent here; dropped");
            }
        }
    }
}

pub fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// The items of a list field, each with its position; a non-list is
/// reported and treated as empty.
pub fn items(value: Option<Value>, at: &str, losses: &mut Losses) -> Vec<(String, Value)> {
    match value {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(index, item)| (format!("{at}[{index}]"), item))
            .collect(),
        Some(other) => {
            losses.push(at, format!("expected a list, found {}; dropped", kind_of(&other)));
            Vec::new()
        }
    }
}

/// Converts every item of a list field with `each`, keeping the list only
/// when it has items.
pub fn convert_list(
    fields: &mut Fields,
    key: &str,
    out: &mut Map<String, Value>,
    losses: &mut Losses,
    each: impl Fn(Value, &str, &mut Losses) -> Value,
) {
    let at = fields.field(key);
    let converted: Vec<Value> = items(fields.take(key), &at, losses)
        .into_iter()
        .map(|(item_at, item)| each(item, &item_at, losses))
        .collect();
    if !converted.is_empty() {
        out.insert(key.to_string(), Value::Array(converted));
    }
}

/// Converts a mapping that only needs the listed fields copied.
pub fn copy_only(value: Value, at: &str, keys: &[&str], losses: &mut Losses) -> Value {
    let mut fields = Fields::of(value, at, losses);
    let mut out = Map::new();
    for key in keys {
        fields.copy(key, &mut out);
    }
    fields.finish(losses);
    Value::Object(out)
}
