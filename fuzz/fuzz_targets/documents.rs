//! Incremental edits at any positions, in every position encoding: no
//! panic, and positions converted back and forth stay inside the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nib::documents::{Document, PositionEncoding, char_to_position, position_to_char};
use tower_lsp_server::ls_types::{Position, Range};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let encoding = match mode % 3 {
        0 => PositionEncoding::Utf8,
        1 => PositionEncoding::Utf16,
        _ => PositionEncoding::Utf32,
    };
    let mut doc = Document::new("héllo 😀\nwörld\r\n字\n", 1, "python");
    // Each edit: 4 bytes of range, 1 of length, then that many bytes of text.
    let mut bytes = rest;
    while bytes.len() >= 5 {
        let pos = |l: u8, c: u8| Position::new(u32::from(l % 8), u32::from(c) * 3 % 40);
        let range = Range::new(pos(bytes[0], bytes[1]), pos(bytes[2], bytes[3]));
        let len = (bytes[4] as usize % 16).min(bytes.len() - 5);
        let text = String::from_utf8_lossy(&bytes[5..5 + len]).into_owned();
        let whole = bytes[4] == 255;
        doc.apply((!whole).then_some(range), &text, encoding);
        bytes = &bytes[5 + len..];
        let chars = doc.text.len_chars();
        for p in [range.start, range.end] {
            let at = position_to_char(&doc.text, p, encoding);
            assert!(at <= chars);
            let back = char_to_position(&doc.text, at, encoding);
            assert!(position_to_char(&doc.text, back, encoding) == at);
        }
    }
});
