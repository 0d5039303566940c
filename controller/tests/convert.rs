//! `convert`: Tekton documents in, our kinds out. The inputs are written
//! here for these tests, in the shapes Tekton users write.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use cicd_controller::api::{ParamType, ParamValue, RunSpecStatus};
use cicd_controller::commands::render_yaml;
use cicd_controller::convert::{ConvertError, convert_yaml};
use cicd_controller::manifests::Manifests;
use cicd_controller::pod::render::RenderSettings;

fn input(text: &str) -> Vec<(String, String)> {
    vec![("ci.yaml".to_string(), text.to_string())]
}

fn manifests(yaml: &str) -> Manifests {
    let mut manifests = Manifests::default();
    manifests
        .add_yaml("converted", yaml)
        .unwrap_or_else(|e| panic!("the output must decode: {e}\n{yaml}"));
    manifests
}

/// Our manifests only, leaving out documents of other kinds.
fn our_documents(yaml: &str) -> String {
    yaml.split("---\n")
        .filter(|doc| doc.contains("cicdoperator.ning1875.io/v1"))
        .map(|doc| format!("---\n{doc}"))
        .collect()
}

const BUILD_TASK: &str = r#"
apiVersion: tekton.dev/v1
kind: Task
metadata:
  name: package-app
  labels: {team: web}
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: "{}"
  uid: 1234
spec:
  description: packs the app into a tarball
  params:
    - name: app
      description: which app
    - name: flags
      type: array
      default: ["-c", "-z"]
    - name: target
      properties:
        dir: {type: string}
      default: {dir: /out}
  results:
    - name: archive
  workspaces:
    - name: src
      readOnly: true
  stepTemplate:
    env:
      - {name: LANG, value: C}
  steps:
    - image: 127.0.0.1:5000/cicd/bash:5
      script: |
        echo packing $(params.app)
    - name: pack
      image: 127.0.0.1:5000/cicd/bash:5
      computeResources:
        requests: {cpu: 10m}
      onError: continue
      command: [tar]
      args: ["$(params.flags[*])", "-f", "$(params.target.dir)/a.tgz", "."]
status:
  whatever: old
"#;

const BUILD_RUN: &str = r#"
apiVersion: tekton.dev/v1
kind: TaskRun
metadata:
  name: package-app-run
spec:
  taskRef:
    name: package-app
    kind: Task
  params:
    - {name: app, value: shop}
  workspaces:
    - name: src
      emptyDir: {}
  timeout: 10m
  taskRunTemplate: null
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  colour: blue
"#;

#[test]
fn a_task_and_its_run_convert_exactly() {
    let text = format!("{BUILD_TASK}---{BUILD_RUN}");
    let output = convert_yaml(&input(&text), false).expect("exact conversion");
    assert!(output.losses.is_empty(), "{:?}", output.losses);
    assert_eq!(output.converted, 2);
    let found = manifests(&our_documents(&output.yaml));
    let task = &found.tasks[0];
    assert_eq!(task.metadata.name.as_deref(), Some("package-app"));
    assert_eq!(
        task.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("team"))
            .map(String::as_str),
        Some("web")
    );
    assert!(
        task.metadata.annotations.is_none(),
        "kubectl's copy of the Tekton object is not kept"
    );
    assert!(task.metadata.uid.is_none());
    assert_eq!(
        task.spec.steps[0].name, "unnamed-0",
        "Tekton's name for an unnamed step"
    );
    assert_eq!(task.spec.steps[1].name, "pack");
    assert_eq!(task.spec.steps[1].on_error.as_deref(), Some("continue"));
    assert!(
        task.spec.steps[1].resources.is_some(),
        "computeResources becomes resources"
    );
    assert_eq!(
        task.spec.params[2].param_type,
        ParamType::Object,
        "properties make an object param"
    );
    assert_eq!(task.spec.step_template.as_ref().map(|t| t.env.len()), Some(1));
    let run = &found.task_runs[0];
    assert_eq!(
        run.spec.task_ref.as_deref(),
        Some("package-app"),
        "taskRef: {{name: x}} becomes taskRef: x"
    );
    assert_eq!(run.spec.timeout.as_deref(), Some("10m"));
    assert!(output.yaml.contains("kind: ConfigMap") && output.yaml.contains("colour: blue"));
}

