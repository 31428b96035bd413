//! Review's candidate places in any text, for each rule set: no panic,
//! places in order, on character boundaries, holding the member they name.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use nib::review::language_of;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for file in ["a.py", "a.rs", "a.ts"] {
        let Some(language) = language_of(Path::new(file)) else {
            continue;
        };
        let mut last = 0;
        for site in language.sites(&text) {
            assert!(site.start >= last && site.start < site.end && site.end <= text.len());
            assert!(text.is_char_boundary(site.start) && text.is_char_boundary(site.end));
            assert!(!site.alternatives.is_empty());
            last = site.end;
        }
    }
});
