//! The PipelineRun reconciler's decisions for a matrixed pipeline task:
//! which children it creates, with which params, and what the run's status
//! says as they finish.

use std::collections::BTreeMap;
use std::time::Duration;

use cicd_controller::api::{
    Condition, MyPipelineRun, MyTaskRun, ParamValue, PipelineRunStatus, PipelineSpec, RunResult, RunSpecStatus,
    TaskRunStatus, TaskSpec,
};
use cicd_controller::engine::limits::Limits;
use cicd_controller::manifests::Manifests;
use cicd_controller::names::matrix_child_name;
use cicd_controller::pipeline::ANNOTATION_MATRIX_COMBINATIONS;
use cicd_controller::reconcile::pipelinerun::{Action, Observed, PipelineLookup, decide};
use k8s_openapi::jiff::Timestamp;

const MANIFESTS: &str = r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTask
metadata: {name: list-os}
spec:
  results:
    - name: OSES
      type: array
  steps:
    - name: list
      image: 127.0.0.1:5000/cicd/bash:5
      script: echo -n '["linux","mac"]' > $(results.OSES.path)
---
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTask
metadata: {name: build}
spec:
  params:
    - name: OS
    - name: ARCH
    - name: MODE
      default: release
  results:
    - name: BIN
  steps:
    - name: build
      image: 127.0.0.1:5000/cicd/bash:5
      script: echo -n "$(params.OS)-$(params.ARCH)" > $(results.BIN.path)
---
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTask
metadata: {name: publish}
spec:
  params:
    - name: BINS
      type: array
    - name: COUNT
  steps:
    - name: publish
      image: 127.0.0.1:5000/cicd/bash:5
      args: ["$(params.BINS[*])"]
      script: echo "$@"
---
apiVersion: cicdoperator.ning1875.io/v1
kind: MyPipeline
metadata: {name: cross}
spec:
  params:
    - name: arches
      type: array
      default: [amd64]
  tasks:
    - name: oses
      taskRef: list-os
    - name: build
      taskRef: build
      retries: 1
      params:
        - {name: MODE, value: debug}
      matrix:
        params:
          - {name: OS, value: "$(tasks.oses.results.OSES[*])"}
          - {name: ARCH, value: "$(params.arches[*])"}
        include:
          - params: [{name: OS, value: windows}, {name: ARCH, value: amd64}]
    - name: publish
      taskRef: publish
      params:
        - {name: BINS, value: ["$(tasks.build.results.BIN[*])"]}
        - {name: COUNT, value: "$(tasks.build.matrix.length)/$(tasks.build.matrix.BIN.length)"}
  results:
    - name: BINS
      value: "$(tasks.build.results.BIN)"
---
apiVersion: cicdoperator.ning1875.io/v1
kind: MyPipelineRun
metadata: {name: x1, namespace: ci}
spec:
  pipelineRef: cross
"#;

struct World {
    pipeline: PipelineSpec,
    tasks: BTreeMap<String, TaskSpec>,
    run: MyPipelineRun,
    children: Vec<MyTaskRun>,
    limits: Limits,
}

fn world() -> World {
    let mut manifests = Manifests::default();
    manifests.add_yaml("manifests", MANIFESTS).expect("manifests parse");
    let mut run = manifests.pipeline_runs[0].clone();
    run.metadata.uid = Some("uid-x".into());
    World {
        pipeline: manifests.pipelines[0].spec.clone(),
        tasks: manifests
            .tasks
            .iter()
            .map(|t| (t.metadata.name.clone().unwrap_or_default(), t.spec.clone()))
            .collect(),
        run,
        children: Vec::new(),
        limits: Limits::default(),
    }
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + seconds).expect("valid time")
}

fn build_child(index: usize) -> String {
    matrix_child_name("x1", "build", index)
}

impl World {
    fn decide(&self, now: i64) -> Vec<Action> {
        let observed = Observed {
            run: &self.run,
            pipeline: PipelineLookup::Found {
                name: "cross",
                spec: &self.pipeline,
            },
            tasks: &self.tasks,
            children: &self.children,
            problems: &[],
            now: at(now),
        };
        decide(observed, Duration::from_secs(3600), &self.limits)
    }

    /// Stores the decision's status and children, as the API server would.
    fn carry_out(&mut self, actions: &[Action]) {
        if let Some(status) = written_status(actions) {
            self.run.status = Some(status);
        }
        self.children.extend(created(actions).into_iter().cloned());
    }

