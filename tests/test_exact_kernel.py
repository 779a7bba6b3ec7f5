"""The numba exhaustive pricing kernel against the numpy LevelSearch and the oracle."""

from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np
import pytest
from conftest import fixed_split, mixed_pricer

pytest.importorskip("numba")

from igniter_opt.bench.generate import mixed_instance
from igniter_opt.data.instance import Instance
from igniter_opt.model import load_profile
from igniter_opt.solvers.exact import kernel, pricing
from igniter_opt.solvers.exact.branching import Rules
from igniter_opt.solvers.exact.catalogue import catalogue
from igniter_opt.solvers.exact.levels import LevelSearch
from igniter_opt.solvers.exact.oracle import least_shares
from igniter_opt.solvers.exact.pricing import Pricer
from igniter_opt.solvers.exact.settings import ExactSettings
from igniter_opt.solvers.sizing import size_instance

ALL = 10**6  # max_columns large enough to return every set above the threshold


def _pricer(n: int, seed: int, policy: str = "paper", settings: ExactSettings | None = None) -> Pricer:
    return mixed_pricer(n, seed, policy, settings=settings)


def _duals(p: Pricer, seed: int, spread: float) -> np.ndarray:
    """Non-negative duals near each type's cheapest share / 100 (so sets near full price near 1)."""
    cheapest = np.full(len(p.demand), np.inf)
    np.minimum.at(cheapest, p.option_type, p.o.alone)
    rng = np.random.default_rng(seed)
    d = cheapest / 100 * rng.uniform(1 - spread, 1 + spread, len(cheapest))
    d[rng.random(len(d)) < 0.1] = 0.0  # some types priced out entirely
    return d


def _order(p: Pricer, duals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The positions and values Pricer.price searches (same code path)."""
    value = duals[p.option_type]
    order = np.nonzero(value > 1e-12)[0]
    ratio = value[order] / np.maximum(p.o.alone[order], 1e-9)
    order = order[np.argsort(-ratio, kind="stable")]
    return order, value[order]


def _both(p: Pricer, duals: np.ndarray, threshold: float, rules: Rules, max_columns: int = ALL):
    order, value = _order(p, duals)
    far = time.perf_counter() + 600
    ref = LevelSearch(p, order, value, threshold, rules, far, max_columns, None, None).run()
    got = kernel.search(p, order, value, threshold, rules, far, max_columns)
    return ref, got


def _as_dict(found) -> dict[tuple[int, ...], np.ndarray]:
    return {tuple(int(o) for o in opts): shares for opts, shares, _ in found}


def _check_oracle(p: Pricer, found, threshold: float) -> None:
    for opts, shares, value in found:
        assert value > threshold
        assert np.all(np.diff(opts) >= 0)
        assert np.array_equal(least_shares(p.hw, p.o, np.asarray(opts)[None, :])[0], shares)


@pytest.mark.parametrize("integer", [False, True])
@pytest.mark.parametrize("n,seed,spread,threshold", [
    (12, 0, 0.3, 1.0), (16, 1, 0.3, 1.0), (20, 2, 0.4, 1.05), (24, 3, 0.3, 1.0),
    (28, 4, 0.4, 1.05), (32, 5, 0.3, 1.02), (32, 6, 0.2, 1.0)])
def test_kernel_equals_level_search(n, seed, spread, threshold, integer):
    p = _pricer(n, seed, settings=ExactSettings(integer_bound=integer))
    ref, got = _both(p, _duals(p, seed, spread), threshold, Rules())
    assert ref.complete and got.complete
    a, b = _as_dict(ref.found), _as_dict(got.found)
    assert a and set(a) == set(b)
    for key in a:
        assert np.array_equal(a[key], b[key])
    assert got.best == ref.best  # the largest value above the threshold
    if integer:  # a tighter bound: fewer sets extended
        assert got.evaluated <= ref.evaluated
    elif np.all(p.demand == 1):  # the numpy bound's decisions: the same sets evaluated
        assert got.evaluated == ref.evaluated
    _check_oracle(p, got.found, threshold)


@pytest.mark.parametrize("integer", [False, True])
@pytest.mark.parametrize("n,seed,spread", [(12, 3, 0.4), (14, 2, 0.3)])
def test_kernel_equals_level_search_with_batch_options(n, seed, spread, integer):
    """Policy joint: several options (batches) per type, the type's multiplicity shared."""
    p = _pricer(n, seed, "joint", ExactSettings(integer_bound=integer))
    assert len(p.option_type) > len(p.demand)
    ref, got = _both(p, _duals(p, seed, spread), 1.0, Rules())
    assert ref.complete and got.complete
    a, b = _as_dict(ref.found), _as_dict(got.found)
    assert a and set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a)
    if not integer:
        assert got.evaluated == ref.evaluated
    _check_oracle(p, got.found, 1.0)


