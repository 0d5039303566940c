//! Validation and substitution of a MyTaskRun against its MyTask.
//!
//! The first half feeds BAD inputs and checks that the error points at the
//! exact field and names the offending value, so a user can fix it without
//! guessing. The second half checks what GOOD inputs turn into.

use std::time::Duration;

use cicd_controller::api::{MyTaskRun, ParamValue, StepActionSpec, TaskRunSpec, TaskSpec};
use cicd_controller::engine::errors::{FieldError, ValidationErrors};
use cicd_controller::engine::resolve::ResolvedTaskRun;
use cicd_controller::engine::step_action::StepActions;
use cicd_controller::engine::validate::{RunVolumes, validate_run_spec, validate_task};
use cicd_controller::manifests::Manifests;
use cicd_controller::plan::{AttemptInputs, TaskSource, plan_task_run, plan_task_run_with};
use cicd_controller::pod::render::RenderSettings;
use serde_json::{Value, json};

const IMAGE: &str = "127.0.0.1:5000/cicd/bash:5";
const ONE_HOUR: Duration = Duration::from_secs(3600);

// ---------------------------------------------------------------------------
// Helpers: build runs and tasks from small JSON snippets.
// ---------------------------------------------------------------------------

/// Adds (or replaces) the top-level keys of `extra` in `base`.
fn merged(mut base: Value, extra: Value) -> Value {
    if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), extra) {
        base.extend(extra);
    }
    base
}

/// A valid task with one step `main`, plus whatever `extra` sets.
fn task(extra: Value) -> Value {
    merged(
        json!({ "steps": [{ "name": "main", "image": IMAGE, "script": "echo hi" }] }),
        extra,
    )
}

/// A task whose only step runs `script`, plus whatever `extra` sets.
fn task_with_script(script: &str, extra: Value) -> Value {
    merged(
        json!({ "steps": [{ "name": "main", "image": IMAGE, "script": script }] }),
        extra,
    )
}

/// A MyTaskRun named `run-1` with the given task inline and `spec` fields.
fn inline_run(task: Value, spec: Value) -> MyTaskRun {
    let document = json!({
        "apiVersion": "cicdoperator.ning1875.io/v1",
        "kind": "MyTaskRun",
        "metadata": { "name": "run-1", "namespace": "ci", "uid": "uid-1" },
        "spec": merged(json!({ "taskSpec": task }), spec),
    });
    serde_json::from_value(document).expect("the test builds a decodable MyTaskRun")
}

/// Validates and resolves a run whose task is inline.
fn resolve_inline(run: &MyTaskRun) -> Result<ResolvedTaskRun, ValidationErrors> {
    let task = run.spec.task_spec.clone().expect("an inline run");
    plan(run, &task, TaskSource::Inline)
}

fn plan(run: &MyTaskRun, task: &TaskSpec, source: TaskSource<'_>) -> Result<ResolvedTaskRun, ValidationErrors> {
    let settings = RenderSettings {
        entrypoint_image: "entrypoint:test".into(),
        ..Default::default()
    };
    plan_task_run(run, task, source, 0, ONE_HOUR, &settings).map(|plan| plan.resolved)
}

/// Resolves the first MyTaskRun of some YAML against the MyTask it names.
fn resolve_yaml(yaml: &str) -> Result<ResolvedTaskRun, ValidationErrors> {
    let mut manifests = Manifests::default();
    manifests.add_yaml("test.yaml", yaml).expect("the test YAML decodes");
    let run = manifests.task_runs[0].clone();
    let name = run.spec.task_ref.clone().expect("a taskRef");
    let task = manifests
        .task(&name)
        .expect("the named task is in the YAML")
        .spec
        .clone();
    plan(&run, &task, TaskSource::Named(&name))
}

fn errors_of(result: Result<ResolvedTaskRun, ValidationErrors>) -> Vec<FieldError> {
    match result {
        Ok(_) => panic!("expected validation errors, but the run was accepted"),
        Err(errors) => errors.0,
    }
}

/// Asserts that one of the errors is at exactly `field` and that its
/// message contains every one of `needles`.
#[track_caller]
fn assert_error(result: Result<ResolvedTaskRun, ValidationErrors>, field: &str, needles: &[&str]) {
    let errors = errors_of(result);
    let found = errors
        .iter()
        .any(|e| e.field == field && needles.iter().all(|needle| e.message.contains(needle)));
    let listing: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
    assert!(
        found,
        "no error at {field:?} mentioning {needles:?}; the errors were:\n{}",
        listing.join("\n")
    );
}

fn resolved_ok(result: Result<ResolvedTaskRun, ValidationErrors>) -> ResolvedTaskRun {
    result.unwrap_or_else(|errors| panic!("expected the run to be valid, got: {errors}"))
}

fn script_of(resolved: &ResolvedTaskRun, step: usize) -> &str {
    resolved.steps[step].script.as_deref().expect("a script step")
}

// ---------------------------------------------------------------------------
// Bad references in scripts, args and other text.
// ---------------------------------------------------------------------------

#[test]
fn unknown_param_reference_names_the_param_and_the_declared_ones() {
    let task = task_with_script(
        "echo $(params.nope)",
        json!({ "params": [{ "name": "known", "default": "x" }] }),
    );
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.taskSpec.steps[0].script",
        &["$(params.nope)", "\"nope\"", "declared: known"],
    );
}

#[test]
fn unknown_result_reference_names_the_result() {
    let task = task_with_script(
        "echo x > $(results.digest.path)",
        json!({ "results": [{ "name": "url" }] }),
    );
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.taskSpec.steps[0].script",
        &["$(results.digest.path)", "\"digest\"", "declared: url"],
    );
}

#[test]
fn unknown_result_field_is_rejected() {
    let task = task_with_script("cat $(results.url.size)", json!({ "results": [{ "name": "url" }] }));
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.taskSpec.steps[0].script",
        &["$(results.url.size)", "\"size\""],
    );
}

#[test]
fn unknown_workspace_reference_names_the_workspace() {
    let task = task_with_script("ls $(workspaces.cache.path)", json!({}));
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.taskSpec.steps[0].script",
        &["$(workspaces.cache.path)", "\"cache\""],
    );
}

#[test]
fn a_step_or_sidecar_may_name_only_declared_workspaces_once_at_an_absolute_path() {
    let task = task(json!({
        "workspaces": [{ "name": "source" }, { "name": "token" }],
        "steps": [{ "name": "main", "image": IMAGE, "script": "true",
                    "workspaces": [{ "name": "source" }, { "name": "cache" }, { "name": "source" }] }],
        "sidecars": [{ "name": "agent", "image": IMAGE,
                       "workspaces": [{ "name": "source", "mountPath": "relative" },
                                      { "name": "cache", "mountPath": "/cicd/tools" }] },
                     { "name": "other", "image": IMAGE,
                       "workspaces": [{ "name": "token", "mountPath": "/workspace/source/" }] }],
    }));
    let run = inline_run(
        task,
        json!({ "workspaces": [{ "name": "source", "emptyDir": {} }, { "name": "token", "emptyDir": {} }] }),
    );
    let errors = errors_of(resolve_inline(&run));
    let at = |field: &str| {
        errors
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.clone())
            .unwrap_or_else(|| panic!("no error at {field}: {errors:?}"))
    };
    assert!(at("spec.taskSpec.steps[0].workspaces[1].name").contains("\"cache\" is not declared"));
    assert!(at("spec.taskSpec.steps[0].workspaces[2].name").contains("named twice"));
    assert!(at("spec.taskSpec.sidecars[0].workspaces[0].mountPath").contains("\"relative\" must be an absolute path"));
    assert!(at("spec.taskSpec.sidecars[0].workspaces[1].mountPath").contains("inside /cicd"));
    assert!(at("spec.taskSpec.sidecars[1].workspaces[0].mountPath").contains("where workspace \"source\" is mounted"));
    assert_eq!(errors.len(), 6, "{errors:?}");
}

#[test]
fn the_legacy_inputs_params_form_is_substituted_like_params() {
    let task = task_with_script(
        "echo $(inputs.params.who) $(params.who)",
        json!({ "params": [{ "name": "who", "default": "world" }] }),
    );
    let resolved = resolved_ok(resolve_inline(&inline_run(task, json!({}))));
    assert_eq!(script_of(&resolved, 0), "echo world world");
}

#[test]
fn a_step_s_exit_code_path_is_its_hand_off_file_by_name_or_container_name() {
    let task = json!({ "steps": [
        { "name": "probe", "image": IMAGE, "script": "exit 3", "onError": "continue" },
        { "name": "check", "image": IMAGE,
          "script": "cat $(steps.step-probe.exitCode.path) $(steps.probe.exitCode.path)" },
    ]});
    let resolved = resolved_ok(resolve_inline(&inline_run(task, json!({}))));
    assert_eq!(script_of(&resolved, 1), "cat /cicd/run/0/exitCode /cicd/run/0/exitCode");
    let task = task_with_script("cat $(steps.nope.exitCode.path)", json!({}));
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.taskSpec.steps[0].script",
        &["no step named \"nope\"", "main"],
    );
}

/// A task of three steps: `build` declares step result `digest`, `push`
/// and `report` read it; `extra` adds task fields.
fn step_results_task(push: Value, extra: Value) -> Value {
    merged(
        json!({ "steps": [
            { "name": "build", "image": IMAGE, "results": [{ "name": "digest" }],
              "script": "printf sha256:1 > $(step.results.digest.path)" },
            push,
            { "name": "report", "image": IMAGE, "command": ["echo", "$(steps.build.results.digest)"] },
        ]}),
        extra,
    )
}

