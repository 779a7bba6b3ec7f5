"""The state search on threads (statepool.py): the same sets, bins and proofs as the serial search
when complete, a cut near its column cap, and no thread left behind."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import numpy as np
import pytest
from conftest import mixed_pricer

from igniter_opt.solvers.exact import statepool
from igniter_opt.solvers.exact.branching import Rules
from igniter_opt.solvers.exact.pricing import Pricer
from igniter_opt.solvers.exact.settings import ExactSettings
from igniter_opt.solvers.exact.statespace import StateResult, StateSpaceSearch

FAR = 600.0


def _duals(p: Pricer, seed: int) -> np.ndarray:
    """Duals near each type's least share alone / 100, so that full GPUs price near 1."""
    rng = np.random.default_rng(seed)
    alone = np.full(len(p.demand), np.inf)
    np.minimum.at(alone, p.option_type, p.o.alone)
    return np.where(np.isfinite(alone), alone, 0.0) / 100 * rng.uniform(0.97, 1.12, len(p.demand))


def _run(p: Pricer, duals: np.ndarray, threshold: float, threads: int, rules: Rules | None = None,
         max_columns: int = 10**6) -> StateResult:
    """One call with `threads` threads, the pool from the first bin on (a pricer of its own: the
    conftest's are shared)."""
    q = Pricer(p.hw, p.o, p.option_type, p.demand.astype(float),
               replace(p.settings, state_threads=threads, state_parallel_after=0.0))
    return StateSpaceSearch(q, duals, threshold, time.perf_counter() + FAR, max_columns, rules=rules).run()


@pytest.fixture
def pools(monkeypatch):
    """Two usable cores whatever the machine has; the pools made and the bins their workers visited."""
    made: list[statepool.BinPool] = []
    visited = [0]
    real_init, real_visit = statepool.BinPool.__init__, statepool.BinPool.visit

    def init(self, search, size):
        real_init(self, search, size)
        made.append(self)

    def visit(self, b):
        visited[0] += 1
        return real_visit(self, b)

    monkeypatch.setattr(statepool, "usable_cores", lambda: 2)
    monkeypatch.setattr(statepool.BinPool, "__init__", init)
    monkeypatch.setattr(statepool.BinPool, "visit", visit)
    return made, visited


@pytest.mark.parametrize("policy,n,seed", [("paper", 32, 4), ("joint", 16, 8)])
def test_threads_find_the_serial_sets_and_prove_the_same(pools, policy, n, seed):
    made, visited = pools
    p = mixed_pricer(n, seed, policy, False)
    duals = _duals(p, seed)
    serial = _run(p, duals, 1.0, 1)
    assert not made  # one thread: no pool
    threaded = _run(p, duals, 1.0, 2)
    assert made and visited[0] > 0  # the pool visited bins
    assert serial.complete and threaded.complete and serial.found
    # the same sets (in value order; ties in the order met, which batches may change)
    assert sorted((k, v) for k, _, v in threaded.found) == sorted((k, v) for k, _, v in serial.found)
    assert [v for _, _, v in threaded.found] == [v for _, _, v in serial.found]
    assert threaded.bins == serial.bins and threaded.best == serial.best
    # the proof above the best set: complete, nothing found, both ways
    proof = _run(p, duals, serial.best + 1e-6, 2)
    assert proof.complete and not proof.found
    assert not any(t.name.startswith("igniter-state") for t in threading.enumerate())


def test_threads_at_a_together_node_obey_its_rule(pools):
    """Under joint at a node with a together pair (the bounds merge the pair into one item, each
    worker with its own merged buffers): the serial search's sets, each holding both or neither."""
    p = mixed_pricer(16, 6, "joint", False)
    duals = _duals(p, 6)
    order = [int(t) for t in np.argsort(-duals) if duals[t] > 0]
    rules = Rules(together=[(order[0], order[1])])
    serial = _run(p, duals, 1.0, 1, rules)
    threaded = _run(p, duals, 1.0, 2, rules)
    assert pools[0]
    assert sorted(k for k, _, _ in threaded.found) == sorted(k for k, _, _ in serial.found)
    assert all(rules.admits(p.option_type[list(k)]) for k, _, _ in threaded.found)


def test_a_threaded_search_cut_by_its_columns_stops_near_them(pools):
    """max_columns is checked before each bin is taken: a threaded call stops with at least
    that many sets, and at most what the visits then in flight add (a half each of three bins
    at most, two sets each)."""
    p = mixed_pricer(32, 4, "paper", False)
    duals = _duals(p, 4)
    full = _run(p, duals, 1.0, 1)
    assert len(full.found) > 12
    cut = _run(p, duals, 1.0, 2, max_columns=5)
    assert pools[1][0] > 0 and not cut.complete and 5 <= len(cut.found) <= 5 + 2 * 3


def test_settings_default_to_two_threads_after_a_short_serial_start():
    s = ExactSettings()
    assert s.state_threads == 2 and 0 < s.state_parallel_after < 1
