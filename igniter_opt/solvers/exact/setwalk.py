"""The compiled set search's depth-first stack, walked in chunks and split over threads (kernel.py).

`kernel._run` resumes a depth-first search from its stack and returns after a budget of
evaluations, so a search is a `Walker` (its stack, found buffer and scratch) called in chunks
until its stack is empty. A call that is not done after its first chunk (run on the caller's
thread: short calls stay serial) goes on with `threads` walkers: a walker whose stack is empty
takes the bottom half of a stopped walker's stack (the shallowest sets, which hold the largest
subtrees) and each runs its chunks on a thread of its own (the kernel releases the GIL). Every set
pushed on any stack is expanded exactly once, by one walker, so a complete call finds the same sets
as a serial one; `kernel.search` ranks them by value, then by options, so their order does not
depend on which thread found them. A call cut by its deadline or its columns stops on other sets
than a serial one would, as two serial calls do (the chunks are sized by the clock).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

import numpy as np

from igniter_opt.model.predict import Array

DONE = 0  # kernel._run's status for an empty stack


@dataclass
class Walker:
    """One depth-first search's arrays: stack, [stack size, evaluations, found], best value, found
    buffer, scratch (kernel._run reads them in this order)."""

    stk_pos: Array
    stk_sh: Array
    stk_val: Array
    stk_len: Array
    istate: Array
    fstate: Array
    f_pos: Array
    f_sh: Array
    f_val: Array
    f_len: Array
    scratch: tuple[Array, ...]

    @classmethod
    def new(cls, k: int, depth: int, scratch: tuple[Array, ...], root: bool) -> Walker:
        """A walker for k positions and sets of up to `depth` members; `root`: its stack holds the empty set."""
        rows, cap = 4 * k + 1, max(4 * k, 256)
        return cls(np.zeros((rows, depth), dtype=np.int64), np.zeros((rows, depth)), np.zeros(rows),
                   np.zeros(rows, dtype=np.int64), np.array([int(root), 0, 0], dtype=np.int64), np.zeros(1),
                   np.zeros((cap, depth), dtype=np.int64), np.zeros((cap, depth)), np.zeros(cap),
                   np.zeros(cap, dtype=np.int64), scratch)

    @property
    def size(self) -> int:
        """Sets on the stack."""
        return int(self.istate[0])

    def arrays(self) -> tuple[Array, ...]:
        """The stack, state and found-buffer arrays in kernel._run's order."""
        return (self.stk_pos, self.stk_sh, self.stk_val, self.stk_len, self.istate, self.fstate,
                self.f_pos, self.f_sh, self.f_val, self.f_len)

    def room(self, extra: int) -> None:
        """Grow the stack so that `extra` more sets fit (a node pushes up to one child per position)."""
        need = self.size + extra
        if need <= len(self.stk_val):
            return
        grow = max(need - len(self.stk_val), len(self.stk_val))
        self.stk_pos = np.concatenate([self.stk_pos, np.zeros((grow, self.stk_pos.shape[1]), dtype=np.int64)])
        self.stk_sh = np.concatenate([self.stk_sh, np.zeros((grow, self.stk_sh.shape[1]))])
        self.stk_val = np.concatenate([self.stk_val, np.zeros(grow)])
        self.stk_len = np.concatenate([self.stk_len, np.zeros(grow, dtype=np.int64)])

    def give(self, other: Walker, k: int) -> None:
        """Move the bottom half of this stack to `other`, whose stack is empty."""
        sp = self.size
        n = sp // 2
        other.room(n + k)
        for mine, theirs in ((self.stk_pos, other.stk_pos), (self.stk_sh, other.stk_sh),
                             (self.stk_val, other.stk_val), (self.stk_len, other.stk_len)):
            theirs[:n] = mine[:n]
            mine[:sp - n] = mine[n:sp].copy()
        self.istate[0], other.istate[0] = sp - n, n


@dataclass
class Walk:
    """How one call walks: its chunk runner, what it does with a chunk's found sets, its limits."""

    run: Callable[[Walker, int], int]  # one chunk of at most that many evaluations: kernel._run's status
    collect: Callable[[Walker], int]  # take a chunk's found sets; the columns found so far
    k: int  # positions (a node pushes at most k children)
    deadline: float
    max_columns: int
    chunk: int  # evaluations of the first chunk
    chunk_seconds: float
    max_evaluations: int | None = None

    def step(self, w: Walker, chunk: int) -> tuple[int, int, float]:
        """One chunk on `w`: (status, evaluations done, seconds)."""
        before, t0 = int(w.istate[1]), time.perf_counter()
        status = self.run(w, chunk)
        return status, int(w.istate[1]) - before, time.perf_counter() - t0

    def sized(self, done: int, dt: float) -> None:
        """The next chunks' evaluations, from this chunk's rate."""
        if dt > 0 and done > 0:
            self.chunk = int(min(max(done / dt * self.chunk_seconds, 1000), 50_000_000))

    def ended(self, w: Walker, evaluations: int) -> bool:
        """After a chunk: collect its sets, grow its stack; True when the call must stop."""
        columns = self.collect(w)
        w.room(self.k)
        return (time.perf_counter() > self.deadline or columns >= self.max_columns
                or (self.max_evaluations is not None and evaluations >= self.max_evaluations))


def walk(first: Walker, spawn: Callable[[], Walker], threads: int, how: Walk) -> tuple[bool, list[Walker]]:
    """Run the search from `first` (its stack holds the root) until every stack is empty or a limit
    stops it: (complete, the walkers used, whose evaluations and best values the caller sums).
    Serial while one thread is asked for, else from the second chunk on (a budget of evaluations is
    then met to within a chunk per walker)."""
    walkers = [first]
    while time.perf_counter() <= how.deadline:
        evaluated = int(first.istate[1])
        budget = how.chunk if how.max_evaluations is None else max(min(how.chunk, how.max_evaluations - evaluated), 1)
        status, done, dt = how.step(first, budget)
        if status == DONE:
            how.collect(first)
            return True, walkers
        if how.ended(first, int(first.istate[1])):
            return False, walkers
        how.sized(done, dt)
        if threads > 1 and first.size >= 2:
            walkers += [spawn() for _ in range(threads - 1)]
            return _threaded(walkers, how), walkers
    return False, walkers


def _threaded(walkers: list[Walker], how: Walk) -> bool:
    """The walkers on threads of their own; an idle one takes half of the next stopped stack."""
    idle = walkers[1:]
    pending: dict[Future[tuple[int, int, float]], Walker] = {}
    stop = False
    with ThreadPoolExecutor(len(walkers), thread_name_prefix="igniter-sets") as pool:

        def launch(w: Walker) -> None:
            while idle and w.size >= 2:
                other = idle.pop()
                w.give(other, how.k)
                pending[pool.submit(how.step, other, how.chunk)] = other
            pending[pool.submit(how.step, w, how.chunk)] = w

        launch(walkers[0])
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for f in finished:
                w = pending.pop(f)
                _, done, dt = f.result()
                how.sized(done, dt)
                stop = how.ended(w, sum(int(x.istate[1]) for x in walkers)) or stop
                if w.size == 0:
                    idle.append(w)
                elif not stop:
                    launch(w)
    return not stop and all(w.size == 0 for w in walkers)
