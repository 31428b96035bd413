//! Turning raw model output into an insertable suggestion: the right extent
//! (one line or a block), no repeat of the text after the cursor, brackets
//! that fit the code around it.

/// How much a suggestion may span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The rest of the current line.
    SingleLine,
    /// A block: the cursor is on an empty line.
    MultiLine,
}

/// Most lines a multi-line suggestion keeps.
const MAX_LINES: usize = 16;

/// The code around the cursor that shapes a suggestion.
#[derive(Debug, Clone)]
pub struct Shape {
    pub mode: Mode,
    /// Indentation (in columns) of the block the cursor is in.
    indent: usize,
    /// Text after the cursor up to the end of its line.
    rest_of_line: String,
    /// The first non-blank line after the cursor's line, trimmed.
    next_line: Option<String>,
    /// Brackets opened before the cursor and not yet closed.
    open: Vec<char>,
}

fn indent_of(line: &str) -> usize {
    line.chars()
        .take_while(|c| c.is_whitespace())
        .map(|c| if c == '\t' { 4 } else { 1 })
        .sum()
}

fn closer(open: char) -> char {
    match open {
        '(' => ')',
        '[' => ']',
        _ => '}',
    }
}

/// Brackets left open by `text`, innermost last. Strings are skipped roughly:
/// a quote toggles until the same quote on the same line.
fn open_brackets(text: &str, mut stack: Vec<char>) -> (Vec<char>, Option<usize>) {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q || c == '\n' {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '(' | '[' | '{' => stack.push(c),
            ')' | ']' | '}' => {
                if stack.last().map(|&o| closer(o)) == Some(c) {
                    stack.pop();
                } else {
                    // A closer with nothing to close: where the text stops fitting.
                    return (stack, Some(i));
                }
            }
            _ => {}
        }
    }
    (stack, None)
}

impl Shape {
    pub fn at(prefix: &str, suffix: &str) -> Self {
        let line_before = prefix.rsplit('\n').next().unwrap_or("");
        let rest_of_line = suffix
            .split('\n')
            .next()
            .unwrap_or("")
            .trim_end_matches('\r')
            .to_owned();
        let blank_line = line_before.trim().is_empty() && rest_of_line.trim().is_empty();
        let mode = if blank_line {
            Mode::MultiLine
        } else {
            Mode::SingleLine
        };
        let indent = if blank_line {
            // An empty line just opened by a block opener belongs to the block
            // that follows, even before the editor indented it.
            let previous = prefix
                .trim_end_matches([' ', '\t'])
                .trim_end_matches(['\n', '\r']);
            let previous = previous.rsplit('\n').next().unwrap_or("");
            let opens_block = previous.trim_end().ends_with([':', '{', '(', '[']);
            if opens_block {
                indent_of(line_before).max(indent_of(previous) + 1)
            } else {
                indent_of(line_before)
            }
        } else {
            indent_of(line_before)
        };
        let next_line = suffix
            .split('\n')
            .skip(1)
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_owned);
        // Only the recent past matters for brackets, and it bounds the work.
        let mut start = prefix.len().saturating_sub(4000);
        while !prefix.is_char_boundary(start) {
            start += 1;
        }
        let (open, _) = open_brackets(&prefix[start..], Vec::new());
        Self {
            mode,
            indent,
            rest_of_line,
            next_line,
            open,
        }
    }

    /// Whether `text` already holds everything this suggestion can use, so
    /// generation may stop.
    pub fn is_complete(&self, text: &str) -> bool {
        match self.mode {
            Mode::SingleLine => {
                text.trim_start_matches('\n').contains('\n') || text.starts_with('\n')
            }
            Mode::MultiLine => {
                let lines: Vec<&str> = text.split('\n').collect();
                // The last line may still be growing; judge only finished ones.
                let finished = &lines[..lines.len().saturating_sub(1)];
                finished.len() >= MAX_LINES || finished.iter().skip(1).any(|l| self.leaves_block(l))
            }
        }
    }

    fn leaves_block(&self, line: &str) -> bool {
        !line.trim().is_empty() && indent_of(line) < self.indent
    }
}

