"""Which batches each shareable demand may use, shared by `patterns` and the exact solver.

Policy `paper`: the demand's own batch. Policy `joint`: every batch of a configuration that
survives the compact model's dominance pruning (formulations/bounds.py; sound: some optimal plan
uses only those).
"""

from __future__ import annotations

import math

from igniter_opt.model import Profile
from igniter_opt.solvers.formulations.bounds import prune
from igniter_opt.solvers.formulations.common import shareable_configs
from igniter_opt.solvers.sizing import Demand


def batch_options(profile: Profile, demands: list[Demand], policy: str,
                  deadline: float = math.inf) -> dict[int, list[int]]:
    """Batches each shareable demand may use (paper batch, or the undominated ones of `joint`)."""
    if policy != "joint":
        return {i: [d.batch] for i, d in enumerate(demands) if not d.full_gpu}
    cfgs, _ = prune(profile.hardware, shareable_configs(profile, demands, policy), deadline=deadline)
    return {c.demand: sorted({int(b) for b in c.batch}) for c in cfgs}
