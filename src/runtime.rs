//! Finding and loading the ONNX Runtime shared library.
//!
//! nib links ONNX Runtime at run time (`ort`'s `load-dynamic`), so one binary
//! serves the CPU build (PyPI `onnxruntime`) and the CUDA build
//! (`onnxruntime-gpu`). The library is searched, in order, at:
//! 1. `ORT_DYLIB_PATH` (a file, or a folder holding the library);
//! 2. beside the executable, or in its `lib/` folder;
//! 3. the per-user folder [`user_lib_dir`] (`~/.local/share/nib/onnxruntime` on Linux),
//!    where `scripts/install-onnxruntime.sh` puts it;
//! 4. an installed `onnxruntime`/`onnxruntime-gpu` Python package.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Serialize;

#[derive(Debug, Clone, thiserror::Error)]
pub enum RuntimeError {
    #[error(
        "ONNX Runtime was not found. Install it with `scripts/install-onnxruntime.sh` \
         (or `pip install onnxruntime`, or `pip install onnxruntime-gpu` for CUDA), \
         or point ORT_DYLIB_PATH at libonnxruntime.so. Searched: {searched}"
    )]
    NotFound { searched: String },
    #[error("ONNX Runtime at {path} could not be loaded: {message}")]
    Load { path: PathBuf, message: String },
    #[error("ONNX Runtime environment could not be created: {0}")]
    Environment(String),
}

/// Where the library came from and what it is.
#[derive(Debug, Clone, Serialize)]
pub struct RuntimeInfo {
    pub library: PathBuf,
    pub found_by: &'static str,
    pub version: String,
    /// Execution providers compiled into the library (not necessarily usable).
    pub providers: Vec<String>,
}

pub struct Runtime {
    pub info: RuntimeInfo,
    pub env: ort::environment::Environment,
}

static RUNTIME: OnceLock<Result<Runtime, RuntimeError>> = OnceLock::new();

/// Loads ONNX Runtime once per process; later calls return the same result.
pub fn runtime() -> Result<&'static Runtime, RuntimeError> {
    RUNTIME.get_or_init(load).as_ref().map_err(Clone::clone)
}

/// The per-user folder that the install script fills.
pub fn user_lib_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "nib").map(|d| d.data_dir().join("onnxruntime"))
}

fn load() -> Result<Runtime, RuntimeError> {
    let (library, found_by) = locate()?;
    let builder = ort::init_from(&library).map_err(|e| RuntimeError::Load {
        path: library.clone(),
        message: e.to_string(),
    })?;
    let env = builder
        .with_name("nib")
        .with_telemetry(false)
        .build()
        .map_err(|e| RuntimeError::Environment(e.to_string()))?;
    let info = RuntimeInfo {
        version: version_of(&library),
        providers: available_providers(),
        library,
        found_by,
    };
    tracing::info!(library = %info.library.display(), version = %info.version, "loaded ONNX Runtime");
    Ok(Runtime { info, env })
}

/// `libonnxruntime.so.1.32.0` → `1.32.0`; the build string is the fallback.
fn version_of(library: &Path) -> String {
    let name = library
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(v) = name.split(".so.").nth(1) {
        return v.to_owned();
    }
    ort::info()
        .split(',')
        .find_map(|p| p.trim().strip_prefix("git-branch=rel-"))
        .unwrap_or("unknown")
        .to_owned()
}

fn available_providers() -> Vec<String> {
    let cpu = "CPUExecutionProvider".to_owned();
    #[cfg(feature = "cuda")]
    {
        use ort::ep::ExecutionProvider;
        if ort::ep::CUDA::is_available().unwrap_or(false) {
            return vec![cpu, "CUDAExecutionProvider".to_owned()];
        }
    }
    vec![cpu]
}

