//! The lines a change touched: `git diff` against a revision (the working
//! tree, so uncommitted edits count) plus untracked files, for `--diff REV`.
//!
//! git runs from an absolute `PATH` entry with external diff drivers,
//! text conversion filters, fsmonitor and hooks off, so a repository's
//! configuration cannot make it run a program.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("--diff needs git, which is not on PATH")]
    NoGit,
    #[error("git {args} failed: {message}")]
    Git { args: String, message: String },
}

/// Changed line ranges (1-based, inclusive) by absolute file path.
#[derive(Debug, Default)]
pub struct Changes {
    files: HashMap<PathBuf, Vec<RangeInclusive<usize>>>,
}

impl Changes {
    /// What changed in the repository holding `dir` since `rev`.
    pub fn since(rev: &str, dir: &Path) -> Result<Self, DiffError> {
        let top = PathBuf::from(git(dir, &["rev-parse", "--show-toplevel"])?.trim());
        let diff = git(
            &top,
            &[
                "diff",
                "--no-ext-diff",
                "--no-textconv",
                "--no-color",
                "--no-renames",
                "--src-prefix=a/",
                "--dst-prefix=b/",
                "-U0",
                rev,
                "--",
            ],
        )?;
        let mut changes = parse(&diff, &top);
        let untracked = git(&top, &["ls-files", "--others", "--exclude-standard", "-z"])?;
        for path in untracked.split('\0').filter(|p| !p.is_empty()) {
            changes.files.insert(top.join(path), vec![1..=usize::MAX]);
        }
        Ok(changes)
    }

    /// The changed lines of `path`, `None` when the change left it alone.
    pub fn lines(&self, path: &Path) -> Option<&[RangeInclusive<usize>]> {
        let absolute = std::path::absolute(path).ok()?;
        let canonical = absolute.canonicalize().unwrap_or(absolute);
        self.files
            .get(&canonical)
            .or_else(|| self.files.get(path))
            .map(Vec::as_slice)
    }

    pub fn touches(&self, path: &Path, line: usize) -> bool {
        self.lines(path)
            .is_some_and(|ranges| ranges.iter().any(|r| r.contains(&line)))
    }
}

fn git(dir: &Path, args: &[&str]) -> Result<String, DiffError> {
    let git = crate::runtime::find_in_path("git").ok_or(DiffError::NoGit)?;
    let mut cmd = Command::new(git);
    if let Some(path) = crate::runtime::absolute_path_entries() {
        cmd.env("PATH", path);
    }
    let out = cmd
        .args([
            "-c",
            "core.fsmonitor=false",
            "-c",
            "core.hooksPath=/dev/null",
            "-c",
            "core.quotePath=false",
        ])
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| DiffError::Git {
            args: args.join(" "),
            message: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(DiffError::Git {
            args: args.join(" "),
            message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The new side's line ranges of a `-U0` diff, by absolute path under `top`.
fn parse(diff: &str, top: &Path) -> Changes {
    let mut changes = Changes::default();
    let mut current: Option<PathBuf> = None;
    for line in diff.lines() {
        if let Some(path) = line.strip_prefix("+++ ") {
            let path = path.trim_matches('"');
            current = path.strip_prefix("b/").map(|p| top.join(p));
            continue;
        }
        let (Some(file), Some(hunk)) = (&current, line.strip_prefix("@@ ")) else {
            continue;
        };
        // `@@ -a[,b] +c[,d] @@`: d lines from c on the new side.
        let Some(new) = hunk.split(' ').find_map(|p| p.strip_prefix('+')) else {
            continue;
        };
        let mut parts = new.splitn(2, ',');
        let start: usize = parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        let count: usize = parts
            .next()
            .map_or(Some(1), |n| n.parse().ok())
            .unwrap_or(0);
        if count > 0 {
            changes
                .files
                .entry(file.clone())
                .or_default()
                .push(start..=start + count - 1);
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hunks_give_the_new_side_lines() {
        let diff = "diff --git a/src/a.py b/src/a.py\n--- a/src/a.py\n+++ b/src/a.py\n\
                    @@ -3 +3 @@ def f():\n-x\n+y\n@@ -10,0 +11,2 @@\n+a\n+b\n@@ -20,3 +22,0 @@\n\
                    diff --git a/gone.py b/gone.py\n--- a/gone.py\n+++ /dev/null\n@@ -1,4 +0,0 @@\n";
        let top = Path::new("/repo");
        let c = parse(diff, top);
        let lines = c.files.get(&top.join("src/a.py")).expect("a.py");
        assert_eq!(lines, &[3..=3, 11..=12]);
        assert_eq!(c.files.len(), 1, "deleted files have no new lines");
    }
}
