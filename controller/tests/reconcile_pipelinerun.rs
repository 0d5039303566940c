//! The PipelineRun reconciler's decisions: given a run, its pipeline, the
//! namespace's tasks and the child runs, which requests are made and what
//! status results.

use std::collections::BTreeMap;
use std::time::Duration;

use cicd_controller::api::{
    Artifacts, Condition, MyPipelineRun, MyTaskRun, ParamValue, PipelineRunStatus, PipelineSpec, ResolvedFrom,
    RunResult, RunSpecStatus, TaskRunStatus, TaskSpec,
};
use cicd_controller::engine::limits::Limits;
use cicd_controller::manifests::Manifests;
use cicd_controller::reconcile::pipelinerun::{Action, Observed, PipelineLookup, decide, owner_reference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

const MANIFESTS: &str = r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTask
metadata: {name: make-tag}
spec:
  params:
    - name: PREFIX
  results:
    - name: TAG
  workspaces:
    - name: src
  steps:
    - name: tag
      image: 127.0.0.1:5000/cicd/bash:5
      script: echo -n "$(params.PREFIX)-1" > $(results.TAG.path)
---
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTask
metadata: {name: push}
spec:
  params:
    - name: IMAGE
  results:
    - name: DIGEST
  workspaces:
    - name: src
  steps:
    - name: push
      image: 127.0.0.1:5000/cicd/bash:5
      script: echo -n sha256:1 > $(results.DIGEST.path)
---
apiVersion: cicdoperator.ning1875.io/v1
kind: MyPipeline
metadata: {name: release}
spec:
  params:
    - name: prefix
      default: v
  workspaces:
    - name: shared
  tasks:
    - name: tag
      taskRef: make-tag
      params:
        - {name: PREFIX, value: "$(params.prefix)"}
      workspaces:
        - {name: src, workspace: shared}
    - name: push
      taskRef: push
      retries: 2
      params:
        - {name: IMAGE, value: "registry/app:$(tasks.tag.results.TAG)"}
      workspaces:
        - {name: src, workspace: shared, subPath: app}
  finally:
    - name: cleanup
      taskSpec:
        steps:
          - name: clean
            image: 127.0.0.1:5000/cicd/bash:5
            script: echo done
  results:
    - name: IMAGE
      value: "registry/app:$(tasks.tag.results.TAG)@$(tasks.push.results.DIGEST)"
---
apiVersion: cicdoperator.ning1875.io/v1
kind: MyPipelineRun
metadata: {name: rel-1, namespace: ci}
spec:
  pipelineRef: release
  params:
    - {name: prefix, value: v9}
  serviceAccountName: builder
  podTemplate:
    nodeSelector: {disk: ssd}
  workspaces:
    - name: shared
      volumeClaimTemplate:
        spec:
          accessModes: [ReadWriteOnce]
          resources: {requests: {storage: 16Mi}}
"#;

struct World {
    pipeline: PipelineSpec,
    tasks: BTreeMap<String, TaskSpec>,
    run: MyPipelineRun,
    children: Vec<MyTaskRun>,
}

fn world() -> World {
    let mut manifests = Manifests::default();
    manifests.add_yaml("manifests", MANIFESTS).expect("manifests parse");
    let mut run = manifests.pipeline_runs[0].clone();
    run.metadata.uid = Some("uid-p".into());
    run.metadata.generation = Some(1);
    World {
        pipeline: manifests.pipelines[0].spec.clone(),
        tasks: manifests
            .tasks
            .iter()
            .map(|t| (t.metadata.name.clone().unwrap_or_default(), t.spec.clone()))
            .collect(),
        run,
        children: Vec::new(),
    }
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + seconds).expect("valid time")
}

impl World {
    fn decide(&self, now: i64) -> Vec<Action> {
        let observed = Observed {
            run: &self.run,
            pipeline: PipelineLookup::Found {
                name: "release",
                spec: &self.pipeline,
            },
            tasks: &self.tasks,
            children: &self.children,
            problems: &[],
            now: at(now),
        };
        decide(observed, Duration::from_secs(3600), &Limits::default())
    }

    /// Applies the status the last decision wrote, as the API server would.
    fn store(&mut self, actions: &[Action]) {
        self.run.status = Some(written_status(actions));
    }

