//! Embeds nib's default model (models/default) into the library, so a
//! binary installed anywhere works with no flags. `NIB_EMBED_MODEL_DIR`
//! picks another folder; an empty value, or a folder without a model (as in
//! the published crate, which leaves the model out), embeds nothing, and the
//! binary then finds the model where the release bundle installs it.
// Cargo reads a build script's instructions from its stdout.
#![allow(clippy::print_stdout)]

use std::fmt::Write as _;
use std::path::PathBuf;

/// The files of a model folder that nib reads, required ones first.
const REQUIRED: &[&str] = &["model.onnx", "config.json", "tokenizer.json"];
const OPTIONAL: &[&str] = &[
    // External weights, as the exporters name them.
    "model.onnx.data",
    "model.onnx_data",
    "generation_config.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "nib.json",
];

fn main() {
    println!("cargo::rustc-check-cfg=cfg(nib_embedded_model)");
    println!("cargo::rerun-if-env-changed=NIB_EMBED_MODEL_DIR");
    let root =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("embedded_model.rs");
    let dir = match std::env::var_os("NIB_EMBED_MODEL_DIR") {
        None => root.join("models/default"),
        Some(d) if d.is_empty() => {
            std::fs::write(&out, "").expect("write embedded_model.rs");
            return;
        }
        Some(d) => PathBuf::from(d),
    };
    let dir = if dir.is_relative() {
        root.join(dir)
    } else {
        dir
    };
    println!("cargo::rerun-if-changed={}", dir.display());
    if !REQUIRED.iter().all(|f| dir.join(f).is_file()) {
        std::fs::write(&out, "").expect("write embedded_model.rs");
        return;
    }
    println!("cargo::rustc-cfg=nib_embedded_model");
    // FNV-1a over names and contents names the folder the files are unpacked to.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut entries = String::new();
    for name in REQUIRED.iter().chain(OPTIONAL) {
        let path = dir.join(name);
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        println!("cargo::rerun-if-changed={}", path.display());
        for b in name.bytes().chain(bytes) {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        let _ = writeln!(
            entries,
            "    ({name:?}, include_bytes!({:?})),",
            path.display().to_string()
        );
    }
    let code = format!(
        "/// Files of the embedded model, as (name, contents).\n\
         pub(crate) const FILES: &[(&str, &[u8])] = &[\n{entries}];\n\
         /// Content hash, in the name of the folder the files are unpacked to.\n\
         pub(crate) const HASH: u64 = {hash:#x};\n"
    );
    std::fs::write(&out, code).expect("write embedded_model.rs");
}
