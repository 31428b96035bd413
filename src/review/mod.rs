//! Code review: finds likely bugs by asking the model, at each place a
//! known bug class could hide (a comparison, a boolean operator, an
//! off-by-one literal; see `substitutions.json`), whether another member of
//! the class fits the code around it better than what is written.
//!
//! Architecture invariant: review speaks byte offsets into the text it was
//! given and knows nothing of LSP positions or output formats; `report/`
//! and `lsp/` convert.

pub mod rules;
mod score;
mod sites;
mod tree;
mod window;

pub use self::score::review;
pub use self::sites::{Alternative, Language, Site, language_of, rule_names, sites_of};

use crate::engine::EngineError;

/// Lines longer than this are a minifier's or a generator's, not a person's.
const MINIFIED_LINE: usize = 300;

/// Whether `text` looks minified or generated: most of it stands in lines
/// over [`MINIFIED_LINE`] bytes. Nobody fixes a bug there (the fix goes in
/// the source it was made from), and the model never saw such code, so
/// review skips it, as linters skip `*.min.js`.
pub fn looks_minified(text: &str) -> bool {
    let long: usize = text
        .split('\n')
        .map(str::len)
        .filter(|&n| n > MINIFIED_LINE)
        .sum();
    text.len() > 2 * MINIFIED_LINE && long * 2 > text.len()
}

/// How a review runs.
#[derive(Debug, Clone)]
pub struct ReviewOptions {
    /// Findings the model is less sure of than this (0..=1) are dropped.
    pub min_confidence: f64,
    /// Most candidate places scored in one file; the rest are skipped and
    /// counted.
    pub max_sites: usize,
    /// Token budget of one scoring prompt (prefix and suffix around a place).
    pub prompt_tokens: usize,
    /// Only places inside these byte ranges (the lines a change touched);
    /// `None` for the whole text.
    pub only: Option<Vec<std::ops::Range<usize>>>,
    /// Rules not to score at all (turned off, or with a threshold above 1,
    /// which no finding can reach): their alternatives are dropped, and
    /// places left without one are not scored.
    pub unscored_rules: Vec<String>,
}

impl Default for ReviewOptions {
    /// Sure findings only (a review that cries wolf gets switched off: on
    /// held-out code the default model makes 2.5 false findings per 1,000
    /// lines at 0.9 against 8.7 at 0.8, models/default/MODEL_CARD.md), a
    /// bound that keeps a big file to seconds, and the completion prompt's
    /// budget (capped by the model's context window when scoring).
    fn default() -> Self {
        Self {
            min_confidence: 0.9,
            max_sites: 400,
            prompt_tokens: 1024,
            only: None,
            unscored_rules: Vec::new(),
        }
    }
}

/// One likely bug, with the fix the model prefers.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Finding {
    /// The bug class, from `substitutions.json` (`comparison`, `identity`, ...).
    pub rule: String,
    pub message: String,
    /// The model's probability that the replacement, not the original, belongs here.
    pub confidence: f64,
    /// Byte range of the original text.
    pub start: usize,
    pub end: usize,
    pub original: String,
    pub replacement: String,
}

/// What one file's review found and how much of it was looked at.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Review {
    pub findings: Vec<Finding>,
    /// Candidate places found.
    pub sites: usize,
    /// Candidate places scored (the rest exceeded `max_sites`).
    pub scored: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("the review was cancelled")]
    Cancelled,
}

#[cfg(test)]
mod tests {
    #[test]
    fn minified_text_is_told_from_code_with_a_few_long_lines() {
        let long = format!("var a={};\n", "b+c,".repeat(200));
        assert!(super::looks_minified(&long.repeat(3)));
        let code = format!(
            "{}x = '{}'\n",
            "def f(x):\n    return x + 1\n".repeat(40),
            "y".repeat(400)
        );
        assert!(!super::looks_minified(&code));
        assert!(!super::looks_minified("a = 1\n"));
    }
}