#[test]
fn step_results_are_written_to_the_step_s_own_file_and_read_by_later_steps_at_run_time() {
    let push = json!({ "name": "push", "image": IMAGE, "command": ["push"],
        "args": ["--digest=$(steps.step-build.results.digest)"],
        "env": [{ "name": "DIGEST", "value": "$(steps.build.results.digest)" }] });
    let task = step_results_task(
        push,
        json!({ "results": [{ "name": "image-digest", "value": "$(steps.build.results.digest)" }] }),
    );
    let resolved = resolved_ok(resolve_inline(&inline_run(task, json!({}))));
    let [build, push, report] = &resolved.steps[..] else {
        panic!("three steps")
    };
    assert_eq!(script_of(&resolved, 0), "printf sha256:1 > /cicd/run/0/results/digest");
    assert_eq!(build.step_results, ["digest"]);
    assert_eq!(
        build.results_from_step,
        [("image-digest".to_string(), "/cicd/run/0/results/digest".to_string())]
    );
    // Left as written for the entrypoint, which is told where each is.
    assert_eq!(push.args, ["--digest=$(steps.step-build.results.digest)"]);
    assert_eq!(push.env[0].value.as_deref(), Some("$(steps.build.results.digest)"));
    let file = "/cicd/run/0/results/digest".to_string();
    assert_eq!(
        push.step_result_refs,
        [
            ("steps.build.results.digest".to_string(), file.clone()),
            ("steps.step-build.results.digest".to_string(), file.clone()),
        ]
    );
    assert_eq!(
        report.step_result_refs,
        [("steps.build.results.digest".to_string(), file)]
    );
    assert!(push.results_from_step.is_empty() && push.step_results.is_empty());
}

#[test]
fn step_result_references_name_the_field_and_what_is_wrong() {
    let bad = |push: Value, field: &str, needles: &[&str]| {
        let task = step_results_task(push, json!({}));
        assert_error(resolve_inline(&inline_run(task, json!({}))), field, needles);
    };
    let at = "spec.taskSpec.steps[1]";
    bad(
        json!({ "name": "push", "image": IMAGE, "script": "echo $(steps.build.results.digest)" }),
        &format!("{at}.script"),
        &["known only once step \"build\" ends", "command, args or env"],
    );
    bad(
        json!({ "name": "push", "image": IMAGE, "command": ["x"], "workingDir": "/$(steps.build.results.digest)" }),
        &format!("{at}.workingDir"),
        &["known only once step \"build\" ends"],
    );
    bad(
        json!({ "name": "push", "image": IMAGE, "command": ["echo", "$(steps.report.results.digest)"] }),
        &format!("{at}.command[1]"),
        &["step \"report\" does not run before this step"],
    );
    bad(
        json!({ "name": "push", "image": IMAGE, "command": ["echo", "$(steps.build.results.size)"] }),
        &format!("{at}.command[1]"),
        &["step \"build\" declares no step result \"size\"", "declared: digest"],
    );
    bad(
        json!({ "name": "push", "image": IMAGE, "command": ["echo", "$(step.results.digest.path)"] }),
        &format!("{at}.command[1]"),
        &["this step declares no step result \"digest\""],
    );
    bad(
        json!({ "name": "push", "image": IMAGE, "command": ["x"], "results": [{ "name": "bad name" }] }),
        &format!("{at}.results[0].name"),
        &["step result name \"bad name\" is invalid"],
    );
    bad(
        json!({ "name": "push", "image": IMAGE, "command": ["x"], "results": [{ "name": "v", "value": "x" }] }),
        &format!("{at}.results[0].value"),
        &["value belongs on a task result"],
    );
}

#[test]
fn a_task_result_value_must_name_a_declared_step_result() {
    let push = json!({ "name": "push", "image": IMAGE, "command": ["x"] });
    for (value, needle) in [
        ("sha256:1", "must be exactly one reference"),
        ("$(steps.build.results.digest) ", "must be exactly one reference"),
        ("$(steps.nope.results.digest)", "no step named \"nope\""),
        (
            "$(steps.push.results.digest)",
            "step \"push\" declares no step result \"digest\"",
        ),
    ] {
        let task = step_results_task(push.clone(), json!({ "results": [{ "name": "out", "value": value }] }));
        assert_error(
            resolve_inline(&inline_run(task, json!({}))),
            "spec.taskSpec.results[0].value",
            &[needle],
        );
    }
    let task = step_results_task(
        push,
        json!({ "results": [{ "name": "out", "type": "array", "value": "$(steps.build.results.digest)" }] }),
    );
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.taskSpec.results[0].value",
        &["result \"out\" is of type array but step result \"digest\" is of type string"],
    );
}

/// A task whose first step declares an array and an object step result,
/// and whose second step is `use`.
fn typed_step_results_task(use_step: Value, extra: Value) -> Value {
    merged(
        json!({ "steps": [
            { "name": "build", "image": IMAGE, "command": ["build"],
              "results": [{ "name": "tags", "type": "array" },
                          { "name": "image", "type": "object",
                            "properties": { "url": {"type": "string"}, "digest": {"type": "string"} } }] },
            use_step,
        ]}),
        extra,
    )
}

#[test]
fn array_and_object_step_results_are_taken_whole_by_element_or_by_key() {
    let use_step = json!({ "name": "push", "image": IMAGE, "command": ["push"],
        "args": ["$(steps.build.results.tags[*])", "--first=$(steps.build.results.tags[0])"],
        "env": [{ "name": "URL", "value": "$(steps.build.results.image.url)" }] });
    let task = typed_step_results_task(
        use_step,
        json!({ "results": [{ "name": "tags", "type": "array", "value": "$(steps.build.results.tags)" }] }),
    );
    let resolved = resolved_ok(resolve_inline(&inline_run(task, json!({}))));
    let [build, push] = &resolved.steps[..] else {
        panic!("two steps")
    };
    assert_eq!(build.step_results, ["tags", "image"]);
    assert_eq!(
        build.results_from_step,
        [("tags".to_string(), "/cicd/run/0/results/tags".to_string())]
    );
    // Left as written, for the entrypoint to take apart.
    assert_eq!(
        push.args,
        [
            "$(steps.build.results.tags[*])",
            "--first=$(steps.build.results.tags[0])"
        ]
    );
    assert_eq!(push.env[0].value.as_deref(), Some("$(steps.build.results.image.url)"));
    let file = |name: &str| format!("/cicd/run/0/results/{name}");
    assert_eq!(
        push.step_result_refs,
        [
            ("steps.build.results.image.url".to_string(), file("image")),
            ("steps.build.results.tags[*]".to_string(), file("tags")),
            ("steps.build.results.tags[0]".to_string(), file("tags")),
        ]
    );
}

#[test]
fn a_typed_step_result_is_refused_where_its_type_does_not_fit() {
    let at = "spec.taskSpec.steps[1]";
    for (args, env, field, needle) in [
        (
            json!(["$(steps.build.results.tags)"]),
            json!([]),
            "args[0]",
            "\"tags\" is an array: take every element with [*]",
        ),
        (
            json!(["pre-$(steps.build.results.tags[*])"]),
            json!([]),
            "args[0]",
            "can only stand alone as one item",
        ),
        (
            json!([]),
            json!([{ "name": "T", "value": "$(steps.build.results.tags[*])" }]),
            "env[0].value",
            "can only stand alone as one item",
        ),
        (
            json!(["$(steps.build.results.image)"]),
            json!([]),
            "args[0]",
            "\"image\" is an object: take one key with .<key>",
        ),
        (
            json!(["$(steps.build.results.image.tag)"]),
            json!([]),
            "args[0]",
            "declares no key \"tag\" (properties: digest, url)",
        ),
        (
            json!(["$(steps.build.results.tags.x)"]),
            json!([]),
            "args[0]",
            "\"tags\" is an array",
        ),
    ] {
        let use_step = json!({ "name": "push", "image": IMAGE, "command": ["push"], "args": args, "env": env });
        let task = typed_step_results_task(use_step, json!({}));
        assert_error(
            resolve_inline(&inline_run(task, json!({}))),
            &format!("{at}.{field}"),
            &[needle],
        );
    }
}

/// Resolves an inline run whose steps may run the given step actions
/// (name, spec as JSON).
fn resolve_with_actions(run: &MyTaskRun, actions: &[(&str, Value)]) -> Result<ResolvedTaskRun, ValidationErrors> {
    let task = run.spec.task_spec.clone().expect("an inline run");
    let actions: StepActions = actions
        .iter()
        .map(|(name, spec)| {
            let decoded = serde_json::from_value::<StepActionSpec>(spec.clone()).map_err(|e| e.to_string());
            (name.to_string(), decoded)
        })
        .collect();
    let settings = RenderSettings::default();
    let inputs = AttemptInputs {
        step_actions: actions,
        ..AttemptInputs::default()
    };
    plan_task_run_with(run, &task, TaskSource::Inline, 0, (ONE_HOUR, &settings), &inputs).map(|plan| plan.resolved)
}

fn digest_action() -> Value {
    json!({
        "image": IMAGE,
        "params": [{ "name": "path" }, { "name": "flags", "type": "array", "default": ["-b"] }],
        "results": [{ "name": "digest" }],
        "command": ["sha256sum", "$(params.flags[*])", "$(params.path)"],
        "env": [{ "name": "OUT", "value": "$(step.results.digest.path)" }],
        "workingDir": "$(workspaces.source.path)",
    })
}

#[test]
fn a_step_action_s_fields_and_results_become_the_step_s_with_its_params() {
    let task = json!({
        "params": [{ "name": "file", "default": "app.tar" }],
        "workspaces": [{ "name": "source" }],
        "results": [{ "name": "digest", "value": "$(steps.hash.results.digest)" }],
        "steps": [{ "name": "hash", "ref": { "name": "sha" }, "timeout": "1m",
                    "params": [{ "name": "path", "value": "out/$(params.file)" }] }],
    });
    let run = inline_run(task, json!({ "workspaces": [{ "name": "source", "emptyDir": {} }] }));
    let resolved = resolved_ok(resolve_with_actions(&run, &[("sha", digest_action())]));
    let step = &resolved.steps[0];
    assert_eq!(step.image, IMAGE);
    assert_eq!(
        step.command,
        ["sha256sum", "-b", "out/app.tar"],
        "action params, then the task's"
    );
    assert_eq!(step.env[0].value.as_deref(), Some("/cicd/run/0/results/digest"));
    assert_eq!(step.working_dir, "/workspace/source");
    assert_eq!(step.timeout.as_deref(), Some("1m"), "the step's own");
    assert_eq!(step.step_results, ["digest"]);
    assert_eq!(step.results_from_step[0].0, "digest");
    assert!(
        resolved.task.steps[0].step_ref.is_none(),
        "the snapshot holds the inlined step"
    );
}

