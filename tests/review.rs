//! `review::review` in process on a tiny fixture model: the work bounds,
//! cancellation, and findings that agree with the text they point into.

mod common;

use std::path::Path;

use common::load_engine;
use nib::engine::CancelToken;
use nib::review::{Review, ReviewError, ReviewOptions, review};

/// Unicode before and between the places, so byte offsets are tested too.
const TEXT: &str = "def f(xs, é):\n    # ≤ comment == here\n    if len(xs) == 0 or é is None:\n        return xs[1] + 'ü<'\n    return [x for x in xs if x > 1]\n";

/// Every scored place becomes a finding at confidence 0.
fn everything() -> ReviewOptions {
    ReviewOptions {
        min_confidence: 0.0,
        ..ReviewOptions::default()
    }
}

fn run(options: &ReviewOptions) -> Review {
    let mut engine = load_engine("llama");
    review(
        &mut engine,
        Some(Path::new("f.py")),
        TEXT,
        options,
        &CancelToken::new(),
    )
    .expect("review")
}

#[test]
fn findings_point_at_what_is_written() {
    let r = run(&everything());
    // ==, 0, or, is, 1, +, >, 1 (the comprehension's `in` is no place)
    assert_eq!((r.sites, r.scored, r.findings.len()), (8, 8, 8));
    for f in &r.findings {
        assert_eq!(&TEXT[f.start..f.end], f.original, "{f:?}");
        assert!((0.0..=1.0).contains(&f.confidence));
        assert_ne!(f.replacement.trim(), f.original);
        assert!(
            f.message.contains(&format!("`{}`", f.original)),
            "{}",
            f.message
        );
    }
    assert!(r.findings.windows(2).all(|w| w[0].start < w[1].start));
}

#[test]
fn max_sites_bounds_the_work() {
    let r = run(&ReviewOptions {
        max_sites: 3,
        ..everything()
    });
    assert_eq!((r.sites, r.scored, r.findings.len()), (8, 3, 3));
}

#[test]
fn the_kv_cache_does_not_change_the_scores() {
    // One engine reviewing twice (warm cache) against a fresh engine.
    let fresh = run(&everything());
    let mut engine = load_engine("llama");
    let cancel = CancelToken::new();
    let path = Some(Path::new("f.py"));
    review(&mut engine, path, "x = 1 < 2\n", &everything(), &cancel).expect("review");
    let warm = review(&mut engine, path, TEXT, &everything(), &cancel).expect("review");
    for (a, b) in fresh.findings.iter().zip(&warm.findings) {
        assert_eq!(a.replacement, b.replacement);
        assert!((a.confidence - b.confidence).abs() < 1e-4, "{a:?} {b:?}");
    }
}

#[test]
fn a_cancelled_review_stops_with_an_error() {
    let mut engine = load_engine("llama");
    let cancel = CancelToken::new();
    cancel.cancel();
    let result = review(
        &mut engine,
        Some(Path::new("f.py")),
        TEXT,
        &everything(),
        &cancel,
    );
    assert!(matches!(result, Err(ReviewError::Cancelled)), "{result:?}");
}

#[test]
fn languages_without_rules_and_unnamed_files_give_empty_reviews() {
    let mut engine = load_engine("llama");
    let cancel = CancelToken::new();
    for path in [Some(Path::new("notes.md")), None] {
        let r = review(&mut engine, path, TEXT, &everything(), &cancel).expect("review");
        assert_eq!((r.sites, r.scored, r.findings.len()), (0, 0, 0));
    }
}
