//! What the model sees: the text around the cursor and snippets of other
//! open documents, cut so that the prompt's start only moves in steps (the
//! engine reuses the cached keys and values of an unchanged start).
//!
//! Rules (the prompt builder then fits them to the token budget; these
//! bounds only spare it from tokenizing text it would drop):
//! - prefix: from the start of a 16-line block, at most [`PREFIX_LINES`]
//!   lines above the cursor and about [`CHARS_PER_TOKEN`] characters per
//!   prefix token of the budget (three fifths of `promptTokens`);
//! - suffix: up to [`SUFFIX_LINES`] lines after the cursor, at most
//!   [`CHARS_PER_TOKEN`] characters per suffix token (a fifth);
//! - other files: up to `contextFiles` other open documents with the same
//!   `languageId`, most recently edited first; each gives the lines around
//!   its last edit (its start if never edited), whole lines, at most
//!   `3 × promptTokens / 5 / contextFiles` characters (at least 256). The
//!   prompt builder keeps whole snippets only, within a fifth of the budget.

use ropey::Rope;

use crate::prompt::{BudgetSplit, CompletionContext, Snippet};

/// Lines of prefix offered to the prompt builder.
pub const PREFIX_LINES: usize = 256;
pub const SUFFIX_LINES: usize = 64;
/// Generous: code averages 3–4 characters a token with a code tokenizer.
pub const CHARS_PER_TOKEN: usize = 8;

/// How much text around the cursor to offer, in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub prefix_chars: usize,
    pub suffix_chars: usize,
    pub snippet_chars: usize,
}

impl Limits {
    /// Limits for a prompt budget and a number of other files.
    pub fn for_budget(prompt_tokens: usize, files: usize) -> Self {
        let split = BudgetSplit::of(prompt_tokens);
        Self {
            prefix_chars: split.prefix * CHARS_PER_TOKEN,
            suffix_chars: split.suffix * CHARS_PER_TOKEN,
            snippet_chars: snippet_chars(prompt_tokens, files),
        }
    }
}
/// The prefix starts at a multiple of this many lines, the prompt
/// builder's own cut.
const BLOCK: usize = crate::prompt::PREFIX_CUT_LINES;

/// Another open document offered as context.
#[derive(Debug, Clone)]
pub struct Neighbour {
    pub path: String,
    pub text: Rope,
    pub last_edit: usize,
}

/// Builds the context at `cursor` (a character index into `text`).
pub fn build(
    text: &Rope,
    cursor: usize,
    path: Option<String>,
    neighbours: &[Neighbour],
    limits: Limits,
) -> CompletionContext {
    let cursor = cursor.min(text.len_chars());
    let line = text.char_to_line(cursor);
    let mut first_line = line.saturating_sub(PREFIX_LINES) / BLOCK * BLOCK;
    // Fewer lines when they are long: whole blocks, so the start stays put
    // while the cursor's line grows.
    while first_line + BLOCK <= line && cursor - text.line_to_char(first_line) > limits.prefix_chars
    {
        first_line += BLOCK;
    }
    let mut start = text.line_to_char(first_line);
    if cursor - start > limits.prefix_chars {
        // Very long lines: cut at a coarse character step, still stable while typing.
        start = (cursor - limits.prefix_chars).div_ceil(4096) * 4096;
        start = start.min(cursor);
    }
    let last_line = (line + SUFFIX_LINES).min(text.len_lines());
    let mut end = if last_line >= text.len_lines() {
        text.len_chars()
    } else {
        text.line_to_char(last_line)
    };
    if end - cursor > limits.suffix_chars {
        // Whole lines when one fits.
        let cap = cursor + limits.suffix_chars;
        let cap_line = text.char_to_line(cap);
        let line_start = text.line_to_char(cap_line);
        end = if line_start > cursor { line_start } else { cap };
    }
    let snippet_chars = limits.snippet_chars;
    let snippets = neighbours
        .iter()
        .filter_map(|n| {
            let excerpt = excerpt(&n.text, n.last_edit, snippet_chars);
            (!excerpt.trim().is_empty()).then(|| Snippet {
                path: n.path.clone(),
                text: excerpt,
            })
        })
        .collect();
    CompletionContext {
        prefix: text.slice(start..cursor).to_string(),
        suffix: text.slice(cursor..end).to_string(),
        path,
        snippets,
    }
}

