"""A state search's bins visited on threads: worker copies, each visit merged as it ends.

The state search (statespace.py) spends its time in compiled kernels (a bin's Lagrangian bound,
a leaf's exact listing) that release the GIL, so two cores visit nearly twice the bins. Each
worker is a copy of the search with its own arrays and its own found sets; a free thread takes
the next half of the heap's top bin, and what its visit left (new bins, sets found, counters) is
merged on the search's thread as the visit ends. A complete call finds the same sets as a serial
one (every bin above the threshold is visited, whatever the order); a call cut by its columns or
its deadline may stop on other bins than a serial one would (as two serial calls do, by the clock).
"""

from __future__ import annotations

import heapq
import os
import queue
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Protocol


class Visiting(Protocol):
    """What the pool needs of a search (statespace.StateSpaceSearch)."""

    def worker(self) -> Visiting: ...

    def visit_one(self, b: Any) -> Any: ...

    def absorb(self, visited: Any) -> list[Any]: ...


def usable_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class BinPool:
    """`size` worker copies of `search` and the threads they run on; close() stops the threads."""

    def __init__(self, search: Visiting, size: int):
        self.search = search
        self.idle: queue.SimpleQueue[Visiting] = queue.SimpleQueue()
        for _ in range(size):
            self.idle.put(search.worker())
        self.size = size
        self.executor = ThreadPoolExecutor(size, thread_name_prefix="igniter-state")

    def visit(self, b: Any) -> Any:
        """One bin on whichever worker copy is idle (one per thread at a time)."""
        w = self.idle.get()
        try:
            return w.visit_one(b)
        finally:
            self.idle.put(w)

    def close(self) -> None:
        """Stop the threads (a visit in flight finishes: its leaves are bounded by the call's deadline)."""
        self.executor.shutdown(wait=True, cancel_futures=True)


def drain(pool: BinPool, heap: list[Any], more: Callable[[], bool], pop: Callable[[], list[Any] | None],
          stop: Callable[[], bool]) -> bool:
    """Best first on the threads: while a thread is free and a bin passes the threshold (`more`),
    the top bin's halves (`pop`; None for a bin kept unresolved) are visited; each visit's open
    bins go back on the heap as it ends. True when no bin is left above the threshold, False
    when `stop` said so (visits in flight end and are merged, so the heap bounds every set)."""
    pending: set[Future[Any]] = set()
    stopped = False
    while True:
        while not stopped and len(pending) < pool.size and more():
            stopped = stop()
            if not stopped:
                pending.update(pool.executor.submit(pool.visit, half) for half in pop() or [])
        if not pending:
            return not stopped
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        for f in done:
            for b in pool.search.absorb(f.result()):
                heapq.heappush(heap, b)
