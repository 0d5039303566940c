//! Listing, watching and reading our objects one object at a time.
//!
//! kube's own watcher decodes a whole LIST response with serde_json, which
//! refuses JSON nested 128 deep: one such object (param values are free
//! form) would fail every list, and no run in any namespace would be
//! reconciled. Here responses are split into items without recursion
//! (`strict::split_top_level`), each item's depth is checked
//! by a scan that does not recurse, and only then is it decoded. An item
//! that is too deep becomes a stand-in carrying just its metadata and the
//! problem, so its reconcile fails it alone, with a message naming the field.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::time::Duration;

use futures::io::AsyncBufRead;
use futures::{AsyncBufReadExt, Stream, StreamExt, stream};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::Resource as _;
use kube::api::{ApiResource, DynamicObject, ListParams, WatchParams};
use kube::runtime::watcher;
use serde::Deserialize;
use tracing::{debug, warn};

use crate::api::Condition;
use crate::api::strict::{MAX_DEPTH, split_top_level, text_too_deep};

/// Key of the stand-in's data that carries why the object cannot be read.
pub const UNREADABLE: &str = "cicdUnreadable";

/// Objects per LIST page.
const PAGE_SIZE: u32 = 200;
/// The server ends a watch after this long; we then watch again.
const WATCH_SECONDS: u32 = 290;
/// Longest wait between attempts after an error.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The metadata of a LIST response.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawListMeta {
    #[serde(default)]
    resource_version: Option<String>,
    #[serde(rename = "continue", default)]
    continue_token: Option<String>,
}

/// One LIST page: its metadata and the text of each item, not yet decoded.
struct RawList<'a> {
    metadata: RawListMeta,
    items: Vec<&'a str>,
}

fn raw_list(text: &str) -> Result<RawList<'_>, String> {
    let members = split_top_level(text).ok_or("a list response is not a JSON object")?;
    let mut list = RawList {
        metadata: RawListMeta::default(),
        items: Vec::new(),
    };
    for (key, value) in members {
        match key {
            "metadata" => list.metadata = serde_json::from_str(value).map_err(|e| format!("list metadata: {e}"))?,
            "items" if value != "null" => {
                let items = split_top_level(value).ok_or("the list's items are not a JSON array")?;
                list.items = items.into_iter().map(|(_, item)| item).collect();
            }
            _ => {}
        }
    }
    Ok(list)
}

/// One line of a watch response: its type and the text of its object.
struct RawEvent<'a> {
    kind: String,
    object: &'a str,
}

fn raw_event(line: &str) -> Result<RawEvent<'_>, String> {
    let members = split_top_level(line).ok_or("a watch event is not a JSON object")?;
    let mut kind = None;
    let mut object = None;
    for (key, value) in members {
        match key {
            "type" => kind = Some(serde_json::from_str::<String>(value).map_err(|e| format!("event type: {e}"))?),
            "object" => object = Some(value),
            _ => {}
        }
    }
    match (kind, object) {
        (Some(kind), Some(object)) => Ok(RawEvent { kind, object }),
        _ => Err("a watch event needs a type and an object".to_string()),
    }
}