/// Whole lines around `at`, growing alternately up and down, within `max_chars`.
fn excerpt(text: &Rope, at: usize, max_chars: usize) -> String {
    if text.len_chars() == 0 {
        return String::new();
    }
    let center = text.char_to_line(at.min(text.len_chars()));
    let (mut lo, mut hi) = (center, center);
    let mut size = text.line(center).len_chars();
    if size > max_chars {
        return String::new();
    }
    loop {
        let mut grew = false;
        if hi + 1 < text.len_lines() {
            let n = text.line(hi + 1).len_chars();
            if size + n <= max_chars {
                hi += 1;
                size += n;
                grew = true;
            }
        }
        if lo > 0 {
            let n = text.line(lo - 1).len_chars();
            if size + n <= max_chars {
                lo -= 1;
                size += n;
                grew = true;
            }
        }
        if !grew {
            break;
        }
    }
    let end = if hi + 1 >= text.len_lines() {
        text.len_chars()
    } else {
        text.line_to_char(hi + 1)
    };
    text.slice(text.line_to_char(lo)..end).to_string()
}

/// Characters each snippet may have for a prompt budget and file count.
pub fn snippet_chars(prompt_tokens: usize, files: usize) -> usize {
    if files == 0 {
        return 0;
    }
    (prompt_tokens / 5 * 3 / files).max(256)
}

/// Start of the identifier that ends at `cursor`, on its line.
pub fn word_start(text: &Rope, cursor: usize) -> usize {
    let cursor = cursor.min(text.len_chars());
    let mut i = cursor;
    while i > 0 {
        let c = text.char(i - 1);
        if c.is_alphanumeric() || c == '_' {
            i -= 1;
        } else {
            break;
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    const WIDE: Limits = Limits {
        prefix_chars: 1 << 20,
        suffix_chars: 1 << 20,
        snippet_chars: 0,
    };

    fn numbered(lines: usize) -> Rope {
        Rope::from_str(
            &(0..lines)
                .map(|i| format!("line {i}\n"))
                .collect::<String>(),
        )
    }

    #[test]
    fn prefix_start_moves_in_blocks_while_typing() {
        let text = numbered(1000);
        let at = |line: usize| text.line_to_char(line) + 3;
        let a = build(&text, at(600), None, &[], WIDE);
        let b = build(&text, at(601), None, &[], WIDE);
        assert!(a.prefix.starts_with("line 336\n"), "{}", &a.prefix[..20]);
        assert_eq!(
            a.prefix.lines().next(),
            b.prefix.lines().next(),
            "one line down keeps the start"
        );
        assert!(a.suffix.starts_with("e 600\nline 601"));
        assert_eq!(a.suffix.lines().count(), SUFFIX_LINES);
    }

    #[test]
    fn long_text_is_cut_to_the_budget_in_blocks_and_lines() {
        let text = numbered(1000);
        let limits = Limits {
            prefix_chars: 400,
            suffix_chars: 100,
            snippet_chars: 0,
        };
        let at = |line: usize| text.line_to_char(line);
        let a = build(&text, at(600), None, &[], limits);
        let b = build(&text, at(600) + 4, None, &[], limits);
        assert!(a.prefix.len() <= 400, "{}", a.prefix.len());
        assert!(a.prefix.starts_with("line "), "{:?}", &a.prefix[..10]);
        let first = |s: &str| s.lines().next().map(str::to_owned);
        assert_eq!(first(&a.prefix), first(&b.prefix));
        assert!(a.suffix.len() <= 100 && a.suffix.ends_with('\n'));
    }

    #[test]
    fn short_documents_are_whole() {
        let text = Rope::from_str("fn main() {\n    \n}\n");
        let ctx = build(&text, 16, Some("main.rs".into()), &[], WIDE);
        assert_eq!(ctx.prefix, "fn main() {\n    ");
        assert_eq!(ctx.suffix, "\n}\n");
        let end = build(&text, 999, None, &[], WIDE);
        assert_eq!(end.suffix, "");
    }

    #[test]
    fn snippets_are_whole_lines_around_the_last_edit() {
        let other = numbered(100);
        let n = Neighbour {
            path: "b.py".into(),
            text: other.clone(),
            last_edit: other.line_to_char(50),
        };
        let text = Rope::from_str("x = 1\n");
        let ctx = build(
            &text,
            0,
            None,
            &[n],
            Limits {
                snippet_chars: 40,
                ..WIDE
            },
        );
        let snippet = &ctx.snippets[0].text;
        assert!(snippet.contains("line 50\n"), "{snippet:?}");
        assert!(snippet.len() <= 40 && snippet.ends_with('\n'));
        assert!(snippet.starts_with("line "));
    }

    #[test]
    fn words_end_at_the_cursor() {
        let text = Rope::from_str("let 变量_x = foo.ba");
        assert_eq!(word_start(&text, text.len_chars()), 15);
        assert_eq!(word_start(&text, 8), 4);
        assert_eq!(word_start(&text, 0), 0);
    }
}
