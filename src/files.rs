//! Reading what nib is pointed at (a model's JSON files, a file to
//! complete, a prompt on stdin) with bounds: only regular files, since a
//! FIFO or a device (`/dev/zero`) would block or never end, and at most a
//! size limit, read through `take` so that a file growing under the read
//! cannot exceed it either.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Model JSON files (config, tokenizer, generation config): tokenizers of
/// large vocabularies are some tens of MiB.
pub const MODEL_JSON_LIMIT: u64 = 256 << 20;
/// A source file to complete, or a prompt.
pub const TEXT_LIMIT: u64 = 16 << 20;

fn too_large(limit: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("larger than the limit of {} MiB", limit >> 20),
    )
}

/// The bytes of a regular file of at most `limit` bytes.
pub fn read_bytes(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    if meta.len() > limit {
        return Err(too_large(limit));
    }
    read_limited(std::fs::File::open(path)?, limit)
}

/// [`read_bytes`] as UTF-8 text.
pub fn read_text(path: &Path, limit: u64) -> io::Result<String> {
    String::from_utf8(read_bytes(path, limit)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// All of `reader`, failing past `limit` bytes.
pub fn read_limited(reader: impl Read, limit: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(limit));
    }
    Ok(bytes)
}

/// Size and modification time of some files (`None` for one that is
/// gone), to notice that one changed since it was read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stamp(Vec<Option<(u64, SystemTime)>>);

impl Stamp {
    /// Whether the files that differ from `before` have not changed for
    /// `quiet` (one still being copied or downloaded changes again soon; a
    /// removed file counts as settled).
    pub fn settled_since(&self, before: &Stamp, quiet: std::time::Duration) -> bool {
        let now = SystemTime::now();
        self.0
            .iter()
            .zip(before.0.iter().map(Some).chain(std::iter::repeat(None)))
            .filter(|(new, old)| Some(*new) != *old)
            .all(|(new, _)| {
                new.is_none_or(|(_, modified)| {
                    now.duration_since(modified).is_ok_and(|age| age >= quiet)
                })
            })
    }

    pub fn of(paths: &[PathBuf]) -> Self {
        Self(
            paths
                .iter()
                .map(|p| {
                    let meta = std::fs::metadata(p).ok()?;
                    Some((meta.len(), meta.modified().ok()?))
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_file_types() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("a.txt");
        std::fs::write(&file, "héllo").expect("write");
        assert_eq!(read_text(&file, 100).expect("read"), "héllo");
        assert!(read_text(&file, 3).is_err());
        assert!(read_text(dir.path(), 100).is_err(), "a folder");
        assert!(
            read_limited(std::io::repeat(0), 1 << 10).is_err(),
            "endless input"
        );
        assert_eq!(read_limited(&b"abc"[..], 3).expect("fits"), b"abc");
        #[cfg(unix)]
        assert!(
            read_bytes(Path::new("/dev/zero"), 100).is_err(),
            "a device is no regular file"
        );
    }

    #[test]
    fn stamps_change_with_the_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("w");
        std::fs::write(&file, "abc").expect("write");
        let paths = [file.clone(), dir.path().join("absent")];
        let before = Stamp::of(&paths);
        assert_eq!(before, Stamp::of(&paths), "nothing changed");
        std::fs::write(&file, "abcd").expect("write");
        assert_ne!(before, Stamp::of(&paths), "grew");
        let grown = Stamp::of(&paths);
        let minute = std::time::Duration::from_secs(60);
        assert!(!grown.settled_since(&before, minute), "just written");
        assert!(grown.settled_since(&before, std::time::Duration::ZERO));
        assert!(grown.settled_since(&grown, minute), "nothing differs");
        std::fs::remove_file(&file).expect("rm");
        assert_ne!(grown, Stamp::of(&paths), "removed");
    }
}