#[test]
fn a_step_action_default_may_name_another_of_its_params() {
    let action = json!({
        "image": IMAGE,
        "params": [
            { "name": "message", "default": "hello" },
            { "name": "greeting", "default": "$(params.message) world" },
            { "name": "words", "type": "array", "default": ["$(params.message)", "there"] },
        ],
        "command": ["echo", "$(params.greeting)", "$(params.words[*])", "$(context.taskRun.name)"],
    });
    let given = |params: Value| {
        let task = json!({ "steps": [{ "name": "say", "ref": { "name": "greet" }, "params": params }] });
        let run = inline_run(task, json!({}));
        resolved_ok(resolve_with_actions(&run, &[("greet", action.clone())])).steps[0]
            .command
            .clone()
    };
    assert_eq!(
        given(json!([{ "name": "message", "value": "hi" }]))[..4],
        ["echo", "hi world", "hi", "there"]
    );
    assert_eq!(given(json!([]))[..4], ["echo", "hello world", "hello", "there"]);
    assert_eq!(
        given(json!([{ "name": "message", "value": "hi" }, { "name": "greeting", "value": "hey" }]))[1],
        "hey",
        "a value the step gives wins over the default"
    );
}

#[test]
fn a_step_result_given_as_a_step_action_param_reaches_its_command_at_run_time() {
    let task = json!({
        "workspaces": [{ "name": "source" }],
        "steps": [
            { "name": "pick", "image": IMAGE, "results": [{ "name": "file" }],
              "script": "echo -n app.tar > $(step.results.file.path)" },
            { "name": "hash", "ref": { "name": "sha" },
              "params": [{ "name": "path", "value": "$(steps.pick.results.file)" }] },
        ],
    });
    let run = inline_run(task, json!({ "workspaces": [{ "name": "source", "emptyDir": {} }] }));
    let resolved = resolved_ok(resolve_with_actions(&run, &[("sha", digest_action())]));
    let step = &resolved.steps[1];
    assert_eq!(step.command, ["sha256sum", "-b", "$(steps.pick.results.file)"]);
    assert_eq!(
        step.step_result_refs,
        [(
            "steps.pick.results.file".to_string(),
            "/cicd/run/0/results/file".to_string()
        )]
    );
}

#[test]
fn whole_array_and_object_references_given_as_step_action_params_keep_their_parts() {
    let action = json!({
        "image": IMAGE,
        "params": [{ "name": "tags", "type": "array" },
                   { "name": "image", "type": "object", "properties": { "url": {}, "digest": {} } }],
        "command": ["push", "$(params.tags[*])", "--first=$(params.tags[0])", "--url=$(params.image.url)"],
    });
    let task = json!({
        "params": [{ "name": "tags", "type": "array" }],
        "steps": [
            { "name": "build", "image": IMAGE, "command": ["build"],
              "results": [{ "name": "image", "type": "object", "properties": { "url": {}, "digest": {} } }] },
            { "name": "push", "ref": { "name": "pusher" },
              "params": [{ "name": "tags", "value": "$(params.tags[*])" },
                         { "name": "image", "value": "$(steps.build.results.image[*])" }] },
        ],
    });
    let run = inline_run(task, json!({ "params": [{ "name": "tags", "value": ["v1", "v2"] }] }));
    let resolved = resolved_ok(resolve_with_actions(&run, &[("pusher", action)]));
    let step = &resolved.steps[1];
    // The task's array is spread now; the step result's key is read by
    // the entrypoint when the step starts.
    assert_eq!(
        step.command,
        [
            "push",
            "v1",
            "v2",
            "--first=v1",
            "--url=$(steps.build.results.image.url)"
        ]
    );
    assert_eq!(
        step.step_result_refs,
        [(
            "steps.build.results.image.url".to_string(),
            "/cicd/run/0/results/image".to_string()
        )]
    );
}

#[test]
fn an_object_given_whole_to_a_step_action_takes_the_action_s_defaults_for_keys_it_lacks() {
    let action = json!({
        "image": IMAGE,
        "params": [
            { "name": "target", "type": "object", "properties": { "host": {}, "repo": {}, "tag": {} },
              "default": { "host": "action-host", "repo": "action-repo", "tag": "action-tag" } },
            { "name": "mode", "type": "object", "properties": { "level": {} },
              "default": { "level": "action-level" } },
        ],
        "command": ["push", "$(params.target.host)", "$(params.target.repo)", "$(params.target.tag)",
                    "$(params.mode.level)"],
    });
    let task = json!({
        "params": [{ "name": "where", "type": "object", "properties": { "host": {}, "repo": {} },
                     "default": { "host": "task-host", "repo": "task-repo" } }],
        "steps": [{ "name": "push", "ref": { "name": "pusher" },
                    "params": [{ "name": "target", "value": "$(params.where[*])" },
                               { "name": "mode", "value": "$(params.loud[*])" }] }],
    });
    // `loud` is not declared: it reaches the inline taskSpec by propagation,
    // a string where the action wants an object.
    let run = inline_run(
        task,
        json!({ "params": [{ "name": "where", "value": { "repo": "run-repo" } },
                           { "name": "loud", "value": "yes" }] }),
    );
    let resolved = resolved_ok(resolve_with_actions(&run, &[("pusher", action)]));
    assert_eq!(
        resolved.steps[0].command,
        ["push", "task-host", "run-repo", "action-tag", "action-level"],
        "the run's key, then the task's default, then the action's"
    );
}

#[test]
fn artifact_paths_are_files_the_step_reports_with_its_results() {
    let task = json!({
        "steps": [
            { "name": "build", "image": IMAGE,
              "script": "write > $(step.artifacts.path)\nwrite > $(artifacts.path)" },
            { "name": "test", "image": IMAGE, "command": ["test"] },
        ],
    });
    let resolved = resolved_ok(resolve_inline(&inline_run(task, json!({}))));
    assert_eq!(
        resolved.steps[0].script.as_deref(),
        Some("write > /cicd/run/0/results/cicd.step-artifacts\nwrite > /cicd/run/0/results/cicd.task-artifacts")
    );
    assert_eq!(
        resolved.steps[0].step_results,
        ["cicd.step-artifacts", "cicd.task-artifacts"]
    );
    assert!(resolved.steps[1].step_results.is_empty(), "only a step that names them");
}

#[test]
fn a_step_s_artifacts_cannot_be_read_by_a_later_step_yet() {
    let task = json!({
        "steps": [
            { "name": "build", "image": IMAGE, "script": "write > $(step.artifacts.path)" },
            { "name": "test", "image": IMAGE, "command": ["test", "$(steps.build.outputs.image)"] },
        ],
    });
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.taskSpec.steps[1].command[1]",
        &["$(steps.build.outputs.image)"],
    );
}

#[test]
fn before_its_action_is_inlined_a_step_s_results_are_taken_on_trust() {
    // How a pipeline sees an inline taskSpec: no MyStepAction is read yet.
    let spec: TaskSpec = serde_json::from_value(json!({
        "results": [{ "name": "digest", "value": "$(steps.hash.results.digest)" }],
        "steps": [{ "name": "hash", "ref": { "name": "sha" } }],
    }))
    .expect("a task");
    let mut errors = ValidationErrors::default();
    validate_task(&spec, "spec.tasks[0].taskSpec", RunVolumes::Unknown, &mut errors);
    assert!(errors.0.is_empty(), "{errors}");
}

#[test]
fn step_action_problems_name_the_field() {
    let step = |extra: Value| {
        let mut step =
            json!({ "name": "hash", "ref": { "name": "sha" }, "params": [{ "name": "path", "value": "x" }] });
        if let (Some(step), Value::Object(extra)) = (step.as_object_mut(), extra) {
            step.extend(extra);
        }
        inline_run(
            json!({ "workspaces": [{ "name": "source", "optional": true }], "steps": [step] }),
            json!({}),
        )
    };
    let at = "spec.taskSpec.steps[0]";
    assert_error(
        resolve_with_actions(&step(json!({})), &[]),
        &format!("{at}.ref.name"),
        &["no MyStepAction named \"sha\""],
    );
    assert_error(
        resolve_with_actions(&step(json!({ "image": IMAGE })), &[("sha", digest_action())]),
        &format!("{at}.image"),
        &["runs step action \"sha\", which sets image"],
    );
    assert_error(
        resolve_with_actions(&step(json!({ "params": [] })), &[("sha", digest_action())]),
        &format!("{at}.params"),
        &["\"path\""],
    );
    let mut broken = digest_action();
    broken["script"] = json!("echo $(params.nope)");
    assert_error(
        resolve_with_actions(&step(json!({})), &[("sha", broken)]),
        "MyStepAction \"sha\": spec.script",
        &["no param named \"nope\""],
    );
    let unreadable = AttemptInputs {
        step_actions: StepActions::from([("sha".to_string(), Err("spec.commnd: unknown field".to_string()))]),
        ..AttemptInputs::default()
    };
    let run = step(json!({}));
    let spec = run.spec.task_spec.clone().expect("inline");
    let settings = RenderSettings::default();
    assert_error(
        plan_task_run_with(&run, &spec, TaskSource::Inline, 0, (ONE_HOUR, &settings), &unreadable).map(|p| p.resolved),
        &format!("{at}.ref.name"),
        &["MyStepAction \"sha\" cannot be read: spec.commnd: unknown field"],
    );
    let plain = inline_run(
        task(
            json!({ "steps": [{ "name": "s", "image": IMAGE, "script": "true", "params": [{ "name": "a", "value": "b" }] }] }),
        ),
        json!({}),
    );
    assert_error(
        resolve_inline(&plain),
        "spec.taskSpec.steps[0].params",
        &["this step has no ref"],
    );
}