@pytest.mark.parametrize("n,seed", [(20, 7), (28, 8)])
def test_kernel_with_apart_and_together_rules(n, seed):
    p = _pricer(n, seed)
    duals = _duals(p, seed, 0.3)
    _, plain = _both(p, duals, 1.0, Rules())
    types = [sorted(set(p.option_type[list(o)].tolist())) for o, _, _ in plain.found]
    pairs = [(t[0], t[1]) for t in types if len(t) >= 2][:3]
    assert pairs
    apart = Rules(apart=pairs)
    ref, got = _both(p, duals, 1.0, apart)
    assert ref.complete and got.complete
    a, b = _as_dict(ref.found), _as_dict(got.found)
    assert set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a)
    assert all(apart.admits(p.option_type[list(k)]) for k in b)
    assert len(b) < len(plain.found)
    _check_oracle(p, got.found, 1.0)
    together = Rules(together=pairs[:1], apart=pairs[1:])
    ref, got = _both(p, duals, 1.0, together)
    assert ref.complete and got.complete
    a, b = _as_dict(ref.found), _as_dict(got.found)
    assert set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a)
    assert all(together.admits(p.option_type[list(k)]) for k in b)
    # the compiled search cuts a set whose together partner can no longer join (its positions all
    # lie before the set's last one): fewer sets than with the apart rules alone, and its best is
    # an admissible set's (it used to count sets breaking the rule, which hid the node's real best)
    _, apart_only = _both(p, duals, 1.0, Rules(apart=pairs[1:]))
    assert got.evaluated < apart_only.evaluated
    assert got.best == pytest.approx(max(v for _, _, v in got.found)) if got.found else got.best <= 1.0


@pytest.mark.parametrize("n,seed", [(16, 1), (32, 5)])
def test_nothing_above_threshold(n, seed):
    p = _pricer(n, seed)
    duals = _duals(p, seed, 0.3)
    _, full = _both(p, duals, 1.0, Rules())
    ref, got = _both(p, duals, full.best + 1e-3, Rules())
    assert ref.complete and got.complete
    assert ref.found == [] and got.found == []
    assert got.best <= full.best + 1e-3


def test_resumed_in_small_chunks_is_the_same_search():
    p = _pricer(24, 3)
    duals = _duals(p, 3, 0.3)
    _, whole = _both(p, duals, 1.0, Rules())
    # every call stops after 1000 evaluations (the first after 7)
    small = _pricer(24, 3, settings=ExactSettings(first_chunk=7, chunk_seconds=1e-9))
    order, value = _order(p, duals)
    got = kernel.search(small, order, value, 1.0, Rules(), time.perf_counter() + 600, ALL)
    assert got.complete and got.evaluated == whole.evaluated
    assert _as_dict(got.found).keys() == _as_dict(whole.found).keys()


def test_limits_make_the_search_incomplete():
    p = _pricer(32, 5)
    duals = _duals(p, 5, 0.3)
    order, value = _order(p, duals)
    far = time.perf_counter() + 600
    few = kernel.search(p, order, value, 1.02, Rules(), far, 3)
    assert not few.complete and len(few.found) == 3
    assert all(v > 1.02 for _, _, v in few.found)
    short = kernel.search(p, order, value, 1.02, Rules(), far, ALL, max_evaluations=50)
    assert not short.complete and short.evaluated < 50 + len(order)
    late = kernel.search(p, order, value, 1.02, Rules(), time.perf_counter() - 1, ALL)
    assert not late.complete


