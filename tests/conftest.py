"""Shared fixtures: the reference values published with the V100 profile, and the bundled profile."""

import json
from pathlib import Path

import pytest

from igniter_opt.model import load_profile

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
RAW_V100 = ROOT / "igniter_opt" / "profiles" / "v100-raw.jsonl"


@pytest.fixture(scope="session")
def reference() -> dict:
    path = SHARED_DATA / "v100-reference-values.json"
    if not path.is_file():
        pytest.skip(f"reference values not found at {path}")
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def v100():
    return load_profile("v100")
