//! Turning raw model output into an insertable suggestion: the right extent
//! (one line or a block), no repeat of the text after the cursor, brackets
//! that fit the code around it.
//!
//! The rules, in order ([`finish`]):
//! 1. cut at the first control character or U+FFFD (byte-level junk);
//! 2. extent: single-line mode keeps the first line; multi-line mode keeps
//!    lines until one dedents below the cursor's block, repeats the first
//!    non-blank line after the cursor, or [`MAX_LINES`] is reached;
//! 3. single-line: cut where the suggestion closes a bracket opened before
//!    the cursor when the rest of the line closes it already, then drop an
//!    end that repeats the start of the rest of the line;
//! 4. cut before a closing bracket that closes nothing;
//! 5. no doubled space after a cursor that follows a space; trailing
//!    whitespace goes unless code follows the cursor; an empty result is
//!    no suggestion.
//!
//! Brackets are counted in code only, outside literals and comments as
//! [`crate::lex::code_ranges`] finds them for the language family ([`Lang`]).

/// How much a suggestion may span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The rest of the current line.
    SingleLine,
    /// A block: the cursor is on an empty line, or at the end of a line
    /// that opens a block.
    MultiLine,
}

/// Most lines a multi-line suggestion keeps.
const MAX_LINES: usize = 16;

pub use crate::lex::Lang;

/// The code around the cursor that shapes a suggestion.
#[derive(Debug, Clone)]
pub struct Shape {
    pub mode: Mode,
    lang: Lang,
    /// Indentation (in columns) of the block the cursor is in.
    indent: usize,
    /// Text before the cursor on its line.
    line_before: String,
    /// Text after the cursor up to the end of its line.
    rest_of_line: String,
    /// The first non-blank line after the cursor's line, trimmed.
    next_line: Option<String>,
    /// That line's indentation.
    next_indent: usize,
    /// Scanner state at the cursor: open brackets and string.
    scan: Scan,
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

/// Brackets opened and not closed (innermost last) in the text fed so far,
/// counted in code only: literals and comments are told from code by
/// [`crate::lex::code_ranges`], the one lexer of nib (its agreement with the
/// syntax trees is tested there), so a `(` in a string, a Python
/// triple-quoted string or a block comment opens nothing.
#[derive(Debug, Clone, Default)]
struct Scan {
    stack: Vec<char>,
    /// The text fed so far: a literal open at its end continues into what
    /// is fed next.
    fed: String,
}

/// Bytes of the prefix before the cursor the bracket scan reads: only the
/// recent past matters for brackets, and it bounds the work.
const SCAN_WINDOW: usize = 4000;

/// Where the bracket scan of `prefix` starts: about [`SCAN_WINDOW`] bytes
/// before its end, in code, never inside a literal or comment (the lexer
/// would take a docstring's closing quote for an opening one and read the
/// rest inside out). A prefix that ends in a literal begun earlier is read
/// from that literal's start, up to 16 windows back.
fn scan_start(prefix: &str, lang: Lang) -> usize {
    let cut = prefix.ceil_char_boundary(prefix.len().saturating_sub(SCAN_WINDOW));
    let mut literal_start = 0;
    for r in crate::lex::code_ranges(prefix, lang) {
        if r.end <= cut {
            literal_start = r.end;
            continue;
        }
        return r.start.max(cut);
    }
    let bound = prefix.ceil_char_boundary(prefix.len().saturating_sub(16 * SCAN_WINDOW));
    literal_start.max(bound)
}

/// Where scanning a suggestion stopped fitting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// A closer that matches no open bracket, at this byte.
    Unmatched(usize),
    /// A closer of a bracket opened before the suggestion, at this byte.
    ClosesOuter(usize, char),
}

impl Scan {
    /// Feeds `text`. In a prefix (`outer = None`) unmatched closers are
    /// skipped; in a suggestion the first one that does not fit stops the
    /// scan, as does closing one of the first `outer` brackets (the byte
    /// given is in `text`).
    fn feed(&mut self, text: &str, lang: Lang, outer: Option<usize>) -> Option<Stop> {
        let from = self.fed.len();
        self.fed.push_str(text);
        let code = crate::lex::code_ranges(&self.fed, lang);
        for range in code {
            if range.end <= from {
                continue;
            }
            let start = range.start.max(from);
            for (i, c) in self.fed[start..range.end].char_indices() {
                let at = start + i - from;
                match c {
                    '(' | '[' | '{' => self.stack.push(c),
                    ')' | ']' | '}' => {
                        let depth = self.stack.len();
                        if self.stack.last().map(|&o| closer(o)) == Some(c) {
                            if let Some(outer) = outer
                                && depth <= outer
                            {
                                return Some(Stop::ClosesOuter(at, c));
                            }
                            self.stack.pop();
                        } else if outer.is_some() {
                            return Some(Stop::Unmatched(at));
                        }
                    }
                    _ => {}
                }
            }
        }
        None
    }
}

