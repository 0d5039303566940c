//! Tekton bundles: an OCI image whose layers each hold one Task or
//! Pipeline, found by the annotations `dev.tekton.image.kind` and
//! `dev.tekton.image.name` on the layer. The `bundles` resolver reads the
//! image's manifest, picks the layer, and reads the one file in it (a tar
//! archive, gzip-compressed or not). Pure; the registry I/O is
//! `controller::registry`.
//!
//! A bundle is a tenant's image, so every size is bounded and nothing of a
//! layer's content is put in a message.

use std::collections::BTreeMap;
use std::io::Read;

use serde::Deserialize;

/// Most layers a bundle may have (Tekton's limit too).
pub const MAX_BUNDLE_LAYERS: usize = 20;

pub const KIND_ANNOTATION: &str = "dev.tekton.image.kind";
pub const NAME_ANNOTATION: &str = "dev.tekton.image.name";

/// One object a bundle holds, and the layer it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleLayer {
    pub digest: String,
    /// Lowercase, as Tekton writes it (`task`, `pipeline`).
    pub kind: String,
    pub name: String,
}

#[derive(Deserialize)]
struct RawManifest {
    #[serde(default)]
    layers: Vec<RawLayer>,
}

#[derive(Deserialize)]
struct RawLayer {
    digest: String,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// The objects a bundle's manifest lists; a layer without both
/// annotations is no object (and an error: bundles hold nothing else).
pub fn bundle_layers(manifest: &[u8]) -> Result<Vec<BundleLayer>, String> {
    let raw: RawManifest = serde_json::from_slice(manifest)
        .map_err(|e| format!("the bundle's manifest is not an image manifest ({e})"))?;
    if raw.layers.len() > MAX_BUNDLE_LAYERS {
        return Err(format!(
            "the bundle has {} layers, at most {MAX_BUNDLE_LAYERS} are read",
            raw.layers.len()
        ));
    }
    raw.layers
        .into_iter()
        .enumerate()
        .map(|(index, layer)| {
            let annotation = |key: &str| {
                layer
                    .annotations
                    .get(key)
                    .cloned()
                    .ok_or_else(|| format!("layer {index} of the bundle has no {key} annotation"))
            };
            Ok(BundleLayer {
                kind: annotation(KIND_ANNOTATION)?.to_ascii_lowercase(),
                name: annotation(NAME_ANNOTATION)?,
                digest: layer.digest,
            })
        })
        .collect()
}

/// The layer holding the `kind` named `name`; the error lists what the
/// bundle holds.
pub fn find_layer<'a>(layers: &'a [BundleLayer], kind: &str, name: &str) -> Result<&'a BundleLayer, String> {
    layers
        .iter()
        .find(|layer| layer.kind == kind && layer.name == name)
        .ok_or_else(|| {
            let held: Vec<String> = layers.iter().map(|l| format!("{} {:?}", l.kind, l.name)).collect();
            format!(
                "the bundle holds no {kind} {name:?} (it holds {})",
                if held.is_empty() {
                    "nothing".to_string()
                } else {
                    held.join(", ")
                }
            )
        })
}

/// The text of the one file in a layer: a tar archive, gzip-compressed or
/// not, read up to `max_bytes` of the file.
pub fn layer_file(blob: &[u8], max_bytes: usize) -> Result<String, String> {
    let archive = if blob.starts_with(&[0x1f, 0x8b]) {
        let mut unpacked = Vec::new();
        // The archive is the file plus headers and padding: a little more
        // than the file may be.
        let limit = (max_bytes + 64 * 1024) as u64;
        flate2::read::GzDecoder::new(blob)
            .take(limit + 1)
            .read_to_end(&mut unpacked)
            .map_err(|e| format!("the layer is not a readable gzip archive ({e})"))?;
        if unpacked.len() as u64 > limit {
            return Err(format!(
                "the layer's file is over {max_bytes} bytes, the most that is read"
            ));
        }
        unpacked
    } else {
        blob.to_vec()
    };
    let file = first_regular_file(&archive)?;
    if file.len() > max_bytes {
        return Err(format!(
            "the layer's file is over {max_bytes} bytes, the most that is read"
        ));
    }
    String::from_utf8(file.to_vec()).map_err(|_| "the layer's file is not UTF-8 text".to_string())
}

const BLOCK: usize = 512;

/// The content of the first regular file of a tar archive (pax and GNU
/// extension headers and directories are stepped over).
fn first_regular_file(archive: &[u8]) -> Result<&[u8], String> {
    let mut offset = 0;
    while offset + BLOCK <= archive.len() {
        let header = &archive[offset..offset + BLOCK];
        if header.iter().all(|&b| b == 0) {
            break;
        }
        let size = octal(&header[124..136]).ok_or("the layer is not a tar archive (a header's size is unreadable)")?;
        let start = offset + BLOCK;
        let end = start
            .checked_add(size)
            .filter(|&end| end <= archive.len())
            .ok_or("the layer's tar archive is cut short")?;
        if matches!(header[156], b'0' | 0) {
            return Ok(&archive[start..end]);
        }
        offset = start + size.div_ceil(BLOCK) * BLOCK;
    }
    Err("the layer's tar archive holds no file".to_string())
}

