"""A fresh clone is whole: every file the docs, code and tests cite is in the repository."""

import re
from pathlib import Path

from conftest import DATA, ROOT

TEXT_SUFFIXES = {".md", ".py", ".toml", ".sh", ".json", ".jsonl", ""}
SKIP_DIRS = {".git", ".venv", "venv", "build", "dist", "__pycache__", ".pytest_cache", ".mypy_cache",
             ".ruff_cache", ".hypothesis", "runs"}


def _repo_files() -> list[Path]:
    out = []
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT)
        if any(part in SKIP_DIRS or part.endswith(".egg-info") for part in rel.parts):
            continue
        if path.is_file() and path.suffix in TEXT_SUFFIXES and path.stat().st_size < 2_000_000:
            out.append(path)
    return out


ESCAPING = re.compile(r"(?:\.\./)+[\w.-]+")


def _inside(path: Path) -> bool:
    return path.resolve().is_relative_to(ROOT.resolve())


def test_nothing_cites_files_outside_the_repository():
    """Every relative path climbing out with ../ stays inside the clone: in markdown read from the
    citing file's folder; in code, tests and scripts also from the repository root (where commands
    and tests run)."""
    offenders = []
    for path in _repo_files():
        if path.suffix == ".csv":
            continue
        for cited in ESCAPING.findall(path.read_text(errors="replace")):
            bases = [path.parent] if path.suffix == ".md" else [path.parent, ROOT]
            if not all(_inside(base / cited) for base in bases):
                offenders.append(f"{path.relative_to(ROOT)}: {cited}")
    assert not offenders, offenders


def test_markdown_links_resolve():
    broken = []
    for path in _repo_files():
        if path.suffix != ".md":
            continue
        for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            where = path.parent / target.split("#")[0]
            if not where.exists() or not _inside(where):  # a link out of the clone breaks in a user's
                broken.append(f"{path.relative_to(ROOT)} -> {target}")
    assert not broken, broken


def test_model_doc_covers_the_model_formats_and_statuses():
    text = (ROOT / "docs" / "model.md").read_text()
    for heading in ("## The performance model", "## Fitting a profile", "## What a status means",
                    "## Formats"):
        assert heading in text
    for status in ("optimal", "heuristic", "feasible", "infeasible", "time_limit", "interrupted"):
        assert f"`{status}`" in text


def test_reference_values_ship_with_the_tests(reference):
    assert (DATA / "v100-reference-values.json").is_file()
    assert {"fitted_coefficients", "motivation_example", "more_predictions"} <= set(reference)


def test_no_test_depends_on_files_outside_the_repository():
    """No test skips (or reads) because a sibling folder of the clone is missing."""
    this = Path(__file__).resolve()
    for path in (ROOT / "tests").glob("*.py"):
        if path.resolve() == this:
            continue
        text = path.read_text()
        assert "ROOT.parent" not in text and "parent.parent.parent" not in text, path.name


def test_version_flag_prints_the_package_version():
    import subprocess
    import sys

    from igniter_opt import __version__

    declared = re.search(r'(?m)^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    assert __version__ == declared
    res = subprocess.run([sys.executable, "-m", "igniter_opt", "--version"], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0 and res.stdout.strip() == f"igniter-opt {declared}"
