//! The text around the cursor, cut to a token budget, laid out as a prompt.

use super::fim::{FimOrder, FimTokens};
use crate::model::Tokenizer;

/// Lines dropped from the top of a long prefix come in blocks of this many,
/// so the prompt's start stays put while the user types and the engine's
/// cached keys and values stay valid.
pub const PREFIX_CUT_LINES: usize = 16;

/// Code from another open file, offered to the model as extra context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet {
    pub path: String,
    pub text: String,
}

/// Everything a completion prompt is made of.
#[derive(Debug, Clone, Default)]
pub struct CompletionContext {
    /// Text before the cursor.
    pub prefix: String,
    /// Text after the cursor.
    pub suffix: String,
    /// Path of the file being edited, shown to models that know file markers.
    pub path: Option<String>,
    pub snippets: Vec<Snippet>,
}

/// How many prompt tokens each part may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetSplit {
    pub prefix: usize,
    pub suffix: usize,
    pub snippets: usize,
}

impl BudgetSplit {
    /// Three fifths for the prefix, one fifth each for the suffix and other files.
    pub fn of(total: usize) -> Self {
        let suffix = total / 5;
        let snippets = total / 5;
        Self {
            prefix: total - suffix - snippets,
            suffix,
            snippets,
        }
    }
}

/// A completion prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub tokens: Vec<u32>,
    /// Text of the prefix's last token, left out of `tokens` (token healing):
    /// the cursor often splits what the model saw as one token (indentation,
    /// half a word), so the model writes that text again, free to pick a
    /// longer token, and the suggestion must start with it.
    pub healed: String,
}

/// Builds the prompt tokens. Without FIM markers the prompt is the prefix alone.
pub fn build_prompt(
    tokenizer: &Tokenizer,
    fim: Option<&FimTokens>,
    order: FimOrder,
    ctx: &CompletionContext,
    budget: BudgetSplit,
) -> Result<Prompt, String> {
    let has_fim = fim.is_some();
    let prefix_budget = if has_fim {
        budget.prefix
    } else {
        budget.prefix + budget.suffix
    };
    let mut prefix = tail_tokens(tokenizer, &ctx.prefix, prefix_budget)?;
    let healed = heal(tokenizer, &ctx.prefix, &mut prefix);
    let context = snippet_tokens(tokenizer, fim, ctx, budget.snippets)?;
    let mut lead: Vec<u32> = tokenizer.leading_special().to_vec();
    match fim {
        Some(fim) => {
            // Other files go before the markers, as in repository-level training.
            lead.extend_from_slice(&context);
            let suffix = head_tokens(tokenizer, &ctx.suffix, budget.suffix)?;
            let tokens = fim.layout(order, &lead, &prefix, &suffix);
            Ok(Prompt { tokens, healed })
        }
        None => {
            lead.extend_from_slice(&context);
            lead.append(&mut prefix);
            Ok(Prompt {
                tokens: lead,
                healed,
            })
        }
    }
}

/// Removes the last prefix token when the prefix text really ends with its
/// text, and returns that text ("" when nothing was removed).
fn heal(tokenizer: &Tokenizer, prefix_text: &str, prefix: &mut Vec<u32>) -> String {
    let Some(&last) = prefix.last() else {
        return String::new();
    };
    let text = tokenizer.decode(&[last]);
    if text.is_empty() || text.contains('\u{FFFD}') || !prefix_text.ends_with(&text) {
        return String::new();
    }
    prefix.pop();
    text
}

