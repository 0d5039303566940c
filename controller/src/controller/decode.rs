//! Decoding our objects one at a time.
//!
//! Parts of our CRDs are stored by the API server without a full schema
//! (embedded pod fields, inline specs), so a stored object can fail to
//! decode into our types. Watching typed objects would then fail the whole
//! list, stalling every run. Instead the controllers watch untyped objects
//! and decode each one here: a bad object gets a clear error in its own
//! status and the others carry on.

use kube::api::{ApiResource, DynamicObject};
use kube::{Api, Resource, ResourceExt};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::json;
use tracing::warn;

use crate::api::strict;
use crate::error::{Error, Result};

use super::context::{Context, Requeue, object_key};
use super::stand_in::{is_finished_stand_in, succeeded_status};
use super::status_writer::replace_status_at;
use super::stores::{AWAIT_OWN_WRITE, Freshness};
use super::stream::{self, UNREADABLE};

/// Decodes an untyped object strictly (see `api::strict`), naming each
/// offending field on error (e.g. `spec.steps[0].timout: unknown field, did
/// you mean timeout?` or `spec.taskSpec.sidecars[0].ports[0].containerPort:
/// invalid type ...`). A stand-in for a too-deep object (see `stream`)
/// gives the problem found when it was read.
pub fn decode<K: DeserializeOwned + JsonSchema + 'static>(object: &DynamicObject) -> Result<K, String> {
    if let Some(problem) = object.data.get(UNREADABLE).and_then(|p| p.as_str()) {
        return Err(problem.to_string());
    }
    let value = serde_json::to_value(object).map_err(|error| error.to_string())?;
    strict::decode_value(value).map_err(|error| error.to_string())
}

/// Reads one object by name, each read on its own (see `stream`), and
/// decodes it: None if it does not exist, `Some(Err)` naming the problem if
/// it is malformed (for the caller to report on its run).
pub async fn get_decoded<K>(client: &kube::Client, namespace: &str, name: &str) -> Result<Option<Result<K, String>>>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + JsonSchema + 'static,
{
    let resource = ApiResource::erase::<K>(&());
    let url = DynamicObject::url_path(&resource, Some(namespace));
    let object = stream::get(client, &url, name).await?;
    Ok(object.map(|object| decode::<K>(&object)))
}

/// Every object of kind `K` in a namespace, each read and decoded on its
/// own: one malformed object fails alone.
pub async fn list_decoded<K>(
    client: &kube::Client,
    namespace: &str,
    labels: Option<&str>,
) -> Result<Vec<(String, Result<K, String>)>>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + JsonSchema + 'static,
{
    let resource = ApiResource::erase::<K>(&());
    let url = DynamicObject::url_path(&resource, Some(namespace));
    let (objects, _) = stream::list(client, &url, labels).await?;
    Ok(objects
        .into_iter()
        .map(|object| (object.name_any(), decode::<K>(&object)))
        .collect())
}