#[test]
fn other_kinds_pass_through_unchanged() {
    let text = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: token\nstringData:\n  key: abc\ntype: Opaque\n";
    let output = convert_yaml(&input(text), false).expect("nothing to convert");
    assert_eq!(output.converted, 0);
    let before: serde_json::Value = serde_saphyr::from_str(text).expect("input");
    let after: serde_json::Value = serde_saphyr::from_str(output.yaml.trim_start_matches("---\n")).expect("output");
    assert_eq!(before, after);
}

#[test]
fn the_converted_run_renders_to_a_pod_offline() {
    let text = format!("{BUILD_TASK}---{BUILD_RUN}");
    let output = convert_yaml(&input(&text), false).expect("exact conversion");
    let ours = our_documents(&output.yaml);
    let settings = RenderSettings {
        entrypoint_image: "127.0.0.1:5000/cicd/entrypoint:dev".into(),
        ..Default::default()
    };
    let pod = render_yaml(
        &[("converted".into(), ours)],
        &settings,
        std::time::Duration::from_secs(3600),
    )
    .expect("the converted run is valid");
    assert!(pod.contains("name: step-unnamed-0"), "{pod}");
    assert!(
        pod.contains("/out/a.tgz"),
        "the object param's default reached the args: {pod}"
    );
}

#[test]
fn converting_twice_changes_nothing() {
    let text = format!("{BUILD_TASK}---{BUILD_RUN}");
    let once = convert_yaml(&input(&text), false).expect("first");
    let twice = convert_yaml(&input(&once.yaml), false).expect("our kinds pass through");
    assert_eq!(twice.converted, 0);
    let (a, b) = (
        manifests(&our_documents(&once.yaml)),
        manifests(&our_documents(&twice.yaml)),
    );
    let specs = |m: &Manifests| {
        (
            m.tasks
                .iter()
                .map(|t| (t.metadata.clone(), t.spec.clone()))
                .collect::<Vec<_>>(),
            m.task_runs
                .iter()
                .map(|r| (r.metadata.clone(), r.spec.clone()))
                .collect::<Vec<_>>(),
        )
    };
    assert_eq!(specs(&a), specs(&b));
}

const REMOTE_PIPELINE: &str = r#"
apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: ship
spec:
  params:
    - name: repo
  tasks:
    - name: fetch
      taskRef:
        resolver: hub
        params:
          - {name: name, value: "git-clone"}
    - name: test
      runAfter: [fetch]
      description: runs the tests
      matrix:
        params:
          - name: os
            value: [linux, mac]
      taskSpec:
        steps:
          - image: 127.0.0.1:5000/cicd/bash:5
            script: echo $(params.os)
            ports:
              - containerPort: 80
"#;

#[test]
fn what_cannot_be_mapped_is_refused_naming_each_field() {
    let error = convert_yaml(&input(REMOTE_PIPELINE), false).expect_err("lossy");
    let ConvertError::Lossy(losses) = &error else {
        panic!("expected losses, got {error}");
    };
    let fields: Vec<&str> = losses.iter().map(|l| l.field.as_str()).collect();
    assert_eq!(
        fields,
        vec![
            "spec.tasks[0].taskRef.resolver",
            "spec.tasks[0].taskRef.params",
            "spec.tasks[1].taskSpec.steps[0].ports",
            "spec.tasks[1].description",
        ]
    );
    let text = error.to_string();
    assert!(
        text.contains(
            "ci.yaml: Pipeline \"ship\": spec.tasks[0].taskRef.resolver: remote resolution is not supported here yet"
        ),
        "{text}"
    );
    assert!(text.contains("--allow-lossy"), "{text}");
}

const REMOTE_RUNS: &str = r#"
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: with-remote-task}
spec:
  tasks:
    - name: clone
      taskRef:
        resolver: git
        params:
          - {name: url, value: "git://10.244.0.1/catalog.git"}
          - {name: pathInRepo, value: task/clone.yaml}