#[test]
fn steps_mount_the_run_s_pod_template_volumes_and_bad_ones_are_named() {
    let mounting = |volume: &str| {
        task(json!({
            "volumes": [{ "name": "own", "emptyDir": {} }],
            "steps": [{ "name": "main", "image": IMAGE, "script": "ls /cache",
                        "volumeMounts": [{ "name": volume, "mountPath": "/cache" }] }],
        }))
    };
    let template = |volumes: Value| json!({ "podTemplate": { "volumes": volumes } });
    let cache = json!([{ "name": "cache", "configMap": { "name": "build-cache" } }]);
    resolved_ok(resolve_inline(&inline_run(mounting("cache"), template(cache.clone()))));
    assert_error(
        resolve_inline(&inline_run(mounting("cache"), json!({}))),
        "spec.taskSpec.steps[0].volumeMounts[0].name",
        &["\"cache\"", "neither spec.volumes nor the run's podTemplate.volumes"],
    );
    let bad = json!([
        { "name": "cicd-bin", "emptyDir": {} },
        { "name": "own", "emptyDir": {} },
        { "name": "cache", "emptyDir": {} },
        { "name": "cache", "emptyDir": {} },
    ]);
    let errors = errors_of(resolve_inline(&inline_run(mounting("cache"), template(bad))));
    let at = |index: usize| {
        errors
            .iter()
            .find(|e| e.field == format!("spec.podTemplate.volumes[{index}].name"))
            .map(|e| e.message.clone())
            .unwrap_or_else(|| panic!("no error for volume {index}: {errors:?}"))
    };
    assert!(at(0).contains("reserved"));
    assert!(at(1).contains("the task declares a volume \"own\" itself"));
    assert!(at(3).contains("duplicate volume name \"cache\""));
    assert_eq!(errors.len(), 3, "{errors:?}");
}

#[test]
fn step_and_sidecar_specs_replace_their_resources_and_must_name_one() {
    let spec = task(json!({
        "steps": [
            { "name": "build", "image": IMAGE, "script": "true", "resources": { "limits": { "memory": "1Gi" } } },
            { "name": "push", "image": IMAGE, "script": "true" },
        ],
        "sidecars": [{ "name": "db", "image": IMAGE }],
    }));
    let run = inline_run(
        spec.clone(),
        json!({
            "stepSpecs": [{ "name": "build", "computeResources": { "limits": { "memory": "4Gi" } } }],
            "sidecarSpecs": [{ "name": "db", "computeResources": { "limits": { "cpu": "2" } } }],
        }),
    );
    let resolved = resolved_ok(resolve_inline(&run));
    let limit = |resources: Option<&k8s_openapi::api::core::v1::ResourceRequirements>, key: &str| {
        resources
            .and_then(|r| r.limits.as_ref())
            .and_then(|l| l.get(key))
            .map(|q| q.0.clone())
    };
    assert_eq!(
        limit(resolved.steps[0].resources.as_ref(), "memory").as_deref(),
        Some("4Gi")
    );
    assert_eq!(limit(resolved.steps[1].resources.as_ref(), "memory"), None);
    assert_eq!(
        limit(resolved.sidecars[0].container.resources.as_ref(), "cpu").as_deref(),
        Some("2")
    );

    let bad = inline_run(
        spec,
        json!({
            "computeResources": { "limits": { "memory": "1Gi" } },
            "stepSpecs": [
                { "name": "nope", "computeResources": {} },
                { "name": "push", "computeResources": {} },
                { "name": "push", "computeResources": {} },
            ],
        }),
    );
    let errors = errors_of(resolve_inline(&bad));
    let message = |field: &str| {
        errors
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.clone())
            .unwrap_or_else(|| panic!("no error at {field}: {errors:?}"))
    };
    assert!(message("spec.stepSpecs").contains("not both"));
    assert!(message("spec.stepSpecs[0].name").contains("no step named \"nope\" (steps: build, push)"));
    assert!(message("spec.stepSpecs[2].name").contains("given twice"));
}

#[test]
fn result_properties_belong_to_object_results_only() {
    let task = task(json!({ "results": [{ "name": "tags", "type": "array", "properties": { "a": {} } }] }));
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.taskSpec.results[0].properties",
        &["\"tags\"", "array, not object"],
    );
}

#[test]
fn a_workspace_path_in_a_container_that_mounts_it_elsewhere_is_that_path() {
    let task = task(json!({
        "workspaces": [{ "name": "token" }],
        "steps": [
            { "name": "login", "image": IMAGE, "script": "cat $(workspaces.token.path)/t",
              "workspaces": [{ "name": "token", "mountPath": "/creds" }] },
            { "name": "plain", "image": IMAGE, "script": "ls $(workspaces.token.path)",
              "workspaces": [{ "name": "token" }] },
        ],
        "sidecars": [{ "name": "agent", "image": IMAGE, "script": "cat $(workspaces.token.path)/t",
                       "workspaces": [{ "name": "token", "mountPath": "/agent" }] }],
    }));
    let run = inline_run(task, json!({ "workspaces": [{ "name": "token", "emptyDir": {} }] }));
    let resolved = resolved_ok(resolve_inline(&run));
    assert_eq!(script_of(&resolved, 0), "cat /creds/t");
    assert_eq!(script_of(&resolved, 1), "ls /workspace/token");
    assert_eq!(resolved.sidecars[0].script.as_deref(), Some("cat /agent/t"));
}

#[test]
fn unknown_context_variable_lists_the_known_ones() {
    // In a script an unknown $(context.*) is left to the shell (as in
    // Tekton); in every other field it is an error.
    let task = task(json!({ "steps": [{ "name": "s", "image": "bash", "command": ["echo", "$(context.foo)"] }] }));
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.taskSpec.steps[0].command[1]",
        &["$(context.foo)", "taskRun.name"],
    );
}

#[test]
fn pipeline_task_result_reference_is_invalid_in_a_task() {
    let task = task_with_script("echo $(tasks.build.results.digest)", json!({}));
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.taskSpec.steps[0].script",
        &["$(tasks.build.results.digest)", "MyPipeline"],
    );
}

#[test]
fn array_param_used_as_a_string_in_a_script_is_rejected() {
    let task = task_with_script(
        "ls $(params.files)",
        json!({ "params": [{ "name": "files", "type": "array", "default": ["a"] }] }),
    );
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.taskSpec.steps[0].script",
        &["$(params.files) is an array and can only stand alone as one item of command or args"],
    );
}

#[test]
fn an_array_param_standing_alone_in_args_is_spread_with_or_without_star() {
    let task = task(json!({
        "params": [{ "name": "files", "type": "array", "default": ["a", "b c"] }],
        "steps": [{ "name": "s", "image": IMAGE, "command": ["ls"], "args": ["$(params.files)", "-l", "$(params.files[*])"] }],
    }));
    let resolved = resolved_ok(resolve_inline(&inline_run(task, json!({}))));
    assert_eq!(resolved.steps[0].args, ["a", "b c", "-l", "a", "b c"]);
}

#[test]
fn array_expansion_inside_a_larger_arg_is_rejected() {
    let task = json!({
        "params": [{ "name": "files", "type": "array", "default": ["a", "b"] }],
        "steps": [{ "name": "main", "image": IMAGE, "command": ["ls"], "args": ["-l", "--files=$(params.files[*])"] }],
    });
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.taskSpec.steps[0].args[1]",
        &["$(params.files[*])", "stand alone"],
    );
}

#[test]
fn array_expansion_in_a_script_is_rejected() {
    let task = task_with_script(
        "for f in $(params.files[*]); do echo $f; done",
        json!({ "params": [{ "name": "files", "type": "array", "default": ["a"] }] }),
    );
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.taskSpec.steps[0].script",
        &["$(params.files[*])", "is an array"],
    );
}

#[test]
fn array_index_out_of_range_says_how_many_items_there_are() {
    let task = task_with_script(
        "echo $(params.files[5])",
        json!({ "params": [{ "name": "files", "type": "array", "default": ["a", "b"] }] }),
    );
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.taskSpec.steps[0].script",
        &[
            "$(params.files[5])",
            "index 5 is out of range",
            "\"files\" has 2 item(s)",
        ],
    );
}

#[test]
fn object_param_key_that_does_not_exist_lists_the_keys() {
    let task = task_with_script(
        "echo $(params.target.user)",
        json!({ "params": [{ "name": "target", "type": "object", "default": { "host": "h", "port": "1" } }] }),
    );
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.taskSpec.steps[0].script",
        &["$(params.target.user)", "no key \"user\"", "keys: host, port"],
    );
}

#[test]
fn object_param_used_whole_is_rejected() {
    let task = task_with_script(
        "echo $(params.target)",
        json!({ "params": [{ "name": "target", "type": "object", "default": { "host": "h" } }] }),
    );
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.taskSpec.steps[0].script",
        &["$(params.target)", "\"target\" is an object"],
    );
}

#[test]
fn bad_reference_in_an_env_value_points_at_the_env_var() {
    let task = json!({
        "steps": [{
            "name": "main", "image": IMAGE, "script": "env",
            "env": [{ "name": "A", "value": "1" }, { "name": "B", "value": "$(params.missing)" }],
        }],
    });
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.taskSpec.steps[0].env[1].value",
        &["$(params.missing)"],
    );
}

#[test]
fn errors_in_a_named_task_say_which_task() {
    let yaml = r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTask
metadata: {name: build}
spec:
  steps:
    - name: compile
      image: 127.0.0.1:5000/cicd/bash:5
      script: echo $(params.GOOS)
---
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTaskRun
metadata: {name: build-run}
spec:
  taskRef: build
"#;
    assert_error(
        resolve_yaml(yaml),
        "MyTask \"build\": spec.steps[0].script",
        &["$(params.GOOS)"],
    );
}

