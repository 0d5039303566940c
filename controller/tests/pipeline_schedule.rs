//! The pipeline scheduler, purely: given a pipeline and the state of its
//! child runs, which tasks start, which are skipped, and how the run ends.

use std::collections::BTreeMap;

use cicd_controller::api::{ParamType, ParamValue, PipelineSpec, SkippedTask};
use cicd_controller::manifests::Manifests;
use cicd_controller::pipeline::dag::{Dag, Edge, build_dag};
use cicd_controller::pipeline::schedule::{ChildState, Outcome, Schedule, ScheduleInput, Stop, schedule, stop_all};
use cicd_controller::pipeline::skip;
use cicd_controller::pipeline::variables::context_variables;

fn pipeline(tasks_yaml: &str) -> PipelineSpec {
    let yaml = format!(
        "apiVersion: cicdoperator.ning1875.io/v1\nkind: MyPipeline\nmetadata: {{name: p}}\nspec:\n{tasks_yaml}"
    );
    let mut manifests = Manifests::default();
    manifests.add_yaml("pipeline", &yaml).expect("pipeline parses");
    manifests.pipelines[0].spec.clone()
}

fn dag(spec: &PipelineSpec) -> Dag {
    build_dag(spec, "spec").expect("valid DAG")
}

fn ok(results: &[(&str, &str)]) -> ChildState {
    ChildState::Succeeded {
        results: results
            .iter()
            .map(|(k, v)| (k.to_string(), ParamValue::String(v.to_string())))
            .collect(),
    }
}

fn failed() -> ChildState {
    ChildState::Failed {
        reason: "Failed".into(),
        message: "step \"x\" failed with exit code 1".into(),
        results: BTreeMap::new(),
    }
}

struct Run {
    spec: PipelineSpec,
    dag: Dag,
    params: BTreeMap<String, ParamValue>,
    children: BTreeMap<String, ChildState>,
    tasks_timed_out: bool,
}

impl Run {
    fn new(tasks_yaml: &str) -> Self {
        let spec = pipeline(tasks_yaml);
        let dag = dag(&spec);
        Run {
            spec,
            dag,
            params: BTreeMap::new(),
            children: BTreeMap::new(),
            tasks_timed_out: false,
        }
    }

    fn with(mut self, task: &str, state: ChildState) -> Self {
        self.children.insert(task.to_string(), state);
        self
    }

    fn param(mut self, name: &str, value: &str) -> Self {
        self.params
            .insert(name.to_string(), ParamValue::String(value.to_string()));
        self
    }

    fn next(&self) -> Schedule {
        let context = context_variables("run", "ci", "uid", "p");
        schedule(&ScheduleInput {
            spec: &self.spec,
            dag: &self.dag,
            params: &self.params,
            context: &context,
            children: &self.children,
            tasks_timed_out: self.tasks_timed_out,
            matrix_sizes: &BTreeMap::new(),
            max_matrix_combinations: 256,
            workspaces: &BTreeMap::new(),
        })
    }
}

fn started(schedule: &Schedule) -> Vec<&str> {
    schedule.start.iter().map(|s| s.name.as_str()).collect()
}

fn skipped(schedule: &Schedule) -> Vec<(&str, &str)> {
    schedule
        .skipped
        .iter()
        .map(|SkippedTask { name, reason }| (name.as_str(), reason.as_str()))
        .collect()
}

fn param_of(schedule: &Schedule, task: &str, param: &str) -> ParamValue {
    let start = schedule.start.iter().find(|s| s.name == task).expect("task starts");
    start
        .params
        .iter()
        .find(|p| p.name == param)
        .expect("param given")
        .value
        .clone()
}

fn string(text: &str) -> ParamValue {
    ParamValue::String(text.to_string())
}

const LINEAR: &str = r#"
  tasks:
    - {name: a, taskRef: t}
    - {name: b, taskRef: t, runAfter: [a]}
    - {name: c, taskRef: t, runAfter: [b]}
"#;

