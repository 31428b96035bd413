//! `nib check`'s adoption controls end to end through the real binary:
//! suppression comments, configuration discovery, rule selection,
//! exclusion, baselines, `--diff` on a real git repository, stdin,
//! `--fail-level`, `--jobs` and the output formats.
//!
//! The fixture model has random weights, so every test scores with
//! `--min-confidence 0` (each scored place becomes a finding) and uses
//! places with one alternative (`True`/`False`: `boolean-literal`), so no
//! assertion depends on which alternative a CPU's rounding prefers.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// Four `boolean-literal` places, one per line 1–4.
const FLAGS: &str = "a = True\nb = False\nc = True\nd = False\n";

/// [`common::tree`] of text files.
fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let files: Vec<(&str, &[u8])> = files.iter().map(|(p, t)| (*p, t.as_bytes())).collect();
    common::tree(&files)
}

fn check_in(dir: &Path, args: &[&str]) -> Output {
    common::nib()
        .current_dir(dir)
        .args(["check", "--model"])
        .arg(common::fixture("llama"))
        .args(["--device", "cpu", "--threads", "1", "--min-confidence", "0"])
        .args(args)
        .output()
        .expect("spawn nib")
}

fn json_in(dir: &Path, args: &[&str]) -> Value {
    let out = check_in(dir, &[&["--format", "json"], args].concat());
    assert!(
        out.status.code().is_some_and(|c| c < 2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// (path, line) of each finding.
fn places(v: &Value) -> Vec<(String, u64)> {
    v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["path"].as_str().expect("path").to_owned(),
                f["start"]["line"].as_u64().expect("line"),
            )
        })
        .collect()
}

fn lines_of(v: &Value, path: &str) -> Vec<u64> {
    places(v)
        .into_iter()
        .filter(|(p, _)| p == path)
        .map(|(_, l)| l)
        .collect()
}

#[test]
fn suppression_comments_silence_their_line_or_the_next() {
    let text = "a = True  # nib: ignore\n\
                b = False  # nib: ignore[identity]\n\
                # nib: ignore[boolean-literal]\n\
                c = True\n\
                d = False\n\
                s = \"nib: ignore\"; e = True\n";
    let dir = tree(&[("app.py", text)]);
    let v = json_in(dir.path(), &["app.py"]);
    // Line 1: all rules; line 2: another rule only; line 4: the comment
    // line above; line 6: the marker is in a string, not a comment.
    assert_eq!(lines_of(&v, "app.py"), [2, 5, 6]);
}

#[test]
fn the_closest_configuration_applies_to_each_file() {
    let dir = tree(&[
        ("nib.toml", "exclude = [\"gen/\"]\n"),
        ("top.py", FLAGS),
        ("gen/made.py", FLAGS),
        (
            "pkg/pyproject.toml",
            "[project]\nname = \"pkg\"\n\n[tool.nib]\nignore = [\"boolean-literal\"]\n",
        ),
        ("pkg/inner.py", FLAGS),
        ("other/pyproject.toml", "[project]\nname = \"other\"\n"),
        ("other/plain.py", FLAGS),
    ]);
    let v = json_in(dir.path(), &["."]);
    assert_eq!(lines_of(&v, "top.py"), [1, 2, 3, 4]);
    assert!(
        lines_of(&v, "gen/made.py").is_empty(),
        "excluded by nib.toml"
    );
    assert!(
        lines_of(&v, "pkg/inner.py").is_empty(),
        "ignored by [tool.nib]"
    );
    // A pyproject.toml without [tool.nib] is no configuration: the walk
    // goes on up to nib.toml.
    assert_eq!(lines_of(&v, "other/plain.py"), [1, 2, 3, 4]);
    assert_eq!(v["files_checked"], 3);
}

