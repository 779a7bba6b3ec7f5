"""Profile files: the bundled fitted profiles, fitted profile JSON, and raw profiles (JSON lines).

Reading only: a fitted profile's JSON object becomes a `Profile` in igniter_opt.model, and a raw
profile is what igniter_opt.model.fit fits and igniter_opt.profiling writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from igniter_opt.data.errors import InputError
from igniter_opt.data.io import loads_strict, read_json, read_text

# The raw profile's measurement grid (batch x MPS share %) that k1..k5 are fitted on.
GRID_BATCHES = (1, 16, 32)
GRID_SHARES = (10, 50, 100)
# A profile file without "fitted_range" was fitted on this grid.
GRID_RANGE = {"batch": (min(GRID_BATCHES), max(GRID_BATCHES)), "share_pct": (min(GRID_SHARES), max(GRID_SHARES))}

RawProfile = dict[str, dict[str, Any]]


def load_raw(path: str | Path) -> RawProfile:
    """Read a raw profile (JSON lines, sections merged key by key)."""
    raw: RawProfile = {}
    path = Path(path)
    for number, line in enumerate(read_text(path, "a raw profile").splitlines(), 1):
        if not line.strip():
            continue
        record = loads_strict(line, f"{path}:{number}")
        if not isinstance(record, dict) or not all(isinstance(v, dict) for v in record.values()):
            raise InputError(f"{path}:{number}: each line must be {{section: {{key: value}}}}")
        for section, values in record.items():
            raw.setdefault(section, {}).update(values)
    return raw


BUNDLED_DIR = Path(__file__).resolve().parent.parent / "profiles"  # package data


def bundled_profiles() -> list[str]:
    """Names of the fitted profiles that ship with the package."""
    return sorted(p.stem for p in BUNDLED_DIR.glob("*.json"))


def read_profile_json(name_or_path: str | Path) -> tuple[Any, Path]:
    """The JSON object of a bundled profile (by name, ``v100``) or a fitted profile file, and its path.

    igniter_opt.model.load_profile turns it into a Profile.
    """
    text = str(name_or_path)
    path = Path(text)
    if not path.suffix and (BUNDLED_DIR / f"{text}.json").is_file():
        path = BUNDLED_DIR / f"{text}.json"
    if not path.exists():
        known = ", ".join(bundled_profiles())
        raise InputError(f"profile {text!r}: no such bundled profile or file (bundled: {known})")
    return read_json(path, "a profile file"), path