---
apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {name: from-git}
spec:
  taskRef:
    resolver: git
    params:
      - {name: url, value: "git://10.244.0.1/catalog.git"}
      - {name: revision, value: main}
      - {name: pathInRepo, value: task/hello.yaml}
      - {name: token, value: secret-name}
---
apiVersion: tekton.dev/v1
kind: PipelineRun
metadata: {name: from-cluster}
spec:
  pipelineRef:
    resolver: cluster
    params:
      - {name: kind, value: pipeline}
      - {name: name, value: ship}
"#;

#[test]
fn a_runs_git_or_cluster_reference_becomes_a_remote_reference() {
    let error = convert_yaml(&input(REMOTE_RUNS), false).expect_err("the token param is lossy");
    let ConvertError::Lossy(losses) = &error else {
        panic!("expected losses, got {error}");
    };
    let fields: Vec<&str> = losses.iter().map(|l| l.field.as_str()).collect();
    assert_eq!(fields, vec!["spec.taskRef.params[3]"]);
    let output = convert_yaml(&input(REMOTE_RUNS), true).expect("lossy allowed");
    let found = manifests(&output.yaml);
    let remote = found.task_runs[0].spec.remote_task.as_ref().expect("remoteTask");
    assert_eq!(remote.resolver, cicd_controller::api::ResolverName::Git);
    let names: Vec<&str> = remote.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, vec!["url", "revision", "pathInRepo"]);
    assert_eq!(found.task_runs[0].spec.task_ref, None);
    let remote = found.pipeline_runs[0]
        .spec
        .remote_pipeline
        .as_ref()
        .expect("remotePipeline");
    assert_eq!(remote.resolver, cicd_controller::api::ResolverName::Cluster);
    assert_eq!(remote.params.len(), 2);
    let task = &found.pipelines[0].spec.tasks[0];
    let remote = task.remote_task.as_ref().expect("a pipeline task's remoteTask");
    assert_eq!(remote.resolver, cicd_controller::api::ResolverName::Git);
    assert_eq!((task.task_ref.as_ref(), remote.params.len()), (None, 2));
}

#[test]
fn a_bundles_reference_becomes_a_remote_reference_with_its_params() {
    let yaml = r#"
apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {name: from-bundle}
spec:
  taskRef:
    resolver: bundles
    params:
      - {name: bundle, value: "registry.example/catalog/tasks:1"}
      - {name: name, value: build}
      - {name: kind, value: task}
      - {name: secret, value: pull}
"#;
    let output = convert_yaml(&input(yaml), false).expect("nothing lost");
    let found = manifests(&output.yaml);
    let remote = found.task_runs[0].spec.remote_task.as_ref().expect("remoteTask");
    assert_eq!(remote.resolver, cicd_controller::api::ResolverName::Bundles);
    let names: Vec<&str> = remote.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["bundle", "name", "kind", "secret"]);
}

#[test]
fn allow_lossy_writes_the_rest_and_still_lists_the_losses() {
    let output = convert_yaml(&input(REMOTE_PIPELINE), true).expect("lossy allowed");
    assert_eq!(output.losses.len(), 4);
    let found = manifests(&output.yaml);
    let pipeline = &found.pipelines[0];
    assert_eq!(pipeline.spec.tasks[0].task_ref, None);
    assert_eq!(pipeline.spec.tasks[1].run_after, vec!["fetch".to_string()]);
    assert_eq!(
        pipeline.spec.tasks[1]
            .task_spec
            .as_ref()
            .map(|t| t.steps[0].name.as_str()),
        Some("unnamed-0")
    );
}

