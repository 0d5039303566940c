//! The pod a run gets.
//!
//! Golden files in `tests/golden/` hold the full render of some examples, so
//! any change to a pod shows up in review. Rewrite them after an intended
//! change with:
//!
//!     UPDATE_GOLDEN=1 cargo test -p cicd-controller --test render
//!
//! The other tests spell out the properties that matter, one at a time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use cicd_controller::api::MyTaskRun;
use cicd_controller::commands::render_yaml;
use cicd_controller::image::{ImageCommand, ImageLookup, ImageLookups};
use cicd_controller::manifests::Manifests;
use cicd_controller::plan::{AttemptInputs, Plan, TaskSource, images_to_look_up, plan_task_run, plan_task_run_with};
use cicd_controller::pod::credentials::{SecretFacts, credentials_of};
use cicd_controller::pod::render::RenderSettings;
use cicd_controller::pod::resources::quantity_value;
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use serde_json::json;

const ENTRYPOINT_IMAGE: &str = "127.0.0.1:5000/cicd/entrypoint:dev";
const ONE_HOUR: Duration = Duration::from_secs(3600);

fn settings() -> RenderSettings {
    RenderSettings {
        entrypoint_image: ENTRYPOINT_IMAGE.to_string(),
        ..Default::default()
    }
}

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(relative)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------
// Golden renders
// ---------------------------------------------------------------------------

/// Describes the first difference between two texts, with a few lines of
/// context, so a failing comparison can be read without a diff tool.
fn first_difference(expected: &str, actual: &str) -> String {
    let expected_lines: Vec<&str> = expected.lines().collect();
    let actual_lines: Vec<&str> = actual.lines().collect();
    let line = expected_lines
        .iter()
        .zip(&actual_lines)
        .position(|(e, a)| e != a)
        .unwrap_or(expected_lines.len().min(actual_lines.len()));
    let from = line.saturating_sub(3);
    let show = |lines: &[&str]| -> String {
        (from..(line + 4).min(lines.len()))
            .map(|i| format!("{}{:>5} | {}\n", if i == line { ">" } else { " " }, i + 1, lines[i]))
            .collect()
    };
    format!(
        "first difference at line {} (expected {} lines, got {})\n--- expected\n{}+++ actual\n{}",
        line + 1,
        expected_lines.len(),
        actual_lines.len(),
        show(&expected_lines),
        show(&actual_lines),
    )
}

/// Renders `examples/<example>.yaml` and compares it with
/// `tests/golden/<example>.pod.yaml` (or rewrites it with UPDATE_GOLDEN=1).
fn check_golden(example: &str) {
    let source = format!("examples/{example}.yaml");
    let text = read(&repo_path(&source));
    let rendered = render_yaml(&[(source.clone(), text)], &settings(), ONE_HOUR)
        .unwrap_or_else(|e| panic!("{source} does not render: {e}"));
    let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{example}.pod.yaml"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden.parent().expect("a parent")).expect("create tests/golden");
        std::fs::write(&golden, &rendered).expect("write the golden file");
        return;
    }
    let expected = read(&golden);
    assert!(
        expected == rendered,
        "the render of {source} differs from {}\n{}\nIf the change is intended, run:\n    UPDATE_GOLDEN=1 cargo test -p cicd-controller --test render",
        golden.display(),
        first_difference(&expected, &rendered),
    );
}

#[test]
fn golden_seed_t1_tr1() {
    check_golden("seed-t1-tr1");
}

#[test]
fn golden_seed_t2_tr2() {
    check_golden("seed-t2-tr2");
}

#[test]
fn golden_params() {
    check_golden("params");
}

#[test]
fn golden_workspaces() {
    check_golden("workspaces");
}

#[test]
fn golden_sidecar() {
    check_golden("sidecar");
}

#[test]
fn golden_step_template() {
    check_golden("step-template");
}

#[test]
fn difference_report_points_at_the_first_changed_line() {
    let report = first_difference("a\nb\nc\n", "a\nB\nc\n");
    assert!(report.starts_with("first difference at line 2"), "{report}");
    assert!(report.contains(">    2 | b"), "{report}");
    assert!(report.contains(">    2 | B"), "{report}");
}

// ---------------------------------------------------------------------------
// Helpers for the property tests
// ---------------------------------------------------------------------------

fn manifests_of(example: &str) -> Manifests {
    let mut manifests = Manifests::default();
    let source = format!("examples/{example}.yaml");
    manifests
        .add_yaml(&source, &read(&repo_path(&source)))
        .expect("the example decodes");
    manifests
}

/// Plans attempt `attempt` of the first run of an example, after `edit`
/// has changed the run.
fn plan_example(example: &str, attempt: u32, edit: impl FnOnce(&mut MyTaskRun)) -> Plan {
    let manifests = manifests_of(example);
    let mut run = manifests.task_runs[0].clone();
    run.metadata.uid = Some("0c5a3a43-uid".into());
    run.metadata.namespace = Some("ci".into());
    edit(&mut run);
    let result = match (&run.spec.task_spec, &run.spec.task_ref) {
        (Some(inline), _) => plan_task_run(&run, inline, TaskSource::Inline, attempt, ONE_HOUR, &settings()),
        (None, Some(name)) => {
            let task = &manifests.task(name).expect("the example has its task").spec;
            plan_task_run(&run, task, TaskSource::Named(name), attempt, ONE_HOUR, &settings())
        }
        (None, None) => panic!("the example's run names no task"),
    };
    result.unwrap_or_else(|errors| panic!("{example} is invalid: {errors}"))
}

fn seed_t1() -> Pod {
    plan_example("seed-t1-tr1", 0, |_| {}).pod
}

fn spec(pod: &Pod) -> &PodSpec {
    pod.spec.as_ref().expect("a pod spec")
}

fn container_names(containers: &[Container]) -> Vec<&str> {
    containers.iter().map(|c| c.name.as_str()).collect()
}

fn args(container: &Container) -> Vec<&str> {
    container.args.iter().flatten().map(String::as_str).collect()
}

/// The value following `flag` in a container's args.
fn flag_value<'a>(container: &'a Container, flag: &str) -> Option<&'a str> {
    let args = container.args.as_deref().unwrap_or_default();
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

/// The scripts the `prepare` init container writes, decoded: (file, text).
fn prepared_scripts(pod: &Pod) -> Vec<(String, String)> {
    let prepare = &spec(pod).init_containers.as_ref().expect("init containers")[0];
    assert_eq!(prepare.name, "prepare");
    let args = prepare.args.as_deref().unwrap_or_default();
    args.iter()
        .zip(args.iter().skip(1))
        .filter(|(flag, _)| *flag == "--script")
        .map(|(_, value)| {
            let (name, encoded) = value.split_once('=').expect("name=base64");
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .expect("valid base64");
            (name.to_string(), String::from_utf8(bytes).expect("UTF-8"))
        })
        .collect()
}

fn mount_path_of(container: &Container, volume: &str) -> Option<String> {
    container
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.name == volume)
        .map(|m| m.mount_path.clone())
}

// ---------------------------------------------------------------------------
// Containers and the hand-off between steps
// ---------------------------------------------------------------------------

