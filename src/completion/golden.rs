//! Golden tests for post-processing: cursor-marked code (`█`) and a raw
//! model output per case, in `fixtures/<language>.txt`; the snapshots in
//! `snapshots/` hold the final suggestion and the code with it applied.
//! Refresh with `INSTA_UPDATE=always cargo test --lib golden` (or
//! `cargo insta review`) and read the diff.
//!
//! Fixture format: `=== name`, then `--- code` (with exactly one `█`), then
//! `--- raw` (the model's output, up to the next `===`; its last newline is
//! not part of it).

use super::{Lang, Shape, finish};

const CURSOR: char = '█';

struct Case {
    name: String,
    code: String,
    raw: String,
}

fn parse(text: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    for block in text.split("=== ").filter(|b| !b.trim().is_empty()) {
        let (name, rest) = block.split_once('\n').expect("a name line");
        let rest = rest.strip_prefix("--- code\n").expect("--- code");
        let (code, raw) = rest.split_once("\n--- raw\n").expect("--- raw");
        let raw = raw.strip_suffix('\n').unwrap_or(raw);
        assert_eq!(code.matches(CURSOR).count(), 1, "{name}: one cursor");
        cases.push(Case {
            name: name.trim().to_owned(),
            code: format!("{code}\n"),
            raw: raw.to_owned(),
        });
    }
    cases
}

fn slug(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn check(language: &str, path: &str, fixtures: &str) {
    let cases = parse(fixtures);
    assert!(cases.len() >= 5, "{language}: too few cases");
    for case in cases {
        let at = case.code.find(CURSOR).expect("cursor");
        let prefix = &case.code[..at];
        let suffix = &case.code[at + CURSOR.len_utf8()..];
        let shape = Shape::new(prefix, suffix, Lang::from_path(Some(path)));
        let out = finish(&case.raw, &shape);
        let applied = format!("{prefix}{}{suffix}", out.as_deref().unwrap_or(""));
        let snapshot = format!(
            "mode: {:?}\nsuggestion: {:?}\n--- applied\n{applied}",
            shape.mode, out
        );
        insta::with_settings!({ description => case.name.clone(), omit_expression => true }, {
            insta::assert_snapshot!(format!("{language}__{}", slug(&case.name)), snapshot);
        });
    }
}

#[test]
fn python() {
    check("python", "app.py", include_str!("fixtures/python.txt"));
}

#[test]
fn rust() {
    check("rust", "lib.rs", include_str!("fixtures/rust.txt"));
}

#[test]
fn typescript() {
    check(
        "typescript",
        "app.ts",
        include_str!("fixtures/typescript.txt"),
    );
}

#[test]
fn go() {
    check("go", "main.go", include_str!("fixtures/go.txt"));
}