/// The suggestion to show for raw model output, or `None` when nothing is
/// worth showing.
pub fn finish(raw: &str, shape: &Shape) -> Option<String> {
    let mut text = match shape.mode {
        Mode::SingleLine => raw
            .split('\n')
            .next()
            .unwrap_or("")
            .trim_end_matches('\r')
            .to_owned(),
        Mode::MultiLine => cut_block(raw, shape),
    };
    text = remove_suffix_overlap(&text, shape);
    text = balance(&text, shape);
    let text = text.trim_end().to_owned();
    if text.trim().is_empty() {
        None
    } else {
        Some(text)
    }
}

/// Keeps the lines of `raw` that stay in the cursor's block.
fn cut_block(raw: &str, shape: &Shape) -> String {
    let mut kept: Vec<&str> = Vec::new();
    for (i, line) in raw.split('\n').enumerate() {
        let line = line.trim_end_matches('\r');
        if i > 0 && shape.leaves_block(line) {
            break;
        }
        // The model went on to write what already follows the cursor.
        if i > 0
            && shape
                .next_line
                .as_deref()
                .is_some_and(|next| line.trim() == next)
        {
            break;
        }
        if kept.len() == MAX_LINES {
            break;
        }
        kept.push(line);
    }
    while kept.last().is_some_and(|l| l.trim().is_empty()) {
        kept.pop();
    }
    kept.join("\n")
}

/// Drops the end of `text` where it repeats the start of the rest of the line
/// (`foo(|)` completed as `a, b)` becomes `a, b`).
fn remove_suffix_overlap(text: &str, shape: &Shape) -> String {
    let rest = shape.rest_of_line.trim_end();
    if rest.is_empty() || shape.mode == Mode::MultiLine {
        return text.to_owned();
    }
    let longest = (1..=rest.len())
        .rev()
        .filter(|&k| rest.is_char_boundary(k))
        .find(|&k| text.trim_end().ends_with(&rest[..k]))
        .unwrap_or(0);
    let trimmed = text.trim_end();
    trimmed[..trimmed.len() - longest].to_owned()
}

/// Cuts the suggestion before a closing bracket that closes nothing, and
/// before closers the rest of the line already has.
fn balance(text: &str, shape: &Shape) -> String {
    let (_, bad) = open_brackets(text, shape.open.clone());
    let text = match bad {
        Some(i) => &text[..i],
        None => text,
    };
    if shape.mode == Mode::SingleLine {
        // Closers at the end of the suggestion that the rest of the line starts with are duplicates.
        let rest: Vec<char> = shape
            .rest_of_line
            .trim_start()
            .chars()
            .take_while(|c| ")]}".contains(*c))
            .collect();
        let mut out = text.trim_end().to_owned();
        for c in rest {
            if out.ends_with(c) {
                out.pop();
            } else {
                break;
            }
        }
        return out;
    }
    text.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(before: &str, after: &str, raw: &str) -> Option<String> {
        finish(raw, &Shape::at(before, after))
    }

    #[test]
    fn single_line_stops_at_newline() {
        assert_eq!(
            check("x = ", "\n", "compute()\ny = 2").as_deref(),
            Some("compute()")
        );
    }

    #[test]
    fn overlap_with_the_rest_of_the_line_is_removed() {
        assert_eq!(check("print(", ")\n", "\"hi\")").as_deref(), Some("\"hi\""));
    }

    #[test]
    fn unmatched_closer_is_cut() {
        assert_eq!(check("x = ", "\n", "a + b) * 2").as_deref(), Some("a + b"));
    }

    #[test]
    fn block_stops_at_dedent() {
        let before = "def f(x):\n    ";
        let raw = "y = x + 1\n    return y\nprint(f(2))";
        assert_eq!(
            check(before, "\n", raw).as_deref(),
            Some("y = x + 1\n    return y")
        );
    }

    #[test]
    fn empty_suggestions_are_dropped() {
        assert_eq!(check("x = ", "\n", "\n"), None);
        assert_eq!(check("x = ", "\n", "   "), None);
    }
}