#[test]
fn containers_are_the_steps_in_order() {
    let pod = plan_example("seed-t2-tr2", 0, |_| {}).pod;
    assert_eq!(
        container_names(&spec(&pod).containers),
        ["step-genarate-image-tag", "step-hello-world"]
    );
    let scripts = plan_example("scripts", 0, |_| {}).pod;
    assert_eq!(
        container_names(&spec(&scripts).containers),
        ["step-bash-script", "step-sh-script", "step-command-and-args"]
    );
}

#[test]
fn each_step_runs_the_entrypoint_and_waits_for_the_previous_one() {
    let pod = plan_example("scripts", 0, |_| {}).pod;
    for (index, container) in spec(&pod).containers.iter().enumerate() {
        assert_eq!(
            container.command.as_deref(),
            Some(&["/cicd/bin/entrypoint".to_string()][..])
        );
        assert_eq!(args(container)[0], "step");
        let expected_wait = (index > 0).then(|| format!("/cicd/run/{}/out", index - 1));
        assert_eq!(
            flag_value(container, "--wait-file").map(str::to_string),
            expected_wait,
            "step {index}"
        );
        assert_eq!(
            flag_value(container, "--post-file"),
            Some(format!("/cicd/run/{index}/out").as_str())
        );
        assert_eq!(container.termination_message_path.as_deref(), Some("/cicd/termination"));
        assert_eq!(container.termination_message_policy.as_deref(), Some("File"));
    }
}

#[test]
fn a_script_step_runs_its_script_file_and_a_command_step_its_command() {
    let pod = plan_example("scripts", 0, |_| {}).pod;
    let containers = &spec(&pod).containers;
    let after_dashes = |c: &Container| -> Vec<String> {
        let args = args(c);
        let dashes = args.iter().position(|a| *a == "--").expect("a -- separator");
        args[dashes + 1..].iter().map(|a| a.to_string()).collect()
    };
    assert_eq!(after_dashes(&containers[0]), ["/cicd/scripts/0-bash-script"]);
    assert_eq!(after_dashes(&containers[1]), ["/cicd/scripts/1-sh-script"]);
    assert_eq!(
        after_dashes(&containers[2]),
        ["/bin/echo", "command", "and", "args", "for", "scripts-demo-run"]
    );
}

#[test]
fn prepare_carries_each_script_substituted_and_base64_encoded() {
    let pod = seed_t1();
    let scripts = prepared_scripts(&pod);
    assert_eq!(scripts.len(), 1);
    let (name, script) = &scripts[0];
    assert_eq!(name, "0-genarate-image-tag");
    let seed_script = read(&repo_path("examples/seed-t1-tr1.yaml"))
        .split("script: |\n")
        .nth(1)
        .and_then(|rest| rest.split("\n---").next())
        .expect("the seed's script")
        .lines()
        .map(|line| line.strip_prefix("        ").unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n");
    let expected = seed_script
        .trim_end()
        .replace(
            "$(params.IMAGE_BASE_PATH)",
            "registry.cn-beijing.aliyuncs.com/ning1875_haiwai_image/mytask-01",
        )
        .replace("$(params.GIT_REVISION)", "")
        .replace("$(results.IMAGE_URL.path)", "/cicd/results/IMAGE_URL")
        + "\n";
    assert_eq!(script, &expected);
    assert!(
        script.contains("random_str=$(date +%s%N | md5sum |cut -c 1-9)"),
        "shell code is left alone"
    );
    let init = &spec(&pod).init_containers.as_ref().expect("init containers")[0];
    assert_eq!(init.image.as_deref(), Some(ENTRYPOINT_IMAGE));
    assert_eq!(init.command.as_deref(), Some(&["/cicd-entrypoint".to_string()][..]));
    assert!(
        !args(init).iter().any(|a| a.contains("$(")),
        "no $(...) left for Kubernetes to expand"
    );
}

#[test]
fn only_script_steps_get_a_script_file() {
    let scripts = prepared_scripts(&plan_example("scripts", 0, |_| {}).pod);
    let names: Vec<&str> = scripts.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["0-bash-script", "1-sh-script"]);
    assert!(scripts[0].1.starts_with("#!/bin/bash\n"));
    assert!(scripts[1].1.contains("task run scripts-demo-run"));
}

#[test]
fn declared_results_step_timeout_and_on_error_reach_the_entrypoint() {
    let pod = seed_t1();
    assert_eq!(flag_value(&spec(&pod).containers[0], "--results"), Some("IMAGE_URL"));
    assert_eq!(
        flag_value(&spec(&pod).containers[0], "--results-dir"),
        Some("/cicd/results")
    );

    let pod = plan_example("step-timeout", 0, |_| {}).pod;
    let containers = &spec(&pod).containers;
    assert_eq!(flag_value(&containers[0], "--timeout"), Some("30s"));
    assert_eq!(flag_value(&containers[1], "--timeout"), Some("2s"));
    assert_eq!(flag_value(&containers[1], "--on-error"), Some("continue"));
    assert_eq!(flag_value(&containers[2], "--timeout"), None);
    assert_eq!(flag_value(&containers[0], "--on-error"), None);
}

// ---------------------------------------------------------------------------
// Pod metadata and pod-level settings
// ---------------------------------------------------------------------------

#[test]
fn pod_never_restarts_and_is_owned_by_the_run() {
    let pod = seed_t1();
    assert_eq!(spec(&pod).restart_policy.as_deref(), Some("Never"));
    assert_eq!(pod.metadata.name.as_deref(), Some("tr1-pod"));
    assert_eq!(pod.metadata.namespace.as_deref(), Some("ci"));
    let owners = pod.metadata.owner_references.as_deref().expect("an owner");
    assert_eq!(owners.len(), 1);
    assert_eq!(owners[0].api_version, "cicdoperator.ning1875.io/v1");
    assert_eq!(owners[0].kind, "MyTaskRun");
    assert_eq!(owners[0].name, "tr1");
    assert_eq!(owners[0].uid, "0c5a3a43-uid");
    assert_eq!(owners[0].controller, Some(true));
}

#[test]
fn pod_labels_name_the_run_task_and_attempt_and_keep_the_runs_labels() {
    let plan = plan_example("seed-t1-tr1", 0, |run| {
        run.metadata.labels = Some([("team".to_string(), "payments".to_string())].into());
    });
    let labels = plan.pod.metadata.labels.expect("labels");
    assert_eq!(labels["app.kubernetes.io/managed-by"], "cicd-operator");
    assert_eq!(labels["cicdoperator.ning1875.io/taskRun"], "tr1");
    assert_eq!(labels["cicdoperator.ning1875.io/task"], "t1");
    assert_eq!(labels["cicdoperator.ning1875.io/attempt"], "0");
    assert_eq!(labels["team"], "payments");
}

#[test]
fn a_retry_gets_its_own_pod_name_and_attempt_label() {
    let pod = plan_example("retries", 1, |_| {}).pod;
    assert_eq!(pod.metadata.name.as_deref(), Some("retries-demo-run-pod-retry1"));
    assert_eq!(
        pod.metadata.labels.expect("labels")["cicdoperator.ning1875.io/attempt"],
        "1"
    );
    let script = &prepared_scripts(&plan_example("retries", 1, |_| {}).pod)[0].1;
    assert!(script.starts_with("attempt=1\n"), "{script}");
}