#[test]
fn step_and_sidecar_specs_convert_and_v1beta1_overrides_become_them() {
    let text = r#"
apiVersion: tekton.dev/v1beta1
kind: TaskRun
metadata: {name: old}
spec:
  taskRef: {name: build}
  stepOverrides:
    - name: compile
      resources: {limits: {memory: 2Gi}}
  sidecarOverrides:
    - name: db
      resources: {limits: {cpu: "1"}}
---
apiVersion: tekton.dev/v1
kind: PipelineRun
metadata: {name: new}
spec:
  pipelineRef: {name: ship}
  taskRunSpecs:
    - pipelineTaskName: build
      stepSpecs:
        - name: compile
          computeResources: {requests: {cpu: 500m}}
"#;
    let output = convert_yaml(&input(text), false).expect("exact");
    let found = manifests(&output.yaml);
    let run = &found.task_runs[0].spec;
    assert_eq!(
        (run.step_specs[0].name.as_str(), run.sidecar_specs[0].name.as_str()),
        ("compile", "db")
    );
    let memory = run.step_specs[0]
        .compute_resources
        .limits
        .as_ref()
        .and_then(|l| l.get("memory"));
    assert_eq!(memory.map(|q| q.0.as_str()), Some("2Gi"));
    let entry = &found.pipeline_runs[0].spec.task_run_specs[0];
    assert_eq!(entry.step_specs[0].name, "compile");
}

#[test]
fn v1beta1_task_run_specs_names_of_the_account_and_pod_template_convert() {
    let text = r#"
apiVersion: tekton.dev/v1beta1
kind: PipelineRun
metadata: {name: old}
spec:
  pipelineRef: {name: ship}
  taskRunSpecs:
    - pipelineTaskName: build
      taskServiceAccountName: builder
      taskPodTemplate:
        nodeSelector: {kubernetes.io/os: linux}
"#;
    let output = convert_yaml(&input(text), false).expect("exact");
    let found = manifests(&output.yaml);
    let entry = &found.pipeline_runs[0].spec.task_run_specs[0];
    assert_eq!(entry.service_account_name.as_deref(), Some("builder"));
    let selector = entry.pod_template.as_ref().and_then(|t| t.node_selector.as_ref());
    assert_eq!(
        selector.and_then(|s| s.get("kubernetes.io/os")).map(String::as_str),
        Some("linux")
    );
}

#[test]
fn a_task_run_spec_with_both_names_of_its_pod_template_reports_the_old_one() {
    let text = r#"
apiVersion: tekton.dev/v1beta1
kind: PipelineRun
metadata: {name: old}
spec:
  pipelineRef: {name: ship}
  taskRunSpecs:
    - pipelineTaskName: build
      podTemplate: {nodeSelector: {a: b}}
      taskPodTemplate: {nodeSelector: {c: d}}
"#;
    let error = convert_yaml(&input(text), false).expect_err("a loss");
    assert!(
        format!("{error}").contains("taskRunSpecs[0].taskPodTemplate"),
        "{error}"
    );
}

#[test]
fn a_step_action_becomes_a_my_step_action_and_the_step_keeps_its_ref() {
    let text = r#"
apiVersion: tekton.dev/v1beta1
kind: StepAction
metadata:
  name: greet
spec:
  params:
    - name: who
      default: world
    - name: how
      default: hello
  image: 127.0.0.1:5000/cicd/bash:5
  script: echo "$(params.how) $(params.who)"
---
apiVersion: tekton.dev/v1
kind: TaskRun
metadata:
  name: greeting
spec:
  params:
    - name: person
      value: ada
  taskSpec:
    params:
      - name: person
    steps:
      - name: say
        ref:
          name: greet
        params:
          - name: who
            value: $(params.person)
"#;
    let output = convert_yaml(&input(text), false).expect("exact");
    let found = manifests(&output.yaml);
    assert_eq!(found.step_actions[0].spec.params.len(), 2);
    let step = &found.task_runs[0].spec.task_spec.as_ref().expect("inline").steps[0];
    assert_eq!(step.step_ref.as_ref().map(|r| r.name.as_str()), Some("greet"));
    assert_eq!(step.params[0].name, "who");
    // Offline, the action comes from the same manifests, params filled in.
    let settings = RenderSettings::default();
    let rendered = render_yaml(&input(&output.yaml), &settings, Duration::from_secs(3600)).expect("renders");
    assert!(rendered.contains(&base64_of("echo \"hello ada\"")), "{rendered}");
}

/// What `prepare` carries a script as.
fn base64_of(script: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(script)
}