// ---------------------------------------------------------------------------
// Params given by the run.
// ---------------------------------------------------------------------------

#[test]
fn missing_required_param_names_it() {
    let task = task(json!({ "params": [{ "name": "IMAGE" }, { "name": "TAG", "default": "latest" }] }));
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.params",
        &["\"IMAGE\"", "required"],
    );
}

#[test]
fn undeclared_param_names_it_and_the_declared_ones() {
    // A MyTask named by taskRef gets only what it declares; an inline
    // taskSpec receives undeclared params (propagation, as in Tekton).
    let task = task(json!({ "params": [{ "name": "IMAGE", "default": "x" }] }));
    let spec: TaskSpec = serde_json::from_value(task.clone()).expect("a task");
    let mut run = inline_run(task, json!({ "params": [{ "name": "IMAGE_URL", "value": "y" }] }));
    assert!(resolve_inline(&run).is_ok(), "an inline taskSpec receives IMAGE_URL");
    run.spec.task_spec = None;
    run.spec.task_ref = Some("t".into());
    assert_error(
        plan(&run, &spec, TaskSource::Named("t")),
        "spec.params[0].name",
        &["\"IMAGE_URL\"", "declared: IMAGE"],
    );
}

#[test]
fn param_given_twice_is_rejected() {
    let task = task(json!({ "params": [{ "name": "A" }] }));
    let run = inline_run(
        task,
        json!({ "params": [{ "name": "A", "value": "1" }, { "name": "A", "value": "2" }] }),
    );
    assert_error(resolve_inline(&run), "spec.params[1].name", &["\"A\"", "twice"]);
}

#[test]
fn string_given_for_an_array_param_is_a_type_mismatch() {
    let task = task(json!({ "params": [{ "name": "files", "type": "array" }] }));
    let run = inline_run(task, json!({ "params": [{ "name": "files", "value": "a.txt" }] }));
    assert_error(
        resolve_inline(&run),
        "spec.params[0].value",
        &["\"files\"", "declared as array", "given is string"],
    );
}

#[test]
fn array_given_for_a_string_param_is_a_type_mismatch() {
    let task = task(json!({ "params": [{ "name": "tag" }] }));
    let run = inline_run(task, json!({ "params": [{ "name": "tag", "value": ["v1", "v2"] }] }));
    assert_error(
        resolve_inline(&run),
        "spec.params[0].value",
        &["\"tag\"", "declared as string", "given is array"],
    );
}

#[test]
fn object_value_missing_a_declared_property_names_the_key() {
    let task = task(json!({
        "params": [{ "name": "target", "type": "object", "properties": { "host": {}, "port": {} } }],
    }));
    let run = inline_run(
        task,
        json!({ "params": [{ "name": "target", "value": { "host": "h" } }] }),
    );
    assert_error(
        resolve_inline(&run),
        "spec.params[0].value",
        &["\"target\"", "missing key(s) port"],
    );
}

#[test]
fn an_object_default_may_lack_keys_the_run_gives() {
    let task = task(json!({
        "params": [{ "name": "repo", "type": "object", "properties": { "url": {}, "commit": {} },
                     "default": { "url": "git://example/app" } }],
    }));
    let given = inline_run(
        task.clone(),
        json!({ "params": [{ "name": "repo", "value": { "commit": "c1" } }] }),
    );
    let resolved = resolved_ok(resolve_inline(&given));
    assert_eq!(
        resolved.params["repo"],
        ParamValue::Object(
            [("commit", "c1"), ("url", "git://example/app")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .into()
        )
    );
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.params",
        &["object param \"repo\" is not given and its default is missing key(s) commit"],
    );
}

// ---------------------------------------------------------------------------
// The task on its own.
// ---------------------------------------------------------------------------

#[test]
fn default_of_the_wrong_type_is_rejected() {
    let task = task(json!({ "params": [{ "name": "files", "type": "array", "default": "a.txt" }] }));
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.taskSpec.params[0].default",
        &["\"files\"", "type array", "default is string"],
    );
}

#[test]
fn has_default_false_with_a_default_is_contradictory() {
    let task = task(json!({ "params": [{ "name": "tag", "default": "x", "hasDefault": false }] }));
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.taskSpec.params[0].hasDefault",
        &["\"tag\""],
    );
}

#[test]
fn duplicate_param_names_are_rejected() {
    let task = task(json!({ "params": [{ "name": "A", "default": "1" }, { "name": "A", "default": "2" }] }));
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.taskSpec.params[1].name",
        &["duplicate param name \"A\""],
    );
}

#[test]
fn duplicate_result_names_are_rejected() {
    let task = task(json!({ "results": [{ "name": "url" }, { "name": "digest" }, { "name": "url" }] }));
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.taskSpec.results[2].name",
        &["duplicate result name \"url\""],
    );
}

#[test]
fn duplicate_workspace_names_are_rejected() {
    let task =
        task(json!({ "workspaces": [{ "name": "src", "optional": true }, { "name": "src", "optional": true }] }));
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.taskSpec.workspaces[1].name",
        &["duplicate workspace name \"src\""],
    );
}

#[test]
fn invalid_param_name_is_rejected() {
    let task = task(json!({ "params": [{ "name": "image.url", "default": "x" }] }));
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.taskSpec.params[0].name",
        &["\"image.url\"", "invalid"],
    );
}

#[test]
fn duplicate_step_names_are_rejected() {
    let task = json!({
        "steps": [
            { "name": "build", "image": IMAGE, "script": "true" },
            { "name": "build", "image": IMAGE, "script": "true" },
        ],
    });
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.taskSpec.steps[1].name",
        &["duplicate step name \"build\""],
    );
}

#[test]
fn step_name_that_is_not_a_dns_label_is_rejected() {
    let task = json!({ "steps": [{ "name": "Build_Image", "image": IMAGE, "script": "true" }] });
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.taskSpec.steps[0].name",
        &["\"Build_Image\"", "invalid"],
    );
}

#[test]
fn step_name_too_long_for_a_container_name_is_rejected() {
    let long = "s".repeat(59);
    let task = json!({ "steps": [{ "name": long, "image": IMAGE, "script": "true" }] });
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.taskSpec.steps[0].name",
        &[&long, "at most 58"],
    );
}

#[test]
fn step_without_an_image_is_rejected() {
    let task = json!({ "steps": [{ "name": "build", "script": "true" }] });
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.taskSpec.steps[0].image",
        &["\"build\"", "no image"],
    );
}

#[test]
fn step_with_both_script_and_command_is_rejected() {
    let task = json!({ "steps": [{ "name": "build", "image": IMAGE, "script": "true", "command": ["make"] }] });
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.taskSpec.steps[0].script",
        &["\"build\"", "both script and command"],
    );
}

#[test]
fn step_with_neither_script_nor_command_needs_its_image_looked_up() {
    let task = json!({ "steps": [{ "name": "build", "image": IMAGE, "args": ["x"] }] });
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.taskSpec.steps[0].image",
        &["\"build\"", "runs image", "own entrypoint", "was not looked up"],
    );
}

#[test]
fn task_without_steps_is_rejected() {
    let task = json!({ "steps": [] });
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.taskSpec.steps",
        &["at least one step"],
    );
}

#[test]
fn bad_step_timeout_quotes_the_value() {
    let task = json!({ "steps": [{ "name": "build", "image": IMAGE, "script": "true", "timeout": "5 minutes" }] });
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.taskSpec.steps[0].timeout",
        &["\"5 minutes\"", "not a duration"],
    );
}

#[test]
fn bad_run_timeout_quotes_the_value() {
    let run = inline_run(task(json!({})), json!({ "timeout": "1d" }));
    assert_error(resolve_inline(&run), "spec.timeout", &["\"1d\"", "not a duration"]);
}

#[test]
fn run_timeout_too_long_to_represent_is_an_error_not_a_crash() {
    let run = inline_run(task(json!({})), json!({ "timeout": "99999999999999999999h" }));
    assert_error(
        resolve_inline(&run),
        "spec.timeout",
        &["\"99999999999999999999h\"", "too long"],
    );
}

#[test]
fn relative_workspace_mount_path_is_rejected() {
    let task = task(json!({ "workspaces": [{ "name": "src", "mountPath": "src", "optional": true }] }));
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.taskSpec.workspaces[0].mountPath",
        &["\"src\"", "absolute"],
    );
}

#[test]
fn reserved_volume_name_is_rejected() {
    let task = task(json!({ "volumes": [{ "name": "cicd-cache", "emptyDir": {} }] }));
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.taskSpec.volumes[0].name",
        &["\"cicd-cache\"", "reserved"],
    );
}

#[test]
fn duplicate_volume_names_are_rejected() {
    let task = task(json!({ "volumes": [{ "name": "cache", "emptyDir": {} }, { "name": "cache", "emptyDir": {} }] }));
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.taskSpec.volumes[1].name",
        &["duplicate volume name \"cache\""],
    );
}

#[test]
fn volume_mount_of_an_undeclared_volume_is_rejected() {
    let task = json!({
        "volumes": [{ "name": "cache", "emptyDir": {} }],
        "steps": [{
            "name": "build", "image": IMAGE, "script": "true",
            "volumeMounts": [{ "name": "cache", "mountPath": "/cache" }, { "name": "docker-sock", "mountPath": "/var/run" }],
        }],
    });
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.taskSpec.steps[0].volumeMounts[1].name",
        &["\"docker-sock\"", "\"build\""],
    );
}

#[test]
fn a_sidecar_with_both_a_script_and_a_command_is_rejected() {
    let task = task(json!({ "sidecars": [{ "name": "db", "image": IMAGE, "script": "serve", "command": ["serve"] }] }));
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.taskSpec.sidecars[0].script",
        &["\"db\"", "both a script and a command"],
    );
}