#[test]
fn active_deadline_is_one_hour_by_default_none_with_zero_and_follows_the_timeout() {
    assert_eq!(spec(&seed_t1()).active_deadline_seconds, Some(3600));
    let no_timeout = plan_example("seed-t1-tr1", 0, |run| run.spec.timeout = Some("0".into())).pod;
    assert_eq!(spec(&no_timeout).active_deadline_seconds, None);
    let two_minutes = plan_example("run-timeout", 0, |_| {}).pod;
    assert_eq!(spec(&two_minutes).active_deadline_seconds, Some(120));
}

#[test]
fn pod_template_settings_are_passed_through() {
    let pod = plan_example("pod-template", 0, |_| {}).pod;
    let spec = spec(&pod);
    assert_eq!(
        spec.node_selector.as_ref().expect("a node selector")["kubernetes.io/os"],
        "linux"
    );
    assert_eq!(
        spec.tolerations.as_ref().expect("tolerations")[0].key.as_deref(),
        Some("example.com/dedicated-ci")
    );
    assert_eq!(spec.security_context.as_ref().and_then(|s| s.fs_group), Some(2000));
    assert_eq!(spec.enable_service_links, Some(false));
    assert_eq!(spec.host_network, None);

    let host = plan_example("sidecar", 0, |_| {}).pod;
    assert_eq!(host.spec.as_ref().and_then(|s| s.host_network), Some(true));
    assert_eq!(
        host.spec.as_ref().and_then(|s| s.dns_policy.as_deref()),
        Some("ClusterFirstWithHostNet")
    );
}

#[test]
fn service_account_is_passed_through() {
    let pod = plan_example("seed-t1-tr1", 0, |run| {
        run.spec.service_account_name = Some("builder".into())
    })
    .pod;
    assert_eq!(spec(&pod).service_account_name.as_deref(), Some("builder"));
}

// ---------------------------------------------------------------------------
// Workspaces and volumes
// ---------------------------------------------------------------------------

#[test]
fn seed_workspace_is_mounted_at_workspace_myworkspace_in_every_step() {
    for example in ["seed-t1-tr1", "seed-t2-tr2"] {
        let pod = plan_example(example, 0, |_| {}).pod;
        let volume = spec(&pod)
            .volumes
            .iter()
            .flatten()
            .find(|v| v.empty_dir.is_some() && v.name.starts_with("cicd-ws-"))
            .expect("a volume for the workspace");
        for container in &spec(&pod).containers {
            assert_eq!(
                mount_path_of(container, &volume.name).as_deref(),
                Some("/workspace/myworkspace"),
                "{example}"
            );
            assert_eq!(container.working_dir.as_deref(), Some("/workspace"));
        }
    }
}

#[test]
fn volume_claim_template_becomes_a_claim_owned_by_the_run() {
    let plan = plan_example("workspaces", 0, |_| {});
    assert_eq!(plan.claims.len(), 1);
    let claim = &plan.claims[0];
    assert_eq!(claim.metadata.name.as_deref(), Some("workspaces-demo-run-cache"));
    assert_eq!(claim.metadata.namespace.as_deref(), Some("ci"));
    assert_eq!(
        claim.metadata.owner_references.as_ref().expect("an owner")[0].name,
        "workspaces-demo-run"
    );

    let spec = spec(&plan.pod);
    let volume = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| {
            v.persistent_volume_claim
                .as_ref()
                .is_some_and(|c| c.claim_name == "workspaces-demo-run-cache")
        })
        .expect("the pod mounts the claim");
    let mount = spec.containers[0]
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.name == volume.name)
        .expect("a mount");
    assert_eq!(mount.mount_path, "/cache");
    assert_eq!(mount.sub_path.as_deref(), Some("build-cache"));
}

#[test]
fn optional_workspace_left_unbound_gets_no_volume() {
    let pod = plan_example("workspaces", 0, |_| {}).pod;
    let workspace_volumes = spec(&pod)
        .volumes
        .iter()
        .flatten()
        .filter(|v| v.name.starts_with("cicd-ws-"))
        .count();
    assert_eq!(workspace_volumes, 2, "source and cache, not the unbound credentials");
}

#[test]
fn config_map_and_secret_workspaces_are_mounted_read_only() {
    let pod = plan_example("workspaces-configmap-secret", 0, |_| {}).pod;
    let spec = spec(&pod);
    let mounts = spec.containers[0].volume_mounts.as_deref().unwrap_or_default();
    for (path, source) in [("/workspace/settings", "configMap"), ("/etc/demo-token", "secret")] {
        let mount = mounts
            .iter()
            .find(|m| m.mount_path == path)
            .unwrap_or_else(|| panic!("no mount at {path}"));
        assert_eq!(mount.read_only, Some(true), "{path}");
        let volume = spec
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == mount.name)
            .expect("the volume");
        let has_source = match source {
            "configMap" => volume
                .config_map
                .as_ref()
                .is_some_and(|c| c.name == "cicd-demo-settings"),
            _ => volume
                .secret
                .as_ref()
                .is_some_and(|s| s.secret_name.as_deref() == Some("cicd-demo-token")),
        };
        assert!(has_source, "{path} should come from the {source}");
    }
}

/// The pod of an inline run in namespace `ci` given as JSON `spec`.
fn pod_of_inline_run(spec: serde_json::Value) -> Pod {
    pod_of_inline_run_with(spec, &AttemptInputs::default())
}

/// The pod of a run with an inline `taskSpec`, given what its namespace has.
fn pod_of_inline_run_with(spec: serde_json::Value, inputs: &AttemptInputs) -> Pod {
    let run: MyTaskRun = serde_json::from_value(json!({
        "apiVersion": "cicdoperator.ning1875.io/v1", "kind": "MyTaskRun",
        "metadata": { "name": "inline", "namespace": "ci", "uid": "0c5a3a43-uid" },
        "spec": spec,
    }))
    .expect("a run");
    let task = run.spec.task_spec.clone().expect("inline");
    plan_task_run_with(&run, &task, TaskSource::Inline, 0, (ONE_HOUR, &settings()), inputs)
        .unwrap_or_else(|errors| panic!("invalid: {errors}"))
        .pod
}

#[test]
fn step_results_get_a_directory_and_their_readers_and_task_result_reach_the_entrypoint() {
    let image = "127.0.0.1:5000/cicd/bash:5";
    let pod = pod_of_inline_run(json!({ "taskSpec": {
        "results": [{ "name": "image-digest", "value": "$(steps.build.results.digest)" }],
        "steps": [
            { "name": "build", "image": image, "results": [{ "name": "digest" }],
              "script": "printf x > $(step.results.digest.path)" },
            { "name": "push", "image": image, "command": ["push", "$(steps.build.results.digest)"] },
        ],
    }}));
    let spec = spec(&pod);
    let prepare = &spec.init_containers.as_ref().expect("init containers")[0];
    let made: Vec<&str> = args(prepare)
        .windows(2)
        .filter(|pair| pair[0] == "--mkdir")
        .map(|pair| pair[1])
        .collect();
    assert!(made.contains(&"/cicd/run/0/results"), "{made:?}");
    assert!(!made.contains(&"/cicd/run/1/results"), "push declares none: {made:?}");
    let [build, push] = &spec.containers[..] else {
        panic!("two steps")
    };
    assert_eq!(
        flag_value(build, "--result-from-step"),
        Some("image-digest=/cicd/run/0/results/digest")
    );
    assert_eq!(flag_value(build, "--step-result-ref"), None);
    // The step reports its own step results (for status.steps[].results).
    assert_eq!(
        flag_value(build, "--step-result"),
        Some("digest=/cicd/run/0/results/digest")
    );
    assert_eq!(flag_value(push, "--step-result"), None);
    assert_eq!(
        flag_value(push, "--step-result-ref"),
        Some("steps.build.results.digest=/cicd/run/0/results/digest")
    );
    let command = args(push);
    assert_eq!(command[command.len() - 2..], ["push", "$(steps.build.results.digest)"]);
}

