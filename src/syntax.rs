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
}

impl Parsed {
    /// Parses `text`; `None` for a language without a grammar (or a parser
    /// that gives up, which tree-sitter does only when cancelled).
    pub fn new(language_id: &str, text: &str) -> Option<Self> {
        let mut parser = Parser::new();
        parser.set_language(&grammar(language_id)?).ok()?;
        let tree = parser.parse(text, None)?;
        Some(Self { parser, tree })
    }

    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// Whether `text` with `start..end` replaced by `with` parses as well as
    /// `text` does: no syntax error at all when `text` has none, else none
    /// in the statement around the edit. Reparses incrementally.
    pub fn still_parses(&mut self, text: &str, start: usize, end: usize, with: &str) -> bool {
        let edited = format!("{}{with}{}", &text[..start], &text[end..]);
        let new_end = start + with.len();
        let mut old = self.tree.clone();
        old.edit(&InputEdit {
            start_byte: start,
            old_end_byte: end,
            new_end_byte: new_end,
            start_position: point(text, start),
            old_end_position: point(text, end),
            new_end_position: point(&edited, new_end),
        });
        let Some(tree) = self.parser.parse(&edited, Some(&old)) else {
            return false;
        };
        if !self.tree.root_node().has_error() {
            return !tree.root_node().has_error();
        }
        // The file has errors elsewhere: look at what encloses the edit, a
        // few levels up (the expression and its statement).
        let mut node = tree.root_node().descendant_for_byte_range(start, new_end);
        for _ in 0..4 {
            node = node.and_then(|n| n.parent().filter(|p| p.parent().is_some()).or(Some(n)));
        }
        node.is_some_and(|n| !n.has_error())
    }
}

/// The row and byte column of a byte offset, as tree-sitter counts them.
fn point(text: &str, at: usize) -> Point {
    let before = &text[..at];
    let row = before.matches('\n').count();
    let column = at - before.rfind('\n').map_or(0, |i| i + 1);
    Point { row, column }
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
