//! What nib never does: run or load anything from the workspace it works
//! in, or open a network connection (ONNX Runtime's telemetry included).
//! The real binary, in a checkout planted with look-alikes of what nib
//! searches for, and under `strace` (installed by scripts/test.sh).

mod common;
mod lsp_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use lsp_support::{Lsp, TIMEOUT, llama};
use serde_json::{Value, json};

/// A checkout that would take over nib if nib trusted its working folder:
/// a Python package `onnxruntime` and a `python3` that leave a mark when
/// run, and libraries where nib looks for ONNX Runtime and CUDA.
struct Planted {
    _tmp: tempfile::TempDir,
    checkout: PathBuf,
    home: PathBuf,
    marks: PathBuf,
}

fn planted() -> Planted {
    let tmp = tempfile::tempdir().expect("tempdir");
    let checkout = tmp.path().join("checkout");
    let home = tmp.path().join("home");
    let marks = tmp.path().join("marks");
    for dir in [
        "onnxruntime/capi",
        "lib/python3.11/site-packages/onnxruntime/capi",
        "nvidia/cudnn/lib",
        "nvidia/cuda_runtime/lib",
        "lib",
    ] {
        std::fs::create_dir_all(checkout.join(dir)).expect("mkdir");
    }
    std::fs::create_dir_all(&home).expect("mkdir");
    std::fs::create_dir_all(&marks).expect("mkdir");
    let write = |path: &str, text: &str| std::fs::write(checkout.join(path), text).expect("write");
    write(
        "onnxruntime/__init__.py",
        &format!(
            "open({:?}, 'w').write('imported')\n",
            marks.join("python-import")
        ),
    );
    write(
        "python3",
        &format!("#!/bin/sh\necho ran > {:?}\n", marks.join("python3-run")),
    );
    for lib in [
        "onnxruntime/capi/libonnxruntime.so.99.0.0",
        "nvidia/cudnn/lib/libcudnn.so.9",
        "nvidia/cuda_runtime/lib/libcudart.so.13",
        "lib/libonnxruntime.so",
        "lib/python3.11/site-packages/onnxruntime/capi/libonnxruntime.so.1.32.0",
    ] {
        write(lib, "not a library");
    }
    write(
        "check.py",
        "def f(x):\n    if x == None:\n        return 0\n    return x\n",
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            checkout.join("python3"),
            std::fs::Permissions::from_mode(0o755),
        )
        .expect("chmod");
    }
    Planted {
        _tmp: tmp,
        checkout,
        home,
        marks,
    }
}

impl Planted {
    /// nib in the checkout, with an empty home (no per-user ONNX Runtime,
    /// so the search goes on to Python) and `.` first on `PATH`.
    fn nib(&self) -> Command {
        let mut cmd = common::nib();
        let path = std::env::var("PATH").unwrap_or_default();
        cmd.current_dir(&self.checkout)
            .env("HOME", &self.home)
            .env("PATH", format!(".:{path}"))
            .env("NIB_MODEL", llama())
            .env_remove("ORT_DYLIB_PATH")
            .env_remove("VIRTUAL_ENV")
            .env_remove("XDG_DATA_HOME")
            .env_remove("XDG_CACHE_HOME");
        cmd
    }

    fn assert_untouched(&self, what: &str) {
        let marks: Vec<_> = std::fs::read_dir(&self.marks)
            .expect("marks")
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        assert!(marks.is_empty(), "{what} ran workspace code: {marks:?}");
    }
}

fn strace() -> PathBuf {
    let path = PathBuf::from("/usr/bin/strace");
    assert!(
        path.is_file(),
        "strace is missing (scripts/test.sh installs it: apt-get install strace)"
    );
    path
}

