//! What a check reports and where, around the review: configuration files
//! (`config.rs`), the rules, thresholds, severities and exclusions they
//! and the command line choose (`policy.rs`), inline suppressions
//! (`suppress.rs`), accepted findings (`baseline.rs`) and the lines a
//! change touched (`diff.rs`).
//!
//! Architecture invariant: `review/` finds; `lint/` only decides which
//! findings to keep. Both `nib check` and the server go through a
//! [`Policy`].

pub mod baseline;
pub mod config;
pub mod diff;
pub mod policy;
pub mod suppress;

pub use self::baseline::{Baseline, BaselineError};
pub use self::config::{ConfigError, Discovery, Found, Settings};
pub use self::diff::{Changes, DiffError};
pub use self::policy::{Overrides, Policies, Policy};
pub use self::suppress::Suppressions;
