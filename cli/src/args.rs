//! Parsing of `-p KEY=VALUE` and `-w NAME=SOURCE`, and checking the params
//! against what a task or pipeline declares. Pure: no cluster.

use cicd_controller::api::{Param, ParamSpec, ParamType, ParamValue, WorkspaceBinding};
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, EmptyDirVolumeSource, PersistentVolumeClaimVolumeSource, SecretVolumeSource,
};

/// A `-p` or `-w` argument that cannot be understood, with what was given.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArgError {
    #[error("-p {0:?}: expected KEY=VALUE (e.g. -p git-url=git://host/repo.git)")]
    ParamShape(String),
    #[error("-p {0:?}: the param name is empty")]
    ParamName(String),
    #[error("-p {name}: given twice")]
    ParamTwice { name: String },
    #[error("-w {0:?}: expected NAME=emptyDir, NAME=pvc:CLAIM, NAME=secret:SECRET or NAME=configmap:CONFIGMAP")]
    WorkspaceShape(String),
    #[error("-w {given:?}: {kind} needs a name after the colon")]
    WorkspaceSourceName { given: String, kind: String },
    #[error("-w {given:?}: unknown source {source_kind:?} (emptyDir, pvc:CLAIM, secret:SECRET, configmap:CONFIGMAP)")]
    WorkspaceSource { given: String, source_kind: String },
    #[error("-w {name}: given twice")]
    WorkspaceTwice { name: String },
}

/// `KEY=VALUE`. A value written `[a,b,c]` is an array param; everything
/// else is a string, taken verbatim (it may contain `=`).
pub fn parse_param(text: &str) -> Result<Param, ArgError> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| ArgError::ParamShape(text.to_string()))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(ArgError::ParamName(text.to_string()));
    }
    let value = match value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
        Some("") => ParamValue::Array(Vec::new()),
        Some(items) => ParamValue::Array(items.split(',').map(|item| item.trim().to_string()).collect()),
        None => ParamValue::String(value.to_string()),
    };
    Ok(Param {
        name: name.to_string(),
        value,
    })
}

/// All `-p` arguments, refusing a name given twice.
pub fn parse_params(texts: &[String]) -> Result<Vec<Param>, ArgError> {
    let mut params: Vec<Param> = Vec::with_capacity(texts.len());
    for text in texts {
        let param = parse_param(text)?;
        if params.iter().any(|p| p.name == param.name) {
            return Err(ArgError::ParamTwice { name: param.name });
        }
        params.push(param);
    }
    Ok(params)
}

/// `NAME=emptyDir`, `NAME=pvc:CLAIM`, `NAME=secret:S`, `NAME=configmap:C`.
pub fn parse_workspace(text: &str) -> Result<WorkspaceBinding, ArgError> {
    let shape = || ArgError::WorkspaceShape(text.to_string());
    let (name, source) = text.split_once('=').ok_or_else(shape)?;
    if name.trim().is_empty() || source.is_empty() {
        return Err(shape());
    }
    let mut binding = WorkspaceBinding {
        name: name.trim().to_string(),
        ..WorkspaceBinding::default()
    };
    if source.eq_ignore_ascii_case("emptydir") {
        binding.empty_dir = Some(EmptyDirVolumeSource::default());
        return Ok(binding);
    }
    let (kind, object) = source.split_once(':').ok_or_else(|| ArgError::WorkspaceSource {
        given: text.to_string(),
        source_kind: source.to_string(),
    })?;
    if object.is_empty() {
        return Err(ArgError::WorkspaceSourceName {
            given: text.to_string(),
            kind: kind.to_string(),
        });
    }
    match kind.to_ascii_lowercase().as_str() {
        "pvc" => {
            binding.persistent_volume_claim = Some(PersistentVolumeClaimVolumeSource {
                claim_name: object.to_string(),
                read_only: None,
            })
        }
        "secret" => {
            binding.secret = Some(SecretVolumeSource {
                secret_name: Some(object.to_string()),
                ..SecretVolumeSource::default()
            })
        }
        "configmap" => {
            binding.config_map = Some(ConfigMapVolumeSource {
                name: object.to_string(),
                ..ConfigMapVolumeSource::default()
            })
        }
        _ => {
            return Err(ArgError::WorkspaceSource {
                given: text.to_string(),
                source_kind: kind.to_string(),
            });
        }
    }
    Ok(binding)
}

/// All `-w` arguments, refusing a name given twice.
pub fn parse_workspaces(texts: &[String]) -> Result<Vec<WorkspaceBinding>, ArgError> {
    let mut bindings: Vec<WorkspaceBinding> = Vec::with_capacity(texts.len());
    for text in texts {
        let binding = parse_workspace(text)?;
        if bindings.iter().any(|b| b.name == binding.name) {
            return Err(ArgError::WorkspaceTwice { name: binding.name });
        }
        bindings.push(binding);
    }
    Ok(bindings)
}