#[test]
fn the_run_s_pod_template_volumes_join_the_pod() {
    let pod = pod_of_inline_run(json!({
        "taskSpec": { "steps": [{ "name": "one", "image": "127.0.0.1:5000/cicd/bash:5", "script": "ls /cache",
                                  "volumeMounts": [{ "name": "cache", "mountPath": "/cache" }] }] },
        "podTemplate": { "volumes": [{ "name": "cache", "configMap": { "name": "build-cache" } }] },
    }));
    let spec = spec(&pod);
    let cache = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == "cache")
        .expect("the podTemplate's volume");
    assert_eq!(cache.config_map.as_ref().map(|c| c.name.as_str()), Some("build-cache"));
    assert_eq!(mount_path_of(&spec.containers[0], "cache").as_deref(), Some("/cache"));
}

#[test]
fn two_workspaces_bound_to_one_claim_share_one_pod_volume() {
    let pod = pod_of_inline_run(json!({
        "taskSpec": {
            "workspaces": [{ "name": "source" }, { "name": "cache" }, { "name": "scratch" }],
            "steps": [{ "name": "one", "image": "127.0.0.1:5000/cicd/bash:5", "script": "true" }],
        },
        "workspaces": [
            { "name": "source", "persistentVolumeClaim": { "claimName": "shared" }, "subPath": "src" },
            { "name": "cache", "persistentVolumeClaim": { "claimName": "shared" }, "subPath": "cache" },
            { "name": "scratch", "emptyDir": {} },
        ],
    }));
    let spec = spec(&pod);
    let claim_volumes: Vec<&str> = spec
        .volumes
        .iter()
        .flatten()
        .filter(|v| {
            v.persistent_volume_claim
                .as_ref()
                .is_some_and(|c| c.claim_name == "shared")
        })
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(
        claim_volumes.len(),
        1,
        "one pod volume for the claim: {claim_volumes:?}"
    );
    let mounts = spec.containers[0].volume_mounts.as_deref().unwrap_or_default();
    let of = |path: &str| {
        mounts
            .iter()
            .find(|m| m.mount_path == path)
            .map(|m| (m.name.as_str(), m.sub_path.as_deref()))
    };
    assert_eq!(of("/workspace/source"), Some((claim_volumes[0], Some("src"))));
    assert_eq!(of("/workspace/cache"), Some((claim_volumes[0], Some("cache"))));
    let scratch = of("/workspace/scratch").expect("scratch is mounted").0;
    assert_ne!(scratch, claim_volumes[0], "an emptyDir workspace keeps its own volume");
    assert!(spec.volumes.iter().flatten().any(|v| v.name == scratch));
}

#[test]
fn an_isolated_workspace_is_mounted_only_into_the_containers_that_name_it() {
    let pod = pod_of_inline_run(json!({
        "taskSpec": {
            "workspaces": [{ "name": "token", "readOnly": true }, { "name": "source" }],
            "steps": [
                { "name": "login", "image": "i", "script": "true",
                  "workspaces": [{ "name": "token", "mountPath": "/creds" }] },
                { "name": "build", "image": "i", "script": "true" },
            ],
            "sidecars": [{ "name": "agent", "image": "i", "workspaces": [{ "name": "token" }] }],
        },
        "workspaces": [
            { "name": "token", "secret": { "secretName": "deploy-token" } },
            { "name": "source", "emptyDir": {} },
        ],
    }));
    let spec = spec(&pod);
    let token_volume = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| {
            v.secret
                .as_ref()
                .is_some_and(|s| s.secret_name.as_deref() == Some("deploy-token"))
        })
        .map(|v| v.name.clone())
        .expect("the secret's volume");
    let login = &spec.containers[0];
    let build = &spec.containers[1];
    let agent = spec
        .init_containers
        .iter()
        .flatten()
        .find(|c| c.name == "sidecar-agent")
        .expect("the sidecar");
    assert_eq!(
        mount_path_of(login, &token_volume).as_deref(),
        Some("/creds"),
        "the step's own mountPath"
    );
    let read_only = login
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.name == token_volume)
        .and_then(|m| m.read_only);
    assert_eq!(read_only, Some(true), "the workspace's readOnly still holds");
    assert_eq!(
        mount_path_of(agent, &token_volume).as_deref(),
        Some("/workspace/token"),
        "the workspace's own path when the sidecar gives none"
    );
    assert_eq!(
        mount_path_of(build, &token_volume),
        None,
        "a step that does not name it"
    );
    for container in [login, build] {
        let paths: Vec<&str> = container
            .volume_mounts
            .iter()
            .flatten()
            .map(|m| m.mount_path.as_str())
            .collect();
        assert!(paths.contains(&"/workspace/source"), "{}: {paths:?}", container.name);
    }
}

#[test]
fn a_projected_workspace_is_one_read_only_volume_of_its_sources() {
    let pod = pod_of_inline_run(json!({
        "taskSpec": {
            "workspaces": [{ "name": "settings" }],
            "steps": [{ "name": "one", "image": "i", "script": "true" }],
        },
        "workspaces": [{ "name": "settings", "projected": { "sources": [
            { "configMap": { "name": "app-config" } },
            { "secret": { "name": "app-token" } },
        ] } }],
    }));
    let spec = spec(&pod);
    let mount = spec.containers[0]
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.mount_path == "/workspace/settings")
        .expect("the workspace's mount");
    assert_eq!(mount.read_only, Some(true));
    let volume = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == mount.name)
        .expect("its volume");
    let sources = volume.projected.as_ref().map(|p| p.sources.iter().flatten().count());
    assert_eq!(sources, Some(2), "{volume:?}");
}

#[test]
fn a_step_s_own_mount_wins_over_the_implicit_one_at_the_same_path() {
    let pod = pod_of_inline_run(json!({
        "taskSpec": {
            "volumes": [{ "name": "mine", "emptyDir": {} }],
            "steps": [{
                "name": "one", "image": "127.0.0.1:5000/cicd/bash:5", "script": "true",
                "volumeMounts": [{ "name": "mine", "mountPath": "/workspace/" }],
            }],
            "sidecars": [{
                "name": "db", "image": "127.0.0.1:5000/cicd/bash:5",
                "volumeMounts": [{ "name": "mine", "mountPath": "/workspace" }],
            }],
        },
    }));
    let spec = spec(&pod);
    let sidecar = &spec.init_containers.as_deref().expect("init containers")[1];
    for container in [&spec.containers[0], sidecar] {
        let at_workspace: Vec<&str> = container
            .volume_mounts
            .iter()
            .flatten()
            .filter(|m| m.mount_path.trim_end_matches('/') == "/workspace")
            .map(|m| m.name.as_str())
            .collect();
        assert_eq!(at_workspace, ["mine"], "{}", container.name);
    }
    // The step's machinery is still mounted.
    assert!(mount_path_of(&spec.containers[0], "cicd-bin").is_some());
}