impl Shape {
    /// The shape at a cursor between `prefix` and `suffix`, for C-like code.
    pub fn at(prefix: &str, suffix: &str) -> Self {
        Self::new(prefix, suffix, Lang::default())
    }

    pub fn new(prefix: &str, suffix: &str, lang: Lang) -> Self {
        let line_before = prefix.rsplit('\n').next().unwrap_or("");
        let rest_of_line = suffix
            .split('\n')
            .next()
            .unwrap_or("")
            .trim_end_matches('\r')
            .to_owned();
        let rest_blank = rest_of_line.trim().is_empty();
        let blank_line = line_before.trim().is_empty() && rest_blank;
        // At the end of `def f():` or `fn f() {`: the suggestion is the block.
        let opens_here = rest_blank && ends_with_block_opener(line_before);
        let mode = if blank_line || opens_here {
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
            if ends_with_block_opener(previous) {
                indent_of(line_before).max(indent_of(previous) + 1)
            } else {
                indent_of(line_before)
            }
        } else if opens_here {
            indent_of(line_before) + 1
        } else {
            indent_of(line_before)
        };
        let next_raw = suffix.split('\n').skip(1).find(|l| !l.trim().is_empty());
        let next_line = next_raw.map(|l| l.trim().to_owned());
        let next_indent = next_raw.map_or(0, indent_of);
        let mut scan = Scan::default();
        scan.feed(&prefix[scan_start(prefix, lang)..], lang, None);
        Self {
            mode,
            lang,
            indent,
            line_before: line_before.to_owned(),
            rest_of_line,
            next_line,
            next_indent,
            scan,
        }
    }

    /// Whether `text` already holds everything this suggestion can use, so
    /// generation may stop.
    pub fn is_complete(&self, text: &str) -> bool {
        if repetition_start(text).is_some() {
            return true;
        }
        match self.mode {
            Mode::SingleLine => text.contains('\n'),
            Mode::MultiLine => {
                let lines: Vec<&str> = text.split('\n').collect();
                // The last line may still be growing; judge only finished ones.
                let finished = &lines[..lines.len().saturating_sub(1)];
                finished.len() > MAX_LINES
                    || finished
                        .iter()
                        .skip(1)
                        .any(|l| self.leaves_block(l) || self.repeats_suffix(l))
            }
        }
    }

    fn leaves_block(&self, line: &str) -> bool {
        !line.trim().is_empty() && indent_of(line) < self.indent
    }

    /// A line with code (not only closers) equal to the next line after the cursor.
    fn repeats_suffix(&self, line: &str) -> bool {
        line.chars().any(char::is_alphanumeric)
            && self
                .next_line
                .as_deref()
                .is_some_and(|next| line.trim() == next)
    }

    /// Whether `line`, which leaves the block, only closes a bracket that
    /// `kept` (the suggestion so far) leaves open and the code after the
    /// cursor does not close at that indentation: the suggestion needs it.
    fn needs_closer(&self, kept: &str, line: &str) -> bool {
        let t = line.trim();
        let Some(first) = t.chars().next() else {
            return false;
        };
        if !t.chars().all(|c| ")]};,".contains(c)) {
            return false;
        }
        let mut scan = self.scan.clone();
        scan.feed(kept, self.lang, None);
        let closes_open = scan.stack.last().map(|&o| closer(o)) == Some(first);
        let suffix_closes = self
            .next_line
            .as_deref()
            .is_some_and(|n| n.starts_with(first))
            && self.next_indent == indent_of(line);
        closes_open && !suffix_closes
    }
}

fn ends_with_block_opener(line: &str) -> bool {
    let t = line.trim_end();
    // A comment that ends in ':' or '{' opens nothing.
    !t.trim_start().starts_with(['#', '/']) && t.ends_with([':', '{'])
}

/// Shortest repeated unit and how many times it must repeat at the end of
/// the output before it counts as a loop (`in_in_in_in_`, `)))))))`, a line
/// written four times) rather than code.
const LOOP_UNIT_CHARS: usize = 40;
const LOOP_REPEATS: usize = 4;