    /// Adds the children the decision created, with no status yet.
    fn create_children(&mut self, actions: &[Action]) {
        self.children.extend(created(actions).into_iter().cloned());
    }

    fn finish_child(&mut self, name: &str, status: &str, reason: &str, results: &[(&str, &str)]) {
        let child = self
            .children
            .iter_mut()
            .find(|c| c.metadata.name.as_deref() == Some(name))
            .expect("child exists");
        child.status = Some(TaskRunStatus {
            conditions: vec![Condition {
                type_: "Succeeded".into(),
                status: status.into(),
                reason: reason.into(),
                message: format!("{reason} message"),
                last_transition_time: None,
            }],
            results: results
                .iter()
                .map(|(n, v)| RunResult {
                    name: n.to_string(),
                    result_type: Default::default(),
                    value: ParamValue::String(v.to_string()),
                })
                .collect(),
            ..Default::default()
        });
    }
}

fn written_status(actions: &[Action]) -> PipelineRunStatus {
    actions
        .iter()
        .find_map(|a| match a {
            Action::WriteStatus(status) => Some((**status).clone()),
            _ => None,
        })
        .expect("a status write")
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

fn cancelled(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::CancelChild(name) => Some(name.clone()),
            _ => None,
        })
        .collect()
}

fn condition(status: &PipelineRunStatus) -> (String, String, String) {
    let c = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Succeeded")
        .expect("Succeeded condition");
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

#[test]
fn the_first_reconcile_creates_the_claim_and_the_root_child() {
    let world = world();
    let actions = world.decide(0);
    assert_eq!(created_names(&actions), vec!["rel-1-tag"]);

    let claims: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::CreateClaim(claim) => Some(claim),
            _ => None,
        })
        .collect();
    assert_eq!(claims.len(), 1, "one claim per pipeline run");
    assert_eq!(claims[0].metadata.name.as_deref(), Some("rel-1-shared"));
    assert_eq!(
        claims[0].metadata.owner_references,
        Some(vec![owner_reference(&world.run)])
    );

    let child = created(&actions)[0];
    assert_eq!(child.metadata.namespace.as_deref(), Some("ci"));
    let owner = &child.metadata.owner_references.as_ref().expect("owner")[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        ("MyPipelineRun", "uid-p", Some(true))
    );
    let labels = child.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get("cicdoperator.ning1875.io/pipelineRun").map(String::as_str),
        Some("rel-1")
    );
    assert_eq!(
        labels.get("cicdoperator.ning1875.io/pipelineTask").map(String::as_str),
        Some("tag")
    );
    assert_eq!(child.spec.task_ref.as_deref(), Some("make-tag"));
    assert_eq!(child.spec.params[0].value, ParamValue::String("v9".into()));
    assert_eq!(child.spec.service_account_name.as_deref(), Some("builder"));
    assert!(
        child
            .spec
            .pod_template
            .as_ref()
            .and_then(|p| p.node_selector.as_ref())
            .is_some()
    );
    let binding = &child.spec.workspaces[0];
    assert_eq!(binding.name, "src");
    assert!(binding.volume_claim_template.is_none());
    assert_eq!(
        binding.persistent_volume_claim.as_ref().map(|c| c.claim_name.as_str()),
        Some("rel-1-shared")
    );

    let status = written_status(&actions);
    assert_eq!(condition(&status).0, "Unknown");
    assert_eq!(condition(&status).1, "Running");
    assert_eq!(status.child_references.len(), 1);
    assert_eq!(status.child_references[0].pipeline_task_name, "tag");
    assert_eq!(
        status.pipeline_spec.as_ref(),
        Some(&world.pipeline),
        "the pipeline is snapshotted"
    );
    assert!(status.start_time.is_some());
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::RequeueAfter(d) if *d == Duration::from_secs(3600)))
    );
}

#[test]
fn after_a_restart_existing_children_are_adopted_not_created_again() {
    let mut world = world();
    let first = world.decide(0);
    world.create_children(&first);
    // The status write was lost: the run looks new, but its child exists.
    let again = world.decide(5);
    assert!(created_names(&again).is_empty(), "{:?}", created_names(&again));
    let status = written_status(&again);
    assert_eq!(
        status
            .child_references
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        vec!["rel-1-tag"]
    );
}

