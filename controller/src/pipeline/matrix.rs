//! Matrixed pipeline tasks: one pipeline task fanned out to one child run
//! per combination of its `matrix` params. Pure.
//!
//! How the combinations are formed:
//! - `matrix.params` (each a list of strings) give their cartesian product,
//!   the first param changing fastest, as in Tekton: `a: [1, 2]`,
//!   `b: [x, y]` gives `1x, 2x, 1y, 2y`;
//! - then each `matrix.include` entry, in order: its params that are also
//!   matrix params select the product's combinations with exactly those
//!   values (none selects them all), and its other params are added to the
//!   selected combinations (replacing what an earlier entry added, never a
//!   matrix value). An entry that selects nothing, because its values
//!   appear in no combination or because there is no product, becomes a
//!   combination of its own. An entry whose `when` expressions do not all
//!   hold is left out.
//!
//! A matrixed task's string results reach later tasks as arrays, one item
//! per combination that wrote the result, in combination order.

use std::collections::{BTreeMap, BTreeSet};

use crate::api::{Matrix, Param, ParamSpec, ParamType, ParamValue, PipelineTask, TaskSpec};
use crate::engine::errors::ValidationErrors;
use crate::engine::validate::list_or_none;

use super::refs::{value_texts, when_texts};
use super::schedule::ChildState;
use super::variables::{DeclaredResult, PipelineVariables, substitute_value, when_holds};

/// The params one child of a matrixed task gets from the matrix.
pub type Combination = Vec<Param>;

/// Every name the matrix gives a value to (`params` and `include`).
pub fn param_names(task: &PipelineTask) -> BTreeSet<&str> {
    let Some(matrix) = &task.matrix else {
        return BTreeSet::new();
    };
    let included = matrix.include.iter().flat_map(|i| &i.params);
    matrix.params.iter().chain(included).map(|p| p.name.as_str()).collect()
}

/// The matrix's texts that may hold references, with their field relative
/// to the task (`matrix.params[0].value[1]`).
pub fn matrix_texts(task: &PipelineTask) -> Vec<(String, &str)> {
    let Some(matrix) = &task.matrix else {
        return Vec::new();
    };
    let mut texts = Vec::new();
    for (index, param) in matrix.params.iter().enumerate() {
        for (suffix, text) in value_texts(&param.value) {
            texts.push((format!("matrix.params[{index}].value{suffix}"), text));
        }
    }
    for (entry, include) in matrix.include.iter().enumerate() {
        for (index, param) in include.params.iter().enumerate() {
            for (suffix, text) in value_texts(&param.value) {
                texts.push((format!("matrix.include[{entry}].params[{index}].value{suffix}"), text));
            }
        }
        texts.extend(when_texts(&format!("matrix.include[{entry}].when"), &include.when));
    }
    texts
}

/// The combinations of `matrix` with its references substituted; `field`
/// is the task's (`spec.tasks[2]`). More than `max` combinations is an
/// error (and none are returned), so a huge product is never built.
pub fn combinations(
    matrix: &Matrix,
    vars: &PipelineVariables<'_>,
    field: &str,
    max: usize,
    errors: &mut ValidationErrors,
) -> Vec<Combination> {
    let values = matrix_values(matrix, vars, field, errors);
    let includes = include_values(matrix, vars, field, errors);
    let product = values
        .iter()
        .try_fold(1usize, |count, (_, items)| count.checked_mul(items.len()));
    let product = if values.is_empty() { Some(0) } else { product };
    if product.is_none_or(|count| count > max) {
        let count = product.map_or("more than 2^64".to_string(), |c| c.to_string());
        over_limit(field, &count, max, errors);
        return Vec::new();
    }
    let names: BTreeSet<&str> = values.iter().map(|(name, _)| name.as_str()).collect();
    let all = with_includes(cartesian(&values), &names, &includes);
    if all.len() > max {
        over_limit(field, &all.len().to_string(), max, errors);
        return Vec::new();
    }
    all
}

fn over_limit(field: &str, count: &str, max: usize, errors: &mut ValidationErrors) {
    errors.push(
        format!("{field}.matrix"),
        format!("{count} combinations, the limit is {max} (controller flag --max-matrix-combinations)"),
    );
}