    fn finish(&mut self, name: &str, status: &str, results: &[(&str, ParamValue)]) {
        let child = self
            .children
            .iter_mut()
            .find(|c| c.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("child {name} exists"));
        child.status = Some(TaskRunStatus {
            conditions: vec![Condition {
                type_: "Succeeded".into(),
                status: status.into(),
                reason: if status == "True" { "Succeeded" } else { "Failed" }.into(),
                message: format!("{name} {status}"),
                last_transition_time: None,
            }],
            results: results
                .iter()
                .map(|(n, v)| RunResult {
                    name: n.to_string(),
                    result_type: v.param_type(),
                    value: v.clone(),
                })
                .collect(),
            ..Default::default()
        });
    }

    /// Runs `oses` to success with `oses` as its result; returns the
    /// decision that fans `build` out.
    fn fan_out(&mut self, oses: &[&str]) -> Vec<Action> {
        let first = self.decide(0);
        self.carry_out(&first);
        let list = ParamValue::Array(oses.iter().map(|s| s.to_string()).collect());
        self.finish("x1-oses", "True", &[("OSES", list)]);
        let second = self.decide(10);
        self.carry_out(&second);
        second
    }
}

fn written_status(actions: &[Action]) -> Option<PipelineRunStatus> {
    actions.iter().find_map(|a| match a {
        Action::WriteStatus(status) => Some((**status).clone()),
        _ => None,
    })
}

fn created(actions: &[Action]) -> Vec<&MyTaskRun> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::CreateChild(child) => Some(&**child),
            _ => None,
        })
        .collect()
}

fn created_names(actions: &[Action]) -> Vec<String> {
    created(actions)
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect()
}

fn condition(world: &World) -> (String, String, String) {
    let c = world
        .run
        .status
        .iter()
        .flat_map(|s| &s.conditions)
        .find(|c| c.type_ == "Succeeded")
        .expect("Succeeded condition");
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

/// A child's params as `NAME=value`.
fn params_of(child: &MyTaskRun) -> Vec<String> {
    child
        .spec
        .params
        .iter()
        .map(|p| match &p.value {
            ParamValue::String(text) => format!("{}={text}", p.name),
            other => format!("{}={other:?}", p.name),
        })
        .collect()
}

#[test]
fn a_matrixed_task_starts_one_child_per_combination() {
    let mut world = world();
    let actions = world.fan_out(&["linux", "mac"]);
    assert_eq!(
        created_names(&actions),
        [build_child(0), build_child(1), build_child(2)]
    );
    let children = created(&actions);
    let params: Vec<Vec<String>> = children.iter().map(|c| params_of(c)).collect();
    assert_eq!(
        params,
        [
            vec!["MODE=debug", "OS=linux", "ARCH=amd64"],
            vec!["MODE=debug", "OS=mac", "ARCH=amd64"],
            vec!["MODE=debug", "OS=windows", "ARCH=amd64"],
        ]
    );
    for child in &children {
        assert_eq!(child.spec.retries, Some(1), "each child retries on its own");
        assert_eq!(
            child
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(ANNOTATION_MATRIX_COMBINATIONS))
                .map(String::as_str),
            Some("3")
        );
    }
    let references: Vec<(String, String)> = world
        .run
        .status
        .iter()
        .flat_map(|s| &s.child_references)
        .map(|c| (c.pipeline_task_name.clone(), c.name.clone()))
        .collect();
    assert_eq!(
        references,
        [
            ("oses".to_string(), "x1-oses".to_string()),
            ("build".to_string(), build_child(0)),
            ("build".to_string(), build_child(1)),
            ("build".to_string(), build_child(2)),
        ]
    );
}

#[test]
fn children_whose_creation_did_not_happen_are_created_later_and_only_they() {
    let mut world = world();
    world.fan_out(&["linux", "mac"]);
    // Only the first creation went through.
    world
        .children
        .retain(|c| c.metadata.name.as_deref() != Some(&build_child(1)));
    world
        .children
        .retain(|c| c.metadata.name.as_deref() != Some(&build_child(2)));
    let again = world.decide(20);
    assert_eq!(created_names(&again), [build_child(1), build_child(2)]);
    world.carry_out(&again);
    assert!(created_names(&world.decide(30)).is_empty(), "all exist now");
}

