//! Review's candidate places in any text, for each rule set: no panic,
//! places in order, on character boundaries, holding the member they name.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use nib::review::language_of;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // Three with a grammar (sites from the syntax tree), one without (the lexer).
    for (file, id) in [("a.py", "python"), ("a.rs", "rust"), ("a.ts", "typescript"), ("a.kt", "kotlin")] {
        let Some(language) = language_of(Path::new(file)) else {
            continue;
        };
        let mut last = 0;
        for site in language.sites(id, &text) {
            assert!(site.start >= last && site.start < site.end && site.end <= text.len());
            assert!(text.is_char_boundary(site.start) && text.is_char_boundary(site.end));
            assert!(!site.alternatives.is_empty());
            last = site.end;
        }
    }
});