#[test]
fn steps_share_one_writable_home_unless_they_set_home_themselves() {
    let pod = pod_of_inline_run(json!({
        "taskSpec": { "steps": [
            { "name": "one", "image": "127.0.0.1:5000/cicd/bash:5", "script": "true" },
            { "name": "two", "image": "127.0.0.1:5000/cicd/bash:5", "script": "true",
              "env": [{ "name": "HOME", "value": "/root" }] },
        ] },
    }));
    let spec = spec(&pod);
    let home = |container: &Container| -> Vec<String> {
        container
            .env
            .iter()
            .flatten()
            .filter(|var| var.name == "HOME")
            .filter_map(|var| var.value.clone())
            .collect()
    };
    assert_eq!(home(&spec.containers[0]), ["/cicd/home"]);
    assert_eq!(home(&spec.containers[1]), ["/root"], "the step's own HOME wins");
    for container in &spec.containers {
        let mount = container
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| m.mount_path == "/cicd/home")
            .unwrap_or_else(|| panic!("{} has no home mount", container.name));
        assert_eq!(mount.read_only, None, "the home is writable");
        let volume = spec
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == mount.name)
            .expect("its volume");
        assert!(volume.empty_dir.is_some(), "one emptyDir per run");
    }
}

#[test]
fn a_sidecar_script_is_written_by_prepare_and_run_as_the_sidecar_s_command() {
    let pod = pod_of_inline_run(json!({
        "params": [{ "name": "port", "value": "8080" }],
        "taskSpec": {
            "params": [{ "name": "port" }],
            "sidecars": [{
                "name": "web", "image": "127.0.0.1:5000/cicd/bash:5",
                "script": "exec serve --port $(params.port)", "args": ["-v"],
            }],
            "steps": [{ "name": "one", "image": "127.0.0.1:5000/cicd/bash:5", "script": "true" }],
        },
    }));
    let scripts = prepared_scripts(&pod);
    assert!(
        scripts.contains(&("sidecar-web".to_string(), "exec serve --port 8080".to_string())),
        "{scripts:?}"
    );
    let sidecar = &spec(&pod).init_containers.as_deref().expect("init containers")[1];
    // Under the entrypoint's `hold`, so a script that ends at once does not
    // make the kubelet restart the sidecar before any step starts.
    let held = ["/cicd/bin/entrypoint", "hold", "--", "/cicd/scripts/sidecar-web"];
    assert_eq!(sidecar.command, Some(held.map(String::from).to_vec()));
    assert_eq!(args(sidecar), ["-v"]);
    assert_eq!(mount_path_of(sidecar, "cicd-scripts").as_deref(), Some("/cicd/scripts"));
    assert_eq!(mount_path_of(sidecar, "cicd-bin").as_deref(), Some("/cicd/bin"));
}

#[test]
fn a_sidecar_on_its_image_s_entrypoint_is_left_unwrapped() {
    let pod = pod_of_inline_run(json!({
        "taskSpec": {
            "sidecars": [{ "name": "daemon", "image": "127.0.0.1:5000/cicd/bash:5", "args": ["--serve"] }],
            "steps": [{ "name": "one", "image": "127.0.0.1:5000/cicd/bash:5", "script": "true" }],
        },
    }));
    let init = spec(&pod).init_containers.as_deref().expect("init containers");
    let sidecar = init.iter().find(|c| c.name == "sidecar-daemon").expect("the sidecar");
    assert_eq!(sidecar.command, None);
    assert_eq!(args(sidecar), ["--serve"]);
    assert_eq!(mount_path_of(sidecar, "cicd-bin"), None);
}

#[test]
fn a_sidecar_s_readiness_probe_also_holds_the_steps_back_until_it_passes() {
    let probe =
        json!({ "exec": { "command": ["test", "-e", "/shared/ready"] }, "periodSeconds": 2, "successThreshold": 2 });
    let pod = pod_of_inline_run(json!({
        "timeout": "10m",
        "taskSpec": {
            "sidecars": [
                { "name": "db", "image": "127.0.0.1:5000/cicd/bash:5", "args": ["--serve"], "readinessProbe": probe },
                { "name": "own", "image": "127.0.0.1:5000/cicd/bash:5", "args": ["--serve"], "readinessProbe": probe,
                  "startupProbe": { "tcpSocket": { "port": 80 } } },
                { "name": "plain", "image": "127.0.0.1:5000/cicd/bash:5", "args": ["--serve"] },
            ],
            "steps": [{ "name": "one", "image": "127.0.0.1:5000/cicd/bash:5", "script": "true" }],
        },
    }));
    let init = spec(&pod).init_containers.as_deref().expect("init containers");
    let sidecar = |name: &str| init.iter().find(|c| c.name == name).expect("the sidecar");

    let startup = sidecar("sidecar-db").startup_probe.as_ref().expect("a startup probe");
    let command = startup.exec.as_ref().and_then(|e| e.command.clone());
    assert_eq!(command, Some(vec!["test".into(), "-e".into(), "/shared/ready".into()]));
    assert_eq!(startup.period_seconds, Some(2));
    assert_eq!(
        startup.success_threshold,
        Some(1),
        "the only value a startup probe may have"
    );
    // It gives up only at the run's timeout: 600 s / 2 s + 1.
    assert_eq!(startup.failure_threshold, Some(301));
    assert!(
        sidecar("sidecar-db").readiness_probe.is_some(),
        "the readiness probe stays"
    );

    let own = sidecar("sidecar-own")
        .startup_probe
        .as_ref()
        .expect("its own startup probe");
    assert!(
        own.tcp_socket.is_some() && own.exec.is_none(),
        "a startup probe given is kept"
    );
    assert!(sidecar("sidecar-plain").startup_probe.is_none());
}

#[test]
fn sidecars_start_before_the_steps_as_native_sidecars() {
    let pod = plan_example("sidecar", 0, |_| {}).pod;
    let init = spec(&pod).init_containers.as_deref().expect("init containers");
    assert_eq!(container_names(init), ["prepare", "sidecar-web"]);
    assert_eq!(init[0].restart_policy, None);
    assert_eq!(init[1].restart_policy.as_deref(), Some("Always"));
    assert!(
        args(&init[1])[0].contains("-p 127.0.0.1:18765"),
        "params are substituted in sidecars"
    );
}

// ---------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------

/// An inline run whose three steps request (and limit) cpu 1, 500m and 2.
fn run_with_cpu_steps() -> MyTaskRun {
    let step = |name: &str, cpu: &str| {
        json!({
            "name": name, "image": "127.0.0.1:5000/cicd/bash:5", "script": "true",
            "resources": { "requests": { "cpu": cpu, "memory": "64Mi" }, "limits": { "cpu": cpu } },
        })
    };
    serde_json::from_value(json!({
        "apiVersion": "cicdoperator.ning1875.io/v1", "kind": "MyTaskRun",
        "metadata": { "name": "sized", "namespace": "ci" },
        "spec": { "taskSpec": { "steps": [step("a", "1"), step("b", "500m"), step("c", "2")] } },
    }))
    .expect("a run")
}

fn quantities(pod: &Pod, which: &str, resource: &str) -> Vec<Option<String>> {
    spec(pod)
        .containers
        .iter()
        .map(|c| {
            let resources = c.resources.as_ref()?;
            let map = if which == "requests" {
                resources.requests.as_ref()
            } else {
                resources.limits.as_ref()
            };
            map?.get(resource).map(|q| q.0.clone())
        })
        .collect()
}