#[test]
fn linear_tasks_run_one_after_the_other() {
    let run = Run::new(LINEAR);
    assert_eq!(started(&run.next()), vec!["a"]);
    assert_eq!(run.next().outcome, Outcome::Running { stopping: false });

    let run = run.with("a", ChildState::Running);
    assert!(started(&run.next()).is_empty(), "b waits while a runs");

    let run = run.with("a", ok(&[]));
    assert_eq!(started(&run.next()), vec!["b"]);

    let run = run.with("b", ok(&[])).with("c", ok(&[]));
    let done = run.next();
    assert!(done.start.is_empty());
    assert_eq!(done.outcome, Outcome::Succeeded { skipped: 0 });
    assert_eq!(done.counts.succeeded, 3);
}

#[test]
fn a_diamond_runs_its_branches_in_parallel_and_joins() {
    let run = Run::new(
        r#"
  tasks:
    - {name: join, taskRef: t, runAfter: [left, right]}
    - {name: left, taskRef: t, runAfter: [root]}
    - {name: right, taskRef: t, runAfter: [root]}
    - {name: root, taskRef: t}
"#,
    );
    assert_eq!(run.dag.order, vec!["root", "left", "right", "join"]);
    assert_eq!(started(&run.next()), vec!["root"]);
    let run = run.with("root", ok(&[]));
    assert_eq!(started(&run.next()), vec!["left", "right"]);
    let run = run.with("left", ok(&[])).with("right", ChildState::Running);
    assert!(started(&run.next()).is_empty(), "join waits for both branches");
    let run = run.with("right", ok(&[]));
    assert_eq!(started(&run.next()), vec!["join"]);
}

#[test]
fn independent_tasks_fan_out_and_fan_in() {
    let run = Run::new(
        r#"
  tasks:
    - {name: fx, taskRef: t}
    - {name: fy, taskRef: t}
    - {name: fz, taskRef: t}
    - {name: all, taskRef: t, runAfter: [fx, fy, fz]}
"#,
    );
    assert_eq!(run.dag.roots(), vec!["fx", "fy", "fz"]);
    assert_eq!(started(&run.next()), vec!["fx", "fy", "fz"]);
    let run = run
        .with("fx", ok(&[]))
        .with("fy", ok(&[]))
        .with("fz", ChildState::Running);
    assert!(started(&run.next()).is_empty());
    let run = run.with("fz", ok(&[]));
    assert_eq!(started(&run.next()), vec!["all"]);
}

#[test]
fn a_result_reference_is_an_edge_and_its_value_is_passed() {
    let run = Run::new(
        r#"
  tasks:
    - name: use
      taskRef: t
      params:
        - {name: TAG, value: "image:$(tasks.make.results.TAG)"}
        - {name: WHOLE, value: "$(tasks.make.results.TAG)"}
    - {name: make, taskRef: t}
"#,
    );
    assert_eq!(run.dag.parents["use"].get("make"), Some(&Edge::Results));
    assert_eq!(started(&run.next()), vec!["make"]);
    let run = run.with("make", ok(&[("TAG", "v1")]));
    let next = run.next();
    assert_eq!(started(&next), vec!["use"]);
    assert_eq!(param_of(&next, "use", "TAG"), string("image:v1"));
    assert_eq!(param_of(&next, "use", "WHOLE"), string("v1"));
}

#[test]
fn an_array_result_passed_whole_stays_an_array() {
    let run = Run::new(
        r#"
  tasks:
    - {name: make, taskRef: t}
    - name: use
      taskRef: t
      params:
        - {name: FILES, value: "$(tasks.make.results.FILES[*])"}
        - {name: FIRST, value: "$(tasks.make.results.FILES[0])"}
"#,
    );
    let run = run.with(
        "make",
        ChildState::Succeeded {
            results: BTreeMap::from([("FILES".to_string(), ParamValue::Array(vec!["a".into(), "b".into()]))]),
        },
    );
    let next = run.next();
    assert_eq!(
        param_of(&next, "use", "FILES"),
        ParamValue::Array(vec!["a".into(), "b".into()])
    );
    assert_eq!(param_of(&next, "use", "FIRST"), string("a"));
}

