//! Validation of a pipeline against its tasks and the run's inputs: each
//! problem is reported with its field.

use std::collections::BTreeMap;

use cicd_controller::api::{Param, ParamValue, PipelineSpec, TaskSpec, WorkspaceBinding};
use cicd_controller::manifests::Manifests;
use cicd_controller::pipeline::validate::{PipelineInputs, validate_pipeline};
use cicd_controller::pipeline::variables::context_variables;

const YAML: &str = r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTask
metadata: {name: t}
spec:
  params:
    - name: S
    - name: A
      type: array
      default: []
  results:
    - name: R
    - name: LIST
      type: array
  steps:
    - {name: s, image: 127.0.0.1:5000/cicd/bash:5, script: "true"}
"#;

fn task() -> TaskSpec {
    let mut manifests = Manifests::default();
    manifests.add_yaml("task", YAML).expect("task parses");
    manifests.tasks[0].spec.clone()
}

fn pipeline(body: &str) -> PipelineSpec {
    let yaml =
        format!("apiVersion: cicdoperator.ning1875.io/v1\nkind: MyPipeline\nmetadata: {{name: p}}\nspec:\n{body}");
    let mut manifests = Manifests::default();
    manifests.add_yaml("pipeline", &yaml).expect("pipeline parses");
    manifests.pipelines[0].spec.clone()
}

fn check(spec: &PipelineSpec, params: &[Param], workspaces: &[WorkspaceBinding]) -> Result<(), String> {
    let task_specs: BTreeMap<String, TaskSpec> = spec.all_tasks().map(|t| (t.name.clone(), task())).collect();
    let context = context_variables("run", "ns", "uid", "p");
    let inputs = PipelineInputs {
        spec,
        field: "spec",
        task_specs: &task_specs,
        run_params: params,
        run_workspaces: workspaces,
        timeouts: None,
        task_run_specs: &[],
        context: &context,
        max_tasks: cicd_controller::engine::limits::DEFAULT_MAX_PIPELINE_TASKS,
        max_matrix_combinations: cicd_controller::engine::limits::DEFAULT_MAX_MATRIX_COMBINATIONS,
    };
    validate_pipeline(&inputs).map(|_| ()).map_err(|e| e.to_string())
}

#[test]
fn a_good_pipeline_passes() {
    let spec = pipeline(
        r#"
  params:
    - name: list
      type: array
  tasks:
    - name: a
      taskRef: t
      params: [{name: S, value: x}, {name: A, value: "$(params.list[*])"}]
    - name: b
      taskRef: t
      params: [{name: S, value: "$(tasks.a.results.R)"}, {name: A, value: "$(tasks.a.results.LIST[*])"}]
"#,
    );
    let list = Param {
        name: "list".into(),
        value: ParamValue::Array(vec!["1".into()]),
    };
    assert_eq!(check(&spec, &[list], &[]), Ok(()));
}

#[test]
fn param_type_mismatches_are_named() {
    let spec = pipeline(
        r#"
  tasks:
    - name: a
      taskRef: t
      params: [{name: S, value: [x]}]
    - name: b
      taskRef: t
      params: [{name: S, value: "$(tasks.a.results.LIST[*])"}]
"#,
    );
    let error = check(&spec, &[], &[]).expect_err("mismatch");
    assert!(error.contains("spec.tasks[0].params[0].value: param \"S\" is declared as string but the value given is array (MyTask \"t\")"), "{error}");
    assert!(
        error.contains("spec.tasks[1].params[0].value: param \"S\" is declared as string but the value given is array"),
        "{error}"
    );
}

