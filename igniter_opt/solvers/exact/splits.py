"""The replica split as a decision of `exact`: the rate levels a split workload's pieces may take.

A workload no single GPU can carry (the sizing split it into replicas) is served by several
pieces, each a replica with its own rate, paper batch (from that rate) and share. `exact` chooses
the pieces: each (workload, rate level) is an option of its own, and the master covers the
workload's rate (the served fractions of its pieces sum to at least 1) instead of a count. The
levels, with r_max the largest rate one GPU sustains alone (sizing.max_rate_alone, at the margin)
and step = r_max / grid (settings.split_grid, 10 by default):

    k step             (k = 1..grid: the grid),
    R - k step         (k >= 0, where in (0, r_max]: the remainders that make a split exact),
    the sizing's own replica and rest rates (so its split, and every plan over it, stays a plan).

Every multiset of these levels whose rates sum to at least R is a split `exact` searches, with
every placement of the pieces; its bound holds over all of them ("every split on the grid").
Pieces of one workload may share a GPU (verify judges each piece on its own, as a replica).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from igniter_opt.data.instance import Workload
from igniter_opt.model import Profile
from igniter_opt.solvers.exact.settings import DEFAULT
from igniter_opt.solvers.sizing import REPLICA_RATE_FRACTION, Demand, demand_at, split_workloads

SAME = 1e-9  # a tolerance (relative): two levels this close are one


def space_of(demands: list[Demand], grid: int = DEFAULT.split_grid) -> str:
    """The plan's `space` when `exact` searched the splits ("" when no workload is split)."""
    return f"every split on the grid r_max/{grid}" if split_workloads(demands) else ""


def split_note(status: str, names: list[str], grid: int = DEFAULT.split_grid) -> str:
    """What the status holds over when some workload is split, in words."""
    which = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    claim = "optimal" if status == "optimal" else "bound"
    return (f"{claim} over every split of {which} into replicas of rates k r_max/{grid} or the rate "
            f"minus such multiples (r_max: the largest single-GPU rate), placed anywhere")


@dataclass(frozen=True)
class SplitWorkload:
    """A workload whose rate is split among pieces: its rate and one piece demand per level."""

    name: str
    rate_rps: float
    pieces: list[Demand]  # one per rate level, paper batch of that rate, least share alone r_lower

    def fraction(self, piece: Demand) -> float:
        """Share of the workload's rate one piece serves (its coefficient in the master row)."""
        return piece.rate_rps / self.rate_rps


def levels(rate: float, r_max: float, own: list[float], grid: int = DEFAULT.split_grid) -> list[float]:
    """Rate levels of one split workload: the grid, the exact remainders and the sizing's rates
    (kept verbatim, so the sizing's demands map onto levels exactly), ascending, without repeats."""
    step = r_max / grid
    found = list(own)
    found += [k * step for k in range(1, grid + 1)]
    first = max(0, math.ceil((rate - r_max) / step - SAME))
    found += [rate - k * step for k in range(first, first + grid + 2) if 0 < rate - k * step <= r_max * (1 + SAME)]
    out: list[float] = []
    for level in sorted(found):
        if level <= 0:
            continue
        if out and level <= out[-1] * (1 + SAME):
            if level in own:  # the sizing's value wins over a grid value it equals up to float noise
                out[-1] = level
            continue
        out.append(level)
    return out


def split_workloads_of(profile: Profile, demands: list[Demand], grid: int = DEFAULT.split_grid
                       ) -> list[SplitWorkload]:
    """Every workload the sizing split, with its pieces (levels one GPU cannot serve alone dropped
    later by the catalogue, like any option without a share alone)."""
    margin = demands[0].margin_pct if demands else 0.0
    out = []
    for name in split_workloads(demands):
        mine = [d for d in demands if d.replica_of == name]
        rate = math.fsum(d.rate_rps for d in mine)
        w = Workload(name=name, model=mine[0].model, slo_ms=mine[0].slo_ms, rate_rps=rate)
        # the sizing's full replicas serve REPLICA_RATE_FRACTION of r_max (sizing.max_rate_alone,
        # a bisection of ~60 predictions, not repeated here)
        r_max = max(d.rate_rps for d in mine if d.full_gpu) / REPLICA_RATE_FRACTION
        pieces = [demand_at(profile, w, f"{name}@{level:.6g}", level, margin)
                  for level in levels(rate, r_max, [d.rate_rps for d in mine], grid)]
        out.append(SplitWorkload(name, rate, pieces))
    return out
