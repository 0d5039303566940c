//! Process-level tests of `cicd-entrypoint step`: the real binary, real
//! files, real signals.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use cicd_entrypoint::frame;
use cicd_entrypoint::termination::Outcome;
use common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const LIMIT: Duration = Duration::from_secs(20);

#[test]
fn five_steps_started_together_run_in_order() {
    let pod = Pod::new("order");
    let log = pod.root().join("log");
    // Start the last step first so that without waiting the order would
    // come out reversed.
    let mut children: Vec<_> = (0..5)
        .rev()
        .map(|i| {
            let script = format!("sleep 0.02; echo {i} >> \"$D/log\"");
            (i, spawn_quiet(pod.step(i, &[], &sh(&script))))
        })
        .collect();
    for (i, child) in &mut children {
        assert_eq!(code(wait_with_limit(child, LIMIT)), 0, "step {i}");
    }
    let order = fs::read_to_string(&log).expect("log");
    assert_eq!(order, "0\n1\n2\n3\n4\n");
    for i in 0..5 {
        let r = pod.report(i);
        assert_eq!(r.outcome, Outcome::Succeeded);
        assert_eq!(r.exit_code, 0);
        assert!(pod.post(i).exists() && !pod.post_err(i).exists());
    }
    // Each step started after the previous one finished.
    for i in 1..5 {
        let (prev, next) = (pod.report(i - 1), pod.report(i));
        assert!(next.started_at_ms >= prev.finished_at_ms, "step {i}");
    }
}

#[test]
fn a_failure_skips_every_later_step() {
    let pod = Pod::new("cascade");
    let scripts = [
        "touch \"$D/ran0\"",
        "touch \"$D/ran1\"; exit 3",
        "touch \"$D/ran2\"",
        "touch \"$D/ran3\"",
    ];
    let mut children: Vec<_> = (0..4)
        .rev()
        .map(|i| (i, spawn_quiet(pod.step(i, &[], &sh(scripts[i])))))
        .collect();
    children.reverse();
    let codes: Vec<i32> = children
        .iter_mut()
        .map(|(_, c)| code(wait_with_limit(c, LIMIT)))
        .collect();
    assert_eq!(codes, [0, 3, 1, 1]);

    assert!(pod.root().join("ran0").exists() && pod.root().join("ran1").exists());
    assert!(!pod.root().join("ran2").exists() && !pod.root().join("ran3").exists());
    assert!(pod.post(0).exists());
    for i in 1..4 {
        assert!(!pod.post(i).exists(), "step {i} must not write its post file");
        assert!(pod.post_err(i).exists(), "step {i} must write .err");
    }
    let failed = pod.report(1);
    assert_eq!(failed.outcome, Outcome::Failed);
    assert_eq!(failed.exit_code, 3);
    assert!(failed.started_at_ms.is_some() && failed.finished_at_ms >= failed.started_at_ms);
    let root_cause = format!("{}: exit code 3", pod.post(1).display());
    for i in 2..4 {
        let r = pod.report(i);
        assert_eq!(r.outcome, Outcome::Skipped);
        assert_eq!(r.exit_code, 1);
        assert_eq!(r.started_at_ms, None);
        let msg = r.message.expect("skip message");
        assert!(msg.starts_with("skipped: ") && msg.contains(&root_cause), "{msg}");
        // The root cause is passed down the chain unchanged.
        assert_eq!(fs::read_to_string(pod.post_err(i)).expect("err"), root_cause);
    }
    let out = spawn_quiet(pod.step(4, &[], &sh("true")))
        .wait_with_output()
        .expect("step 4");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&root_cause));
}

#[test]
fn timeout_kills_the_whole_process_group() {
    let pod = Pod::new("timeout");
    let script = "sleep 100 & echo $! > \"$D/pid\"; wait";
    let start = Instant::now();
    let out = output(pod.step(0, &["--timeout", "300ms"], &sh(script)));
    let elapsed = start.elapsed();
    assert_eq!(out.status.code(), Some(124), "{out:?}");
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    let pid: i32 = fs::read_to_string(pod.root().join("pid"))
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid");
    eventually(Duration::from_secs(2), "the grandchild to die", || pid_is_dead(pid));
    let r = pod.report(0);
    assert_eq!(r.outcome, Outcome::TimedOut);
    assert_eq!(r.exit_code, 124);
    let msg = r.message.expect("message");
    assert!(msg.contains("timed out after 300ms"), "{msg}");
    assert!(pod.post_err(0).exists() && !pod.post(0).exists());
    assert!(String::from_utf8_lossy(&out.stderr).contains("timed out after 300ms"));
}

