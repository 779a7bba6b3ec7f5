"""Neighbourhoods of the incumbent for its destroy-and-repair by residual searches.

At 500 workloads the final phase's dives end 5-7 GPUs above ceil(LP), at the seed plan (issue
24, item 3). The incumbent itself is then a better start than another dive: its GPUs of largest
reduced cost at the root's duals hold its slack (a plan of UB GPUs against an LP of value LP has
reduced costs summing to about UB - LP). Taking out a few of them and asking a residual
branch-and-price (residual.py) to cover what they held with one GPU fewer is a large-neighbourhood
search whose repair is exact: its root proves at once when the neighbourhood cannot shrink. (At
200, where the dives end one GPU above ceil(LP), it found nothing: settings.lns_rows.)

This module picks the GPUs and expresses a plan as column counts of the pool (master.columns_of
the other way); `primal.py` runs the searches. improve.py's destroy-and-repair (first fit) does the
same for plans without split workloads, outside branch-and-price.
"""

from __future__ import annotations

import numpy as np

from igniter_opt.model.predict import Array
from igniter_opt.solvers.exact.master import Column, Master


def counts_of(master: Master, plan: list[Column]) -> Array:
    """How often each pool column is in `plan` (its columns are added to the pool first)."""
    for col in plan:
        master.add(col)
    index = {c.members: j for j, c in enumerate(master.columns)}
    counts = np.zeros(len(master.columns))
    np.add.at(counts, [index[c.members] for c in plan], 1.0)
    return counts


def pick(master: Master, counts: Array, duals: Array, gpus: int, rng: np.random.Generator | None
         ) -> Array:
    """Counts without `gpus` of the plan's GPUs: those of largest reduced cost at `duals`, or
    (with `rng`) drawn with weight reduced cost + its mean, so the drawn neighbourhoods differ but
    lean the same way."""
    rc = np.maximum(master.reduced_costs(duals), 0.0)
    slots = np.repeat(np.arange(len(counts)), np.round(counts).astype(int))  # one entry per GPU
    take = min(gpus, slots.size)
    if rng is None:
        out = slots[np.argsort(-rc[slots], kind="stable")[:take]]
    else:
        weight = rc[slots] + rc[slots].mean() + 1e-9
        out = rng.choice(slots, size=take, replace=False, p=weight / weight.sum())
    kept = counts.copy()
    np.subtract.at(kept, out, 1.0)
    return kept
