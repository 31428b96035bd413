//! What the command line writes on stderr: `warning: …` lines, no log
//! records, colour only on a terminal (a real pseudo-terminal, through
//! util-linux's `script`) and never with NO_COLOR; `-q` and `-v`.

mod common;

use std::process::Command;

use common::{fixture, nib, tree};

/// A folder whose check warns once: one file it reviews, one binary file it skips.
fn folder() -> tempfile::TempDir {
    tree(&[("a.py", b"x = 1\n"), ("b.py", b"\xff\xfe\x00bad")])
}

fn check(dir: &std::path::Path, extra: &[&str]) -> std::process::Output {
    nib()
        .current_dir(dir)
        .env_remove("NIB_LOG")
        .env_remove("NO_COLOR")
        .args(["check", "--model"])
        .arg(fixture("llama"))
        .args(extra)
        .arg(".")
        .output()
        .expect("run nib")
}

#[test]
fn warnings_are_plain_lines_without_times_modules_or_colour() {
    let dir = folder();
    let out = check(dir.path(), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr.trim_end(), "warning: skipping ./b.py: binary file");
}

#[test]
fn quiet_drops_warnings_and_the_summary() {
    let dir = folder();
    let out = check(dir.path(), &["-q"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // And -q before the subcommand means the same.
    let out = nib()
        .current_dir(dir.path())
        .env_remove("NIB_LOG")
        .args(["-q", "check", "--model"])
        .arg(fixture("llama"))
        .arg(".")
        .output()
        .expect("run nib");
    assert!(out.stderr.is_empty() && out.stdout.is_empty());
}

#[test]
fn verbose_says_more_and_quiet_with_verbose_is_refused() {
    let dir = folder();
    let out = check(dir.path(), &["-v"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.lines().any(|l| l.starts_with("info: ")), "{stderr}");
    let out = check(dir.path(), &["-q", "-v"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn color_always_colours_even_a_pipe_and_never_never_does() {
    let dir = folder();
    let out = check(dir.path(), &["--color", "always"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("\x1b[1;33mwarning\x1b[0m: skipping"));
    let out = check(dir.path(), &["--color", "never"]);
    assert!(!out.stderr.contains(&0x1b));
}

/// Runs the check with stderr on a pseudo-terminal; returns what it showed.
fn on_a_terminal(dir: &std::path::Path, no_color: Option<&str>) -> Option<String> {
    let cmd = format!(
        "{} check --model {} . 2>&1",
        env!("CARGO_BIN_EXE_nib"),
        fixture("llama").display()
    );
    let mut script = Command::new("script");
    script
        .current_dir(dir)
        .env_remove("NIB_LOG")
        .args(["-qec", &cmd, "/dev/null"]);
    match no_color {
        Some(v) => script.env("NO_COLOR", v),
        None => script.env_remove("NO_COLOR"),
    };
    let out = script.output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn on_a_terminal_warnings_are_coloured_unless_no_color_is_set() {
    let dir = folder();
    let Some(coloured) = on_a_terminal(dir.path(), None) else {
        panic!("util-linux's `script` is needed for this test");
    };
    assert!(
        coloured.contains("\x1b[1;33mwarning\x1b[0m: skipping"),
        "{coloured:?}"
    );
    let plain = on_a_terminal(dir.path(), Some("1")).expect("script runs");
    assert!(plain.contains("warning: skipping"), "{plain:?}");
    assert!(!plain.contains("\x1b[1;33m"), "{plain:?}");
}
