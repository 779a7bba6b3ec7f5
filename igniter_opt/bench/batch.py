"""Batch solving: every (instance, solver) pair in its own worker, one CSV row each.

`run_batch` ties the parts together: the tasks (`make_tasks`), the pool that runs them
(bench/pool.py: `ProcessPool`, or another executor passed in), and the results CSV they are
appended to (bench/results.py: the schema, `ResultsWriter`).

The batch is resumable: a task whose resume key already has a row in the results CSV is skipped,
and each row is appended and flushed the moment its task ends, so an interrupted batch loses
nothing that finished. The same instance reached by another path or from another folder is not
solved twice, and a row made under another time limit is never taken for this one. While a batch
runs it holds an exclusive lock on the CSV (flock), so a second batch on the same CSV stops at
once with one line. Ctrl-C (or SIGTERM) kills the running workers and returns (no orphans).
"""

from __future__ import annotations

import glob
import json
import math
import os
import platform
import signal
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from igniter_opt.bench.pool import ProcessPool, TaskFn, TaskPool, solve_task
from igniter_opt.bench.results import (
    FAILED,
    LEGACY_COLUMNS,
    NOCOST_COLUMNS,
    ResultsWriter,
    Task,
    answer_options,
    family_of,
    file_digest,
    has_fleet,
    instance_key,
    read_results,
    results_columns,
    resume_rows,
    workload_count,
)
from igniter_opt.data.errors import InputError
from igniter_opt.platform.processes import sigterm_as_interrupt


@dataclass
class BatchSummary:
    """What a batch did: tasks found, skipped (already in the CSV), run, by status."""

    total: int = 0
    skipped: int = 0
    statuses: Counter = field(default_factory=Counter)
    interrupted: bool = False
    seconds: float = 0.0

    @property
    def ran(self) -> int:
        return sum(self.statuses.values())


def expand_paths(specs: Iterable[str | Path]) -> list[Path]:
    """Instance files from directories (recursive *.json), globs and plain files, sorted, unique."""
    found: set[Path] = set()
    for spec in specs:
        spec_path = Path(spec)
        if spec_path.is_dir():
            found.update(p for p in spec_path.rglob("*.json") if p.is_file())
        elif spec_path.is_file():
            found.add(spec_path)
        else:
            matches = [Path(m) for m in glob.glob(str(spec), recursive=True)]
            found.update(m for m in matches if m.is_file() and m.suffix == ".json")
            found.update(p for m in matches if m.is_dir() for p in m.rglob("*.json"))
    if not found:
        raise InputError(f"no instance files match {', '.join(map(str, specs))}")
    return sorted(found)


class CsvLock:
    """An exclusive, non-blocking lock on the results CSV for the whole batch (flock: released by
    the kernel when the process ends, so a killed batch leaves no stale lock). A second batch on
    the same CSV gets an InputError in one line instead of duplicating every row."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fh: Any = None

    def __enter__(self) -> CsvLock:
        try:
            import fcntl
        except ImportError:  # no flock on this platform: no lock
            return self
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.fh = self.path.open("a")
        except OSError as exc:
            raise InputError(f"{self.path}: cannot open the results file ({exc.strerror})") from None
        try:
            fcntl.flock(self.fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.fh.close()
            self.fh = None
            raise InputError(f"{self.path}: another igniter batch is writing this results file; wait "
                             f"for it to finish, or pass another -o") from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fh is not None:
            self.fh.close()  # closing releases the flock
            self.fh = None


def make_tasks(paths: Sequence[Path], solvers: Sequence[str], time_limit: float = 60.0) -> list[Task]:
    """All (instance, solver) pairs, largest instances first (long tasks start early); a file whose
    bytes equal an earlier one's (the same instance by another path) is solved once."""
    tasks, seen = [], set()
    for p in paths:
        count, digest = workload_count(p), file_digest(p)
        for s in solvers:
            task = Task(instance_key(p), str(p), s, family_of(p), count, digest,
                        answer_options(s, time_limit))
            if task.resume_key not in seen:
                seen.add(task.resume_key)
                tasks.append(task)
    order = {s: i for i, s in enumerate(solvers)}
    return sorted(tasks, key=lambda t: (-(t.workloads or 0), t.key, order[t.solver]))


