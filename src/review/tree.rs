//! Candidate places from the syntax tree, for languages with a grammar
//! (`crate::syntax`): a member counts only where the grammar says it is an
//! operator of a binary expression, comparison, compound assignment or
//! range, a boolean or integer literal, or a negation (`not x`, `!x`). So
//! `Vec<T>`'s brackets, a loop's `in`, a unary minus and a macro's `!` are
//! no places, expressions inside f-strings and template literals are, and
//! an alternative is offered only when the file still parses with it.

use tree_sitter::{Node, TreeCursor};

use super::sites::{Language, Site};
use crate::syntax::Parsed;

/// Parents whose operator token is a place.
const OPERATOR_PARENTS: &[&str] = &[
    "binary_expression",
    "comparison_operator",
    "boolean_operator",
    "binary_operator",
    "augmented_assignment",
    "augmented_assignment_expression",
    "compound_assignment_expr",
    "assignment_expression",
    "assignment_statement",
    "range_expression",
];

/// Integer literals, as each grammar names them.
const INTEGER_KINDS: &[&str] = &[
    "integer",
    "integer_literal",
    "number",
    "int_literal",
    "decimal_integer_literal",
    "number_literal",
];

/// The places in `text`, in order, or `None` when the language has no grammar.
pub(super) fn sites(rules: &'static Language, language_id: &str, text: &str) -> Option<Vec<Site>> {
    let mut parsed = Parsed::new(language_id, text)?;
    let mut found = Vec::new();
    walk(&mut parsed.tree().walk(), |leaf, ancestors| {
        if let Some(site) = site_at(rules, text, leaf, ancestors) {
            found.push(site);
        }
    });
    for site in &mut found {
        let (start, end) = (site.start, site.end);
        let written: Vec<String> = site
            .alternatives
            .iter()
            .map(|a| site.written(text, a.text))
            .collect();
        let mut keep = written
            .iter()
            .map(|w| parsed.still_parses(text, start, end, w));
        site.alternatives.retain(|_| keep.next().unwrap_or(false));
    }
    found.retain(|s| !s.alternatives.is_empty());
    Some(found)
}

/// Calls `visit` on every token in text order, with its ancestors (the
/// parent last): the leaves, and anonymous nodes made of several (Python's
/// `is not`, `not in`), whole. Goes into `ERROR` nodes too: a fragment (a
/// window of a file, a buffer being typed) parses into whole expressions
/// inside them, and a token whose parent is the `ERROR` itself is no
/// operator of an expression anyway. The ancestors come from the walk, not
/// `Node::parent`, which searches down from the root on every call.
fn walk<'t>(cursor: &mut TreeCursor<'t>, mut visit: impl FnMut(Node<'t>, &[Node<'t>])) {
    let mut ancestors: Vec<Node<'t>> = Vec::new();
    loop {
        let node = cursor.node();
        let token = node.child_count() == 0 || (!node.is_named() && !node.is_error());
        if !token && cursor.goto_first_child() {
            ancestors.push(node);
            continue;
        }
        if token && !node.is_error() {
            visit(node, &ancestors);
        }
        while !cursor.goto_next_sibling() {
            if !cursor.goto_parent() {
                return;
            }
            ancestors.pop();
        }
    }
}