/// Each matrix param's values after substitution; a value that is not a
/// list of strings is an error.
fn matrix_values(
    matrix: &Matrix,
    vars: &PipelineVariables<'_>,
    field: &str,
    errors: &mut ValidationErrors,
) -> Vec<(String, Vec<String>)> {
    let mut values = Vec::new();
    for (index, param) in matrix.params.iter().enumerate() {
        let at = format!("{field}.matrix.params[{index}].value");
        match substitute_value(&param.value, vars, &at, errors) {
            ParamValue::Array(items) => values.push((param.name.clone(), items)),
            other => errors.push(
                at,
                format!(
                    "matrix param {:?} must be a list of strings (or a reference to an array), not {} {}",
                    param.name,
                    article(other.param_type()),
                    other.param_type()
                ),
            ),
        }
    }
    values
}

fn article(kind: ParamType) -> &'static str {
    match kind {
        ParamType::Array | ParamType::Object => "an",
        ParamType::String => "a",
    }
}

/// Each include entry's params after substitution; each must be a string.
/// An entry whose `when` does not hold is left out.
fn include_values(
    matrix: &Matrix,
    vars: &PipelineVariables<'_>,
    field: &str,
    errors: &mut ValidationErrors,
) -> Vec<Vec<(String, String)>> {
    let mut entries = Vec::new();
    for (entry, include) in matrix.include.iter().enumerate() {
        let when_field = format!("{field}.matrix.include[{entry}].when");
        if !when_holds(&include.when, vars, &when_field, errors) {
            continue;
        }
        let mut params = Vec::new();
        for (index, param) in include.params.iter().enumerate() {
            let at = format!("{field}.matrix.include[{entry}].params[{index}].value");
            match substitute_value(&param.value, vars, &at, errors) {
                ParamValue::String(text) => params.push((param.name.clone(), text)),
                other => errors.push(
                    at,
                    format!(
                        "include param {:?} must be a string, not {} {}",
                        param.name,
                        article(other.param_type()),
                        other.param_type()
                    ),
                ),
            }
        }
        entries.push(params);
    }
    entries
}

/// The cartesian product, first param fastest (Tekton's order, so a
/// matrixed task's aggregated results line up with what its users expect).
/// No params, no combinations.
fn cartesian(values: &[(String, Vec<String>)]) -> Vec<Combination> {
    if values.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<Combination> = vec![Vec::new()];
    for (name, items) in values {
        out = items
            .iter()
            .flat_map(|item| {
                out.iter().map(move |earlier| {
                    let mut next = earlier.clone();
                    next.push(string_param(name, item));
                    next
                })
            })
            .collect();
    }
    out
}

fn string_param(name: &str, value: &str) -> Param {
    Param {
        name: name.to_string(),
        value: ParamValue::String(value.to_string()),
    }
}

/// Applies the include entries (see the module's doc) to the product.
fn with_includes(
    mut product: Vec<Combination>,
    matrix_names: &BTreeSet<&str>,
    includes: &[Vec<(String, String)>],
) -> Vec<Combination> {
    let original = product.len();
    let mut extra: Vec<Combination> = Vec::new();
    for entry in includes {
        let (selectors, added): (Vec<_>, Vec<_>) =
            entry.iter().partition(|(name, _)| matrix_names.contains(name.as_str()));
        let selected: Vec<usize> = (0..original)
            .filter(|&i| {
                selectors
                    .iter()
                    .all(|(name, value)| has_value(&product[i], name, value))
            })
            .collect();
        if selected.is_empty() {
            extra.push(entry.iter().map(|(name, value)| string_param(name, value)).collect());
            continue;
        }
        for i in selected {
            for (name, value) in &added {
                set_param(&mut product[i], name, value);
            }
        }
    }
    product.extend(extra);
    product
}

fn has_value(combination: &Combination, name: &str, value: &str) -> bool {
    combination
        .iter()
        .any(|p| p.name == name && p.value == ParamValue::String(value.to_string()))
}

fn set_param(combination: &mut Combination, name: &str, value: &str) {
    match combination.iter_mut().find(|p| p.name == name) {
        Some(param) => param.value = ParamValue::String(value.to_string()),
        None => combination.push(string_param(name, value)),
    }
}

