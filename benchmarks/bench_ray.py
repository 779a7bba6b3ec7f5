"""Deploy and tear-down times of the ray backend on a local 3-node test cluster (no GPU needed).

    PYTHONPATH=. python benchmarks/bench_ray.py --repeats 3 [--batch INSTANCES --solvers S --time-limit T --jobs 2]

A head and two worker nodes declaring 2 GPUs each (ray.cluster_utils.Cluster), the 3-GPU plan
benchmarks/plans/cpu-ray-3gpu.json (4 CPU stand-in servers over both nodes): per repeat, seconds from
deploy() entry to all servers ready (placement group, node set-up, actors, tritonservers) and from
leaving the deployment to everything stopped (servers, actors, placement group). With --batch, also
`igniter batch` on the cluster vs the local process pool over the same instances and solvers.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import ray
from ray.cluster_utils import Cluster

from igniter_opt.data.plan import load_plan
from igniter_opt.deploy.session import deploy
from igniter_opt.deploy.types import DeployOptions

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", nargs="*", default=None, help="instances for the batch comparison")
    ap.add_argument("--solvers", default="greedy,ffd")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--time-limit", type=float, default=5.0)
    args = ap.parse_args()
    small = 80 * 2**20
    t0 = time.monotonic()
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "num_gpus": 0, "include_dashboard": False,
                                                      "object_store_memory": small})
    try:
        for _ in range(2):
            c.add_node(num_cpus=4, num_gpus=2, object_store_memory=small)
        c.wait_for_nodes(timeout=60)
        ray.init(address=c.address, log_to_driver=False, logging_level="WARNING")
        print(f"cluster of 3 nodes up in {time.monotonic() - t0:.1f} s")
        plan = load_plan(ROOT / "benchmarks" / "plans" / "cpu-ray-3gpu.json")
        ups, downs = [], []
        for i in range(args.repeats):
            with tempfile.TemporaryDirectory() as tmp:
                t1 = time.monotonic()
                with deploy(plan, DeployOptions(backend="ray", run_dir=Path(tmp) / "run", device="cpu")) as dep:
                    ups.append(time.monotonic() - t1)
                    nodes = len({e.node_id for e in dep.endpoints})
                    t2 = time.monotonic()
                downs.append(time.monotonic() - t2)
            print(f"repeat {i + 1}: {len(dep.endpoints)} servers on {nodes} nodes ready in {ups[-1]:.2f} s, "
                  f"torn down in {downs[-1]:.2f} s")
        print(f"deploy to all ready: median {statistics.median(ups):.2f} s (max {max(ups):.2f}); "
              f"tear-down: median {statistics.median(downs):.2f} s (max {max(downs):.2f})")
        if args.batch:
            from igniter_opt.bench.batch import run_batch
            from igniter_opt.bench.raypool import RayPool

            solvers = args.solvers.split(",")
            with tempfile.TemporaryDirectory() as tmp:
                times = {}
                for mode in ("local", "ray", "local", "ray"):
                    out = Path(tmp) / f"{mode}-{len(times)}.csv"
                    t3 = time.monotonic()
                    s = run_batch(args.batch, solvers, time_limit=args.time_limit, jobs=args.jobs, results_csv=out,
                                  progress=False, pool=RayPool(jobs=args.jobs) if mode == "ray" else None)
                    times.setdefault(mode, []).append(time.monotonic() - t3)
                    print(f"batch {mode}: {s.ran} tasks in {times[mode][-1]:.1f} s ({dict(s.statuses)})")
                ratio = min(times["ray"]) / min(times["local"])
                print(f"batch on the cluster / local pool (best of 2 each, jobs={args.jobs}): {ratio:.2f}x")
    finally:
        ray.shutdown()
        c.shutdown()


if __name__ == "__main__":
    main()
