//! Tekton behaviours the engine now shares, without a cluster: unnamed
//! steps, implicit param propagation, params in volumes, unknown context
//! variables, object params typed by their properties, extra run params,
//! `$(context.pipelineTask.retries)`, and the outcome of a pod whose
//! sidecar is still stopping.

use std::collections::BTreeMap;
use std::time::Duration;

use cicd_controller::api::{Param, ParamType, ParamValue, PipelineSpec, TaskSpec};
use cicd_controller::commands::render_yaml;
use cicd_controller::manifests::Manifests;
use cicd_controller::pipeline::schedule::{ScheduleInput, schedule};
use cicd_controller::pipeline::validate::{PipelineInputs, ValidPipeline, validate_pipeline};
use cicd_controller::pipeline::variables::context_variables;
use cicd_controller::pod::render::RenderSettings;
use cicd_controller::pod::results::FetchedResults;
use cicd_controller::pod::status::{Succeeded, read_pod};
use k8s_openapi::api::core::v1::{Pod, VolumeMount};
use serde_json::json;

const HEAD: &str = "apiVersion: cicdoperator.ning1875.io/v1";

fn render(yaml: &str) -> Result<String, String> {
    let settings = RenderSettings {
        entrypoint_image: "127.0.0.1:5000/cicd/entrypoint:dev".into(),
        ..Default::default()
    };
    render_yaml(
        &[("test.yaml".into(), yaml.to_string())],
        &settings,
        Duration::from_secs(3600),
    )
    .map_err(|e| e.to_string())
}

/// The spec of the (last) pod `render` printed.
/// The volume mounts of container `name` of `spec`.
fn mounts_of<'a>(spec: &'a k8s_openapi::api::core::v1::PodSpec, name: &str) -> Vec<&'a VolumeMount> {
    let container = spec.containers.iter().find(|c| c.name == name).expect("the container");
    container.volume_mounts.iter().flatten().collect()
}

fn pod_spec_of(rendered: &str) -> k8s_openapi::api::core::v1::PodSpec {
    let last = rendered
        .trim_start_matches("---\n")
        .split("\n---")
        .last()
        .unwrap_or(rendered);
    let pod: Pod = serde_saphyr::from_str(last).unwrap_or_else(|e| panic!("{e}\n{rendered}"));
    pod.spec.expect("spec")
}

fn text(value: &str) -> ParamValue {
    ParamValue::String(value.into())
}

#[test]
fn unnamed_steps_are_named_by_their_position() {
    let yaml = format!(
        "{HEAD}\nkind: MyTaskRun\nmetadata: {{name: r}}\nspec:\n  taskSpec:\n    steps:\n      - {{image: bash, script: echo a}}\n      - {{name: b, image: bash, script: echo b}}\n      - {{image: bash, script: echo c}}\n"
    );
    let pod = render(&yaml).expect("valid");
    for container in ["name: step-unnamed-0", "name: step-b", "name: step-unnamed-2"] {
        assert!(pod.contains(container), "{container} missing in\n{pod}");
    }
    let mut manifests = Manifests::default();
    manifests.add_yaml("t", &yaml).expect("decodes");
    let names: Vec<String> = manifests.task_runs[0]
        .spec
        .task_spec
        .as_ref()
        .map(|t| t.steps.iter().map(|s| s.name.clone()).collect())
        .unwrap_or_default();
    assert_eq!(names, vec!["unnamed-0", "b", "unnamed-2"]);
}

#[test]
fn an_unnamed_step_clashing_with_a_named_one_is_a_duplicate() {
    let yaml = format!(
        "{HEAD}\nkind: MyTaskRun\nmetadata: {{name: r}}\nspec:\n  taskSpec:\n    steps:\n      - {{image: bash, script: echo a}}\n      - {{name: unnamed-0, image: bash, script: echo b}}\n"
    );
    let error = render(&yaml).expect_err("duplicate");
    assert!(
        error.contains("spec.taskSpec.steps[1].name: duplicate step name \"unnamed-0\""),
        "{error}"
    );
}