/// Byte offset where a degenerate loop at the end of `text` starts, keeping
/// one copy of the repeated unit. Small models fall into such loops.
fn repetition_start(text: &str) -> Option<usize> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let n = chars.len();
    for unit in 1..=LOOP_UNIT_CHARS.min(n / LOOP_REPEATS) {
        // Count how many times the last `unit` chars repeat back to back.
        let mut repeats = 1;
        while (repeats + 1) * unit <= n
            && (0..unit).all(|i| chars[n - 1 - i].1 == chars[n - 1 - i - repeats * unit].1)
        {
            repeats += 1;
        }
        let loop_chars = repeats * unit;
        // A unit of one or two characters is a loop only when long (`----` is fine).
        let needed = LOOP_REPEATS.max(16 / unit);
        let is_text = chars[n - unit..]
            .iter()
            .any(|(_, c)| c.is_alphanumeric() || "()[]{}_".contains(*c));
        if repeats >= needed && is_text {
            return Some(
                chars
                    .get(n - loop_chars + unit)
                    .map_or(text.len(), |&(i, _)| i),
            );
        }
    }
    None
}

/// The suggestion to show for raw model output, or `None` when nothing is
/// worth showing.
pub fn finish(raw: &str, shape: &Shape) -> Option<String> {
    let raw = match raw
        .find(|c: char| (c.is_control() && !matches!(c, '\n' | '\t' | '\r')) || c == '\u{FFFD}')
    {
        Some(i) => &raw[..i],
        None => raw,
    };
    let raw = &raw[..repetition_start(raw).unwrap_or(raw.len())];
    let mut text = match shape.mode {
        Mode::SingleLine => {
            let line = raw.split('\n').next().unwrap_or("").trim_end_matches('\r');
            let line = cut_at_outer_close(line, shape);
            remove_suffix_overlap(line, shape)
        }
        Mode::MultiLine => cut_block(raw, shape),
    };
    text = cut_unmatched(&text, shape);
    if shape.line_before.ends_with([' ', '\t']) && !shape.line_before.trim().is_empty() {
        text = text.trim_start_matches([' ', '\t']).to_owned();
    }
    // Spaces before text that follows the cursor may be meant (`"a |"`),
    // unless that text starts with its own.
    if shape.mode == Mode::MultiLine
        || shape.rest_of_line.trim().is_empty()
        || shape.rest_of_line.starts_with([' ', '\t'])
    {
        text = text.trim_end().to_owned();
    }
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
        if i > 0 && shape.repeats_suffix(line) {
            break;
        }
        if i > 0 && shape.leaves_block(line) {
            if kept.len() < MAX_LINES && shape.needs_closer(&kept.join("\n"), line) {
                kept.push(line);
            }
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

/// In `foo(|)`, a suggestion `a, b) + c` closes the call the rest of the
/// line already closes: keep `a, b`.
fn cut_at_outer_close<'a>(text: &'a str, shape: &Shape) -> &'a str {
    let mut scan = shape.scan.clone();
    let outer = scan.stack.len();
    if let Some(Stop::ClosesOuter(i, c)) = scan.feed(text, shape.lang, Some(outer))
        && shape.rest_of_line.trim_start().starts_with(c)
    {
        return &text[..i];
    }
    text
}

/// Drops the end of `text` where it repeats the start of the rest of the line
/// (`print("|")` completed as `hi")` becomes `hi`).
fn remove_suffix_overlap(text: &str, shape: &Shape) -> String {
    let trimmed = text.trim_end();
    let rest = shape.rest_of_line.trim();
    if rest.is_empty() {
        return text.to_owned();
    }
    let depth = |text: &str| {
        let mut scan = shape.scan.clone();
        scan.feed(text, shape.lang, None);
        scan.stack.len()
    };
    // Brackets open at the cursor may close in the overlap; the
    // suggestion's own may not.
    let full = depth(trimmed).max(shape.scan.stack.len());
    // The overlap may not take away closers of brackets the suggestion opened.
    let longest = (1..=rest.len())
        .rev()
        .filter(|&k| rest.is_char_boundary(k))
        .filter(|&k| trimmed.ends_with(&rest[..k]))
        .find(|&k| depth(&trimmed[..trimmed.len() - k]) <= full)
        .unwrap_or(0);
    if longest == 0 {
        return text.to_owned();
    }
    trimmed[..trimmed.len() - longest].to_owned()
}

