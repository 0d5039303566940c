//! Finding `$(params.x)`-style references in text.
//!
//! Only references whose first segment is one of ours are recognised, so a
//! shell command substitution such as `$(date +%s)` is left alone.

/// The first segments that make `$(...)` one of our references.
pub const NAMESPACES: &[&str] = &[
    "params",
    "results",
    "workspaces",
    "context",
    "tasks",
    "steps",
    "step",
    "credentials",
    "artifacts",
];

/// A reference found in a text: byte range of the whole `$(...)` and the
/// expression inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found<'a> {
    pub start: usize,
    pub end: usize,
    pub expr: &'a str,
}

fn is_expr_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '[' | ']' | '*')
}

/// Tekton's pre-v1 `$(inputs.params.x)` is `$(params.x)`: the alias is
/// dropped here, so every reader of references sees the one form.
fn legacy_alias(expr: &str) -> &str {
    expr.strip_prefix("inputs.")
        .filter(|rest| rest.starts_with("params."))
        .unwrap_or(expr)
}

/// Every reference of ours in `text`, in order.
pub fn scan(text: &str) -> Vec<Found<'_>> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(offset) = text[from..].find("$(") {
        let start = from + offset;
        let body_start = start + 2;
        let body_len = text[body_start..].find(|c: char| !is_expr_char(c));
        from = body_start;
        let Some(body_len) = body_len else { break };
        if !text[body_start + body_len..].starts_with(')') {
            continue;
        }
        let expr = legacy_alias(&text[body_start..body_start + body_len]);
        let first = expr.split(['.', '[']).next().unwrap_or_default();
        if NAMESPACES.contains(&first) && expr.len() > first.len() {
            let end = body_start + body_len + 1;
            found.push(Found { start, end, expr });
            from = end;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exprs(text: &str) -> Vec<&str> {
        scan(text).into_iter().map(|f| f.expr).collect()
    }

    #[test]
    fn finds_our_references_and_skips_shell() {
        let script = r#"x=$(params.A) y=$(date +%s%N | md5sum) z="$(results.R.path)" $(params.L[*])"#;
        assert_eq!(exprs(script), vec!["params.A", "results.R.path", "params.L[*]"]);
    }

    #[test]
    fn ignores_unterminated_and_bare_namespaces() {
        assert!(exprs("$(params.A").is_empty());
        assert!(exprs("$(params)").is_empty());
        assert!(exprs("$(HOME) $(ls -l)").is_empty());
        assert_eq!(exprs("$($(params.B))"), vec!["params.B"]);
    }

    #[test]
    fn the_legacy_inputs_params_form_is_a_params_reference() {
        let found = scan("echo $(inputs.params.greeting) $(inputs.resources.x)");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].expr, "params.greeting");
        assert_eq!((found[0].start, found[0].end), (5, 30), "the whole $(...) is replaced");
    }

    #[test]
    fn reports_byte_ranges() {
        let found = scan("ab$(context.task.name)cd");
        assert_eq!(found[0].start, 2);
        assert_eq!(found[0].end, 22);
    }
}