fn sum(values: &[Option<String>]) -> f64 {
    values
        .iter()
        .flatten()
        .map(|q| quantity_value(q).expect("a quantity"))
        .sum()
}

#[test]
fn summed_step_requests_equal_the_largest_steps_request_and_limits_are_kept() {
    let run = run_with_cpu_steps();
    let task = run.spec.task_spec.clone().expect("inline");
    let pod = plan_task_run(&run, &task, TaskSource::Inline, 0, ONE_HOUR, &settings())
        .expect("valid")
        .pod;

    let cpu_requests = quantities(&pod, "requests", "cpu");
    assert_eq!(sum(&cpu_requests), 2.0, "{cpu_requests:?}");
    assert_eq!(
        cpu_requests[2].as_deref(),
        Some("2"),
        "the largest step keeps its request"
    );
    // Equal memory requests: exactly one step keeps 64Mi.
    assert_eq!(sum(&quantities(&pod, "requests", "memory")), 64.0 * 1024.0 * 1024.0);
    let limits = quantities(&pod, "limits", "cpu");
    assert_eq!(
        limits,
        [Some("1".to_string()), Some("500m".to_string()), Some("2".to_string())]
    );
}

#[test]
fn the_runs_compute_resources_replace_the_steps_and_are_requested_once() {
    let mut run = run_with_cpu_steps();
    run.spec.compute_resources = serde_json::from_value(json!({
        "requests": {"cpu": "3", "memory": "1Gi"},
        "limits": {"cpu": "4"}
    }))
    .ok();
    let task = run.spec.task_spec.clone().expect("inline");
    let pod = plan_task_run(&run, &task, TaskSource::Inline, 0, ONE_HOUR, &settings())
        .expect("valid")
        .pod;
    assert_eq!(
        sum(&quantities(&pod, "requests", "cpu")),
        3.0,
        "the pod requests the run's figure once"
    );
    assert_eq!(sum(&quantities(&pod, "requests", "memory")), 1024.0 * 1024.0 * 1024.0);
    let limits = quantities(&pod, "limits", "cpu");
    assert_eq!(
        limits,
        vec![Some("4".to_string()); 3],
        "every step may use the run's limit"
    );
}

#[test]
fn step_template_resources_apply_to_every_step_but_are_requested_once() {
    let pod = plan_example("step-template", 0, |_| {}).pod;
    assert_eq!(sum(&quantities(&pod, "requests", "cpu")), 0.01);
    assert_eq!(sum(&quantities(&pod, "requests", "memory")), 16.0 * 1024.0 * 1024.0);
}

/// A run whose one step's `onError` is `$(params.policy)`.
fn run_with_on_error_param(policy: &str) -> MyTaskRun {
    serde_json::from_value(json!({
        "apiVersion": "cicdoperator.ning1875.io/v1",
        "kind": "MyTaskRun",
        "metadata": {"name": "tolerant", "namespace": "ci"},
        "spec": {
            "params": [{"name": "policy", "value": policy}],
            "taskSpec": {
                "params": [{"name": "policy", "type": "string"}],
                "steps": [{"name": "flaky", "image": "img", "script": "exit 3", "onError": "$(params.policy)"}]
            }
        }
    }))
    .expect("a run")
}

#[test]
fn on_error_can_come_from_a_param_and_a_value_that_names_no_policy_is_refused() {
    let plan = |policy: &str| {
        let run = run_with_on_error_param(policy);
        let task = run.spec.task_spec.clone().expect("inline");
        plan_task_run(&run, &task, TaskSource::Inline, 0, ONE_HOUR, &settings())
    };
    let pod = plan("continue").expect("valid").pod;
    let step = &pod.spec.as_ref().expect("spec").containers[0];
    let args = step.args.clone().unwrap_or_default().join(" ");
    assert!(args.contains("--on-error continue"), "{args}");

    let stop = plan("stopAndFail").expect("valid").pod;
    let args = stop.spec.as_ref().expect("spec").containers[0]
        .args
        .clone()
        .unwrap_or_default();
    assert!(!args.iter().any(|a| a == "--on-error"), "{args:?}");

    let errors = plan("maybe").expect_err("refused").to_string();
    assert!(errors.contains("spec.taskSpec.steps[0].onError"), "{errors}");
    assert!(errors.contains("\"maybe\""), "{errors}");
}

/// `render` of a pipeline run goes wave by wave: every task's child once,
/// parents first (the run from a file has no uid, so its children must
/// still count as its own).
#[test]
fn a_pipeline_run_renders_every_child_once_wave_by_wave() {
    let source = "examples/pipeline-diamond.yaml".to_string();
    let text = read(&repo_path(&source));
    let rendered = render_yaml(&[(source, text)], &settings(), ONE_HOUR).expect("the diamond renders");
    let children: Vec<&str> = rendered
        .lines()
        .filter_map(|line| line.strip_prefix("# MyPipelineRun \"pipeline-diamond-run\": child MyTaskRun "))
        .collect();
    assert_eq!(
        children,
        [
            "\"pipeline-diamond-run-root\"",
            "\"pipeline-diamond-run-left\"",
            "\"pipeline-diamond-run-right\"",
            "\"pipeline-diamond-run-join\""
        ]
    );
}

/// A run's workspace reaches an embedded pipelineSpec's inline tasks that
/// read it, though neither the pipeline nor the tasks declare it.
#[test]
fn a_run_s_workspace_propagates_into_an_embedded_pipeline_spec() {
    let text = r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyPipelineRun
metadata: {name: implicit, namespace: ci}
spec:
  workspaces:
    - {name: shared, emptyDir: {}}
  pipelineSpec:
    tasks:
      - name: write
        taskSpec:
          steps:
            - {name: w, image: i, script: "echo hi > $(workspaces.shared.path)/note"}
"#;
    let rendered = render_yaml(&[("run.yaml".to_string(), text.to_string())], &settings(), ONE_HOUR)
        .unwrap_or_else(|errors| panic!("the run renders: {errors}"));
    assert!(rendered.contains("child MyTaskRun \"implicit-write\""), "{rendered}");
    assert!(rendered.contains("mountPath: /workspace/shared"), "{rendered}");
}

