"""Batch solving: every (instance, solver) pair in its own worker process, one CSV row each.

Two parts: a `TaskPool` runs the tasks (`ProcessPool`: local worker processes; another executor
can be passed to `run_batch`) and a `ResultsWriter` appends each task's row to the CSV.

The batch is resumable: a task whose key already has a row in the results CSV is skipped, and each
row is appended and flushed the moment its task ends, so an interrupted batch loses nothing that
finished. The key is what determines the answer, not where the file happens to be: the SHA-256 of
the instance file's bytes, the solver, and the options that change the solver's answer
(`answer_options`: the time limit, threads and MIP gap for an exact solver, none for a heuristic).
The same instance reached by another path or from another folder is not solved twice, and a row
made under another time limit is never taken for this one. While a batch runs it holds an exclusive
lock on the CSV (flock), so a second batch on the same CSV stops at once with one line. A task that
overruns its time limit by the kill margin is killed and recorded as "timeout"; an exception is
recorded as "error" and a dead worker as "crashed", never stopping the batch. Ctrl-C (or SIGTERM)
kills the running workers and returns (no orphan processes).

Workers come from a forkserver (imports preloaded once, no fork of a threaded parent).
"""

from __future__ import annotations

import csv
import glob
import hashlib
import json
import math
import multiprocessing as mp
import os
import platform
import signal
import time
import traceback
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from igniter_opt.data.errors import InputError
from igniter_opt.processes import kill_and_reap, sigterm_as_interrupt

COLUMNS = ("instance", "family", "workloads", "solver", "options", "instance_sha256", "gpus",
           "lower_bound", "status", "gap", "seconds", "feasible", "total_share", "slo_violations", "error")
# Results files written before the resume key held the instance's hash and the options: `report`
# still reads them; `batch` refuses to append to them (their rows cannot be matched safely).
LEGACY_COLUMNS = tuple(c for c in COLUMNS if c not in ("options", "instance_sha256"))
FAILED = ("error", "crashed", "timeout")  # statuses of a task that produced no plan
# Imported once by the forkserver, so each worker starts warm (ImportError is ignored there).
PRELOAD = ["igniter_opt.solvers.solve", "igniter_opt.solvers.heuristics.greedy", "igniter_opt.solvers.heuristics.ffd",
           "pyomo.environ"]

TaskFn = Callable[[str, str, float], dict[str, Any]]


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


def _workload_count(path: Path) -> int | None:
    """Workloads in a file without validating it (None when unreadable): for ordering and rows."""
    try:
        items = json.loads(path.read_text()).get("workloads")
        return len(items) if isinstance(items, list) else None
    except (OSError, ValueError, AttributeError):
        return None


def results_columns(path: Path) -> tuple[str, ...] | None:
    """The header of a results CSV (None when absent or empty)."""
    if not path.is_file() or path.stat().st_size == 0:
        return None
    with path.open(newline="") as fh:
        return tuple(next(csv.reader(fh), ()))


def read_results(path: str | Path) -> list[dict[str, str]]:
    """Complete rows of a results CSV (a row cut short by a kill is ignored); [] when absent.

    Files of the previous layout (LEGACY_COLUMNS) are read too, with empty options and hash."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return []
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if tuple(reader.fieldnames or ()) not in (COLUMNS, LEGACY_COLUMNS):
                raise InputError(f"{path}: not a results file of this version (columns {reader.fieldnames})")
            rows = [row for row in reader if row.get("error") is not None and row.get("status")]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: not a results CSV ({exc})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    for row in rows:
        row.setdefault("options", "")
        row.setdefault("instance_sha256", "")
    return rows


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


def solve_task(path: str, solver: str, time_limit: float) -> dict[str, Any]:
    """Load and solve one instance; the plan's numbers as a partial row (exceptions propagate)."""
    from igniter_opt.data.instance import load_instance
    from igniter_opt.solvers.base import SolveOptions
    from igniter_opt.solvers.solve import solve

    inst = load_instance(path)
    plan = solve(inst, solver, options=SolveOptions(time_limit=time_limit, threads=1))
    has_plan = plan.status != "infeasible"
    return {
        "workloads": len(inst.workloads), "gpus": plan.num_gpus if has_plan else None,
        "lower_bound": plan.lower_bound, "status": plan.status, "gap": plan.gap,
        "seconds": plan.solve_seconds, "feasible": plan.feasible,
        "total_share": plan.total_share if has_plan else None,
        "slo_violations": sum(w.meets_slo is False for w in plan.workloads()),
    }


def run_task(fn: TaskFn, path: str, solver: str, time_limit: float) -> dict[str, Any]:
    """Run one task in this process; an exception becomes an "error" row naming where it arose."""
    start = time.perf_counter()
    try:
        return fn(path, solver, time_limit)
    except Exception as exc:  # noqa: BLE001 - any failure becomes a row
        last = traceback.extract_tb(exc.__traceback__)[-1:]
        where = f" at {Path(last[0].filename).name}:{last[0].lineno}" if last else ""
        return {"status": "error", "seconds": time.perf_counter() - start,
                "error": f"{type(exc).__name__}: {exc}{where}"[:500]}


