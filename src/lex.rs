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
fn rust_char_literal(text: &str) -> bool {
    let mut chars = text.chars().skip(1);
    match chars.next() {
        Some('\\') => true,
        Some(_) => chars.next() == Some('\''),
        None => false,
    }
}

/// Byte offsets where the lines of `text` start: 0, then each offset after
/// a newline (the text's length too when it ends with one).
pub fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
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

    /// Literal and comment kinds of the grammars, which the lexer must see
    /// as not code; literals whole, interpolations (`f"{x}"`, `${x}`)
    /// included, and from their first quote (a prefix such as `f`, `r` or
    /// `b` is code to the lexer, which changes nothing it is used for).
    /// C's `#include <path>` is code to both.
    const NOT_CODE: [&str; 13] = [
        "comment",
        "line_comment",
        "block_comment",
        "string",
        "string_literal",
        "raw_string_literal",
        "char_literal",
        "character_literal",
        "template_string",
        "interpreted_string_literal",
        "rune_literal",
        "text_block",
        "string_fragment",
    ];

    /// Bytes of `text` the syntax tree puts in a literal or comment.
    fn tree_not_code(language_id: &str, text: &str) -> Vec<bool> {
        let parsed = crate::syntax::Parsed::new(language_id, text).expect("a grammar");
        let mut out = vec![false; text.len()];
        let mut cursor = parsed.tree().walk();
        'walk: loop {
            let node = cursor.node();
            if node.is_named() && NOT_CODE.contains(&node.kind()) {
                let r = node.byte_range();
                out[r.start + prefix_len(&text[r.clone()])..r.end].fill(true);
            } else if cursor.goto_first_child() {
                continue;
            }
            while !cursor.goto_next_sibling() {
                if !cursor.goto_parent() {
                    break 'walk;
                }
            }
        }
        out
    }

    fn lexer_not_code(text: &str, lang: Lang) -> Vec<bool> {
        let mut out = vec![true; text.len()];
        for r in code_ranges(text, lang) {
            out[r].fill(false);
        }
        // Literals from their first quote, as `tree_not_code` has them.
        let mut i = 0;
        while i < text.len() {
            if out[i] && (i == 0 || !out[i - 1]) {
                let skip = prefix_len(&text[i..]);
                out[i..i + skip].fill(false);
                i += skip.max(1);
            } else {
                i += 1;
            }
        }
        out
    }

    /// The letters and digits before a literal's first quote (`f`, `br`, `u8`).
    fn prefix_len(literal: &str) -> usize {
        literal
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(0)
    }

    /// Real files of this repository in every language of the grammars
    /// the lexer serves (and samples of the rest): the lexer, which
    /// completion post-processing, suppression comments and the languages
    /// without a grammar rely on, tells code from literals and comments as
    /// the syntax tree does, but for whitespace.
    #[test]
    fn the_lexer_agrees_with_the_syntax_tree() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files: Vec<(String, String)> = Vec::new();
        for dir in [
            "src",
            "src/engine",
            "src/review",
            "src/lsp",
            "models/nib_models",
            "editors/vscode/src",
        ] {
            let mut names: Vec<_> = std::fs::read_dir(root.join(dir))
                .expect("a folder of the repository")
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            names.sort();
            for p in names {
                if let Ok(text) = std::fs::read_to_string(&p) {
                    files.push((p.display().to_string(), text));
                }
            }
        }
        let samples = [
            (
                "a.go",
                "package a\n// c \"x\"\nvar s = `raw \"q\"\n` + \"it's\" /* b */\nvar r = '\\''\n",
            ),
            (
                "a.c",
                "#include <stdio.h>\n/* a \"b\" */ char c = '\"'; const char *s = \"x\\\"y\"; // z\n",
            ),
            ("a.cpp", "auto s = \"a//b\"; // c\nchar d = '/';\n"),
            (
                "A.java",
                "class A { String s = \"a/*b\"; char c = '\\''; /* d */ }\n",
            ),
            (
                "a.js",
                "const t = `x ${a} y`; // c\nlet s = 'it\\'s'; /* b */\n",
            ),
        ];
        files.extend(samples.iter().map(|(n, t)| (n.to_string(), t.to_string())));
        let mut checked = 0;
        for (name, text) in &files {
            let Some(language) = crate::languages::by_path(name) else {
                continue;
            };
            if crate::syntax::grammar(&language.id).is_none() {
                continue;
            }
            let tree = tree_not_code(&language.id, text);
            let lexer = lexer_not_code(text, language.lexer);
            let bytes = text.as_bytes();
            let wrong: Vec<usize> = (0..text.len())
                .filter(|&i| tree[i] != lexer[i] && !bytes[i].is_ascii_whitespace())
                .collect();
            if let Some(&first) = wrong.first() {
                let from = text.floor_char_boundary(first.saturating_sub(40));
                let to = text.ceil_char_boundary((first + 40).min(text.len()));
                panic!(
                    "{name}: {} bytes differ, first at {first} (tree says {}): {:?}",
                    wrong.len(),
                    if tree[first] { "not code" } else { "code" },
                    &text[from..to]
                );
            }
            checked += 1;
        }
        assert!(checked >= 40, "only {checked} files");
    }
}