def run_batch(paths: Sequence[str | Path], solvers: Sequence[str], time_limit: float = 60.0,
              jobs: int | None = None, results_csv: str | Path = "results.csv",
              kill_margin: float | None = None, retry_failed: bool = False,
              console: Console | None = None, progress: bool = True,
              task_fn: TaskFn = solve_task, command: str | None = None,
              pool: TaskPool | None = None) -> BatchSummary:
    """Solve every (instance, solver) pair not yet in `results_csv`, `jobs` at a time.

    A task still running `time_limit + kill_margin` seconds after it started is killed and
    recorded as "timeout" (default margin: 10 s + 25% of the limit, for model building).
    `task_fn(path, solver, time_limit) -> partial row` must be a module-level function.
    `pool` replaces the local ProcessPool(jobs, margin, task_fn) (e.g. a cluster executor).
    Each run appends its command and machine to RESULTS.meta.json next to the CSV.
    """
    from igniter_opt.solvers.registry import SOLVERS

    unknown = [s for s in solvers if s not in SOLVERS]
    if unknown or not solvers:
        raise InputError(f"solvers {unknown or '(none)'}: choose from {', '.join(SOLVERS)}")
    from igniter_opt.solvers.base import check_time_limit

    check_time_limit(time_limit)
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 0):
        raise InputError(f"-j/--jobs {jobs!r}: must be an integer >= 0 (0: one worker per core)")
    if kill_margin is not None and not (isinstance(kill_margin, (int, float)) and 0 <= kill_margin < math.inf):
        raise InputError(f"--kill-margin {kill_margin!r}: must be a finite number of seconds >= 0")
    jobs = max(1, jobs or os.cpu_count() or 1)
    margin = 10.0 + 0.25 * time_limit if kill_margin is None else kill_margin
    results_csv = Path(results_csv)
    started, started_at = time.monotonic(), time.strftime("%Y-%m-%d %H:%M:%S %Z")

    tasks = make_tasks(expand_paths(paths), solvers, time_limit)
    with CsvLock(results_csv):
        if results_columns(results_csv) == LEGACY_COLUMNS:
            raise InputError(f"{results_csv}: written by an older igniter batch (no instance_sha256 "
                             f"and options columns), so its rows cannot be matched safely; pass a new -o")
        fleets = [t.path for t in tasks if has_fleet(Path(t.path))]
        if fleets and results_columns(results_csv) == NOCOST_COLUMNS:
            raise InputError(f"{results_csv}: written before the cost column, so {fleets[0]}'s fleet "
                             f"cost cannot be recorded there; pass a new -o")
        summary = _run_locked(tasks, results_csv, time_limit, retry_failed, console, progress,
                              pool or ProcessPool(jobs, margin, task_fn))
    summary.seconds = time.monotonic() - started
    _record_run(results_csv, summary, command or f"run_batch(solvers={list(solvers)}, "
                f"time_limit={time_limit:g}, jobs={jobs})", started_at)
    return summary


def _run_locked(tasks: list[Task], results_csv: Path, time_limit: float, retry_failed: bool,
                console: Console | None, progress: bool, pool: TaskPool) -> BatchSummary:
    """The part of run_batch that reads and appends the CSV (under its lock)."""
    done = resume_rows(read_results(results_csv))
    summary = BatchSummary(total=len(tasks))
    todo = [t for t in tasks if t.resume_key not in done
            or (retry_failed and done[t.resume_key]["status"] in FAILED)]
    summary.skipped = len(tasks) - len(todo)
    results = ResultsWriter(results_csv)

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TimeRemainingColumn(), console=console or Console(stderr=True),
                   disable=not progress)
    with results, bar:
        bar_id = bar.add_task("solving", total=len(todo))

        def on_row(task: Task, row: dict[str, Any]) -> None:
            results.write(task, row)
            summary.statuses[row.get("status", "")] += 1
            bar.update(bar_id, advance=1, description=f"{Path(task.path).stem} {task.solver}: "
                                                      f"{row.get('status')}")

        with sigterm_as_interrupt((signal.SIGTERM,)):
            try:
                pool.run(todo, time_limit, on_row)
            except KeyboardInterrupt:
                summary.interrupted = True
    return summary


def machine() -> str:
    """CPU model, cores and OS of this machine, in words."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def _record_run(results_csv: Path, summary: BatchSummary, command: str, started_at: str) -> None:
    """Append this run's provenance to the CSV's sidecar RESULTS.meta.json."""
    path = results_csv.with_suffix(".meta.json")
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        meta = {"runs": []}
    meta.setdefault("runs", []).append({
        "command": command, "machine": machine(), "started": started_at,
        "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "ran": summary.ran,
        "skipped": summary.skipped, "statuses": dict(summary.statuses),
        "interrupted": summary.interrupted, "seconds": round(summary.seconds, 1)})
    path.write_text(json.dumps(meta, indent=2) + "\n")
