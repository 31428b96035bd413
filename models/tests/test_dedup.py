import random

from nib_models.dedup import MinHasher, exact_key, jaccard, jaccard_estimate, near_dup_filter


def _file(seed, n=120):
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "value", "count", "items", "result", "index", "buffer"]
    lines = []
    for i in range(n):
        a, b, c = rng.choice(words), rng.choice(words), rng.randint(0, 999)
        lines.append(f"    {a}_{i} = compute({b}, {c}) + {a}")
    return "def f():\n" + "\n".join(lines) + "\n"


def test_exact_key_ignores_whitespace_runs():
    a = "fn main() {\n    println!(\"hi\");\n}\n"
    b = "fn main() {\r\n        println!(\"hi\");  \r\n}"
    assert exact_key(a) == exact_key(b)
    assert exact_key(a) != exact_key(a.replace("hi", "ho"))


def test_minhash_estimates_jaccard():
    h = MinHasher(num_perm=128)
    a = _file(1)
    b = a.replace("compute(alpha", "compute(omega", 3)
    est = jaccard_estimate(h.signature(a), h.signature(b))
    assert abs(est - jaccard(a, b)) < 0.12
    c = _file(2)
    assert jaccard_estimate(h.signature(a), h.signature(c)) < 0.3


def test_near_dup_filter_drops_near_copies_only():
    a = _file(1)
    near = a.replace("compute(alpha", "compute(omega", 1) + "# trailing comment\n"
    other = _file(2)
    exact_copy = a
    keep = near_dup_filter([a, other, near, exact_copy], threshold=0.85)
    assert keep == [True, True, False, False]


def test_near_dup_filter_keeps_short_distinct_files():
    texts = ["x = 1\n", "y = 2\n", "def f(): pass\n", ""]
    assert near_dup_filter(texts) == [True, True, True, True]