/// The API of kind `K` as untyped objects, in one namespace or all.
pub fn dynamic_api<K>(client: &kube::Client, namespace: Option<&str>) -> (Api<DynamicObject>, ApiResource)
where
    K: Resource<DynamicType = ()>,
{
    let resource = ApiResource::erase::<K>(&());
    let api = match namespace {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    (api, resource)
}

/// The current version of a cached object, read from the API server, or
/// None if it is gone. The watch cache can lag behind our own last status
/// write; deciding on that stale copy would redo recorded work (and, for
/// example, stamp a second start time).
pub async fn fresh(
    object: &DynamicObject,
    resource: &ApiResource,
    client: &kube::Client,
) -> Result<Option<DynamicObject>> {
    let namespace = object.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let url = DynamicObject::url_path(resource, Some(&namespace));
    Ok(stream::get(client, &url, &object.name_any()).await?)
}

/// What a reconcile works on: the run, decoded; nothing more to do
/// (finished, gone, or rejected as malformed); or not yet (the cache has
/// not caught up with our own last write).
pub enum Loaded<K> {
    Run(Box<K>),
    Done(Requeue),
    Wait(Requeue),
}

/// Loads the run behind a cached object, to be reconciled only if it is not
/// `finished`. The cached copy is used unless it is older than our own last
/// status write of the run (`stores::Versions`): then the reconcile waits
/// for the watch to bring that write, or, if the watch is late, reads the
/// run fresh, so no decision is taken on a copy that predates our own work. A
/// run that cannot be decoded is ended with `invalid_reason`.
pub async fn load_run<K>(
    cached: &DynamicObject,
    invalid_reason: &str,
    finished: impl Fn(&K) -> bool,
    ctx: &Context,
) -> Result<Loaded<K>>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + JsonSchema + 'static,
{
    if is_finished_stand_in(cached) {
        return Ok(Loaded::Done(Requeue::await_change()));
    }
    let resource = ApiResource::erase::<K>(&());
    let namespace = cached.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let key = object_key(&resource.kind, &namespace, &cached.name_any());
    let fetched;
    let object = match ctx
        .versions
        .freshness(&key, cached.metadata.resource_version.as_deref())
    {
        Freshness::Current => cached,
        // The watch brings our write soon and queues the run again.
        Freshness::AwaitingWatch => return Ok(Loaded::Wait(Requeue::requeue(AWAIT_OWN_WRITE))),
        Freshness::Stale => match fresh(cached, &resource, &ctx.client).await? {
            Some(object) => {
                fetched = object;
                &fetched
            }
            None => return Ok(Loaded::Done(Requeue::await_change())),
        },
    };
    match decode::<K>(object) {
        Ok(run) if finished(&run) => Ok(Loaded::Done(Requeue::await_change())),
        Ok(run) => Ok(Loaded::Run(Box::new(run))),
        Err(problem) => reject_malformed(object, &resource, invalid_reason, &problem, ctx)
            .await
            .map(Loaded::Done),
    }
}

fn already_failed(object: &DynamicObject) -> bool {
    succeeded_status(&object.data) == Some("False")
}

/// Ends a run that cannot be decoded: condition False with `reason` and the
/// decoding error, and a Warning event. Written once.
pub async fn reject_malformed(
    object: &DynamicObject,
    resource: &ApiResource,
    reason: &str,
    problem: &str,
    ctx: &Context,
) -> Result<Requeue> {
    if already_failed(object) {
        return Ok(Requeue::await_change());
    }
    let namespace = object.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let name = object.name_any();
    let message = format!("{} {name:?} cannot be read: {problem}", resource.kind);
    warn!(kind = %resource.kind, %name, %message, "malformed object");
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let status = json!({
        "conditions": [{
            "type": "Succeeded",
            "status": "False",
            "reason": reason,
            "message": message,
            "lastTransitionTime": now,
        }],
        "completionTime": now,
    });
    let url = DynamicObject::url_path(resource, Some(&namespace));
    let text = replace_status_at(&ctx.client, &url, &name, &status).await?;
    let written = stream::item_from_text(&text)
        .map_err(|problem| kube::Error::Service(format!("{url}/{name}: the written object: {problem}").into()))?;
    let key = object_key(&resource.kind, &namespace, &name);
    ctx.versions.wrote(&key, written.metadata.resource_version.as_deref());
    ctx.publish(&object.object_ref(resource), true, reason, &message).await;
    Ok(Requeue::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::MyTaskRun;

    fn object(value: serde_json::Value) -> DynamicObject {
        serde_json::from_value(value).expect("a dynamic object")
    }

    #[test]
    fn a_good_object_decodes() {
        let run: Result<MyTaskRun, String> = decode(&object(json!({
            "apiVersion": "cicdoperator.ning1875.io/v1",
            "kind": "MyTaskRun",
            "metadata": {"name": "tr1", "namespace": "default"},
            "spec": {"taskRef": "t1"}
        })));
        assert_eq!(run.map(|r| r.spec.task_ref), Ok(Some("t1".to_string())));
    }

    #[test]
    fn a_bad_embedded_field_is_named() {
        let run: Result<MyTaskRun, String> = decode(&object(json!({
            "apiVersion": "cicdoperator.ning1875.io/v1",
            "kind": "MyTaskRun",
            "metadata": {"name": "tr1", "namespace": "default"},
            "spec": {"taskSpec": {"steps": [], "sidecars": [{"name": "db", "ports": [{"containerPort": "lots"}]}]}}
        })));
        let error = run.expect_err("must not decode");
        assert!(
            error.starts_with("spec.taskSpec.sidecars[0].ports[0].containerPort: invalid type"),
            "{error}"
        );
    }

    fn run_with_sidecar(sidecar: serde_json::Value) -> Result<MyTaskRun, String> {
        decode(&object(json!({
            "apiVersion": "cicdoperator.ning1875.io/v1",
            "kind": "MyTaskRun",
            "metadata": {"name": "tr1", "namespace": "default"},
            "spec": {"taskSpec": {"steps": [], "sidecars": [sidecar]}}
        })))
    }

    #[test]
    fn a_sidecar_s_script_decodes_and_its_mistakes_are_named() {
        let run =
            run_with_sidecar(json!({"name": "db", "image": "i", "script": "serve", "args": ["-v"]})).expect("decodes");
        let sidecar = &run.spec.task_spec.expect("inline").sidecars[0];
        assert_eq!(sidecar.script.as_deref(), Some("serve"));
        assert_eq!(sidecar.container.args, Some(vec!["-v".to_string()]));

        let error = run_with_sidecar(json!({"name": "db", "script": ["serve"]})).expect_err("a list is no script");
        assert!(
            error.starts_with("spec.taskSpec.sidecars[0].script: invalid type: sequence"),
            "{error}"
        );
        let error = run_with_sidecar(json!({"name": "db", "scirpt": "serve"})).expect_err("misspelt");
        assert!(
            error.starts_with("spec.taskSpec.sidecars[0].scirpt: unknown field"),
            "{error}"
        );
    }
}