#[test]
fn a_child_of_another_owner_is_not_adopted() {
    let mut world = world();
    let first = world.decide(0);
    world.create_children(&first);
    world.children[0].metadata.owner_references.as_mut().expect("owner")[0].uid = "someone-else".into();
    assert_eq!(
        created_names(&world.decide(5)),
        vec!["rel-1-tag"],
        "the create is tried (and will 409)"
    );
}

#[test]
fn results_pass_into_the_next_child_and_make_the_pipeline_results() {
    let mut world = world();
    let first = world.decide(0);
    world.create_children(&first);
    world.store(&first);
    world.finish_child("rel-1-tag", "True", "Succeeded", &[("TAG", "v9-1")]);

    let second = world.decide(10);
    assert_eq!(created_names(&second), vec!["rel-1-push"]);
    let push = created(&second)[0];
    assert_eq!(
        push.spec.params[0].value,
        ParamValue::String("registry/app:v9-1".into())
    );
    assert_eq!(push.spec.retries, Some(2), "retries are the child's job");
    assert_eq!(push.spec.workspaces[0].sub_path.as_deref(), Some("app"));
    world.create_children(&second);
    world.store(&second);

    // Retrying child: still Unknown, so nothing new happens.
    let waiting = world.decide(20);
    assert!(created_names(&waiting).is_empty());

    world.finish_child("rel-1-push", "True", "Succeeded", &[("DIGEST", "sha256:1")]);
    let third = world.decide(30);
    assert_eq!(created_names(&third), vec!["rel-1-cleanup"], "finally runs last");
    world.create_children(&third);
    world.store(&third);
    world.finish_child("rel-1-cleanup", "True", "Succeeded", &[]);

    let done = world.decide(40);
    let status = written_status(&done);
    assert_eq!(condition(&status).0, "True");
    assert_eq!(condition(&status).1, "Succeeded");
    assert_eq!(status.results.len(), 1);
    assert_eq!(
        status.results[0].value,
        ParamValue::String("registry/app:v9-1@sha256:1".into())
    );
    assert_eq!(status.child_references.len(), 3);
    assert_eq!(status.completion_time, Some(Time(at(40))));

    world.store(&done);
    assert!(world.decide(50).is_empty(), "a finished run is left alone");
}

/// The world with push's IMAGE given as `expr`, and tag finished having
/// written an image artifact, twice in two of its steps.
fn world_reading_tag_artifacts(expr: &str) -> (World, Vec<Action>) {
    let mut world = world();
    world.pipeline.tasks[1].params[0].value = ParamValue::String(expr.into());
    let first = world.decide(0);
    world.create_children(&first);
    world.store(&first);
    world.finish_child("rel-1-tag", "True", "Succeeded", &[("TAG", "v9-1")]);
    let written: Artifacts = serde_json::from_value(json!({
        "inputs": [{ "name": "source", "values": [{ "uri": "git:app@1" }] }],
        "outputs": [{ "name": "image", "values": [{ "uri": "pkg:oci/app", "digest": { "sha256": "ab" } }] },
                    { "name": "image", "values": [{ "uri": "pkg:oci/app-debug" }] }],
    }))
    .expect("artifacts");
    let tag = world
        .children
        .iter_mut()
        .find(|c| c.metadata.name.as_deref() == Some("rel-1-tag"))
        .expect("tag");
    tag.status.as_mut().expect("finished").artifacts = Some(written);
    let second = world.decide(10);
    (world, second)
}