#[test]
fn an_inline_task_run_receives_params_it_does_not_declare() {
    let yaml = format!(
        "{HEAD}\nkind: MyTaskRun\nmetadata: {{name: r}}\nspec:\n  params:\n    - {{name: who, value: moon}}\n    - {{name: how, value: loud}}\n  taskSpec:\n    params:\n      - {{name: how, default: soft}}\n    steps:\n      - {{name: s, image: bash, command: [echo, 'how=$(params.how)', 'who=$(params.who)']}}\n"
    );
    let pod = render(&yaml).expect("propagated");
    assert!(
        pod.contains("who=moon"),
        "an undeclared param reaches the inline spec: {pod}"
    );
    assert!(pod.contains("how=loud"), "the run's value beats the default: {pod}");
}

#[test]
fn a_named_task_still_refuses_params_it_does_not_declare() {
    let yaml = format!(
        "{HEAD}\nkind: MyTask\nmetadata: {{name: t}}\nspec:\n  steps:\n    - {{name: s, image: bash, script: 'true'}}\n---\n{HEAD}\nkind: MyTaskRun\nmetadata: {{name: r}}\nspec:\n  taskRef: t\n  params:\n    - {{name: who, value: moon}}\n"
    );
    let error = render(&yaml).expect_err("undeclared");
    assert!(error.contains("param \"who\" is not declared"), "{error}");
}

#[test]
fn params_are_substituted_in_task_volumes() {
    let yaml = format!(
        "{HEAD}\nkind: MyTaskRun\nmetadata: {{name: r}}\nspec:\n  params: [{{name: map, value: colours}}]\n  taskSpec:\n    params: [{{name: map}}]\n    volumes:\n      - name: settings\n        configMap: {{name: $(params.map)}}\n    steps:\n      - name: s\n        image: bash\n        script: 'true'\n        volumeMounts: [{{name: settings, mountPath: /settings}}]\n"
    );
    let pod = render(&yaml).expect("valid");
    assert!(pod.contains("name: colours"), "{pod}");
    assert!(!pod.contains("$(params.map)"), "{pod}");

    let bad = yaml.replace("$(params.map)", "$(params.nope)");
    let error = render(&bad).expect_err("unknown param");
    assert!(
        error.contains("spec.taskSpec.volumes[0].configMap.name: $(params.nope)"),
        "{error}"
    );
}