/// The files a traced process opened or ran inside `dir` (its working
/// folder): under `dir`'s absolute path, or relative, from strace's log.
fn touched_in(log: &Path, dir: &Path) -> Vec<String> {
    let dir = dir.display().to_string();
    std::fs::read_to_string(log)
        .expect("strace log")
        .lines()
        .filter(|l| l.contains("openat(") || l.contains("execve("))
        .filter(|l| {
            // The first quoted argument is the path.
            let path = l.split('"').nth(1).unwrap_or_default();
            path.starts_with(&dir) || !path.starts_with('/')
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn nothing_from_the_workspace_is_run_or_loaded() {
    let p = planted();
    let log = p.checkout.parent().expect("tmp").join("strace.log");
    let out = Command::new(strace())
        .args(["-f", "-qq", "-e", "trace=openat,execve", "-o"])
        .arg(&log)
        .arg(env!("CARGO_BIN_EXE_nib"))
        .args(["doctor", "--format", "json"])
        .current_dir(&p.checkout)
        .env("HOME", &p.home)
        .env(
            "PATH",
            format!(".:{}", std::env::var("PATH").unwrap_or_default()),
        )
        .env("NIB_MODEL", llama())
        // Relative: it would name the checkout's `lib/python3.11/…`.
        .env("VIRTUAL_ENV", ".")
        .env("NIB_CUDA_LIBS", "nvidia/cudnn/lib:lib")
        .env_remove("ORT_DYLIB_PATH")
        .output()
        .expect("run nib doctor under strace");
    p.assert_untouched("nib doctor");
    let from_checkout = touched_in(&log, &p.checkout);
    assert!(
        from_checkout.is_empty(),
        "nib doctor opened or ran files of the workspace:\n{}\n{}",
        from_checkout.join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );

    // nib check reads the checkout's sources, and only them.
    let out = p
        .nib()
        .args(["check", "--format", "json", "."])
        .output()
        .expect("nib check");
    p.assert_untouched("nib check");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("onnxruntime/capi"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The server, started in the checkout as an editor would.
    let mut cmd = p.nib();
    cmd.args(["serve", "--stdio"]);
    let mut lsp = Lsp::spawn_command(cmd);
    lsp.initialize(json!({}), Value::Null);
    let status = lsp.status();
    assert!(status.get("state").is_some(), "{status}");
    assert_eq!(lsp.shutdown_and_exit().code(), Some(0));
    p.assert_untouched("nib serve");
}

/// Where this machine's ONNX Runtime is (the tests need one anyway).
fn onnxruntime_library() -> String {
    let v = common::nib_json(&["doctor", "--model", &llama(), "--format", "json"]);
    v["runtime"]["library"]
        .as_str()
        .unwrap_or_else(|| panic!("no ONNX Runtime: {v}"))
        .to_owned()
}

/// Name-service sockets glibc's user lookups try (`getpwuid` in the
/// interpreter nib asks where CUDA libraries live): local, never off the
/// machine.
const NAME_SERVICE_SOCKETS: &[&str] = &["/var/run/nscd/socket", "/run/systemd/userdb/"];

/// Internet sockets a traced process created (which any send off the
/// machine needs), and connections to anything but a local name service,
/// from strace's log.
fn network_calls(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .expect("strace log")
        .lines()
        .filter(|l| {
            let internet = ["AF_INET", "AF_INET6", "AF_PACKET"]
                .iter()
                .any(|family| l.contains(&format!("({family},")));
            let reaches = l.contains("connect(")
                && !NAME_SERVICE_SOCKETS
                    .iter()
                    .any(|s| l.contains(&format!("sun_path=\"{s}")));
            internet || reaches
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn no_telemetry_and_no_socket_in_any_subcommand() {
    let library = onnxruntime_library();
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).expect("mkdir");
    let traced = |name: &str| {
        let log = tmp.path().join(format!("{name}.log"));
        let mut cmd = Command::new(strace());
        cmd.args(["-f", "-qq", "-e", "trace=network", "-o"])
            .arg(&log)
            .arg(env!("CARGO_BIN_EXE_nib"))
            .env("HOME", &home)
            .env("ORT_DYLIB_PATH", &library)
            // nib itself must turn the telemetry off.
            .env_remove("ORT_DISABLE_TELEMETRY")
            .env_remove("XDG_CACHE_HOME");
        (cmd, log)
    };
    let mut logs = Vec::new();
    for (name, args) in [
        (
            "generate",
            vec![
                "generate",
                "--model",
                &llama(),
                "--prompt",
                "def f(",
                "--max-tokens",
                "4",
            ],
        ),
        ("doctor", vec!["doctor", "--model", &llama()]),
    ] {
        let (mut cmd, log) = traced(name);
        let out = cmd.args(&args).output().expect("run nib under strace");
        assert!(
            out.status.success(),
            "nib {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        logs.push((name, log));
    }
    let (mut cmd, log) = traced("serve");
    cmd.args(["serve", "--stdio", "--model", &llama(), "--device", "cpu"]);
    let mut lsp = Lsp::spawn_command(cmd);
    lsp.initialize(json!({}), json!({"nib": {"debounceMs": 0}}));
    lsp.wait_state("ready", TIMEOUT);
    lsp.open("file:///p/a.py", "python", "import os\n\nx = \n");
    lsp.inline("file:///p/a.py", 2, 4);
    assert_eq!(lsp.shutdown_and_exit().code(), Some(0));
    logs.push(("serve", log));

    for (name, log) in &logs {
        let calls = network_calls(log);
        assert!(
            calls.is_empty(),
            "nib {name} used the network:\n{}",
            calls.join("\n")
        );
    }
    let telemetry = home.join(".cache/Microsoft");
    assert!(
        !telemetry.exists(),
        "ONNX Runtime wrote telemetry to {}",
        telemetry.display()
    );
}

/// With a server backend, the one address nib connects to is the server's:
/// a redirect elsewhere is not followed, and no proxy from the environment
/// is used.
#[test]
fn a_server_backend_connects_only_to_its_url() {
    use std::io::{BufRead, BufReader, Write};
    // A server that redirects every request to another local port.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let elsewhere = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let other = elsewhere.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 2 {
                line.clear();
            }
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:{other}/v1/completions\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = tmp.path().join("remote.log");
    let url = format!("http://127.0.0.1:{port}");
    let out = Command::new(strace())
        .args(["-f", "-qq", "-e", "trace=connect", "-o"])
        .arg(&log)
        .arg(env!("CARGO_BIN_EXE_nib"))
        .args([
            "generate",
            "--prompt",
            "x",
            "--backend",
            "openai",
            "--url",
            &url,
        ])
        .env("HTTP_PROXY", format!("http://127.0.0.1:{other}"))
        .env("ALL_PROXY", format!("http://127.0.0.1:{other}"))
        .output()
        .expect("run nib under strace");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("answered 307: a redirect to"));
    let connects: Vec<String> = std::fs::read_to_string(&log)
        .expect("strace log")
        .lines()
        .filter(|l| l.contains("connect(") && l.contains("AF_INET"))
        .map(str::to_owned)
        .collect();
    assert!(!connects.is_empty(), "no connection traced");
    for call in &connects {
        assert!(
            call.contains(&format!("sin_port=htons({port})")),
            "connected elsewhere: {call}"
        );
    }
}