/// Cuts the suggestion before a closing bracket that closes nothing.
fn cut_unmatched(text: &str, shape: &Shape) -> String {
    let mut scan = shape.scan.clone();
    match scan.feed(text, shape.lang, Some(0)) {
        Some(Stop::Unmatched(i)) => text[..i].to_owned(),
        _ => text.to_owned(),
    }
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
        assert_eq!(check("s = \"", "\"\n", "abc\"").as_deref(), Some("abc"));
    }

    #[test]
    fn closing_what_the_line_closes_is_cut() {
        assert_eq!(
            check("print(", ")\n", "\"hi\") + 1").as_deref(),
            Some("\"hi\"")
        );
        // Without a closer after the cursor the suggestion may close it.
        assert_eq!(check("print(", "\n", "\"hi\")").as_deref(), Some("\"hi\")"));
    }

    #[test]
    fn unmatched_closer_is_cut() {
        assert_eq!(check("x = ", "\n", "a + b) * 2").as_deref(), Some("a + b"));
    }

    #[test]
    fn brackets_in_strings_and_comments_do_not_count() {
        assert_eq!(
            check("f(\"(\", ", ")\n", "x)").as_deref(),
            Some("x"),
            "the ( in the string is not open"
        );
        assert_eq!(check("x = 1 // (\ny = ", "\n", "2)").as_deref(), Some("2"));
        let rust = Shape::new(
            "fn f<'a>(x: &'a str) -> &'a str {\n    g(",
            ")\n",
            Lang::Rust,
        );
        assert_eq!(finish("x) + 1", &rust).as_deref(), Some("x"));
        let py = Shape::new("# don't (\nx = f(", ")\n", Lang::Hash);
        assert_eq!(finish("1)", &py).as_deref(), Some("1"));
        // Literals and comments over several lines hold no open bracket
        // either, so the `)` closes nothing and is cut.
        let py = Shape::new("s = \"\"\"\n(\n\"\"\"\nx = 1 + ", "\n", Lang::Hash);
        assert_eq!(finish("2)", &py).as_deref(), Some("2"));
        let c = Shape::new("/* (\n */\nint x = ", "\n", Lang::CLike);
        assert_eq!(finish("2);", &c).as_deref(), Some("2"));
    }

    #[test]
    fn a_long_docstring_across_the_scan_window_s_edge_does_not_turn_the_code_inside_out() {
        // The window's edge falls inside the docstring: read from its end,
        // not from its closing quote as if it opened one.
        let doc = format!(
            "def f(x):\n    \"\"\"{}\n    \"\"\"\n",
            "words (a) ".repeat(450)
        );
        let prefix = format!("{doc}    return g(x, ");
        assert!(prefix.len() > SCAN_WINDOW && doc.len() > SCAN_WINDOW);
        let shape = Shape::new(&prefix, ")\n", Lang::Hash);
        assert_eq!(shape.scan.stack, ['(']);
        assert_eq!(finish("1)", &shape).as_deref(), Some("1"));
        // A cursor inside a string begun before the window stays in it.
        let open = format!("s = \"\"\"{}(", "x".repeat(SCAN_WINDOW + 10));
        let shape = Shape::new(&open, "\n", Lang::Hash);
        assert!(shape.scan.stack.is_empty(), "the ( is in the string");
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
    fn a_block_opener_at_the_cursor_gets_a_block() {
        let shape = Shape::new("def f(x):", "\n\nprint(f(1))\n", Lang::Hash);
        assert_eq!(shape.mode, Mode::MultiLine);
        assert_eq!(
            finish("\n    return x\nprint(1)", &shape).as_deref(),
            Some("\n    return x")
        );
    }

    #[test]
    fn junk_bytes_end_the_suggestion() {
        assert_eq!(check("x = ", "\n", "ab\u{13}cd").as_deref(), Some("ab"));
        assert_eq!(check("x = ", "\n", "ab\u{FFFD}").as_deref(), Some("ab"));
    }

    #[test]
    fn no_double_space_after_a_space() {
        assert_eq!(check("x = ", "\n", " 5").as_deref(), Some("5"));
        assert_eq!(check("x =", "\n", " 5").as_deref(), Some(" 5"));
    }

    #[test]
    fn loops_are_cut_to_one_copy() {
        assert_eq!(
            repetition_start("self._get_in_in_in_in_in_"),
            Some("self._get_in_".len())
        );
        assert_eq!(repetition_start("foo(a, b)"), None);
        assert_eq!(repetition_start("x = '--------'"), None);
        assert_eq!(repetition_start("))))))))))))))))))"), Some(1));
        let line = "    print(x)\n";
        assert_eq!(repetition_start(&line.repeat(5)), Some(line.len()));
        assert_eq!(
            check("x = ", "\n", "f(in_in_in_in_in_in_").as_deref(),
            Some("f(in_")
        );
        assert!(Shape::at("x = ", "\n").is_complete("a_b_b_b_b_b_b_b_b_"));
    }

    #[test]
    fn empty_suggestions_are_dropped() {
        assert_eq!(check("x = ", "\n", "\n"), None);
        assert_eq!(check("x = ", "\n", "   "), None);
        assert_eq!(check("x = ", "\n", ""), None);
    }
}
