//! Completion post-processing on any prefix, suffix and model output, in
//! each lexer family: no panic, and a suggestion is never empty.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nib::completion::{Lang, Shape, finish};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let mut parts = text.splitn(3, '\u{1}');
    let (prefix, suffix, raw) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let lang = match mode % 3 {
        0 => Lang::Hash,
        1 => Lang::Rust,
        _ => Lang::CLike,
    };
    let shape = Shape::new(prefix, suffix, lang);
    let _ = shape.is_complete(raw);
    if let Some(s) = finish(raw, &shape) {
        assert!(!s.trim().is_empty());
    }
});