#[test]
fn credentials_reach_the_first_step_only_and_credentials_path_is_the_shared_home() {
    let run: MyTaskRun = serde_json::from_value(json!({
        "apiVersion": "cicdoperator.ning1875.io/v1", "kind": "MyTaskRun",
        "metadata": { "name": "creds", "namespace": "ci", "uid": "0c5a3a43-uid" },
        "spec": { "serviceAccountName": "builder", "taskSpec": { "steps": [
            { "name": "clone", "image": "git", "script": "ls $(credentials.path)" },
            { "name": "push", "image": "push", "command": ["push"] },
        ]}},
    }))
    .expect("a run");
    let git = BTreeMap::from([("tekton.dev/git-0".to_string(), "https://git.example".to_string())]);
    let none = BTreeMap::new();
    let inputs = AttemptInputs {
        credentials: credentials_of(
            "builder",
            &[
                SecretFacts {
                    name: "git-login",
                    secret_type: "kubernetes.io/basic-auth",
                    annotations: &git,
                },
                SecretFacts {
                    name: "pull",
                    secret_type: "kubernetes.io/dockerconfigjson",
                    annotations: &none,
                },
            ],
        ),
        ..AttemptInputs::default()
    };
    let task = run.spec.task_spec.clone().expect("inline");
    let plan = plan_task_run_with(&run, &task, TaskSource::Inline, 0, (ONE_HOUR, &settings()), &inputs)
        .unwrap_or_else(|errors| panic!("invalid: {errors}"));
    let spec = spec(&plan.pod);
    let secret_volumes: Vec<(&str, &str)> = spec
        .volumes
        .iter()
        .flatten()
        .filter_map(|v| Some((v.name.as_str(), v.secret.as_ref()?.secret_name.as_deref()?)))
        .collect();
    assert_eq!(
        secret_volumes,
        [("cicd-creds-0", "git-login"), ("cicd-creds-1", "pull")]
    );
    let [clone, push] = &spec.containers[..] else {
        panic!("two steps")
    };
    assert_eq!(
        mount_path_of(clone, "cicd-creds-0").as_deref(),
        Some("/cicd/creds/git-login")
    );
    assert_eq!(
        mount_path_of(clone, "cicd-creds-1").as_deref(),
        Some("/cicd/creds/pull")
    );
    assert_eq!(
        mount_path_of(push, "cicd-creds-0"),
        None,
        "later steps read HOME, not the Secrets"
    );
    assert_eq!(flag_value(clone, "--credentials-home"), Some("/cicd/home"));
    let given: Vec<&str> = args(clone)
        .windows(2)
        .filter(|pair| pair[0] == "--credential")
        .map(|pair| pair[1])
        .collect();
    assert_eq!(
        given,
        [
            "git-basic-auth:/cicd/creds/git-login=https://git.example",
            "docker-config-json:/cicd/creds/pull"
        ]
    );
    assert_eq!(flag_value(push, "--credential"), None);
    let scripts = prepared_scripts(&plan.pod);
    assert!(
        scripts.iter().any(|(_, text)| text.contains("ls /cicd/home")),
        "{scripts:?}"
    );
}

#[test]
fn a_step_without_command_runs_the_looked_up_entrypoint_with_its_args_or_the_images_cmd() {
    let run: MyTaskRun = serde_json::from_value(json!({
        "apiVersion": "cicdoperator.ning1875.io/v1", "kind": "MyTaskRun",
        "metadata": { "name": "entry", "namespace": "ci", "uid": "0c5a3a43-uid" },
        "spec": { "params": [{ "name": "tool", "value": "tool:1" }], "taskSpec": {
            "params": [{ "name": "tool" }],
            "steps": [
                { "name": "with-args", "image": "registry.example/$(params.tool)", "args": ["build", "."] },
                { "name": "cmd", "image": "registry.example/tool:1" },
                { "name": "no-entrypoint", "image": "registry.example/bash:5", "args": ["-c", "true"] },
                { "name": "plain", "image": "registry.example/bash:5", "command": ["true"] },
            ],
        }},
    }))
    .expect("a run");
    let task = run.spec.task_spec.clone().expect("inline");
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let settings = settings();
    let timing = (ONE_HOUR, &settings);
    assert_eq!(
        images_to_look_up(&run, &task, TaskSource::Inline, 0, timing, &Default::default()),
        ["registry.example/bash:5", "registry.example/tool:1"],
        "substituted, once each, and not for steps with a command"
    );
    let found = |entrypoint: &[&str], cmd: &[&str]| {
        ImageLookup::Found(ImageCommand {
            entrypoint: strings(entrypoint),
            cmd: strings(cmd),
        })
    };
    let inputs = AttemptInputs {
        images: ImageLookups::from([
            (
                "registry.example/tool:1".to_string(),
                found(&["/bin/tool", "-v"], &["help"]),
            ),
            ("registry.example/bash:5".to_string(), found(&[], &["/bin/bash"])),
        ]),
        ..AttemptInputs::default()
    };
    let plan = plan_task_run_with(&run, &task, TaskSource::Inline, 0, timing, &inputs)
        .unwrap_or_else(|errors| panic!("invalid: {errors}"));
    let after_dashes = |c: &Container| -> Vec<String> {
        let args = args(c);
        let dashes = args.iter().position(|a| *a == "--").expect("a -- separator");
        args[dashes + 1..].iter().map(|a| a.to_string()).collect()
    };
    let containers = &spec(&plan.pod).containers;
    assert_eq!(after_dashes(&containers[0]), ["/bin/tool", "-v", "build", "."]);
    assert_eq!(after_dashes(&containers[1]), ["/bin/tool", "-v", "help"]);
    assert_eq!(after_dashes(&containers[2]), ["/bin/bash", "-c", "true"]);
    assert_eq!(after_dashes(&containers[3]), ["true"]);

    let failed = AttemptInputs {
        images: ImageLookups::from([
            ("registry.example/tool:1".to_string(), found(&[], &[])),
            (
                "registry.example/bash:5".to_string(),
                ImageLookup::Failed("registry \"registry.example\": manifests/5: not found (404)".to_string()),
            ),
        ]),
        ..AttemptInputs::default()
    };
    let errors = plan_task_run_with(&run, &task, TaskSource::Inline, 0, timing, &failed)
        .expect_err("the lookups fail the plan")
        .to_string();
    assert!(
        errors.contains("spec.taskSpec.steps[2].image: step \"no-entrypoint\" has no command or script, so it runs image \"registry.example/bash:5\"'s own entrypoint, which could not be looked up: registry \"registry.example\": manifests/5: not found (404)"),
        "{errors}"
    );
    assert!(
        errors.contains("spec.taskSpec.steps[1].image") && errors.contains("sets neither ENTRYPOINT nor CMD"),
        "{errors}"
    );
    assert!(!errors.contains("steps[0]"), "args alone are a command line: {errors}");
    let offline = plan_task_run_with(&run, &task, TaskSource::Inline, 0, timing, &AttemptInputs::default())
        .expect_err("not looked up")
        .to_string();
    assert!(offline.contains("`render` reads no registry"), "{offline}");
}

// ---------------------------------------------------------------------------
// The entrypoint from a ConfigMap: no init container
// ---------------------------------------------------------------------------

/// The pod of an inline run whose namespace has the entrypoint ConfigMap.
fn pod_with_entrypoint_config_map(spec: serde_json::Value) -> Pod {
    let inputs = AttemptInputs {
        entrypoint_config_map: Some("cicd-entrypoint-0123456789ab".to_string()),
        ..AttemptInputs::default()
    };
    pod_of_inline_run_with(spec, &inputs)
}

/// `--script NAME=PART` values of a container, joined per name and decoded.
fn own_scripts(container: &Container) -> Vec<(String, String)> {
    let mut joined: Vec<(String, String)> = Vec::new();
    for pair in args(container).windows(2).filter(|pair| pair[0] == "--script") {
        let (name, part) = pair[1].split_once('=').expect("NAME=PART");
        match joined.last_mut() {
            Some((last, text)) if last == name => text.push_str(part),
            _ => joined.push((name.to_string(), part.to_string())),
        }
    }
    joined
        .into_iter()
        .map(|(name, b64)| {
            let bytes = base64::engine::general_purpose::STANDARD.decode(b64).expect("base64");
            (name, String::from_utf8(bytes).expect("utf-8"))
        })
        .collect()
}

