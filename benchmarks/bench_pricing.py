"""Exhaustive pricing, numpy (LevelSearch) against numba (exact.kernel), on real LP duals.

    PYTHONPATH=. python benchmarks/bench_pricing.py                    # mixed n = 32, 48, 64
    PYTHONPATH=. python benchmarks/bench_pricing.py --sizes 64 --limit 60

For each size, the exact solver runs on mixed_instance(n, seed) until its first exhaustive pricing
call (beam pricing found nothing); that call's duals, threshold and rules are captured and the
solve is abandoned. Both searches then run that same call with the same time limit (max_columns
as in bnp). Table: evaluations (sets whose least shares were computed), seconds, microseconds per
evaluation, whether the search completed and how many columns it returned. Rows: numpy
(LevelSearch), numba with the numpy bound's decisions (ExactSettings.integer_bound off: the same sets
evaluated when both complete), +int (integer knapsack bound on, one thread) and +2thr, the kernel as
Pricer runs it (its stack split over two threads after the first chunk: setwalk.py). The JIT cost is
measured apart, in fresh processes: the first call with an empty numba cache (compile), then the
first call of a second process on that cache (load), each minus a steady call.
"""

from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from igniter_opt.bench.generate import mixed_instance
from igniter_opt.solvers.exact import kernel
from igniter_opt.solvers.exact.levels import LevelSearch
from igniter_opt.solvers.exact.pricing import Pricer
from igniter_opt.solvers.exact.settings import DEFAULT, ExactSettings
from igniter_opt.solvers.solve import SolveOptions, solve


class _Captured(Exception):
    pass


def capture(n: int, seed: int, limit: float) -> dict | None:
    """Inputs of the first exhaustive pricing call of the exact solver on mixed_instance(n, seed)."""
    real = Pricer.price
    got: dict = {}

    def price(self, duals, threshold, **kw):
        if kw.get("beam", 0) is None:
            got.update(pricer=self, duals=duals.copy(), threshold=threshold,
                       rules=kw.get("rules"), max_columns=kw.get("max_columns", 60))
            raise _Captured
        return real(self, duals, threshold, **kw)

    Pricer.price = price  # type: ignore[method-assign]
    try:
        solve(mixed_instance(n, seed), "exact", options=SolveOptions(time_limit=limit))
    except _Captured:
        pass
    finally:
        Pricer.price = real  # type: ignore[method-assign]
    return got or None


def inputs(c: dict) -> tuple:
    """What Pricer.price hands to the search: positions in order and their values."""
    p = c["pricer"]
    value = c["duals"][p.option_type]
    order = np.nonzero(value > 1e-12)[0]
    ratio = value[order] / np.maximum(p.o.alone[order], 1e-9)
    order = order[np.argsort(-ratio, kind="stable")]
    return p, order, value[order]


def run_numpy(c: dict, limit: float):
    p, order, value = inputs(c)
    t = time.perf_counter()
    res = LevelSearch(p, order, value, c["threshold"], c["rules"], t + limit, c["max_columns"], None,
                      None).run()
    return res, time.perf_counter() - t


def run_numba(c: dict, limit: float, integer: bool = True, threads: int = 1):
    p, order, value = inputs(c)
    # the same pricer's tables with the kernel's integer bound on or off (its settings, not a global)
    q = copy.copy(p)
    q.settings = ExactSettings(integer_bound=integer, set_threads=threads)
    t = time.perf_counter()
    res = kernel.search(q, order, value, c["threshold"], c["rules"], t + limit, c["max_columns"])
    return res, time.perf_counter() - t


JIT_PROBE = """
import time
t0 = time.perf_counter()
import numpy as np
from igniter_opt.model import load_profile
from igniter_opt.bench.generate import mixed_instance
from igniter_opt.solvers.sizing import size_instance
from igniter_opt.solvers.exact.catalogue import catalogue
from igniter_opt.solvers.exact.branching import Rules
from igniter_opt.solvers.exact.pricing import Pricer
from igniter_opt.solvers.exact import kernel
prof = load_profile("v100")
cat = catalogue(prof, size_instance(mixed_instance(12, 0), prof), "paper", True)
p = Pricer(prof.hardware, cat.options, cat.option_type, np.array([len(m) for m in cat.type_demands], float))
value = np.full(len(cat.option_type), 0.01)
order = np.arange(len(value))
times = []
for _ in range(2):
    t = time.perf_counter()
    kernel.search(p, order, value, 1.0, Rules(), t + 600, 10)
    times.append(time.perf_counter() - t)
print(times[0], times[1])
"""


def jit_cost() -> tuple[float, float]:
    """(compile, load): first-call seconds above a steady call, with an empty and a warm cache."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        out = []
        for _ in range(2):
            res = subprocess.run([sys.executable, "-c", JIT_PROBE], env=env, capture_output=True,
                                 text=True, check=True)
            first, steady = map(float, res.stdout.split())
            out.append(first - steady)
    return out[0], out[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 48, 64])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=float, default=30.0, help="seconds per search")
    ap.add_argument("--solve-limit", type=float, default=120.0, help="seconds to reach the first exhaustive call")
    args = ap.parse_args()
    compile_s, load_s = jit_cost()
    print(f"numba JIT: compile {compile_s:.2f} s (first call, empty cache); "
          f"cached load {load_s:.2f} s (first call of a second process)")
    print(f"exhaustive pricing on real duals (first exhaustive call of exact on mixed-n-s{args.seed}), "
          f"limit {args.limit:g} s per search, max_columns {DEFAULT.exhaustive_columns}")
    head = (f"{'n':>4} {'K':>4} {'search':>6} {'evaluations':>12} {'seconds':>9} {'us/eval':>9} "
            f"{'complete':>8} {'columns':>7}")
    print(head)
    print("-" * len(head))
    for n in args.sizes:
        c = capture(n, args.seed, args.solve_limit)
        if c is None:
            print(f"{n:>4}  (no exhaustive call: beam pricing closed the root)")
            continue
        run_numba(c, 0.01)  # compiled or loaded before the timed call
        k = len(inputs(c)[1])
        rows = {}
        for name, fn in (("numpy", run_numpy), ("numba", lambda c, t: run_numba(c, t, False)),
                         ("+int", run_numba), ("+2thr", lambda c, t: run_numba(c, t, True, 2))):
            res, sec = fn(c, args.limit)
            rows[name] = (res.evaluated, sec)
            us = 1e6 * sec / max(res.evaluated, 1)
            print(f"{n:>4} {k:>4} {name:>6} {res.evaluated:>12} {sec:>9.3f} {us:>9.2f} "
                  f"{res.complete!s:>8} {len(res.found):>7}", flush=True)
        (ne, ns), (ke, ks) = rows["numpy"], rows["numba"]
        if ne and ke:
            print(f"{'':>4} {'':>4} {'ratio':>6} {'':>12} {'':>9} "
                  f"{(ns / ne) / (ks / ke):>8.1f}x  (numpy / numba seconds per evaluation)", flush=True)
        (ie, is_), (te, ts) = rows["+int"], rows["+2thr"]
        if ie and te:
            print(f"{'':>4} {'':>4} {'ratio':>6} {'':>12} {'':>9} "
                  f"{(is_ / ie) / (ts / te):>8.1f}x  (one thread / two, seconds per evaluation)", flush=True)


if __name__ == "__main__":
    main()
