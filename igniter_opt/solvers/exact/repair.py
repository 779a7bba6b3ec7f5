"""A branching node whose restricted master is infeasible: is the node infeasible, or the pool short?

A together rule forbids every column holding one of its types without the other, and the pool may
hold no column with both; the restricted master is then infeasible while the node is not, and
pruning it would cut plans the node holds. Every column holding a type of a together group
(`Rules.groups`) holds the whole group, so the group alone is the least column covering its
rows, and the singletons in the pool cover the other rows. `group_columns` builds those columns;
when one cannot be built the node is infeasible (one option per type) or undecided (several
batch options: another choice might fit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from igniter_opt.solvers.exact.branching import Rules
from igniter_opt.solvers.exact.master import Column
from igniter_opt.solvers.exact.view import PricerView


@dataclass
class Repair:
    """The node's verdict (True: these columns make it feasible; False: proven infeasible; None:
    cannot tell) and the columns to add."""

    feasible: bool | None
    columns: list[Column]


def group_columns(rules: Rules, pricer: PricerView) -> Repair:
    """Each together group as one column (each type's option of least share alone)."""
    alone, types = pricer.o.alone, pricer.option_type
    columns: list[Column] = []
    for group in rules.groups():
        if any(a in group and b in group for a, b in rules.apart):
            return Repair(False, [])
        options = [np.flatnonzero((types == t) & np.isfinite(alone)) for t in sorted(group)]
        if any(o.size == 0 for o in options):
            return Repair(False, [])
        members = tuple(sorted(int(o[np.argmin(alone[o])]) for o in options))
        shares = pricer.shares_of(members)
        if shares is None:
            return Repair(False if all(o.size == 1 for o in options) else None, [])
        columns.append(Column(members, tuple(float(x) for x in shares)))
    return Repair(True, columns)
