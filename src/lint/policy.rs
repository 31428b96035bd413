//! Which findings a check reports: the rules selected and ignored, each
//! rule's threshold and severity, the files excluded, and the inline
//! suppressions. The command line's choices over a configuration file's;
//! the same policy filters `nib check` and the server's diagnostics.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::config::{ConfigError, Discovery, Found, Settings, check_rule};
use super::suppress::Suppressions;
use crate::report::Severity;
use crate::review::Finding;

/// What the command line says, on top of any configuration file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Replaces the file's `select`.
    pub select: Option<Vec<String>>,
    /// Added to the file's `ignore`.
    pub ignore: Vec<String>,
    /// Added to the file's `exclude`, relative to the current folder.
    pub exclude: Vec<String>,
    /// Replaces every threshold but the per-rule ones of the file.
    pub min_confidence: Option<f64>,
}

impl Overrides {
    pub fn validate(&self) -> Result<(), String> {
        for name in self.select.iter().flatten().chain(&self.ignore) {
            check_rule(name)?;
        }
        exclusions(&self.exclude, Path::new(".")).map(|_| ())
    }
}

#[derive(Debug, Clone)]
pub struct Policy {
    settings: Settings,
    select: Option<BTreeSet<String>>,
    ignore: BTreeSet<String>,
    /// The command line's or the file's threshold; `None` for each rule's
    /// calibrated default ([`crate::review::rules::default_threshold`]).
    chosen_threshold: Option<f64>,
    /// The command line's globs, relative to the folder being walked.
    cli_exclude: GlobSet,
    /// The configuration's globs, relative to its folder.
    file_exclude: Option<(PathBuf, GlobSet)>,
}

fn bare(name: &str) -> String {
    name.strip_prefix("nib/").unwrap_or(name).to_owned()
}

impl Policy {
    pub fn new(found: Option<&Found>, overrides: &Overrides) -> Result<Self, String> {
        let settings = found.map(|f| f.settings.clone()).unwrap_or_default();
        let select = overrides
            .select
            .clone()
            .or_else(|| settings.select.clone())
            .map(|names| names.iter().map(|n| bare(n)).collect());
        let ignore = settings
            .ignore
            .iter()
            .chain(&overrides.ignore)
            .map(|n| bare(n))
            .collect();
        let chosen_threshold = overrides.min_confidence.or(settings.min_confidence);
        let cli_exclude = exclusions(&overrides.exclude, Path::new("."))?;
        let file_exclude = match found {
            Some(found) => Some((
                found.dir.clone(),
                exclusions(&settings.exclude, &found.dir)?,
            )),
            None => None,
        };
        Ok(Self {
            settings,
            select,
            ignore,
            chosen_threshold,
            cli_exclude,
            file_exclude,
        })
    }

    /// No configuration: every rule, nothing excluded, at `min_confidence`
    /// or (`None`) each rule's default.
    pub fn with_threshold(min_confidence: Option<f64>) -> Self {
        Self {
            settings: Settings::default(),
            select: None,
            ignore: BTreeSet::new(),
            chosen_threshold: min_confidence,
            cli_exclude: GlobSet::empty(),
            file_exclude: None,
        }
    }

    pub fn enabled(&self, rule: &str) -> bool {
        let rule = bare(rule);
        !self.ignore.contains(&rule) && self.select.as_ref().is_none_or(|s| s.contains(&rule))
    }

    /// The threshold of `rule` in files of `rule_set`: the file's setting
    /// for the rule, else the command line's or the file's general one,
    /// else the rule's calibrated default.
    pub fn threshold(&self, rule: &str, rule_set: Option<&str>) -> f64 {
        self.settings
            .rules
            .get(&bare(rule))
            .and_then(|r| r.min_confidence)
            .or(self.chosen_threshold)
            .unwrap_or_else(|| crate::review::rules::default_threshold(rule, rule_set))
    }

    pub fn severity(&self, rule: &str) -> Severity {
        self.settings
            .rules
            .get(&bare(rule))
            .and_then(|r| r.severity)
            .unwrap_or(Severity::Warning)
    }

    /// The threshold a review of a `rule_set` file runs with, so that
    /// every rule's own can filter.
    pub fn lowest_threshold(&self, rule_set: Option<&str>) -> f64 {
        crate::review::rules::all()
            .iter()
            .map(|r| self.threshold(&r.name, rule_set))
            .fold(1.0, f64::min)
    }