/// The place a leaf is, if any.
fn site_at(
    rules: &'static Language,
    text: &str,
    leaf: Node<'_>,
    ancestors: &[Node<'_>],
) -> Option<Site> {
    let (&parent, above) = ancestors.split_last()?;
    let written = text.get(leaf.byte_range())?;
    let (start, mut end) = (leaf.start_byte(), leaf.end_byte());
    let member: String = written.split_whitespace().collect::<Vec<_>>().join(" ");
    let kind = leaf.kind();
    let counts = if parent.kind() == "not_operator" && member == "not" {
        // The site runs to the operand, so removing it leaves no space behind.
        end = parent.child_by_field_name("argument")?.start_byte();
        true
    } else if parent.kind() == "unary_expression" && member == "!" {
        // `!!x` is a conversion to bool, not two negations.
        let doubled = |n: Option<Node<'_>>| {
            n.is_some_and(|n| {
                n.kind() == "unary_expression" && n.child(0).is_some_and(|c| c.kind() == "!")
            })
        };
        !doubled(above.last().copied()) && !doubled(parent.child_by_field_name("argument"))
    } else if !leaf.is_named() {
        OPERATOR_PARENTS.contains(&parent.kind())
            || (parent.kind() == "boolean_literal" && matches!(kind, "true" | "false"))
    } else {
        matches!(kind, "true" | "false")
            || (INTEGER_KINDS.contains(&kind) && matches!(written, "0" | "1"))
    };
    if !counts {
        return None;
    }
    let (member, alternatives) = rules.alternatives(&member)?;
    Some(Site {
        start,
        end,
        member,
        alternatives,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::review::language_of;

    /// `member@offset` of each place, and its alternatives, for a file named `name`.
    fn found(name: &str, text: &str) -> Vec<String> {
        let id = crate::languages::by_path(name)
            .map(|l| l.id.as_str())
            .expect("a language");
        let rules = language_of(Path::new(name)).expect("rules");
        rules
            .sites(id, text)
            .iter()
            .map(|s| {
                let alts: Vec<&str> = s.alternatives.iter().map(|a| a.text).collect();
                format!("{}@{}:{}", &text[s.start..s.end], s.start, alts.join("|"))
            })
            .collect()
    }

    #[test]
    fn python_places_come_from_expressions_f_strings_included() {
        let text = "s = f\"{a + 1}\"  # x < y\nfor x in xs:\n    ok = x in ys and not done\n\
                    if x is not None or y == True: n -= 0\n";
        assert_eq!(
            found("a.py", text),
            [
                "+@9:-",
                "1@11:0",
                "in@48:not in",
                "and@54:or",
                "not @58:",
                "is not@72:!=|is",
                "or@84:and",
                "==@89:!=|is",
                "True@92:False",
                "-=@100:+=",
                "0@103:1"
            ]
        );
    }

    #[test]
    fn rust_places_skip_type_brackets_macros_and_ranges_that_would_not_parse() {
        let text = "fn f<T>(a: Vec<T>) -> bool { let r = &a[..]; let s = 0..n; \
                    println!(\"{}\", !done); !!x && -1 < b }\nlet p = P { ..Default::default() };\n";
        assert_eq!(
            found("a.rs", text),
            [
                "0@53:1",
                "..@54:..=",
                "!@82:",
                "&&@86:||",
                "1@90:0",
                "<@92:<=|>|>="
            ]
        );
    }

    #[test]
    fn c_like_places_in_typescript_go_cpp_and_java() {
        assert_eq!(
            found(
                "a.ts",
                "let a: Array<string> = [];\nconst s = `${a + 1}`;\nif (!(x === y)) {}\n"
            ),
            ["+@42:-", "1@44:0", "!@53:", "===@57:!=="]
        );
        assert_eq!(
            found(
                "a.go",
                "package m\nfunc f() { x += 1; if !ok { return } }\n"
            ),
            ["+=@23:-=", "1@26:0", "!@32:"]
        );
        assert_eq!(
            found(
                "a.cpp",
                "template <typename T> bool f(T a) { return a < 1 && true; }\nstd::vector<int> v;\n"
            ),
            ["<@45:<=|>|>=", "1@47:0", "&&@49:||", "true@52:false"]
        );
        assert_eq!(
            found(
                "a.java",
                "class A { boolean f(int a) { return a <= 1 || false; } }\n"
            ),
            ["<=@38:<|>|>=", "1@41:0", "||@43:&&", "false@46:true"]
        );
    }

    #[test]
    fn a_language_without_a_grammar_falls_back_to_the_lexer() {
        assert_eq!(
            found("a.kt", "val ok = a < b && !c"),
            ["<@11:<=|>|>=", "&&@15:||"]
        );
    }
}