def test_pricer_uses_the_kernel_for_exhaustive_calls(monkeypatch):
    p = _pricer(24, 3)
    duals = _duals(p, 3, 0.3)
    calls = []
    real = kernel.search
    monkeypatch.setattr(kernel, "search", lambda *a, **k: calls.append(1) or real(*a, **k))
    far = time.perf_counter() + 600
    fast = p.price(duals, 1.0, beam=None, deadline=far, max_columns=ALL)
    assert calls == [1]
    p.price(duals, 1.0, beam=50, deadline=far)  # beam pricing stays in numpy
    assert calls == [1]
    numpy = Pricer(p.hw, p.o, p.option_type, p.demand, ExactSettings(kernel=False))
    slow = numpy.price(duals, 1.0, beam=None, deadline=far, max_columns=ALL)
    assert calls == [1]
    assert fast.complete and slow.complete
    assert {c.members: c.shares for c in fast.columns} == {c.members: c.shares for c in slow.columns}
    monkeypatch.setattr(pricing, "_kernel", None)  # numba missing: the numpy search
    missing = p.price(duals, 1.0, beam=None, deadline=far, max_columns=ALL)
    assert calls == [1]
    assert {c.members: c.shares for c in missing.columns} == {c.members: c.shares for c in slow.columns}


def _with_copies(n: int, seed: int, settings: ExactSettings) -> Pricer:
    """mixed_instance(n, seed) with each workload repeated 1-3 times: types with demand > 1,
    so an option may appear several times in one set."""
    rng = np.random.default_rng(seed)
    workloads = [dataclasses.replace(w, name=f"{w.name}-{c}") for w in mixed_instance(n, seed).workloads
                 for c in range(int(rng.integers(1, 4)))]
    profile = load_profile("v100")
    inst = Instance(name=f"copies-{n}-{seed}", profile="v100", workloads=tuple(workloads))
    cat = catalogue(profile, fixed_split(size_instance(inst, profile)), "paper", True)
    # caps: a type's workload count, or a split workload's rate level's most copies in one column
    return Pricer(profile.hardware, cat.options, cat.option_type, cat.caps, settings)


def _brute_force(p: Pricer, order: np.ndarray, value: np.ndarray) -> dict:
    """Every feasible set (multiset of positions within the multiplicities), by the oracle alone:
    feasibility is downward closed, so growing only feasible sets reaches them all."""
    types = p.option_type[order]
    out: dict[tuple[int, ...], tuple[np.ndarray, float]] = {}

    def grow(pos: list[int], used: dict[int, int], v: float) -> None:
        for q in range(pos[-1] if pos else 0, len(order)):
            t = int(types[q])
            if used.get(t, 0) >= p.demand[t]:
                continue
            opts = np.sort(order[[*pos, q]])
            shares = least_shares(p.hw, p.o, opts[None, :])[0]
            if not np.isfinite(shares).all():
                continue
            out[tuple(opts.tolist())] = (shares, v + value[q])
            used[t] = used.get(t, 0) + 1
            grow([*pos, q], used, v + value[q])
            used[t] -= 1

    grow([], {}, 0.0)
    return out


@pytest.mark.parametrize("integer", [False, True])
@pytest.mark.parametrize("seed,copies", [(4, True), (9, True), (1, True), (3, False)])
def test_kernel_finds_exactly_the_sets_brute_force_finds(seed, copies, integer):
    """Exhaustive means exhaustive: the kernel's sets above the threshold are all the feasible
    sets above it, with options repeated too (the numpy search's "at most a items" bound counts
    each option once and can miss such sets; the kernel finds a superset of its sets)."""
    settings = ExactSettings(integer_bound=integer)
    p = _with_copies(8, seed, settings) if copies else _pricer(10, seed, settings=settings)
    rng = np.random.default_rng(seed)
    cheapest = np.full(len(p.demand), np.inf)
    np.minimum.at(cheapest, p.option_type, p.o.alone)
    order, value = _order(p, cheapest / 100 * rng.uniform(0.8, 1.3, len(cheapest)))
    every = _brute_force(p, order, value)
    for threshold in (1.0, 1.1):
        want = {k for k, (_, v) in every.items() if v > threshold}
        assert want or threshold > 1.0
        far = time.perf_counter() + 600
        got = kernel.search(p, order, value, threshold, Rules(), far, ALL)
        assert got.complete
        found = _as_dict(got.found)
        assert set(found) == want
        assert all(np.array_equal(found[k], every[k][0]) for k in found)
        ref = LevelSearch(p, order, value, threshold, Rules(), far, ALL, None, None).run()
        assert set(_as_dict(ref.found)) <= set(found)