    /// The rules a review of a `rule_set` file need not score: turned off,
    /// or with a threshold no probability reaches.
    pub fn unscored_rules(&self, rule_set: Option<&str>) -> Vec<String> {
        crate::review::rules::all()
            .iter()
            .filter(|r| !self.enabled(&r.name) || self.threshold(&r.name, rule_set) > 1.0)
            .map(|r| r.name.clone())
            .collect()
    }

    /// Whether `path`, found by walking `root`, is excluded: by the command
    /// line's globs (relative to `root`) or the configuration's (relative
    /// to its folder).
    pub fn excludes(&self, path: &Path, root: &Path) -> bool {
        let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let file = absolute(path);
        let matches = |base: &Path, set: &GlobSet| {
            let Ok(relative) = file.strip_prefix(absolute(base)) else {
                return false;
            };
            // `dir/` style patterns exclude what is below the folder.
            relative
                .ancestors()
                .filter(|p| !p.as_os_str().is_empty())
                .any(|p| set.is_match(p))
        };
        matches(root, &self.cli_exclude)
            || self
                .file_exclude
                .as_ref()
                .is_some_and(|(base, set)| matches(base, set))
    }

    /// The findings of one file this policy reports.
    pub fn filter(&self, text: &str, path: Option<&Path>, findings: Vec<Finding>) -> Vec<Finding> {
        let lang = crate::lex::Lang::from_path(path.and_then(Path::to_str));
        let rule_set = rule_set_of(path);
        let suppressions = Suppressions::parse(text, lang);
        findings
            .into_iter()
            .filter(|f| {
                self.enabled(&f.rule)
                    && f.confidence >= self.threshold(&f.rule, rule_set)
                    && !suppressions.covers(f.start, &f.rule)
            })
            .collect()
    }
}

/// Each file's policy, built once per configuration file.
pub struct Policies {
    overrides: Overrides,
    /// `--config` or `--isolated`: one configuration for every file.
    fixed: Option<Arc<Found>>,
    discovery: Discovery,
    built: Vec<(Option<PathBuf>, Arc<Policy>)>,
}

impl Policies {
    pub fn new(overrides: Overrides, fixed: Option<Found>) -> Self {
        Self {
            overrides,
            fixed: fixed.map(Arc::new),
            discovery: Discovery::default(),
            built: Vec::new(),
        }
    }

    /// The configuration of the run itself: the fixed one, or the one that
    /// governs the current folder.
    pub fn for_run(&mut self) -> Result<Option<Arc<Found>>, ConfigError> {
        match &self.fixed {
            Some(f) => Ok(Some(f.clone())),
            // Any name in the current folder: discovery starts at its parent.
            None => self.discovery.for_file(Path::new("nib.toml")),
        }
    }

    /// The policy of `path`: its configuration's, or the fixed one.
    pub fn for_file(&mut self, path: &Path) -> Result<Arc<Policy>, ConfigError> {
        let found = match &self.fixed {
            Some(f) => Some(f.clone()),
            None => self.discovery.for_file(path)?,
        };
        let key = found.as_ref().map(|f| f.file.clone());
        if let Some((_, policy)) = self.built.iter().find(|(k, _)| *k == key) {
            return Ok(policy.clone());
        }
        let policy = Arc::new(Policy::new(found.as_deref(), &self.overrides).map_err(
            |message| {
                ConfigError::Invalid {
                    file: key
                        .clone()
                        .unwrap_or_else(|| PathBuf::from("the command line")),
                    message,
                }
            },
        )?);
        self.built.push((key, policy.clone()));
        Ok(policy)
    }
}

/// The rule set (`python`, `rust`, `c-like`) reviewing `path`.
pub fn rule_set_of(path: Option<&Path>) -> Option<&'static str> {
    path.and_then(crate::review::language_of)
        .map(|l| l.name.as_str())
}