#[test]
fn own_mounts_inside_cicd_are_rejected_with_their_field() {
    let task = json!({
        "volumes": [{ "name": "cache", "emptyDir": {} }],
        "stepTemplate": { "volumeMounts": [{ "name": "cache", "mountPath": "/cicd" }] },
        "steps": [{
            "name": "build", "image": IMAGE, "script": "true",
            "volumeMounts": [{ "name": "cache", "mountPath": "/cache" }, { "name": "cache", "mountPath": "/cicd/bin/" }],
        }],
        "sidecars": [{ "name": "db", "image": IMAGE, "volumeMounts": [{ "name": "cache", "mountPath": "/cicd/run" }] }],
    });
    let errors = errors_of(resolve_inline(&inline_run(task, json!({}))));
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "spec.taskSpec.sidecars[0].volumeMounts[0].mountPath",
            "spec.taskSpec.stepTemplate.volumeMounts[0].mountPath",
            "spec.taskSpec.steps[0].volumeMounts[1].mountPath",
        ],
        "{errors:?}"
    );
    assert!(errors[2].message.contains("\"/cicd/bin/\"") && errors[2].message.contains("inside /cicd"));
}

// ---------------------------------------------------------------------------
// Workspace bindings.
// ---------------------------------------------------------------------------

#[test]
fn required_workspace_not_bound_names_it() {
    let task = task(json!({ "workspaces": [{ "name": "source" }] }));
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.workspaces",
        &["\"source\"", "required"],
    );
}

#[test]
fn binding_with_two_sources_names_them() {
    let task = task(json!({ "workspaces": [{ "name": "source" }] }));
    let run = inline_run(
        task,
        json!({ "workspaces": [{ "name": "source", "emptyDir": {}, "configMap": { "name": "cm" } }] }),
    );
    assert_error(
        resolve_inline(&run),
        "spec.workspaces[0]",
        &["\"source\"", "2 sources", "emptyDir, configMap"],
    );
}

#[test]
fn binding_without_a_source_is_rejected() {
    let task = task(json!({ "workspaces": [{ "name": "source" }] }));
    let run = inline_run(task, json!({ "workspaces": [{ "name": "source" }] }));
    assert_error(
        resolve_inline(&run),
        "spec.workspaces[0]",
        &["\"source\"", "no volume source"],
    );
}

#[test]
fn sub_path_escaping_the_volume_is_rejected() {
    let task = task(json!({ "workspaces": [{ "name": "source" }] }));
    let run = inline_run(
        task,
        json!({ "workspaces": [{ "name": "source", "emptyDir": {}, "subPath": "cache/../../etc" }] }),
    );
    assert_error(
        resolve_inline(&run),
        "spec.workspaces[0].subPath",
        &["\"cache/../../etc\"", "'..'"],
    );
}

#[test]
fn absolute_sub_path_is_rejected() {
    let task = task(json!({ "workspaces": [{ "name": "source" }] }));
    let run = inline_run(
        task,
        json!({ "workspaces": [{ "name": "source", "emptyDir": {}, "subPath": "/etc" }] }),
    );
    assert_error(
        resolve_inline(&run),
        "spec.workspaces[0].subPath",
        &["\"/etc\"", "relative"],
    );
}

#[test]
fn workspace_bound_twice_is_rejected() {
    let task = task(json!({ "workspaces": [{ "name": "source" }] }));
    let run = inline_run(
        task,
        json!({ "workspaces": [{ "name": "source", "emptyDir": {} }, { "name": "source", "emptyDir": {} }] }),
    );
    assert_error(
        resolve_inline(&run),
        "spec.workspaces[1].name",
        &["\"source\"", "twice"],
    );
}

// ---------------------------------------------------------------------------
// Where the task comes from.
// ---------------------------------------------------------------------------

#[test]
fn task_ref_and_task_spec_together_are_rejected() {
    let run = inline_run(task(json!({})), json!({ "taskRef": "build" }));
    assert_error(resolve_inline(&run), "spec.taskRef", &["not several"]);
}

#[test]
fn neither_task_ref_nor_task_spec_is_rejected() {
    let mut errors = ValidationErrors::default();
    validate_run_spec(&TaskRunSpec::default(), &mut errors);
    assert_eq!(errors.0.len(), 1, "{errors}");
    assert_eq!(errors.0[0].field, "spec.taskRef");
    assert!(errors.0[0].message.contains("taskSpec"), "{errors}");
}

