//! `nib rule [NAME]`: a review rule's documentation (what it finds, why it
//! matters, an example and its fix), or the list of rules, from
//! `src/review/rules.json` like SARIF's rule metadata and docs/rules.md.

use std::process::ExitCode;

use clap::Args;

use super::print_out;
use crate::review::rules;

#[derive(Debug, Args)]
pub struct RuleArgs {
    /// The rule (`identity` or `nib/identity`); without one, every rule.
    name: Option<String>,
    /// Print every rule's whole documentation.
    #[arg(long, conflicts_with = "name")]
    all: bool,
}

pub fn run(args: RuleArgs) -> anyhow::Result<ExitCode> {
    let text = match (&args.name, args.all) {
        (Some(name), _) => rules::get(name)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{}",
                    crate::lint::config::check_rule(name)
                        .err()
                        .unwrap_or_default()
                )
            })?
            .markdown(),
        (None, true) => rules::docs_page(),
        (None, false) => rules::summary_list(),
    };
    print_out(&text)?;
    Ok(ExitCode::SUCCESS)
}