#[test]
fn a_task_s_artifacts_pass_to_the_next_task_as_json() {
    let (_, second) = world_reading_tag_artifacts("$(tasks.tag.outputs.image)");
    let push = created(&second)[0];
    let ParamValue::String(given) = &push.spec.params[0].value else {
        panic!("a string: {:?}", push.spec.params[0].value)
    };
    let given: Value = serde_json::from_str(given).expect("JSON");
    assert_eq!(
        given,
        json!([{ "uri": "pkg:oci/app", "digest": { "sha256": "ab" } }, { "uri": "pkg:oci/app-debug", "digest": {} }]),
        "both steps' values of the category, in order"
    );
    let (_, second) = world_reading_tag_artifacts("$(tasks.tag.inputs.source)");
    assert_eq!(
        created(&second)[0].spec.params[0].value,
        ParamValue::String(r#"[{"uri":"git:app@1","digest":{}}]"#.into())
    );
}

#[test]
fn an_artifact_category_the_task_did_not_write_fails_the_run_naming_it() {
    let (_, second) = world_reading_tag_artifacts("$(tasks.tag.outputs.chart)");
    assert!(created(&second).is_empty());
    let (status, _, message) = final_condition(&second);
    assert_eq!(status, "False");
    assert!(
        message.contains("task \"tag\" succeeded but wrote no outputs artifacts of category \"chart\""),
        "{message}"
    );
}

#[test]
fn a_failed_task_fails_the_run_after_finally() {
    let mut world = world();
    let first = world.decide(0);
    world.create_children(&first);
    world.store(&first);
    world.finish_child("rel-1-tag", "False", "Failed", &[]);

    let next = world.decide(10);
    assert_eq!(created_names(&next), vec!["rel-1-cleanup"]);
    let status = written_status(&next);
    assert_eq!(condition(&status).0, "Unknown");
    assert_eq!(
        status
            .skipped_tasks
            .iter()
            .map(|s| (s.name.as_str(), s.reason.as_str()))
            .collect::<Vec<_>>(),
        vec![("push", "PipelineRunStopping")]
    );
    world.create_children(&next);
    world.store(&next);
    world.finish_child("rel-1-cleanup", "True", "Succeeded", &[]);

    let status = written_status(&world.decide(20));
    let (state, reason, message) = condition(&status);
    assert_eq!((state.as_str(), reason.as_str()), ("False", "Failed"));
    assert!(message.contains("task \"tag\" failed"), "{message}");
}

#[test]
fn cancelling_cancels_running_children_and_skips_finally() {
    let mut world = world();
    let first = world.decide(0);
    world.create_children(&first);
    world.store(&first);
    world.run.spec.status = Some(RunSpecStatus::Cancelled);

    let actions = world.decide(10);
    assert_eq!(cancelled(&actions), vec!["rel-1-tag"]);
    assert!(created_names(&actions).is_empty());
    let status = written_status(&actions);
    let (state, reason, _) = condition(&status);
    assert_eq!((state.as_str(), reason.as_str()), ("False", "PipelineRunCancelled"));
    let skipped: Vec<&str> = status.skipped_tasks.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(skipped, vec!["push", "cleanup"]);
    assert!(status.completion_time.is_some());
}

#[test]
fn the_pipeline_timeout_cancels_children_and_fails_the_run() {
    let mut world = world();
    world.run.spec.timeouts = Some(cicd_controller::api::PipelineTimeouts {
        pipeline: Some("1m".into()),
        ..Default::default()
    });
    let first = world.decide(0);
    world.create_children(&first);
    world.store(&first);
    assert!(
        first
            .iter()
            .any(|a| matches!(a, Action::RequeueAfter(d) if *d == Duration::from_secs(60)))
    );

    assert!(cancelled(&world.decide(59)).is_empty());
    let actions = world.decide(61);
    assert_eq!(cancelled(&actions), vec!["rel-1-tag"]);
    let (state, reason, _) = condition(&written_status(&actions));
    assert_eq!((state.as_str(), reason.as_str()), ("False", "PipelineRunTimeout"));
}

#[test]
fn tasks_timeout_bounds_the_child_timeout() {
    let mut world = world();
    world.run.spec.timeouts = Some(cicd_controller::api::PipelineTimeouts {
        tasks: Some("10m".into()),
        ..Default::default()
    });
    let first = world.decide(0);
    world.create_children(&first);
    world.store(&first);
    world.finish_child("rel-1-tag", "True", "Succeeded", &[("TAG", "t")]);
    let second = world.decide(120);
    assert_eq!(
        created(&second)[0].spec.timeout.as_deref(),
        Some("480s"),
        "what is left of timeouts.tasks"
    );
}

/// Decides at `now` for a run whose MyPipeline "release" is not there.
fn decide_without_pipeline(world: &World, now: i64) -> Vec<Action> {
    let observed = Observed {
        run: &world.run,
        pipeline: PipelineLookup::Missing { name: "release" },
        tasks: &world.tasks,
        children: &[],
        problems: &[],
        now: at(now),
    };
    decide(observed, Duration::from_secs(3600), &Limits::default())
}

#[test]
fn a_missing_pipeline_is_a_resolution_failure_naming_it_and_the_namespace() {
    let actions = decide_without_pipeline(&world(), 0);
    let (state, reason, message) = condition(&written_status(&actions));
    assert_eq!(
        (state.as_str(), reason.as_str()),
        ("False", "PipelineRunResolutionFailed")
    );
    assert!(
        message.contains("\"release\"") && message.contains("\"ci\""),
        "{message}"
    );
    assert!(created(&actions).is_empty());
}

#[test]
fn a_young_run_waits_for_its_missing_pipeline() {
    let mut world = world();
    world.run.metadata.creation_timestamp = Some(Time(at(0)));
    let actions = decide_without_pipeline(&world, 29);
    let (state, reason, message) = condition(&written_status(&actions));
    assert_eq!((state.as_str(), reason.as_str()), ("Unknown", "Resolving"));
    assert!(message.contains("MyPipeline \"release\" not found"), "{message}");
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::RequeueAfter(d) if *d == Duration::from_secs(1)))
    );
}

