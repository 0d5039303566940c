//! `cicd convert` and `cicd render` run the controller library's own
//! offline commands: the same output and errors as `cicd-controller`'s.

use std::io::Write;
use std::process::{Command, Stdio};

const TEKTON_TASK: &str = r#"
apiVersion: tekton.dev/v1
kind: Task
metadata: {name: hello}
spec:
  params: [{name: who, default: world}]
  steps:
    - name: say
      image: 127.0.0.1:5000/cicd/bash:5
      script: echo "hello $(params.who)"
"#;

/// A pipeline task's `description` is not kept here, so it cannot be carried over.
const TEKTON_LOSSY: &str = r#"
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: fan}
spec:
  tasks:
    - name: each
      description: says hello
      taskRef: {name: hello}
"#;

/// Runs `cicd ARGS` with `stdin`; gives (success, stdout, stderr).
fn cicd(args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cicd"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cicd runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("cicd finishes");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn convert_writes_a_tekton_task_as_a_my_task() {
    let (ok, stdout, stderr) = cicd(&["convert", "-f", "-"], TEKTON_TASK);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("kind: MyTask"), "{stdout}");
    assert!(stdout.contains("name: hello"), "{stdout}");
    assert!(stdout.contains("apiVersion: cicdoperator.ning1875.io/v1"), "{stdout}");
}

#[test]
fn convert_refuses_what_it_cannot_carry_over_naming_the_field() {
    let (ok, stdout, stderr) = cicd(&["convert", "-f", "-"], TEKTON_LOSSY);
    assert!(!ok, "a pipeline task's description is not kept");
    assert!(stdout.is_empty(), "nothing written on refusal: {stdout}");
    assert!(stderr.contains("spec.tasks[0].description"), "{stderr}");
}

#[test]
fn convert_names_a_file_it_cannot_read() {
    let (ok, _, stderr) = cicd(&["convert", "-f", "/nonexistent/pipeline.yaml"], "");
    assert!(!ok);
    assert!(stderr.contains("cannot read /nonexistent/pipeline.yaml"), "{stderr}");
}

#[test]
fn render_names_the_bad_field_and_value() {
    let run = r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTaskRun
metadata: {name: r, namespace: team-a}
spec:
  timeout: 5 minutes
  taskSpec:
    steps: [{name: s, image: 127.0.0.1:5000/cicd/bash:5, script: "true"}]
"#;
    let (ok, stdout, stderr) = cicd(&["render", "-f", "-"], run);
    assert!(!ok, "{stdout}");
    assert!(stderr.contains("spec.timeout"), "{stderr}");
    assert!(stderr.contains("5 minutes"), "{stderr}");
}