#[test]
fn unknown_results_params_and_status_outside_finally_are_named() {
    let spec = pipeline(
        r#"
  tasks:
    - name: a
      taskRef: t
      params: [{name: S, value: "$(params.missing)"}]
    - name: b
      taskRef: t
      params: [{name: S, value: "$(tasks.a.results.NOPE)"}]
    - name: c
      taskRef: t
      params: [{name: S, value: "$(tasks.a.status)"}]
    - name: d
      taskRef: t
      params: [{name: S, value: "$(tasks.a.reason)"}]
  results:
    - {name: OUT, value: "$(tasks.b.results.GONE)"}
"#,
    );
    let error = check(&spec, &[], &[]).expect_err("invalid");
    assert!(
        error.contains("spec.tasks[0].params[0].value: $(params.missing): the pipeline declares no param \"missing\""),
        "{error}"
    );
    assert!(error.contains("spec.tasks[1].params[0].value: $(tasks.a.results.NOPE): task \"a\" declares no result \"NOPE\" (declared: LIST, R)"), "{error}");
    assert!(
        error.contains(
            "spec.tasks[2].params[0].value: $(tasks.a.status): task status and reason are only available to finally tasks"
        ),
        "{error}"
    );
    assert!(
        error.contains(
            "spec.tasks[3].params[0].value: $(tasks.a.reason): task status and reason are only available to finally tasks"
        ),
        "{error}"
    );
    assert!(
        error.contains("spec.results[0].value: $(tasks.b.results.GONE)"),
        "{error}"
    );
}

#[test]
fn names_sources_workspaces_and_required_params_are_checked() {
    let spec = pipeline(
        r#"
  params:
    - name: needed
  workspaces:
    - name: ws
  tasks:
    - name: Bad_Name
      taskRef: t
      params: [{name: S, value: x}]
    - name: dup
      taskRef: t
      taskSpec: {steps: [{name: s, image: i, script: "true"}]}
    - name: dup
      taskRef: t
      params: [{name: S, value: x}]
      workspaces: [{name: w, workspace: nope}]
"#,
    );
    let error = check(&spec, &[], &[]).expect_err("invalid");
    for expected in [
        "spec.tasks[0].name: pipeline task name \"Bad_Name\" is invalid",
        "spec.tasks[1].taskRef: set one of taskRef, taskSpec and remoteTask, not several",
        "spec.tasks[2].name: duplicate pipeline task name \"dup\"",
        "spec.tasks[2].workspaces[0].workspace: the pipeline declares no workspace \"nope\"",
        "spec.params: param \"needed\" is required",
        "spec.workspaces: workspace \"ws\" is required by the pipeline but the run does not bind it",
    ] {
        assert!(error.contains(expected), "missing {expected:?} in {error}");
    }
}

#[test]
fn a_pipeline_over_the_task_limit_is_refused_naming_the_count_and_the_flag() {
    let limit = cicd_controller::engine::limits::DEFAULT_MAX_PIPELINE_TASKS;
    let tasks: String = (0..limit)
        .map(|i| format!("    - {{name: t{i}, taskRef: t, params: [{{name: S, value: x}}]}}\n"))
        .collect();
    let at_limit = pipeline(&format!("  tasks:\n{tasks}"));
    assert_eq!(check(&at_limit, &[], &[]), Ok(()));
    let over = pipeline(&format!(
        "  tasks:\n{tasks}  finally:\n    - {{name: last, taskRef: t, params: [{{name: S, value: x}}]}}\n"
    ));
    let error = check(&over, &[], &[]).expect_err("one task too many");
    assert!(
        error.contains(&format!(
            "spec.tasks: {} tasks (with finally), the limit is {limit} (controller flag --max-pipeline-tasks)",
            limit + 1
        )),
        "{error}"
    );
}

#[test]
fn a_sub_path_leaving_its_workspace_is_reported_once() {
    let spec = pipeline(
        "  workspaces: [{name: shared}]\n  tasks:\n    - name: a\n      taskRef: t\n      \
         params: [{name: S, value: x}]\n      workspaces: [{name: src, workspace: shared, subPath: ../up}]\n",
    );
    let error = check(&spec, &[], &[]).expect_err("a subPath with ..");
    let message = "spec.tasks[0].workspaces[0].subPath: subPath \"../up\" must be relative and must not contain '..'";
    assert_eq!(error.matches(message).count(), 1, "{error}");
}

