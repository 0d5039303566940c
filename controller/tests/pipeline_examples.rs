//! Every pipeline example (examples/pipeline-*.yaml) validates against the
//! tasks in its own file (or, for runs of the reusable pipelines, against
//! pipelines/ and the task catalog in tasks/), and the reusable pipelines
//! parse and form a valid DAG.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cicd_controller::api::TaskSpec;
use cicd_controller::manifests::Manifests;
use cicd_controller::pipeline::dag::build_dag;
use cicd_controller::pipeline::validate::{PipelineInputs, validate_pipeline};
use cicd_controller::pipeline::variables::context_variables;

fn files(dir: &str, prefix: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir);
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("directory exists")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            name.starts_with(prefix) && name.ends_with(".yaml")
        })
        .collect();
    found.sort();
    found
}

fn load(path: &Path) -> Manifests {
    let mut manifests = Manifests::default();
    let text = std::fs::read_to_string(path).expect("readable");
    manifests.add_yaml(&path.display().to_string(), &text).expect("parses");
    manifests
}

/// The reusable pipelines and the catalog tasks (RBAC files hold plain
/// Kubernetes objects and are left out).
fn catalog() -> Manifests {
    let mut manifests = Manifests::default();
    let catalog_files = files("pipelines", "").into_iter().chain(files("tasks", ""));
    for path in catalog_files.filter(|p| !p.to_string_lossy().ends_with("-rbac.yaml")) {
        let text = std::fs::read_to_string(&path).expect("readable");
        manifests.add_yaml(&path.display().to_string(), &text).expect("parses");
    }
    manifests
}

#[test]
fn pipeline_examples_validate() {
    let examples = files("examples", "pipeline-");
    assert!(examples.len() >= 4, "{examples:?}");
    let catalog = catalog();
    for path in examples {
        let mut manifests = load(&path);
        // Runs of the reusable pipelines name pipelines/ and tasks/.
        manifests.pipelines.extend(catalog.pipelines.iter().cloned());
        manifests.tasks.extend(catalog.tasks.iter().cloned());
        assert!(
            !manifests.pipeline_runs.is_empty(),
            "{}: no MyPipelineRun",
            path.display()
        );
        for run in &manifests.pipeline_runs {
            let spec = match (&run.spec.pipeline_ref, &run.spec.pipeline_spec) {
                (None, Some(inline)) => inline.clone(),
                (Some(name), None) => manifests
                    .pipelines
                    .iter()
                    .find(|p| p.metadata.name.as_deref() == Some(name))
                    .unwrap_or_else(|| panic!("{}: no MyPipeline {name}", path.display()))
                    .spec
                    .clone(),
                _ => panic!("{}: set pipelineRef or pipelineSpec", path.display()),
            };
            let task_specs: BTreeMap<String, TaskSpec> = spec
                .all_tasks()
                .map(|task| {
                    let found = match (&task.task_spec, &task.task_ref) {
                        (Some(inline), _) => inline.clone(),
                        (None, Some(name)) => manifests.task(name).expect("task in the same file").spec.clone(),
                        (None, None) => panic!("{}: task {} has no task", path.display(), task.name),
                    };
                    (task.name.clone(), found)
                })
                .collect();
            let context = context_variables("run", "default", "uid", "pipeline");
            let inputs = PipelineInputs {
                spec: &spec,
                field: "spec",
                task_specs: &task_specs,
                run_params: &run.spec.params,
                run_workspaces: &run.spec.workspaces,
                timeouts: run.spec.timeouts.as_ref(),
                task_run_specs: &run.spec.task_run_specs,
                context: &context,
                max_tasks: cicd_controller::engine::limits::DEFAULT_MAX_PIPELINE_TASKS,
                max_matrix_combinations: cicd_controller::engine::limits::DEFAULT_MAX_MATRIX_COMBINATIONS,
            };
            if let Err(errors) = validate_pipeline(&inputs) {
                panic!("{}: {errors}", path.display());
            }
        }
    }
}

#[test]
fn reusable_pipelines_form_valid_dags() {
    let pipelines = files("pipelines", "");
    assert!(pipelines.len() >= 2, "{pipelines:?}");
    for path in pipelines {
        let manifests = load(&path);
        assert_eq!(manifests.pipelines.len(), 1, "{}", path.display());
        let dag = build_dag(&manifests.pipelines[0].spec, "spec").unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            dag.order[..3],
            ["clone".to_string(), "tag".to_string(), "build-push".to_string()]
        );
    }
}
