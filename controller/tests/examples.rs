//! Every file in `examples/` renders: each MyTaskRun in it gets a pod
//! without validation errors. Files named `invalid-*` show a mistake on
//! purpose and must fail with the message listed here.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cicd_controller::commands::{RenderError, render_yaml};
use cicd_controller::manifests::Manifests;
use cicd_controller::pod::render::RenderSettings;

/// The only image new examples may use: the local busybox+bash image.
const LOCAL_IMAGE: &str = "127.0.0.1:5000/cicd/bash:5";
/// The seed's image, allowed only in the seed's own examples.
const SEED_IMAGE: &str =
    "docker.io/library/bash:5.1.4@sha256:b208215a4655538be652b2769d82e576bc4d0a2bb132144c060efc5be8c3f5d6";
/// The user's original notes, in `shared/` beside the checkout (where the
/// project's machines and CI keep it), relative to the repository.
const SEED_NOTES: &str = "../../shared/seeds/000_8f20caaedef29d29.txt";

/// What each invalid example must say: (file, expected message parts).
const INVALID: &[(&str, &[&str])] = &[
    (
        "invalid-unknown-param.yaml",
        &[
            "MyTaskRun \"invalid-unknown-param-run\": spec.params[1].name: param \"GIT_URL\" is not declared",
            "MyTask \"invalid-unknown-param\": spec.steps[0].script: $(params.IMAGE): no param named \"IMAGE\"",
        ],
    ),
    (
        "invalid-array-as-string.yaml",
        &["spec.taskSpec.steps[0].args[0]: $(params.files[*]) is an array and can only stand alone"],
    ),
];

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// The example files (top level only: `examples/support/` holds plain
/// Kubernetes objects some examples use).
fn example_files() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(examples_dir())
        .expect("examples/ exists")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .map(|path| {
            let name = path.file_name().expect("a file name").to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).expect("readable");
            (name, text)
        })
        .collect();
    files.sort();
    assert!(files.len() >= 10, "expected the examples, found {}", files.len());
    files
}

fn render(name: &str, text: &str) -> Result<String, RenderError> {
    let settings = RenderSettings {
        entrypoint_image: "127.0.0.1:5000/cicd/entrypoint:dev".into(),
        ..Default::default()
    };
    render_yaml(
        &[(format!("examples/{name}"), text.to_string())],
        &settings,
        Duration::from_secs(3600),
    )
}

fn manifests(name: &str, text: &str) -> Manifests {
    let mut manifests = Manifests::default();
    manifests.add_yaml(name, text).unwrap_or_else(|e| panic!("{e}"));
    manifests
}

#[test]
fn every_valid_example_renders_one_pod_per_run() {
    let mut failures = Vec::new();
    for (name, text) in example_files().iter().filter(|(name, _)| !name.starts_with("invalid-")) {
        let manifests = manifests(name, text);
        let runs = manifests.task_runs.len();
        if runs == 0 {
            // Pipeline examples: their task runs are made by the pipeline
            // controller; here they only need to decode and hold a run.
            assert!(
                !manifests.pipeline_runs.is_empty(),
                "{name} holds neither a MyTaskRun nor a MyPipelineRun"
            );
            continue;
        }
        match render(name, text) {
            Ok(yaml) => {
                let pods = yaml.matches("\nkind: Pod\n").count();
                assert_eq!(pods, runs, "{name}: {runs} run(s) but {pods} pod(s)");
            }
            Err(error) => failures.push(format!("{name}:\n{error}")),
        }
    }
    assert!(
        failures.is_empty(),
        "examples that do not render:\n{}",
        failures.join("\n\n")
    );
}

#[test]
fn every_invalid_example_fails_with_its_documented_message() {
    let invalid: Vec<(String, String)> = example_files()
        .into_iter()
        .filter(|(name, _)| name.starts_with("invalid-"))
        .collect();
    assert!(!invalid.is_empty(), "expected at least one invalid-* example");
    for (name, text) in &invalid {
        let (_, expected) = INVALID
            .iter()
            .find(|(file, _)| file == name)
            .unwrap_or_else(|| panic!("{name} is new: add the message it must fail with to INVALID"));
        let message = match render(name, text) {
            Ok(_) => panic!("{name} is named invalid-* but renders without errors"),
            Err(error) => error.to_string(),
        };
        for part in *expected {
            assert!(
                message.contains(part),
                "{name}: message should contain {part:?}, got:\n{message}"
            );
        }
    }
}

