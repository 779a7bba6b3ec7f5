"""The batch results schema: a task (instance file, solver), its row in the results CSV, the CSV's
columns, and reading and appending that CSV.

What `bench.report` reads and `bench.batch` writes; it knows nothing of how tasks run (bench/pool.py).
A row's resume key is what determines the answer, not where the file happens to be: the SHA-256 of
the instance file's bytes, the solver, and the options that change the solver's answer
(`answer_options`: the time limit, threads and MIP gap for an exact solver, none for a heuristic).
The last column, cost, is the plan's price per hour on an instance whose fleet has prices (issue
21), empty otherwise; files written before it (NOCOST_COLUMNS) are read, and appended to in their
own layout as long as no instance of the batch has a fleet.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from igniter_opt.data.errors import InputError

COLUMNS = ("instance", "family", "workloads", "solver", "options", "instance_sha256", "gpus",
           "lower_bound", "status", "gap", "seconds", "feasible", "total_share", "slo_violations", "error", "cost")
# Results files written before the cost column (issue 21): read, and appended to without a cost.
NOCOST_COLUMNS = COLUMNS[:-1]
# Results files written before the resume key held the instance's hash and the options: `report`
# still reads them; `batch` refuses to append to them (their rows cannot be matched safely).
LEGACY_COLUMNS = tuple(c for c in NOCOST_COLUMNS if c not in ("options", "instance_sha256"))
FAILED = ("error", "crashed", "timeout")  # statuses of a task that produced no plan


@dataclass(frozen=True)
class Task:
    """One (instance file, solver) pair; `key` is the row's instance column (for people), and
    `resume_key` what a finished row must match for the task to be skipped."""

    key: str
    path: str
    solver: str
    family: str
    workloads: int | None
    digest: str = ""  # SHA-256 of the instance file's bytes
    options: str = ""  # answer_options(solver, ...)

    @property
    def resume_key(self) -> tuple[str, str, str]:
        return (self.digest, self.solver, self.options)


def file_digest(path: Path) -> str:
    """SHA-256 of the file's bytes; an unreadable file gets a key of its own (its task will fail
    and be recorded as an error row)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return f"unreadable:{path.resolve().as_posix()}"


def answer_options(solver: str, time_limit: float, threads: int = 1, mip_gap: float = 0.0) -> str:
    """The options that can change this solver's answer, canonically: "" for a heuristic (it
    ignores them all), "mip_gap=0 threads=1 time_limit=60" for an exact solver."""
    from igniter_opt.solvers.registry import exact_solvers

    if solver not in exact_solvers():
        return ""
    return f"mip_gap={mip_gap:g} threads={threads:d} time_limit={time_limit:g}"


def family_of(path: Path) -> str:
    """The folder that holds the instance, also for a file in the current folder."""
    return path.resolve().parent.name or "-"


def instance_key(path: Path) -> str:
    """The instance column: the path relative to the working directory when below it."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()


def workload_count(path: Path) -> int | None:
    """Workloads in a file without validating it (None when unreadable): for ordering and rows."""
    try:
        items = json.loads(path.read_text()).get("workloads")
        return len(items) if isinstance(items, list) else None
    except (OSError, ValueError, AttributeError):
        return None


def has_fleet(path: Path) -> bool:
    """Does the file give a "fleet" (without validating it; False when unreadable)?"""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "fleet" in data


def results_columns(path: Path) -> tuple[str, ...] | None:
    """The header of a results CSV (None when absent or empty)."""
    if not path.is_file() or path.stat().st_size == 0:
        return None
    with path.open(newline="") as fh:
        return tuple(next(csv.reader(fh), ()))


def read_results(path: str | Path) -> list[dict[str, str]]:
    """Complete rows of a results CSV (a row cut short by a kill is ignored); [] when absent.

    Files of the previous layouts are read too: LEGACY_COLUMNS with empty options and hash,
    NOCOST_COLUMNS with an empty cost."""
    return read_results_counted(path)[0]


def read_results_counted(path: str | Path) -> tuple[list[dict[str, str]], int]:
    """read_results, and how many rows were skipped as cut short (for the caller to say so)."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return [], 0
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if tuple(reader.fieldnames or ()) not in (COLUMNS, NOCOST_COLUMNS, LEGACY_COLUMNS):
                raise InputError(f"{path}: not a results file of this version (columns {reader.fieldnames})")
            every = list(reader)
            last = (reader.fieldnames or ["error"])[-1]
            rows = [row for row in every if row.get(last) is not None and row.get("status")]
        with path.open("rb") as raw:  # a last line without its newline was cut short (cost is last)
            raw.seek(-1, 2)
            if raw.read(1) != b"\n" and rows and every and rows[-1] is every[-1]:
                rows.pop()
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: not a results CSV ({exc})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    for row in rows:
        row.setdefault("options", "")
        row.setdefault("instance_sha256", "")
        row.setdefault("cost", "")
    return rows, len(every) - len(rows)


def latest_rows(rows: Iterable[dict[str, str]]) -> dict[tuple[str, str], dict[str, str]]:
    """The last row of each (instance, solver): a retried task's newest result wins."""
    return {(r["instance"], r["solver"]): r for r in rows}


def resume_rows(rows: Iterable[dict[str, str]]) -> dict[tuple[str, str, str], dict[str, str]]:
    """The last row of each resume key (instance hash, solver, options)."""
    return {(r["instance_sha256"], r["solver"], r["options"]): r for r in rows if r["instance_sha256"]}


def _fmt(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def row_values(task: Task, columns: tuple[str, ...] = COLUMNS, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {c: "" for c in COLUMNS}
    row.update(instance=task.key, family=task.family, workloads=task.workloads, solver=task.solver,
               options=task.options, instance_sha256=task.digest)
    row.update(values)
    return {c: _fmt(row[c]) for c in columns}


class ResultsWriter:
    """The results CSV, appended one row per finished task and flushed at once (a context manager).

    Opening cuts a trailing half-written row (a kill mid-write) and writes the header to a new file;
    a file written before the cost column keeps its layout (run_batch refuses fleets for it).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        if path.is_file() and path.stat().st_size > 0:
            data = path.read_bytes()
            if not data.endswith(b"\n"):
                path.write_bytes(data[: data.rfind(b"\n") + 1])
        if not path.is_file() or path.stat().st_size == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", newline="") as fh:
                csv.writer(fh).writerow(COLUMNS)
        self.columns = NOCOST_COLUMNS if results_columns(path) == NOCOST_COLUMNS else COLUMNS

    def __enter__(self) -> ResultsWriter:
        self.fh = self.path.open("a", newline="")
        self.writer = csv.DictWriter(self.fh, fieldnames=self.columns)
        return self

    def __exit__(self, *exc: object) -> None:
        self.fh.close()

    def write(self, task: Task, row: dict[str, Any]) -> None:
        self.writer.writerow(row_values(task, self.columns, **row))
        self.fh.flush()