/// The script of step `index` named `name`, decoded from the pod's prepare container.
fn script_in(pod: &str, index: usize, name: &str) -> String {
    use base64::Engine as _;
    let prefix = format!("{}=", cicd_controller::layout::script_name(index, name));
    let encoded = pod
        .lines()
        .find_map(|line| line.trim().trim_start_matches("- ").strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no script {prefix} in\n{pod}"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim_matches(['\'', '"']))
        .expect("base64");
    String::from_utf8(bytes).expect("utf-8")
}

#[test]
fn an_unknown_context_variable_is_left_for_the_shell() {
    let yaml = format!(
        "{HEAD}\nkind: MyTaskRun\nmetadata: {{name: r}}\nspec:\n  taskSpec:\n    steps:\n      - name: s\n        image: bash\n        script: 'echo $(context.taskRun.name) $(context.no.such.thing)'\n"
    );
    let pod = render(&yaml).expect("an unknown context variable in a script is not an error");
    assert_eq!(script_in(&pod, 0, "s"), "echo r $(context.no.such.thing)");
    // Outside scripts it is still an error naming the field.
    let in_args = yaml
        .replace("script: 'echo", "command: [echo]\n        args: ['")
        .replace("thing)'", "thing)']");
    let error = render(&in_args).expect_err("unknown context in args");
    assert!(error.contains("spec.taskSpec.steps[0].args[0]"), "{error}");
    assert!(
        error.contains("$(context.no.such.thing): unknown context variable"),
        "{error}"
    );
}

#[test]
fn a_param_with_properties_but_no_type_is_an_object() {
    let task: TaskSpec = serde_json::from_value(json!({
        "params": [{ "name": "repo", "properties": { "url": {} } }],
        "steps": [{ "name": "s", "image": "bash", "script": "true" }],
    }))
    .expect("decodes");
    assert_eq!(task.params[0].param_type, ParamType::Object);
    let explicit: TaskSpec = serde_json::from_value(json!({
        "params": [{ "name": "plain" }],
        "steps": [{ "name": "s", "image": "bash", "script": "true" }],
    }))
    .expect("decodes");
    assert_eq!(explicit.params[0].param_type, ParamType::String);
}

fn pipeline(body: &str) -> PipelineSpec {
    let yaml = format!("{HEAD}\nkind: MyPipeline\nmetadata: {{name: p}}\nspec:\n{body}");
    let mut manifests = Manifests::default();
    manifests.add_yaml("pipeline", &yaml).expect("pipeline parses");
    manifests.pipelines[0].spec.clone()
}

/// Validates with every task inline (as these pipelines are written).
fn validate(spec: &PipelineSpec, field: &str, params: &[Param]) -> Result<ValidPipeline, String> {
    let task_specs: BTreeMap<String, TaskSpec> = spec
        .tasks
        .iter()
        .filter_map(|t| Some((t.name.clone(), t.task_spec.clone()?)))
        .collect();
    let context = context_variables("run", "ns", "uid", "p");
    let inputs = PipelineInputs {
        spec,
        field,
        task_specs: &task_specs,
        run_params: params,
        run_workspaces: &[],
        timeouts: None,
        task_run_specs: &[],
        context: &context,
        max_tasks: cicd_controller::engine::limits::DEFAULT_MAX_PIPELINE_TASKS,
        max_matrix_combinations: cicd_controller::engine::limits::DEFAULT_MAX_MATRIX_COMBINATIONS,
    };
    validate_pipeline(&inputs).map_err(|e| e.to_string())
}

fn started_params(spec: &PipelineSpec, valid: &ValidPipeline) -> BTreeMap<String, Vec<(String, ParamValue)>> {
    let context = context_variables("run", "ns", "uid", "p");
    let children = BTreeMap::new();
    let planned = schedule(&ScheduleInput {
        spec,
        dag: &valid.dag,
        params: &valid.params,
        context: &context,
        children: &children,
        tasks_timed_out: false,
        matrix_sizes: &BTreeMap::new(),
        max_matrix_combinations: 256,
        workspaces: &valid.workspaces,
    });
    planned
        .start
        .into_iter()
        .map(|s| (s.name, s.params.into_iter().map(|p| (p.name, p.value)).collect()))
        .collect()
}

const PROPAGATING: &str = r#"
  params:
    - name: colour
      default: red
  tasks:
    - name: implicit
      taskSpec:
        steps:
          - {name: s, image: bash, script: 'echo $(params.colour) $(params.size)'}
    - name: explicit
      retries: 3
      params:
        - {name: colour, value: "dark $(params.colour)"}
        - {name: tries, value: "$(context.pipelineTask.retries)"}
      taskSpec:
        params: [{name: colour}, {name: tries}]
        steps:
          - {name: s, image: bash, script: 'echo $(params.colour) $(params.tries)'}
"#;

#[test]
fn pipeline_params_reach_inline_tasks_and_the_inner_scope_wins() {
    let spec = pipeline(PROPAGATING);
    let params = [Param {
        name: "size".into(),
        value: text("large"),
    }];
    let valid = validate(&spec, "spec.pipelineSpec", &params).expect("an embedded pipelineSpec receives size");
    let started = started_params(&spec, &valid);
    assert_eq!(
        started["implicit"],
        vec![("colour".to_string(), text("red")), ("size".to_string(), text("large"))]
    );
    assert_eq!(
        started["explicit"],
        vec![
            ("colour".to_string(), text("dark red")),
            ("tries".to_string(), text("3"))
        ]
    );
}

#[test]
fn a_referenced_pipeline_ignores_run_params_it_does_not_declare() {
    let spec = pipeline(PROPAGATING);
    let params = [Param {
        name: "unused".into(),
        value: text("x"),
    }];
    let body = PROPAGATING.replace(" $(params.size)", "");
    let spec_without_size = pipeline(&body);
    let valid = validate(&spec_without_size, "MyPipeline \"p\": spec", &params).expect("extra params are ignored");
    assert!(!valid.params.contains_key("unused"));
    // ...but they do not reach it either: reading one is an error.
    let error = validate(&spec, "MyPipeline \"p\": spec", &[]).expect_err("size is not declared");
    assert!(
        error.contains(
            "spec.tasks[0].taskSpec: $(params.size): neither the taskSpec nor the pipeline declares a param \"size\""
        ),
        "{error}"
    );
}

fn pod(phase: &str, steps: &[(&str, Option<i32>)]) -> Pod {
    let statuses: Vec<serde_json::Value> = steps
        .iter()
        .map(|(name, exit)| {
            let state = match exit {
                Some(code) => json!({ "terminated": { "exitCode": code, "reason": "Completed" } }),
                None => json!({ "running": {} }),
            };
            json!({ "name": format!("step-{name}"), "image": "bash", "imageID": "", "ready": false, "restartCount": 0, "state": state })
        })
        .collect();
    serde_json::from_value(json!({
        "metadata": { "name": "r-pod" },
        "status": { "phase": phase, "containerStatuses": statuses },
    }))
    .expect("a pod")
}

#[test]
fn the_outcome_does_not_wait_for_a_stopping_sidecar() {
    let task: TaskSpec = serde_json::from_value(json!({
        "steps": [
            { "name": "a", "image": "bash", "script": "true" },
            { "name": "b", "image": "bash", "script": "true" },
        ],
    }))
    .expect("task");
    // The pod stays Running while its sidecar takes its grace period.
    let done = read_pod(
        &task,
        &pod("Running", &[("a", Some(0)), ("b", Some(0))]),
        false,
        &FetchedResults::default(),
    );
    assert_eq!(done.succeeded, Succeeded::True, "{}", done.message);
    let failed = read_pod(
        &task,
        &pod("Running", &[("a", Some(0)), ("b", Some(3))]),
        false,
        &FetchedResults::default(),
    );
    assert_eq!(failed.succeeded, Succeeded::False, "{}", failed.message);
    let running = read_pod(
        &task,
        &pod("Running", &[("a", Some(0)), ("b", None)]),
        false,
        &FetchedResults::default(),
    );
    assert_eq!(running.succeeded, Succeeded::Unknown, "a step still runs");
}

#[test]
fn a_partial_object_param_takes_the_missing_keys_from_its_default() {
    let spec = pipeline(
        r#"
  tasks:
    - name: t
      params:
        - name: repo
          value: {url: "git://example/app"}
      taskSpec:
        params:
          - name: repo
            type: object
            properties: {url: {}, branch: {}}
            default: {url: "git://example/default", branch: main}
        steps:
          - {name: s, image: bash, script: 'echo $(params.repo.url) $(params.repo.branch)'}
"#,
    );
    validate(&spec, "spec.pipelineSpec", &[]).expect("the default fills in branch");
    let merged = ParamValue::Object(BTreeMap::from([
        ("branch".to_string(), "main".to_string()),
        ("url".to_string(), "git://example/app".to_string()),
    ]));
    let task: TaskSpec = spec.tasks[0].task_spec.clone().expect("inline");
    let given = [Param {
        name: "repo".into(),
        value: ParamValue::Object(BTreeMap::from([("url".to_string(), "git://example/app".to_string())])),
    }];
    let mut errors = cicd_controller::engine::errors::ValidationErrors::default();
    let resolved = cicd_controller::engine::validate::resolve_params(&task.params, &given, "spec.params", &mut errors);
    assert!(errors.is_empty(), "{errors}");
    assert_eq!(resolved["repo"], merged);
}

/// Task `make` declares an object result with `result_keys`; task `use`
/// passes it whole to an object param that needs `url` and `commit`.
fn object_result_passed_whole(result_keys: &str) -> PipelineSpec {
    pipeline(&format!(
        r#"
  tasks:
    - name: make
      taskSpec:
        results:
          - {{name: repo, type: object, properties: {result_keys}}}
        steps:
          - {{name: s, image: bash, script: 'true'}}
    - name: use
      params:
        - {{name: repo, value: "$(tasks.make.results.repo[*])"}}
      taskSpec:
        params:
          - {{name: repo, type: object, properties: {{url: {{}}, commit: {{}}}}}}
        steps:
          - {{name: s, image: bash, script: 'echo $(params.repo.url)'}}
"#
    ))
}

#[test]
fn a_whole_object_result_passed_on_is_taken_to_have_its_declared_keys() {
    let spec = object_result_passed_whole("{url: {}, commit: {}}");
    validate(&spec, "spec.pipelineSpec", &[]).expect("the result's declared keys are the param's");
    // A key the result does not declare is still refused.
    let missing = object_result_passed_whole("{url: {}}");
    let error = validate(&missing, "spec.pipelineSpec", &[]).expect_err("commit is not declared");
    assert!(error.contains("missing key(s) commit"), "{error}");
}

#[test]
fn a_sidecar_mounts_a_workspace_by_its_volume_variable() {
    let pod = render(&format!(
        r#"{HEAD}
kind: MyTaskRun
metadata: {{name: r}}
spec:
  workspaces: [{{name: signals, emptyDir: {{}}}}]
  taskSpec:
    workspaces: [{{name: signals}}]
    steps:
      - {{name: s, image: bash, script: 'ls $(workspaces.signals.path)'}}
    sidecars:
      - name: side
        image: bash
        command: [sleep, "10"]
        volumeMounts:
          - {{name: $(workspaces.signals.volume), mountPath: $(workspaces.signals.path)}}
"#
    ))
    .expect("renders");
    let spec = pod_spec_of(&pod);
    let sidecar = spec
        .init_containers
        .iter()
        .flatten()
        .find(|c| c.name == "sidecar-side")
        .expect("the sidecar");
    let mount = sidecar
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.mount_path == "/workspace/signals")
        .expect("the workspace's mount");
    let volume = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == mount.name)
        .expect("a pod volume of that name");
    assert!(volume.empty_dir.is_some(), "{volume:?}");
}

