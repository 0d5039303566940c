//! The mapping of each Tekton kind (tekton.dev/v1 and v1beta1) onto ours,
//! field by field. What has no exact equivalent is reported as a [`Loss`].

use serde_json::{Map, Value};

use super::fields::{Fields, Losses, convert_list, copy_only, kind_of};

const REMOTE: &str = "remote resolution is not supported here yet (only taskRef/pipelineRef of a run or a pipeline task, with the git, http, cluster or bundles resolver); the reference is dropped";

/// The params each resolver we have takes.
const RESOLVER_PARAMS: [(&str, &[&str]); 4] = [
    ("git", &crate::remote::GIT_PARAMS),
    ("cluster", &crate::remote::CLUSTER_PARAMS),
    ("http", &crate::remote::HTTP_PARAMS),
    ("bundles", &crate::remote::BUNDLES_PARAMS),
];

/// Takes `resolver` and `params` out of a run's reference when the
/// resolver is one we have, as our `{resolver, params}`; params it does not
/// take are reported (the run would be refused for them).
fn remote_reference(reference: &mut Value, at: &str, losses: &mut Losses) -> Option<Value> {
    let map = reference.as_object_mut()?;
    let resolver = map.get("resolver").and_then(Value::as_str)?.to_string();
    let (_, known) = RESOLVER_PARAMS.iter().find(|(name, _)| *name == resolver)?;
    map.remove("resolver");
    let mut params = Vec::new();
    let given = match map.remove("params") {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    for (index, param) in given.into_iter().enumerate() {
        match param.get("name").and_then(Value::as_str) {
            Some(name) if known.contains(&name) => params.push(param),
            name => losses.push(
                format!("{at}.params[{index}]"),
                format!(
                    "the {resolver} resolver here takes {} only, not {:?}; dropped",
                    known.join(", "),
                    name.unwrap_or_default()
                ),
            ),
        }
    }
    Some(serde_json::json!({"resolver": resolver, "params": params}))
}

/// `stepSpecs`/`sidecarSpecs` (v1: `computeResources`) and v1beta1's
/// `stepOverrides`/`sidecarOverrides` (`resources`) become `stepSpecs` /
/// `sidecarSpecs`.
fn resource_overrides(fields: &mut Fields, out: &mut Map<String, Value>, losses: &mut Losses) {
    for (key, old_key) in [("stepSpecs", "stepOverrides"), ("sidecarSpecs", "sidecarOverrides")] {
        convert_list(fields, key, out, losses, |v, at, l| {
            copy_only(v, at, &["name", "computeResources"], l)
        });
        let old_at = fields.field(old_key);
        let Some(old) = fields.take(old_key) else { continue };
        let mut converted = Vec::new();
        for (at, entry) in super::fields::items(Some(old), &old_at, losses) {
            let mut entry = Fields::of(entry, &at, losses);
            let mut item = Map::new();
            entry.copy("name", &mut item);
            entry.copy_as("resources", "computeResources", &mut item);
            entry.finish(losses);
            converted.push(Value::Object(item));
        }
        out.insert(key.into(), Value::Array(converted));
    }
}

/// Converts Tekton specs into ours.
pub struct Converter;

/// Fields of a step (and of a StepAction) copied as they are.
const STEP_FIELDS: &[&str] = &[
    "name",
    "image",
    "script",
    "command",
    "args",
    "env",
    "envFrom",
    "workingDir",
    "securityContext",
    "volumeMounts",
    "imagePullPolicy",
    "timeout",
    "onError",
];

/// Fields of a stepTemplate copied as they are.
const STEP_TEMPLATE_FIELDS: &[&str] = &[
    "image",
    "env",
    "envFrom",
    "workingDir",
    "securityContext",
    "volumeMounts",
    "imagePullPolicy",
];

/// Pod template fields both sides have.
const POD_TEMPLATE_FIELDS: &[&str] = &[
    "nodeSelector",
    "tolerations",
    "affinity",
    "securityContext",
    "imagePullSecrets",
    "hostNetwork",
    "priorityClassName",
    "runtimeClassName",
    "volumes",
];

fn param_spec(value: Value, at: &str, losses: &mut Losses) -> Value {
    let mut fields = Fields::of(value, at, losses);
    let mut out = Map::new();
    for key in ["name", "type", "description", "default", "properties"] {
        fields.copy(key, &mut out);
    }
    // Tekton infers the type of a param with properties: it is an object.
    if out.contains_key("properties") && !out.contains_key("type") {
        out.insert("type".into(), Value::String("object".into()));
    }
    fields.unsupported("enum", "allowed values (enum) are not checked here; dropped", losses);
    fields.finish(losses);
    Value::Object(out)
}

fn result_spec(value: Value, at: &str, losses: &mut Losses) -> Value {
    let mut fields = Fields::of(value, at, losses);
    let mut out = Map::new();
    for key in ["name", "type", "description", "properties"] {
        fields.copy(key, &mut out);
    }
    match fields.take("value") {
        Some(Value::String(reference)) => {
            out.insert("value".into(), Value::String(reference));
        }
        Some(other) => losses.push(
            format!("{at}.value"),
            format!(
                "a result takes its value from one $(steps.<s>.results.<r>) reference here, not {}; dropped",
                kind_of(&other)
            ),
        ),
        None => {}
    }
    fields.finish(losses);
    Value::Object(out)
}

fn param(value: Value, at: &str, losses: &mut Losses) -> Value {
    copy_only(value, at, &["name", "value"], losses)
}

/// Renames Tekton v1's `computeResources` (v1beta1: `resources`) to ours.
fn take_resources(fields: &mut Fields, out: &mut Map<String, Value>) {
    fields.copy_as("computeResources", "resources", out);
    fields.copy("resources", out);
}

fn step_template(value: Value, at: &str, losses: &mut Losses) -> Value {
    let mut fields = Fields::of(value, at, losses);
    let mut out = Map::new();
    for key in STEP_TEMPLATE_FIELDS {
        fields.copy(key, &mut out);
    }
    take_resources(&mut fields, &mut out);
    fields.finish(losses);
    Value::Object(out)
}

fn sidecar(value: Value, at: &str, losses: &mut Losses) -> Value {
    let mut fields = Fields::of(value, at, losses);
    let mut out = Map::new();
    fields.copy_as("computeResources", "resources", &mut out);
    // The rest (`script` and isolated `workspaces` too) is a sidecar here as well.
    out.extend(fields.into_rest());
    Value::Object(out)
}

impl Converter {
    /// `ref: {name: x}` runs MyStepAction `x` (what `convert` makes of
    /// StepAction `x`), with the step's `params`; `ref: {resolver, params}`
    /// with a resolver we have is kept as it is.
    fn step_action_ref(fields: &mut Fields, out: &mut Map<String, Value>, losses: &mut Losses) {
        let Some(mut reference) = fields.take("ref") else {
            return;
        };
        let at = fields.field("ref");
        if let Some(remote) = remote_reference(&mut reference, &at, losses) {
            Fields::of(reference, &at, losses).finish(losses);
            out.insert("ref".into(), remote);
            fields.copy("params", out);
            return;
        }
        let mut reference = Fields::of(reference, &at, losses);
        if let Some(name) = reference.take_str("name", losses) {
            out.insert("ref".into(), serde_json::json!({ "name": name }));
        }
        reference.unsupported("resolver", REMOTE, losses);
        reference.unsupported("params", REMOTE, losses);
        reference.finish(losses);
        fields.copy("params", out);
    }

    /// A StepAction spec: the container fields of one step, its params and
    /// its step results.
    pub fn step_action_spec(&self, value: Value, at: &str, losses: &mut Losses) -> Value {
        let mut fields = Fields::of(value, at, losses);
        let mut out = Map::new();
        for key in [
            "description",
            "image",
            "script",
            "command",
            "args",
            "env",
            "workingDir",
            "securityContext",
            "volumeMounts",
        ] {
            fields.copy(key, &mut out);
        }
        convert_list(&mut fields, "params", &mut out, losses, param_spec);
        convert_list(&mut fields, "results", &mut out, losses, result_spec);
        fields.finish(losses);
        Value::Object(out)
    }

    fn step(&self, value: Value, at: &str, losses: &mut Losses) -> Value {
        let mut fields = Fields::of(value, at, losses);
        let mut out = Map::new();
        Self::step_action_ref(&mut fields, &mut out, losses);
        for key in STEP_FIELDS {
            fields.copy(key, &mut out);
        }
        take_resources(&mut fields, &mut out);
        fields.copy("results", &mut out);
        fields.copy("workspaces", &mut out);
        fields.copy("displayName", &mut out);
        fields.unsupported(
            "stdoutConfig",
            "writing a step's output to a file is not supported; dropped",
            losses,
        );
        fields.unsupported(
            "stderrConfig",
            "writing a step's output to a file is not supported; dropped",
            losses,
        );
        fields.unsupported("when", "step-level when expressions are not supported; dropped", losses);
        fields.finish(losses);
        Value::Object(out)
    }

    /// A Task spec (also an embedded taskSpec).
    pub fn task_spec(&self, value: Value, at: &str, losses: &mut Losses) -> Value {
        let mut fields = Fields::of(value, at, losses);
        let mut out = Map::new();
        fields.copy("description", &mut out);
        convert_list(&mut fields, "params", &mut out, losses, param_spec);
        convert_list(&mut fields, "results", &mut out, losses, result_spec);
        convert_list(&mut fields, "workspaces", &mut out, losses, |v, at, l| {
            copy_only(v, at, &["name", "description", "mountPath", "readOnly", "optional"], l)
        });
        convert_list(&mut fields, "steps", &mut out, losses, |v, at, l| self.step(v, at, l));
        if let Some(template) = fields.take("stepTemplate") {
            out.insert(
                "stepTemplate".into(),
                step_template(template, &fields.field("stepTemplate"), losses),
            );
        }
        convert_list(&mut fields, "sidecars", &mut out, losses, sidecar);
        fields.copy("volumes", &mut out);
        fields.copy("displayName", &mut out);
        fields.unsupported(
            "resources",
            "PipelineResources (v1beta1) have no equivalent; dropped",
            losses,
        );
        // An embedded taskSpec may carry metadata for the pod; only empty metadata maps exactly.
        if let Some(metadata) = fields.take("metadata")
            && metadata.as_object().is_some_and(|m| !m.is_empty())
        {
            losses.push(
                fields.field("metadata"),
                "labels and annotations of an embedded taskSpec are not applied here; dropped",
            );
        }
        fields.finish(losses);
        Value::Object(out)
    }

    fn workspace_binding(value: Value, at: &str, losses: &mut Losses) -> Value {
        let mut fields = Fields::of(value, at, losses);
        let mut out = Map::new();
        for key in [
            "name",
            "subPath",
            "emptyDir",
            "persistentVolumeClaim",
            "volumeClaimTemplate",
            "configMap",
            "secret",
            "projected",
        ] {
            fields.copy(key, &mut out);
        }
        fields.unsupported(
            "csi",
            "CSI workspace bindings are not supported (an inline CSI volume is the cluster administrator's choice, not a run's); dropped",
            losses,
        );
        fields.finish(losses);
        Value::Object(out)
    }

    /// One entry of a PipelineRun's `taskRunSpecs`; v1beta1 names two of
    /// its fields `taskServiceAccountName` and `taskPodTemplate`.
    fn pipeline_task_run_spec(value: Value, at: &str, losses: &mut Losses) -> Value {
        let mut fields = Fields::of(value, at, losses);
        let mut out = Map::new();
        for key in ["pipelineTaskName", "serviceAccountName", "timeout"] {
            fields.copy(key, &mut out);
        }
        if !out.contains_key("serviceAccountName") {
            fields.copy_as("taskServiceAccountName", "serviceAccountName", &mut out);
        }
        for key in ["podTemplate", "taskPodTemplate"] {
            if out.contains_key("podTemplate") {
                break;
            }
            if let Some(template) = fields.take(key) {
                out.insert(
                    "podTemplate".into(),
                    Self::pod_template(template, &fields.field(key), losses),
                );
            }
        }
        fields.copy("computeResources", &mut out);
        resource_overrides(&mut fields, &mut out, losses);
        fields.unsupported(
            "metadata",
            "labels and annotations for one task's run are not supported yet; dropped",
            losses,
        );
        fields.finish(losses);
        Value::Object(out)
    }

    fn pod_template(value: Value, at: &str, losses: &mut Losses) -> Value {
        copy_only(value, at, POD_TEMPLATE_FIELDS, losses)
    }

    /// `taskRef: {name: x}` becomes `taskRef: x`; `key` is taskRef or
    /// pipelineRef. A git or cluster resolver becomes `remote_key`
    /// (`remoteTask`, `remotePipeline`) where runs have one.
    fn reference(
        fields: &mut Fields,
        (key, remote_key): (&str, Option<&str>),
        out: &mut Map<String, Value>,
        losses: &mut Losses,
    ) {
        let Some(mut reference) = fields.take(key) else { return };
        if let Some(remote_key) = remote_key
            && let Some(remote) = remote_reference(&mut reference, &fields.field(key), losses)
        {
            out.insert(remote_key.to_string(), remote);
        }
        let at = fields.field(key);
        if let Value::String(name) = reference {
            out.insert(key.to_string(), Value::String(name));
            return;
        }
        let mut reference = Fields::of(reference, &at, losses);
        if let Some(name) = reference.take_str("name", losses) {
            out.insert(key.to_string(), Value::String(name));
        }
        match reference.take_str("kind", losses).as_deref() {
            None | Some("Task" | "Pipeline") => {}
            Some("ClusterTask") => losses.push(
                format!("{at}.kind"),
                "ClusterTasks do not exist here; the name now refers to a MyTask in the run's namespace",
            ),
            Some(other) => losses.push(
                format!("{at}.kind"),
                format!("custom task kind {other:?} is not supported"),
            ),
        }
        reference.unsupported("apiVersion", "custom tasks are not supported", losses);
        reference.unsupported("resolver", REMOTE, losses);
        reference.unsupported("params", REMOTE, losses);
        reference.unsupported("bundle", REMOTE, losses);
        reference.finish(losses);
    }

    pub fn task_run_spec(&self, value: Value, at: &str, losses: &mut Losses) -> Value {
        let mut fields = Fields::of(value, at, losses);
        let mut out = Map::new();
        Self::reference(&mut fields, ("taskRef", Some("remoteTask")), &mut out, losses);
        if let Some(spec) = fields.take("taskSpec") {
            out.insert(
                "taskSpec".into(),
                self.task_spec(spec, &fields.field("taskSpec"), losses),
            );
        }
        convert_list(&mut fields, "params", &mut out, losses, param);
        convert_list(&mut fields, "workspaces", &mut out, losses, Self::workspace_binding);
        for key in ["serviceAccountName", "timeout", "retries"] {
            fields.copy(key, &mut out);
        }
        if let Some(template) = fields.take("podTemplate") {
            out.insert(
                "podTemplate".into(),
                Self::pod_template(template, &fields.field("podTemplate"), losses),
            );
        }
        match fields.take_str("status", losses).as_deref() {
            None => {}
            Some("TaskRunCancelled") => {
                out.insert("status".into(), Value::String("Cancelled".into()));
            }
            Some(other) => losses.push(
                fields.field("status"),
                format!("status {other:?} has no equivalent; dropped"),
            ),
        }
        fields.unsupported("statusMessage", "a cancellation message is not kept; dropped", losses);
        fields.copy("computeResources", &mut out);
        resource_overrides(&mut fields, &mut out, losses);
        fields.unsupported("debug", "breakpoints are not supported; dropped", losses);
        fields.unsupported(
            "managedBy",
            "another controller cannot manage a run here; dropped",
            losses,
        );
        fields.unsupported(
            "resources",
            "PipelineResources (v1beta1) have no equivalent; dropped",
            losses,
        );
        fields.finish(losses);
        Value::Object(out)
    }

    fn when(value: Value, at: &str, losses: &mut Losses) -> Value {
        let mut fields = Fields::of(value, at, losses);
        let mut out = Map::new();
        for key in ["input", "operator", "values", "cel"] {
            fields.copy(key, &mut out);
        }
        fields.finish(losses);
        Value::Object(out)
    }

    /// `matrix` maps field for field: `params` (lists), `include` entries
    /// (`name`, string `params`, `when`).
    fn matrix(value: Value, at: &str, losses: &mut Losses) -> Value {
        let mut fields = Fields::of(value, at, losses);
        let mut out = Map::new();
        convert_list(&mut fields, "params", &mut out, losses, param);
        convert_list(&mut fields, "include", &mut out, losses, |entry, at, losses| {
            let mut fields = Fields::of(entry, at, losses);
            let mut out = Map::new();
            fields.copy("name", &mut out);
            convert_list(&mut fields, "params", &mut out, losses, param);
            convert_list(&mut fields, "when", &mut out, losses, Self::when);
            fields.finish(losses);
            Value::Object(out)
        });
        fields.finish(losses);
        Value::Object(out)
    }

    fn pipeline_task(&self, value: Value, at: &str, losses: &mut Losses) -> Value {
        let mut fields = Fields::of(value, at, losses);
        let mut out = Map::new();
        fields.copy("name", &mut out);
        Self::reference(&mut fields, ("taskRef", Some("remoteTask")), &mut out, losses);
        if let Some(spec) = fields.take("taskSpec") {
            out.insert(
                "taskSpec".into(),
                self.task_spec(spec, &fields.field("taskSpec"), losses),
            );
        }
        convert_list(&mut fields, "params", &mut out, losses, param);
        convert_list(&mut fields, "workspaces", &mut out, losses, |v, at, l| {
            copy_only(v, at, &["name", "workspace", "subPath"], l)
        });
        for key in ["runAfter", "retries", "timeout"] {
            fields.copy(key, &mut out);
        }
        convert_list(&mut fields, "when", &mut out, losses, Self::when);
        if let Some(matrix) = fields.take("matrix") {
            out.insert("matrix".into(), Self::matrix(matrix, &fields.field("matrix"), losses));
        }
        fields.unsupported(
            "pipelineRef",
            "pipelines in pipelines are not supported; dropped",
            losses,
        );
        fields.unsupported(
            "pipelineSpec",
            "pipelines in pipelines are not supported; dropped",
            losses,
        );
        fields.copy("displayName", &mut out);
        fields.unsupported(
            "description",
            "pipeline task descriptions are not kept; dropped",
            losses,
        );
        fields.copy("onError", &mut out);
        fields.unsupported(
            "resources",
            "PipelineResources (v1beta1) have no equivalent; dropped",
            losses,
        );
        fields.unsupported(
            "conditions",
            "v1beta1 Conditions have no equivalent; use when; dropped",
            losses,
        );
        fields.finish(losses);
        Value::Object(out)
    }

    fn pipeline_result(value: Value, at: &str, losses: &mut Losses) -> Value {
        let mut fields = Fields::of(value, at, losses);
        let mut out = Map::new();
        fields.copy("name", &mut out);
        fields.copy("description", &mut out);
        // A string, a list of strings (an array result) or a map of strings
        // (an object result), as ours; the decoder checks the shape.
        fields.copy("value", &mut out);
        // Our result's type follows from its value (a list, a map, or a
        // whole array or object reference), so a `type` saying the same
        // thing has nothing to add.
        match fields.take_str("type", losses).as_deref() {
            None | Some("string" | "array" | "object") => {}
            Some(other) => losses.push(
                fields.field("type"),
                format!("{other:?} is not a result type (string, array or object); dropped"),
            ),
        }
        fields.finish(losses);
        Value::Object(out)
    }

    pub fn pipeline_spec(&self, value: Value, at: &str, losses: &mut Losses) -> Value {
        let mut fields = Fields::of(value, at, losses);
        let mut out = Map::new();
        fields.copy("description", &mut out);
        convert_list(&mut fields, "params", &mut out, losses, param_spec);
        convert_list(&mut fields, "workspaces", &mut out, losses, |v, at, l| {
            copy_only(v, at, &["name", "description", "optional"], l)
        });
        convert_list(&mut fields, "tasks", &mut out, losses, |v, at, l| {
            self.pipeline_task(v, at, l)
        });
        convert_list(&mut fields, "finally", &mut out, losses, |v, at, l| {
            self.pipeline_task(v, at, l)
        });
        convert_list(&mut fields, "results", &mut out, losses, Self::pipeline_result);
        fields.copy("displayName", &mut out);
        fields.unsupported(
            "resources",
            "PipelineResources (v1beta1) have no equivalent; dropped",
            losses,
        );
        fields.finish(losses);
        Value::Object(out)
    }

    pub fn pipeline_run_spec(&self, value: Value, at: &str, losses: &mut Losses) -> Value {
        let mut fields = Fields::of(value, at, losses);
        let mut out = Map::new();
        Self::reference(&mut fields, ("pipelineRef", Some("remotePipeline")), &mut out, losses);
        if let Some(spec) = fields.take("pipelineSpec") {
            out.insert(
                "pipelineSpec".into(),
                self.pipeline_spec(spec, &fields.field("pipelineSpec"), losses),
            );
        }
        convert_list(&mut fields, "params", &mut out, losses, param);
        convert_list(&mut fields, "workspaces", &mut out, losses, Self::workspace_binding);
        fields.copy("timeouts", &mut out);
        // v1beta1's single timeout is the whole pipeline's.
        if let Some(timeout) = fields.take("timeout") {
            out.insert("timeouts".into(), serde_json::json!({ "pipeline": timeout }));
        }
        fields.copy("serviceAccountName", &mut out);
        if let Some(template) = fields.take("podTemplate") {
            out.insert(
                "podTemplate".into(),
                Self::pod_template(template, &fields.field("podTemplate"), losses),
            );
        }
        if let Some(template) = fields.take("taskRunTemplate") {
            let at = fields.field("taskRunTemplate");
            let mut template = Fields::of(template, &at, losses);
            template.copy("serviceAccountName", &mut out);
            if let Some(pod) = template.take("podTemplate") {
                out.insert(
                    "podTemplate".into(),
                    Self::pod_template(pod, &template.field("podTemplate"), losses),
                );
            }
            template.finish(losses);
        }
        match fields.take_str("status", losses).as_deref() {
            None => {}
            Some("Cancelled" | "PipelineRunCancelled") => {
                out.insert("status".into(), Value::String("Cancelled".into()));
            }
            Some("CancelledRunFinally") => {
                out.insert("status".into(), Value::String("Cancelled".into()));
                losses.push(
                    fields.field("status"),
                    "CancelledRunFinally becomes Cancelled: finally tasks do not run",
                );
            }
            Some(other) => losses.push(
                fields.field("status"),
                format!("status {other:?} has no equivalent; dropped"),
            ),
        }
        convert_list(
            &mut fields,
            "taskRunSpecs",
            &mut out,
            losses,
            Self::pipeline_task_run_spec,
        );
        // v1beta1's per-task service accounts are taskRunSpecs entries here.
        let mut old_accounts = Map::new();
        convert_list(
            &mut fields,
            "serviceAccountNames",
            &mut old_accounts,
            losses,
            |v, at, l| {
                let mut entry = Fields::of(v, at, l);
                let mut out = Map::new();
                entry.copy_as("taskName", "pipelineTaskName", &mut out);
                entry.copy("serviceAccountName", &mut out);
                entry.finish(l);
                Value::Object(out)
            },
        );
        if let Some(Value::Array(entries)) = old_accounts.remove("serviceAccountNames") {
            let specs = out.entry("taskRunSpecs").or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(specs) = specs {
                specs.extend(entries);
            }
        }
        fields.unsupported(
            "managedBy",
            "another controller cannot manage a run here; dropped",
            losses,
        );
        fields.unsupported(
            "resources",
            "PipelineResources (v1beta1) have no equivalent; dropped",
            losses,
        );
        fields.finish(losses);
        Value::Object(out)
    }
}