/// What a matrix may not do, whatever the values: name a param twice,
/// name one that `params` also gives, or (for a MyTask named by
/// `taskRef`) name one the task does not declare as a string. `at` is the
/// task's field.
pub fn check_matrix(task: &PipelineTask, at: &str, task_spec: &TaskSpec, errors: &mut ValidationErrors) {
    let Some(matrix) = &task.matrix else {
        return;
    };
    if matrix.params.is_empty() && matrix.include.is_empty() {
        errors.push(format!("{at}.matrix"), "a matrix needs params or include entries");
    }
    let mut seen = BTreeSet::new();
    for (index, param) in matrix.params.iter().enumerate() {
        let name_at = format!("{at}.matrix.params[{index}].name");
        if !seen.insert(param.name.as_str()) {
            errors.push(&name_at, format!("matrix param {:?} is given twice", param.name));
        }
        check_matrix_name(task, &param.name, &name_at, task_spec, errors);
    }
    for (entry, include) in matrix.include.iter().enumerate() {
        let mut in_entry = BTreeSet::new();
        for (index, param) in include.params.iter().enumerate() {
            let name_at = format!("{at}.matrix.include[{entry}].params[{index}].name");
            if !in_entry.insert(param.name.as_str()) {
                errors.push(&name_at, format!("include param {:?} is given twice", param.name));
            }
            check_matrix_name(task, &param.name, &name_at, task_spec, errors);
        }
    }
}

fn check_matrix_name(task: &PipelineTask, name: &str, at: &str, task_spec: &TaskSpec, errors: &mut ValidationErrors) {
    if task.params.iter().any(|p| p.name == name) {
        errors.push(
            at,
            format!("param {name:?} is given both in params and in the matrix; give it in one of them"),
        );
    }
    let Some(task_ref) = &task.task_ref else {
        // An inline taskSpec receives every param it is given.
        return;
    };
    match task_spec.params.iter().find(|p| p.name == name) {
        None => {
            let declared: Vec<&str> = task_spec.params.iter().map(|p| p.name.as_str()).collect();
            errors.push(
                at,
                format!(
                    "param {name:?} is not declared by MyTask {task_ref:?} (declared: {})",
                    list_or_none(&declared)
                ),
            );
        }
        Some(spec) if spec.param_type != ParamType::String => errors.push(
            at,
            format!(
                "param {name:?} is declared by MyTask {task_ref:?} as {}: a matrix gives each child a string",
                spec.param_type
            ),
        ),
        Some(_) => {}
    }
}

/// Stand-ins for the matrix's params while the task's params are checked,
/// so a required param the matrix gives is not reported missing. Only
/// names the task may receive (see [`check_matrix`]) and `params` does
/// not give.
pub fn placeholder_params(task: &PipelineTask, declared: &[ParamSpec]) -> Vec<Param> {
    param_names(task)
        .into_iter()
        .filter(|name| !task.params.iter().any(|p| &p.name == name))
        .filter(|name| {
            task.task_spec.is_some()
                || declared
                    .iter()
                    .any(|p| &p.name == name && p.param_type == ParamType::String)
        })
        .map(|name| string_param(name, ""))
        .collect()
}

/// A child's params: the task's own with the combination's added (a name
/// in both takes the combination's value).
pub fn child_params(task_params: &[Param], combination: &Combination) -> Vec<Param> {
    let mut params: Vec<Param> = task_params
        .iter()
        .filter(|p| !combination.iter().any(|c| c.name == p.name))
        .cloned()
        .collect();
    params.extend(combination.iter().cloned());
    params
}

/// The result types consumers of a matrixed task see: each string result
/// as an array. Array and object results are not aggregated (and so
/// cannot be read).
pub fn aggregated_types(declared: &BTreeMap<String, DeclaredResult>) -> BTreeMap<String, DeclaredResult> {
    declared
        .iter()
        .filter(|(_, result)| result.result_type == ParamType::String)
        .map(|(name, _)| {
            let aggregated = DeclaredResult {
                result_type: ParamType::Array,
                keys: Vec::new(),
            };
            (name.clone(), aggregated)
        })
        .collect()
}

