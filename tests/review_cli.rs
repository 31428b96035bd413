//! `nib check` end to end: the real binary, real ONNX Runtime, tiny fixture
//! models (random weights: `--min-confidence 0` turns every scored place
//! into a finding, which is what format tests need) and the default model.

mod common;

use std::path::Path;
use std::process::Output;

use common::{fixture, nib, tree};
use serde_json::Value;

const BUGGY_PY: &str = "def check(x):\n    if x == None:\n        return 0\n    return x\n";

/// `nib check` on the fixture model `model` with `extra` arguments.
fn check(model: &str, extra: &[&str]) -> Output {
    nib()
        .args(["check", "--model"])
        .arg(fixture(model))
        .args(extra)
        .output()
        .expect("spawn nib")
}

/// `nib check` scoring every place of `path` (confidence 0) on `model`,
/// in `format`; with findings, so exit status 1.
fn every_place(model: &str, format: &str, path: &Path) -> Output {
    let out = check(
        model,
        &["--min-confidence", "0", "--format", format, arg(path)],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "bad JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            stderr(out)
        )
    })
}

fn arg(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

#[test]
fn exit_status_says_whether_there_are_findings() {
    let dir = tree(&[
        ("buggy.py", BUGGY_PY.as_bytes()),
        ("quiet.py", b"# x == None\nprint('a < b')\n"),
    ]);
    let buggy = dir.path().join("buggy.py");
    let out = check("llama", &["--min-confidence", "0", arg(&buggy)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(":2:10: nib/"), "{text}");

    let out = check(
        "llama",
        &["--min-confidence", "0", "--exit-zero", arg(&buggy)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!out.stdout.is_empty());

    // Strings and comments hold no places, so nothing to find.
    let quiet = dir.path().join("quiet.py");
    let out = check("llama", &["--min-confidence", "0", arg(&quiet)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("No findings (1 file checked)"));
}

#[test]
fn json_output_follows_the_schema() {
    let dir = tree(&[("buggy.py", BUGGY_PY.as_bytes())]);
    let out = every_place("llama", "json", dir.path());
    let v = json(&out);
    assert_eq!(v["version"], 1);
    assert_eq!(v["files_checked"], 1);
    let findings = v["findings"].as_array().expect("findings");
    // `==` and `0`: every place is a finding at confidence 0.
    assert_eq!(findings.len(), 2);
    assert_eq!(v["summary"]["findings"], 2);
    assert_eq!(v["summary"]["sites"], 2);
    let first = &findings[0];
    assert!(first["path"].as_str().expect("path").ends_with("buggy.py"));
    assert_eq!(
        (&first["start"]["line"], &first["start"]["column"]),
        (&2.into(), &10.into())
    );
    assert_eq!(first["source_line"], "    if x == None:");
    assert!(["nib/equality", "nib/identity"].contains(&first["rule"].as_str().expect("rule")));
    let confidence = first["confidence"].as_f64().expect("confidence");
    assert!((0.0..=1.0).contains(&confidence));
    assert!(["!=", "is"].contains(&first["fix"]["replacement"].as_str().expect("fix")));
}

#[test]
fn sarif_output_has_the_required_keys_and_regions_inside_the_file() {
    let dir = tree(&[("src/buggy.py", BUGGY_PY.as_bytes())]);
    let out = every_place("llama", "sarif", dir.path());
    let v = json(&out);
    assert_eq!(v["version"], "2.1.0");
    assert!(v["$schema"].as_str().expect("schema").contains("sarif"));
    let run = &v["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "nib");
    assert!(run["tool"]["driver"]["version"].is_string());
    let rules: Vec<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| r["id"].as_str().expect("rule id"))
        .collect();
    let lines: Vec<&str> = BUGGY_PY.lines().collect();
    let results = run["results"].as_array().expect("results");
    assert_eq!(results.len(), 2);
    for r in results {
        let rule = r["ruleId"].as_str().expect("ruleId");
        assert_eq!(
            rules.get(r["ruleIndex"].as_u64().expect("index") as usize),
            Some(&rule)
        );
        assert_eq!(r["level"], "warning");
        assert!(
            r["message"]["text"]
                .as_str()
                .expect("message")
                .contains("the model expects")
        );
        let location = &r["locations"][0]["physicalLocation"];
        assert!(
            location["artifactLocation"]["uri"]
                .as_str()
                .expect("uri")
                .ends_with("src/buggy.py")
        );
        let region = &location["region"];
        let n = |k: &str| region[k].as_u64().expect("region number") as usize;
        assert!((1..=lines.len()).contains(&n("startLine")) && n("endLine") == n("startLine"));
        let line_chars = lines[n("startLine") - 1].chars().count();
        assert!(n("startColumn") >= 1 && n("startColumn") < n("endColumn"));
        assert!(n("endColumn") <= line_chars + 1);
        let replacement = &r["fixes"][0]["artifactChanges"][0]["replacements"][0];
        assert_eq!(replacement["deletedRegion"], *region);
        assert!(replacement["insertedContent"]["text"].is_string());
    }
}

/// `::warning file=…,line=…,col=…,endLine=…,endColumn=…,title=…::message`,
/// with properties free of unescaped `,` `:` and newlines.
fn parse_workflow_command(line: &str) -> Vec<(String, String)> {
    let rest = line.strip_prefix("::warning ").expect("a warning command");
    let (properties, message) = rest.split_once("::").expect("properties::message");
    assert!(!message.is_empty() && !message.contains(['\r', '\n']));
    properties
        .split(',')
        .map(|p| {
            let (k, v) = p.split_once('=').expect("key=value");
            assert!(!v.contains(':'), "unescaped ':' in {p}");
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

#[test]
fn github_lines_are_workflow_commands() {
    let dir = tree(&[("a,b:c.py", BUGGY_PY.as_bytes())]);
    let out = every_place("llama", "github", dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    for line in lines {
        let props = parse_workflow_command(line);
        let keys: Vec<&str> = props.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["file", "line", "col", "endLine", "endColumn", "title"]
        );
        assert!(props[0].1.ends_with("a%2Cb%3Ac.py"), "{line}");
        for (_, v) in &props[1..5] {
            assert!(v.parse::<usize>().is_ok_and(|n| n >= 1), "{line}");
        }
        assert!(props[5].1.starts_with("nib/"));
    }
}

#[test]
fn output_flag_writes_the_file_and_nothing_to_stdout() {
    let dir = tree(&[("buggy.py", BUGGY_PY.as_bytes())]);
    let report = dir.path().join("out/report.json");
    std::fs::create_dir(dir.path().join("out")).expect("mkdir");
    let file = dir.path().join("buggy.py");
    let out = check(
        "llama",
        &[
            "--min-confidence",
            "0",
            "--format",
            "json",
            "--output",
            arg(&report),
            arg(&file),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&report).expect("report written"))
        .expect("JSON");
    assert_eq!(v["summary"]["findings"], 2);
}

#[test]
fn a_missing_path_is_an_error() {
    let out = check("llama", &["no/such/dir"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("cannot check `no/such/dir`") && err.contains("No such file"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn a_broken_model_is_an_error() {
    let dir = tree(&[("buggy.py", BUGGY_PY.as_bytes())]);
    let out = nib()
        .args(["check", "--model", "no/such/model", arg(dir.path())])
        .output()
        .expect("spawn");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no/such/model"), "{}", stderr(&out));
}

#[test]
fn ignored_hidden_and_unsupported_files_are_not_checked() {
    let dir = tree(&[
        (".gitignore", b"ignored.py\nbuild/\n"),
        ("ignored.py", BUGGY_PY.as_bytes()),
        ("build/gen.py", BUGGY_PY.as_bytes()),
        (".hidden/secret.py", BUGGY_PY.as_bytes()),
        ("notes.md", b"x == None\n"),
        ("src/kept.py", BUGGY_PY.as_bytes()),
    ]);
    let out = every_place("llama", "json", dir.path());
    let v = json(&out);
    assert_eq!(v["files_checked"], 1, "{}", stderr(&out));
    for f in v["findings"].as_array().expect("findings") {
        assert!(
            f["path"].as_str().expect("path").ends_with("src/kept.py"),
            "{f}"
        );
    }
}

#[test]
fn binary_and_non_utf8_files_are_skipped_with_a_warning() {
    let dir = tree(&[
        ("latin1.py", b"x = '\xe9t\xe9' == None\n"),
        ("blob.py", b"\x00\x01 == \x02"),
        ("ok.py", b"print('fine')\n"),
    ]);
    let out = check("llama", &["--format", "json", arg(dir.path())]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("latin1.py: not UTF-8 text"), "{err}");
    assert!(err.contains("blob.py: binary file"), "{err}");
    let v = json(&out);
    assert_eq!(
        (&v["files_checked"], &v["summary"]["files_skipped"]),
        (&1.into(), &2.into())
    );
}

#[test]
fn models_without_fim_markers_score_the_rest_of_the_line() {
    let dir = tree(&[("buggy.py", BUGGY_PY.as_bytes())]);
    let out = every_place("gpt2", "json", dir.path());
    let v = json(&out);
    assert_eq!(v["summary"]["sites_scored"], 2);
    assert_eq!(v["findings"].as_array().expect("findings").len(), 2);
}

/// The case review exists for, on nib's own model (no `--model`). Measured
/// on the shipped 5M model: `is` at 0.60, so it prefers `is` but stays
/// under the default threshold (0.8) until the fine-tuned model lands.
#[test]
fn the_default_model_prefers_is_to_eq_none() {
    let dir = tree(&[("check.py", BUGGY_PY.as_bytes())]);
    let out = nib()
        .env_remove("NIB_MODEL")
        .args(["check", "--min-confidence", "0", "--format", "json"])
        .arg(dir.path().join("check.py"))
        .output()
        .expect("spawn");
    let v = json(&out);
    let finding = v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["start"]["line"] == 2)
        .expect("a finding on `x == None`");
    let confidence = finding["confidence"].as_f64().expect("confidence");
    eprintln!("default model: `is` for `== None` at {confidence:.3}");
    assert_eq!(finding["fix"]["replacement"], "is");
    assert_eq!(finding["rule"], "nib/identity");
    assert!(confidence > 0.5, "the model prefers `==`: {confidence}");
}

/// Places come from the syntax tree: every scored place is a finding here,
/// and none is a type bracket, a loop's `in`, a macro's `!` or a
/// replacement that would not parse (`&a[..=]`); expressions in f-strings
/// and negations are places.
#[test]
fn findings_are_only_where_a_replacement_still_parses() {
    let dir = tree(&[
        (
            "lib.rs",
            b"fn f(a: Vec<u32>, n: usize) -> bool {\n    let r = &a[..];\n    println!(\"{}\", r.len());\n    !a.is_empty() && n < 2\n}\n",
        ),
        ("app.py", b"for x in xs:\n    s = f\"{x + 1}\"\n"),
    ]);
    let out = every_place("llama", "json", dir.path());
    let v = json(&out);
    let found: Vec<(String, u64, u64, String)> = v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            let path = f["path"].as_str().expect("path");
            let name = Path::new(path)
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            (
                name,
                f["start"]["line"].as_u64().expect("line"),
                f["start"]["column"].as_u64().expect("column"),
                f["fix"]["replacement"].as_str().expect("fix").to_owned(),
            )
        })
        .collect();
    let at = |file: &str, line: u64| -> Vec<u64> {
        found
            .iter()
            .filter(|f| f.0 == file && f.1 == line)
            .map(|f| f.2)
            .collect()
    };
    assert!(
        at("lib.rs", 1).is_empty(),
        "`Vec<u32>` is a type: {found:?}"
    );
    assert!(
        at("lib.rs", 2).is_empty(),
        "`&a[..=]` would not parse: {found:?}"
    );
    assert!(
        at("lib.rs", 3).is_empty(),
        "`println!` is a macro: {found:?}"
    );
    assert_eq!(at("lib.rs", 4), [5, 19, 24], "`!`, `&&` and `<`: {found:?}");
    assert!(at("app.py", 1).is_empty(), "the loop's `in`: {found:?}");
    assert_eq!(
        at("app.py", 2),
        [14, 16],
        "`+` and `1` inside the f-string: {found:?}"
    );
    let negation = found
        .iter()
        .find(|f| f.0 == "lib.rs" && f.1 == 4 && f.2 == 5)
        .expect("`!`");
    assert_eq!(negation.3, "", "the negation's fix removes it");
}

/// `nib sites` (a file, and many texts through `--jsonl`) gives the places
/// `nib check` scores: one answer a line, in order, bad lines answered with
/// an error and the rest still served.
#[test]
fn sites_lists_the_places_of_a_file_and_of_many_texts_in_one_process() {
    use std::io::Write as _;
    let dir = tree(&[("a.py", BUGGY_PY.as_bytes())]);
    let one = nib()
        .args(["sites"])
        .arg(dir.path().join("a.py"))
        .output()
        .expect("spawn nib");
    assert!(
        one.status.success(),
        "{}",
        String::from_utf8_lossy(&one.stderr)
    );
    let one: Value = serde_json::from_slice(&one.stdout).expect("json");
    let members: Vec<&str> = one["sites"]
        .as_array()
        .expect("sites")
        .iter()
        .map(|s| s["member"].as_str().expect("member"))
        .collect();
    assert_eq!(members, ["==", "0"]);

    let requests = [
        serde_json::json!({"path": "a.py", "text": BUGGY_PY}).to_string(),
        "not json".to_owned(),
        serde_json::json!({"path": "notes.txt", "text": "a == b"}).to_string(),
        // Multi-byte text: offsets are bytes; `..` in a slice gets no `..=`
        // (it would not parse).
        serde_json::json!({"path": "b.rs", "text": "fn f(é: &[u8]) -> bool { é[..].len()==0 }\n"})
            .to_string(),
    ];
    let mut child = nib()
        .args(["sites", "--jsonl"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn nib");
    let mut stdin = child.stdin.take().expect("stdin");
    for r in &requests {
        writeln!(stdin, "{r}").expect("write");
    }
    stdin.write_all(b"\xff\n").expect("write");
    drop(stdin);
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success());
    let answers: Vec<Value> = String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
        .collect();
    assert_eq!(answers.len(), 5);
    assert_eq!(answers[0]["sites"], one["sites"]);
    assert!(
        answers[1]["error"]
            .as_str()
            .expect("error")
            .contains("not a request")
    );
    assert!(
        answers[2]["error"]
            .as_str()
            .expect("error")
            .contains("no review rules")
    );
    assert!(answers[4]["error"].is_string());
    let text = "fn f(é: &[u8]) -> bool { é[..].len()==0 }\n";
    let sites = answers[3]["sites"].as_array().expect("sites");
    for s in sites {
        let (start, end) = (
            s["start"].as_u64().expect("start") as usize,
            s["end"].as_u64().expect("end") as usize,
        );
        assert_eq!(&text[start..end], s["member"].as_str().expect("member"));
        for a in s["alternatives"].as_array().expect("alternatives") {
            assert_ne!(a["text"], "..=", "`&é[..=]` does not parse");
        }
    }
    assert!(sites.iter().any(|s| s["member"] == "=="));
}
