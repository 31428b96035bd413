//! `nib.toml`, or `[tool.nib]` in `pyproject.toml`: the review's settings
//! for the files below it, found by walking up from each file as ruff
//! finds its configuration (the closest one wins; they do not merge).
//!
//! ```toml
//! select = ["comparison", "identity"]   # default: every rule
//! ignore = ["off-by-one"]
//! exclude = ["vendor/", "*.min.js"]      # globs, relative to this file
//! min-confidence = 0.9
//! model = "tools/nib-model"              # `nib check`'s model, relative to this file
//!
//! [rules.arithmetic]
//! min-confidence = 0.97
//! severity = "error"                     # or "warning" (the default)
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::report::Severity;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {file}: {error}")]
    Io {
        file: PathBuf,
        error: std::io::Error,
    },
    #[error("{file}: {message}")]
    Invalid { file: PathBuf, message: String },
}

/// The settings one configuration file gives.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    pub select: Option<Vec<String>>,
    #[serde(default)]
    pub ignore: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    pub min_confidence: Option<f64>,
    /// The model `nib check` runs (relative to the file's folder), taken
    /// from the configuration of the folder the check runs in, or
    /// `--config`; `--model` and `$NIB_MODEL` win. The language server
    /// ignores it: there the model is the user's setting, never a
    /// workspace's.
    pub model: Option<PathBuf>,
    #[serde(default)]
    pub rules: BTreeMap<String, RuleSettings>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RuleSettings {
    pub min_confidence: Option<f64>,
    pub severity: Option<Severity>,
}

/// A configuration file and what it says.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub file: PathBuf,
    /// The folder its relative globs start from.
    pub dir: PathBuf,
    pub settings: Settings,
}

#[derive(Deserialize)]
struct Pyproject {
    tool: Option<Tool>,
}

#[derive(Deserialize)]
struct Tool {
    nib: Option<toml::Value>,
}

/// Reads one configuration file: `nib.toml`, or a `pyproject.toml` (whose
/// `[tool.nib]` table is the settings; `None` without one).
pub fn read(file: &Path) -> Result<Option<Found>, ConfigError> {
    let text = crate::files::read_text(file, crate::files::TEXT_LIMIT).map_err(|error| {
        ConfigError::Io {
            file: file.to_path_buf(),
            error,
        }
    })?;
    let invalid = |e: &dyn std::fmt::Display| ConfigError::Invalid {
        file: file.to_path_buf(),
        message: e.to_string().trim_end().to_owned(),
    };
    let table = if file.file_name().is_some_and(|n| n == "pyproject.toml") {
        let pyproject: Pyproject = toml::from_str(&text).map_err(|e| invalid(&e))?;
        match pyproject.tool.and_then(|t| t.nib) {
            Some(table) => table,
            None => return Ok(None),
        }
    } else {
        toml::from_str(&text).map_err(|e| invalid(&e))?
    };
    let settings: Settings = table.try_into().map_err(|e| invalid(&e))?;
    validate(&settings).map_err(|m| invalid(&m))?;
    Ok(Some(Found {
        file: file.to_path_buf(),
        dir: file
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        settings,
    }))
}

/// Rule names must exist and thresholds be probabilities.
pub fn validate(settings: &Settings) -> Result<(), String> {
    let names = settings
        .select
        .iter()
        .flatten()
        .chain(&settings.ignore)
        .chain(settings.rules.keys());
    for name in names {
        check_rule(name)?;
    }
    let thresholds = std::iter::once(settings.min_confidence)
        .chain(settings.rules.values().map(|r| r.min_confidence))
        .flatten();
    for t in thresholds {
        if !(0.0..=1.0).contains(&t) {
            return Err(format!("min-confidence must be from 0 to 1, not {t}"));
        }
    }
    Ok(())
}

/// An error naming the known rules when `name` is none of them.
pub fn check_rule(name: &str) -> Result<(), String> {
    if crate::review::rules::get(name).is_some() {
        return Ok(());
    }
    let known: Vec<&str> = crate::review::rules::all()
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    Err(format!(
        "unknown rule `{name}`; the rules are {}",
        known.join(", ")
    ))
}