/// The parts of a too-deep object that can be read safely: every other
/// field is skipped (without recursion) by serde.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Shallow {
    api_version: String,
    kind: String,
    #[serde(default)]
    metadata: ShallowMeta,
    #[serde(default)]
    status: Option<ShallowStatus>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ShallowMeta {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    generation: Option<i64>,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
    owner_references: Option<Vec<OwnerReference>>,
    creation_timestamp: Option<Time>,
    deletion_timestamp: Option<Time>,
    finalizers: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ShallowStatus {
    conditions: Vec<Condition>,
}

/// Decodes one object of a response: the object itself when it is at most
/// `MAX_DEPTH` deep, else a stand-in with its metadata and, under
/// [`UNREADABLE`], the problem. Err only when not even the metadata reads.
pub fn item_from_text(text: &str) -> Result<DynamicObject, String> {
    let Some(problem) = text_too_deep(text, MAX_DEPTH) else {
        return serde_json::from_str(text).map_err(|error| error.to_string());
    };
    let shallow: Shallow = serde_json::from_str(text).map_err(|error| error.to_string())?;
    let meta = shallow.metadata;
    let mut data = serde_json::json!({ UNREADABLE: problem.to_string() });
    if let Some(status) = shallow.status {
        data["status"] = serde_json::json!({ "conditions": status.conditions });
    }
    Ok(DynamicObject {
        types: Some(kube::core::TypeMeta {
            api_version: shallow.api_version,
            kind: shallow.kind,
        }),
        metadata: ObjectMeta {
            name: meta.name,
            namespace: meta.namespace,
            uid: meta.uid,
            resource_version: meta.resource_version,
            generation: meta.generation,
            labels: meta.labels,
            annotations: meta.annotations,
            owner_references: meta.owner_references,
            creation_timestamp: meta.creation_timestamp,
            deletion_timestamp: meta.deletion_timestamp,
            finalizers: meta.finalizers,
            ..Default::default()
        },
        data,
    })
}

/// Reads one object by name, decoded as [`item_from_text`]; None if gone.
pub async fn get(client: &kube::Client, url: &str, name: &str) -> kube::Result<Option<DynamicObject>> {
    let request = kube::core::Request::new(url)
        .get(name, &Default::default())
        .map_err(kube::Error::BuildRequest)?;
    let text = match client.request_text(request).await {
        Ok(text) => text,
        Err(kube::Error::Api(status)) if status.code == 404 => return Ok(None),
        Err(error) => return Err(error),
    };
    item_from_text(&text).map(Some).map_err(|problem| {
        kube::Error::Service(format!("{url}/{name}: cannot read even the metadata: {problem}").into())
    })
}

/// Every object of a list, each decoded alone, and the list's version.
pub async fn list(
    client: &kube::Client,
    url: &str,
    labels: Option<&str>,
) -> kube::Result<(Vec<DynamicObject>, String)> {
    let mut objects = Vec::new();
    let mut continue_token = None;
    loop {
        let params = ListParams {
            label_selector: labels.map(str::to_string),
            limit: Some(PAGE_SIZE),
            continue_token: continue_token.take(),
            ..Default::default()
        };
        let request = kube::core::Request::new(url)
            .list(&params)
            .map_err(kube::Error::BuildRequest)?;
        let text = client.request_text(request).await?;
        let page = raw_list(&text).map_err(|problem| kube::Error::Service(format!("{url}: {problem}").into()))?;
        for item in page.items {
            match item_from_text(item) {
                Ok(object) => objects.push(object),
                Err(problem) => warn!(%url, %problem, "skipping an object whose metadata cannot be read"),
            }
        }
        match page.metadata.continue_token.filter(|token| !token.is_empty()) {
            Some(token) => continue_token = Some(token),
            None => return Ok((objects, page.metadata.resource_version.unwrap_or_default())),
        }
    }
}

type Body = Pin<Box<dyn AsyncBufRead + Send>>;

/// Where a watch stream is.
enum Phase {
    /// (Re)list everything, after a start or an expired version.
    List,
    /// Watch from this version; the open response, if any.
    Watch { version: String, body: Option<Body> },
}

struct State {
    client: kube::Client,
    url: String,
    labels: Option<String>,
    phase: Phase,
    backoff: Duration,
}

/// A list-then-watch stream of watcher events, for
/// `Controller::for_stream` through a reflector. It never ends and never
/// yields an error: failures are logged and retried with backoff.
pub fn watch(
    client: kube::Client,
    resource: &ApiResource,
    namespace: Option<&str>,
    labels: Option<&str>,
) -> impl Stream<Item = Result<watcher::Event<DynamicObject>, watcher::Error>> + Send + use<> {
    let state = State {
        client,
        url: DynamicObject::url_path(resource, namespace),
        labels: labels.map(str::to_string),
        phase: Phase::List,
        backoff: Duration::from_millis(500),
    };
    stream::unfold(state, |mut state| async move {
        let events = step(&mut state).await;
        Some((stream::iter(events.into_iter().map(Ok)), state))
    })
    .flatten()
}

/// One step of the stream: the events it produced (possibly none).
async fn step(state: &mut State) -> Vec<watcher::Event<DynamicObject>> {
    match &mut state.phase {
        Phase::List => match list(&state.client, &state.url, state.labels.as_deref()).await {
            Ok((objects, version)) => {
                state.backoff = Duration::from_millis(500);
                state.phase = Phase::Watch { version, body: None };
                let mut events = Vec::with_capacity(objects.len() + 2);
                events.push(watcher::Event::Init);
                events.extend(objects.into_iter().map(watcher::Event::InitApply));
                events.push(watcher::Event::InitDone);
                events
            }
            Err(error) => {
                warn!(url = %state.url, %error, "list failed; retrying");
                back_off(state).await;
                Vec::new()
            }
        },
        Phase::Watch { version, body } => {
            if body.is_none() {
                match open_watch(&state.client, &state.url, state.labels.as_deref(), version).await {
                    Ok(opened) => *body = Some(opened),
                    Err(error) => {
                        warn!(url = %state.url, %error, "watch failed; listing again");
                        state.phase = Phase::List;
                        back_off(state).await;
                        return Vec::new();
                    }
                }
            }
            read_event(state).await
        }
    }
}

async fn back_off(state: &mut State) {
    tokio::time::sleep(state.backoff).await;
    state.backoff = (state.backoff * 2).min(MAX_BACKOFF);
}

async fn open_watch(client: &kube::Client, url: &str, labels: Option<&str>, version: &str) -> kube::Result<Body> {
    let params = WatchParams {
        label_selector: labels.map(str::to_string),
        timeout: Some(WATCH_SECONDS),
        bookmarks: true,
        ..Default::default()
    };
    let request = kube::core::Request::new(url)
        .watch(&params, version)
        .map_err(kube::Error::BuildRequest)?;
    let body = client.request_stream(request).await?;
    Ok(Box::pin(body))
}

/// Reads one line of the open watch and turns it into events.
async fn read_event(state: &mut State) -> Vec<watcher::Event<DynamicObject>> {
    let Phase::Watch {
        version,
        body: Some(body),
    } = &mut state.phase
    else {
        return Vec::new();
    };
    let mut line = Vec::new();
    match body.read_until(b'\n', &mut line).await {
        Ok(0) => {
            debug!(url = %state.url, "watch ended; watching again");
            if let Phase::Watch { body, .. } = &mut state.phase {
                *body = None;
            }
            return Vec::new();
        }
        Ok(_) => {}
        Err(error) => {
            warn!(url = %state.url, %error, "watch broke; watching again");
            if let Phase::Watch { body, .. } = &mut state.phase {
                *body = None;
            }
            back_off(state).await;
            return Vec::new();
        }
    }
    let text = String::from_utf8_lossy(&line);
    if text.trim().is_empty() {
        return Vec::new();
    }
    let event = match raw_event(&text) {
        Ok(event) => event,
        Err(error) => {
            warn!(url = %state.url, %error, "unreadable watch event; listing again");
            state.phase = Phase::List;
            return Vec::new();
        }
    };
    if event.kind == "ERROR" {
        // Usually 410 Gone: our version is too old. Start over.
        warn!(url = %state.url, status = %event.object, "watch error; listing again");
        state.phase = Phase::List;
        return Vec::new();
    }
    let object = match item_from_text(event.object) {
        Ok(object) => object,
        Err(problem) => {
            warn!(url = %state.url, %problem, "skipping a watch event whose metadata cannot be read");
            return Vec::new();
        }
    };
    if let Some(newer) = object.metadata.resource_version.clone() {
        *version = newer;
    }
    state.backoff = Duration::from_millis(500);
    match event.kind.as_str() {
        "ADDED" | "MODIFIED" => vec![watcher::Event::Apply(object)],
        "DELETED" => vec![watcher::Event::Delete(object)],
        _ => Vec::new(), // BOOKMARK: only the version matters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deep_run(depth: usize) -> String {
        let value = format!("{}\"x\"{}", "[".repeat(depth), "]".repeat(depth));
        format!(
            r#"{{"apiVersion":"cicdoperator.ning1875.io/v1","kind":"MyTaskRun",
            "metadata":{{"name":"deep","namespace":"a","uid":"u1","resourceVersion":"7",
              "managedFields":[{{"fieldsV1":{}}}]}},
            "spec":{{"taskRef":"t","params":[{{"name":"p","value":{value}}}]}}}}"#,
            value
        )
    }

    #[test]
    fn a_list_with_one_too_deep_item_still_yields_every_item() {
        let good = r#"{"apiVersion":"cicdoperator.ning1875.io/v1","kind":"MyTaskRun","metadata":{"name":"good","namespace":"b"},"spec":{"taskRef":"t"}}"#;
        let text = format!(
            r#"{{"kind":"MyTaskRunList","metadata":{{"resourceVersion":"9"}},"items":[{},{good}]}}"#,
            deep_run(5000)
        );
        assert!(
            serde_json::from_str::<serde_json::Value>(&text).is_err(),
            "serde_json alone fails"
        );
        let page = raw_list(&text).expect("items split without recursion");
        assert_eq!(page.metadata.resource_version.as_deref(), Some("9"));
        let objects: Vec<DynamicObject> = page
            .items
            .iter()
            .map(|item| item_from_text(item).expect("metadata reads"))
            .collect();
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[0].metadata.name.as_deref(), Some("deep"));
        assert_eq!(objects[0].metadata.uid.as_deref(), Some("u1"));
        let problem = objects[0].data[UNREADABLE].as_str().unwrap_or_default();
        assert!(
            problem.starts_with("spec.params[0].value[0]") && problem.contains("nested more than 64 levels"),
            "{problem}"
        );
        assert_eq!(objects[1].data["spec"]["taskRef"], "t");
    }
}