/// Globs matched against paths relative to `base`, as in `.gitignore`: a
/// pattern without a `/` matches a name at any depth (`*.min.js`,
/// `vendor`), one with a `/` (or starting with one) is anchored at `base`
/// (`src/gen/*.py`, `/build`), a trailing `/` names a folder and what it
/// holds; `*` stays within one path component, `**` crosses them.
fn exclusions(patterns: &[String], base: &Path) -> Result<GlobSet, String> {
    let mut set = GlobSetBuilder::new();
    for pattern in patterns {
        let trimmed = pattern.trim_end_matches('/');
        let anchored = trimmed.contains('/');
        let body = trimmed.trim_start_matches('/').trim_start_matches("./");
        let glob = if anchored {
            body.to_owned()
        } else {
            format!("**/{body}")
        };
        let glob = GlobBuilder::new(&glob)
            .literal_separator(true)
            .build()
            .map_err(|e| format!("exclude `{pattern}` (from {}): {e}", base.display()))?;
        set.add(glob);
    }
    set.build().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::config::RuleSettings;

    fn finding(rule: &str, confidence: f64, at: usize) -> Finding {
        Finding {
            rule: rule.into(),
            message: String::new(),
            confidence,
            start: at,
            end: at + 1,
            original: String::new(),
            replacement: String::new(),
        }
    }

    #[test]
    fn command_line_over_file() {
        let mut settings = Settings {
            select: Some(vec!["identity".into(), "comparison".into()]),
            ignore: vec!["comparison".into()],
            min_confidence: Some(0.8),
            ..Settings::default()
        };
        settings.rules.insert(
            "identity".into(),
            RuleSettings {
                min_confidence: Some(0.6),
                severity: Some(Severity::Error),
            },
        );
        let found = Found {
            file: "nib.toml".into(),
            dir: ".".into(),
            settings,
        };
        let p = Policy::new(Some(&found), &Overrides::default()).expect("valid");
        assert!(p.enabled("nib/identity") && !p.enabled("comparison") && !p.enabled("range"));
        let py = Some("python");
        assert_eq!(
            (p.threshold("identity", py), p.threshold("range", py)),
            (0.6, 0.8)
        );
        assert_eq!(p.lowest_threshold(py), 0.6);
        assert_eq!(p.severity("identity"), Severity::Error);

        let cli = Overrides {
            select: Some(vec!["range".into()]),
            min_confidence: Some(0.95),
            ..Overrides::default()
        };
        let p = Policy::new(Some(&found), &cli).expect("valid");
        assert!(p.enabled("range") && !p.enabled("identity"));
        let rs = Some("rust");
        assert_eq!(
            (p.threshold("identity", rs), p.threshold("range", rs)),
            (0.6, 0.95)
        );

        // Nobody chose: each rule's calibrated default for the language.
        let p = Policy::new(None, &Overrides::default()).expect("valid");
        for rule in crate::review::rules::all() {
            assert_eq!(
                p.threshold(&rule.name, rs),
                crate::review::rules::default_threshold(&rule.name, rs)
            );
        }
    }

    #[test]
    fn filter_applies_rules_thresholds_and_suppressions() {
        let cli = Overrides {
            min_confidence: Some(0.9),
            ..Overrides::default()
        };
        let p = Policy::new(None, &cli).expect("valid");
        let text = "a = b == c\nd = e == f  # nib: ignore[equality]\n";
        let kept = p.filter(
            text,
            Some(Path::new("x.py")),
            vec![
                finding("equality", 0.95, 6),
                finding("equality", 0.5, 6),
                finding("equality", 0.95, 17),
            ],
        );
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].start, 6);
    }

    #[test]
    fn exclusions_by_name_folder_and_path() {
        let cli = Overrides {
            exclude: vec![
                "*.min.js".into(),
                "vendor/".into(),
                "src/gen/*.py".into(),
                "/build".into(),
            ],
            ..Overrides::default()
        };
        let p = Policy::new(None, &cli).expect("valid");
        let root = Path::new("/repo");
        for excluded in [
            "a/b.min.js",
            "vendor/x.py",
            "lib/vendor/deep/y.rs",
            "src/gen/z.py",
            "build/out.py",
        ] {
            assert!(p.excludes(&root.join(excluded), root), "{excluded}");
        }
        for kept in [
            "a/b.js",
            "vendors/x.py",
            "src/z.py",
            "other/src/gen/z.py",
            "src/gen/deeper/z.py",
            "lib/build/x.py",
        ] {
            assert!(!p.excludes(&root.join(kept), root), "{kept}");
        }
    }
}
