//! Accepted findings: `--write-baseline` records the findings of a run,
//! `--baseline` leaves those out of later runs, so a team adopts the check
//! on an existing codebase and sees only new findings. Findings are known
//! by their fingerprint (path, rule, line text, occurrence), so code that
//! moves keeps its findings accepted.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::report::Diagnostic;

#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("cannot read the baseline {file}: {error}")]
    Read { file: String, error: std::io::Error },
    #[error("{file} is not a nib baseline: {message}")]
    Invalid { file: String, message: String },
    #[error("cannot write the baseline {file}: {error}")]
    Write { file: String, error: std::io::Error },
}

#[derive(Serialize, Deserialize)]
struct File {
    version: u32,
    findings: Vec<Entry>,
}

/// One accepted finding; `line` and `message` are for people reading it.
#[derive(Serialize, Deserialize)]
struct Entry {
    fingerprint: String,
    path: String,
    rule: String,
    line: usize,
    message: String,
}

pub struct Baseline {
    fingerprints: BTreeSet<String>,
}

impl Baseline {
    pub fn read(file: &Path) -> Result<Self, BaselineError> {
        let name = file.display().to_string();
        let text =
            crate::files::read_text(file, crate::files::MODEL_JSON_LIMIT).map_err(|error| {
                BaselineError::Read {
                    file: name.clone(),
                    error,
                }
            })?;
        let parsed: File = serde_json::from_str(&text).map_err(|e| BaselineError::Invalid {
            file: name.clone(),
            message: e.to_string(),
        })?;
        if parsed.version != 1 {
            return Err(BaselineError::Invalid {
                file: name,
                message: format!("version {} (this nib reads version 1)", parsed.version),
            });
        }
        Ok(Self {
            fingerprints: parsed.findings.into_iter().map(|e| e.fingerprint).collect(),
        })
    }

    pub fn contains(&self, d: &Diagnostic) -> bool {
        self.fingerprints.contains(&d.fingerprint)
    }

    /// Writes `diagnostics` as the accepted findings.
    pub fn write(file: &Path, diagnostics: &[Diagnostic]) -> Result<(), BaselineError> {
        let out = File {
            version: 1,
            findings: diagnostics
                .iter()
                .map(|d| Entry {
                    fingerprint: d.fingerprint.clone(),
                    path: d.path.clone(),
                    rule: d.rule.clone(),
                    line: d.start.line,
                    message: d.message.clone(),
                })
                .collect(),
        };
        let mut text = serde_json::to_string_pretty(&out).unwrap_or_default();
        text.push('\n');
        std::fs::write(file, text).map_err(|error| BaselineError::Write {
            file: file.display().to_string(),
            error,
        })
    }
}