#[test]
fn timeout_escalates_to_sigkill_when_term_is_ignored() {
    let pod = Pod::new("timeout-kill");
    // TERM ignored by the shell and (inherited) by its background child.
    let script = "trap '' TERM; sleep 100 & echo $! > \"$D/pid\"; wait; wait";
    let start = Instant::now();
    let out = output(pod.step(0, &["--timeout", "200ms"], &sh(script)));
    let elapsed = start.elapsed();
    assert_eq!(out.status.code(), Some(124));
    // 200ms + the 2s grace before SIGKILL.
    assert!(elapsed >= Duration::from_millis(2200), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(8), "{elapsed:?}");
    let pid: i32 = fs::read_to_string(pod.root().join("pid"))
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid");
    eventually(Duration::from_secs(2), "the grandchild to die", || pid_is_dead(pid));
    let r = pod.report(0);
    assert_eq!(r.outcome, Outcome::TimedOut);
    assert!(r.message.expect("message").contains("SIGKILL"));
}

#[test]
fn sigterm_is_forwarded_to_the_command() {
    let pod = Pod::new("sigterm");
    let script = "trap 'echo got-term > \"$D/trapped\"; exit 7' TERM; \
                  touch \"$D/ready\"; while :; do sleep 0.05; done";
    let mut child = spawn_quiet(pod.step(0, &[], &sh(script)));
    let ready = pod.root().join("ready");
    eventually(LIMIT, "the command to start", || ready.exists());
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    kill(pid, Signal::SIGTERM).expect("send SIGTERM");
    assert_eq!(code(wait_with_limit(&mut child, LIMIT)), 7);
    assert_eq!(
        fs::read_to_string(pod.root().join("trapped")).expect("trap ran"),
        "got-term\n"
    );
    let r = pod.report(0);
    assert_eq!(r.outcome, Outcome::Failed);
    assert_eq!(r.exit_code, 7);
    let msg = r.message.expect("message");
    assert!(msg.contains("SIGTERM"), "{msg}");
    assert!(pod.post_err(0).exists());
}

#[test]
fn sigterm_while_waiting_fails_without_running() {
    let pod = Pod::new("sigterm-wait");
    let mut child = spawn_quiet(pod.step(1, &[], &sh("touch \"$D/ran\"")));
    std::thread::sleep(Duration::from_millis(200));
    assert!(child.try_wait().expect("try_wait").is_none(), "must be waiting");
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    kill(pid, Signal::SIGTERM).expect("send SIGTERM");
    assert_eq!(code(wait_with_limit(&mut child, LIMIT)), 128 + 15);
    assert!(!pod.root().join("ran").exists());
    let r = pod.report(1);
    assert_eq!(r.outcome, Outcome::Signaled);
    assert_eq!(r.exit_code, 143);
    assert_eq!(r.started_at_ms, None);
    assert!(pod.post_err(1).exists());
}

#[test]
fn on_error_continue_lets_the_next_step_run() {
    let pod = Pod::new("continue");
    let mut second = spawn_quiet(pod.step(1, &[], &sh("touch \"$D/ran1\"")));
    let first = output(pod.step(0, &["--on-error", "continue"], &sh("exit 5")));
    assert_eq!(first.status.code(), Some(0));
    assert_eq!(code(wait_with_limit(&mut second, LIMIT)), 0);
    assert!(pod.root().join("ran1").exists());
    let r = pod.report(0);
    assert_eq!(r.outcome, Outcome::Failed);
    assert_eq!(r.exit_code, 5, "the real exit code is kept");
    assert!(pod.post(0).exists() && !pod.post_err(0).exists());
}