/// A tar header's octal number (NUL- or space-terminated).
fn octal(field: &[u8]) -> Option<usize> {
    let digits: Vec<u8> = field
        .iter()
        .copied()
        .skip_while(|&b| b == b' ')
        .take_while(|&b| b != 0 && b != b' ')
        .collect();
    if digits.is_empty() || digits.len() > 11 {
        return None;
    }
    digits.iter().try_fold(0usize, |value, &digit| {
        (b'0'..=b'7')
            .contains(&digit)
            .then(|| value * 8 + usize::from(digit - b'0'))
    })
}

/// A ustar archive of `files` (name, content, type flag), as `tar`
/// writes one; for tests here and of the registry I/O.
#[cfg(test)]
pub(crate) fn tar(files: &[(&str, &[u8], u8)]) -> Vec<u8> {
    let mut archive = Vec::new();
    for (name, content, kind) in files {
        let mut header = [0u8; BLOCK];
        header[..name.len()].copy_from_slice(name.as_bytes());
        header[100..107].copy_from_slice(b"0000644");
        header[124..135].copy_from_slice(format!("{:011o}", content.len()).as_bytes());
        header[156] = *kind;
        header[257..262].copy_from_slice(b"ustar");
        archive.extend_from_slice(&header);
        archive.extend_from_slice(content);
        archive.resize(archive.len().div_ceil(BLOCK) * BLOCK, 0);
    }
    archive.extend_from_slice(&[0u8; 2 * BLOCK]);
    archive
}

/// `bytes` gzip-compressed; for tests.
#[cfg(test)]
pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("in memory");
    encoder.finish().expect("in memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_of_a_layer_is_read_compressed_or_not() {
        let task = b"apiVersion: tekton.dev/v1\nkind: Task\n";
        let archive = tar(&[("pax", b"30 path=long/name\n", b'x'), ("task.yaml", task, b'0')]);
        assert_eq!(
            layer_file(&archive, 1024).as_deref(),
            Ok("apiVersion: tekton.dev/v1\nkind: Task\n")
        );
        assert_eq!(
            layer_file(&gzip(&archive), 1024).as_deref(),
            Ok("apiVersion: tekton.dev/v1\nkind: Task\n")
        );
        let error = layer_file(&gzip(&tar(&[("big", &[b'a'; 4096], b'0')])), 100).expect_err("too big");
        assert!(error.contains("over 100 bytes"), "{error}");
        let bomb = gzip(&vec![0u8; 8 * 1024 * 1024]);
        assert!(layer_file(&bomb, 1024).expect_err("a bomb").contains("over 1024 bytes"));
        assert!(
            layer_file(&tar(&[("dir/", b"", b'5')]), 1024)
                .expect_err("no file")
                .contains("holds no file")
        );
        let mut cut = tar(&[("t", &[b'a'; 2000], b'0')]);
        cut.truncate(1024);
        assert!(layer_file(&cut, 4096).expect_err("cut").contains("cut short"));
        assert!(
            layer_file(b"\x1f\x8bnot gzip", 1024)
                .expect_err("bad gzip")
                .contains("gzip")
        );
    }

    #[test]
    fn layers_are_found_by_kind_and_name() {
        let manifest = br#"{"layers":[
            {"digest":"sha256:1","annotations":{"dev.tekton.image.kind":"Task","dev.tekton.image.name":"build"}},
            {"digest":"sha256:2","annotations":{"dev.tekton.image.kind":"pipeline","dev.tekton.image.name":"ci"}}]}"#;
        let layers = bundle_layers(manifest).expect("a bundle");
        assert_eq!(
            find_layer(&layers, "task", "build").map(|l| l.digest.as_str()),
            Ok("sha256:1")
        );
        let error = find_layer(&layers, "task", "ci").expect_err("a pipeline");
        assert_eq!(
            error,
            "the bundle holds no task \"ci\" (it holds task \"build\", pipeline \"ci\")"
        );
        let unannotated = br#"{"layers":[{"digest":"sha256:1","annotations":{}}]}"#;
        assert!(
            bundle_layers(unannotated)
                .expect_err("no annotations")
                .contains("dev.tekton.image.kind")
        );
        let many = format!(r#"{{"layers":[{}]}}"#, vec![r#"{"digest":"d"}"#; 21].join(","));
        assert!(
            bundle_layers(many.as_bytes())
                .expect_err("too many")
                .contains("21 layers")
        );
    }
}