#[test]
fn a_young_run_waits_for_a_missing_task_and_starts_once_it_is_there() {
    let mut world = world();
    world.run.metadata.creation_timestamp = Some(Time(at(0)));
    let push = world.tasks.remove("push").expect("the manifests have a push task");
    let waiting = world.decide(2);
    assert!(created(&waiting).is_empty());
    let (state, reason, message) = condition(&written_status(&waiting));
    assert_eq!((state.as_str(), reason.as_str()), ("Unknown", "Resolving"), "{message}");
    assert!(message.contains("MyTask \"push\""), "{message}");

    world.tasks.insert("push".into(), push);
    assert!(
        !created(&world.decide(3)).is_empty(),
        "the first tasks start once every task is there"
    );

    world.tasks.remove("push");
    let (state, reason, message) = condition(&written_status(&world.decide(31)));
    assert_eq!(
        (state.as_str(), reason.as_str()),
        ("False", "PipelineRunResolutionFailed"),
        "{message}"
    );
}

fn decide_remote(world: &World, pipeline: PipelineLookup<'_>) -> Vec<Action> {
    let observed = Observed {
        run: &world.run,
        pipeline,
        tasks: &world.tasks,
        children: &[],
        problems: &[],
        now: at(0),
    };
    decide(observed, Duration::from_secs(3600), &Limits::default())
}

#[test]
fn a_remote_pipeline_waits_resolving_then_starts_from_what_was_fetched() {
    let mut world = world();
    world.run.spec.pipeline_ref = None;
    let actions = decide_remote(&world, PipelineLookup::Resolving { what: "fetching" });
    assert!(created(&actions).is_empty(), "no child while fetching");
    let (state, reason, message) = condition(&written_status(&actions));
    assert_eq!((state.as_str(), reason.as_str()), ("Unknown", "Resolving"));
    assert_eq!(message, "spec.remotePipeline: fetching");

    let from = ResolvedFrom {
        resolver: "cluster".into(),
        name: "release".into(),
        uri: "catalog/release".into(),
        commit: None,
        path: None,
    };
    let pipeline = world.pipeline.clone();
    let actions = decide_remote(
        &world,
        PipelineLookup::Resolved {
            name: "release",
            spec: &pipeline,
            from: &from,
        },
    );
    assert!(!created(&actions).is_empty(), "the first tasks start");
    let status = written_status(&actions);
    assert_eq!(status.resolved_from.as_ref(), Some(&from));
    assert_eq!(status.pipeline_spec.as_ref(), Some(&pipeline));

    let actions = decide_remote(
        &world,
        PipelineLookup::Unresolved {
            problem: "no such thing",
        },
    );
    let (state, reason, message) = condition(&written_status(&actions));
    assert_eq!(
        (state.as_str(), reason.as_str()),
        ("False", "PipelineRunResolutionFailed")
    );
    assert_eq!(message, "spec.remotePipeline: no such thing");
}

#[test]
fn a_missing_task_is_a_resolution_failure_naming_it() {
    let mut world = world();
    world.tasks.remove("push");
    let actions = world.decide(0);
    assert!(created(&actions).is_empty(), "nothing starts when a task is missing");
    let (state, reason, message) = condition(&written_status(&actions));
    assert_eq!(
        (state.as_str(), reason.as_str()),
        ("False", "PipelineRunResolutionFailed")
    );
    assert!(
        message.contains("MyTask \"push\"") && message.contains("namespace \"ci\""),
        "{message}"
    );
}

