//! Artifacts: what a step says it read and made (Tekton's artifacts), for
//! provenance. A step writes them as JSON at `$(step.artifacts.path)` (its
//! own, in `status.steps[].inputs`/`outputs`) or `$(artifacts.path)` (the
//! task's, in `status.artifacts`); both travel as the step's results do.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

/// A step's or a task's artifacts.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Artifacts {
    /// What was read (sources, base images), by category.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<Artifact>,
    /// What was made (images, packages), by category.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<Artifact>,
}

impl Artifacts {
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty() && self.outputs.is_empty()
    }

    /// `other`'s categories after this one's (a task's artifacts gather
    /// those of its steps, in step order).
    pub fn extend(&mut self, other: Artifacts) {
        self.inputs.extend(other.inputs);
        self.outputs.extend(other.outputs);
    }
}

/// One category of artifacts, e.g. the images a step pushed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Artifact {
    /// The category, as `$(steps.<s>.outputs.<name>)` would name it.
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<ArtifactValue>,
    /// A product of the build (an image pushed), not a by-product (a log):
    /// provenance tools list only these as the build's subjects.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub build_output: bool,
}

/// One artifact: where it is and what its bytes hash to.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArtifactValue {
    /// Where it is, e.g. a package URL (`pkg:oci/app@sha256:...`).
    #[serde(default)]
    pub uri: String,
    /// Algorithm -> hex digest. Written either as that map or as one
    /// `"<algorithm>:<hex>"` string (as some of Tekton's examples do).
    #[serde(default, deserialize_with = "digest_map_or_text")]
    pub digest: BTreeMap<String, String>,
}

/// Most categories a step's artifacts may hold, and values per category:
/// they land in the run's status, which has to fit in one object.
pub const MAX_CATEGORIES: usize = 64;
pub const MAX_VALUES: usize = 256;

/// Reads what a step wrote at an artifacts path.
pub fn parse(text: &str) -> Result<Artifacts, String> {
    let artifacts: Artifacts = serde_json::from_str(text).map_err(|error| format!("not artifacts JSON: {error}"))?;
    let categories = artifacts.inputs.len() + artifacts.outputs.len();
    if categories > MAX_CATEGORIES {
        return Err(format!("{categories} categories, over the limit of {MAX_CATEGORIES}"));
    }
    let all = artifacts.inputs.iter().chain(&artifacts.outputs);
    if let Some(crowded) = all.clone().find(|a| a.values.len() > MAX_VALUES) {
        return Err(format!(
            "category {:?} has {} values, over the limit of {MAX_VALUES}",
            crowded.name,
            crowded.values.len()
        ));
    }
    if let Some(unnamed) = all.clone().position(|a| a.name.is_empty()) {
        return Err(format!("category {unnamed} has no name"));
    }
    Ok(artifacts)
}

fn digest_map_or_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<String, String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Map(BTreeMap<String, String>),
        Text(String),
    }
    let written = Written::deserialize(deserializer).map_err(|_| {
        serde::de::Error::custom("digest: expected {\"<algorithm>\": \"<hex>\"} or \"<algorithm>:<hex>\"")
    })?;
    match written {
        Written::Map(map) => Ok(map),
        Written::Text(text) => match text.split_once(':') {
            Some((algorithm, hex)) if !algorithm.is_empty() && !hex.is_empty() => {
                Ok(BTreeMap::from([(algorithm.to_string(), hex.to_string())]))
            }
            _ => Err(serde::de::Error::custom(format!(
                "digest {text:?}: expected \"<algorithm>:<hex>\""
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_is_a_map_or_one_algorithm_and_hex() {
        let parsed = parse(
            r#"{"inputs": [{"name": "src", "values": [{"uri": "git:abc", "digest": "sha256:33"}]}],
                "outputs": [{"name": "image", "buildOutput": true,
                             "values": [{"uri": "pkg:oci/app", "digest": {"sha256": "aa", "sha1": "bb"}}]}]}"#,
        )
        .expect("artifacts");
        assert_eq!(
            parsed.inputs[0].values[0].digest,
            BTreeMap::from([("sha256".into(), "33".into())])
        );
        assert_eq!(parsed.outputs[0].values[0].digest.len(), 2);
        assert!(parsed.outputs[0].build_output);
        assert!(!parsed.inputs[0].build_output);
    }

    #[test]
    fn malformed_artifacts_say_what_is_wrong() {
        for (text, needle) in [
            ("not json", "not artifacts JSON"),
            (
                r#"{"outputs": [{"name": "x", "values": [{"digest": "nocolon"}]}]}"#,
                "\"<algorithm>:<hex>\"",
            ),
            (r#"{"outputs": [{"name": "x", "valus": []}]}"#, "unknown field `valus`"),
            (r#"{"outputs": [{"values": []}]}"#, "missing field `name`"),
            (r#"{"outputs": [{"name": ""}]}"#, "category 0 has no name"),
        ] {
            let error = parse(text).expect_err(text);
            assert!(error.contains(needle), "{text}: {error}");
        }
        let many = serde_json::json!({ "outputs": (0..=MAX_CATEGORIES).map(|i| serde_json::json!({"name": i.to_string()})).collect::<Vec<_>>() });
        assert!(
            parse(&many.to_string())
                .expect_err("too many")
                .contains("over the limit")
        );
    }
}
