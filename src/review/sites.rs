//! The bug classes of `substitutions.json` and the places in a file where
//! one could hide: occurrences of a class member in code (not in strings or
//! comments), found with maximal munch so `->` is no `-` and `island` no `is`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::LazyLock;

use serde::Deserialize;

use crate::lex::{Lang, code_ranges};

#[derive(Debug, Deserialize)]
struct File {
    languages: HashMap<String, LanguageSpec>,
}

#[derive(Debug, Deserialize)]
struct LanguageSpec {
    groups: Vec<Group>,
}

/// Interchangeable members of one bug class.
#[derive(Debug, Deserialize)]
struct Group {
    rule: String,
    members: Vec<String>,
}

/// One rule set's rules, ready for matching.
#[derive(Debug)]
pub struct Language {
    pub name: String,
    /// The lexer of the languages that use this rule set (`languages.json`).
    lang: Lang,
    groups: Vec<Group>,
    /// Word members (`is`, `not in`, `True`) split into words, most words first.
    words: Vec<Vec<String>>,
}

/// Another member that could stand at a place, and the class that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alternative {
    pub text: &'static str,
    pub rule: &'static str,
}

/// A place where a class member is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// Byte range of the member in the text.
    pub start: usize,
    pub end: usize,
    /// The member as the rules spell it (`is not` even if written `is  not`).
    pub member: &'static str,
    pub alternatives: Vec<Alternative>,
}

impl Site {
    /// `alternative` as it would be written in place of this site in
    /// `text`: a word put between identifier characters gets spaces
    /// (`x==None` → `x is None`).
    pub fn written(&self, text: &str, alternative: &str) -> String {
        let before = text[..self.start].chars().next_back().is_some_and(is_ident);
        let after = text[self.end..].chars().next().is_some_and(is_ident);
        let word = alternative.starts_with(char::is_alphabetic);
        let pad = |yes: bool| if word && yes { " " } else { "" };
        format!("{}{alternative}{}", pad(before), pad(after))
    }
}

/// Operators longer than one character, so that maximal munch never reads
/// `->` as `-`, `>>=` as `>=` or `...` as `..`; the members themselves are
/// added per language.
const PUNCTUATION: &[&str] = &[
    "->", "=>", "<<", ">>", "<<=", ">>=", ">>>", ">>>=", "**", "**=", "//", "//=", "...", "::",
    "++", "--", ":=", "<-", "&^", "??", "?.", "??=", "|=", "&=", "^=", "%=", "*=", "/=", "<=>",
    "@=", "&&=", "||=",
];

static LANGUAGES: LazyLock<Vec<Language>> = LazyLock::new(|| {
    let file: File = serde_json::from_str(include_str!("substitutions.json"))
        .expect("substitutions.json is valid (checked by a unit test)");
    let mut languages: Vec<Language> = file
        .languages
        .into_iter()
        .map(|(name, spec)| {
            let lang = crate::languages::all()
                .iter()
                .find(|l| l.review.as_deref() == Some(name.as_str()))
                .map_or(Lang::CLike, |l| l.lexer);
            let mut words: Vec<Vec<String>> = spec
                .groups
                .iter()
                .flat_map(|g| &g.members)
                .filter(|m| m.starts_with(|c: char| c.is_alphabetic()))
                .map(|m| m.split_whitespace().map(str::to_owned).collect())
                .collect();
            words.sort_by_key(|w: &Vec<String>| std::cmp::Reverse(w.len()));
            words.dedup();
            Language {
                name,
                lang,
                groups: spec.groups,
                words,
            }
        })
        .collect();
    languages.sort_by(|a, b| a.name.cmp(&b.name));
    languages
});