/// The declared names, for error messages: `a, b (optional)`.
fn declared_list(declared: &[ParamSpec]) -> String {
    if declared.is_empty() {
        return "none".to_string();
    }
    declared
        .iter()
        .map(|p| {
            if is_required(p) {
                p.name.clone()
            } else {
                format!("{} (optional)", p.name)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn is_required(param: &ParamSpec) -> bool {
    param.default.is_none() && param.has_default != Some(true)
}

/// Checks the given params against the declared ones before anything is
/// created: unknown names and missing required params, all at once.
/// `what` names the target, e.g. `pipeline "clone-build-push"`.
/// A string given for an array param is turned into a one-item array, as
/// a shell user means by `-p args=--flag`.
pub fn check_params(what: &str, declared: &[ParamSpec], given: &mut [Param]) -> Result<(), String> {
    let mut problems = Vec::new();
    for param in given.iter_mut() {
        match declared.iter().find(|d| d.name == param.name) {
            None => problems.push(format!("-p {}: {what} has no such param", param.name)),
            Some(spec) => {
                if let (ParamType::Array, ParamValue::String(text)) = (spec.param_type, &param.value) {
                    param.value = ParamValue::Array(vec![text.clone()]);
                }
            }
        }
    }
    for spec in declared.iter().filter(|d| is_required(d)) {
        if !given.iter().any(|p| p.name == spec.name) {
            problems.push(format!(
                "missing required param {:?}: pass -p {}=VALUE",
                spec.name, spec.name
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}\n{what} declares params: {}",
            problems.join("\n"),
            declared_list(declared)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, required: bool) -> ParamSpec {
        ParamSpec {
            name: name.to_string(),
            default: (!required).then(|| ParamValue::String("d".into())),
            ..ParamSpec::default()
        }
    }

    #[test]
    fn params_keep_everything_after_the_first_equals() {
        let param = parse_param("url=git://h/r.git?a=b").expect("parses");
        assert_eq!(param.name, "url");
        assert_eq!(param.value, ParamValue::String("git://h/r.git?a=b".into()));
        assert_eq!(
            parse_param("empty=").expect("parses").value,
            ParamValue::String(String::new())
        );
    }

    #[test]
    fn bracketed_values_are_arrays() {
        assert_eq!(
            parse_param("args=[--a, --b]").expect("parses").value,
            ParamValue::Array(vec!["--a".into(), "--b".into()])
        );
        assert_eq!(parse_param("args=[]").expect("parses").value, ParamValue::Array(vec![]));
    }

    #[test]
    fn malformed_params_say_what_was_given() {
        assert_eq!(parse_param("novalue"), Err(ArgError::ParamShape("novalue".into())));
        assert_eq!(parse_param("=x"), Err(ArgError::ParamName("=x".into())));
        let twice = parse_params(&["a=1".into(), "a=2".into()]).expect_err("twice");
        assert_eq!(twice.to_string(), "-p a: given twice");
        assert!(
            ArgError::ParamShape("novalue".into())
                .to_string()
                .contains("\"novalue\"")
        );
    }

    #[test]
    fn workspace_sources() {
        let empty = parse_workspace("src=emptyDir").expect("parses");
        assert_eq!(empty.sources(), vec!["emptyDir"]);
        let pvc = parse_workspace("src=pvc:my-claim").expect("parses");
        assert_eq!(
            pvc.persistent_volume_claim.map(|c| c.claim_name),
            Some("my-claim".into())
        );
        let secret = parse_workspace("creds=secret:git-ssh").expect("parses");
        assert_eq!(secret.secret.and_then(|s| s.secret_name), Some("git-ssh".into()));
        let config = parse_workspace("cfg=configmap:settings").expect("parses");
        assert_eq!(config.config_map.map(|c| c.name), Some("settings".into()));
    }

    #[test]
    fn malformed_workspaces_are_refused_with_the_input() {
        assert_eq!(parse_workspace("src"), Err(ArgError::WorkspaceShape("src".into())));
        assert_eq!(
            parse_workspace("=emptyDir"),
            Err(ArgError::WorkspaceShape("=emptyDir".into()))
        );
        assert_eq!(
            parse_workspace("src=nfs:x"),
            Err(ArgError::WorkspaceSource {
                given: "src=nfs:x".into(),
                source_kind: "nfs".into()
            })
        );
        assert_eq!(
            parse_workspace("src=pvc:"),
            Err(ArgError::WorkspaceSourceName {
                given: "src=pvc:".into(),
                kind: "pvc".into()
            })
        );
        assert!(parse_workspace("src=hostPath").is_err());
        let twice = parse_workspaces(&["a=emptyDir".into(), "a=pvc:c".into()]).expect_err("twice");
        assert_eq!(twice.to_string(), "-w a: given twice");
    }

    #[test]
    fn missing_required_param_is_named_with_the_declared_list() {
        let declared = vec![spec("git-url", true), spec("revision", false)];
        let error = check_params("pipeline \"p\"", &declared, &mut []).expect_err("missing");
        assert!(error.contains("missing required param \"git-url\""), "{error}");
        assert!(
            error.contains("declares params: git-url, revision (optional)"),
            "{error}"
        );
    }

    #[test]
    fn unknown_params_are_refused_and_strings_become_arrays() {
        let mut declared = vec![spec("a", true)];
        declared.push(ParamSpec {
            name: "list".into(),
            param_type: ParamType::Array,
            has_default: Some(true),
            ..ParamSpec::default()
        });
        let mut given = parse_params(&["a=1".into(), "nope=2".into()]).expect("parses");
        let error = check_params("task \"t\"", &declared, &mut given).expect_err("unknown");
        assert!(error.starts_with("-p nope: task \"t\" has no such param"), "{error}");
        let mut given = parse_params(&["a=1".into(), "list=--x".into()]).expect("parses");
        check_params("task \"t\"", &declared, &mut given).expect("valid");
        assert_eq!(given[1].value, ParamValue::Array(vec!["--x".into()]));
    }
}
