//! Just enough lexing to tell code from string literals and comments, per
//! language family. Completion post-processing uses it to count brackets;
//! review uses it to find candidate places only in code.

use std::ops::Range;

/// A family of languages that share comment and quote rules (named as in
/// `languages.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Lang {
    /// `#` starts a comment (Python, shell, Ruby, TOML, YAML); Python's
    /// triple quotes make multi-line strings.
    Hash,
    /// `'` also starts lifetimes and labels (Rust); nested block comments,
    /// raw strings.
    Rust,
    /// `//` and `/* */` comments, `'`, `"` and `` ` `` strings (C family, Go, JS/TS, ...).
    #[default]
    CLike,
}

impl Lang {
    /// The family of a file name's language (C-like when unknown).
    pub fn from_path(path: Option<&str>) -> Self {
        path.and_then(crate::languages::by_path)
            .map_or(Self::CLike, |l| l.lexer)
    }
}

/// Whether a `'` at the start of `text` opens a Rust char literal (`'a'`,
/// `'\n'`, `'\u{1F600}'`) rather than a lifetime or label (`'a`, `'static`).
pub(crate) fn rust_char_literal(text: &str) -> bool {
    let mut chars = text.chars().skip(1);
    match chars.next() {
        Some('\\') => true,
        Some(_) => chars.next() == Some('\''),
        None => false,
    }
}

/// Byte ranges of `text` that are code: everything outside string and char
/// literals and comments. An unterminated literal or comment runs to the
/// end of the text (or of its line, for one-line strings). Every range
/// starts and ends on a char boundary, since all delimiters are ASCII.
pub fn code_ranges(text: &str, lang: Lang) -> Vec<Range<usize>> {
    let b = text.as_bytes();
    let mut ranges = Vec::new();
    let mut code_start = 0;
    let mut i = 0;
    while i < b.len() {
        let skip_to = match (b[i], lang) {
            (b'#', Lang::Hash) => Some(line_end(b, i)),
            (b'/', Lang::Rust | Lang::CLike) if b.get(i + 1) == Some(&b'/') => Some(line_end(b, i)),
            (b'/', Lang::Rust) if b.get(i + 1) == Some(&b'*') => {
                Some(block_comment_end(b, i, true))
            }
            (b'/', Lang::CLike) if b.get(i + 1) == Some(&b'*') => {
                Some(block_comment_end(b, i, false))
            }
            (b'"' | b'\'', Lang::Hash) if b[i..].starts_with(&[b[i]; 3]) => {
                Some(quoted_end(b, i + 3, &[b[i]; 3], true))
            }
            (b'"' | b'\'', Lang::Hash) => Some(quoted_end(b, i + 1, &[b[i]], false)),
            (b'"', Lang::Rust) => Some(quoted_end(b, i + 1, b"\"", true)),
            (b'r', Lang::Rust) if !ident_byte_before(b, i) || raw_prefix_before(b, i) => {
                rust_raw_string_end(b, i)
            }
            (b'\'', Lang::Rust) if rust_char_literal(&text[i..]) => {
                Some(quoted_end(b, i + 1, b"'", false))
            }
            (b'\'' | b'"', Lang::CLike) => Some(quoted_end(b, i + 1, &[b[i]], false)),
            (b'`', Lang::CLike) => Some(quoted_end(b, i + 1, b"`", true)),
            _ => None,
        };
        match skip_to {
            Some(end) => {
                if code_start < i {
                    ranges.push(code_start..i);
                }
                i = end.max(i + 1);
                code_start = i;
            }
            None => i += 1,
        }
    }
    if code_start < b.len() {
        ranges.push(code_start..b.len());
    }
    ranges
}

fn line_end(b: &[u8], from: usize) -> usize {
    b[from..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |p| from + p)
}

fn ident_byte_before(b: &[u8], i: usize) -> bool {
    i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_' || b[i - 1] >= 0x80)
}

/// `br"..."` and `cr"..."`: the `r` follows a one-letter prefix that starts a token.
fn raw_prefix_before(b: &[u8], i: usize) -> bool {
    i > 0 && matches!(b[i - 1], b'b' | b'c') && !ident_byte_before(b, i - 1)
}

/// End of a `/* */` comment starting at `from`; Rust's nest.
fn block_comment_end(b: &[u8], from: usize, nested: bool) -> usize {
    let mut depth = 0usize;
    let mut i = from;
    while i + 1 < b.len() {
        if b[i] == b'/' && b[i + 1] == b'*' && (nested || depth == 0) {
            depth += 1;
            i += 2;
        } else if b[i] == b'*' && b[i + 1] == b'/' {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

/// End (exclusive) of a literal whose body starts at `from` and which
/// closes with `close`; backslash escapes the next byte. One-line literals
/// also end at a newline.
fn quoted_end(b: &[u8], from: usize, close: &[u8], multiline: bool) -> usize {
    let mut i = from;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'\n' if !multiline => return i,
            _ if b[i..].starts_with(close) => return i + close.len(),
            _ => i += 1,
        }
    }
    b.len()
}

/// `r"..."`, `r#"..."#` starting at the `r`; `None` when the `r` starts an
/// identifier instead.
fn rust_raw_string_end(b: &[u8], r: usize) -> Option<usize> {
    let hashes = b[r + 1..].iter().take_while(|&&c| c == b'#').count();
    let quote = r + 1 + hashes;
    if b.get(quote) != Some(&b'"') {
        return None;
    }
    let mut close = vec![b'"'];
    close.extend(std::iter::repeat_n(b'#', hashes));
    let body = quote + 1;
    Some(
        b[body..]
            .windows(close.len())
            .position(|w| w == close.as_slice())
            .map_or(b.len(), |p| body + p + close.len()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str, lang: Lang) -> String {
        code_ranges(text, lang)
            .into_iter()
            .map(|r| &text[r])
            .collect::<Vec<_>>()
            .join("|")
    }

    #[test]
    fn python_strings_and_comments_are_not_code() {
        let src = "a = 'x<y' + \"q#\" # c < d\nb = f'''\n<\n''' if r\"\\\"<\" else 1";
        assert_eq!(code(src, Lang::Hash), "a = | + | |\nb = f| if r| else 1");
    }

    #[test]
    fn rust_raw_strings_nested_comments_and_lifetimes() {
        let src = "fn f<'a>(x: &'a str) -> char { /* a /* b */ < */ let s = r#\"a\"<\"#; '<' }";
        assert_eq!(
            code(src, Lang::Rust),
            "fn f<'a>(x: &'a str) -> char { | let s = |; | }"
        );
        assert_eq!(code("br\"x\" + var", Lang::Rust), "b| + var");
        assert_eq!(code("for_r = 1", Lang::Rust), "for_r = 1");
    }

    #[test]
    fn c_like_comments_and_template_strings() {
        let src = "a /* < */ + `x\n${y}` // z\n'c' + \"d\"";
        assert_eq!(code(src, Lang::CLike), "a | + | |\n| + ");
    }

    #[test]
    fn unterminated_literals_stop_at_the_line_or_the_end() {
        assert_eq!(code("x = 'abc\ny = 2", Lang::Hash), "x = |\ny = 2");
        assert_eq!(code("a /* open", Lang::CLike), "a ");
    }
}