fn locate() -> Result<(PathBuf, &'static str), RuntimeError> {
    let mut searched = Vec::new();
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        let p = PathBuf::from(p);
        // A relative path is taken from the executable's folder, as `ort` does.
        let p = if p.is_relative() {
            exe_dir().map(|d| d.join(&p)).unwrap_or(p)
        } else {
            p
        };
        if let Some(lib) = library_in(&p) {
            return Ok((lib, "ORT_DYLIB_PATH"));
        }
        // An explicit setting that points nowhere is an error, not a fallback.
        return Err(RuntimeError::Load {
            path: p,
            message: "ORT_DYLIB_PATH names no ONNX Runtime library".into(),
        });
    }
    let candidates: Vec<(PathBuf, &'static str)> = exe_dir()
        .into_iter()
        .flat_map(|d| {
            // The release bundle's layout: bin/nib and lib/nib/.
            let bundle = d
                .parent()
                .map(|p| (p.join("lib/nib"), "beside the executable"));
            [
                (d.clone(), "beside the executable"),
                (d.join("lib"), "beside the executable"),
            ]
            .into_iter()
            .chain(bundle)
        })
        .chain(user_lib_dir().map(|d| (d, "per-user folder")))
        .chain(
            python_package_dirs()
                .into_iter()
                .map(|d| (d, "Python package")),
        )
        .collect();
    for (dir, how) in candidates {
        if let Some(lib) = library_in(&dir) {
            return Ok((lib, how));
        }
        searched.push(dir.display().to_string());
    }
    Err(RuntimeError::NotFound {
        searched: searched.join(", "),
    })
}

fn exe_dir() -> Option<PathBuf> {
    std::env::current_exe()
        .ok()?
        .parent()
        .map(Path::to_path_buf)
}

/// The library itself, or the newest `libonnxruntime.so*` in a folder.
fn library_in(path: &Path) -> Option<PathBuf> {
    if path.is_file() {
        return Some(path.to_path_buf());
    }
    let mut libs: Vec<PathBuf> = std::fs::read_dir(path)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n == "libonnxruntime.so"
                    || n.starts_with("libonnxruntime.so.")
                    || n == "libonnxruntime.dylib"
                    || n == "onnxruntime.dll"
            })
        })
        .collect();
    // Versioned names sort after the bare one; the longest version string is the most specific file.
    libs.sort_by_key(|p| p.as_os_str().len());
    libs.pop()
}

/// `onnxruntime/capi` folders of Python environments, without starting Python:
/// the active virtual environment, then user and system site-packages.
fn python_package_dirs() -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Some(venv) = absolute_env_dir("VIRTUAL_ENV") {
        roots.push(venv.join("lib"));
    }
    if let Some(home) = absolute_env_dir("HOME") {
        roots.push(home.join(".local/lib"));
    }
    roots.extend(["/usr/local/lib", "/usr/lib"].map(PathBuf::from));
    let mut out = Vec::new();
    for root in &roots {
        let Ok(entries) = std::fs::read_dir(root) else {
            continue;
        };
        let mut pythons: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("python3"))
            })
            .collect();
        pythons.sort();
        for py in pythons.into_iter().rev() {
            for site in ["site-packages", "dist-packages"] {
                let capi = py.join(site).join("onnxruntime/capi");
                if capi.is_dir() {
                    out.push(capi);
                }
            }
        }
    }
    if out.is_empty() {
        // Interpreters managed elsewhere (pyenv, conda) know their own site-packages.
        out.extend(ask_python());
    }
    out
}

/// Asks `python3` where its `onnxruntime` package lives.
///
/// Security: nib runs in workspaces it does not trust (`nib check` on a
/// pull request, an editor opened on a checkout). Python puts the current
/// folder first on its import path, and a relative `PATH` entry would find
/// a `python3` of the workspace, so the interpreter comes from an absolute
/// `PATH` entry only, runs in `/` with `PYTHON*` variables ignored (`-E`),
/// and its answer counts only as an absolute path.
fn ask_python() -> Option<PathBuf> {
    let script = "import importlib.util as u, os; s = u.find_spec('onnxruntime'); \
                  print(os.path.join(os.path.dirname(s.origin), 'capi') if s and s.origin else '')";
    let python = find_in_path("python3")?;
    let mut cmd = std::process::Command::new(python);
    // pyenv's and conda's `python3` are scripts that search `PATH` again.
    if let Some(path) = absolute_path_entries() {
        cmd.env("PATH", path);
    }
    let out = cmd
        .args(["-E", "-c", script])
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let path = String::from_utf8(out.stdout).ok()?;
    let path = PathBuf::from(path.trim());
    (path.is_absolute() && path.is_dir()).then_some(path)
}

