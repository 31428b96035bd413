//! Parsing with tree-sitter: the grammar of each language that has one
//! here (Python, Rust, JavaScript, TypeScript and TSX, Go, C, C++, Java),
//! by the LSP language id of `languages.json`. Review finds its places in
//! the syntax tree and offers only replacements that still parse.

use tree_sitter::{InputEdit, Language, Parser, Point, Tree};

/// The grammar for a language id, if nib has one.
pub fn grammar(language_id: &str) -> Option<Language> {
    let language = match language_id {
        "python" => tree_sitter_python::LANGUAGE,
        "rust" => tree_sitter_rust::LANGUAGE,
        "javascript" | "javascriptreact" => tree_sitter_javascript::LANGUAGE,
        "typescript" => tree_sitter_typescript::LANGUAGE_TYPESCRIPT,
        "typescriptreact" => tree_sitter_typescript::LANGUAGE_TSX,
        "go" => tree_sitter_go::LANGUAGE,
        "c" => tree_sitter_c::LANGUAGE,
        "cpp" => tree_sitter_cpp::LANGUAGE,
        "java" => tree_sitter_java::LANGUAGE,
        _ => return None,
    };
    Some(language.into())
}

/// A parsed text that can be asked whether an edit of it still parses.
pub struct Parsed {
    parser: Parser,
    tree: Tree,
    /// Byte offsets where the text's lines start, for tree-sitter's points.
    line_starts: Vec<usize>,
}

impl Parsed {
    /// Parses `text`; `None` for a language without a grammar (or a parser
    /// that gives up, which tree-sitter does only when cancelled).
    pub fn new(language_id: &str, text: &str) -> Option<Self> {
        let mut parser = Parser::new();
        parser.set_language(&grammar(language_id)?).ok()?;
        let tree = parser.parse(text, None)?;
        let line_starts = crate::lex::line_starts(text);
        Some(Self {
            parser,
            tree,
            line_starts,
        })
    }

    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// Whether `text` with `start..end` replaced by `with` parses as well as
    /// `text` does: no syntax error where there was none, else none around
    /// the edit. In a big file only the top-level item holding the edit (a
    /// function, a class, a statement) is parsed again, on its own, so a
    /// check costs that item (a big file has thousands of places); else the
    /// whole text is reparsed incrementally.
    pub fn still_parses(&mut self, text: &str, start: usize, end: usize, with: &str) -> bool {
        // The root's child holding the edit, by the cursor: `Node::parent`
        // walks down from the root each time, too slow for every place.
        let mut cursor = self.tree.root_node().walk();
        let item = cursor
            .goto_first_child_for_byte(start)
            .map(|_| cursor.node())
            .map(|n| (n.start_byte(), n.end_byte(), n.has_error()));
        drop(cursor);
        let Some((from, to, item_has_error)) =
            // A standalone parse costs the item, an incremental one grows
            // with the file: the item only where it is a small part of it.
            item.filter(|&(from, to, _)| {
                (to - from) * 8 < text.len() && from <= start && end <= to
            })
        else {
            return self.still_parses_in_file(text, start, end, with);
        };
        let edited = format!("{}{with}{}", &text[from..start], &text[end..to]);
        let Some(tree) = self.parser.parse(&edited, None) else {
            return false;
        };
        if !item_has_error {
            return !tree.root_node().has_error();
        }
        around_is_clean(&tree, start - from, start - from + with.len())
    }

