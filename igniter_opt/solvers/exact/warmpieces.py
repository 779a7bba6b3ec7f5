"""A changed split workload's pieces in a warm start's repaired plan (warm.py, issue 24 item 4).

When the rate of a workload above one GPU changes, its rate levels change too (splits.py: the
remainders and the sizing's own rates follow the rate; the grid k r_max / 10 does not). The
previous plan's pieces whose level is still a level stay where they were; pieces the new rate
does not need go (the smallest first, while the rest still cover it); what is left uncovered is
covered by the smallest level that covers it (else the largest, repeatedly), each piece placed
like a changed workload. Without this the repair gave up and the solve started from the seed
heuristics' plan, one or more GPUs above the previous one (docs/exact.md, "Warm re-plans").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from igniter_opt.solvers.exact.splits import SAME, SplitWorkload

Place = Callable[[list[list[int]], int], None]  # puts an option onto the GPUs (warmrepair.place)


def cover(gpus: list[list[int]], splits: Iterable[tuple[SplitWorkload, dict[float, int]]], place: Place) -> bool:
    """Each changed split workload's pieces on `gpus` made to cover its new rate (in place; GPUs
    left empty are dropped); `splits`: each with its rate levels (rate -> option). False when a
    workload has no levels (the repair gives up)."""
    for sw, levels in splits:
        if not levels:
            return False
        rate_of = {o: r for r, o in levels.items()}
        held = sorted((rate_of[o], j, o) for j, g in enumerate(gpus) for o in g if o in rate_of)
        need = sw.rate_rps * (1 - SAME)
        covered = sum(r for r, _, _ in held)
        for r, j, o in held:  # smallest first: what the new rate does not need
            if covered - r >= need:
                gpus[j].remove(o)
                covered -= r
        ordered = sorted(levels)
        while covered < need:
            level = next((x for x in ordered if covered + x >= need), ordered[-1])
            place(gpus, levels[level])
            covered += level
    gpus[:] = [g for g in gpus if g]
    return True
