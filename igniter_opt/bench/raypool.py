"""A TaskPool on a Ray cluster: `igniter batch ... --ray [--address ADDR]`.

Each (instance, solver) task is one Ray task (1 CPU, never retried) running the same `run_task`
as the local pool, so rows are identical; at most `jobs` run at once (default: the cluster's CPUs).
The batch loop, CSV writer, resume and progress bar are run_batch's, unchanged.

- time limit: a task still running `time_limit + margin` seconds after it was submitted is
  cancelled with force (its worker process is killed) and reported "timeout";
- a worker that dies (os._exit, a segfault, a lost node) is reported "crashed";
- Ctrl-C/SIGTERM: every running task is force-cancelled, then the interrupt propagates.

Instance files are read on the driver and sent with the task: a node that does not have the file
at the same path solves a copy written to a temporary directory (same file name).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from igniter_opt.bench.pool import RowSink, TaskFn, run_task, solve_task
from igniter_opt.bench.results import Task
from igniter_opt.platform.raycluster import ray_connection

POLL_S = 0.25


def _ray_task(fn: TaskFn, path: str, data: bytes, solver: str, time_limit: float) -> dict[str, Any]:
    """On a worker: run_task on the instance file, or on a copy of the driver's bytes."""
    if Path(path).is_file() or not data:  # no data: the driver could not read it either
        return run_task(fn, path, solver, time_limit)
    tmp = Path(tempfile.mkdtemp(prefix="igniter-batch-"))
    try:
        copy = tmp / Path(path).name
        copy.write_bytes(data)
        return run_task(fn, str(copy), solver, time_limit)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class RayPool:
    """Run a batch's tasks as Ray tasks (see the module docstring)."""

    def __init__(self, address: str | None = None, jobs: int | None = None, margin: float | None = None,
                 task_fn: TaskFn = solve_task) -> None:
        self.address, self.jobs, self.margin, self.task_fn = address, jobs, margin, task_fn
        self.notes: list[str] = []

    def run(self, tasks: Sequence[Task], time_limit: float, on_row: RowSink) -> None:
        margin = 10.0 + 0.25 * time_limit if self.margin is None else self.margin  # run_batch's default
        with ray_connection(self.address, self.notes) as ray:
            module = sys.modules.get(getattr(self.task_fn, "__module__", ""), None)
            if module is not None and not module.__name__.startswith("igniter_opt"):
                ray.cloudpickle.register_pickle_by_value(module)  # e.g. a test's task function
            remote = ray.remote(num_cpus=1, max_retries=0)(_ray_task)
            jobs = max(1, self.jobs or int(ray.cluster_resources().get("CPU", 1)))
            fn_ref = ray.put(self.task_fn)
            pending = deque(tasks)
            running: dict[Any, tuple[Task, float, float]] = {}  # ref -> (task, submitted, deadline)
            try:
                while pending or running:
                    while pending and len(running) < jobs:
                        task = pending.popleft()
                        path = Path(task.path).resolve()
                        ref = remote.remote(fn_ref, str(path), _read(path), task.solver, time_limit)
                        now = time.monotonic()
                        running[ref] = (task, now, now + time_limit + margin)
                    ready, _ = ray.wait(list(running), num_returns=1, timeout=POLL_S)
                    for ref in ready:
                        task, start, _ = running.pop(ref)
                        on_row(task, self._result(ray, ref, start))
                    now = time.monotonic()
                    for ref, (task, start, deadline) in list(running.items()):
                        if now > deadline:
                            ray.cancel(ref, force=True)
                            del running[ref]
                            on_row(task, {"status": "timeout", "seconds": now - start,
                                          "error": f"killed after {now - start:.1f} s (limit {time_limit:g} s + "
                                                   f"margin {margin:g} s)"})
            finally:
                for ref in running:  # Ctrl-C or an error: no task left running on the cluster
                    try:
                        ray.cancel(ref, force=True)
                    except Exception:  # already finished or gone
                        pass

    @staticmethod
    def _result(ray: Any, ref: Any, start: float) -> dict[str, Any]:
        seconds = time.monotonic() - start
        try:
            return ray.get(ref, timeout=30.0)
        except ray.exceptions.GetTimeoutError:
            return {"status": "crashed", "seconds": seconds, "error": "no result from the Ray worker"}
        except ray.exceptions.RayError as exc:  # worker died, node lost, task could not run
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            return {"status": "crashed", "seconds": seconds, "error": f"Ray worker died: {first}"[:500]}


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""  # the task reports the missing file as an error row, as locally