#[test]
fn with_the_entrypoint_config_map_the_pod_has_no_init_container_and_each_step_writes_its_script() {
    let image = "127.0.0.1:5000/cicd/bash:5";
    let pod = pod_with_entrypoint_config_map(json!({
        "params": [{ "name": "who", "value": "world" }],
        "taskSpec": {
            "params": [{ "name": "who" }],
            "steps": [
                { "name": "build", "image": image, "results": [{ "name": "digest" }],
                  "script": "echo hello $(params.who) > $(step.results.digest.path)" },
                { "name": "push", "image": image, "command": ["push", "now"] },
            ],
        },
    }));
    let spec = spec(&pod);
    assert_eq!(spec.init_containers, None, "no prepare container");
    let tools = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == "cicd-bin")
        .expect("the tools volume");
    let config_map = tools.config_map.as_ref().expect("a ConfigMap volume");
    assert_eq!(config_map.name, "cicd-entrypoint-0123456789ab");
    let item = &config_map.items.as_deref().expect("items")[0];
    assert_eq!(
        (item.key.as_str(), item.path.as_str(), item.mode),
        ("entrypoint", "entrypoint", Some(0o555))
    );
    assert!(
        !spec.volumes.iter().flatten().any(|v| v.name == "cicd-scripts"),
        "no scripts volume"
    );

    let [build, push] = &spec.containers[..] else {
        panic!("two steps")
    };
    assert_eq!(build.command, Some(vec!["/cicd/bin/entrypoint".to_string()]));
    assert_eq!(
        own_scripts(build),
        [(
            "0-build".to_string(),
            "echo hello world > /cicd/run/0/results/digest".to_string()
        )]
    );
    assert_eq!(flag_value(build, "--scripts-dir"), Some("/cicd/run/0"));
    assert_eq!(flag_value(build, "--mkdir"), Some("/cicd/run/0/results"));
    assert_eq!(
        args(build).last(),
        Some(&"/cicd/run/0/0-build"),
        "runs the script it wrote"
    );
    assert_eq!(mount_path_of(build, "cicd-scripts"), None);
    assert_eq!(mount_path_of(build, "cicd-bin").as_deref(), Some("/cicd/bin"));

    // A step with a command and no step results lays out nothing.
    for flag in ["--script", "--scripts-dir", "--mkdir"] {
        assert_eq!(flag_value(push, flag), None, "{flag}");
    }
    let command = args(push);
    assert_eq!(command[command.len() - 3..], ["--", "push", "now"]);
}

/// Each step's mounts of the hand-off and results volumes: (path, subPath,
/// read only).
fn run_and_results_mounts(container: &Container) -> Vec<(String, Option<String>, bool)> {
    container
        .volume_mounts
        .iter()
        .flatten()
        .filter(|m| m.name == "cicd-run" || m.name == "cicd-results")
        .map(|m| (m.mount_path.clone(), m.sub_path.clone(), m.read_only == Some(true)))
        .collect()
}

#[test]
fn the_only_step_mounts_the_hand_off_and_results_volumes_whole() {
    let image = "127.0.0.1:5000/cicd/bash:5";
    let step = |name: &str| json!({ "name": name, "image": image, "script": "true" });
    let one = pod_with_entrypoint_config_map(json!({ "taskSpec": { "steps": [step("only")] } }));
    let only = &spec(&one).containers[0];
    assert_eq!(
        run_and_results_mounts(only),
        [
            ("/cicd/run".to_string(), None, false),
            ("/cicd/results".to_string(), None, false)
        ],
        "no subPath: no other step to keep apart from"
    );
    assert_eq!(
        flag_value(only, "--mkdir"),
        Some("/cicd/run/0"),
        "it makes its own directory"
    );
    assert_eq!(flag_value(only, "--scripts-dir"), Some("/cicd/run/0"));

    let two = pod_with_entrypoint_config_map(json!({ "taskSpec": { "steps": [step("a"), step("b")] } }));
    let second = &spec(&two).containers[1];
    assert_eq!(
        run_and_results_mounts(second),
        [
            ("/cicd/run".to_string(), None, true),
            ("/cicd/run/1".to_string(), Some("1".to_string()), false),
            ("/cicd/results".to_string(), Some("1".to_string()), false),
            ("/cicd/results-previous".to_string(), Some("0".to_string()), true),
        ],
        "with two steps each writes only its own directories"
    );
    assert_eq!(flag_value(second, "--mkdir"), None);
}

#[test]
fn a_sidecar_script_keeps_the_init_container_even_with_the_entrypoint_config_map() {
    let pod = pod_with_entrypoint_config_map(json!({ "taskSpec": {
        "sidecars": [{ "name": "web", "image": "127.0.0.1:5000/cicd/bash:5", "script": "exec serve" }],
        "steps": [{ "name": "one", "image": "127.0.0.1:5000/cicd/bash:5", "script": "true" }],
    }}));
    let spec = spec(&pod);
    let init = spec.init_containers.as_deref().expect("init containers");
    assert_eq!(container_names(init), ["prepare", "sidecar-web"]);
    assert!(
        spec.volumes
            .iter()
            .flatten()
            .any(|v| v.name == "cicd-bin" && v.empty_dir.is_some()),
        "the entrypoint is copied as without the ConfigMap"
    );
    assert_eq!(flag_value(&spec.containers[0], "--scripts-dir"), None);
    assert_eq!(args(&spec.containers[0]).last(), Some(&"/cicd/scripts/0-one"));
}

#[test]
fn a_step_reading_tektons_scripts_dir_keeps_the_init_container_and_sees_every_script() {
    let pod = pod_with_entrypoint_config_map(json!({ "taskSpec": {
        "steps": [
            { "name": "one", "image": "127.0.0.1:5000/cicd/bash:5", "script": "true" },
            { "name": "two", "image": "127.0.0.1:5000/cicd/bash:5", "script": "cat /tekton/scripts/*" },
        ],
    }}));
    let spec = spec(&pod);
    let init = spec.init_containers.as_deref().expect("init containers");
    assert_eq!(container_names(init), ["prepare"], "it writes every script");
    let [one, two] = &spec.containers[..] else {
        panic!("two steps")
    };
    let tekton_scripts = |container: &Container| {
        container
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| m.mount_path == "/tekton/scripts")
            .map(|m| (m.name.clone(), m.read_only))
    };
    assert_eq!(tekton_scripts(two), Some(("cicd-scripts".to_string(), Some(true))));
    assert_eq!(tekton_scripts(one), None, "only the step that names it");
}

#[test]
fn the_report_budget_counts_the_prepare_container_only_when_there_is_one() {
    // Four steps: with one, both budgets are the per-container cap.
    let steps: Vec<_> = (0..4)
        .map(|i| json!({ "name": format!("s{i}"), "image": "127.0.0.1:5000/cicd/bash:5", "script": "true" }))
        .collect();
    let task = json!({ "taskSpec": { "steps": steps } });
    let budget = |pod: &Pod| -> usize {
        flag_value(&spec(pod).containers[0], "--max-report-bytes")
            .expect("a budget")
            .parse()
            .expect("a number")
    };
    let with_prepare = budget(&pod_of_inline_run(task.clone()));
    let without = budget(&pod_with_entrypoint_config_map(task));
    assert_eq!(with_prepare, cicd_entrypoint::termination::report_budget(5));
    assert_eq!(without, cicd_entrypoint::termination::report_budget(4));
    assert!(without > with_prepare);
}
