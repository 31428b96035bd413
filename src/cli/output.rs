//! What the command line writes to stderr: `warning: …` and `error: …`
//! lines for people (coloured only on a terminal, never with `NO_COLOR`),
//! quieter with `-q`, more with `-v`; `NIB_LOG` switches to full `tracing`
//! records (times, modules, fields) for debugging.

use std::fmt;
use std::io::IsTerminal;

use clap::ValueEnum;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set.
    #[default]
    Auto,
    /// Always (even into a pipe or file).
    Always,
    /// Never.
    Never,
}

impl ColorChoice {
    /// Whether to colour a stream that is (or is not) a terminal, given the
    /// value of `NO_COLOR` (<https://no-color.org>: set and not empty).
    pub fn enabled(self, terminal: bool, no_color: Option<&str>) -> bool {
        match self {
            Self::Always => true,
            Self::Never => false,
            Self::Auto => terminal && no_color.is_none_or(str::is_empty),
        }
    }

    /// Whether stderr gets colour.
    pub fn for_stderr(self) -> bool {
        let no_color = std::env::var("NO_COLOR").ok();
        self.enabled(std::io::stderr().is_terminal(), no_color.as_deref())
    }
}

/// Which records reach stderr without `NIB_LOG`: `-q` errors only, by
/// default warnings, `-v` also what nib does, `-vv` debug details.
pub fn level_filter(quiet: bool, verbose: u8) -> &'static str {
    match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    }
}

/// One line per record: `warning: message key=value`.
struct Lines {
    color: bool,
}

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let (label, ansi) = match *event.metadata().level() {
            Level::ERROR => ("error", "1;31"),
            Level::WARN => ("warning", "1;33"),
            Level::INFO => ("info", "1;32"),
            _ => ("debug", "1;34"),
        };
        if self.color {
            write!(writer, "\x1b[{ansi}m{label}\x1b[0m: ")?;
        } else {
            write!(writer, "{label}: ")?;
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Sets up stderr logging once, before any subcommand runs.
pub fn init_logging(quiet: bool, verbose: u8, color: ColorChoice) {
    let color = color.for_stderr();
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(color);
    let _ = match tracing_subscriber::EnvFilter::try_from_env("NIB_LOG") {
        Ok(filter) => builder.with_env_filter(filter).try_init(),
        Err(_) => builder
            .with_env_filter(tracing_subscriber::EnvFilter::new(level_filter(
                quiet, verbose,
            )))
            .event_format(Lines { color })
            .try_init(),
    };
}

/// The label of `nib: error: …`, coloured like the log lines.
pub fn error_label(color: ColorChoice) -> &'static str {
    if color.for_stderr() {
        "\x1b[1;31merror\x1b[0m"
    } else {
        "error"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_and_never_with_no_color() {
        assert!(ColorChoice::Auto.enabled(true, None));
        assert!(ColorChoice::Auto.enabled(true, Some("")));
        assert!(!ColorChoice::Auto.enabled(true, Some("1")));
        assert!(!ColorChoice::Auto.enabled(false, None));
        assert!(ColorChoice::Always.enabled(false, Some("1")));
        assert!(!ColorChoice::Never.enabled(true, None));
    }

    #[test]
    fn quiet_and_verbose_move_the_level() {
        assert_eq!(level_filter(false, 0), "warn");
        assert_eq!(level_filter(true, 0), "error");
        assert_eq!(level_filter(false, 1), "info");
        assert_eq!(level_filter(false, 3), "debug");
    }
}