#[test]
fn results_become_arrays_and_the_run_succeeds_when_every_child_did() {
    let mut world = world();
    world.fan_out(&["linux", "mac"]);
    world.finish(
        &build_child(0),
        "True",
        &[("BIN", ParamValue::String("linux-amd64".into()))],
    );
    world.finish(
        &build_child(2),
        "True",
        &[("BIN", ParamValue::String("windows-amd64".into()))],
    );
    assert!(
        created_names(&world.decide(20)).is_empty(),
        "one combination still runs"
    );
    world.finish(
        &build_child(1),
        "True",
        &[("BIN", ParamValue::String("mac-amd64".into()))],
    );

    let next = world.decide(30);
    assert_eq!(created_names(&next), ["x1-publish"]);
    let bins = ParamValue::Array(vec!["linux-amd64".into(), "mac-amd64".into(), "windows-amd64".into()]);
    assert_eq!(created(&next)[0].spec.params[0].value, bins, "in combination order");
    assert_eq!(created(&next)[0].spec.params[1].value, ParamValue::String("3/3".into()));
    world.carry_out(&next);
    world.finish("x1-publish", "True", &[]);

    let done = world.decide(40);
    world.carry_out(&done);
    assert_eq!(condition(&world).0, "True", "{:?}", condition(&world));
    let results = world.run.status.clone().unwrap_or_default().results;
    assert_eq!(results[0].value, bins, "a pipeline result can be the whole array");
}

#[test]
fn one_failed_combination_fails_the_task_once_all_have_finished() {
    let mut world = world();
    world.fan_out(&["linux", "mac"]);
    world.finish(&build_child(1), "False", &[]);
    let waiting = world.decide(20);
    world.carry_out(&waiting);
    assert_eq!(condition(&world).0, "Unknown", "the other combinations still run");
    assert!(!waiting.iter().any(|a| matches!(a, Action::CancelChild(_))));

    world.finish(&build_child(0), "True", &[("BIN", ParamValue::String("a".into()))]);
    world.finish(&build_child(2), "True", &[("BIN", ParamValue::String("b".into()))]);
    let done = world.decide(30);
    world.carry_out(&done);
    let (status, reason, message) = condition(&world);
    assert_eq!((status.as_str(), reason.as_str()), ("False", "Failed"));
    assert!(
        message.contains(&format!(
            "task \"build\" failed (Failed: 1 of 3 combinations failed; combination 1: {} False)",
            build_child(1)
        )),
        "{message}"
    );
    let skipped = world.run.status.clone().unwrap_or_default().skipped_tasks;
    assert_eq!(skipped[0].name, "publish");
}

#[test]
fn cancelling_the_run_cancels_every_running_child() {
    let mut world = world();
    world.fan_out(&["linux", "mac"]);
    world.finish(&build_child(0), "True", &[("BIN", ParamValue::String("a".into()))]);
    world.run.spec.status = Some(RunSpecStatus::Cancelled);
    let actions = world.decide(20);
    let cancelled: Vec<&String> = actions
        .iter()
        .filter_map(|a| match a {
            Action::CancelChild(name) => Some(name),
            _ => None,
        })
        .collect();
    assert_eq!(cancelled, [&build_child(1), &build_child(2)]);
}

#[test]
fn more_combinations_than_the_limit_fail_the_run_naming_the_matrix() {
    let mut world = world();
    world.limits.max_matrix_combinations = 3;
    world.fan_out(&["linux", "mac", "bsd"]);
    let (status, reason, message) = condition(&world);
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "PipelineRunValidationFailed")
    );
    assert_eq!(
        message,
        "spec.tasks[1].matrix: 4 combinations, the limit is 3 (controller flag --max-matrix-combinations)"
    );
    assert_eq!(created_names(&world.decide(20)), Vec::<String>::new());
}

#[test]
fn an_empty_matrix_skips_the_task_and_its_consumers() {
    let mut world = world();
    world.pipeline.tasks[1].matrix.as_mut().expect("matrix").include.clear();
    let actions = world.fan_out(&[]);
    assert!(created_names(&actions).is_empty());
    let status = world.run.status.clone().unwrap_or_default();
    let skipped: Vec<(String, String)> = status
        .skipped_tasks
        .iter()
        .map(|s| (s.name.clone(), s.reason.clone()))
        .collect();
    assert_eq!(
        skipped,
        [
            ("build".to_string(), "MatrixHasNoCombinations".to_string()),
            ("publish".to_string(), "ParentTasksSkipped".to_string())
        ]
    );
    assert_eq!(condition(&world).1, "Completed");
}

#[test]
fn a_matrix_param_also_in_params_is_refused_before_anything_runs() {
    let mut world = world();
    world.pipeline.tasks[1].params[0].name = "OS".into();
    let actions = world.decide(0);
    world.carry_out(&actions);
    let (_, reason, message) = condition(&world);
    assert_eq!(reason, "PipelineRunValidationFailed");
    assert!(
        message.contains(
            "MyPipeline \"cross\": spec.tasks[1].matrix.params[0].name: param \"OS\" is given both in params and in the matrix"
        ),
        "{message}"
    );
    assert!(created_names(&actions).is_empty());
}