/// Finds each file's configuration, reading each folder's at most once.
#[derive(Default)]
pub struct Discovery {
    by_dir: HashMap<PathBuf, Option<Arc<Found>>>,
}

impl Discovery {
    /// The configuration closest above `file` (an absolute or relative
    /// path; relative ones are taken from the current folder).
    pub fn for_file(&mut self, file: &Path) -> Result<Option<Arc<Found>>, ConfigError> {
        let start = std::path::absolute(file)
            .ok()
            .map(|p| lexically_normal(&p))
            .and_then(|p| p.parent().map(Path::to_path_buf));
        let Some(start) = start else {
            return Ok(None);
        };
        let mut visited = Vec::new();
        let mut found = None;
        for dir in start.ancestors() {
            if let Some(known) = self.by_dir.get(dir) {
                found = known.clone();
                break;
            }
            visited.push(dir.to_path_buf());
            if let Some(here) = Self::in_dir(dir)? {
                found = Some(Arc::new(here));
                break;
            }
        }
        for dir in visited {
            self.by_dir.insert(dir, found.clone());
        }
        Ok(found)
    }

    fn in_dir(dir: &Path) -> Result<Option<Found>, ConfigError> {
        for name in ["nib.toml", "pyproject.toml"] {
            let file = dir.join(name);
            if file.is_file()
                && let Some(found) = read(&file)?
            {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }
}

/// `path` with `.` and `..` resolved by name (`/r/sub/../lib` → `/r/lib`),
/// so that walking up from it visits the folders it is really in.
fn lexically_normal(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_folders_are_resolved_before_walking_up() {
        assert_eq!(
            lexically_normal(Path::new("/r/sub/../lib/./a.py")),
            Path::new("/r/lib/a.py")
        );
    }

    #[test]
    fn nib_toml_and_pyproject_tables() {
        let dir = tempfile::tempdir().expect("tempdir");
        let nib = dir.path().join("nib.toml");
        std::fs::write(
            &nib,
            "ignore = [\"off-by-one\"]\nmin-confidence = 0.8\n[rules.arithmetic]\nseverity = \"error\"\n",
        )
        .expect("write");
        let found = read(&nib).expect("valid").expect("settings");
        assert_eq!(found.settings.ignore, ["off-by-one"]);
        assert_eq!(found.settings.min_confidence, Some(0.8));
        assert_eq!(
            found.settings.rules["arithmetic"].severity,
            Some(Severity::Error)
        );

        let py = dir.path().join("pyproject.toml");
        std::fs::write(&py, "[project]\nname = \"x\"\n").expect("write");
        assert!(read(&py).expect("valid").is_none(), "no [tool.nib]");
        std::fs::write(&py, "[tool.nib]\nselect = [\"identity\"]\n").expect("write");
        let found = read(&py).expect("valid").expect("settings");
        assert_eq!(found.settings.select, Some(vec!["identity".to_owned()]));
    }

    #[test]
    fn mistakes_are_errors_that_say_what_is_wrong() {
        let dir = tempfile::tempdir().expect("tempdir");
        let nib = dir.path().join("nib.toml");
        for (text, says) in [
            ("ignore = [\"off-by-two\"]\n", "unknown rule `off-by-two`"),
            ("min-confidence = 2\n", "from 0 to 1"),
            ("colour = true\n", "unknown field `colour`"),
            ("ignore = \n", "nib.toml"),
        ] {
            std::fs::write(&nib, text).expect("write");
            let err = read(&nib).expect_err(text).to_string();
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn the_closest_configuration_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sub = dir.path().join("pkg/sub");
        std::fs::create_dir_all(&sub).expect("mkdir");
        std::fs::write(dir.path().join("nib.toml"), "ignore = [\"range\"]\n").expect("write");
        std::fs::write(
            dir.path().join("pkg/pyproject.toml"),
            "[tool.nib]\nignore = [\"identity\"]\n",
        )
        .expect("write");
        let mut discovery = Discovery::default();
        let deep = discovery
            .for_file(&sub.join("a.py"))
            .expect("valid")
            .expect("found");
        assert_eq!(deep.settings.ignore, ["identity"]);
        let top = discovery
            .for_file(&dir.path().join("b.py"))
            .expect("valid")
            .expect("found");
        assert_eq!(top.settings.ignore, ["range"]);
    }
}
