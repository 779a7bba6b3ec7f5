"""A branching node whose restricted master is infeasible: is the node infeasible, or the pool short?

A together rule forbids every column holding one of its types without the other, and the pool may
hold no column with both; the restricted master is then infeasible while the node is not, and
pruning it would cut plans the node holds. Every column holding a type of a together group
(`Rules.groups`) holds the whole group, so the group alone is the least column covering its
rows, and the singletons in the pool cover the other rows. `group_columns` builds those columns;
when one cannot be built the node is infeasible (one option per type) or undecided (several
batch options: another choice might fit).

The fleet's search (`fleet_group_columns`) meets the same gap through a GPU-count branch: a node
asking for at least k GPUs of a type whose allowed pool columns are all forbidden (artificial
columns keep its covering rows feasible, so the count row is what fails). There each group is
offered on every type it is not kept off; a type whose least group column does not fit holds
no column with that group, which is no verdict on the node (another type may hold it).
"""

from __future__ import annotations

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


def least_column(group: set[int], pricer: PricerView) -> Column | bool | None:
    """The group as one column, each type at its option of least share alone; False when no column
    holds the group (a type without options, or one option per type and no fit); None when the
    least options do not fit but other options might."""
    alone, types = pricer.o.alone, pricer.option_type
    options = [np.flatnonzero((types == t) & np.isfinite(alone)) for t in sorted(group)]
    if any(o.size == 0 for o in options):
        return False
    members = tuple(sorted(int(o[np.argmin(alone[o])]) for o in options))
    shares = pricer.shares_of(members)
    if shares is None:
        return False if all(o.size == 1 for o in options) else None
    return Column(members, tuple(float(x) for x in shares))


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
    the verdict is False when a group breaks an apart rule, None when some type's least column
    did not fit but another batch might, True otherwise (the caller proves infeasibility by the
    LP that still fails with these columns)."""
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
