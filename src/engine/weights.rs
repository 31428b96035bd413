//! The graph and its external weight files, read into memory before ONNX
//! Runtime sees them.
//!
//! Loading from a path lets ONNX Runtime map the files: a file truncated
//! under a running server then kills it with SIGBUS, and one overwritten in
//! place silently changes the model mid-session. Read copies cost the same
//! memory (the weights are resident either way) and make the loaded model
//! independent of the files; [`crate::files::Stamp`] notices when they change.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use crate::model::ModelError;

/// Protobuf caps a serialized graph at 2 GiB; larger models keep their
/// weights in external files.
const GRAPH_LIMIT: u64 = 2 << 30;
/// One external weight file: bounds a read that would otherwise follow a
/// file growing under it.
const EXTERNAL_LIMIT: u64 = 256 << 30;

pub(crate) struct Weights {
    pub graph: Vec<u8>,
    /// External data files by the name the graph gives them.
    pub external: Vec<(String, Arc<[u8]>)>,
}

impl Weights {
    pub fn read(graph: &Path) -> Result<Self, ModelError> {
        let io = |file: &Path| {
            let file = file.to_path_buf();
            move |error| ModelError::Io { file, error }
        };
        let bytes = crate::files::read_bytes(graph, GRAPH_LIMIT).map_err(io(graph))?;
        if bytes.is_empty() {
            return Err(ModelError::Invalid {
                file: graph.to_path_buf(),
                message: "the file is empty".into(),
            });
        }
        let dir = graph.parent().unwrap_or(Path::new("."));
        let invalid = |message: String| ModelError::Invalid {
            file: graph.to_path_buf(),
            message,
        };
        let locations = external_locations(&bytes)
            .ok_or_else(|| invalid("it names external data in a form nib does not read".into()))?;
        // Named inside the folder; links are followed (the Hugging Face
        // cache's snapshot folders are links into its blob store).
        let mut external = Vec::new();
        for name in locations {
            let outside = || {
                invalid(format!(
                    "its external data `{name}` is not a file inside the model's folder"
                ))
            };
            let relative = inside_folder(&name).ok_or_else(outside)?;
            let path = dir.join(relative);
            let data = crate::files::read_bytes(&path, EXTERNAL_LIMIT).map_err(io(&path))?;
            external.push((name, Arc::from(data)));
        }
        Ok(Self {
            graph: bytes,
            external,
        })
    }

    /// The files read from `graph`'s folder, for noticing changes.
    pub fn files(&self, graph: &Path) -> Vec<PathBuf> {
        let dir = graph.parent().unwrap_or(Path::new("."));
        std::iter::once(graph.to_path_buf())
            .chain(self.external.iter().map(|(name, _)| dir.join(name)))
            .collect()
    }
}

/// The `location` of every tensor stored outside the graph. An external
/// tensor carries `StringStringEntryProto { key: "location", value }`, whose
/// encoding (as every exporter writes it) starts with these exact bytes
/// (field 1, length 8, the key, then field 2), so a scan finds them without
/// a protobuf parser. `None` (fail closed) when the graph holds a
/// `location` key in any other form (value first, a name that is not
/// UTF-8, a truncated entry, ONNX Runtime's in-memory address marker):
/// ONNX Runtime would then resolve a file nib did not check.
fn external_locations(graph: &[u8]) -> Option<BTreeSet<String>> {
    const KEY: &[u8] = b"\x0a\x08location\x12";
    const ANY_KEY: &[u8] = b"location";
    let mut found = BTreeSet::new();
    let mut read = 0;
    let mut rest = graph;
    while let Some(at) = find(rest, KEY) {
        rest = &rest[at + KEY.len()..];
        let (len, used) = varint(rest)?;
        let value = usize::try_from(len)
            .ok()
            .and_then(|len| rest.get(used..used.checked_add(len)?))?;
        let name = std::str::from_utf8(value).ok()?;
        if name.contains("_ORT_MEM_ADDR_") {
            return None;
        }
        found.insert(name.to_owned());
        read += 1;
    }
    // Every occurrence of the key string was one of those entries. (A node
    // or tensor merely named with the word elsewhere makes this fail too:
    // better a clear error than an unchecked file.)
    let keys = graph
        .windows(ANY_KEY.len() + 1)
        .filter(|w| w[0] == 8 && &w[1..] == ANY_KEY)
        .count();
    (keys == read).then_some(found)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A protobuf varint and the bytes it took.
fn varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// `name` as a path below the model's folder: relative, without `..`
/// (the graph is data a repository may hold, not a licence to read any file).
fn inside_folder(name: &str) -> Option<&Path> {
    let path = Path::new(name);
    let plain = path
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    (plain && !name.is_empty()).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(value: &str) -> Vec<u8> {
        let mut out = b"\x0a\x08location\x12".to_vec();
        out.push(value.len() as u8);
        out.extend_from_slice(value.as_bytes());
        out
    }

    #[test]
    fn finds_each_external_file_once() {
        let mut graph = b"\x08\x07junk".to_vec();
        graph.extend(entry("model.onnx_data"));
        graph.extend(b"\x0a\x06offset\x12\x010");
        graph.extend(entry("model.onnx_data"));
        graph.extend(entry("weights/b.bin"));
        let found: Vec<_> = external_locations(&graph)
            .expect("readable")
            .into_iter()
            .collect();
        assert_eq!(found, ["model.onnx_data", "weights/b.bin"]);
        assert_eq!(
            external_locations(b"\x08\x01no external data"),
            Some(BTreeSet::new())
        );
    }

    #[test]
    fn entries_in_any_other_form_fail_closed() {
        let mut truncated = entry("model.onnx_data");
        truncated.truncate(truncated.len() - 3);
        let value_first = b"\x12\x0b/etc/passwd\x0a\x08location".to_vec();
        let not_utf8 = b"\x0a\x08location\x12\x02\xff\xfe".to_vec();
        for graph in [
            truncated,
            value_first,
            not_utf8,
            entry("*/_ORT_MEM_ADDR_/*"),
        ] {
            assert!(external_locations(&graph).is_none(), "{graph:?}");
        }
        // A longer length encoding is read like a short one (and the name
        // then checked like any other).
        let long_length = b"\x0a\x08location\x12\x8b\x00/etc/passwd";
        let found = external_locations(long_length).expect("readable");
        assert!(found.contains("/etc/passwd"));
    }

    #[test]
    fn only_files_inside_the_folder() {
        assert!(inside_folder("model.onnx_data").is_some());
        assert!(inside_folder("sub/w.bin").is_some());
        assert!(inside_folder("./w.bin").is_some());
        for bad in ["", "../w.bin", "/etc/passwd", "a/../../w"] {
            assert!(inside_folder(bad).is_none(), "{bad}");
        }
    }
}