#[test]
fn a_cycle_is_reported_with_the_tasks_on_it() {
    let spec = pipeline(
        r#"
  tasks:
    - {name: start, taskRef: t}
    - {name: a, taskRef: t, runAfter: [start, c]}
    - {name: b, taskRef: t, runAfter: [a]}
    - name: c
      taskRef: t
      params:
        - {name: X, value: "$(tasks.b.results.R)"}
"#,
    );
    let error = build_dag(&spec, "spec").expect_err("cycle").to_string();
    assert!(error.starts_with("spec.tasks: the tasks form a cycle: "), "{error}");
    for task in ["a", "b", "c"] {
        assert!(
            error.contains(&format!("{task} -> ")) || error.contains(&format!("-> {task}")),
            "{error}"
        );
    }
    assert!(!error.contains("start"), "start is not on the cycle: {error}");

    let self_loop = pipeline("  tasks:\n    - {name: a, taskRef: t, runAfter: [a]}\n");
    let error = build_dag(&self_loop, "spec").expect_err("self loop").to_string();
    assert!(error.contains("a -> a"), "{error}");
}

#[test]
fn unknown_tasks_are_named_with_their_field() {
    let spec = pipeline(
        r#"
  tasks:
    - {name: a, taskRef: t, runAfter: [nope]}
    - name: b
      taskRef: t
      params:
        - {name: X, value: "$(tasks.ghost.results.R)"}
  finally:
    - {name: f, taskRef: t}
    - {name: g, taskRef: t, runAfter: [a]}
"#,
    );
    let error = build_dag(&spec, "spec").expect_err("unknown").to_string();
    assert!(
        error.contains("spec.tasks[0].runAfter[0]: no pipeline task named \"nope\""),
        "{error}"
    );
    assert!(
        error.contains("spec.tasks[1].params[0].value: $(tasks.ghost.results.R): no pipeline task named \"ghost\""),
        "{error}"
    );
    assert!(error.contains("spec.finally[1].runAfter"), "{error}");
}

const WHEN: &str = r#"
  params:
    - name: deploy
  tasks:
    - name: gate
      taskRef: t
      when:
        - {input: "$(params.deploy)", operator: in, values: ["yes"]}
    - name: uses-results
      taskRef: t
      params:
        - {name: X, value: "$(tasks.gate.results.R)"}
    - {name: after-only, taskRef: t, runAfter: [gate]}
    - {name: after-skipped-child, taskRef: t, runAfter: [uses-results]}
"#;

#[test]
fn when_false_skips_the_task_and_the_tasks_that_need_its_results() {
    let run = Run::new(WHEN).param("deploy", "no");
    let next = run.next();
    assert_eq!(
        started(&next),
        vec!["after-only"],
        "a task that only runs after a when-skipped task still runs"
    );
    assert_eq!(
        skipped(&next),
        vec![
            ("gate", skip::WHEN_FALSE),
            ("uses-results", skip::PARENT_SKIPPED),
            ("after-skipped-child", skip::PARENT_SKIPPED),
        ]
    );
    let done = run.with("after-only", ok(&[])).next();
    assert_eq!(done.outcome, Outcome::Succeeded { skipped: 3 });
}

#[test]
fn when_true_runs_the_task() {
    let run = Run::new(WHEN).param("deploy", "yes");
    assert_eq!(started(&run.next()), vec!["gate"]);
    assert!(run.next().skipped.is_empty());
}

#[test]
fn when_can_read_results_and_notin_negates() {
    let run = Run::new(
        r#"
  tasks:
    - {name: check, taskRef: t}
    - name: fix
      taskRef: t
      when:
        - {input: "$(tasks.check.results.STATUS)", operator: notin, values: ["clean"]}
"#,
    );
    assert_eq!(run.dag.parents["fix"].get("check"), Some(&Edge::Results));
    let dirty = Run {
        children: BTreeMap::from([("check".into(), ok(&[("STATUS", "dirty")]))]),
        ..run
    };
    assert_eq!(started(&dirty.next()), vec!["fix"]);
    let clean = dirty.with("check", ok(&[("STATUS", "clean")]));
    assert_eq!(skipped(&clean.next()), vec![("fix", skip::WHEN_FALSE)]);
}

