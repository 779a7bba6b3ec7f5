"""Shared fixtures: the reference values published with the V100 profile, and the bundled profile.

Everything a test reads lives in this repository (tests/data, the bundled profiles), so a fresh
clone runs every test that does not need a GPU or docker.
"""

import json
from pathlib import Path

import pytest

from igniter_opt.model import load_profile

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
RAW_V100 = ROOT / "igniter_opt" / "profiles" / "v100-raw.jsonl"


@pytest.fixture(scope="session")
def reference() -> dict:
    return json.loads((DATA / "v100-reference-values.json").read_text())


@pytest.fixture(scope="session")
def v100():
    return load_profile("v100")
