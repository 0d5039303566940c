//! Replacing references in text, given something that can look them up.
//!
//! Substitution never leaves one of our `$(...)` references literal: a
//! reference that cannot be resolved becomes a [`FieldError`].

use super::errors::ValidationErrors;
use super::limits::Budget;
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

    /// The bounds on what substitution may produce (see `limits`); None
    /// where the inputs are bounded elsewhere.
    fn budget(&self) -> Option<&Budget> {
        None
    }
}

/// Appends `piece` to a field being built, unless that crosses the field's
/// limit or the run's total: then the error, and nothing is appended.
fn append(out: &mut String, piece: &str, budget: Option<&Budget>) -> Result<(), String> {
    if let Some(budget) = budget {
        let size = out.len().saturating_add(piece.len());
        if size > budget.max_field_bytes {
            return Err(budget.field_too_large(size));
        }
        budget.take(piece.len())?;
    }
    out.push_str(piece);
    Ok(())
}

/// Replaces every reference in `text`. Problems go to `errors` under
/// `field`; the text is returned with those references left in place.
/// Substitution stops at the first limit crossed (see `limits`), so a huge
/// string is never built.
pub fn substitute_str(text: &str, resolver: &dyn Resolver, field: &str, errors: &mut ValidationErrors) -> String {
    let budget = resolver.budget();
    let limit = budget.map_or(usize::MAX, |b| b.max_field_bytes);
    let mut out = String::with_capacity(text.len().min(limit));
    let mut last = 0;
    for found in scan(text) {
        if let Err(why) = append(&mut out, &text[last..found.start], budget) {
            errors.push(field, why);
            return out;
        }
        match resolver.lookup(found.expr) {
            Ok(Value::Str(value)) => {
                if let Err(why) = append(&mut out, &value, budget) {
                    errors.push(field, why);
                    return out;
                }
            }
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
    if let Err(why) = append(&mut out, &text[last..], budget) {
        errors.push(field, why);
    }
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
    let budget = resolver.budget();
    let max_items = budget.map_or(usize::MAX, |b| b.max_array_items);
    let max_bytes = budget.map_or(usize::MAX, |b| b.max_field_bytes);
    let mut out: Vec<String> = Vec::with_capacity(items.len().min(max_items));
    let mut bytes = 0usize;
    for (index, item) in items.iter().enumerate() {
        let item_field = format!("{field}[{index}]");
        let found = scan(item);
        let before = errors.0.len();
        if let [only] = found.as_slice()
            && only.start == 0
            && only.end == item.len()
            && let Ok(Value::Array(elements)) = resolver.lookup(only.expr)
        {
            let added: usize = elements.iter().map(String::len).sum();
            if let Some(budget) = budget
                && let Err(why) = budget.take(added)
            {
                errors.push(&item_field, why);
                return out;
            }
            bytes = bytes.saturating_add(added);
            out.extend(elements);
        } else {
            let text = substitute_str(item, resolver, &item_field, errors);
            bytes = bytes.saturating_add(text.len());
            out.push(text);
        }
        if errors.0.len() > before && budget.is_some_and(|_| errors.0[before..].iter().any(is_limit_error)) {
            return out;
        }
        if let Some(budget) = budget {
            if out.len() > max_items {
                errors.push(field, budget.list_too_long(out.len()));
                return out;
            }
            if bytes > max_bytes {
                errors.push(field, budget.field_too_large(bytes));
                return out;
            }
        }
    }
    out
}

/// True for an error of a crossed limit, after which substitution stops.
fn is_limit_error(error: &super::errors::FieldError) -> bool {
    error.message.contains("(controller flag --")
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

    /// Every `$(params.big)` is 10 KB.
    struct Limited {
        budget: Budget,
    }
    impl Resolver for Limited {
        fn lookup(&self, expr: &str) -> Result<Value, String> {
            match expr {
                "params.big" => Ok(Value::Str("x".repeat(10_000))),
                "params.many[*]" => Ok(Value::Array(vec!["y".to_string(); 600])),
                _ => Err("not known".into()),
            }
        }
        fn budget(&self) -> Option<&Budget> {
            Some(&self.budget)
        }
    }

    fn limited(max_field_bytes: usize, max_pod_bytes: usize) -> Limited {
        let limits = crate::engine::limits::Limits {
            max_field_bytes,
            max_pod_bytes,
            ..Default::default()
        };
        Limited {
            budget: Budget::new(&limits),
        }
    }

    #[test]
    fn substitution_stops_at_the_field_limit_naming_field_and_limit() {
        let mut errors = ValidationErrors::default();
        let vars = limited(64 * 1024, 1 << 20);
        let out = substitute_str(
            &"$(params.big)".repeat(1000),
            &vars,
            "spec.steps[0].script",
            &mut errors,
        );
        assert!(out.len() <= 64 * 1024, "built {} bytes", out.len());
        assert_eq!(errors.0.len(), 1, "{errors}");
        assert_eq!(errors.0[0].field, "spec.steps[0].script");
        assert!(
            errors.0[0]
                .message
                .contains("limit is 65536 bytes (controller flag --max-field-bytes)"),
            "{errors}"
        );
    }

    #[test]
    fn the_runs_total_is_shared_by_every_field() {
        let mut errors = ValidationErrors::default();
        let vars = limited(64 * 1024, 100_000);
        for step in 0..20 {
            substitute_str(
                &"$(params.big)".repeat(5),
                &vars,
                &format!("steps[{step}].script"),
                &mut errors,
            );
            if !errors.is_empty() {
                break;
            }
        }
        assert_eq!(errors.0.len(), 1, "{errors}");
        assert!(errors.0[0].message.contains("--max-pod-bytes"), "{errors}");
        assert!(errors.0[0].field == "steps[2].script", "{errors}");
    }

    #[test]
    fn list_expansion_stops_at_the_item_limit() {
        let mut errors = ValidationErrors::default();
        let vars = limited(1 << 20, 1 << 20);
        let out = substitute_list(&vec!["$(params.many[*])".to_string(); 100], &vars, "args", &mut errors);
        assert!(out.len() <= 1024 + 600, "{} items", out.len());
        assert!(errors.to_string().contains("--max-array-items"), "{errors}");
    }
}