#[test]
fn an_empty_service_account_name_means_the_default_and_a_malformed_one_is_a_field_error() {
    let spec = |name: &str| TaskRunSpec {
        task_ref: Some("build".into()),
        service_account_name: Some(name.into()),
        ..TaskRunSpec::default()
    };
    for fine in ["", "default", "builder", "ci.builder-2"] {
        let mut errors = ValidationErrors::default();
        validate_run_spec(&spec(fine), &mut errors);
        assert!(errors.0.is_empty(), "{fine:?}: {errors}");
    }
    assert_eq!(spec("").service_account(), "default");

    for bad in ["Builder", "a/b", "-x", &"a".repeat(254), &"x.".repeat(5000)] {
        let mut errors = ValidationErrors::default();
        validate_run_spec(&spec(bad), &mut errors);
        assert_eq!(errors.0.len(), 1, "{bad:?}: {errors}");
        assert_eq!(errors.0[0].field, "spec.serviceAccountName");
        assert!(errors.0[0].message.contains("not a ServiceAccount name"), "{errors}");
        assert!(errors.0[0].message.len() < 400, "the name is quoted cut short");
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let task = json!({
        "params": [{ "name": "A" }],
        "steps": [
            { "name": "one", "script": "echo $(params.B)" },
            { "name": "Two", "image": IMAGE, "script": "true", "timeout": "soon" },
        ],
    });
    let run = inline_run(task, json!({ "timeout": "never" }));
    let fields: Vec<String> = errors_of(resolve_inline(&run)).into_iter().map(|e| e.field).collect();
    for expected in [
        "spec.timeout",
        "spec.params",
        "spec.taskSpec.steps[0].image",
        "spec.taskSpec.steps[0].script",
        "spec.taskSpec.steps[1].name",
        "spec.taskSpec.steps[1].timeout",
    ] {
        assert!(
            fields.iter().any(|f| f == expected),
            "no error at {expected}: {fields:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Good inputs: the seed, and what substitution produces.
// ---------------------------------------------------------------------------

const SEED_T1_TR1: &str = include_str!("../../examples/seed-t1-tr1.yaml");
const SEED_T2_TR2: &str = include_str!("../../examples/seed-t2-tr2.yaml");

#[test]
fn seed_run_binding_an_undeclared_workspace_is_accepted_with_a_warning() {
    for (yaml, task) in [(SEED_T1_TR1, "t1"), (SEED_T2_TR2, "t2")] {
        let resolved = resolved_ok(resolve_yaml(yaml));
        assert_eq!(resolved.warnings.len(), 1, "{:?}", resolved.warnings);
        let warning = &resolved.warnings[0];
        assert!(warning.contains("\"myworkspace\""), "{warning}");
        assert!(warning.contains(&format!("\"{task}\"")), "{warning}");
        assert!(warning.contains("/workspace/myworkspace"), "{warning}");
        let workspace = &resolved.workspaces[0];
        assert_eq!(workspace.name, "myworkspace");
        assert_eq!(workspace.mount_path, "/workspace/myworkspace");
        assert!(workspace.binding.as_ref().is_some_and(|b| b.empty_dir.is_some()));
    }
}

#[test]
fn seed_t1_script_gets_params_and_result_path_and_keeps_shell_substitutions() {
    let resolved = resolved_ok(resolve_yaml(SEED_T1_TR1));
    let script = script_of(&resolved, 0);
    assert!(script.contains("image_base_path=registry.cn-beijing.aliyuncs.com/ning1875_haiwai_image/mytask-01\n"));
    // GIT_REVISION is not given: hasDefault with default "" makes it empty.
    assert!(script.contains("git_revision=\n"), "{script}");
    assert!(script.contains(r#"| tee "/cicd/results/IMAGE_URL""#), "{script}");
    assert!(
        script.contains("random_str=$(date +%s%N | md5sum |cut -c 1-9)"),
        "{script}"
    );
    assert!(script.contains(r#"date_str=$(date +"%Y%m%d-%H-%M")"#), "{script}");
    assert!(!script.contains("$(params."), "{script}");
    assert!(!script.contains("$(results."), "{script}");
}

#[test]
fn seed_t2_result_reference_without_path_means_the_path() {
    let resolved = resolved_ok(resolve_yaml(SEED_T2_TR2));
    assert!(script_of(&resolved, 0).contains(r#"| tee "/cicd/results/IMAGE_URL""#));
    assert_eq!(script_of(&resolved, 1), "\necho hello-world\nsleep 60");
}

#[test]
fn array_param_expands_into_separate_args() {
    let task = json!({
        "params": [{ "name": "flags", "type": "array" }, { "name": "out", "default": "bin/app" }],
        "steps": [{
            "name": "build", "image": IMAGE, "command": ["go", "build"],
            "args": ["$(params.flags[*])", "-o", "$(params.out)", "./..."],
        }],
    });
    let run = inline_run(
        task,
        json!({ "params": [{ "name": "flags", "value": ["-v", "-trimpath", "-ldflags=-s -w"] }] }),
    );
    let resolved = resolved_ok(resolve_inline(&run));
    assert_eq!(resolved.steps[0].command, ["go", "build"]);
    assert_eq!(
        resolved.steps[0].args,
        ["-v", "-trimpath", "-ldflags=-s -w", "-o", "bin/app", "./..."]
    );
}

#[test]
fn empty_array_param_expands_to_no_args() {
    let task = json!({
        "params": [{ "name": "extra", "type": "array", "hasDefault": true }],
        "steps": [{ "name": "main", "image": IMAGE, "command": ["ls"], "args": ["$(params.extra[*])", "/"] }],
    });
    let resolved = resolved_ok(resolve_inline(&inline_run(task, json!({}))));
    assert_eq!(resolved.steps[0].args, ["/"]);
    assert_eq!(resolved.params["extra"], ParamValue::Array(vec![]));
}

#[test]
fn array_items_can_be_indexed_inside_strings() {
    let task = task_with_script(
        "echo first=$(params.files[0]) last=$(params.files[2])",
        json!({ "params": [{ "name": "files", "type": "array", "default": ["a", "b", "c"] }] }),
    );
    let resolved = resolved_ok(resolve_inline(&inline_run(task, json!({}))));
    assert_eq!(script_of(&resolved, 0), "echo first=a last=c");
}

#[test]
fn object_param_keys_are_substituted() {
    let task = task_with_script(
        "curl http://$(params.target.host):$(params.target.port)/",
        json!({ "params": [{ "name": "target", "type": "object", "properties": { "host": {}, "port": {} } }] }),
    );
    let run = inline_run(
        task,
        json!({ "params": [{ "name": "target", "value": { "host": "db", "port": "5432" } }] }),
    );
    assert_eq!(script_of(&resolved_ok(resolve_inline(&run)), 0), "curl http://db:5432/");
}

#[test]
fn defaults_are_used_for_params_the_run_does_not_give() {
    let task = task_with_script(
        "echo $(params.tag) $(params.files[1]) $(params.target.host) $(params.given)",
        json!({ "params": [
            { "name": "tag", "default": "latest" },
            { "name": "files", "type": "array", "default": ["a", "b"] },
            { "name": "target", "type": "object", "default": { "host": "example" } },
            { "name": "given", "default": "unused" },
        ] }),
    );
    let run = inline_run(task, json!({ "params": [{ "name": "given", "value": "from-run" }] }));
    assert_eq!(
        script_of(&resolved_ok(resolve_inline(&run)), 0),
        "echo latest b example from-run"
    );
}

#[test]
fn has_default_without_a_default_means_empty() {
    let task = task_with_script(
        "echo [$(params.rev)]",
        json!({ "params": [{ "name": "rev", "hasDefault": true }] }),
    );
    let resolved = resolved_ok(resolve_inline(&inline_run(task, json!({}))));
    assert_eq!(script_of(&resolved, 0), "echo []");
}

#[test]
fn has_default_with_a_default_uses_the_default() {
    let task = task_with_script(
        "echo [$(params.rev)]",
        json!({ "params": [{ "name": "rev", "hasDefault": true, "default": "main" }] }),
    );
    let resolved = resolved_ok(resolve_inline(&inline_run(task, json!({}))));
    assert_eq!(script_of(&resolved, 0), "echo [main]");
}

#[test]
fn numbers_and_booleans_in_yaml_are_taken_as_their_text() {
    let yaml = r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTask
metadata: {name: serve}
spec:
  params:
    - name: port
    - name: debug
    - name: replicas
      default: 3
    - name: ports
      type: array
      default: [80, 443]
  steps:
    - name: main
      image: 127.0.0.1:5000/cicd/bash:5
      script: echo $(params.port) $(params.debug) $(params.replicas) $(params.ports[1])
---
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTaskRun
metadata: {name: serve-run}
spec:
  taskRef: serve
  params:
    - name: port
      value: 8080
    - name: debug
      value: true
"#;
    let resolved = resolved_ok(resolve_yaml(yaml));
    assert_eq!(script_of(&resolved, 0), "echo 8080 true 3 443");
}

#[test]
fn context_variables_describe_the_run() {
    let task = task_with_script(
        "echo $(context.taskRun.name) $(context.taskRun.namespace) $(context.taskRun.uid) $(context.task.name) $(context.task.retry-count)",
        json!({}),
    );
    let run = inline_run(task.clone(), json!({}));
    // An inline task is named after its run.
    assert_eq!(
        script_of(&resolved_ok(resolve_inline(&run)), 0),
        "echo run-1 ci uid-1 run-1 0"
    );

    let named = serde_json::from_value::<TaskSpec>(task).expect("a task");
    let mut by_ref = run.clone();
    by_ref.spec.task_spec = None;
    by_ref.spec.task_ref = Some("greet".into());
    let settings = RenderSettings {
        entrypoint_image: "entrypoint:test".into(),
        ..Default::default()
    };
    let third_attempt = plan_task_run(&by_ref, &named, TaskSource::Named("greet"), 2, ONE_HOUR, &settings)
        .unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(script_of(&third_attempt.resolved, 0), "echo run-1 ci uid-1 greet 2");
}

#[test]
fn workspace_variables_give_path_bound_and_claim() {
    let task = task_with_script(
        "echo $(workspaces.src.path) $(workspaces.src.bound) $(workspaces.cache.path) $(workspaces.cache.claim) [$(workspaces.creds.path)] $(workspaces.creds.bound)",
        json!({ "workspaces": [
            { "name": "src" },
            { "name": "cache", "mountPath": "/cache" },
            { "name": "creds", "optional": true },
        ] }),
    );
    let run = inline_run(
        task,
        json!({ "workspaces": [
            { "name": "src", "emptyDir": {} },
            { "name": "cache", "persistentVolumeClaim": { "claimName": "go-cache" } },
        ] }),
    );
    let resolved = resolved_ok(resolve_inline(&run));
    assert_eq!(
        script_of(&resolved, 0),
        "echo /workspace/src true /cache go-cache [] false"
    );
    assert!(resolved.warnings.is_empty(), "{:?}", resolved.warnings);
}

#[test]
fn workspace_volume_names_what_populates_each_workspace() {
    let task = task_with_script(
        "echo $(workspaces.src.volume) $(workspaces.cache.volume) $(workspaces.conf.volume) $(workspaces.made.volume) [$(workspaces.creds.volume)]",
        json!({ "workspaces": [
            { "name": "src" },
            { "name": "cache" },
            { "name": "conf" },
            { "name": "made" },
            { "name": "creds", "optional": true },
        ] }),
    );
    let run = inline_run(
        task,
        json!({ "workspaces": [
            { "name": "src", "emptyDir": {} },
            { "name": "cache", "persistentVolumeClaim": { "claimName": "go-cache" } },
            { "name": "conf", "configMap": { "name": "settings" } },
            { "name": "made", "volumeClaimTemplate": { "spec": { "accessModes": ["ReadWriteOnce"] } } },
        ] }),
    );
    let resolved = resolved_ok(resolve_inline(&run));
    let run_name = run.metadata.name.clone().unwrap_or_default();
    assert_eq!(
        script_of(&resolved, 0),
        format!("echo cicd-ws-0 go-cache settings {run_name}-made []")
    );
}

#[test]
fn result_references_become_result_file_paths() {
    let task = json!({
        "results": [{ "name": "digest" }],
        "steps": [{
            "name": "main", "image": IMAGE, "command": ["sh", "-c"],
            "args": ["echo sha > $(results.digest.path); cat $(results.digest)"],
        }],
    });
    let resolved = resolved_ok(resolve_inline(&inline_run(task, json!({}))));
    assert_eq!(
        resolved.steps[0].args,
        ["echo sha > /cicd/results/digest; cat /cicd/results/digest"]
    );
}

#[test]
fn step_template_fills_in_what_steps_leave_out() {
    let task = json!({
        "stepTemplate": {
            "image": IMAGE,
            "workingDir": "/src",
            "env": [{ "name": "A", "value": "template" }, { "name": "B", "value": "$(params.b)" }],
        },
        "params": [{ "name": "b", "default": "from-param" }],
        "steps": [
            { "name": "one", "script": "true" },
            { "name": "two", "image": "other:1", "workingDir": "/tmp", "script": "true", "env": [{ "name": "A", "value": "step" }] },
        ],
    });
    let resolved = resolved_ok(resolve_inline(&inline_run(task, json!({}))));
    let env = |step: usize| -> Vec<(String, String)> {
        resolved.steps[step]
            .env
            .iter()
            .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
            .collect()
    };
    assert_eq!(resolved.steps[0].image, IMAGE);
    assert_eq!(resolved.steps[0].working_dir, "/src");
    assert_eq!(
        env(0),
        [("A".into(), "template".into()), ("B".into(), "from-param".into())]
    );
    assert_eq!(resolved.steps[1].image, "other:1");
    assert_eq!(resolved.steps[1].working_dir, "/tmp");
    assert_eq!(env(1), [("B".into(), "from-param".into()), ("A".into(), "step".into())]);
}

#[test]
fn run_timeout_defaults_to_the_setting_and_zero_means_none() {
    let default = resolved_ok(resolve_inline(&inline_run(task(json!({})), json!({}))));
    assert_eq!(default.timeout, Some(ONE_HOUR));
    let none = resolved_ok(resolve_inline(&inline_run(task(json!({})), json!({ "timeout": "0" }))));
    assert_eq!(none.timeout, None);
    let custom = resolved_ok(resolve_inline(&inline_run(
        task(json!({})),
        json!({ "timeout": "1h30m" }),
    )));
    assert_eq!(custom.timeout, Some(Duration::from_secs(5400)));
}

#[test]
fn invalid_and_duplicate_sidecar_names_are_rejected() {
    let task = task(json!({ "sidecars": [
        { "name": "Redis_DB", "image": IMAGE },
        { "name": "db", "image": IMAGE },
        { "name": "db", "image": IMAGE },
    ] }));
    let run = inline_run(task, json!({}));
    assert_error(
        resolve_inline(&run),
        "spec.taskSpec.sidecars[0].name",
        &["sidecar name \"Redis_DB\" is invalid"],
    );
    assert_error(
        resolve_inline(&run),
        "spec.taskSpec.sidecars[2].name",
        &["duplicate sidecar name \"db\""],
    );
}

#[test]
fn a_sidecar_without_an_image_is_rejected() {
    let task = task(json!({ "sidecars": [{ "name": "db" }] }));
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.taskSpec.sidecars[0].image",
        &["sidecar \"db\" has no image"],
    );
}

#[test]
fn step_template_mount_of_an_undeclared_volume_is_rejected() {
    let task = task(json!({ "stepTemplate": { "volumeMounts": [{ "name": "cache", "mountPath": "/cache" }] } }));
    assert_error(
        resolve_inline(&inline_run(task, json!({}))),
        "spec.taskSpec.stepTemplate.volumeMounts[0].name",
        &[
            "\"cache\"",
            "neither spec.volumes nor the run's podTemplate.volumes declares",
        ],
    );
}

#[test]
fn workspace_mount_paths_must_not_collide() {
    let task = task(json!({ "workspaces": [
        { "name": "a", "mountPath": "/src" },
        { "name": "b", "mountPath": "/src/" },
        { "name": "c", "mountPath": "/workspace" },
        { "name": "d", "mountPath": "/cicd/results" },
    ] }));
    let run = inline_run(
        task,
        json!({ "workspaces": [
        { "name": "a", "emptyDir": {} }, { "name": "b", "emptyDir": {} },
        { "name": "c", "emptyDir": {} }, { "name": "d", "emptyDir": {} },
    ] }),
    );
    assert_error(
        resolve_inline(&run),
        "spec.taskSpec.workspaces[1].mountPath",
        &["\"/src/\"", "another workspace"],
    );
    assert_error(
        resolve_inline(&run),
        "spec.taskSpec.workspaces[2].mountPath",
        &["\"/workspace\"", "used by the pod"],
    );
    assert_error(
        resolve_inline(&run),
        "spec.taskSpec.workspaces[3].mountPath",
        &["\"/cicd/results\"", "used by the pod"],
    );
}

// ---------------------------------------------------------------------------
// Limits: bounded work, each refusal naming the field, the size and the limit.
// ---------------------------------------------------------------------------

fn messages(result: Result<ResolvedTaskRun, ValidationErrors>) -> String {
    result.map(|_| ()).expect_err("over a limit").to_string()
}

#[test]
fn too_many_steps_are_refused_before_any_work() {
    let steps: Vec<Value> = (0..65)
        .map(|i| json!({ "name": format!("s{i}"), "image": IMAGE, "script": "true" }))
        .collect();
    let run = inline_run(json!({ "steps": steps }), json!({}));
    let message = messages(resolve_inline(&run));
    assert_eq!(
        message,
        "spec.taskSpec.steps: 65 steps, the limit is 64 (controller flag --max-steps)"
    );
}

#[test]
fn a_long_array_param_is_refused_naming_it() {
    let items: Vec<String> = (0..1025).map(|i| i.to_string()).collect();
    let run = inline_run(
        task(json!({ "params": [{ "name": "xs", "type": "array" }] })),
        json!({ "params": [{ "name": "xs", "value": items }] }),
    );
    let message = messages(resolve_inline(&run));
    assert_eq!(
        message,
        "spec.params[0].value: 1025 items, the limit is 1024 (controller flag --max-array-items)"
    );
}

#[test]
fn an_amplified_param_fails_at_the_field_limit_without_building_the_field() {
    let script = "$(params.p)".repeat(100);
    let run = inline_run(
        task_with_script(&script, json!({ "params": [{ "name": "p" }] })),
        json!({ "params": [{ "name": "p", "value": "x".repeat(100_000) }] }),
    );
    let message = messages(resolve_inline(&run));
    assert!(
        message.starts_with("spec.taskSpec.steps[0].script: ")
            && message.contains("the limit is 524288 bytes (controller flag --max-field-bytes)"),
        "{message}"
    );
}

#[test]
fn a_pod_over_the_size_limit_is_refused_naming_size_and_limit() {
    // 30 steps of 30 KB each: every field and the substituted total are
    // within their limits, the pod (scripts base64-encoded) is not.
    let steps: Vec<Value> = (0..30)
        .map(|i| json!({ "name": format!("s{i}"), "image": IMAGE, "script": "y".repeat(30_000) }))
        .collect();
    let run = inline_run(json!({ "steps": steps }), json!({}));
    let message = messages(resolve_inline(&run));
    assert!(
        message.starts_with("pod: the rendered pod is ")
            && message.ends_with("bytes, the limit is 1048576 bytes (controller flag --max-pod-bytes)"),
        "{message}"
    );
}

#[test]
fn a_result_sized_value_fits_in_a_field() {
    // Results may be up to 64 KiB; a script carrying one must still render.
    let run = inline_run(
        task_with_script("echo $(params.p)", json!({ "params": [{ "name": "p" }] })),
        json!({ "params": [{ "name": "p", "value": "r".repeat(64 * 1024) }] }),
    );
    assert!(resolve_inline(&run).is_ok());
}

// ---------------------------------------------------------------------------
// Strict input: unknown fields are named, with a suggestion.
// ---------------------------------------------------------------------------

fn decode_errors(yaml: &str) -> String {
    Manifests::default()
        .add_yaml("test.yaml", yaml)
        .expect_err("must be refused")
        .to_string()
}

#[test]
fn a_misspelt_step_field_is_named_with_a_suggestion() {
    let message = decode_errors(&format!(
        "apiVersion: cicdoperator.ning1875.io/v1\nkind: MyTask\nmetadata: {{name: t}}\n\
         spec:\n  steps:\n  - name: s\n    image: {IMAGE}\n    script: 'true'\n    timout: 5s\n"
    ));
    assert_eq!(
        message,
        "test.yaml: document 0 (line 1) (MyTask \"t\"): spec.steps[0].timout: unknown field, did you mean timeout?"
    );
}

#[test]
fn unknown_fields_inside_embedded_kubernetes_types_are_named() {
    let yaml = [
        "apiVersion: cicdoperator.ning1875.io/v1",
        "kind: MyTaskRun",
        "metadata: {name: r}",
        "spec:",
        "  serviceAccount: builder",
        "  taskSpec:",
        "    steps:",
        "    - name: s",
        &format!("      image: {IMAGE}"),
        "      script: 'true'",
        "      env: [{name: A, valu: b}]",
        &format!("    sidecars: [{{name: db, image: {IMAGE}, prots: []}}]"),
    ]
    .join("\n");
    let message = decode_errors(&yaml);
    for expected in [
        "spec.serviceAccount: unknown field, did you mean serviceAccountName?",
        "spec.taskSpec.steps[0].env[0].valu: unknown field, did you mean value?",
        "spec.taskSpec.sidecars[0].prots: unknown field, did you mean ports?",
    ] {
        assert!(message.contains(expected), "{expected} not in:\n{message}");
    }
}

#[test]
fn a_missing_required_field_is_named_in_full() {
    // (A step's name is no longer required: unnamed steps are named
    // `unnamed-<i>` as in Tekton. A param's name still is.)
    let message = decode_errors(
        "apiVersion: cicdoperator.ning1875.io/v1\nkind: MyTaskRun\nmetadata: {name: r}\n\
         spec:\n  taskSpec:\n    params:\n    - default: x\n    steps:\n    - image: x\n      script: 'true'\n",
    );
    assert!(
        message.contains("spec.taskSpec.params[0].name: required field is missing"),
        "{message}"
    );
}

#[test]
fn a_step_action_a_resolver_fetched_is_found_by_its_step_and_inlined() {
    let remote =
        json!({ "resolver": "http", "params": [{ "name": "url", "value": "https://catalog.example/sha.yaml" }] });
    let task = json!({
        "workspaces": [{ "name": "source" }],
        "steps": [{ "name": "hash", "ref": remote, "params": [{ "name": "path", "value": "app.tar" }] }],
    });
    let run = inline_run(task, json!({ "workspaces": [{ "name": "source", "emptyDir": {} }] }));
    let resolved = resolved_ok(resolve_with_actions(&run, &[("steps[0]", digest_action())]));
    assert_eq!(resolved.steps[0].command, ["sha256sum", "-b", "app.tar"]);

    assert_error(
        resolve_with_actions(&run, &[]),
        "spec.taskSpec.steps[0].ref",
        &["fetched when the run starts"],
    );
    let failed = AttemptInputs {
        step_actions: StepActions::from([(
            "steps[0]".to_string(),
            Err("http resolver: the server answered 404".to_string()),
        )]),
        ..AttemptInputs::default()
    };
    let spec = run.spec.task_spec.clone().expect("inline");
    let settings = RenderSettings::default();
    assert_error(
        plan_task_run_with(&run, &spec, TaskSource::Inline, 0, (ONE_HOUR, &settings), &failed).map(|p| p.resolved),
        "spec.taskSpec.steps[0].ref",
        &["the step action cannot be had: http resolver: the server answered 404"],
    );
    let both = json!({ "steps": [{ "name": "hash", "ref": { "name": "sha", "resolver": "http" } }] });
    assert_error(
        resolve_with_actions(&inline_run(both, json!({})), &[("sha", digest_action())]),
        "spec.taskSpec.steps[0].ref",
        &["names \"sha\" and a resolver"],
    );
    let neither = json!({ "steps": [{ "name": "hash", "ref": {} }] });
    assert_error(
        resolve_with_actions(&inline_run(neither, json!({})), &[]),
        "spec.taskSpec.steps[0].ref.name",
        &["needs a name or a resolver"],
    );
}

#[test]
fn a_param_value_passing_on_the_runs_context_is_filled_in() {
    let task = task(json!({
        "params": [{ "name": "attempt" }],
        "steps": [{ "name": "s", "image": IMAGE, "command": ["echo", "$(params.attempt)"] }],
    }));
    let run = inline_run(
        task,
        json!({ "params": [{ "name": "attempt", "value": "try $(context.task.retry-count) of $(context.taskRun.name), $(context.other)" }] }),
    );
    let resolved = resolved_ok(resolve_inline(&run));
    let name = run.metadata.name.clone().unwrap_or_default();
    assert_eq!(
        resolved.steps[0].command,
        ["echo".to_string(), format!("try 0 of {name}, $(context.other)")]
    );
}