const CEL_WHEN: &str = r#"
  params:
    - name: branch
  tasks:
    - {name: check, taskRef: t}
    - name: release
      taskRef: t
      when:
        - cel: "'$(params.branch)'.startsWith('release-') && int('$(tasks.check.results.COUNT)') > 2"
"#;

#[test]
fn a_cel_when_reads_params_and_results_after_substitution() {
    let run = Run::new(CEL_WHEN).param("branch", "release-1.4");
    assert_eq!(
        run.dag.parents["release"].get("check"),
        Some(&Edge::Results),
        "a result in cel is an edge"
    );
    let many = run.with("check", ok(&[("COUNT", "3")]));
    assert_eq!(started(&many.next()), vec!["release"]);
    let few = many.with("check", ok(&[("COUNT", "1")]));
    assert_eq!(skipped(&few.next()), vec![("release", skip::WHEN_FALSE)]);
    let main = Run::new(CEL_WHEN)
        .param("branch", "main")
        .with("check", ok(&[("COUNT", "3")]));
    assert_eq!(skipped(&main.next()), vec![("release", skip::WHEN_FALSE)]);
}

#[test]
fn a_cel_when_that_cannot_be_evaluated_fails_the_run_naming_it() {
    let run = Run::new(CEL_WHEN)
        .param("branch", "release-1")
        .with("check", ok(&[("COUNT", "many")]));
    let Outcome::Failed { message, .. } = run.next().outcome else {
        panic!("expected a failure")
    };
    assert!(
        message.contains("spec.tasks[1].when[0].cel") && message.contains("int(\"many\"): not an integer"),
        "{message}"
    );
}

const WITH_FINALLY: &str = r#"
  tasks:
    - {name: build, taskRef: t}
    - {name: slow, taskRef: t}
    - {name: deploy, taskRef: t, runAfter: [build]}
  finally:
    - name: report
      taskRef: t
      params:
        - {name: BUILD, value: "$(tasks.build.status)"}
        - {name: DEPLOY, value: "$(tasks.deploy.status)"}
        - {name: ALL, value: "$(tasks.status)"}
        - {name: BUILD_WHY, value: "$(tasks.build.reason)"}
        - {name: DEPLOY_WHY, value: "$(tasks.deploy.reason)"}
    - name: on-failure
      taskRef: t
      when:
        - {input: "$(tasks.status)", operator: in, values: ["Failed"]}
    - name: notify
      taskRef: t
      params:
        - {name: SHA, value: "$(tasks.build.results.SHA)"}
"#;