#[test]
fn a_step_action_alone_converts_and_a_remote_one_is_reported() {
    let text = "apiVersion: tekton.dev/v1alpha1\nkind: StepAction\nmetadata:\n  name: lonely\nspec:\n  image: x\n";
    let output = convert_yaml(&input(text), false).expect("exact");
    assert_eq!(manifests(&output.yaml).step_actions[0].spec.image, "x");
    let remote = r#"
apiVersion: tekton.dev/v1
kind: Task
metadata: {name: t}
spec:
  steps:
    - name: s
      ref: {resolver: git, params: [{name: url, value: "https://git.example/x"}]}
"#;
    let output = convert_yaml(&input(remote), false).expect("a remote step action is kept");
    let reference = manifests(&output.yaml).tasks[0].spec.steps[0]
        .step_ref
        .clone()
        .expect("a ref");
    assert_eq!(reference.resolver, Some(cicd_controller::api::ResolverName::Git));
    assert_eq!((reference.name.as_str(), reference.params.len()), ("", 1));
    let hub = remote.replace("resolver: git", "resolver: hub");
    let error = convert_yaml(&input(&hub), false).expect_err("a resolver we lack");
    assert!(error.to_string().contains("spec.steps[0].ref.resolver"), "{error}");
}

#[test]
fn a_v1beta1_pipeline_run_maps_its_old_fields() {
    let text = r#"
apiVersion: tekton.dev/v1beta1
kind: PipelineRun
metadata:
  generateName: nightly-
spec:
  serviceAccountName: builder
  serviceAccountNames:
    - {taskName: one, serviceAccountName: lister}
  timeout: 1h
  status: PipelineRunCancelled
  params:
    - name: list
      value: [a, b]
  workspaces:
    - name: data
      volumeClaimTemplate:
        spec:
          accessModes: [ReadWriteOnce]
          resources: {requests: {storage: 1Mi}}
  pipelineSpec:
    workspaces:
      - name: data
    tasks:
      - name: one
        taskRef: {name: lister}
        workspaces:
          - {name: out, workspace: data, subPath: one}
        when:
          - {input: "$(params.list[0])", operator: in, values: [a]}
    results:
      - name: done
        value: $(tasks.one.results.done)
"#;
    let output = convert_yaml(&input(text), false).expect("exact");
    let run = &manifests(&output.yaml).pipeline_runs[0];
    assert_eq!(run.metadata.generate_name.as_deref(), Some("nightly-"));
    assert_eq!(run.spec.service_account_name.as_deref(), Some("builder"));
    let per_task: Vec<(&str, Option<&str>)> = run
        .spec
        .task_run_specs
        .iter()
        .map(|t| (t.pipeline_task_name.as_str(), t.service_account_name.as_deref()))
        .collect();
    assert_eq!(per_task, [("one", Some("lister"))]);
    assert_eq!(
        run.spec.timeouts.as_ref().and_then(|t| t.pipeline.as_deref()),
        Some("1h")
    );
    assert_eq!(run.spec.status, Some(RunSpecStatus::Cancelled));
    assert_eq!(
        run.spec.params[0].value,
        ParamValue::Array(vec!["a".into(), "b".into()])
    );
    let spec = run.spec.pipeline_spec.as_ref().expect("inline pipeline");
    assert_eq!(spec.tasks[0].task_ref.as_deref(), Some("lister"));
    assert_eq!(spec.tasks[0].workspaces[0].sub_path.as_deref(), Some("one"));
    assert_eq!(
        spec.results[0].value,
        ParamValue::String("$(tasks.one.results.done)".into())
    );
}

#[test]
fn the_v1_task_run_template_becomes_the_run_s_own_fields() {
    let text = r#"
apiVersion: tekton.dev/v1
kind: PipelineRun
metadata: {name: r}
spec:
  pipelineRef: {name: p}
  taskRunTemplate:
    serviceAccountName: deployer
    podTemplate:
      nodeSelector: {disk: ssd}
      dnsPolicy: None
"#;
    let output = convert_yaml(&input(text), true).expect("lossy allowed");
    let fields: Vec<&str> = output.losses.iter().map(|l| l.field.as_str()).collect();
    assert_eq!(fields, vec!["spec.taskRunTemplate.podTemplate.dnsPolicy"]);
    let run = &manifests(&output.yaml).pipeline_runs[0];
    assert_eq!(run.spec.pipeline_ref.as_deref(), Some("p"));
    assert_eq!(run.spec.service_account_name.as_deref(), Some("deployer"));
    assert!(
        run.spec
            .pod_template
            .as_ref()
            .and_then(|t| t.node_selector.as_ref())
            .is_some()
    );
}