def _worker(conn: Connection, fn: TaskFn) -> None:
    """Worker process: run (path, solver, time_limit) tasks from the pipe until None or EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and kills us
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        conn.send(run_task(fn, *msg))


RowSink = Callable[[Task, dict[str, Any]], None]  # called with each task's partial row as it ends


class TaskPool(Protocol):
    """Where a batch's tasks run: this machine's processes (ProcessPool), or another executor.

    `run` runs every task and calls `on_row(task, partial_row)` once per task as it ends, in the
    calling thread; a task that produced no plan has status "error", "crashed" or "timeout".
    On KeyboardInterrupt it stops its work (no orphans) and lets the interrupt propagate.
    """

    def run(self, tasks: Sequence[Task], time_limit: float, on_row: RowSink) -> None: ...


@dataclass
class _Slot:
    """A worker process and the task it is running (None when idle)."""

    proc: Any
    conn: Connection
    task: Task | None = None
    start: float = 0.0
    deadline: float = 0.0


class ProcessPool:
    """`jobs` worker processes from a forkserver (imports preloaded once, no fork of a threaded
    parent). A task still running `time_limit + margin` seconds after it started is killed and
    reported as "timeout"; a dead worker as "crashed"; either is replaced by a fresh one."""

    def __init__(self, jobs: int, margin: float, task_fn: TaskFn = solve_task) -> None:
        self.jobs, self.margin, self.task_fn = jobs, margin, task_fn
        self.ctx = mp.get_context("forkserver")
        self.ctx.set_forkserver_preload(PRELOAD)

    def _new_slot(self) -> _Slot:
        here, there = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker, args=(there, self.task_fn), daemon=True)
        proc.start()
        there.close()
        return _Slot(proc, here)

    def run(self, tasks: Sequence[Task], time_limit: float, on_row: RowSink) -> None:
        pending, slots = deque(tasks), list[_Slot]()
        margin = self.margin

        def finish(i: int, row: dict[str, Any], replace: bool = False) -> None:
            slot = slots[i]
            assert slot.task is not None
            on_row(slot.task, row)
            slot.task = None
            if replace:  # the worker was killed or died: start a fresh one
                _stop(slot)
                slots[i] = self._new_slot()

        interrupted = False
        try:
            slots.extend(self._new_slot() for _ in range(min(self.jobs, len(tasks))))
            while True:
                for i, slot in enumerate(slots):
                    if slot.task is None and pending:
                        task = pending.popleft()
                        try:
                            slot.conn.send((task.path, task.solver, time_limit))
                        except OSError:
                            pending.appendleft(task)
                            _stop(slot)
                            slots[i] = self._new_slot()
                            continue
                        now = time.monotonic()
                        slot.task, slot.start, slot.deadline = task, now, now + time_limit + margin
                busy = [i for i, s in enumerate(slots) if s.task is not None]
                if not busy:
                    break
                wait([slots[i].conn for i in busy] + [slots[i].proc.sentinel for i in busy], timeout=0.25)
                now = time.monotonic()
                for i in busy:
                    slot = slots[i]
                    if slot.conn.poll():
                        try:
                            finish(i, slot.conn.recv())
                            continue
                        except (EOFError, OSError):
                            pass
                    if not slot.proc.is_alive():
                        finish(i, {"status": "crashed", "seconds": now - slot.start,
                                   "error": f"worker died (exit code {slot.proc.exitcode})"}, replace=True)
                    elif now > slot.deadline:
                        kill_and_reap(slot.proc)
                        finish(i, {"status": "timeout", "seconds": now - slot.start,
                                   "error": f"killed after {now - slot.start:.1f} s (limit "
                                            f"{time_limit:g} s + margin {margin:g} s)"}, replace=True)
        except KeyboardInterrupt:
            interrupted = True
            raise
        finally:
            for slot in slots:
                _stop(slot, polite=slot.task is None and not interrupted)


def _stop(slot: _Slot, polite: bool = False) -> None:
    """End a worker: ask an idle one to exit, kill a busy one; always reaped."""
    if polite and slot.proc.is_alive():
        try:
            slot.conn.send(None)
            slot.proc.join(timeout=2.0)
        except OSError:
            pass
    kill_and_reap(slot.proc)
    slot.conn.close()


def _row(task: Task, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {c: "" for c in COLUMNS}
    row.update(instance=task.key, family=task.family, workloads=task.workloads, solver=task.solver,
               options=task.options, instance_sha256=task.digest)
    row.update(values)
    return {c: _fmt(row[c]) for c in COLUMNS}


class ResultsWriter:
    """The results CSV, appended one row per finished task and flushed at once (a context manager).

    Opening cuts a trailing half-written row (a kill mid-write) and writes the header to a new file.
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

    def __enter__(self) -> ResultsWriter:
        self.fh = self.path.open("a", newline="")
        self.writer = csv.DictWriter(self.fh, fieldnames=COLUMNS)
        return self

    def __exit__(self, *exc: object) -> None:
        self.fh.close()

    def write(self, task: Task, row: dict[str, Any]) -> None:
        self.writer.writerow(_row(task, **row))
        self.fh.flush()


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
        count, digest = _workload_count(p), file_digest(p)
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
