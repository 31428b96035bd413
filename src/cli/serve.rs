//! `nib serve`: the language server over stdio.

use std::process::ExitCode;

use clap::Args;

use super::ModelArgs;
use crate::lsp::{ServeOptions, serve_stdio};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Talk LSP over stdin/stdout (the only transport; accepted because
    /// editors such as vscode-languageclient pass it).
    #[arg(long)]
    stdio: bool,
    #[command(flatten)]
    model: ModelArgs,
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let _ = args.stdio;
    let backend = args.model.backend()?;
    let clean = serve_stdio(ServeOptions {
        model: args.model.model,
        device: args.model.device,
        threads: args.model.threads,
        backend,
    })?;
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