#[test]
fn task_run_specs_and_display_names_are_kept() {
    let text = r#"
apiVersion: tekton.dev/v1
kind: PipelineRun
metadata: {name: r}
spec:
  taskRunSpecs:
    - pipelineTaskName: deploy
      serviceAccountName: deployer
      timeout: 2h
      podTemplate:
        nodeSelector: {pool: deploy}
      computeResources:
        requests: {cpu: "1"}
  pipelineSpec:
    displayName: Ship
    tasks:
      - name: deploy
        displayName: Deploy it
        taskSpec:
          displayName: Deployer
          steps:
            - {name: go, displayName: Go, image: i, script: "true"}
"#;
    let output = convert_yaml(&input(text), false).expect("an exact conversion");
    let run = &manifests(&output.yaml).pipeline_runs[0];
    let entry = &run.spec.task_run_specs[0];
    let requests = entry.compute_resources.as_ref().and_then(|r| r.requests.as_ref());
    assert_eq!(requests.and_then(|r| r.get("cpu")).map(|q| q.0.as_str()), Some("1"));
    assert_eq!(entry.pipeline_task_name, "deploy");
    assert_eq!(entry.service_account_name.as_deref(), Some("deployer"));
    assert_eq!(entry.timeout.as_deref(), Some("2h"));
    assert!(
        entry
            .pod_template
            .as_ref()
            .and_then(|t| t.node_selector.as_ref())
            .is_some()
    );
    let spec = run.spec.pipeline_spec.as_ref().expect("inline pipeline");
    assert_eq!(spec.display_name.as_deref(), Some("Ship"));
    assert_eq!(spec.tasks[0].display_name.as_deref(), Some("Deploy it"));
    let task = spec.tasks[0].task_spec.as_ref().expect("inline task");
    assert_eq!(task.display_name.as_deref(), Some("Deployer"));
    assert_eq!(task.steps[0].display_name.as_deref(), Some("Go"));
}

#[test]
fn isolated_step_and_sidecar_workspaces_convert_exactly() {
    let text = r#"
apiVersion: tekton.dev/v1
kind: Task
metadata: {name: publish}
spec:
  workspaces:
    - {name: source}
    - {name: registry-auth, readOnly: true}
  steps:
    - name: push
      image: i
      script: "true"
      workspaces:
        - {name: registry-auth, mountPath: /auth}
    - name: test
      image: i
      script: "true"
  sidecars:
    - name: cache
      image: i
      workspaces:
        - {name: source}
"#;
    let output = convert_yaml(&input(text), false).expect("an exact conversion");
    let task = &manifests(&output.yaml).tasks[0].spec;
    let push = &task.steps[0].workspaces;
    assert_eq!(push.len(), 1);
    assert_eq!(push[0].name, "registry-auth");
    assert_eq!(push[0].mount_path.as_deref(), Some("/auth"));
    assert!(task.steps[1].workspaces.is_empty());
    let cache: Vec<&str> = task.sidecars[0].workspaces.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(cache, vec!["source"]);
}

#[test]
fn object_result_properties_convert_exactly() {
    let text = r#"
apiVersion: tekton.dev/v1
kind: Task
metadata: {name: describe-image}
spec:
  results:
    - name: image
      type: object
      properties:
        url: {type: string}
        digest: {type: string}
  steps:
    - {name: write, image: i, script: "true"}
"#;
    let output = convert_yaml(&input(text), false).expect("an exact conversion");
    let result = &manifests(&output.yaml).tasks[0].spec.results[0];
    let keys: Vec<&str> = result.properties.iter().flatten().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, vec!["digest", "url"]);
}