@pytest.mark.parametrize("n,seed,policy,threshold,spread", [(32, 5, "paper", 1.0, 0.3), (28, 4, "paper", 1.05, 0.3),
                                                          (16, 2, "joint", 1.0, 0.4)])
def test_the_set_search_on_two_threads_finds_what_one_finds(monkeypatch, n, seed, policy, threshold, spread):
    """Chunks of 50 evaluations: the second chunk on splits the stack over two walkers (setwalk.py),
    which evaluate the same sets and find the same ones, ranked the same, as one thread."""
    from igniter_opt.solvers.exact import setwalk

    monkeypatch.setattr(kernel, "usable_cores", lambda: 2)  # the split even where CI lends one core
    split = []
    threaded = setwalk._threaded
    monkeypatch.setattr(setwalk, "_threaded", lambda walkers, how: split.append(len(walkers)) or threaded(walkers, how))
    got = {}
    for threads in (1, 2):
        p = _pricer(n, seed, policy, ExactSettings(first_chunk=50, chunk_seconds=1e-4, set_threads=threads))
        order, value = _order(p, _duals(p, seed, spread))
        got[threads] = kernel.search(p, order, value, threshold, Rules(), time.perf_counter() + 600, ALL)
    one, two = got[1], got[2]
    assert split == [2]  # one call walked on two threads
    assert one.complete and two.complete and len(one.found) > 3
    assert [tuple(f[0]) for f in one.found] == [tuple(f[0]) for f in two.found]
    assert all(np.array_equal(a[1], b[1]) and a[2] == b[2] for a, b in zip(one.found, two.found, strict=True))
    assert (two.best, two.evaluated) == (one.best, one.evaluated)
    cut = kernel.search(p, order, value, threshold, Rules(), time.perf_counter() + 600, 3)
    assert len(cut.found) == 3 and not cut.complete
    calls = len(split)
    budgeted = _pricer(n, seed, policy, dataclasses.replace(p.settings, set_threads_from=100))  # a budget of sets
    capped = kernel.search(budgeted, order, value, threshold, Rules(), time.perf_counter() + 600, ALL, 1000)
    assert not capped.complete and 1000 <= capped.evaluated < one.evaluated
    assert len(split) == calls + 1
    assert not any(t.name.startswith("igniter-sets") for t in threading.enumerate())


def test_ctrl_c_in_a_threaded_set_search_stops_its_threads(monkeypatch):
    """A KeyboardInterrupt in one walker's chunk reaches the caller, and no walker thread is left."""
    monkeypatch.setattr(kernel, "usable_cores", lambda: 2)
    real, calls = kernel._run, []

    def interrupted(*args):
        calls.append(threading.current_thread().name)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(kernel, "_run", interrupted)
    p = _pricer(32, 5, "paper", ExactSettings(first_chunk=50, chunk_seconds=1e-4, set_threads=2))
    order, value = _order(p, _duals(p, 5, 0.3))
    with pytest.raises(KeyboardInterrupt):
        kernel.search(p, order, value, 1.0, Rules(), time.perf_counter() + 600, ALL)
    assert any(name.startswith("igniter-sets") for name in calls[1:])  # it was on the walkers' threads
    assert not any(t.name.startswith("igniter-sets") for t in threading.enumerate())


def test_a_walker_gives_the_bottom_half_of_its_stack():
    from igniter_opt.solvers.exact.setwalk import Walker

    a, b = Walker.new(3, 4, (), root=False), Walker.new(3, 4, (), root=False)
    a.room(7)
    a.stk_val[:7] = np.arange(7.0)
    a.stk_pos[:7, 0] = np.arange(7)
    a.istate[0] = 7
    a.give(b, 3)
    assert (a.size, b.size) == (4, 3)
    assert list(b.stk_val[:3]) == [0.0, 1.0, 2.0] and list(b.stk_pos[:3, 0]) == [0, 1, 2]
    assert list(a.stk_val[:4]) == [3.0, 4.0, 5.0, 6.0] and list(a.stk_pos[:4, 0]) == [3, 4, 5, 6]
