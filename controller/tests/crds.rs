//! The CRDs: `deploy/crds.yaml` is exactly what the code generates, and
//! each CRD has what `kubectl` users rely on.

use std::path::Path;

use cicd_controller::api::crds;
use cicd_controller::commands::crds_yaml;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

/// kubectl's client-side apply keeps the object in an annotation, and all
/// annotations together may not exceed 256 KiB.
const APPLY_ANNOTATION_LIMIT: usize = 256 * 1024;

fn crd(kind: &str) -> CustomResourceDefinition {
    crds()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .unwrap_or_else(|| panic!("no CRD for {kind}"))
}

#[test]
fn deploy_crds_yaml_matches_the_generated_crds() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/crds.yaml");
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = crds_yaml().expect("the CRDs serialize");
    let first_difference = checked_in
        .lines()
        .zip(generated.lines())
        .position(|(old, new)| old != new)
        .unwrap_or(checked_in.lines().count().min(generated.lines().count()));
    assert!(
        checked_in == generated,
        "deploy/crds.yaml is out of date with the API types (first difference at line {}); regenerate it with:\n    \
         cargo run -p cicd-controller -- crd > deploy/crds.yaml",
        first_difference + 1
    );
}

#[test]
fn crds_yaml_holds_the_five_kinds_in_order() {
    let yaml = crds_yaml().expect("the CRDs serialize");
    let names: Vec<&str> = yaml
        .lines()
        .filter_map(|line| line.strip_prefix("  name: "))
        .filter(|name| name.ends_with(".cicdoperator.ning1875.io"))
        .collect();
    assert_eq!(
        names,
        [
            "mytasks.cicdoperator.ning1875.io",
            "mytaskruns.cicdoperator.ning1875.io",
            "mypipelines.cicdoperator.ning1875.io",
            "mypipelineruns.cicdoperator.ning1875.io",
            "mystepactions.cicdoperator.ning1875.io",
        ]
    );
}

#[test]
fn every_crd_is_namespaced_v1_in_the_cicd_category_with_its_short_name() {
    for (kind, short) in [
        ("MyTask", "mt"),
        ("MyTaskRun", "mtr"),
        ("MyPipeline", "mp"),
        ("MyPipelineRun", "mpr"),
        ("MyStepAction", "msa"),
    ] {
        let crd = crd(kind);
        assert_eq!(crd.spec.group, "cicdoperator.ning1875.io");
        assert_eq!(crd.spec.scope, "Namespaced", "{kind}");
        assert_eq!(
            crd.spec.names.short_names.as_deref(),
            Some(&[short.to_string()][..]),
            "{kind}"
        );
        assert_eq!(
            crd.spec.names.categories.as_deref(),
            Some(&["cicd".to_string()][..]),
            "{kind}"
        );
        assert_eq!(crd.spec.versions.len(), 1, "{kind}");
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1");
        assert!(version.served && version.storage, "{kind}");
        assert!(
            version
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .is_some(),
            "{kind} has a schema"
        );
    }
}

#[test]
fn run_kinds_have_the_status_subresource() {
    for kind in ["MyTaskRun", "MyPipelineRun"] {
        let crd = crd(kind);
        let subresources = crd.spec.versions[0].subresources.as_ref();
        assert!(
            subresources.is_some_and(|s| s.status.is_some()),
            "{kind} needs the status subresource"
        );
    }
}

#[test]
fn run_kinds_print_succeeded_reason_and_times() {
    for kind in ["MyTaskRun", "MyPipelineRun"] {
        let crd = crd(kind);
        let columns = crd.spec.versions[0]
            .additional_printer_columns
            .clone()
            .unwrap_or_default();
        let summary: Vec<(String, String, String)> =
            columns.into_iter().map(|c| (c.name, c.type_, c.json_path)).collect();
        let succeeded = r#".status.conditions[?(@.type=="Succeeded")]"#;
        // A task run also shows its condition's message (why it failed,
        // e.g. which result was over which limit).
        let message = (kind == "MyTaskRun").then(|| {
            (
                "Message".to_string(),
                "string".to_string(),
                format!("{succeeded}.message"),
            )
        });
        let mut expected = vec![
            (
                "Succeeded".to_string(),
                "string".to_string(),
                format!("{succeeded}.status"),
            ),
            (
                "Reason".to_string(),
                "string".to_string(),
                format!("{succeeded}.reason"),
            ),
            (
                "StartTime".to_string(),
                "date".to_string(),
                ".status.startTime".to_string(),
            ),
            (
                "CompletionTime".to_string(),
                "date".to_string(),
                ".status.completionTime".to_string(),
            ),
        ];
        expected.extend(message);
        assert_eq!(summary, expected, "{kind}");
    }
}

#[test]
fn each_crd_fits_in_kubectls_apply_annotation() {
    for crd in crds() {
        let kind = crd.spec.names.kind.clone();
        let yaml = serde_saphyr::to_string(&crd).expect("YAML");
        let json = serde_json::to_string(&crd).expect("JSON");
        assert!(
            yaml.len() < APPLY_ANNOTATION_LIMIT,
            "{kind}: YAML is {} bytes",
            yaml.len()
        );
        // The annotation holds the JSON form.
        assert!(
            json.len() < APPLY_ANNOTATION_LIMIT,
            "{kind}: JSON is {} bytes",
            json.len()
        );
    }
}