#[test]
fn new_examples_use_only_the_local_image() {
    for (name, text) in example_files() {
        let manifests = manifests(&name, &text);
        let mut images: Vec<String> = Vec::new();
        let pipelines = manifests.pipelines.iter().map(|p| &p.spec).chain(
            manifests
                .pipeline_runs
                .iter()
                .filter_map(|r| r.spec.pipeline_spec.as_ref()),
        );
        let pipeline_tasks = pipelines
            .flat_map(|p| p.all_tasks())
            .filter_map(|t| t.task_spec.as_ref());
        for task in manifests
            .tasks
            .iter()
            .map(|t| &t.spec)
            .chain(manifests.task_runs.iter().filter_map(|r| r.spec.task_spec.as_ref()))
            .chain(pipeline_tasks)
        {
            images.extend(task.steps.iter().filter_map(|s| s.image.clone()));
            images.extend(task.step_template.iter().filter_map(|t| t.image.clone()));
            images.extend(task.sidecars.iter().filter_map(|s| s.container.image.clone()));
        }
        let allowed = if name.starts_with("seed-") {
            SEED_IMAGE
        } else {
            LOCAL_IMAGE
        };
        for image in images {
            assert_eq!(image, allowed, "{name} uses image {image}");
        }
    }
}

#[test]
fn seed_examples_are_the_users_yaml_verbatim() {
    let t1 = std::fs::read_to_string(examples_dir().join("seed-t1-tr1.yaml")).expect("seed-t1-tr1.yaml");
    let t2 = std::fs::read_to_string(examples_dir().join("seed-t2-tr2.yaml")).expect("seed-t2-tr2.yaml");
    // Details an editor would "fix": the odd blank lines, the trailing space
    // after tr1's workspace name, t2's $(results.IMAGE_URL) without .path.
    assert!(t1.contains("kind: MyTaskRun\n\nmetadata:\n  name: tr1\n"));
    assert!(t1.contains("    - name: myworkspace \n      emptyDir: {}\n"));
    assert!(t1.contains(r#"| tee "$(results.IMAGE_URL.path)""#));
    assert!(t2.contains(r#"| tee "$(results.IMAGE_URL)""#));
    assert!(t2.contains("      #image: busybox\n"));
    assert!(t1.contains(SEED_IMAGE) && t2.contains(SEED_IMAGE));
    // Where the user's notes are at hand, the files must be blocks of them.
    if let Ok(notes) = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(SEED_NOTES)) {
        assert!(
            notes.contains(&format!("```yaml\n{t1}```")),
            "seed-t1-tr1.yaml is not verbatim from the notes"
        );
        assert!(
            notes.contains(&format!("```yaml\n{t2}```")),
            "seed-t2-tr2.yaml is not verbatim from the notes"
        );
    }
}

#[test]
fn readme_lists_every_example() {
    let readme = std::fs::read_to_string(examples_dir().join("README.md")).expect("examples/README.md");
    for (name, _) in example_files() {
        assert!(
            readme.contains(&format!("`{name}`")),
            "examples/README.md does not list {name}"
        );
    }
    assert!(readme.contains("support/workspaces-config.yaml"));
}

#[test]
fn support_files_are_plain_kubernetes_objects() {
    let support = examples_dir().join("support");
    for entry in std::fs::read_dir(&support).expect("examples/support exists") {
        let path = entry.expect("an entry").path();
        let text = std::fs::read_to_string(&path).expect("readable");
        let documents: Vec<serde_json::Value> =
            serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for document in documents {
            let api_version = document["apiVersion"].as_str().unwrap_or_default();
            assert_eq!(
                api_version,
                "v1",
                "{}: only core objects belong in support/",
                path.display()
            );
        }
    }
}