#[test]
fn an_invalid_pipeline_fails_validation_with_every_problem() {
    let mut world = world();
    world.pipeline.tasks[1].params[0].value = ParamValue::Array(vec!["a".into()]);
    world.pipeline.tasks[1].params.push(cicd_controller::api::Param {
        name: "IMAGE2".into(),
        value: ParamValue::String("$(tasks.tag.results.NOPE)".into()),
    });
    world.run.spec.workspaces.clear();
    let actions = world.decide(0);
    assert!(created(&actions).is_empty());
    let (state, reason, message) = condition(&written_status(&actions));
    assert_eq!(
        (state.as_str(), reason.as_str()),
        ("False", "PipelineRunValidationFailed")
    );
    assert!(
        message.contains("param \"IMAGE\" is declared as string but the value given is array"),
        "{message}"
    );
    assert!(
        message.contains("task \"tag\" declares no result \"NOPE\""),
        "{message}"
    );
    assert!(message.contains("param \"IMAGE2\" is not declared"), "{message}");
    assert!(
        message.contains("workspace \"shared\" is required by the pipeline"),
        "{message}"
    );
}

#[test]
fn a_task_run_spec_gives_its_task_s_child_the_account_and_pod_settings() {
    let mut world = world();
    world.run.spec.service_account_name = Some("builder".into());
    world.run.spec.task_run_specs = vec![cicd_controller::api::PipelineTaskRunSpec {
        pipeline_task_name: "tag".into(),
        service_account_name: Some("tagger".into()),
        pod_template: Some(cicd_controller::api::PodTemplate {
            priority_class_name: Some("fast".into()),
            ..Default::default()
        }),
        compute_resources: serde_json::from_str(r#"{"limits": {"memory": "2Gi"}}"#).ok(),
        sidecar_specs: serde_json::from_str(r#"[{"name": "db", "computeResources": {"limits": {"cpu": "1"}}}]"#)
            .expect("sidecar specs"),
        ..Default::default()
    }];
    let actions = world.decide(0);
    let child = created(&actions)[0];
    assert_eq!(child.spec.service_account_name.as_deref(), Some("tagger"));
    assert_eq!(child.spec.sidecar_specs[0].name, "db");
    let limits = child.spec.compute_resources.as_ref().and_then(|r| r.limits.as_ref());
    assert_eq!(limits.and_then(|l| l.get("memory")).map(|q| q.0.as_str()), Some("2Gi"));
    assert_eq!(
        child
            .spec
            .pod_template
            .as_ref()
            .and_then(|t| t.priority_class_name.as_deref()),
        Some("fast")
    );

    world.run.spec.task_run_specs[0].pipeline_task_name = "tagg".into();
    let actions = world.decide(0);
    assert!(created(&actions).is_empty());
    let (state, reason, message) = condition(&written_status(&actions));
    assert_eq!(
        (state.as_str(), reason.as_str()),
        ("False", "PipelineRunValidationFailed")
    );
    assert!(
        message.contains("spec.taskRunSpecs[0].pipelineTaskName") && message.contains("no task named \"tagg\""),
        "{message}"
    );
}

#[test]
fn a_task_run_spec_timeout_replaces_the_task_s_and_a_bad_one_is_named() {
    let mut world = world();
    world.run.spec.timeouts = Some(cicd_controller::api::PipelineTimeouts {
        tasks: Some("10m".into()),
        ..Default::default()
    });
    world.run.spec.task_run_specs = vec![cicd_controller::api::PipelineTaskRunSpec {
        pipeline_task_name: "tag".into(),
        timeout: Some("90m".into()),
        ..Default::default()
    }];
    let actions = world.decide(0);
    assert_eq!(created(&actions)[0].spec.timeout.as_deref(), Some("90m"));

    world.run.spec.task_run_specs[0].timeout = Some("soon".into());
    let actions = world.decide(0);
    assert!(created(&actions).is_empty());
    let (state, reason, message) = condition(&written_status(&actions));
    assert_eq!(
        (state.as_str(), reason.as_str()),
        ("False", "PipelineRunValidationFailed")
    );
    assert!(message.contains("spec.taskRunSpecs[0].timeout"), "{message}");
    assert!(message.contains("soon"), "{message}");
}

#[test]
fn an_inline_pipeline_needs_no_lookup() {
    let mut world = world();
    world.run.spec.pipeline_ref = None;
    world.run.spec.pipeline_spec = Some(world.pipeline.clone());
    let observed = Observed {
        run: &world.run,
        pipeline: PipelineLookup::Inline(world.run.spec.pipeline_spec.as_ref().expect("inline")),
        tasks: &world.tasks,
        children: &[],
        problems: &[],
        now: at(0),
    };
    assert_eq!(
        created_names(&decide(observed, Duration::from_secs(3600), &Limits::default())),
        vec!["rel-1-tag"]
    );
}

fn final_condition(actions: &[Action]) -> (String, String, String) {
    let status = written_status(actions);
    let condition = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Succeeded")
        .expect("Succeeded condition");
    (
        condition.status.clone(),
        condition.reason.clone(),
        condition.message.clone(),
    )
}

#[test]
fn a_malformed_pipeline_fails_the_run_naming_the_field() {
    let world = world();
    let problem = "spec.tasks[0].params: invalid type: string \"x\", expected a sequence";
    let observed = Observed {
        run: &world.run,
        pipeline: PipelineLookup::Malformed {
            name: "release",
            problem,
        },
        tasks: &world.tasks,
        children: &[],
        problems: &[],
        now: at(0),
    };
    let actions = decide(observed, Duration::from_secs(3600), &Limits::default());
    assert!(created(&actions).is_empty());
    let (status, reason, message) = final_condition(&actions);
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "PipelineRunValidationFailed")
    );
    assert_eq!(
        message,
        format!("MyPipeline \"release\" in namespace \"ci\" cannot be read: {problem}")
    );
}