/// Every rule name some rule set uses, sorted.
pub fn rule_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = LANGUAGES
        .iter()
        .flat_map(|l| l.groups.iter().map(|g| g.rule.as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The rules for a file, by its extension; `None` for languages without any.
pub fn language_of(path: &Path) -> Option<&'static Language> {
    let rules = crate::languages::by_path(path.to_str()?)?
        .review
        .as_deref()?;
    LANGUAGES.iter().find(|l| l.name == rules)
}

/// The candidate places of a file's text, by its path's language; `None`
/// for languages without rules.
pub fn sites_of(path: &Path, text: &str) -> Option<Vec<Site>> {
    let rules = language_of(path)?;
    let id = crate::languages::by_path(path.to_str()?).map_or("", |l| l.id.as_str());
    Some(rules.sites(id, text))
}

/// Whether whitespace (or the text's edge) stands on both sides of a range.
fn spaced(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    before.is_none_or(char::is_whitespace) && after.is_none_or(char::is_whitespace)
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

impl Language {
    /// Every member, with the alternatives of all the classes it is in (the
    /// first class to name an alternative gives its rule).
    pub(super) fn alternatives(
        &'static self,
        member: &str,
    ) -> Option<(&'static str, Vec<Alternative>)> {
        if member.is_empty() {
            return None; // nothing written is no place (removals go the other way)
        }
        let mut spelled = None;
        let mut alternatives: Vec<Alternative> = Vec::new();
        for group in &self.groups {
            let Some(own) = group.members.iter().find(|m| *m == member) else {
                continue;
            };
            spelled = Some(own.as_str());
            for other in group.members.iter().filter(|m| *m != member) {
                if !alternatives.iter().any(|a| a.text == other) {
                    alternatives.push(Alternative {
                        text: other,
                        rule: &group.rule,
                    });
                }
            }
        }
        spelled.map(|s| (s, alternatives))
    }

    /// Candidate places in a file of the language `language_id` (of
    /// `languages.json`), in order: from its syntax tree where nib has the
    /// grammar, else from the lexer ([`Language::lexed_sites`]).
    pub fn sites(&'static self, language_id: &str, text: &str) -> Vec<Site> {
        super::tree::sites(self, language_id, text).unwrap_or_else(|| self.lexed_sites(text))
    }

    /// Candidate places found by the lexer: every member in code (outside
    /// strings and comments), with heuristics for type brackets and loops.
    /// Removals (`negation`) need the syntax tree and are not offered.
    pub fn lexed_sites(&'static self, text: &str) -> Vec<Site> {
        let mut sites = Vec::new();
        for range in code_ranges(text, self.lang) {
            let code = &text[range.clone()];
            let mut i = 0;
            while let Some(c) = code[i..].chars().next() {
                let (len, member) = if is_ident(c) && !c.is_ascii_digit() {
                    self.word_at(&code[i..])
                } else if c.is_ascii_digit() {
                    let len = number_len(&code[i..]);
                    (len, code[i..i + len].to_owned())
                } else if c.is_whitespace() {
                    (c.len_utf8(), String::new())
                } else {
                    let len = self.operator_len(&code[i..]);
                    (len, code[i..i + len].to_owned())
                };
                let start = range.start + i;
                let angle = self.lang != Lang::Hash && (member == "<" || member == ">");
                if angle && !spaced(text, start, start + len) {
                    // `Vec<T>`, `impl<T>`, `Foo<'_>`: a type's brackets, not
                    // a comparison (formatters space comparisons).
                    i += len;
                    continue;
                }
                if member == "in" && loop_in(&text[..start]) {
                    // `for x in xs`: the loop's `in`; `not in` would not parse.
                    i += len;
                    continue;
                }
                if let Some((member, mut alternatives)) = self.alternatives(&member) {
                    alternatives.retain(|a| !a.text.is_empty());
                    if alternatives.is_empty() {
                        i += len;
                        continue;
                    }
                    sites.push(Site {
                        start,
                        end: start + len,
                        member,
                        alternatives,
                    });
                }
                i += len;
            }
        }
        sites
    }

    /// Length of the identifier (or word member, `is not`) at the start of
    /// `code`, and the member it spells with single spaces.
    fn word_at(&self, code: &str) -> (usize, String) {
        let ident_len = |s: &str| s.find(|c: char| !is_ident(c)).unwrap_or(s.len());
        'members: for words in &self.words {
            let mut at = 0;
            for (k, word) in words.iter().enumerate() {
                if k > 0 {
                    let gap = code[at..]
                        .find(|c: char| c != ' ' && c != '\t')
                        .unwrap_or(code.len() - at);
                    if gap == 0 {
                        continue 'members;
                    }
                    at += gap;
                }
                let len = ident_len(&code[at..]);
                if &code[at..at + len] != word {
                    continue 'members;
                }
                at += len;
            }
            return (at, words.join(" "));
        }
        let len = ident_len(code);
        (len, code[..len].to_owned())
    }

    /// Length of the operator at the start of `code`: the longest known
    /// punctuation or member, else one character.
    fn operator_len(&self, code: &str) -> usize {
        let members = self.groups.iter().flat_map(|g| g.members.iter());
        PUNCTUATION
            .iter()
            .copied()
            .chain(members.map(String::as_str))
            .filter(|p| {
                !p.is_empty()
                    && !p.starts_with(|c: char| c.is_alphanumeric())
                    && code.starts_with(p)
            })
            .map(str::len)
            .max()
            .unwrap_or_else(|| code.chars().next().map_or(1, char::len_utf8))
    }
}

/// Whether an `in` after `before` is a `for` loop's (or comprehension's):
/// between the last `for` of the line and it stands only a target (names,
/// commas, dots, brackets, `*`), never an operator or another keyword.
fn loop_in(before: &str) -> bool {
    // At most the last 256 bytes: a loop header is short, and a minified
    // line of many `in`s must not be scanned once per `in`.
    let mut from = before.len().saturating_sub(256);
    while !before.is_char_boundary(from) {
        from += 1;
    }
    let tail = &before[from..];
    let line = &tail[tail.rfind('\n').map_or(0, |i| i + 1)..];
    let last_for = line
        .match_indices("for")
        .filter(|(at, _)| {
            let prev = line[..*at].chars().next_back();
            let next = line[at + 3..].chars().next();
            !prev.is_some_and(is_ident) && next.is_some_and(char::is_whitespace)
        })
        .last();
    let Some((at, _)) = last_for else {
        return false;
    };
    let target = &line[at + 3..];
    let keyword = target.split(|c: char| !is_ident(c)).any(|w| {
        matches!(
            w,
            "in" | "if" | "else" | "and" | "or" | "not" | "is" | "lambda"
        )
    });
    !target.trim().is_empty()
        && !keyword
        && target
            .chars()
            .all(|c| is_ident(c) || c.is_whitespace() || ",.()[]*".contains(c))
}

/// Length of the numeric literal at the start of `code` (`10`, `0.5`, `0x1f`,
/// `1e-3`, `1_000u32`), so `0` and `1` match only as whole numbers.
fn number_len(code: &str) -> usize {
    let b = code.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let exponent_sign = matches!(c, b'+' | b'-')
            && i > 0
            && matches!(b[i - 1], b'e' | b'E')
            && !code.starts_with("0x")
            && b.get(i + 1).is_some_and(u8::is_ascii_digit);
        let fraction = c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit);
        if c.is_ascii_alphanumeric() || c == b'_' || exponent_sign || fraction {
            i += 1;
        } else {
            break;
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loops_in_is_no_membership_test() {
        let py = language_of(Path::new("a.py")).expect("python");
        let members = |text: &str| -> Vec<String> {
            py.lexed_sites(text)
                .iter()
                .filter(|s| s.member.contains("in"))
                .map(|s| text[s.start..s.end].to_owned())
                .collect()
        };
        assert!(members("for x in xs:\n    pass\n").is_empty());
        assert!(members("for (k, v) in d.items(): pass\n").is_empty());
        assert!(members("ys = [f(x) for x in xs]\n").is_empty());
        assert_eq!(members("ys = [x for x in xs if x in seen]\n"), ["in"]);
        assert_eq!(members("if key in table:\n"), ["in"]);
        assert_eq!(members("for x in xs:\n    ok = x not in bad\n"), ["not in"]);
        assert_eq!(members("before = 1\nok = a in b\n"), ["in"]);
    }

    fn found(ext: &str, text: &str) -> Vec<String> {
        let lang = language_of(Path::new(&format!("f.{ext}"))).expect("a language");
        lang.lexed_sites(text)
            .into_iter()
            .map(|s| {
                assert!(text.is_char_boundary(s.start) && text.is_char_boundary(s.end));
                format!("{}@{}", &text[s.start..s.end], s.start)
            })
            .collect()
    }

    #[test]
    fn substitutions_parse_and_every_language_has_groups() {
        assert!(LANGUAGES.len() >= 3);
        for l in LANGUAGES.iter() {
            assert!(!l.groups.is_empty(), "{}", l.name);
            for g in &l.groups {
                assert!(g.members.len() >= 2, "{} {}", l.name, g.rule);
            }
        }
        // Every rule set languages.json names exists, every rule set is
        // used, and the languages sharing one share a lexer.
        for language in crate::languages::all() {
            if let Some(rules) = &language.review {
                let set = LANGUAGES.iter().find(|l| &l.name == rules);
                assert!(set.is_some(), "{}: no rule set {rules}", language.id);
                assert_eq!(set.map(|s| s.lang), Some(language.lexer), "{}", language.id);
            }
        }
        for set in LANGUAGES.iter() {
            assert!(
                crate::languages::all()
                    .iter()
                    .any(|l| l.review.as_deref() == Some(set.name.as_str())),
                "no language uses the {} rules",
                set.name
            );
        }
        assert_eq!(
            language_of(Path::new("a/b.PY")).map(|l| l.lang),
            Some(Lang::Hash)
        );
        assert!(language_of(Path::new("README.md")).is_none());
    }

    #[test]
    fn strings_and_comments_hold_no_sites() {
        assert_eq!(
            found("py", "s = 'a < b' # x == y\nif a < b: pass"),
            ["<@26"]
        );
        assert_eq!(
            found("rs", "let s = r#\"a == b\"#; /* 1 */ x == y // 0"),
            ["==@31"]
        );
        assert_eq!(found("ts", "`a < ${b}` + '1'"), ["+@11"]);
    }

    #[test]
    fn maximal_munch_keeps_longer_operators_whole() {
        assert_eq!(
            found(
                "rs",
                "fn f(a: Vec<u32>) -> u8 { x >>= 1; y => z; a..b; c..=d; ...}"
            ),
            ["1@32", "..@44", "..=@50"]
        );
        // Type brackets are no comparisons; spaced ones are.
        assert_eq!(
            found("rs", "impl<T> F for G<'_> { a < b; c > d; e<f }"),
            ["<@24", ">@31"]
        );
        assert_eq!(found("ts", "let a: Array<string> = b < c;"), ["<@25"]);
        assert_eq!(found("py", "a<b"), ["<@1"]);
        assert_eq!(found("py", "f(**kw) -> a <= b"), ["<=@13"]);
        assert_eq!(
            found("js", "a === b && i++ != 0"),
            ["===@2", "&&@8", "!=@15", "0@18"]
        );
    }

    #[test]
    fn words_match_whole_and_multi_word_members_are_one_site() {
        assert_eq!(
            found("py", "island = x is not None and y not in z or isnt"),
            ["is not@11", "and@23", "not in@29", "or@38"]
        );
        let lang = language_of(Path::new("a.py")).expect("python");
        let site = &lang.lexed_sites("a is  not b")[0];
        assert_eq!((site.member, site.end), ("is not", 9));
        let alternatives: Vec<_> = site.alternatives.iter().map(|a| (a.text, a.rule)).collect();
        assert_eq!(alternatives, [("!=", "identity"), ("is", "identity")]);
    }

    #[test]
    fn numbers_match_only_whole() {
        assert_eq!(
            found("py", "x = [0, 1, 10, 0.5, 0x1, 1e3, 1e-3, a1, 1]"),
            ["0@5", "1@8", "1@40"]
        );
        assert_eq!(
            found("rs", "t.0 + 0..1"),
            ["0@2", "+@4", "0@6", "..@7", "1@9"]
        );
    }

    #[test]
    fn unicode_text_gives_char_boundaries() {
        assert_eq!(
            found("py", "naïve = 'é<' if ünï == 0 else «x»\n# ≤ 1\n"),
            ["==@24", "0@27"]
        );
        assert_eq!(found("py", "éis = 1"), ["1@7"]);
    }
}
