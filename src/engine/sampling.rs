//! Picking the next token from logits: greedy, or temperature with top-k and
//! top-p, reproducible under a seed.

/// How to pick tokens. A temperature of 0 means greedy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingParams {
    pub temperature: f32,
    /// Keep only the k most likely tokens; 0 keeps all.
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches p; 1 keeps all.
    pub top_p: f32,
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self::greedy()
    }
}

impl SamplingParams {
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            seed: 0,
        }
    }

    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0
    }
}

/// SplitMix64: tiny, fast, and stable across platforms and versions, which
/// is what a seed needs to mean the same thing everywhere.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Index of the largest logit; the first one on ties, as `torch.argmax`.
pub fn argmax(logits: &[f32]) -> usize {
    let mut best = 0;
    let mut best_value = f32::NEG_INFINITY;
    for (i, &v) in logits.iter().enumerate() {
        if v > best_value {
            best = i;
            best_value = v;
        }
    }
    best
}

pub struct Sampler {
    params: SamplingParams,
    rng: Rng,
    scratch: Vec<(usize, f32)>,
}

impl Sampler {
    pub fn new(params: SamplingParams) -> Self {
        Self {
            params,
            rng: Rng::new(params.seed),
            scratch: Vec::new(),
        }
    }

    pub fn sample(&mut self, logits: &[f32]) -> usize {
        if self.params.is_greedy() {
            return argmax(logits);
        }
        let t = self.params.temperature;
        let candidates = &mut self.scratch;
        candidates.clear();
        candidates.extend(
            logits
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite())
                .map(|(i, &v)| (i, v / t)),
        );
        if candidates.is_empty() {
            return argmax(logits);
        }
        let k = self.params.top_k;
        if k > 0 && k < candidates.len() {
            candidates.select_nth_unstable_by(k - 1, |a, b| b.1.total_cmp(&a.1));
            candidates.truncate(k);
        }
        candidates.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let max = candidates[0].1;
        let mut total = 0.0f64;
        for c in candidates.iter_mut() {
            c.1 = ((c.1 - max) as f64).exp() as f32;
            total += c.1 as f64;
        }
        let p = self.params.top_p.clamp(0.0, 1.0) as f64;
        if p < 1.0 {
            let mut mass = 0.0;
            let keep = candidates
                .iter()
                .position(|c| {
                    mass += c.1 as f64 / total;
                    mass >= p
                })
                .map_or(candidates.len(), |i| i + 1);
            candidates.truncate(keep);
            total = candidates.iter().map(|c| c.1 as f64).sum();
        }
        let mut r = self.rng.next_f64() * total;
        for c in candidates.iter() {
            r -= c.1 as f64;
            if r < 0.0 {
                return c.0;
            }
        }
        candidates[candidates.len() - 1].0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn logits() -> Vec<f32> {
        (0..50).map(|i| ((i * 37) % 11) as f32 * 0.3).collect()
    }

    #[test]
    fn greedy_takes_the_first_maximum() {
        assert_eq!(argmax(&[0.1, 0.9, 0.9, 0.2]), 1);
        assert_eq!(
            Sampler::new(SamplingParams::greedy()).sample(&[0.0, -1.0, 3.0]),
            2
        );
    }

    #[test]
    fn same_seed_same_tokens() {
        let params = SamplingParams {
            temperature: 0.8,
            top_k: 20,
            top_p: 0.95,
            seed: 42,
        };
        let run = || {
            let mut s = Sampler::new(params);
            (0..64).map(|_| s.sample(&logits())).collect::<Vec<_>>()
        };
        let first = run();
        assert_eq!(first, run());
        let mut other = Sampler::new(SamplingParams { seed: 43, ..params });
        let different: Vec<_> = (0..64).map(|_| other.sample(&logits())).collect();
        assert_ne!(
            first, different,
            "another seed should give another sequence"
        );
    }

    #[test]
    fn top_k_one_is_greedy() {
        let mut s = Sampler::new(SamplingParams {
            temperature: 1.5,
            top_k: 1,
            top_p: 1.0,
            seed: 7,
        });
        let l = logits();
        for _ in 0..20 {
            assert_eq!(s.sample(&l), argmax(&l));
        }
    }

    #[test]
    fn tiny_top_p_is_greedy() {
        let mut s = Sampler::new(SamplingParams {
            temperature: 1.0,
            top_k: 0,
            top_p: 1e-6,
            seed: 9,
        });
        let l = logits();
        for _ in 0..20 {
            assert_eq!(s.sample(&l), argmax(&l));
        }
    }

    proptest! {
        #[test]
        fn samples_stay_within_top_k(seed in any::<u64>(), k in 1usize..10, t in 0.1f32..3.0) {
            let l = logits();
            let mut order: Vec<usize> = (0..l.len()).collect();
            order.sort_by(|&a, &b| l[b].total_cmp(&l[a]));
            let kth = l[order[k - 1]];
            let mut s = Sampler::new(SamplingParams { temperature: t, top_k: k, top_p: 1.0, seed });
            for _ in 0..10 {
                let i = s.sample(&l);
                prop_assert!(l[i] >= kth);
            }
        }
    }
}