#[test]
fn a_projected_workspace_binding_converts_exactly_and_csi_is_reported() {
    let text = r#"
apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {name: show-settings}
spec:
  taskRef: {name: show}
  workspaces:
    - name: settings
      projected:
        sources:
          - configMap: {name: app-config}
          - secret: {name: app-token}
    - name: cache
      csi: {driver: example.driver}
"#;
    let error = convert_yaml(&input(text), false).expect_err("csi is lossy");
    let ConvertError::Lossy(losses) = &error else {
        panic!("expected losses, got {error}");
    };
    let fields: Vec<&str> = losses.iter().map(|l| l.field.as_str()).collect();
    assert_eq!(fields, vec!["spec.workspaces[1].csi"]);
    let output = convert_yaml(&input(text), true).expect("lossy allowed");
    let run = &manifests(&output.yaml).task_runs[0];
    let projected = run.spec.workspaces[0].projected.as_ref().expect("kept");
    assert_eq!(projected.sources.as_ref().map(Vec::len), Some(2));
}

#[test]
fn a_wrongly_typed_value_is_an_error_naming_the_field() {
    let text = "apiVersion: tekton.dev/v1\nkind: Task\nmetadata: {name: t}\nspec:\n  steps:\n    - name: s\n      image: i\n      command: echo\n";
    let error = convert_yaml(&input(text), true).expect_err("command must be a list");
    assert!(
        error.to_string().contains("Task \"t\"") && error.to_string().contains("spec.steps[0].command"),
        "{error}"
    );
}

fn cli(args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cicd-controller"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("finishes");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_command_reads_stdin_and_fails_on_losses_unless_allowed() {
    let (ok, stdout, stderr) = cli(&["convert", "-f", "-"], REMOTE_PIPELINE);
    assert!(!ok, "losses make it fail");
    assert!(stdout.is_empty(), "nothing is written: {stdout}");
    assert!(
        stderr.contains("stdin: Pipeline \"ship\": spec.tasks[1].description"),
        "{stderr}"
    );

    let (ok, stdout, stderr) = cli(&["convert", "--allow-lossy", "-f", "-"], REMOTE_PIPELINE);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("kind: MyPipeline"), "{stdout}");
    assert!(
        stderr.contains("warning: stdin: Pipeline \"ship\": spec.tasks[0].taskRef.resolver"),
        "{stderr}"
    );

    let (ok, stdout, stderr) = cli(&["convert", "-f", "-"], BUILD_TASK);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("kind: MyTask"), "{stdout}");
}

/// A Tekton pipeline that fans a task out over two lists, adds a flag to
/// one combination and one combination of its own, then reads the
/// aggregated results.
const MATRIX_PIPELINE: &str = r#"
apiVersion: tekton.dev/v1
kind: Task
metadata:
  name: compile
spec:
  params:
    - name: goos
    - name: goarch
    - name: tags
      default: ""
  results:
    - name: binary
  steps:
    - name: go-build
      image: 127.0.0.1:5000/cicd/bash:5
      script: echo -n "bin-$(params.goos)-$(params.goarch)$(params.tags)" > $(results.binary.path)
---
apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: cross-build
spec:
  params:
    - name: systems
      type: array
      default: [linux, darwin]
  tasks:
    - name: compile
      taskRef:
        name: compile
      matrix:
        params:
          - name: goos
            value: $(params.systems[*])
          - name: goarch
            value: [amd64, arm64]
        include:
          - name: netgo-on-linux
            params:
              - name: goos
                value: linux
              - name: tags
                value: -netgo
          - name: s390x
            params:
              - name: goos
                value: linux
              - name: goarch
                value: s390x
    - name: publish
      params:
        - name: binaries
          value: $(tasks.compile.results.binary[*])
      taskSpec:
        params:
          - name: binaries
            type: array
        steps:
          - name: list
            image: 127.0.0.1:5000/cicd/bash:5
            args: ["$(params.binaries[*])"]
            script: echo "$@"
---
apiVersion: tekton.dev/v1
kind: PipelineRun
metadata:
  name: cross-build-1
spec:
  pipelineRef:
    name: cross-build
"#;