#[test]
fn an_unreadable_task_or_child_fails_the_run_and_cancels_running_children() {
    let mut world = world();
    let first = world.decide(0);
    world.create_children(&first);
    world.store(&first);
    let problems = vec!["MyTask \"push\" cannot be read: spec.steps[0].name: missing field `name`".to_string()];
    let observed = Observed {
        run: &world.run,
        pipeline: PipelineLookup::Found {
            name: "release",
            spec: &world.pipeline,
        },
        tasks: &world.tasks,
        children: &world.children,
        problems: &problems,
        now: at(5),
    };
    let actions = decide(observed, Duration::from_secs(3600), &Limits::default());
    let (status, reason, message) = final_condition(&actions);
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "PipelineRunValidationFailed")
    );
    assert_eq!(message, problems[0]);
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::CancelChild(name) if name == "rel-1-tag")),
        "{actions:?}"
    );
}

#[test]
fn child_names_of_different_runs_never_collide() {
    use cicd_controller::reconcile::pipelinerun::child_name;
    // Run `a` + task `b-c` and run `a-b` + task `c` used to share `a-b-c`.
    assert_ne!(child_name("a", "b-c"), child_name("a-b", "c"));
    assert_eq!(child_name("rel-1", "tag"), "rel-1-tag", "readable when unambiguous");
    assert!(child_name("a", "b-c").starts_with("a-b-c-"));
}

#[test]
fn a_workspace_sub_path_takes_the_pipeline_s_params() {
    let mut world = world();
    world.pipeline.tasks[0].workspaces[0].sub_path = Some("$(params.prefix)/src".into());
    let actions = world.decide(0);
    let child = created(&actions)[0];
    assert_eq!(child.spec.workspaces[0].sub_path.as_deref(), Some("v9/src"));
}

#[test]
fn a_param_cannot_move_a_sub_path_out_of_its_workspace() {
    let mut world = world();
    world.pipeline.tasks[0].workspaces[0].sub_path = Some("$(params.prefix)/src".into());
    world.run.spec.params[0].value = ParamValue::String("../../other-team".into());
    let actions = world.decide(0);
    assert!(created_names(&actions).is_empty(), "no child may start");
    let status = actions
        .iter()
        .find_map(|a| match a {
            Action::WriteStatus(status) => Some(status),
            _ => None,
        })
        .expect("a status");
    let (state, reason, message) = condition(status);
    assert_eq!(
        (state.as_str(), reason.as_str()),
        ("False", "PipelineRunValidationFailed")
    );
    assert!(
        message.contains("spec.tasks[0].workspaces[0].subPath: subPath \"../../other-team/src\""),
        "{message}"
    );
}
