//! The malformed-input corpus (`tests/corpus/inputs/`, written by
//! `tests/corpus/generate.py`): every file goes through `render` and
//! through the controller's decoder, document by document. Nothing may
//! panic (a stack overflow would abort the whole test binary), every file
//! must be refused, and every error must say where: a document and line, or
//! a field path.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cicd_controller::api::strict::{self, StrictError};
use cicd_controller::api::{MyPipeline, MyPipelineRun, MyTask, MyTaskRun};
use cicd_controller::commands::{render_yaml, source_text};
use cicd_controller::pod::render::RenderSettings;

const ONE_HOUR: Duration = Duration::from_secs(3600);

fn corpus_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/inputs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    files.sort();
    files
}

/// True when an error line says where the problem is: `document N (line
/// L)` from the manifest reader, or a run and a field path from planning
/// (`MyTaskRun "tr1": spec.steps[0].script: ...`).
fn is_located(line: &str) -> bool {
    if line == "no MyTaskRun found in the input" {
        return true; // about the input as a whole (e.g. an empty file)
    }
    let documented = line.contains(": document ") && line.contains(" (line ");
    let run_field = ["MyTaskRun \"", "MyPipelineRun \""].iter().any(|kind| {
        line.starts_with(kind)
            && line.split_once("\": ").is_some_and(|(_, rest)| {
                is_field_path(rest.split(": ").next().unwrap_or_default())
                    || rest.starts_with("MyTask \"")
                    || rest.starts_with("MyPipeline \"")
            })
    });
    documented || run_field
}

fn is_field_path(text: &str) -> bool {
    let first = text.split(['.', '[']).next().unwrap_or_default();
    ["spec", "metadata", "pod", "apiVersion", "kind"].contains(&first)
}

fn settings() -> RenderSettings {
    RenderSettings {
        entrypoint_image: "127.0.0.1:5000/cicd/entrypoint:dev".into(),
        limits: Default::default(),
        ..Default::default()
    }
}

/// The file through `render`: the unbroken bases (`ok-*`) must render, every
/// other file must fail, with located errors only.
fn through_render(name: &str, bytes: &[u8]) -> Result<(), String> {
    if name.starts_with("ok-") {
        let text = source_text(name, bytes).map_err(|e| e.to_string())?;
        return render_yaml(&[(name.to_string(), text)], &settings(), ONE_HOUR)
            .map(drop)
            .map_err(|error| format!("a base does not render: {error}"));
    }
    let text = match source_text(name, bytes) {
        Ok(text) => text,
        Err(error) => {
            let message = error.to_string();
            return if message.starts_with(name) && message.contains("line ") {
                Ok(())
            } else {
                Err(format!("unlocated encoding error: {message}"))
            };
        }
    };
    match render_yaml(&[(name.to_string(), text)], &settings(), ONE_HOUR) {
        Ok(_) => Err("rendered without an error".to_string()),
        Err(error) => {
            let message = error.to_string();
            let unlocated: Vec<&str> = message.lines().filter(|line| !is_located(line)).collect();
            if unlocated.is_empty() {
                Ok(())
            } else {
                Err(format!("errors that do not say where: {unlocated:?}"))
            }
        }
    }
}

/// Each document (as JSON, as the API server would store it) through the
/// controller's strict decoder: any error must name a field or, for the
/// object as a whole, say what it is.
fn through_decoder(bytes: &[u8]) -> Result<(), String> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Ok(());
    };
    let Ok(documents) = serde_saphyr::from_multiple::<serde_json::Value>(text) else {
        return Ok(());
    };
    for document in documents {
        let Ok(json) = serde_json::to_string(&document) else {
            continue;
        };
        let kind = document.get("kind").and_then(|k| k.as_str()).unwrap_or_default();
        let result = match kind {
            "MyTask" => strict::decode_text::<MyTask>(&json).map(drop),
            "MyTaskRun" => strict::decode_text::<MyTaskRun>(&json).map(drop),
            "MyPipeline" => strict::decode_text::<MyPipeline>(&json).map(drop),
            "MyPipelineRun" => strict::decode_text::<MyPipelineRun>(&json).map(drop),
            _ => Ok(()),
        };
        if let Err(StrictError(problems)) = result
            && let Some(bad) = problems
                .iter()
                .find(|p| p.path.is_empty() && !p.message.contains("line "))
        {
            return Err(format!("decoder error without a field: {bad}"));
        }
    }
    Ok(())
}

#[test]
fn every_corpus_file_is_refused_with_located_errors_and_nothing_panics() {
    let files = corpus_files();
    assert!(
        files.len() >= 300,
        "the corpus has {} files, expected at least 300",
        files.len()
    );
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut slowest = (Duration::ZERO, String::new());
    for path in &files {
        let name = path.file_name().expect("a file name").to_string_lossy().into_owned();
        let bytes = std::fs::read(path).expect("readable");
        let file_started = Instant::now();
        let outcome = std::panic::catch_unwind(|| through_render(&name, &bytes).and_then(|()| through_decoder(&bytes)));
        let took = file_started.elapsed();
        if took > slowest.0 {
            slowest = (took, name.clone());
        }
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(why)) => failures.push(format!("{name}: {why}")),
            Err(_) => failures.push(format!("{name}: panicked")),
        }
    }
    eprintln!(
        "corpus: {} files in {:.1?} (slowest {} in {:.1?})",
        files.len(),
        started.elapsed(),
        slowest.1,
        slowest.0
    );
    assert!(
        failures.is_empty(),
        "{} corpus files misbehave:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn a_misspelt_step_field_is_named_with_a_suggestion() {
    let bytes =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/inputs/unknown-000-timout.yaml"))
            .expect("the corpus file");
    let text = String::from_utf8(bytes).expect("UTF-8");
    let error = render_yaml(&[("f.yaml".into(), text)], &settings(), ONE_HOUR).expect_err("refused");
    assert!(
        error
            .to_string()
            .contains("spec.steps[0].timout: unknown field, did you mean timeout?"),
        "{error}"
    );
}
