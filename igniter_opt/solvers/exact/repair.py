"""A branching node whose restricted master is infeasible: is the node infeasible, or the pool short?

A together rule forbids every column holding one of its types without the other, and the pool may
hold no column with both; the restricted master is then infeasible while the node is not, and
pruning it would cut plans the node holds. Every column holding a type of a together group
(`Rules.groups`) holds the whole group, so the group alone is the least column covering its
rows, and the singletons in the pool cover the other rows. `group_columns` builds those columns;
when one cannot be built the node is infeasible: no combination of the group's options fits
(under policy joint a type has several batch options, and each combination is tried, up to
MOST_COMBINATIONS; past that the node is undecided).

The fleet's search (`fleet_group_columns`) meets the same gap through a GPU-count branch: a node
asking for at least k GPUs of a type whose allowed pool columns are all forbidden (artificial
columns keep its covering rows feasible, so the count row is what fails). There each group is
offered on every type it is not kept off; a type whose least group column does not fit holds
no column with that group, which is no verdict on the node (another type may hold it).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from igniter_opt.solvers.exact.branching import FleetRules, Rules
from igniter_opt.solvers.exact.master import Column
from igniter_opt.solvers.exact.view import PricerView


@dataclass
class Repair:
    """The node's verdict (True: these columns make it feasible; False: proven infeasible; None:
    cannot tell) and the columns to add."""

    feasible: bool | None
    columns: list[Column]


MOST_COMBINATIONS = 4096  # option combinations one group's repair tries (joint) before it cannot tell


def least_column(group: set[int], pricer: PricerView, most: int = MOST_COMBINATIONS) -> Column | bool | None:
    """The group as one column: each type at its option of least share alone or, when that does
    not fit (several batch options: policy joint), the first combination of options that fits.
    False when no column holds the group (a type without options, or no combination fits: a
    column holding the group holds one of them, and members only add interference); None when
    the combinations number more than `most` and the ones of least shares did not fit."""
    alone, types = pricer.o.alone, pricer.option_type
    options = [np.flatnonzero((types == t) & np.isfinite(alone)) for t in sorted(group)]
    if any(o.size == 0 for o in options):
        return False
    ordered = [o[np.argsort(alone[o], kind="stable")] for o in options]
    if math.prod(o.size for o in ordered) > most:
        ordered = [o[:1] for o in ordered]  # the least shares alone, and no verdict if they fail
        undecided: bool | None = None
    else:
        undecided = False
    for combo in itertools.product(*ordered):
        members = tuple(sorted(int(o) for o in combo))
        shares = pricer.shares_of(members)
        if shares is not None:
            return Column(members, tuple(float(x) for x in shares))
    return undecided


def _breaks_apart(group: set[int], rules: Rules) -> bool:
    return any(a in group and b in group for a, b in rules.apart)


def group_columns(rules: Rules, pricer: PricerView) -> Repair:
    """Each together group as one column (each type's option of least share alone)."""
    columns: list[Column] = []
    for group in rules.groups():
        if _breaks_apart(group, rules):
            return Repair(False, [])
        col = least_column(group, pricer)
        if not isinstance(col, Column):
            return Repair(col, [])
        columns.append(col)
    return Repair(True, columns)


def fleet_group_columns(rules: FleetRules, pricers: Sequence[PricerView], offsets: Sequence[int]) -> Repair:
    """Each together group as one column on every type it is not kept off (global option indices);
    the verdict is False when a group breaks an apart rule, None when some type could not be
    decided (too many batch combinations to try), True otherwise (the caller proves
    infeasibility by the LP that still fails with these columns)."""
    columns: list[Column] = []
    undecided = False
    for group in rules.pairs.groups():
        if _breaks_apart(group, rules.pairs):
            return Repair(False, [])
        for g, (pricer, offset) in enumerate(zip(pricers, offsets)):
            if group & rules.off.get(g, frozenset()):
                continue
            col = least_column(group, pricer)
            if isinstance(col, Column):
                columns.append(Column(tuple(m + offset for m in col.members), col.shares))
            undecided |= col is None
    return Repair(None if undecided else True, columns)
