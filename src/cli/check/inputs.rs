//! What `nib check` reviews: the files named and the walk of each folder
//! (honouring `.gitignore`, skipping hidden files and excluded ones), or
//! one text from stdin; each read as text, or skipped with a warning.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::lint::Policies;
use crate::review::language_of;

/// Files larger than this are skipped: generated or vendored code, and
/// minutes of scoring for one file.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// The files to review under `paths`, in path order: files named directly
/// (if nib has rules for their language; exclusions do not apply to them)
/// and the walk of each folder, less what each file's policy excludes.
pub fn collect(paths: &[PathBuf], policies: &mut Policies) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for root in paths {
        let meta = std::fs::metadata(root)
            .with_context(|| format!("cannot check `{}`", root.display()))?;
        if meta.is_file() {
            if language_of(root).is_some() {
                files.push(root.clone());
            } else {
                tracing::warn!("{}: no review rules for this language", root.display());
            }
            continue;
        }
        let walk = ignore::WalkBuilder::new(root)
            .require_git(false)
            .sort_by_file_path(|a, b| a.cmp(b))
            .build();
        for entry in walk {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    tracing::warn!("{e}");
                    continue;
                }
            };
            let path = entry.path();
            if !entry.file_type().is_some_and(|t| t.is_file()) || language_of(path).is_none() {
                continue;
            }
            if !policies.for_file(path)?.excludes(path, root) {
                files.push(path.to_path_buf());
            }
        }
    }
    // Overlapping arguments (`nib check . src/`) name some files twice.
    files.sort();
    files.dedup();
    Ok(files)
}

/// The file's text, or `None` with a warning when it is not reviewable text.
pub fn read_text(path: &Path) -> Option<String> {
    let warn = |why: &str| tracing::warn!("skipping {}: {why}", path.display());
    match std::fs::metadata(path) {
        Ok(m) if m.len() > MAX_FILE_BYTES => {
            warn(&format!("larger than {} KiB", MAX_FILE_BYTES >> 10));
            return None;
        }
        Err(e) => {
            warn(&e.to_string());
            return None;
        }
        Ok(_) => {}
    }
    match crate::files::read_bytes(path, MAX_FILE_BYTES) {
        Ok(bytes) => text_of(bytes).map_err(warn).ok(),
        Err(e) => {
            warn(&e.to_string());
            None
        }
    }
}

/// Bytes as reviewable text: UTF-8 without NUL bytes, not minified.
pub fn text_of(bytes: Vec<u8>) -> Result<String, &'static str> {
    if bytes.contains(&0) {
        return Err("binary file");
    }
    let text = String::from_utf8(bytes).map_err(|_| "not UTF-8 text")?;
    if crate::review::looks_minified(&text) {
        return Err("minified or generated (mostly lines over 300 characters); review its source");
    }
    Ok(text)
}

/// Paths as the user would write them: without a leading `./`.
pub fn display_path(path: &Path) -> String {
    let shown = path.strip_prefix(".").unwrap_or(path);
    shown.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_lose_a_leading_dot() {
        assert_eq!(display_path(Path::new("./src/a.py")), "src/a.py");
        assert_eq!(display_path(Path::new("src/a.py")), "src/a.py");
    }
}