#[test]
fn a_remote_task_s_params_and_results_are_taken_on_trust_until_it_is_fetched() {
    let spec = pipeline(
        r#"
  tasks:
    - name: clone
      remoteTask:
        resolver: git
        params: [{name: url, value: "git://git.example/catalog.git"}, {name: pathInRepo, value: clone.yaml}]
      params: [{name: anything, value: x}]
    - name: b
      taskRef: t
      params: [{name: S, value: "$(tasks.clone.results.commit)"}, {name: A, value: "$(tasks.clone.results.files[*])"}]
"#,
    );
    // As the controller sees it before the clone task's run fetched it.
    let task_specs: BTreeMap<String, TaskSpec> = BTreeMap::from([("b".to_string(), task())]);
    let context = context_variables("run", "ns", "uid", "p");
    let inputs = PipelineInputs {
        spec: &spec,
        field: "spec",
        task_specs: &task_specs,
        run_params: &[],
        run_workspaces: &[],
        timeouts: None,
        task_run_specs: &[],
        context: &context,
        max_tasks: cicd_controller::engine::limits::DEFAULT_MAX_PIPELINE_TASKS,
        max_matrix_combinations: cicd_controller::engine::limits::DEFAULT_MAX_MATRIX_COMBINATIONS,
    };
    let valid = validate_pipeline(&inputs).unwrap_or_else(|e| panic!("valid: {e}"));
    assert_eq!(valid.dag.order, ["clone", "b"]);
    assert!(
        valid.dag.parents["b"].contains_key("clone"),
        "the result reference orders them"
    );
    // Once fetched (the child's snapshot), it is checked as any task is.
    let error = check(&spec, &[], &[]).expect_err("t declares no param `anything`");
    assert!(
        error.contains("spec.tasks[0].params[0].name") && error.contains("\"anything\""),
        "{error}"
    );

    let both = pipeline(
        r#"
  tasks:
    - name: a
      taskRef: t
      remoteTask: {resolver: cluster, params: [{name: name, value: t}]}
"#,
    );
    let error = check(&both, &[], &[]).expect_err("two sources");
    assert!(
        error.contains("spec.tasks[0].taskRef") && error.contains("not several"),
        "{error}"
    );
}

#[test]
fn a_when_expression_is_either_cel_or_input_operator_values() {
    let with_when = |when: &str| {
        pipeline(&format!(
            "  tasks:\n    - name: a\n      taskRef: t\n      params: [{{name: S, value: x}}]\n      when: [{when}]\n"
        ))
    };
    let both = check(
        &with_when("{input: x, operator: in, values: [x], cel: \"true\"}"),
        &[],
        &[],
    )
    .expect_err("both");
    assert!(
        both.contains("spec.tasks[0].when[0].cel: a when expression is either `cel`"),
        "{both}"
    );
    let no_operator = check(&with_when("{input: x, values: [x]}"), &[], &[]).expect_err("no operator");
    assert!(
        no_operator.contains("spec.tasks[0].when[0].operator: a when expression needs an operator"),
        "{no_operator}"
    );
    let empty = check(&with_when("{cel: \" \"}"), &[], &[]).expect_err("empty");
    assert!(
        empty.contains("spec.tasks[0].when[0].cel: the expression is empty"),
        "{empty}"
    );
    let bad = check(&with_when("{cel: \"'a' = 'a'\"}"), &[], &[]).expect_err("not CEL");
    assert!(
        bad.contains("spec.tasks[0].when[0].cel: \"'a' = 'a'\": unexpected character '=' at column 5"),
        "{bad}"
    );
    check(&with_when("{cel: \"'$(context.pipelineRun.name)' != ''\"}"), &[], &[]).expect("a good cel");
    let reads_a_result = pipeline(
        "  tasks:\n    - name: a\n      taskRef: t\n      params: [{name: S, value: x}]\n    - name: b\n      taskRef: t\n      \
         params: [{name: S, value: x}]\n      when: [{cel: \"int('$(tasks.a.results.R)') > 1\"}]\n",
    );
    check(&reads_a_result, &[], &[]).expect("a result is judged when the task is due, not while validating");
}