    /// [`Parsed::still_parses`] by an incremental reparse of the whole
    /// text, read in place.
    fn still_parses_in_file(&mut self, text: &str, start: usize, end: usize, with: &str) -> bool {
        let new_end = start + with.len();
        let start_position = self.point(start);
        let mut old = self.tree.clone();
        old.edit(&InputEdit {
            start_byte: start,
            old_end_byte: end,
            new_end_byte: new_end,
            start_position,
            old_end_position: self.point(end),
            new_end_position: advance(start_position, with),
        });
        let (before, after) = (&text.as_bytes()[..start], &text.as_bytes()[end..]);
        let mut read = |at: usize, _: Point| -> &[u8] {
            if at < start {
                &before[at..]
            } else if at < new_end {
                &with.as_bytes()[at - start..]
            } else {
                after.get(at - new_end..).unwrap_or_default()
            }
        };
        let Some(tree) = self.parser.parse_with_options(&mut read, Some(&old), None) else {
            return false;
        };
        if !self.tree.root_node().has_error() {
            return !tree.root_node().has_error();
        }
        around_is_clean(&tree, start, new_end)
    }

    /// The row and byte column of a byte offset of the parsed text.
    fn point(&self, at: usize) -> Point {
        let row = self.line_starts.partition_point(|&s| s <= at) - 1;
        Point {
            row,
            column: at - self.line_starts[row],
        }
    }
}

/// Whether what encloses `start..end` in `tree`, a few levels up (the
/// expression and its statement), is free of syntax errors: for texts with
/// errors elsewhere.
fn around_is_clean(tree: &Tree, start: usize, end: usize) -> bool {
    let mut node = tree.root_node().descendant_for_byte_range(start, end);
    for _ in 0..4 {
        node = node.and_then(|n| n.parent().filter(|p| p.parent().is_some()).or(Some(n)));
    }
    node.is_some_and(|n| !n.has_error())
}

/// Where `inserted` ends when it starts at `from`.
fn advance(from: Point, inserted: &str) -> Point {
    match inserted.rfind('\n') {
        Some(last) => Point {
            row: from.row + inserted.matches('\n').count(),
            column: inserted.len() - last - 1,
        },
        None => Point {
            row: from.row,
            column: from.column + inserted.len(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reviewed_language_with_a_grammar_parses_its_own_code() {
        let samples = [
            (
                "python",
                "def f(x):\n    return x is not None and f'{x + 1}'\n",
            ),
            (
                "rust",
                "fn f(a: Vec<u32>) -> bool { a.len() > 0 && !a.is_empty() }\n",
            ),
            ("javascript", "const f = (a) => a === 1 || !a;\n"),
            (
                "typescript",
                "function f(a: Array<number>): boolean { return a.length < 2; }\n",
            ),
            ("typescriptreact", "const A = () => <div>{1 + 2}</div>;\n"),
            ("go", "package m\nfunc f(a int) bool { return a >= 1 }\n"),
            ("c", "int f(int a) { return a != 0; }\n"),
            (
                "cpp",
                "template <typename T> bool f(T a) { return a < 1; }\n",
            ),
            ("java", "class A { boolean f(int a) { return a <= 1; } }\n"),
        ];
        for (id, text) in samples {
            let parsed = Parsed::new(id, text).expect(id);
            assert!(!parsed.tree().root_node().has_error(), "{id}: {text}");
        }
        assert!(grammar("kotlin").is_none());
    }

    #[test]
    fn an_edit_that_breaks_the_syntax_is_told_apart() {
        let text = "let r = &a[..];\nlet s = 0..n;\n";
        let mut parsed = Parsed::new("rust", text).expect("rust");
        let full = text.find("..").expect("..");
        assert!(
            !parsed.still_parses(text, full, full + 2, "..="),
            "`[..=]` has no end"
        );
        let range = text.rfind("..").expect("..");
        assert!(parsed.still_parses(text, range, range + 2, "..="));
        // And with an error elsewhere in the file, only the edit's statement counts.
        let broken = "def f(:\n    pass\nx = a < b\n";
        let mut parsed = Parsed::new("python", broken).expect("python");
        let lt = broken.find('<').expect("<");
        assert!(parsed.still_parses(broken, lt, lt + 1, "<="));
        assert!(!parsed.still_parses(broken, lt, lt + 1, "< <"));
    }
}
