//! The lines a change touched, for `--diff REV`: each file as it is now
//! against its content at the git revision REV (so uncommitted edits count,
//! and a file REV does not have, untracked or new, is changed throughout).
//!
//! git is asked only for REV's objects (`rev-parse`, `cat-file --batch`),
//! never to look at the working tree: comparing the working tree would run
//! the clean filters and diff drivers a repository's configuration names.
//! The lines are compared here, with the `similar` crate.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("--diff needs git, which is not on PATH")]
    NoGit,
    #[error("git {args} failed: {message}")]
    Git { args: String, message: String },
}

/// What changed since a revision, per file, computed on demand.
pub struct Changes {
    top: PathBuf,
    commit: String,
    /// Line ranges (1-based, inclusive) by path relative to `top`.
    files: HashMap<PathBuf, Vec<RangeInclusive<usize>>>,
}

impl Changes {
    /// Prepares comparisons against `rev` in the repository holding `dir`.
    pub fn since(rev: &str, dir: &Path) -> Result<Self, DiffError> {
        let top = git(dir, &["rev-parse", "--show-toplevel"], None)?;
        let top = PathBuf::from(top.trim());
        let top = top.canonicalize().unwrap_or(top);
        let commit = git(
            &top,
            &[
                "rev-parse",
                "--verify",
                "--end-of-options",
                &format!("{rev}^{{commit}}"),
            ],
            None,
        )?
        .trim()
        .to_owned();
        Ok(Self {
            top,
            commit,
            files: HashMap::new(),
        })
    }

    /// Compares `files` (with their current texts) against the revision:
    /// after this, [`Changes::lines`] answers for each of them.
    pub fn compare(&mut self, files: &[(PathBuf, &str)]) -> Result<(), DiffError> {
        let relative: Vec<Option<PathBuf>> = files.iter().map(|(p, _)| self.relative(p)).collect();
        let names: Vec<&Path> = relative.iter().flatten().map(PathBuf::as_path).collect();
        let old = self.contents(&names)?;
        for ((_, text), rel) in files.iter().zip(&relative) {
            let Some(rel) = rel else { continue };
            let lines = match old.get(rel) {
                Some(Some(before)) => changed_lines(before, text),
                // Not in the revision: every line is new.
                _ => vec![1..=usize::MAX],
            };
            self.files.insert(rel.clone(), lines);
        }
        Ok(())
    }

    /// The changed lines of `path` (empty when the change left it alone;
    /// `None` when it was not compared or lies outside the repository).
    pub fn lines(&self, path: &Path) -> Option<&[RangeInclusive<usize>]> {
        self.files.get(&self.relative(path)?).map(Vec::as_slice)
    }

    fn relative(&self, path: &Path) -> Option<PathBuf> {
        let absolute = std::path::absolute(path).ok()?;
        let canonical = absolute.canonicalize().unwrap_or(absolute);
        canonical
            .strip_prefix(&self.top)
            .ok()
            .map(Path::to_path_buf)
    }

    /// Each path's content at the revision (`None` where it has none),
    /// through one `git cat-file --batch`.
    fn contents(&self, paths: &[&Path]) -> Result<HashMap<PathBuf, Option<String>>, DiffError> {
        let mut requests = String::new();
        for p in paths {
            // One request per line: a path holding a newline cannot be named.
            let name = p.to_string_lossy().replace('\\', "/");
            if !name.contains('\n') {
                requests.push_str(&format!("{}:{name}\n", self.commit));
            }
        }
        let out = git_bytes(
            &self.top,
            &["cat-file", "--batch"],
            Some(requests.as_bytes()),
        )?;
        let mut reader = BufReader::new(out.as_slice());
        let mut result = HashMap::new();
        for p in paths.iter().filter(|p| !p.to_string_lossy().contains('\n')) {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                break;
            }
            // `<oid> blob <size>`, or `<request> missing`.
            let mut parts = header.split_whitespace();
            let (kind, size) = (parts.nth(1), parts.next().and_then(|s| s.parse().ok()));
            let content = match (kind, size) {
                (Some("blob"), Some(size)) => {
                    let mut bytes = vec![0u8; size];
                    if reader.read_exact(&mut bytes).is_err() {
                        break;
                    }
                    let mut newline = [0u8; 1];
                    let _ = reader.read_exact(&mut newline);
                    String::from_utf8(bytes).ok()
                }
                (Some(_), Some(size)) => {
                    // A tree or another object: skip its content.
                    let mut skip = vec![0u8; size + 1];
                    let _ = reader.read_exact(&mut skip);
                    None
                }
                _ => None,
            };
            result.insert(p.to_path_buf(), content);
        }
        Ok(result)
    }
}

/// The new side's changed lines, 1-based and inclusive.
fn changed_lines(before: &str, after: &str) -> Vec<RangeInclusive<usize>> {
    use similar::{DiffOp, TextDiff};
    let diff = TextDiff::from_lines(before, after);
    let mut out: Vec<RangeInclusive<usize>> = Vec::new();
    for op in diff.ops() {
        let (start, len) = match *op {
            DiffOp::Insert {
                new_index, new_len, ..
            }
            | DiffOp::Replace {
                new_index, new_len, ..
            } => (new_index, new_len),
            DiffOp::Delete { .. } | DiffOp::Equal { .. } => continue,
        };
        if len > 0 {
            out.push(start + 1..=start + len);
        }
    }
    out
}

fn git(dir: &Path, args: &[&str], input: Option<&[u8]>) -> Result<String, DiffError> {
    git_bytes(dir, args, input).map(|out| String::from_utf8_lossy(&out).into_owned())
}

/// git's output, as bytes (blobs need not be text).
fn git_bytes(dir: &Path, args: &[&str], input: Option<&[u8]>) -> Result<Vec<u8>, DiffError> {
    let git = crate::runtime::find_in_path("git").ok_or(DiffError::NoGit)?;
    let mut cmd = Command::new(git);
    if let Some(path) = crate::runtime::absolute_path_entries() {
        cmd.env("PATH", path);
    }
    let failed = |message: String| DiffError::Git {
        args: args.join(" "),
        message,
    };
    let mut child = cmd
        .args([
            "-c",
            "core.fsmonitor=false",
            "-c",
            "core.hooksPath=/dev/null",
        ])
        .args(args)
        .current_dir(dir)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(e.to_string()))?;
    if let (Some(bytes), Some(mut stdin)) = (input, child.stdin.take()) {
        // Written from a thread: git answers while it reads, and a pipe
        // that fills on both sides would block both.
        let bytes = bytes.to_vec();
        std::thread::spawn(move || {
            let _ = stdin.write_all(&bytes);
        });
    }
    let out = child
        .wait_with_output()
        .map_err(|e| failed(e.to_string()))?;
    if !out.status.success() {
        return Err(failed(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ));
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_new_sides_lines_that_differ() {
        let before = "a\nb\nc\nd\n";
        let after = "a\nB\nc\nnew\nd\n";
        assert_eq!(changed_lines(before, after), [2..=2, 4..=4]);
        assert!(changed_lines(before, before).is_empty());
        assert!(changed_lines(before, "a\nd\n").is_empty(), "deletions only");
    }
}
