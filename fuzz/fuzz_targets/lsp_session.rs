//! A whole server session on any bytes after `initialize`: the real
//! service and transport, a model that cannot load (so every request takes
//! its not-ready path), in-memory streams. It must end at the end of input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nib::lsp::worker::{LoadRequest, Loader};
use nib::lsp::{ServeOptions, serve};

fn frame(body: &str) -> Vec<u8> {
    format!("Content-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

fuzz_target!(|data: &[u8]| {
    let mut input = frame(r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"capabilities":{}}}"#);
    input.extend(frame(r#"{"jsonrpc":"2.0","method":"initialized","params":{}}"#));
    input.extend_from_slice(data);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let loader: Loader = Box::new(|_: &LoadRequest| Err(anyhow::anyhow!("no model in the fuzzer")));
    runtime
        .block_on(serve(&input[..], tokio::io::sink(), ServeOptions::default(), loader))
        .expect("serve");
});