#[test]
fn a_failure_stops_new_tasks_and_finally_runs_after_the_rest() {
    let run = Run::new(WITH_FINALLY)
        .with(
            "build",
            ChildState::Failed {
                reason: "TaskRunTimeout".into(),
                message: "the task run did not finish within 1m".into(),
                results: BTreeMap::new(),
            },
        )
        .with("slow", ChildState::Running);
    let next = run.next();
    assert!(next.start.is_empty(), "no finally task while slow still runs");
    assert_eq!(next.outcome, Outcome::Running { stopping: true });
    assert_eq!(skipped(&next), vec![("deploy", skip::STOPPING)]);

    let run = run.with("slow", ok(&[]));
    let next = run.next();
    assert_eq!(started(&next), vec!["report", "on-failure"]);
    assert_eq!(param_of(&next, "report", "BUILD"), string("Failed"));
    assert_eq!(param_of(&next, "report", "DEPLOY"), string("None"));
    assert_eq!(param_of(&next, "report", "ALL"), string("Failed"));
    assert_eq!(param_of(&next, "report", "BUILD_WHY"), string("TaskRunTimeout"));
    assert_eq!(
        param_of(&next, "report", "DEPLOY_WHY"),
        string(""),
        "deploy did not run"
    );
    assert!(
        skipped(&next).contains(&("notify", skip::RESULTS_MISSING)),
        "{:?}",
        next.skipped
    );

    let done = run.with("report", ok(&[])).with("on-failure", ok(&[])).next();
    match done.outcome {
        Outcome::Failed { reason, message } => {
            assert_eq!(reason, "Failed");
            assert!(message.contains("task \"build\" failed"), "{message}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn finally_sees_success_and_a_failing_finally_fails_the_run() {
    let run = Run::new(WITH_FINALLY)
        .with("build", ok(&[("SHA", "abc")]))
        .with("slow", ok(&[]))
        .with("deploy", ok(&[]));
    let next = run.next();
    assert_eq!(started(&next), vec!["report", "notify"]);
    assert_eq!(param_of(&next, "report", "ALL"), string("Succeeded"));
    assert_eq!(param_of(&next, "report", "BUILD_WHY"), string("Succeeded"));
    assert_eq!(param_of(&next, "notify", "SHA"), string("abc"));
    assert_eq!(skipped(&next), vec![("on-failure", skip::WHEN_FALSE)]);

    let done = run.with("report", failed()).with("notify", ok(&[])).next();
    assert!(
        matches!(done.outcome, Outcome::Failed { reason: "Failed", .. }),
        "{:?}",
        done.outcome
    );
}

#[test]
fn a_finally_task_reading_a_result_its_task_did_not_write_is_skipped() {
    // build succeeded without writing SHA (a task may write a result only
    // sometimes): notify is skipped, as in Tekton, and the run succeeds.
    let run = Run::new(WITH_FINALLY)
        .with("build", ok(&[]))
        .with("slow", ok(&[]))
        .with("deploy", ok(&[]));
    let next = run.next();
    assert_eq!(started(&next), vec!["report"]);
    assert!(
        skipped(&next).contains(&("notify", skip::RESULTS_MISSING)),
        "{:?}",
        next.skipped
    );
    let done = run.with("report", ok(&[])).next();
    assert!(matches!(done.outcome, Outcome::Succeeded { .. }), "{:?}", done.outcome);
}

#[test]
fn a_task_reading_a_result_its_parent_did_not_write_fails_the_run_naming_both() {
    let run = Run::new(
        r#"
  tasks:
    - {name: build, taskRef: t}
    - name: deploy
      taskRef: t
      params:
        - {name: SHA, value: "$(tasks.build.results.SHA)"}
"#,
    )
    .with("build", ok(&[]));
    match run.next().outcome {
        Outcome::Failed { message, .. } => assert!(
            message.contains("task \"build\" succeeded but did not produce result \"SHA\""),
            "{message}"
        ),
        other => panic!("expected a failure, got {other:?}"),
    }
}

const IGNORING_A_FAILURE: &str = r#"
  tasks:
    - {name: lint, taskRef: t, onError: continue}
    - {name: test, taskRef: t, runAfter: [lint]}
    - name: report-lint
      taskRef: t
      params:
        - {name: FINDINGS, value: "$(tasks.lint.results.findings)"}
  finally:
    - name: summary
      taskRef: t
      params:
        - {name: LINT, value: "$(tasks.lint.status)"}
        - {name: LINT_WHY, value: "$(tasks.lint.reason)"}
        - {name: ALL, value: "$(tasks.status)"}
"#;

#[test]
fn a_task_with_on_error_continue_fails_without_failing_the_run() {
    let run = Run::new(IGNORING_A_FAILURE).with("lint", failed());
    let next = run.next();
    assert_eq!(
        started(&next),
        vec!["test"],
        "runAfter still runs after an ignored failure"
    );
    assert_eq!(
        skipped(&next),
        vec![("report-lint", skip::RESULTS_MISSING)],
        "the failed task's results are missing"
    );
    assert_eq!(next.outcome, Outcome::Running { stopping: false });

    let run = run.with("test", ok(&[]));
    let next = run.next();
    assert_eq!(started(&next), vec!["summary"]);
    assert_eq!(param_of(&next, "summary", "LINT"), string("Failed"));
    assert_eq!(
        param_of(&next, "summary", "LINT_WHY"),
        string("FailureIgnored"),
        "as in Tekton"
    );
    assert_eq!(param_of(&next, "summary", "ALL"), string("Completed"));

    let done = run.with("summary", ok(&[])).next();
    assert_eq!(done.outcome, Outcome::Succeeded { skipped: 1 });
    assert_eq!(
        done.counts.message(),
        "Tasks Completed: 3 (Failed: 1 (Ignored: 1)), Skipped: 1, Incomplete: 0"
    );
}

#[test]
fn an_ignored_failure_passes_on_the_results_written_before_it() {
    let lint_failed_after_writing = ChildState::Failed {
        reason: "Failed".into(),
        message: "step \"x\" failed with exit code 1".into(),
        results: BTreeMap::from([("findings".to_string(), string("3 warnings"))]),
    };
    let next = Run::new(IGNORING_A_FAILURE)
        .with("lint", lint_failed_after_writing)
        .next();
    assert_eq!(started(&next), vec!["test", "report-lint"]);
    assert!(skipped(&next).is_empty(), "{:?}", next.skipped);
    assert_eq!(param_of(&next, "report-lint", "FINDINGS"), string("3 warnings"));
}

#[test]
fn without_on_error_the_same_failure_stops_the_run() {
    let run = Run::new(&IGNORING_A_FAILURE.replace(", onError: continue", "")).with("lint", failed());
    let next = run.next();
    assert_eq!(started(&next), vec!["summary"], "only finally runs after a failure");
    assert_eq!(param_of(&next, "summary", "ALL"), string("Failed"));
    assert_eq!(
        param_of(&next, "summary", "LINT_WHY"),
        string("Failed"),
        "the child's own reason"
    );
    assert!(skipped(&next).contains(&("test", skip::STOPPING)), "{:?}", next.skipped);
    assert_eq!(next.outcome, Outcome::Running { stopping: true });
}

#[test]
fn a_retrying_child_is_waited_for() {
    // Retries happen inside the child run: while it retries it is not
    // finished, so the pipeline neither fails nor moves on.
    let run = Run::new(LINEAR).with("a", ChildState::Running);
    let next = run.next();
    assert!(next.start.is_empty());
    assert!(next.skipped.is_empty());
    assert_eq!(next.outcome, Outcome::Running { stopping: false });
    assert_eq!(
        started(&run.with("a", ok(&[])).next()),
        vec!["b"],
        "once the retry succeeds, the next task runs"
    );
}

#[test]
fn tasks_timeout_skips_what_has_not_started_and_still_runs_finally() {
    let mut run = Run::new(WITH_FINALLY)
        .with("build", ok(&[("SHA", "abc")]))
        .with("slow", ok(&[]));
    run.tasks_timed_out = true;
    let next = run.next();
    assert_eq!(skipped(&next)[0], ("deploy", skip::TASKS_TIMEOUT));
    assert_eq!(
        started(&next),
        vec!["report", "on-failure", "notify"],
        "{:?}",
        next.skipped
    );
    assert_eq!(param_of(&next, "report", "ALL"), string("Failed"));
    let done = run
        .with("report", ok(&[]))
        .with("on-failure", ok(&[]))
        .with("notify", ok(&[]))
        .next();
    assert!(
        matches!(
            done.outcome,
            Outcome::Failed {
                reason: "PipelineRunTimeout",
                ..
            }
        ),
        "{:?}",
        done.outcome
    );
}

#[test]
fn cancelling_cancels_running_children_and_skips_the_rest_including_finally() {
    let spec = pipeline(WITH_FINALLY);
    let children = BTreeMap::from([
        ("build".to_string(), ok(&[])),
        ("slow".to_string(), ChildState::Running),
    ]);
    let stopped = stop_all(&spec, &children, Stop::Cancelled);
    assert_eq!(stopped.cancel, vec!["slow"]);
    assert!(stopped.start.is_empty());
    let names: Vec<&str> = stopped.skipped.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, vec!["deploy", "report", "on-failure", "notify"]);
    assert!(stopped.skipped.iter().all(|s| s.reason == skip::CANCELLED));
    assert!(
        matches!(
            stopped.outcome,
            Outcome::Failed {
                reason: "PipelineRunCancelled",
                ..
            }
        ),
        "{:?}",
        stopped.outcome
    );
}

#[test]
fn a_pipeline_timeout_cancels_running_children() {
    let spec = pipeline(LINEAR);
    let children = BTreeMap::from([("a".to_string(), ChildState::Running)]);
    let stopped = stop_all(&spec, &children, Stop::TimedOut);
    assert_eq!(stopped.cancel, vec!["a"]);
    assert!(stopped.skipped.iter().all(|s| s.reason == skip::TIMEOUT));
    assert!(
        matches!(
            stopped.outcome,
            Outcome::Failed {
                reason: "PipelineRunTimeout",
                ..
            }
        ),
        "{:?}",
        stopped.outcome
    );
}

#[test]
fn pipeline_results_come_from_task_results() {
    let run = Run::new(
        r#"
  tasks:
    - {name: a, taskRef: t}
    - {name: b, taskRef: t, when: [{input: "x", operator: in, values: ["y"]}]}
  results:
    - {name: IMAGE, value: "repo/app:$(tasks.a.results.TAG)"}
    - {name: FROM-SKIPPED, value: "$(tasks.b.results.TAG)"}
"#,
    )
    .with("a", ok(&[("TAG", "v2")]));
    let done = run.next();
    assert_eq!(done.outcome, Outcome::Succeeded { skipped: 1 });
    let results: Vec<(&str, &ParamValue)> = done.results.iter().map(|r| (r.name.as_str(), &r.value)).collect();
    assert_eq!(
        results,
        vec![("IMAGE", &string("repo/app:v2"))],
        "a result of a skipped task is left out"
    );
}

#[test]
fn pipeline_results_may_be_lists_and_maps_of_references() {
    let run = Run::new(
        r#"
  tasks:
    - {name: a, taskRef: t}
  results:
    - name: TAGS
      value: ["$(tasks.a.results.TAG)", "latest"]
    - name: IMAGE
      value: {repo: "$(tasks.a.results.REPO)", tag: "$(tasks.a.results.TAG)"}
"#,
    )
    .with("a", ok(&[("TAG", "v2"), ("REPO", "registry/app")]));
    let done = run.next();
    let results: Vec<(&str, &ParamValue)> = done.results.iter().map(|r| (r.name.as_str(), &r.value)).collect();
    let image = ParamValue::Object(BTreeMap::from([
        ("repo".to_string(), "registry/app".to_string()),
        ("tag".to_string(), "v2".to_string()),
    ]));
    assert_eq!(
        results,
        vec![
            ("TAGS", &ParamValue::Array(vec!["v2".into(), "latest".into()])),
            ("IMAGE", &image)
        ]
    );
    assert_eq!(done.results[0].result_type, ParamType::Array);
    assert_eq!(done.results[1].result_type, ParamType::Object);
}

#[test]
fn a_result_the_parent_did_not_write_fails_the_run() {
    let run = Run::new(
        r#"
  tasks:
    - {name: a, taskRef: t}
    - {name: other, taskRef: t}
    - name: b
      taskRef: t
      params:
        - {name: X, value: "$(tasks.a.results.MISSING)"}
"#,
    )
    .with("a", ok(&[]))
    .with("other", ChildState::Running);
    let next = run.next();
    assert!(next.start.is_empty());
    assert_eq!(next.cancel, vec!["other"]);
    match next.outcome {
        Outcome::Failed { reason, message } => {
            assert_eq!(reason, "PipelineRunValidationFailed");
            assert!(
                message.contains("spec.tasks[2].params[0].value") && message.contains("MISSING"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
}