#[test]
fn each_step_leaves_its_exit_code_beside_its_post_file() {
    let pod = Pod::new("exit-code");
    let first = output(pod.step(0, &["--on-error", "continue"], &sh("exit 7")));
    assert_eq!(first.status.code(), Some(0));
    let second = output(pod.step(1, &[], &sh("cat \"$D/run/0/exitCode\" > \"$D/seen\"")));
    assert_eq!(second.status.code(), Some(0));
    assert_eq!(fs::read_to_string(pod.root().join("seen")).expect("seen"), "7");
    let own = fs::read_to_string(pod.root().join("run/1/exitCode")).expect("the second step's");
    assert_eq!(own, "0");
    let failing = output(pod.step(2, &[], &sh("exit 4")));
    assert_eq!(failing.status.code(), Some(4));
    let skipped = output(pod.step(3, &[], &sh("true")));
    assert_eq!(skipped.status.code(), Some(1));
    assert!(pod.root().join("run/2/exitCode").exists());
    assert!(
        !pod.root().join("run/3/exitCode").exists(),
        "a skipped step ran nothing"
    );
}

#[test]
fn a_step_result_reaches_a_later_steps_command_and_environment() {
    let pod = Pod::new("step-results");
    let dir = pod.root().join("run/0/results");
    fs::create_dir_all(&dir).expect("step results dir");
    let first = output(pod.step(0, &[], &sh("printf 'sha256:1f' > \"$D/run/0/results/digest\"")));
    assert_eq!(first.status.code(), Some(0));
    let reference = format!("steps.build.results.digest={}", dir.join("digest").display());
    let mut second = pod.step(
        1,
        &["--step-result-ref", &reference],
        &sh("printf '%s|%s|%s' \"$1\" \"$DIGEST\" \"$KEEP\" > \"$D/seen\""),
    );
    second
        .arg("x")
        .arg("at-$(steps.build.results.digest)-and-$(steps.build.results.digest)")
        .env("DIGEST", "$(steps.build.results.digest)")
        .env("KEEP", "$(steps.other.results.digest)");
    let second = output(second);
    assert_eq!(
        second.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(
        fs::read_to_string(pod.root().join("seen")).expect("seen"),
        "at-sha256:1f-and-sha256:1f|sha256:1f|$(steps.other.results.digest)"
    );
}

#[test]
fn a_step_result_that_was_never_written_fails_the_step_that_needs_it() {
    let pod = Pod::new("step-results-missing");
    let reference = format!(
        "steps.build.results.digest={}",
        pod.root().join("run/0/results/digest").display()
    );
    let out = output(pod.step(0, &["--step-result-ref", &reference], &sh("touch \"$D/ran\"")));
    assert_eq!(out.status.code(), Some(125));
    let report = pod.report(0);
    assert_eq!(report.outcome, Outcome::Failed);
    let message = report.message.unwrap_or_default();
    assert!(
        message.contains("$(steps.build.results.digest)") && message.contains("was not written"),
        "{message}"
    );
    assert!(!pod.root().join("ran").exists(), "the command must not start");
}

#[test]
fn a_task_result_takes_its_value_from_a_step_result() {
    let pod = Pod::new("result-from-step");
    let own = pod.root().join("run/0/results");
    fs::create_dir_all(&own).expect("step results dir");
    let promote = format!("image-digest={}", own.join("digest").display());
    let flags = ["--results", "image-digest", "--result-from-step", &promote];
    let out = output(pod.step(0, &flags, &sh("printf 'sha256:2e' > \"$D/run/0/results/digest\"")));
    assert_eq!(out.status.code(), Some(0));
    let report = pod.report(0);
    assert_eq!(
        results_of(&out, &report),
        BTreeMap::from([("image-digest".to_string(), "sha256:2e".to_string())])
    );
    // Not written: no task result, and the step still succeeds.
    let unwritten = format!("image-digest={}", pod.root().join("run/1/results/digest").display());
    let flags = ["--results", "image-digest", "--result-from-step", &unwritten];
    let out = output(pod.step(1, &flags, &sh("true")));
    assert_eq!(out.status.code(), Some(0));
    assert!(results_of(&out, &pod.report(1)).is_empty());
}

#[test]
fn a_step_reports_its_own_step_results_in_its_frame() {
    let pod = Pod::new("step-results-reported");
    let own = pod.root().join("run/0/results");
    fs::create_dir_all(&own).expect("step results dir");
    let tags = format!("tags={}", own.join("tags").display());
    let unwritten = format!("never={}", own.join("never").display());
    let flags = ["--step-result", &tags, "--step-result", &unwritten];
    let out = output(pod.step(
        0,
        &flags,
        &sh("printf '[\"v1\",\"latest\"]' > \"$D/run/0/results/tags\""),
    ));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let values = frame_of(&out, &pod.report(0));
    assert!(values.results.is_empty());
    assert_eq!(
        values.step_results,
        BTreeMap::from([("tags".to_string(), r#"["v1","latest"]"#.to_string())])
    );
    // Over the per-result limit: the step fails naming the step result.
    let big = format!("big={}", pod.root().join("run/1/results/big").display());
    fs::create_dir_all(pod.root().join("run/1/results")).expect("dir");
    let flags = ["--step-result", &big, "--max-result-bytes", "8"];
    let out = output(pod.step(1, &flags, &sh("printf '0123456789' > \"$D/run/1/results/big\"")));
    assert_eq!(out.status.code(), Some(1));
    let report = pod.report(1);
    assert_eq!(report.outcome, Outcome::Failed);
    assert_eq!(report.too_large.map(|t| t.result), Some("big".to_string()));
}

#[test]
fn array_and_object_step_results_are_taken_apart_for_a_later_step() {
    let pod = Pod::new("step-results-typed");
    let dir = pod.root().join("run/0/results");
    fs::create_dir_all(&dir).expect("step results dir");
    fs::write(dir.join("tags"), r#"["v1","with space"]"#).expect("tags");
    fs::write(dir.join("image"), r#"{"url":"reg/app","digest":"sha256:9"}"#).expect("image");
    fs::write(pod.post(0), "").expect("step 0 is done");
    let refs = [
        format!("steps.build.results.tags[*]={}", dir.join("tags").display()),
        format!("steps.build.results.tags[1]={}", dir.join("tags").display()),
        format!("steps.build.results.image.url={}", dir.join("image").display()),
    ];
    let flags: Vec<&str> = refs.iter().flat_map(|r| ["--step-result-ref", r.as_str()]).collect();
    let mut cmd = pod.step(1, &flags, &sh("printf '%s|' \"$@\" \"$URL\" > \"$D/seen\""));
    cmd.arg("x")
        .arg("$(steps.build.results.tags[*])")
        .arg("second=$(steps.build.results.tags[1])")
        .env("URL", "$(steps.build.results.image.url)");
    let out = output(cmd);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        fs::read_to_string(pod.root().join("seen")).expect("seen"),
        "v1|with space|second=with space|reg/app|"
    );
    // A key the object lacks and an index past the end fail the step, naming them.
    for (reference, arg, expected) in [
        (
            "steps.build.results.image.tag",
            "$(steps.build.results.image.tag)",
            "no key \"tag\"",
        ),
        (
            "steps.build.results.tags[5]",
            "$(steps.build.results.tags[5])",
            "no element 5",
        ),
    ] {
        let flag = format!(
            "{reference}={}",
            dir.join(if arg.contains("image") { "image" } else { "tags" }).display()
        );
        let mut cmd = pod.step(2, &["--step-result-ref", &flag], &sh("touch \"$D/ran\""));
        cmd.arg("x").arg(arg);
        let out = output(cmd);
        assert_eq!(out.status.code(), Some(125));
        let message = pod.report(2).message.unwrap_or_default();
        assert!(message.contains(reference) && message.contains(expected), "{message}");
        assert!(!pod.root().join("ran").exists(), "the command must not start");
    }
}

#[test]
fn on_error_continue_also_covers_timeouts() {
    let pod = Pod::new("continue-timeout");
    let out = output(pod.step(0, &["--on-error=continue", "--timeout=100ms"], &sh("sleep 10")));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(pod.report(0).outcome, Outcome::TimedOut);
    assert!(pod.post(0).exists());
}

#[test]
fn reports_only_the_results_this_step_wrote() {
    let pod = Pod::new("results");
    let res = pod.results();
    // Left by an earlier step.
    fs::write(res.join("old"), "from step 0").expect("write");
    fs::write(res.join("rewritten"), "before").expect("write");
    let script = "printf 'sha256:abc' > \"$D/results/digest\"; \
                  printf 'héllo 世界\\n' > \"$D/results/greeting\"; \
                  printf 'after' > \"$D/results/rewritten\"; \
                  printf 'bad \\377 byte' > \"$D/results/binary\"; \
                  printf 'undeclared' > \"$D/results/extra\"";
    let out = output(pod.step(
        0,
        &[
            "--results",
            "digest,greeting",
            "--results",
            "old,rewritten,binary,missing",
        ],
        &sh(script),
    ));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let r = pod.report(0);
    assert!(r.results.is_empty(), "results travel in the log frame, not the report");
    let expected: BTreeMap<String, String> = [
        ("digest", "sha256:abc"),
        ("greeting", "héllo 世界\n"),
        ("rewritten", "after"),
        ("binary", "bad \u{FFFD} byte"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(results_of(&out, &r), expected);
    assert_eq!(r.outcome, Outcome::Succeeded);
}

#[test]
fn oversized_result_fails_the_step_and_names_it() {
    let pod = Pod::new("oversized");
    let script = "head -c 5000 /dev/zero | tr '\\0' x > \"$D/results/IMAGE_URL\"; \
                  printf small > \"$D/results/small\"";
    let mut next = spawn_quiet(pod.step(1, &[], &sh("touch \"$D/ran1\"")));
    let out = output(pod.step(
        0,
        &["--results", "IMAGE_URL,small", "--max-result-bytes", "4096"],
        &sh(script),
    ));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("IMAGE_URL") && stderr.contains("5000 bytes") && stderr.contains("4096"),
        "{stderr}"
    );
    let r = pod.report(0);
    assert_eq!(r.outcome, Outcome::Failed);
    assert_eq!(r.exit_code, 0, "the command itself succeeded");
    assert!(r.results.is_empty());
    assert_eq!(r.frame, None, "no results frame");
    let too_large = r.too_large.clone().expect("names the result");
    assert_eq!(
        (
            too_large.result.as_str(),
            too_large.bytes,
            too_large.limit,
            too_large.total
        ),
        ("IMAGE_URL", 5000, 4096, false)
    );
    let msg = r.message.expect("message");
    assert!(
        msg.contains("result IMAGE_URL is 5000 bytes") && msg.contains("4096"),
        "{msg}"
    );
    assert!(pod.post_err(0).exists() && !pod.post(0).exists());
    assert_eq!(code(wait_with_limit(&mut next, LIMIT)), 1);
    assert!(!pod.root().join("ran1").exists());
    assert!(pod.report(1).message.expect("skip").contains("IMAGE_URL"));
}

#[test]
fn exit_codes_pass_through() {
    let pod = Pod::new("exit");
    let out = output(pod.step(0, &[], &sh("echo hello; echo oops >&2; exit 42")));
    assert_eq!(out.status.code(), Some(42));
    assert_eq!(out.stdout, b"hello\n", "stdout passes through");
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("oops\n"));
    let r = pod.report(0);
    assert_eq!((r.outcome, r.exit_code), (Outcome::Failed, 42));
    assert_eq!(
        fs::read_to_string(pod.post_err(0)).expect(".err"),
        format!("{}: exit code 42", pod.post(0).display())
    );
}

#[test]
fn killed_by_a_signal_is_128_plus_signo() {
    let pod = Pod::new("signaled");
    let out = output(pod.step(0, &[], &sh("kill -KILL $$")));
    assert_eq!(out.status.code(), Some(137));
    let r = pod.report(0);
    assert_eq!((r.outcome, r.exit_code), (Outcome::Signaled, 137));
    assert!(r.message.expect("message").contains("SIGKILL"));
}

#[test]
fn command_not_found_is_127_and_not_executable_is_126() {
    let pod = Pod::new("notfound");
    let out = output(pod.step(0, &[], &["/no/such/command", "arg"]));
    assert_eq!(out.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/command"));
    let r = pod.report(0);
    assert_eq!((r.outcome, r.exit_code), (Outcome::Failed, 127));
    assert!(
        r.message
            .expect("message")
            .contains("command not found: /no/such/command")
    );
    assert!(pod.post_err(0).exists());

    let script = pod.root().join("not-exec.sh");
    fs::write(&script, "#!/bin/sh\ntrue\n").expect("write");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o644)).expect("chmod");
    let script = script.to_string_lossy().into_owned();
    let pod2 = Pod::new("notexec");
    let out = output(pod2.step(0, &[], &[script.as_str()]));
    assert_eq!(out.status.code(), Some(126));
    assert_eq!(pod2.report(0).exit_code, 126);
}

#[test]
fn bad_flags_name_the_flag_and_still_fail_the_run() {
    let pod = Pod::new("badflags");
    let out = output(pod.step(0, &["--timeout", "30x"], &sh("touch \"$D/ran\"")));
    assert_eq!(out.status.code(), Some(125));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--timeout") && stderr.contains("30x"), "{stderr}");
    assert!(!pod.root().join("ran").exists());
    let r = pod.report(0);
    assert_eq!((r.outcome, r.exit_code), (Outcome::Failed, 125));
    assert!(r.message.expect("message").contains("--timeout"));
    assert!(pod.post_err(0).exists());

    let out = output({
        let mut c = std::process::Command::new(BIN);
        c.args(["step", "--post-file", "/x"]);
        c
    });
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing command"));
    let out = output(std::process::Command::new(BIN));
    assert_eq!(out.status.code(), Some(125));
}

#[test]
fn wait_nonempty_waits_for_content() {
    let pod = Pod::new("nonempty");
    let ready = pod.root().join("downward/ready");
    fs::create_dir_all(ready.parent().expect("parent")).expect("mkdir");
    let mut c = std::process::Command::new(BIN);
    c.arg("step")
        .arg("--wait-file")
        .arg(&ready)
        .arg("--wait-nonempty")
        .arg("--post-file")
        .arg(pod.post(0))
        .arg("--termination-path")
        .arg(pod.term(0))
        .arg("--results-dir")
        .arg(pod.results())
        .args(["--", "true"]);
    let mut child = spawn_quiet(c);
    fs::write(&ready, "").expect("create empty");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "an empty file must not release the step"
    );
    fs::write(&ready, "1").expect("write content");
    assert_eq!(code(wait_with_limit(&mut child, LIMIT)), 0);
    assert_eq!(pod.report(0).outcome, Outcome::Succeeded);
}

#[test]
fn poll_fallback_still_orders_steps() {
    let pod = Pod::new("poll");
    let mut second = pod.step(1, &[], &sh("echo 1 >> \"$D/log\""));
    second.env("CICD_ENTRYPOINT_FORCE_POLL", "1");
    let mut second = spawn_quiet(second);
    std::thread::sleep(Duration::from_millis(100));
    let first = output(pod.step(0, &[], &sh("echo 0 >> \"$D/log\"")));
    assert_eq!(first.status.code(), Some(0));
    assert_eq!(code(wait_with_limit(&mut second, LIMIT)), 0);
    assert_eq!(fs::read_to_string(pod.root().join("log")).expect("log"), "0\n1\n");
}

/// Values far past the old 4096-byte termination message: a 200 KiB result
/// and a 3 KiB one, through the frame, byte for byte.
#[test]
fn large_results_travel_in_the_log_frame() {
    let pod = Pod::new("large");
    let script = "head -c 204800 /dev/urandom | base64 -w 0 | head -c 204800 > \"$D/results/big\"; \
                  printf 'line 1\\nline \"2\" \\\\ é\\n' > \"$D/results/small\"; echo done";
    let out = output(pod.step(
        0,
        &["--results", "big,small", "--max-result-bytes", "262144"],
        &sh(script),
    ));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let r = pod.report(0);
    let text = fs::read_to_string(pod.term(0)).expect("report");
    assert!(text.len() < 300, "the report stays small: {text}");
    let results = results_of(&out, &r);
    let big = fs::read(pod.results().join("big")).expect("big");
    assert_eq!(big.len(), 204_800);
    assert_eq!(results["big"].as_bytes(), &big[..]);
    assert_eq!(results["small"], "line 1\nline \"2\" \\ é\n");
    // The command's own output comes first, the frame last.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("done\n"), "{}", &stdout[..40]);
    assert!(
        stdout
            .lines()
            .skip(1)
            .all(|l| l.starts_with(frame::MARKER) && l.len() < 4100)
    );
}

#[test]
fn results_over_the_default_limits_fail_the_step() {
    let pod = Pod::new("limits");
    // 70 KiB is over the default 64 KiB per result.
    let out = output(pod.step(
        0,
        &["--results", "r"],
        &sh("head -c 71680 /dev/zero > \"$D/results/r\""),
    ));
    assert_eq!(out.status.code(), Some(1));
    let r = pod.report(0);
    assert_eq!(r.outcome, Outcome::Failed);
    let t = r.too_large.expect("too large");
    assert_eq!(
        (t.result.as_str(), t.bytes, t.limit, t.total),
        ("r", 71680, 65536, false)
    );
    assert!(
        r.message
            .expect("message")
            .contains("result r is 71680 bytes, over the limit of 65536")
    );

    // Five results of 60 KiB each: each fits, together over 256 KiB.
    let pod = Pod::new("total");
    let script = "for n in a b c d e; do head -c 61440 /dev/zero > \"$D/results/$n\"; done";
    let out = output(pod.step(0, &["--results", "a,b,c,d,e"], &sh(script)));
    assert_eq!(out.status.code(), Some(1));
    let t = pod.report(0).too_large.expect("too large");
    assert_eq!((t.bytes, t.limit, t.total), (5 * 61440, 262_144, true));
}

#[test]
fn the_report_keeps_to_its_budget() {
    let pod = Pod::new("budget");
    let out = output(pod.step(0, &["--max-report-bytes", "300", "--timeout", "1s"], &sh("sleep 5")));
    assert_eq!(out.status.code(), Some(124));
    let text = fs::read_to_string(pod.term(0)).expect("report");
    assert!(text.len() <= 300, "{} bytes: {text}", text.len());
    let r = pod.report(0);
    assert_eq!(r.outcome, Outcome::TimedOut);
    assert!(r.message.expect("message").starts_with("timed out after 1s"));
}

#[test]
fn a_step_sees_earlier_results_but_reports_only_its_own() {
    let pod = Pod::new("from");
    let previous = pod.root().join("prev");
    fs::create_dir_all(&previous).expect("mkdir");
    fs::write(previous.join("commit"), "3f9c2a1").expect("write");
    fs::write(previous.join("rewritten"), "old").expect("write");
    let script = "cat \"$D/results/commit\" > \"$D/seen\"; printf new > \"$D/results/rewritten\"";
    let out = output(pod.step(
        0,
        &[
            "--results",
            "commit,rewritten,absent",
            "--results-from",
            previous.to_str().expect("utf-8"),
        ],
        &sh(script),
    ));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(fs::read_to_string(pod.root().join("seen")).expect("seen"), "3f9c2a1");
    let results = results_of(&out, &pod.report(0));
    assert_eq!(results, BTreeMap::from([("rewritten".to_string(), "new".to_string())]));
}

/// A process that escaped the step's process group (setsid) and lives on
/// cannot change the step's results or report after the step ended: the
/// entrypoint kills it before it reads them.
#[test]
fn a_stray_process_cannot_change_a_finished_steps_report() {
    let pod = Pod::new("stray");
    let term = pod.term(0);
    let script = format!(
        "printf real > \"$D/results/x\"; \
         setsid sh -c 'echo $$ > \"$D/stray.pid\"; sleep 0.5; printf forged > \"$D/results/x\"; \
                       printf forged > \"{term}\"; touch \"$D/stray-ran\"' < /dev/null > /dev/null 2>&1 & \
         while [ ! -s \"$D/stray.pid\" ]; do sleep 0.01; done",
        term = term.display()
    );
    let out = output(pod.step(0, &["--results", "x"], &sh(&script)));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let pid: i32 = fs::read_to_string(pod.root().join("stray.pid"))
        .expect("stray pid")
        .trim()
        .parse()
        .expect("pid");
    std::thread::sleep(Duration::from_millis(1000));
    assert!(pid_is_dead(pid), "the stray process {pid} outlived its step");
    assert!(!pod.root().join("stray-ran").exists(), "the stray got to run on");
    let r = pod.report(0);
    assert_eq!(r.outcome, Outcome::Succeeded);
    assert_eq!(results_of(&out, &r)["x"], "real");
    assert_eq!(fs::read_to_string(pod.results().join("x")).expect("x"), "real");
}

/// Without an init container (the entrypoint mounted from a ConfigMap),
/// a step writes its own script and makes its own directories, once the
/// previous step is done; a skipped step lays out nothing.
#[test]
fn a_step_lays_out_its_own_script_and_directories_when_there_is_no_init_container() {
    let pod = Pod::new("own-setup");
    let own_dir = pod.root().join("run/1");
    let script = own_dir.join("1-build");
    let results = own_dir.join("results");
    let text = "echo \"built $(echo by-shell)\" > \"$D/built\"\nls -d \"$D/run/1/results\" > \"$D/made\"\n";
    let setup = [
        "--scripts-dir".to_string(),
        own_dir.display().to_string(),
        "--script".to_string(),
        format!("1-build={}", cicd_entrypoint::base64::encode(text.as_bytes())),
        "--mkdir".to_string(),
        results.display().to_string(),
    ];
    let setup: Vec<&str> = setup.iter().map(String::as_str).collect();
    let script_path = script.display().to_string();
    let mut second = spawn_quiet(pod.step(1, &setup, &[script_path.as_str()]));
    // Nothing is laid out while the previous step runs.
    std::thread::sleep(Duration::from_millis(200));
    assert!(!script.exists(), "the script is written only after the wait");
    let first = output(pod.step(0, &[], &sh("true")));
    assert_eq!(first.status.code(), Some(0));
    assert_eq!(code(wait_with_limit(&mut second, LIMIT)), 0);
    assert_eq!(
        fs::read_to_string(pod.root().join("built")).expect("the script ran"),
        "built by-shell\n"
    );
    assert_eq!(
        fs::read_to_string(&script).expect("script"),
        format!("#!/bin/sh -e\n{text}"),
        "a script without #! gets the default shebang"
    );
    assert!(
        pod.root().join("made").exists(),
        "the directory was there for the command"
    );
    assert_eq!(pod.report(1).outcome, Outcome::Succeeded);

    // A failed step before: the next one is skipped and writes nothing.
    let pod = Pod::new("own-setup-skip");
    let skipped_dir = pod.root().join("run/1/results");
    let mkdir = ["--mkdir".to_string(), skipped_dir.display().to_string()];
    let mkdir: Vec<&str> = mkdir.iter().map(String::as_str).collect();
    let mut second = spawn_quiet(pod.step(1, &mkdir, &sh("true")));
    let first = output(pod.step(0, &[], &sh("exit 3")));
    assert_eq!(first.status.code(), Some(3));
    assert_eq!(code(wait_with_limit(&mut second, LIMIT)), 1);
    assert!(!skipped_dir.exists(), "a skipped step made no directory");
}

/// The only step of a pod mounts the hand-off volume whole and makes its
/// own directory, then writes its script into it.
#[test]
fn a_step_makes_the_directory_its_script_is_written_to() {
    let pod = Pod::new("own-dir");
    let own_dir = pod.root().join("whole/0");
    let text = "echo made > \"$D/made\"\n";
    let setup = [
        "--mkdir".to_string(),
        own_dir.display().to_string(),
        "--scripts-dir".to_string(),
        own_dir.display().to_string(),
        "--script".to_string(),
        format!("0-only={}", cicd_entrypoint::base64::encode(text.as_bytes())),
    ];
    let setup: Vec<&str> = setup.iter().map(String::as_str).collect();
    let script = own_dir.join("0-only").display().to_string();
    let only = output(pod.step(0, &setup, &[script.as_str()]));
    assert_eq!(only.status.code(), Some(0), "{}", String::from_utf8_lossy(&only.stderr));
    assert_eq!(
        fs::read_to_string(pod.root().join("made")).expect("the script ran"),
        "made\n"
    );
}

/// A script that is not base64 fails the step naming the script, before
/// the command could run.
#[test]
fn a_bad_script_fails_the_step_naming_it() {
    let pod = Pod::new("bad-script");
    let dir = pod.root().join("run/0").display().to_string();
    let out = output(pod.step(
        0,
        &["--scripts-dir", &dir, "--script", "0-x=not*base64"],
        &sh("touch \"$D/ran\""),
    ));
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    let report = pod.report(0);
    assert_eq!(report.outcome, Outcome::Failed);
    let message = report.message.unwrap_or_default();
    assert!(message.contains("0-x") && message.contains("base64"), "{message}");
    assert!(!pod.root().join("ran").exists());
}
