//! End-to-end tests of strict, bounded input on the real cluster: one
//! tenant's malformed run fails alone, with a message naming the field,
//! while another tenant's run goes on as usual.
//!
//! Ignored by default; run by `hack/e2e` (e.g. `hack/e2e strict`).

mod support;

use std::time::{Duration, Instant};

use cicd_controller::api::MyTaskRun;
use support::{BASH, TestNamespace, kubectl_lossy};

/// A quick run with an inline task: what "a good run" means here.
fn good_run(name: &str) -> String {
    format!(
        r#"apiVersion: cicdoperator.ning1875.io/v1
kind: MyTaskRun
metadata:
  name: {name}
spec:
  taskSpec:
    steps:
      - name: hello
        image: {BASH}
        script: echo hello
"#
    )
}

/// A run whose param value nests `depth` lists deep (schemaless in the
/// CRD, so the API server stores it), as JSON, which kubectl applies as is.
fn deep_run(name: &str, depth: usize) -> String {
    let value = format!("{}\"x\"{}", "[".repeat(depth), "]".repeat(depth));
    format!(
        r#"{{"apiVersion":"cicdoperator.ning1875.io/v1","kind":"MyTaskRun","metadata":{{"name":"{name}"}},
"spec":{{"params":[{{"name":"p","value":{value}}}],
"taskSpec":{{"params":[{{"name":"p","type":"array"}}],"steps":[{{"name":"s","image":"{BASH}","script":"true"}}]}}}}}}"#
    )
}

/// `kubectl apply`, returning (succeeded, output) instead of panicking: a
/// refusal at apply time is one of the accepted outcomes.
fn try_apply(namespace: &str, yaml: &str) -> (bool, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("kubectl")
        .args(["apply", "-n", namespace, "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(yaml.as_bytes()).expect("kubectl reads the input");
    }
    let output = child.wait_with_output().expect("kubectl finishes");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// The Succeeded condition of a run as (status, reason, message), read with
/// kubectl: our own typed client could not read a too-deep run either.
fn condition_by_kubectl(namespace: &str, name: &str) -> Option<(String, String, String)> {
    let path = r#"{.status.conditions[?(@.type=="Succeeded")].status}|{.status.conditions[?(@.type=="Succeeded")].reason}|{.status.conditions[?(@.type=="Succeeded")].message}"#;
    let out = kubectl_lossy(&[
        "get",
        "mytaskrun",
        name,
        "-n",
        namespace,
        "-o",
        &format!("jsonpath={path}"),
    ]);
    let mut parts = out.splitn(3, '|');
    let status = parts.next()?.trim().to_string();
    let reason = parts.next()?.trim().to_string();
    let message = parts.next()?.trim().to_string();
    (!status.is_empty()).then_some((status, reason, message))
}

#[tokio::test]
#[ignore = "needs the local cluster: hack/e2e"]
async fn strict_a_run_nested_200_deep_fails_alone_and_a_good_run_elsewhere_succeeds() {
    let bad = TestNamespace::new("e2e-strict-deep").await;
    let good = TestNamespace::new("e2e-strict-good").await;
    let (applied, output) = try_apply(&bad.name, &deep_run("deep", 200));
    let started = Instant::now();
    good.apply(&good_run("fine"));
    good.wait_succeeded::<MyTaskRun>("fine", Duration::from_secs(120)).await;
    let took = started.elapsed();
    eprintln!("good run succeeded {took:.1?} after the deep run was applied");

    if !applied {
        assert!(
            output.contains("spec.params"),
            "refused without naming the field: {output}"
        );
    } else {
        let deadline = Instant::now() + Duration::from_secs(60);
        let (status, reason, message) = loop {
            if let Some(found) = condition_by_kubectl(&bad.name, "deep") {
                break found;
            }
            assert!(
                Instant::now() < deadline,
                "the deep run got no condition{}",
                bad.diagnostics()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        assert_eq!(
            (status.as_str(), reason.as_str()),
            ("False", "TaskRunValidationFailed"),
            "{message}"
        );
        assert!(
            message.contains("spec.params[0].value") && message.contains("nested more than"),
            "{message}"
        );
    }
    // The controller keeps serving after it: a second good run succeeds too.
    good.apply(&good_run("fine-again"));
    let again = good
        .wait_done::<MyTaskRun>("fine-again", Duration::from_secs(120))
        .await;
    good.expect_condition(&again, "True", "Succeeded");
    bad.passed();
    good.passed();
}

#[tokio::test]
#[ignore = "needs the local cluster: hack/e2e"]
async fn strict_a_misspelt_field_is_refused_at_apply_naming_its_path() {
    let ns = TestNamespace::new("e2e-strict-misspelt").await;
    let yaml = format!(
        r#"apiVersion: cicdoperator.ning1875.io/v1
kind: MyTaskRun
metadata:
  name: misspelt
spec:
  taskSpec:
    steps:
      - name: hello
        image: {BASH}
        script: echo hello
        timout: 5s
"#
    );
    // The CRDs are structural and kubectl asks for strict field validation,
    // so the API server itself refuses the typo, naming its path.
    let (applied, output) = try_apply(&ns.name, &yaml);
    assert!(!applied, "a misspelt field was stored: {output}");
    assert!(
        output.contains(r#"unknown field "spec.taskSpec.steps[0].timout""#),
        "{output}"
    );
    // The same for the other three kinds, at any depth of their specs.
    let others = [
        (
            "MyTask",
            "spec: {steps: [{name: s, image: x, scirpt: x}]}",
            "spec.steps[0].scirpt",
        ),
        (
            "MyPipeline",
            "spec: {tasks: [{name: a, taskRef: t, runafter: [b]}]}",
            "spec.tasks[0].runafter",
        ),
        (
            "MyPipelineRun",
            "spec: {pipelineRef: p, timeouts: {pipline: 1h}}",
            "spec.timeouts.pipline",
        ),
    ];
    for (kind, spec, path) in others {
        let yaml = format!("apiVersion: cicdoperator.ning1875.io/v1\nkind: {kind}\nmetadata: {{name: typo}}\n{spec}\n");
        let (applied, output) = try_apply(&ns.name, &yaml);
        assert!(!applied, "{kind} with {path} was stored: {output}");
        assert!(
            output.contains(&format!("unknown field \"{path}\"")),
            "{kind}: {output}"
        );
    }
    ns.passed();
}

#[tokio::test]
#[ignore = "needs the local cluster: hack/e2e"]
async fn strict_amplified_params_fail_validation_naming_the_field_and_the_limit() {
    let ns = TestNamespace::new("e2e-strict-amplify").await;
    // 100 KB of param, copied 100 times into one script: 10 MB if built.
    let yaml = format!(
        r#"apiVersion: cicdoperator.ning1875.io/v1
kind: MyTaskRun
metadata:
  name: amplified
spec:
  params:
    - name: p
      value: "{value}"
  taskSpec:
    params:
      - name: p
    steps:
      - name: hello
        image: {BASH}
        script: "{script}"
"#,
        value = "x".repeat(100_000),
        script = "$(params.p)".repeat(100),
    );
    ns.apply(&yaml);
    let message = ns
        .wait_failed::<MyTaskRun>("amplified", "TaskRunValidationFailed", Duration::from_secs(60))
        .await;
    assert!(
        message.contains("spec.taskSpec.steps[0].script") && message.contains("--max-field-bytes"),
        "{message}"
    );
    ns.passed();
}