/// `name` in the absolute folders of `PATH` (relative entries, such as `.`
/// or an empty one, would search the current folder).
pub(crate) fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// `PATH` without its relative entries, for a program nib starts.
pub(crate) fn absolute_path_entries() -> Option<std::ffi::OsString> {
    let path = std::env::var_os("PATH")?;
    let kept: Vec<PathBuf> = std::env::split_paths(&path)
        .filter(|dir| dir.is_absolute())
        .collect();
    if kept.is_empty() {
        // An empty `PATH` would be searched as the current folder.
        return Some("/usr/local/bin:/usr/bin:/bin".into());
    }
    std::env::join_paths(kept).ok()
}

/// An absolute folder from an environment variable; a relative one would
/// be taken from the current folder, which may be an untrusted workspace.
fn absolute_env_dir(var: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os(var)?);
    if dir.is_absolute() {
        Some(dir)
    } else {
        tracing::warn!(variable = var, path = %dir.display(), "ignoring a relative path");
        None
    }
}

/// Turns off ONNX Runtime's telemetry (a device id and usage events in
/// `~/.cache/Microsoft/DeveloperTools/.onnxruntime`, and their upload),
/// which the library starts when its environment is created; the C API's
/// `DisableTelemetryEvents` (`with_telemetry(false)`) comes too late for
/// it. Only `ORT_DISABLE_TELEMETRY` stops it, so `main` sets it first
/// thing, and a user's own value is kept.
///
/// Call it before any other thread exists: changing the environment races
/// with threads that read it.
pub fn disable_telemetry_before_threads() {
    if std::env::var_os("ORT_DISABLE_TELEMETRY").is_none() {
        // SAFETY: called at the start of `main`, while the process has one
        // thread, so nothing reads the environment concurrently.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var("ORT_DISABLE_TELEMETRY", "1");
        }
    }
}

/// CUDA libraries the CUDA provider opens, in dependency order.
#[cfg(feature = "cuda")]
const CUDA_LIBRARIES: &[&str] = &[
    "libcudart.so.13",
    "libcublasLt.so.13",
    "libcublas.so.13",
    "libcurand.so.10",
    "libcufft.so.12",
    "libnvrtc.so.13",
    "libcudnn.so.9",
    "libcudnn_graph.so.9",
    "libcudnn_ops.so.9",
    "libcudnn_heuristic.so.9",
    "libcudnn_adv.so.9",
    "libcudnn_cnn.so.9",
    "libcudnn_engines_precompiled.so.9",
    "libcudnn_engines_runtime_compiled.so.9",
];

/// Loads the CUDA 13 and cuDNN 9 libraries that `pip install
/// onnxruntime-gpu[cuda,cudnn]` puts under `site-packages/nvidia/`, or that
/// `NIB_CUDA_LIBS` (folders separated by `:`) names, so the CUDA provider
/// finds them without `LD_LIBRARY_PATH`. Best effort: what is not found is
/// left to the system loader, whose error the provider then reports.
#[cfg(feature = "cuda")]
pub fn preload_cuda_libraries() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        // Absolute folders only: a relative one would be the workspace's.
        let mut dirs: Vec<PathBuf> = std::env::var_os("NIB_CUDA_LIBS")
            .map(|v| {
                std::env::split_paths(&v)
                    .filter(|d| d.is_absolute())
                    .collect()
            })
            .unwrap_or_default();
        for capi in python_package_dirs() {
            // site-packages/onnxruntime/capi → site-packages/nvidia/*/lib
            let Some(site) = capi.parent().and_then(Path::parent) else {
                continue;
            };
            let Ok(entries) = std::fs::read_dir(site.join("nvidia")) else {
                continue;
            };
            dirs.extend(
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path().join("lib"))
                    .filter(|p| p.is_dir()),
            );
        }
        for name in CUDA_LIBRARIES {
            if let Some(path) = dirs.iter().map(|d| d.join(name)).find(|p| p.is_file()) {
                match ort::util::preload_dylib(&path) {
                    Ok(()) => tracing::debug!(library = %path.display(), "preloaded"),
                    Err(e) => tracing::debug!(library = %path.display(), "not preloaded: {e}"),
                }
            }
        }
    });
}