#[test]
fn a_matrix_converts_field_for_field_and_fans_out_in_render() {
    let output = convert_yaml(&input(MATRIX_PIPELINE), false).expect("a matrix maps exactly");
    assert!(output.losses.is_empty(), "{:?}", output.losses);
    let ours = our_documents(&output.yaml);
    let found = manifests(&ours);
    let matrix = found.pipelines[0].spec.tasks[0]
        .matrix
        .as_ref()
        .expect("the matrix is kept");
    let names: Vec<&str> = matrix.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["goos", "goarch"]);
    assert_eq!(
        matrix.params[1].value,
        ParamValue::Array(vec!["amd64".into(), "arm64".into()])
    );
    assert_eq!(matrix.include.len(), 2);
    assert_eq!(matrix.include[0].name.as_deref(), Some("netgo-on-linux"));
    assert_eq!(matrix.include[1].params[1].value, ParamValue::String("s390x".into()));

    let settings = RenderSettings {
        entrypoint_image: "127.0.0.1:5000/cicd/entrypoint:dev".into(),
        ..Default::default()
    };
    let rendered = render_yaml(
        &[("converted".into(), ours)],
        &settings,
        std::time::Duration::from_secs(3600),
    )
    .expect("the converted pipeline run renders");
    let children = rendered.matches("child MyTaskRun \"cross-build-1-compile-").count();
    assert_eq!(children, 5, "2 x 2 combinations and the s390x one: {rendered}");
    let headers: Vec<&str> = rendered
        .lines()
        .filter(|l| l.contains("child MyTaskRun \"cross-build-1-compile-"))
        .map(|l| l.split("(params: ").nth(1).unwrap_or_default())
        .collect();
    assert_eq!(
        headers,
        [
            "goos=linux, goarch=amd64, tags=-netgo)",
            "goos=darwin, goarch=amd64)",
            "goos=linux, goarch=arm64, tags=-netgo)",
            "goos=darwin, goarch=arm64)",
            "goos=linux, goarch=s390x)",
        ],
        "include added tags to linux and a combination of its own: {rendered}"
    );
    assert!(
        rendered.contains("child MyTaskRun \"cross-build-1-publish\""),
        "{rendered}"
    );
}

/// Go's JSON decoding, and so Tekton, matches field names regardless of
/// case; written that way they mean the same here.
const ODD_CASE: &str = r#"
apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {name: odd-case}
spec:
  workspaces: [{name: creds, emptyDir: {}}]
  TaskSpec:
    workspaces: [{name: creds}]
    sidecars:
      - image: 127.0.0.1:5000/cicd/bash:5
        command: [sleep, "60"]
    steps:
      - image: 127.0.0.1:5000/cicd/bash:5
        script: ls /creds
        workspaces: [{name: creds, mountpath: /creds}]
"#;

#[test]
fn field_names_match_regardless_of_case_as_in_tekton() {
    let output = convert_yaml(&input(ODD_CASE), false).expect("converts exactly");
    let yaml = our_documents(&output.yaml);
    assert!(
        yaml.contains("mountPath: /creds") && !yaml.contains("mountpath"),
        "{yaml}"
    );
    let manifests = manifests(&yaml);
    let run = &manifests.task_runs[0];
    let task = run.spec.task_spec.as_ref().expect("the TaskSpec became taskSpec");
    assert_eq!(task.steps[0].workspaces[0].mount_path.as_deref(), Some("/creds"));
    // An unnamed sidecar is named as an unnamed step is.
    assert_eq!(task.sidecars[0].container.name, "unnamed-0");
}

#[test]
fn a_field_inside_a_part_passed_on_whole_is_never_dropped_silently() {
    let text = ODD_CASE.replace("mountpath: /creds", "mountPath: /creds, readonly: true, colour: red");
    let error = convert_yaml(&input(&text), false).expect_err("lossy");
    let ConvertError::Lossy(losses) = &error else {
        panic!("expected losses, got {error}");
    };
    let found: Vec<(&str, &str)> = losses.iter().map(|l| (l.field.as_str(), l.why.as_str())).collect();
    assert_eq!(
        found,
        [
            (
                "spec.taskSpec.steps[0].workspaces[0].colour",
                "unknown field (known: mountPath, name); dropped"
            ),
            (
                "spec.taskSpec.steps[0].workspaces[0].readonly",
                "unknown field (known: mountPath, name); dropped"
            ),
        ]
    );
}