#[test]
fn a_pipeline_knows_whether_its_workspaces_are_bound_and_leaves_their_path_to_the_task() {
    let spec = pipeline(
        r#"
  workspaces:
    - {name: cache, optional: true}
    - {name: source, optional: true}
  tasks:
    - name: warm
      when:
        - {input: "$(workspaces.cache.bound)", operator: in, values: ["true"]}
      taskSpec:
        steps:
          - {name: s, image: bash, script: 'true'}
    - name: build
      params:
        - {name: cached, value: "$(workspaces.cache.bound)"}
        - {name: dockerfile, value: "$(workspaces.source.path)/Dockerfile"}
      workspaces: [{name: source, workspace: source}]
      taskSpec:
        params: [{name: cached}, {name: dockerfile}]
        workspaces: [{name: source, optional: true}]
        steps:
          - {name: s, image: bash, script: 'echo $(params.cached) $(params.dockerfile)'}
"#,
    );
    let valid = validate(&spec, "spec.pipelineSpec", &[]).expect("valid");
    assert_eq!(
        valid.workspaces,
        BTreeMap::from([("cache".to_string(), false), ("source".to_string(), false)])
    );
    let started = started_params(&spec, &valid);
    assert!(!started.contains_key("warm"), "the cache is not bound: {started:?}");
    assert_eq!(
        started["build"],
        [
            ("cached".to_string(), text("false")),
            ("dockerfile".to_string(), text("$(workspaces.source.path)/Dockerfile")),
        ]
    );
    let unknown = pipeline(
        r#"
  tasks:
    - name: t
      params: [{name: p, value: "$(workspaces.nope.bound)"}, {name: q, value: "$(workspaces.source.path)"}]
      taskSpec:
        params: [{name: p}, {name: q}]
        steps:
          - {name: s, image: bash, script: 'true'}
"#,
    );
    let error = validate(&unknown, "spec.pipelineSpec", &[]).expect_err("no such workspace");
    assert!(
        error.contains("the pipeline declares no workspace \"nope\" (declared: none)"),
        "{error}"
    );
}

