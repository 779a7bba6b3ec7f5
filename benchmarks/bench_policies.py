"""GPUs of greedy, exact/paper and exact/joint per size: what the joint batch choice buys (issue 24, item 5).

    python benchmarks/bench_policies.py --sizes 16,32,48 --seeds 3 --first-seed 3000 --time-limit 30

Instances: bench_exact's mixed random family (igniter_opt.bench.generate.mixed_instance), fresh
seeds. Each exact solve runs in a fresh process with one HiGHS thread (bench_exact._one, the same
function). Per instance: greedy GPUs, exact under the paper's batch rule and under `joint` (GPUs,
proven bound, status, seconds); per size the medians and the GPUs joint saves against greedy and paper.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_exact import _one  # the same solve, the same instances


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="16,32,48")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=3000)
    ap.add_argument("--time-limit", type=float, default=30.0)
    args = ap.parse_args(argv)
    console = Console(width=170)
    ctx = mp.get_context("spawn")
    t = Table(title=f"greedy vs exact/paper vs exact/joint, mixed_instance seeds from {args.first_seed}, "
                    f"{args.time_limit:g} s per exact solve, one HiGHS thread")
    for col in ("n", "seed", "greedy", "paper GPUs/bound/status/s", "joint GPUs/bound/status/s",
                "joint saves vs greedy", "vs paper"):
        t.add_column(col, justify="right")
    for n in (int(s) for s in args.sizes.split(",") if s):
        rows = []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            got = {}
            for policy in ("paper", "joint"):
                with ctx.Pool(1) as pool:
                    got[policy] = pool.apply(_one, ((n, seed, policy, args.time_limit),))
                if not got[policy]["feasible"]:
                    sys.exit(f"n={n} seed={seed} {policy}: plan does not verify: {got[policy]['message']}")
            p, j = got["paper"], got["joint"]
            rows.append((p["greedy"], p["gpus"], j["gpus"]))
            cells = [str(n), str(seed), str(p["greedy"]),
                     *(f"{r['gpus']}/{r['bound']}/{r['status']}/{r['seconds']:.0f}" for r in (p, j)),
                     str(p["greedy"] - j["gpus"]), str(p["gpus"] - j["gpus"])]
            console.print(" ".join(cells), style="dim", highlight=False)
            t.add_row(*cells)
        med = [statistics.median(c) for c in zip(*rows)]
        t.add_row(str(n), "median", f"{med[0]:g}", f"{med[1]:g}", f"{med[2]:g}", f"{med[0] - med[2]:g}",
                  f"{med[1] - med[2]:g}", end_section=True)
    console.print(t)


if __name__ == "__main__":
    main()
