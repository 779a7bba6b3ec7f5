"""Mixed-fleet instances for tests and benchmarks/bench_fleets.py (one function, stable signature).

The second GPU type is SYNTHETIC: examples/fleets/synthetic-slow.json, derived from the bundled
V100 profile by examples/fleets/make_synthetic_profile.py (k1, k2, k3, k5 x 1.6, clock x 0.8,
power cap x 0.7). It is not a measured GPU; it gives the tests and the benchmark a slower,
cheaper type with coefficients of their own.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from igniter_opt.bench.generate import mixed_instance
from igniter_opt.data.instance import GpuType, Instance

SYNTHETIC_SLOW = str(Path(__file__).resolve().parents[2] / "examples" / "fleets" / "synthetic-slow.json")
# Prices per hour: the V100 at a cloud on-demand price; the synthetic type cheaper per GPU, dearer
# per unit of work (it serves about 60% of a V100's rate); a V100 "spot" type, cheapest and few.
TYPES = (
    GpuType("v100", "v100", None, 2.48),
    GpuType("slow", SYNTHETIC_SLOW, None, 1.24),
    GpuType("v100-spot", "v100", 2, 0.99),
)


def fleet_instance(n: int, seed: int, types: int = 2, counts: tuple[int | None, ...] | None = None,
                   priced: bool = True) -> Instance:
    """The `mixed` family's n workloads (bench.generate.mixed_instance) over the first `types` of
    TYPES (2: v100 and the synthetic slow type; 3: plus two spot V100s), with `counts` replacing the
    types' counts when given and no prices when not `priced`."""
    base = mixed_instance(n, seed)
    fleet = list(TYPES[:types])
    if counts is not None:
        fleet = [replace(t, count=c) for t, c in zip(fleet, counts)]
    if not priced:
        fleet = [replace(t, price_per_hour=None) for t in fleet]
    return replace(base, name=f"fleet{types}-n{n}-s{seed}", profile=fleet[0].profile, fleet=tuple(fleet))