/// The end of `text` in at most `budget` tokens, cut at a line boundary that
/// only moves in steps of [`PREFIX_CUT_LINES`] lines.
fn tail_tokens(tokenizer: &Tokenizer, text: &str, budget: usize) -> Result<Vec<u32>, String> {
    if budget == 0 {
        return Ok(Vec::new());
    }
    let tokens = tokenizer.encode(text)?;
    if tokens.len() <= budget {
        return Ok(tokens);
    }
    let mut line_starts = crate::lex::line_starts(text);
    line_starts.retain(|&i| i < text.len());
    // Find the first line from which the rest fits, then round up to a block.
    let mut first_fitting = line_starts.len();
    let (mut lo, mut hi) = (0, line_starts.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if tokenizer.encode(&text[line_starts[mid]..])?.len() <= budget {
            first_fitting = mid;
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let start_line = first_fitting.div_ceil(PREFIX_CUT_LINES) * PREFIX_CUT_LINES;
    if start_line < line_starts.len() {
        return tokenizer.encode(&text[line_starts[start_line]..]);
    }
    // One line longer than the budget: keep its end.
    Ok(tokens[tokens.len() - budget..].to_vec())
}

/// The start of `text` in at most `budget` tokens, ending at a line boundary
/// when one fits.
fn head_tokens(tokenizer: &Tokenizer, text: &str, budget: usize) -> Result<Vec<u32>, String> {
    if budget == 0 {
        return Ok(Vec::new());
    }
    let tokens = tokenizer.encode(text)?;
    if tokens.len() <= budget {
        return Ok(tokens);
    }
    // Binary search over line ends for the longest head that fits.
    let line_ends: Vec<usize> = text.match_indices('\n').map(|(i, _)| i + 1).collect();
    let (mut lo, mut hi) = (0, line_ends.len());
    let mut best = None;
    while lo < hi {
        let mid = (lo + hi) / 2;
        let t = tokenizer.encode(&text[..line_ends[mid]])?;
        if t.len() <= budget {
            best = Some(t);
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if let Some(t) = best {
        return Ok(t);
    }
    Ok(tokens[..budget].to_vec())
}

/// Other files, each introduced by the model's file separator (or a plain
/// path line when it has none), within the budget; whole snippets only.
fn snippet_tokens(
    tokenizer: &Tokenizer,
    fim: Option<&FimTokens>,
    ctx: &CompletionContext,
    budget: usize,
) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    let separator = fim.and_then(|f| f.file_separator);
    let push_file =
        |path: &str, text: &str, out: &mut Vec<u32>, budget: usize| -> Result<bool, String> {
            let mut piece = Vec::new();
            if let Some(sep) = separator {
                piece.push(sep);
                piece.extend(tokenizer.encode(&format!("{path}\n{text}"))?);
            } else {
                piece.extend(tokenizer.encode(&format!("// {path}\n{text}\n"))?);
            }
            if out.len() + piece.len() > budget {
                return Ok(false);
            }
            out.extend(piece);
            Ok(true)
        };
    for snippet in &ctx.snippets {
        if !push_file(&snippet.path, &snippet.text, &mut out, budget)? {
            break;
        }
    }
    // Models that know file markers expect the current file to be introduced too.
    if let (Some(sep), Some(path), false) = (separator, &ctx.path, out.is_empty()) {
        out.push(sep);
        out.extend(tokenizer.encode(&format!("{path}\n"))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokenizer() -> Tokenizer {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/llama");
        Tokenizer::load(&dir).expect("fixture tokenizer")
    }

    fn code(lines: usize) -> String {
        (0..lines)
            .map(|i| format!("    total_{i} = compute(total_{i}, {i})\n"))
            .collect()
    }

    #[test]
    fn head_keeps_whole_lines_within_budget() {
        let t = tokenizer();
        let text = code(40);
        let head = head_tokens(&t, &text, 100).expect("head");
        assert!(head.len() <= 100);
        let decoded = t.decode(&head);
        assert!(
            decoded.ends_with('\n') && text.starts_with(&decoded),
            "{decoded:?}"
        );
        // One more line would not fit.
        let next_line_end = text[decoded.len()..]
            .find('\n')
            .map(|i| decoded.len() + i + 1)
            .expect("more lines");
        assert!(t.encode(&text[..next_line_end]).expect("encode").len() > 100);
    }

    #[test]
    fn tail_start_stays_put_while_typing() {
        let t = tokenizer();
        let text = code(200);
        let first = t.decode(&tail_tokens(&t, &text, 300).expect("tail"));
        assert!(text.ends_with(&first) && first.len() < text.len());
        // Typing a few characters at the end keeps the cut where it was.
        let typed = format!("{text}    resu");
        let second = t.decode(&tail_tokens(&t, &typed, 300).expect("tail"));
        assert!(second.starts_with(&first), "the cut moved");
    }

    #[test]
    fn the_prefix_last_token_is_healed() {
        let t = tokenizer();
        let ctx = CompletionContext {
            prefix: "def f(x):\n    return x +".into(),
            ..Default::default()
        };
        let prompt =
            build_prompt(&t, None, FimOrder::Psm, &ctx, BudgetSplit::of(256)).expect("prompt");
        assert!(
            !prompt.healed.is_empty() && ctx.prefix.ends_with(&prompt.healed),
            "{prompt:?}"
        );
        // The prompt holds the prefix without the healed text.
        let shown = t.decode(&prompt.tokens);
        assert_eq!(format!("{shown}{}", prompt.healed), ctx.prefix);
    }

    #[test]
    fn budget_split_adds_up() {
        for total in [0, 1, 7, 100, 1023] {
            let b = BudgetSplit::of(total);
            assert_eq!(b.prefix + b.suffix + b.snippets, total);
        }
    }
}
