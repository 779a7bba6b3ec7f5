"""Where a batch's tasks run: the `TaskPool` protocol and `ProcessPool`, this machine's worker
processes from a forkserver (imports preloaded once, no fork of a threaded parent).

A task that overruns its time limit by the kill margin is killed and reported as "timeout"; an
exception becomes an "error" row and a dead worker a "crashed" one, never stopping the batch.
Ctrl-C (or SIGTERM) kills the running workers (no orphan processes). `solve_task` is the function
a worker runs (here, or remotely: bench/raypool.py).
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Protocol

from igniter_opt.bench.results import Task
from igniter_opt.platform.processes import kill_and_reap

# Imported once by the forkserver, so each worker starts warm (ImportError is ignored there).
PRELOAD = ["igniter_opt.solvers.solve", "igniter_opt.solvers.heuristics.greedy", "igniter_opt.solvers.heuristics.ffd",
           "pyomo.environ"]

TaskFn = Callable[[str, str, float], dict[str, Any]]


def solve_task(path: str, solver: str, time_limit: float) -> dict[str, Any]:
    """Load and solve one instance; the plan's numbers as a partial row (exceptions propagate)."""
    from igniter_opt.model.instances import load_checked_instance
    from igniter_opt.solvers.base import SolveOptions
    from igniter_opt.solvers.solve import solve

    inst = load_checked_instance(path)
    plan = solve(inst, solver, options=SolveOptions(time_limit=time_limit, threads=1))
    has_plan = plan.status != "infeasible"
    return {
        "workloads": len(inst.workloads), "gpus": plan.num_gpus if has_plan else None,
        "lower_bound": plan.lower_bound, "status": plan.status, "gap": plan.gap,
        "seconds": plan.solve_seconds, "feasible": plan.feasible,
        "total_share": plan.total_share if has_plan else None,
        "slo_violations": sum(w.meets_slo is False for w in plan.workloads()),
        "cost": plan.cost if has_plan else None,
    }


def run_task(fn: TaskFn, path: str, solver: str, time_limit: float) -> dict[str, Any]:
    """Run one task in this process; an exception becomes an "error" row naming where it arose."""
    start = time.perf_counter()
    try:
        return fn(path, solver, time_limit)
    except Exception as exc:  # any failure becomes a row
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
        interrupted = False
        try:
            slots.extend(self._new_slot() for _ in range(min(self.jobs, len(tasks))))
            while True:
                self._hand_out(slots, pending, time_limit)
                busy = [i for i, s in enumerate(slots) if s.task is not None]
                if not busy:
                    break
                wait([slots[i].conn for i in busy] + [slots[i].proc.sentinel for i in busy], timeout=0.25)
                for i in busy:
                    self._collect(slots, i, time_limit, on_row)
        except KeyboardInterrupt:
            interrupted = True
            raise
        finally:
            for slot in slots:
                _stop(slot, polite=slot.task is None and not interrupted)

    def _hand_out(self, slots: list[_Slot], pending: deque[Task], time_limit: float) -> None:
        """Give every idle worker the next pending task (a worker whose pipe broke is replaced)."""
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
                slot.task, slot.start, slot.deadline = task, now, now + time_limit + self.margin

    def _collect(self, slots: list[_Slot], i: int, time_limit: float, on_row: RowSink) -> None:
        """Worker i's row if it answered; "crashed" if it died, "timeout" (killed) past its deadline;
        a dead or killed worker is replaced by a fresh one."""
        slot, now = slots[i], time.monotonic()
        if slot.conn.poll():
            try:
                self._finish(slots, i, slot.conn.recv(), on_row)
                return
            except (EOFError, OSError):
                pass
        if not slot.proc.is_alive():
            self._finish(slots, i, {"status": "crashed", "seconds": now - slot.start,
                                    "error": f"worker died (exit code {slot.proc.exitcode})"}, on_row, replace=True)
        elif now > slot.deadline:
            kill_and_reap(slot.proc)
            self._finish(slots, i, {"status": "timeout", "seconds": now - slot.start,
                                    "error": f"killed after {now - slot.start:.1f} s (limit {time_limit:g} s + "
                                             f"margin {self.margin:g} s)"}, on_row, replace=True)

    def _finish(self, slots: list[_Slot], i: int, row: dict[str, Any], on_row: RowSink, replace: bool = False) -> None:
        slot = slots[i]
        assert slot.task is not None
        on_row(slot.task, row)
        slot.task = None
        if replace:
            _stop(slot)
            slots[i] = self._new_slot()


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
