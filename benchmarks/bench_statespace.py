"""The state search (exact pricing by interference states) on a real root tail: bins, leaves, proof.

    python benchmarks/bench_statespace.py instances/stress/stress-heavytail-n84-01.json --solve 60 --limit 60

For each instance the exact solver runs for --solve seconds while every root call of the state
search is captured; the one of least threshold (the deepest into the LP's tail: thresholds
within 1% of 1, where proofs of ceil(LP) are made) is then run again alone, on the same pricer
and duals, for at most --limit seconds and as many columns as it finds (so it runs until it
proves its threshold or the limit). Table: threshold, seconds, bins bounded and per second,
leaves (bins listed exactly) that finished and that were cut at `max_sets` listed sets, columns
found, whether the threshold was proven, and the open reach left (the Farley ratio a cut call
still allows). Run it on two checkouts to compare kernels: the captured call depends on the
solve's path, so compare on one pickle (--save, --load) rather than on two captures.
`--threads 1,2` runs the call once per thread count (ExactSettings.state_threads, statepool.py).
"""

from __future__ import annotations

import argparse
import pickle
import time
from dataclasses import dataclass, replace

from rich.console import Console
from rich.table import Table

from igniter_opt.data.instance import load_instance
from igniter_opt.solvers.exact import statespace
from igniter_opt.solvers.exact.solver import ExactOptions
from igniter_opt.solvers.solve import SolveOptions, solve


@dataclass
class Leaves:
    """Exact listings of one run: finished (proven) and cut at max_sets."""

    proven: int = 0
    cut: int = 0


class _Counted(statespace.StateSpaceSearch):
    """The search as the solver runs it, counting how its leaves end."""

    leaves: Leaves

    def _exact(self, b: statespace._Bin) -> tuple[float, bool]:
        got, proven = super()._exact(b)
        self.leaves.proven += proven
        self.leaves.cut += not proven
        return got, proven


def capture(path: str, seconds: float) -> dict:
    """The root state call of least threshold in a solve of `seconds` (pricer, duals, threshold)."""
    held: dict = {}
    real = statespace.StateSpaceSearch.__init__

    def init(self, pricer, duals, threshold, *args, **kw):  # type: ignore[no-untyped-def]
        rules = kw.get("rules")
        if threshold < held.get("threshold", float("inf")) and (rules is None or rules.root):
            held.update(threshold=threshold, pricer=pricer, duals=duals.copy())
        real(self, pricer, duals, threshold, *args, **kw)

    statespace.StateSpaceSearch.__init__ = init  # type: ignore[method-assign]
    try:
        solve(load_instance(path), "exact", options=SolveOptions(time_limit=seconds, threads=1),
              solver_options=ExactOptions(time_limit=seconds, threads=1))
    finally:
        statespace.StateSpaceSearch.__init__ = real  # type: ignore[method-assign]
    return held


def rerun(held: dict, limit: float, threads: int | None = None) -> tuple[statespace.StateResult, Leaves, float]:
    """The captured call alone, every column it finds, until proven or the limit (on `threads`
    threads; None: the solve's setting)."""
    if threads is not None:
        held["pricer"].settings = replace(held["pricer"].settings, state_threads=threads)
    warm = _Counted(held["pricer"], held["duals"], 1.5, time.perf_counter() + limit, 10**6)
    warm.leaves = Leaves()
    warm.run()  # the kernels compiled or loaded before the clock starts
    search = _Counted(held["pricer"], held["duals"], held["threshold"], time.perf_counter() + limit, 10**6)
    search.leaves = Leaves()
    start = time.perf_counter()
    out = search.run()
    return out, search.leaves, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("instances", nargs="+", help="instance files (JSON)")
    ap.add_argument("--solve", type=float, default=60.0, help="seconds of the solve that captures the call")
    ap.add_argument("--limit", type=float, default=60.0, help="seconds for the call run alone")
    ap.add_argument("--save", help="pickle the captured call here (one instance)")
    ap.add_argument("--load", help="run this pickled call instead of capturing one (one instance)")
    ap.add_argument("--threads", help="thread counts to run the call with, e.g. 1,2 (default: the settings')")
    args = ap.parse_args()
    table = Table(title=f"state search on the root's deepest call, alone, {args.limit:g} s at most")
    for col in ("instance", "threads", "threshold", "s", "bins", "bins/s", "leaves done", "leaves cut", "columns",
                "proven", "open reach"):
        table.add_column(col, justify="left" if col == "instance" else "right")
    for path in args.instances:
        if args.load:
            with open(args.load, "rb") as f:
                held = pickle.load(f)
        else:
            held = capture(path, args.solve)
        if not held:
            table.add_row(path, "no state call")
            continue
        if args.save:
            with open(args.save, "wb") as f:
                pickle.dump(held, f)
        for threads in [int(t) for t in args.threads.split(",")] if args.threads else [None]:
            _row(table, path, held, threads, args.limit)
    Console(width=160).print(table)


def _row(table: Table, path: str, held: dict, threads: int | None, limit: float) -> None:
    """Run the call and add its row."""
    out, leaves, secs = rerun(held, limit, threads)
    used = held["pricer"].settings.state_threads
    table.add_row(path.rsplit("/", 1)[-1], str(used), f"{held['threshold']:.5f}", f"{secs:.1f}", str(out.bins),
                  f"{out.bins / max(secs, 1e-9):.0f}", str(leaves.proven), str(leaves.cut), str(len(out.found)),
                  "yes" if out.complete else "no", "-" if out.complete else f"{out.open_reach:.4f}")


if __name__ == "__main__":
    main()
