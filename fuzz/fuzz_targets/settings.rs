//! Settings from any JSON, at the top level and under `nib`, applied twice
//! (partial updates over partial updates): no panic, values stay in range.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nib::lsp::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let mut config = Config::default();
    let _ = config.apply(&value);
    let _ = config.apply(&serde_json::json!({ "nib": value }));
    assert!(config.max_tokens >= 1);
    assert!((0.0..=1.0).contains(&config.review.min_confidence));
});
