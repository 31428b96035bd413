"""`nib check --format sarif` against the SARIF 2.1.0 JSON schema (OASIS's,
as the serde-sarif crate ships it: scripts/python-env.sh fetches it from
crates.io and checks its digest), plus what GitHub code scanning asks of an
upload beyond the schema: rules with `fullDescription`, `help` (text and
markdown) and `helpUri`, results with `partialFingerprints`, and a `rank`
or confidence property.

Runs target/debug/nib (NIB_BIN overrides) with the tiny test model and
`--min-confidence 0`, so every candidate place is a finding."""

import json
import os
import pathlib
import subprocess

import jsonschema
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
NIB = os.environ.get("NIB_BIN", str(ROOT / "target" / "debug" / "nib"))
CACHE = pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache"))
SCHEMA = pathlib.Path(os.environ.get("NIB_SARIF_SCHEMA", CACHE / "nib" / "sarif-schema-2.1.0.json"))

SOURCES = {
    "app.py": "def check(x, items):\n    if x == None or len(items) > 0:\n        return True\n    return x + 1\n",
    "lib.rs": "fn f(a: i32, b: i32) -> bool {\n    a < b && b != 0\n}\n",
    "main.js": "function f(a, b) {\n  return a === b || a > 1;\n}\n",
}


@pytest.fixture(scope="module")
def sarif(tmp_path_factory):
    assert SCHEMA.is_file(), f"{SCHEMA} is missing: run scripts/python-env.sh"
    tree = tmp_path_factory.mktemp("src")
    for name, text in SOURCES.items():
        (tree / name).write_text(text)
    run = subprocess.run(
        [NIB, "check", "--model", str(ROOT / "tests/fixtures/models/llama"), "--min-confidence", "0",
         "--format", "sarif", "."],
        cwd=tree, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stderr
    return json.loads(run.stdout)


def test_the_output_is_valid_sarif_2_1_0(sarif):
    schema = json.loads(SCHEMA.read_text())
    assert schema["properties"]["version"]["enum"] == ["2.1.0"]
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(sarif), key=lambda e: e.json_path)
    assert not errors, "\n".join(f"{e.json_path}: {e.message}" for e in errors[:10])


def test_the_schema_check_rejects_a_broken_log(sarif):
    schema = json.loads(SCHEMA.read_text())
    broken = json.loads(json.dumps(sarif))
    broken["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] = 0
    assert list(jsonschema.Draft7Validator(schema).iter_errors(broken))


def test_what_github_code_scanning_asks_for(sarif):
    run = sarif["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert rules
    for rule in rules:
        assert rule["fullDescription"]["text"], rule["id"]
        assert rule["help"]["text"] and rule["help"]["markdown"], rule["id"]
        assert rule["helpUri"].startswith("https://"), rule["id"]
    ids = {r["id"] for r in rules}
    assert run["results"]
    for result in run["results"]:
        assert result["ruleId"] in ids
        assert result["partialFingerprints"], result
        assert 0 <= result.get("rank", result.get("properties", {}).get("confidence", -1) * 100) <= 100