#[test]
fn a_step_naming_tektons_home_or_results_path_gets_them_as_ours() {
    let pod = render(&format!(
        r#"{HEAD}
kind: MyTaskRun
metadata: {{name: r}}
spec:
  taskSpec:
    results: [{{name: exists}}]
    steps:
      - {{name: plain, image: bash, script: 'true'}}
      - name: tekton-paths
        image: bash
        script: |
          echo hi > /tekton/home/note
          echo -n yes | tee /tekton/results/exists
"#
    ))
    .expect("renders");
    let spec = pod_spec_of(&pod);
    let mounts_at = |container: &str, path: &str| {
        mounts_of(&spec, container)
            .into_iter()
            .filter(|m| m.mount_path == path)
            .map(|m| (m.name.clone(), m.sub_path.clone()))
            .collect::<Vec<_>>()
    };
    assert!(mounts_at("step-plain", "/tekton/home").is_empty());
    assert!(mounts_at("step-plain", "/tekton/results").is_empty());
    assert_eq!(
        mounts_at("step-tekton-paths", "/tekton/home"),
        mounts_at("step-tekton-paths", "/cicd/home")
    );
    assert_eq!(
        mounts_at("step-tekton-paths", "/tekton/results"),
        mounts_at("step-tekton-paths", "/cicd/results")
    );
    assert_eq!(mounts_at("step-tekton-paths", "/tekton/results").len(), 1);
}

