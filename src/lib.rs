//! nib: a local code assistant that serves a Transformer running in ONNX
//! Runtime to editors over the Language Server Protocol, and to CI.
//!
//! See ARCHITECTURE.md for the flow of data and the code map.

pub mod cli;
pub mod completion;
pub mod documents;
pub mod engine;
pub mod files;
pub mod languages;
pub mod lex;
pub mod lint;
pub mod lsp;
pub mod model;
pub mod prompt;
pub mod report;
pub mod review;
pub mod runtime;
pub mod syntax;
