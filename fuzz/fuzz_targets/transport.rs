//! The LSP frame decoder on any bytes, arriving in two pieces: no panic,
//! bounded buffering, and only valid JSON-RPC objects come out.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nib::lsp::transport::{Decoder, Incoming, MAX_HEADER_BYTES, MAX_MESSAGE_BYTES, classify};

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |&b| b as usize).min(data.len());
    let mut decoder = Decoder::default();
    for piece in [&data[..split], &data[split..]] {
        decoder.push(piece);
        while let Some(frame) = decoder.next_frame() {
            if let Incoming::Message(m) = frame {
                assert!(m.is_object());
                assert_eq!(m["jsonrpc"], "2.0");
            }
        }
        assert!(decoder.pending() <= data.len());
    }
    assert!(decoder.pending() <= MAX_MESSAGE_BYTES + MAX_HEADER_BYTES);
    let _ = classify(data);
});
