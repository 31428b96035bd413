//! The command line: argument parsing and one module per subcommand.

mod check;
mod complete;
mod doctor;
mod generate;
mod rule;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::engine::{DeviceRequest, OrtEngine, SessionOptions};

#[derive(Debug, Parser)]
#[command(
    name = "nib",
    version,
    about = "A local code assistant: inline completions and code review over LSP, on ONNX Runtime"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate text from a raw prompt (greedy unless a temperature is given).
    Generate(generate::GenerateArgs),
    /// Print the completion an editor would insert at FILE:LINE:COL (1-based; COL in characters).
    Complete(complete::CompleteArgs),
    /// Review files for likely bugs (exit 1 on findings), for people and CI.
    #[command(after_long_help = check_help())]
    Check(check::CheckArgs),
    /// Explain a review rule (what it finds, why, an example and its fix), or list them.
    Rule(rule::RuleArgs),
    /// Report the ONNX Runtime library, execution providers and model details.
    Doctor(doctor::DoctorArgs),
    /// Run the language server on stdin/stdout (inline completions over LSP).
    Serve(serve::ServeArgs),
}

/// `nib check --help`'s closing text: the rules and the controls.
fn check_help() -> String {
    format!(
        "Rules (`nib rule NAME` explains one):\n{}\n\
         Configuration: nib.toml, or [tool.nib] in pyproject.toml, found above each file \
         (select, ignore, exclude, min-confidence, [rules.NAME] min-confidence and severity).\n\
         Suppress a finding with `nib: ignore` or `nib: ignore[rule]` in a comment on its line \
         or on a comment line above it.",
        crate::review::rules::summary_list()
    )
}

/// Options every subcommand that loads a model takes.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Model folder (exporter layout) or .onnx file. Default: $NIB_MODEL, then nib's own model.
    #[arg(long, global = true, env = "NIB_MODEL")]
    pub model: Option<PathBuf>,
    /// Execution provider: auto, cpu, cuda or cuda:N.
    #[arg(long, global = true, default_value = "auto", value_parser = parse_device)]
    pub device: DeviceRequest,
    /// Threads ONNX Runtime uses for one operator (default: one per core).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
}

fn parse_device(s: &str) -> Result<DeviceRequest, String> {
    s.parse()
}

impl ModelArgs {
    pub fn model_path(&self) -> anyhow::Result<PathBuf> {
        match &self.model {
            Some(p) => Ok(p.clone()),
            None => crate::model::default_model_dir(),
        }
    }

    pub fn session_options(&self) -> SessionOptions {
        SessionOptions {
            device: self.device,
            intra_threads: self.threads,
            ..SessionOptions::default()
        }
    }

    pub fn load(&self) -> anyhow::Result<OrtEngine> {
        let path = self.model_path()?;
        Ok(OrtEngine::load(&path, &self.session_options())?)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Parses arguments, runs the subcommand and maps the result to an exit code:
/// 0 success, 2 error.
pub fn main() -> ExitCode {
    crate::runtime::disable_telemetry_before_threads();
    let cli = Cli::parse();
    init_logging();
    // A panic is a bug, but still an error exit (2), never Rust's 101.
    let run = std::panic::AssertUnwindSafe(|| match cli.command {
        Command::Generate(args) => generate::run(args),
        Command::Check(args) => check::run(args),
        Command::Complete(args) => complete::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Rule(args) => rule::run(args),
        Command::Serve(args) => serve::run(args),
    });
    let result = std::panic::catch_unwind(run).unwrap_or_else(|_| {
        Err(anyhow::anyhow!(
            "internal error (a bug in nib: please report it with the command that caused it)"
        ))
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nib: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Logs go to stderr: stdout carries results (and, for `serve`, the protocol).
/// By default only warnings, as short lines (`WARN message key=value`);
/// `NIB_LOG` (an `EnvFilter`) asks for more, with times and modules. Colours
/// only on a terminal: in a CI log or a file they are noise.
fn init_logging() {
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = match tracing_subscriber::EnvFilter::try_from_env("NIB_LOG") {
        Ok(filter) => builder.with_env_filter(filter).try_init(),
        Err(_) => builder
            .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
            .without_time()
            .with_target(false)
            .try_init(),
    };
}

/// Writes to stdout, treating a closed pipe (`nib ... | head`) as success.
pub(crate) fn print_out(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
