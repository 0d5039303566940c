//! Replacing references in text, given something that can look them up.
//!
//! Substitution never leaves one of our `$(...)` references literal: a
//! reference that cannot be resolved becomes a [`FieldError`].

use super::errors::ValidationErrors;
use super::refs::scan;

/// What a reference stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Str(String),
    /// Only valid as a whole item of `command` or `args` (`$(params.x[*])`).
    Array(Vec<String>),
}

/// Looks up the expression inside `$(...)`. The error explains why it
/// cannot be resolved; the caller adds the field.
pub trait Resolver {
    fn lookup(&self, expr: &str) -> Result<Value, String>;
}

/// Replaces every reference in `text`. Problems go to `errors` under
/// `field`; the text is returned with those references left in place.
pub fn substitute_str(text: &str, resolver: &dyn Resolver, field: &str, errors: &mut ValidationErrors) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for found in scan(text) {
        out.push_str(&text[last..found.start]);
        match resolver.lookup(found.expr) {
            Ok(Value::Str(value)) => out.push_str(&value),
            Ok(Value::Array(_)) => {
                errors.push(
                    field,
                    format!(
                        "$({}) is an array and can only stand alone as one item of command or args",
                        found.expr
                    ),
                );
                out.push_str(&text[found.start..found.end]);
            }
            Err(why) => {
                errors.push(field, format!("$({}): {why}", found.expr));
                out.push_str(&text[found.start..found.end]);
            }
        }
        last = found.end;
    }
    out.push_str(&text[last..]);
    out
}

/// Substitutes a `command` or `args` list. An item that is exactly one
/// array reference expands into one item per element.
pub fn substitute_list(
    items: &[String],
    resolver: &dyn Resolver,
    field: &str,
    errors: &mut ValidationErrors,
) -> Vec<String> {
    let mut out = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let item_field = format!("{field}[{index}]");
        let found = scan(item);
        if let [only] = found.as_slice()
            && only.start == 0
            && only.end == item.len()
            && let Ok(Value::Array(elements)) = resolver.lookup(only.expr)
        {
            out.extend(elements);
            continue;
        }
        out.push(substitute_str(item, resolver, &item_field, errors));
    }
    out
}

/// Substitutes an optional string in place.
pub fn substitute_opt(text: &mut Option<String>, resolver: &dyn Resolver, field: &str, errors: &mut ValidationErrors) {
    if let Some(value) = text.as_mut() {
        *value = substitute_str(value, resolver, field, errors);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;
    impl Resolver for Fixed {
        fn lookup(&self, expr: &str) -> Result<Value, String> {
            match expr {
                "params.s" => Ok(Value::Str("S".into())),
                "params.a[*]" => Ok(Value::Array(vec!["x".into(), "y z".into()])),
                _ => Err("not known".into()),
            }
        }
    }

    #[test]
    fn replaces_strings_and_keeps_shell() {
        let mut errors = ValidationErrors::default();
        let out = substitute_str("a=$(params.s) b=$(echo hi)", &Fixed, "f", &mut errors);
        assert_eq!(out, "a=S b=$(echo hi)");
        assert!(errors.is_empty());
    }

    #[test]
    fn unknown_reference_is_an_error_naming_field_and_reference() {
        let mut errors = ValidationErrors::default();
        substitute_str("$(params.nope)", &Fixed, "spec.steps[0].script", &mut errors);
        assert_eq!(errors.to_string(), "spec.steps[0].script: $(params.nope): not known");
    }

    #[test]
    fn arrays_expand_only_as_whole_items() {
        let mut errors = ValidationErrors::default();
        let args = vec![
            "--x".to_string(),
            "$(params.a[*])".to_string(),
            "$(params.s)".to_string(),
        ];
        let out = substitute_list(&args, &Fixed, "args", &mut errors);
        assert_eq!(out, vec!["--x", "x", "y z", "S"]);
        assert!(errors.is_empty());

        substitute_list(&["pre-$(params.a[*])".to_string()], &Fixed, "args", &mut errors);
        assert_eq!(
            errors.to_string(),
            "args[0]: $(params.a[*]) is an array and can only stand alone as one item of command or args"
        );
    }
}