#[test]
fn a_step_naming_tektons_steps_dir_sees_every_steps_hand_off_directory_writable_only_its_own() {
    let pod = render(&format!(
        r#"{HEAD}
kind: MyTaskRun
metadata: {{name: r}}
spec:
  taskSpec:
    steps:
      - {{name: build, image: bash, script: 'exit 3', onError: continue}}
      - name: report
        image: bash
        script: |
          cat /tekton/steps/step-build/exitCode
          echo -n ok > /tekton/steps/step-report/results/note
"#
    ))
    .expect("renders");
    let spec = pod_spec_of(&pod);
    // (path, volume, subPath, read-only) of a step's mounts under /tekton/steps.
    let tekton_steps_mounts = |container: &str| {
        mounts_of(&spec, container)
            .into_iter()
            .filter(|m| m.mount_path.starts_with("/tekton/steps/"))
            .map(|m| {
                (
                    m.mount_path.clone(),
                    m.name.clone(),
                    m.sub_path.clone(),
                    m.read_only == Some(true),
                )
            })
            .collect::<Vec<_>>()
    };
    assert!(
        tekton_steps_mounts("step-build").is_empty(),
        "build does not name /tekton/steps"
    );
    let own = |container: &str, path: &str| {
        let found = mounts_of(&spec, container).into_iter().find(|m| m.mount_path == path);
        let found = found.expect("the step's own hand-off mount");
        (found.name.clone(), found.sub_path.clone())
    };
    let (run_volume, build) = own("step-build", "/cicd/run/0");
    let (_, report) = own("step-report", "/cicd/run/1");
    let at = |path: &str, sub_path: &Option<String>, read_only: bool| {
        (path.to_string(), run_volume.clone(), sub_path.clone(), read_only)
    };
    assert_eq!(
        tekton_steps_mounts("step-report"),
        vec![
            at("/tekton/steps/step-build", &build, true),
            at("/tekton/steps/0", &build, true),
            at("/tekton/steps/step-report", &report, false),
            at("/tekton/steps/1", &report, false),
        ]
    );
}

#[test]
fn a_child_runs_own_context_passes_through_a_pipeline_task_param() {
    let spec = pipeline(
        r#"
  tasks:
    - name: t
      retries: 2
      params:
        - {name: attempt, value: "$(context.task.retry-count)"}
        - {name: run, value: "$(context.taskRun.name)"}
      taskSpec:
        params: [{name: attempt}, {name: run}]
        steps:
          - {name: s, image: bash, script: 'echo $(params.attempt) $(params.run)'}
"#,
    );
    let valid = validate(&spec, "spec.pipelineSpec", &[]).expect("left for the child");
    let started = started_params(&spec, &valid);
    assert_eq!(
        started["t"],
        [
            ("attempt".to_string(), text("$(context.task.retry-count)")),
            ("run".to_string(), text("$(context.taskRun.name)")),
        ]
    );
    let unknown = pipeline(
        r#"
  tasks:
    - name: t
      params: [{name: p, value: "$(context.nope)"}]
      taskSpec:
        params: [{name: p}]
        steps:
          - {name: s, image: bash, script: 'true'}
"#,
    );
    let error = validate(&unknown, "spec.pipelineSpec", &[]).expect_err("unknown");
    assert!(error.contains("unknown context variable"), "{error}");
}

#[test]
fn a_named_pipeline_s_inline_task_gets_the_pipeline_workspace_it_reads() {
    let rendered = render(
        r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyPipeline
metadata: {name: lister}
spec:
  workspaces: [{name: shared-data}]
  tasks:
    - name: list
      taskSpec:
        steps:
          - {name: ls, image: bash, command: [ls], args: ["$(workspaces.shared-data.path)"]}
---
apiVersion: cicdoperator.ning1875.io/v1
kind: MyPipelineRun
metadata: {name: lister-run}
spec:
  pipelineRef: lister
  workspaces:
    - {name: shared-data, emptyDir: {}}
"#,
    )
    .unwrap_or_else(|error| panic!("propagated: {error}"));
    let pod = pod_spec_of(&rendered);
    let step = &pod.containers[0];
    assert!(
        step.args
            .iter()
            .flatten()
            .any(|arg| arg.contains("/workspace/shared-data")),
        "{rendered}"
    );
    let mounted: Vec<&str> = step
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| m.mount_path.as_str())
        .collect();
    assert!(mounted.contains(&"/workspace/shared-data"), "{mounted:?}");
}
