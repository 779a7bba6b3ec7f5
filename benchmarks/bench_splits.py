"""exact over every replica split (issue 23) against the fixed-split figures of benchmarks/results.csv.

    python benchmarks/bench_splits.py                                   # the committed stress-replicas
    python benchmarks/bench_splits.py 'instances/*/*.json' --time-limit 60

For each instance with a workload above one GPU (instances without one run exactly the old code
path and are skipped), exact is solved once and compared with the `exact` row of results.csv
(solved when the sizing's split was fixed): GPUs, bound, status, seconds. A row where exact now
uses more GPUs is marked WORSE (none should be).
"""

from __future__ import annotations

import argparse
import csv
import glob
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from igniter_opt.data.instance import load_instance
from igniter_opt.model import load_profile
from igniter_opt.solvers.sizing import size_instance, split_workloads
from igniter_opt.solvers.solve import SolveOptions, solve

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pattern", nargs="?", default="instances/stress/stress-replicas-*.json")
    parser.add_argument("--time-limit", type=float, default=30.0)
    parser.add_argument("--results", default=str(ROOT / "benchmarks/results.csv"))
    args = parser.parse_args()
    v100 = load_profile("v100")
    with open(args.results, newline="") as f:
        ref = {r["instance"]: r for r in csv.DictReader(f) if r["solver"] == "exact"}
    table = Table(title=f"exact over every split (limit {args.time_limit:g} s) vs results.csv (fixed split)")
    for col in ("instance", "before", "GPUs", "bound", "status", "s", ""):
        table.add_column(col, justify="left" if col == "instance" else "right")
    fewer = worse = rows = 0
    for path in sorted(glob.glob(args.pattern)):
        inst = load_instance(path)
        if not split_workloads(size_instance(inst, v100)):
            continue
        start = time.perf_counter()
        plan = solve(inst, "exact", options=SolveOptions(time_limit=args.time_limit))
        before = ref.get(path, {}).get("gpus", "-")
        mark = ""
        if before != "-":
            fewer += plan.num_gpus < int(before)
            worse += plan.num_gpus > int(before)
            mark = "WORSE" if plan.num_gpus > int(before) else ("fewer" if plan.num_gpus < int(before) else "")
        rows += 1
        table.add_row(Path(path).stem, before, str(plan.num_gpus), str(plan.lower_bound), plan.status,
                      f"{time.perf_counter() - start:.1f}", mark)
    Console().print(table)
    print(f"{rows} instances with a split workload: {fewer} with fewer GPUs, {worse} with more")


if __name__ == "__main__":
    main()
