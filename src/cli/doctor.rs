//! `nib doctor`: what nib would run, on what, and why.

use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::{Format, ModelArgs, print_out};
use crate::engine::{Backend, Engine};
use crate::model::ModelInfo;
use crate::runtime::RuntimeInfo;

#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Output: a table for people, or JSON (runtime, device, model).
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

/// `--format json`; `runtime` and `model` are `{"error": "..."}` when they failed.
#[derive(Serialize)]
struct Report {
    /// [`super::JSON_VERSION`].
    version: u32,
    #[serde(with = "either")]
    runtime: Result<RuntimeInfo, String>,
    backend: &'static str,
    device_requested: String,
    device: Option<String>,
    cuda_note: Option<String>,
    /// The inference server's answer, for a remote backend: the models it
    /// serves, or why it cannot be used.
    #[serde(skip_serializing_if = "Option::is_none", with = "either_opt")]
    server: Option<Result<Vec<String>, String>>,
    #[serde(with = "either")]
    model: Result<ModelInfo, String>,
}

/// [`either`] for a value that may be absent.
mod either_opt {
    use serde::{Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(
        value: &Option<Result<T, String>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => super::either::serialize(v, s),
            None => s.serialize_none(),
        }
    }
}

/// Writes `Ok(v)` as `v` and `Err(e)` as `{"error": e}`.
mod either {
    use serde::{Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(
        value: &Result<T, String>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Error<'a> {
            error: &'a str,
        }
        match value {
            Ok(v) => v.serialize(s),
            Err(e) => Error { error: e }.serialize(s),
        }
    }
}

pub fn run(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let runtime = crate::runtime::runtime()
        .map(|r| r.info.clone())
        .map_err(|e| e.to_string());
    let backend = args.model.backend()?;
    let engine: Result<Box<dyn Engine>, String> = args.model.load().map_err(|e| format!("{e:#}"));
    let server = engine
        .as_ref()
        .ok()
        .and_then(|e| e.check_server())
        .map(|answer| answer.map_err(|e| e.to_string()));
    let report = Report {
        version: super::JSON_VERSION,
        runtime,
        backend: backend.name(),
        device_requested: args.model.device.to_string(),
        device: engine.as_ref().ok().map(|e| e.device().to_string()),
        cuda_note: engine
            .as_ref()
            .ok()
            .and_then(|e| e.device_note().map(str::to_owned)),
        server,
        model: engine
            .as_ref()
            .map(|e| e.info().clone())
            .map_err(Clone::clone),
    };
    // A server backend needs no ONNX Runtime, but its server must answer.
    let healthy = (report.runtime.is_ok() || backend != Backend::Onnx)
        && report.model.is_ok()
        && report.server.as_ref().is_none_or(Result::is_ok);
    match args.format {
        Format::Json => print_out(&format!("{}\n", serde_json::to_string_pretty(&report)?))?,
        Format::Text => print_out(&render(&report))?,
    }
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn render(r: &Report) -> String {
    let mut s = String::new();
    let mut line = |k: &str, v: &dyn std::fmt::Display| s.push_str(&format!("{k:<22} {v}\n"));
    match &r.runtime {
        Ok(rt) => {
            line("onnx runtime", &rt.version);
            line(
                "library",
                &format!("{} ({})", rt.library.display(), rt.found_by),
            );
            line("providers", &rt.providers.join(", "));
        }
        Err(e) => line("onnx runtime", &format!("NOT FOUND: {e}")),
    }
    line("backend", &r.backend);
    match &r.server {
        Some(Ok(models)) if models.is_empty() => line("server", &"answers"),
        Some(Ok(models)) => line("server", &format!("answers, serving {}", models.join(", "))),
        Some(Err(e)) => line("server", &format!("NOT ANSWERING: {e}")),
        None => {}
    }
    line("device requested", &r.device_requested);
    if let Some(d) = &r.device {
        line("device in use", d);
    }
    if let Some(n) = &r.cuda_note {
        line("why not cuda", n);
    }
    match &r.model {
        Ok(m) => {
            line("model", &m.path.display());
            line("architecture", &m.architecture);
            line(
                "parameters",
                &format!("{:.1}M (from config)", m.parameters as f64 / 1e6),
            );
            line("layers", &m.layers);
            line("hidden size", &m.hidden_size);
            line(
                "heads (kv)",
                &format!(
                    "{} ({}), head size {}",
                    m.attention_heads, m.kv_heads, m.head_dim
                ),
            );
            line("vocabulary", &m.vocab_size);
            line("context", &m.context_length);
            line(
                "fim",
                &format!(
                    "{}{}",
                    m.fim,
                    if m.fim_spm {
                        ", suffix-prefix-middle"
                    } else {
                        ""
                    }
                ),
            );
            line(
                "dtype",
                &format!(
                    "{}{}",
                    m.dtype,
                    if m.quantized { ", int8 weights" } else { "" }
                ),
            );
            line(
                "kv cache",
                &if m.in_place_kv {
                    "in place (past and present share buffers)"
                } else {
                    "copied each step"
                },
            );
            line(
                "logits",
                &if m.logits_to_keep {
                    "the positions needed only (logits_to_keep)"
                } else {
                    "every position"
                },
            );
        }
        Err(e) => line("model", &format!("NOT LOADED: {e}")),
    }
    s
}