#[test]
fn command_line_rules_and_exclusions() {
    let dir = tree(&[("a.py", FLAGS), ("vendor/b.py", FLAGS)]);
    let v = json_in(dir.path(), &["--ignore", "boolean-literal", "."]);
    assert!(places(&v).is_empty());
    let v = json_in(dir.path(), &["--select", "identity,comparison", "."]);
    assert!(places(&v).is_empty(), "no place of those rules");
    let v = json_in(dir.path(), &["--exclude", "vendor/", "."]);
    assert_eq!(lines_of(&v, "a.py").len(), 4);
    assert!(lines_of(&v, "vendor/b.py").is_empty());

    let out = check_in(dir.path(), &["--select", "off-by-two", "."]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown rule `off-by-two`") && err.contains("identity"),
        "{err}"
    );
    std::fs::write(dir.path().join("nib.toml"), "min-confidence = 3\n").expect("write");
    let out = check_in(dir.path(), &["."]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nib.toml"));
}

#[test]
fn a_baseline_accepts_todays_findings_and_reports_new_ones() {
    let dir = tree(&[("a.py", FLAGS)]);
    let out = check_in(
        dir.path(),
        &["--baseline", "base.json", "--write-baseline", "."],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = check_in(dir.path(), &["--baseline", "base.json", "."]);
    assert_eq!(out.status.code(), Some(0), "every finding is accepted");

    // Code moved down and a new line: only the new line is reported.
    let moved = format!("import os\n\n{FLAGS}e = True\n");
    std::fs::write(dir.path().join("a.py"), moved).expect("write");
    let v = json_in(dir.path(), &["--baseline", "base.json", "."]);
    assert_eq!(lines_of(&v, "a.py"), [7]);

    std::fs::write(
        dir.path().join("bad.json"),
        "{\"version\": 7, \"findings\": []}",
    )
    .expect("write");
    let out = check_in(dir.path(), &["--baseline", "bad.json", "."]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("version 7"));
}

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.email=t@example.com", "-c", "user.name=t"])
        .args(args)
        .status()
        .expect("git");
    assert!(status.success(), "git {args:?}");
}

#[test]
fn diff_reviews_only_the_lines_a_change_touched() {
    let dir = tree(&[("a.py", FLAGS), ("same.py", FLAGS)]);
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["commit", "-qm", "start"]);
    // An uncommitted edit of line 3, a committed one of line 1 after the
    // base, and an untracked file.
    let edited = FLAGS.replace("a = True", "a = False");
    std::fs::write(dir.path().join("a.py"), &edited).expect("write");
    git(dir.path(), &["commit", "-qam", "edit"]);
    std::fs::write(
        dir.path().join("a.py"),
        edited.replace("c = True", "c = False"),
    )
    .expect("write");
    std::fs::write(dir.path().join("new.py"), "x = True\n").expect("write");
    let v = json_in(dir.path(), &["--diff", "HEAD~1", "."]);
    assert_eq!(lines_of(&v, "a.py"), [1, 3]);
    assert_eq!(lines_of(&v, "new.py"), [1]);
    assert!(lines_of(&v, "same.py").is_empty());
    assert_eq!(v["files_checked"], 2, "unchanged files are not reviewed");

    let out = check_in(dir.path(), &["--diff", "no-such-rev", "."]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-rev"));
}

#[test]
fn stdin_is_reviewed_as_the_named_file() {
    let dir = tree(&[("nib.toml", "ignore = [\"boolean-literal\"]\n")]);
    let run = |name: &str| {
        let mut child = common::nib()
            .current_dir(dir.path())
            .args(["check", "--model"])
            .arg(common::fixture("llama"))
            .args([
                "--min-confidence",
                "0",
                "--format",
                "json",
                "-",
                "--stdin-filename",
                name,
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(FLAGS.as_bytes())
            .expect("write");
        child.wait_with_output().expect("wait")
    };
    let out = run("src/flags.py");
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(
        places(&v).is_empty(),
        "the configuration above the name applies"
    );
    // Outside that folder, no configuration applies.
    let out = run("/elsewhere/flags.py");
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(places(&v).len(), 4);
    assert_eq!(v["findings"][0]["path"], "/elsewhere/flags.py");

    let out = common::nib()
        .args(["check", "-"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("spawn");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--stdin-filename"));
}

#[test]
fn fail_level_decides_the_exit_status() {
    let dir = tree(&[("a.py", FLAGS)]);
    assert_eq!(check_in(dir.path(), &["-q", "."]).status.code(), Some(1));
    assert_eq!(
        check_in(dir.path(), &["-q", "--fail-level", "error", "."])
            .status
            .code(),
        Some(0),
        "warnings only"
    );
    std::fs::write(
        dir.path().join("nib.toml"),
        "[rules.boolean-literal]\nseverity = \"error\"\n",
    )
    .expect("write");
    let out = check_in(
        dir.path(),
        &["--fail-level", "error", "--format", "json", "."],
    );
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["findings"][0]["severity"], "error");
}

#[test]
fn output_is_the_same_bytes_whatever_the_jobs() {
    let files: Vec<(String, String)> = (0..6)
        .map(|i| (format!("m{i}.py"), FLAGS.repeat(i + 1)))
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let dir = tree(&refs);
    let one = check_in(dir.path(), &["--format", "sarif", "."]);
    let two = check_in(dir.path(), &["--format", "sarif", "-j", "2", "."]);
    let again = check_in(dir.path(), &["--format", "sarif", "-j", "2", "."]);
    assert_eq!(one.stdout, two.stdout);
    assert_eq!(two.stdout, again.stdout);
}

#[test]
fn every_format_parses() {
    let dir = tree(&[("a.py", FLAGS), ("b.rs", "fn f() -> bool { true }\n")]);
    for format in ["json", "sarif", "rdjson", "gitlab"] {
        let out = check_in(dir.path(), &["--format", format, "."]);
        let v: Value = serde_json::from_slice(&out.stdout).expect(format);
        assert!(!v.is_null(), "{format}");
    }
    let sarif: Value =
        serde_json::from_slice(&check_in(dir.path(), &["--format", "sarif", "."]).stdout)
            .expect("sarif");
    let rule = &sarif["runs"][0]["tool"]["driver"]["rules"][0];
    for key in ["fullDescription", "help", "helpUri"] {
        assert!(!rule[key].is_null(), "GitHub needs {key}: {rule}");
    }
    let result = &sarif["runs"][0]["results"][0];
    assert!(
        result["partialFingerprints"]["nib/v1"].is_string(),
        "{result}"
    );
    let junit = check_in(dir.path(), &["--format", "junit", "."]);
    let xml = String::from_utf8_lossy(&junit.stdout);
    assert!(
        xml.starts_with("<?xml") && xml.contains("<testsuite name=\"a.py\""),
        "{xml}"
    );
    // The text format streams each file, then the summary.
    let text = String::from_utf8_lossy(&check_in(dir.path(), &["."]).stdout).into_owned();
    assert!(text.trim_end().ends_with("(2 files checked)."), "{text}");
}

#[test]
fn diff_runs_no_filter_or_diff_driver_the_repository_names() {
    let dir = tree(&[("a.py", FLAGS)]);
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["commit", "-qm", "start"]);
    let mark = dir.path().join("MARK");
    let planted = format!("sh -c 'touch {}; cat'", mark.display());
    for (key, value) in [
        ("filter.evil.clean", planted.as_str()),
        ("filter.evil.process", planted.as_str()),
        ("diff.evil.command", planted.as_str()),
        ("diff.evil.textconv", planted.as_str()),
        ("core.fsmonitor", planted.as_str()),
    ] {
        git(dir.path(), &["config", key, value]);
    }
    std::fs::write(
        dir.path().join(".gitattributes"),
        "*.py filter=evil diff=evil\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("a.py"),
        FLAGS.replace("c = True", "c = False"),
    )
    .expect("write");
    let v = json_in(dir.path(), &["--diff", "HEAD", "."]);
    assert_eq!(lines_of(&v, "a.py"), [3]);
    assert!(!mark.exists(), "nib made git run the repository's program");
}

#[test]
fn the_model_comes_from_the_run_configuration_unless_the_command_line_names_one() {
    let dir = tree(&[("nib.toml", "model = \"tools/model\"\n"), ("app.py", FLAGS)]);
    let (_copy, model) = common::folder_copy(&common::fixture("llama"));
    std::fs::create_dir(dir.path().join("tools")).expect("mkdir");
    std::fs::rename(&model, dir.path().join("tools/model")).expect("move the model");
    let run = |extra: &[&str]| {
        let out = common::nib()
            .current_dir(dir.path())
            .env_remove("NIB_MODEL")
            .args([
                "check",
                "--format",
                "json",
                "--min-confidence",
                "0",
                "--threads",
                "1",
            ])
            .args(extra)
            .arg("app.py")
            .output()
            .expect("spawn nib");
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        v["model"].as_str().expect("model").to_owned()
    };
    assert!(
        run(&[]).ends_with("tools/model"),
        "nib.toml's model, from its folder"
    );
    let fixture = common::fixture("llama");
    let named = run(&["--model", fixture.to_str().expect("utf-8")]);
    assert_eq!(named, fixture.display().to_string(), "--model wins");
}
