//! The command line: argument parsing and one module per subcommand.

mod check;
mod complete;
mod completions;
mod doctor;
mod generate;
mod output;
mod rule;
mod serve;
mod sites;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::engine::{Api, Backend, DeviceRequest, Engine, RemoteSettings, SessionOptions};

#[derive(Debug, Parser)]
#[command(
    name = "nib",
    version,
    about = "A local code assistant: inline completions and code review over LSP, on ONNX Runtime"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print only results and errors: no warnings, progress or summary.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Say more on stderr: -v what nib does, -vv debugging details (NIB_LOG=FILTER gives full records).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Colour on stderr: auto (on a terminal, unless NO_COLOR is set), always or never.
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t = output::ColorChoice::Auto)]
    color: output::ColorChoice,
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
    /// List the places a review would score in a file, as JSON (no model needed).
    Sites(sites::SitesArgs),
    /// Report the ONNX Runtime library, execution providers and model details.
    Doctor(doctor::DoctorArgs),
    /// Run the language server on stdin/stdout (inline completions over LSP).
    Serve(serve::ServeArgs),
    /// Print a shell completion script: `nib completions bash > ~/.local/share/bash-completion/completions/nib`.
    Completions(completions::CompletionsArgs),
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
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Which engine runs the model: ONNX Runtime here, or an inference server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum BackendArg {
    /// ONNX Runtime in this process.
    #[default]
    Onnx,
    /// An OpenAI-style /v1/completions server (vLLM, TGI, Ollama).
    Openai,
    /// The same API on llama.cpp's samplers (llama.cpp's server, llama-cpp-python).
    #[value(name = "llama.cpp")]
    LlamaCpp,
}

/// Where an inference server is, for `--backend openai` or `llama.cpp`.
/// --model then names the folder with the model's tokenizer.json and
/// config.json; no weights are read.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Engine: onnx (in process), openai or llama.cpp (an inference server at --url).
    #[arg(long, global = true, env = "NIB_BACKEND", value_enum, default_value_t = BackendArg::Onnx)]
    pub backend: BackendArg,
    /// The inference server's base URL, such as http://127.0.0.1:8080 (the only address contacted).
    #[arg(long, global = true, env = "NIB_URL")]
    pub url: Option<String>,
    /// The model name sent to the server (vLLM and Ollama need the one they serve).
    #[arg(long, global = true)]
    pub server_model: Option<String>,
    /// Environment variable holding the server's API key, sent as a bearer token.
    #[arg(long, global = true, value_name = "VAR")]
    pub api_key_env: Option<String>,
    /// Longest one request to the server may take, in seconds.
    #[arg(long, global = true, default_value_t = 30.0)]
    pub timeout: f64,
    /// Who lays out fill-in-the-middle prompts: nib (from --model's tokenizer) or the server
    /// (llama.cpp's /infill, for a model whose tokenizer.json you do not have).
    #[arg(long, global = true, value_enum, default_value_t = FimArg::Nib)]
    pub server_fim: FimArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FimArg {
    /// nib, from --model's tokenizer.
    Nib,
    /// The server (llama.cpp's /infill).
    Server,
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

    pub fn backend(&self) -> anyhow::Result<Backend> {
        let server = &self.server;
        let api = match server.backend {
            BackendArg::Onnx => {
                if server.url.is_some() {
                    anyhow::bail!("--url needs --backend openai or --backend llama.cpp");
                }
                return Ok(Backend::Onnx);
            }
            BackendArg::Openai => Api::OpenAi,
            BackendArg::LlamaCpp => Api::LlamaCpp,
        };
        let url = server
            .url
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("--backend {} needs --url (or $NIB_URL)", api.name()))?;
        if !(server.timeout > 0.0 && server.timeout <= 3600.0) {
            anyhow::bail!("--timeout must be more than 0 and at most 3600 seconds");
        }
        let mut settings = RemoteSettings::new(api, url)?;
        settings.model = server.server_model.clone();
        settings.api_key_env = server.api_key_env.clone();
        settings.timeout = std::time::Duration::from_secs_f64(server.timeout);
        settings.fim = match server.server_fim {
            FimArg::Nib => crate::engine::Fim::Nib,
            FimArg::Server => crate::engine::Fim::Server,
        };
        Ok(Backend::Remote(settings))
    }

    pub fn load(&self) -> anyhow::Result<Box<dyn Engine>> {
        let path = self.model_path()?;
        Ok(crate::engine::load(
            &path,
            &self.session_options(),
            &self.backend()?,
        )?)
    }
}

/// The schema version every `--format json` output carries as `version`:
/// fields may be added within a version, never renamed or removed.
pub(crate) const JSON_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// For programs: an object with a schema `version`.
    Json,
}

/// Parses arguments, runs the subcommand and maps the result to an exit code:
/// 0 success, 2 error.
pub fn main() -> ExitCode {
    crate::runtime::disable_telemetry_before_threads();
    let cli = Cli::parse();
    output::init_logging(cli.quiet, cli.verbose, cli.color);
    let (quiet, color) = (cli.quiet, cli.color);
    // A panic is a bug, but still an error exit (2), never Rust's 101.
    let run = std::panic::AssertUnwindSafe(|| match cli.command {
        Command::Generate(args) => generate::run(args),
        Command::Check(args) => check::run(args, quiet),
        Command::Complete(args) => complete::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Rule(args) => rule::run(args),
        Command::Sites(args) => sites::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Completions(args) => completions::run(args),
    });
    let result = std::panic::catch_unwind(run).unwrap_or_else(|_| {
        Err(anyhow::anyhow!(
            "internal error (a bug in nib: please report it with the command that caused it)"
        ))
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nib: {}: {e:#}", output::error_label(color));
            ExitCode::from(2)
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// `--help` documents every flag and value, and shows every default.
    #[test]
    fn every_flag_has_help_and_shows_its_default() {
        fn walk(cmd: &clap::Command, path: &str) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                assert!(arg.get_help().is_some(), "`{path} --{id}` has no help text");
                assert!(
                    !arg.is_hide_default_value_set(),
                    "`{path} --{id}` hides its default"
                );
                // Each value is explained, or at least named in the flag's help.
                let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
                if arg.get_action().takes_values() {
                    for value in arg.get_possible_values() {
                        assert!(
                            value.get_help().is_some() || help.contains(value.get_name()),
                            "`{path} --{id} {}` has no help text",
                            value.get_name()
                        );
                    }
                }
            }
            for sub in cmd.get_subcommands() {
                assert!(
                    sub.get_about().is_some(),
                    "`{path} {}` has no help text",
                    sub.get_name()
                );
                walk(sub, &format!("{path} {}", sub.get_name()));
            }
        }
        Cli::command().debug_assert();
        walk(&Cli::command(), "nib");
    }
}