/// The state of a matrixed task from its children's, in combination order
/// (None: not created). It is done when every child is, and succeeds when
/// every child did.
pub fn aggregate(children: &[Option<ChildState>]) -> ChildState {
    if children.iter().any(Option::is_none) {
        return ChildState::Partial;
    }
    let states: Vec<&ChildState> = children.iter().flatten().collect();
    if states
        .iter()
        .any(|s| matches!(s, ChildState::Running | ChildState::Partial))
    {
        return ChildState::Running;
    }
    let failed: Vec<(usize, &str, &str)> = states
        .iter()
        .enumerate()
        .filter_map(|(index, state)| match state {
            ChildState::Failed { reason, message, .. } => Some((index, reason.as_str(), message.as_str())),
            _ => None,
        })
        .collect();
    if let Some((index, reason, message)) = failed.first() {
        return ChildState::Failed {
            reason: reason.to_string(),
            message: format!(
                "{} of {} combinations failed; combination {index}: {message}",
                failed.len(),
                states.len()
            ),
            results: aggregated_results(&states),
        };
    }
    ChildState::Succeeded {
        results: aggregated_results(&states),
    }
}

/// Each string result as the array of its values, in combination order
/// (a failed child's too: what it wrote before failing).
fn aggregated_results(states: &[&ChildState]) -> BTreeMap<String, ParamValue> {
    let mut arrays: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for state in states {
        let (ChildState::Succeeded { results } | ChildState::Failed { results, .. }) = state else {
            continue;
        };
        for (name, value) in results {
            if let ParamValue::String(text) = value {
                arrays.entry(name.clone()).or_default().push(text.clone());
            }
        }
    }
    arrays
        .into_iter()
        .map(|(name, items)| (name, ParamValue::Array(items)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{MatrixInclude, WhenExpression, WhenOperator};

    fn list(name: &str, items: &[&str]) -> Param {
        Param {
            name: name.into(),
            value: ParamValue::Array(items.iter().map(|s| s.to_string()).collect()),
        }
    }

    fn text(name: &str, value: &str) -> Param {
        string_param(name, value)
    }

    fn include(params: &[(&str, &str)]) -> MatrixInclude {
        MatrixInclude {
            name: None,
            params: params.iter().map(|(n, v)| text(n, v)).collect(),
            when: vec![],
        }
    }

    struct Vars {
        params: BTreeMap<String, ParamValue>,
        context: BTreeMap<&'static str, String>,
        produced: BTreeMap<String, BTreeMap<String, ParamValue>>,
        sizes: BTreeMap<String, usize>,
        workspaces: BTreeMap<String, bool>,
    }

    impl Vars {
        fn new() -> Vars {
            Vars {
                params: BTreeMap::from([(
                    "oses".to_string(),
                    ParamValue::Array(vec!["linux".into(), "mac".into()]),
                )]),
                context: BTreeMap::new(),
                produced: BTreeMap::from([(
                    "list".to_string(),
                    BTreeMap::from([("items".to_string(), ParamValue::Array(vec!["a".into(), "b".into()]))]),
                )]),
                sizes: BTreeMap::new(),
                workspaces: BTreeMap::new(),
            }
        }

        fn get(&self) -> PipelineVariables<'_> {
            PipelineVariables {
                params: &self.params,
                results: super::super::variables::KnownResults::Produced(&self.produced),
                status: None,
                context: &self.context,
                matrix_sizes: &self.sizes,
                workspaces: &self.workspaces,
            }
        }
    }

    /// Each combination as `name=value,...`.
    fn shown(combinations: &[Combination]) -> Vec<String> {
        combinations
            .iter()
            .map(|c| {
                c.iter()
                    .map(|p| match &p.value {
                        ParamValue::String(v) => format!("{}={v}", p.name),
                        other => format!("{}={other:?}", p.name),
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect()
    }

    fn expand(matrix: &Matrix, max: usize) -> (Vec<String>, ValidationErrors) {
        let vars = Vars::new();
        let mut errors = ValidationErrors::default();
        let out = combinations(matrix, &vars.get(), "spec.tasks[1]", max, &mut errors);
        (shown(&out), errors)
    }

    #[test]
    fn the_product_varies_the_first_param_fastest() {
        let matrix = Matrix {
            params: vec![
                list("os", &["linux", "mac"]),
                list("arch", &["amd64", "arm64"]),
                list("tier", &["a", "b"]),
            ],
            include: vec![],
        };
        let (out, errors) = expand(&matrix, 256);
        assert!(errors.is_empty(), "{errors}");
        assert_eq!(
            out,
            [
                "os=linux,arch=amd64,tier=a",
                "os=mac,arch=amd64,tier=a",
                "os=linux,arch=arm64,tier=a",
                "os=mac,arch=arm64,tier=a",
                "os=linux,arch=amd64,tier=b",
                "os=mac,arch=amd64,tier=b",
                "os=linux,arch=arm64,tier=b",
                "os=mac,arch=arm64,tier=b"
            ]
        );
    }

    #[test]
    fn include_adds_to_matches_or_becomes_its_own_combination() {
        let matrix = Matrix {
            params: vec![list("os", &["linux", "mac"]), list("arch", &["amd64", "arm64"])],
            include: vec![
                include(&[("flags", "-v")]),                       // every combination
                include(&[("arch", "arm64"), ("flags", "-race")]), // replaces -v where arch=arm64
                include(&[("os", "mac"), ("sdk", "14")]),          // only os=mac
                include(&[("os", "windows")]),                     // matches none: new
                include(&[("os", "linux"), ("arch", "s390x")]),    // matches none: new
            ],
        };
        let (out, errors) = expand(&matrix, 256);
        assert!(errors.is_empty(), "{errors}");
        assert_eq!(
            out,
            [
                "os=linux,arch=amd64,flags=-v",
                "os=mac,arch=amd64,flags=-v,sdk=14",
                "os=linux,arch=arm64,flags=-race",
                "os=mac,arch=arm64,flags=-race,sdk=14",
                "os=windows",
                "os=linux,arch=s390x",
            ]
        );
    }

    #[test]
    fn include_alone_lists_explicit_combinations() {
        let matrix = Matrix {
            params: vec![],
            include: vec![
                include(&[("goarch", "s390x"), ("flags", "-v")]),
                include(&[("goarch", "ppc64le")]),
            ],
        };
        let (out, errors) = expand(&matrix, 256);
        assert!(errors.is_empty(), "{errors}");
        assert_eq!(out, ["goarch=s390x,flags=-v", "goarch=ppc64le"]);
    }

    #[test]
    fn an_include_whose_when_does_not_hold_is_left_out() {
        let only_if_listed = |os: &str| WhenExpression {
            input: os.to_string(),
            operator: Some(WhenOperator::In),
            values: vec!["$(params.oses[*])".to_string()],
            cel: None,
        };
        let entry = |os: &str| MatrixInclude {
            when: vec![only_if_listed(os)],
            ..include(&[("os", os), ("image", &format!("img-{os}"))])
        };
        let matrix = Matrix {
            params: vec![],
            include: vec![entry("linux"), entry("windows"), entry("mac")],
        };
        let (out, errors) = expand(&matrix, 256);
        assert!(errors.is_empty(), "{errors}");
        assert_eq!(out, ["os=linux,image=img-linux", "os=mac,image=img-mac"]);
    }

    #[test]
    fn values_come_from_array_params_and_results() {
        let matrix = Matrix {
            params: vec![
                text("os", "$(params.oses[*])"),
                text("item", "$(tasks.list.results.items)"),
            ],
            include: vec![],
        };
        let (out, errors) = expand(&matrix, 256);
        assert!(errors.is_empty(), "{errors}");
        assert_eq!(
            out,
            ["os=linux,item=a", "os=mac,item=a", "os=linux,item=b", "os=mac,item=b"]
        );
    }

    #[test]
    fn over_the_cap_is_an_error_naming_the_matrix_and_the_count() {
        let matrix = Matrix {
            params: vec![list("a", &["1", "2", "3"]), list("b", &["1", "2", "3"])],
            include: vec![include(&[("a", "9")])],
        };
        let (out, errors) = expand(&matrix, 9);
        assert!(out.is_empty());
        assert_eq!(
            errors.to_string(),
            "spec.tasks[1].matrix: 10 combinations, the limit is 9 (controller flag --max-matrix-combinations)"
        );
        let (_, errors) = expand(&matrix, 8);
        assert!(
            errors.to_string().contains("9 combinations, the limit is 8"),
            "{errors}"
        );
    }

    #[test]
    fn a_string_matrix_value_and_a_list_include_value_are_errors() {
        let matrix = Matrix {
            params: vec![text("os", "linux")],
            include: vec![MatrixInclude {
                name: Some("x".into()),
                params: vec![list("flags", &["-v"])],
                when: vec![],
            }],
        };
        let (_, errors) = expand(&matrix, 256);
        let text = errors.to_string();
        assert!(
            text.contains("spec.tasks[1].matrix.params[0].value: matrix param \"os\" must be a list of strings"),
            "{text}"
        );
        assert!(
            text.contains("spec.tasks[1].matrix.include[0].params[0].value: include param \"flags\" must be a string, not an array"),
            "{text}"
        );
    }

    fn task_ref_task(matrix: Matrix, params: Vec<Param>) -> PipelineTask {
        PipelineTask {
            name: "build".into(),
            task_ref: Some("builder".into()),
            params,
            matrix: Some(matrix),
            ..Default::default()
        }
    }

    fn builder() -> TaskSpec {
        TaskSpec {
            params: vec![
                ParamSpec {
                    name: "os".into(),
                    ..Default::default()
                },
                ParamSpec {
                    name: "files".into(),
                    param_type: ParamType::Array,
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn names_must_be_declared_strings_given_once_and_not_in_params() {
        let matrix = Matrix {
            params: vec![
                list("os", &["a"]),
                list("os", &["b"]),
                list("files", &["c"]),
                list("nope", &["d"]),
            ],
            include: vec![include(&[("os", "a"), ("os", "b")])],
        };
        let task = task_ref_task(matrix, vec![text("os", "x")]);
        let mut errors = ValidationErrors::default();
        check_matrix(&task, "spec.tasks[0]", &builder(), &mut errors);
        let text = errors.to_string();
        for expected in [
            "spec.tasks[0].matrix.params[1].name: matrix param \"os\" is given twice",
            "spec.tasks[0].matrix.params[0].name: param \"os\" is given both in params and in the matrix",
            "spec.tasks[0].matrix.params[2].name: param \"files\" is declared by MyTask \"builder\" as array",
            "spec.tasks[0].matrix.params[3].name: param \"nope\" is not declared by MyTask \"builder\" (declared: os, files)",
            "spec.tasks[0].matrix.include[0].params[1].name: include param \"os\" is given twice",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in {text}");
        }
    }

    #[test]
    fn an_empty_matrix_is_an_error() {
        let task = task_ref_task(Matrix::default(), vec![]);
        let mut errors = ValidationErrors::default();
        check_matrix(&task, "spec.tasks[0]", &builder(), &mut errors);
        assert_eq!(
            errors.to_string(),
            "spec.tasks[0].matrix: a matrix needs params or include entries"
        );
    }

    fn succeeded(value: &str) -> Option<ChildState> {
        Some(ChildState::Succeeded {
            results: BTreeMap::from([
                ("digest".to_string(), ParamValue::String(value.into())),
                ("files".to_string(), ParamValue::Array(vec!["x".into()])),
            ]),
        })
    }

    #[test]
    fn string_results_become_arrays_in_combination_order() {
        let state = aggregate(&[succeeded("a"), succeeded("b"), succeeded("c")]);
        assert_eq!(
            state,
            ChildState::Succeeded {
                results: BTreeMap::from([(
                    "digest".to_string(),
                    ParamValue::Array(vec!["a".into(), "b".into(), "c".into()])
                )])
            }
        );
    }

    #[test]
    fn the_task_waits_for_every_child_and_fails_if_one_did() {
        let failed = Some(ChildState::Failed {
            reason: "Failed".into(),
            message: "step \"test\" exited with code 1".into(),
            results: BTreeMap::from([("digest".to_string(), ParamValue::String("partial".into()))]),
        });
        assert_eq!(aggregate(&[succeeded("a"), None]), ChildState::Partial);
        assert_eq!(
            aggregate(&[failed.clone(), Some(ChildState::Running)]),
            ChildState::Running
        );
        assert_eq!(
            aggregate(&[succeeded("a"), failed]),
            ChildState::Failed {
                reason: "Failed".into(),
                message: "1 of 2 combinations failed; combination 1: step \"test\" exited with code 1".into(),
                results: BTreeMap::from([(
                    "digest".to_string(),
                    ParamValue::Array(vec!["a".into(), "partial".into()])
                )]),
            }
        );
    }

    #[test]
    fn child_params_add_the_combination() {
        let params = child_params(&[text("browser", "chrome")], &vec![text("os", "mac")]);
        assert_eq!(params, vec![text("browser", "chrome"), text("os", "mac")]);
    }
}
