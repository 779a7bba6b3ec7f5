"""A branch's together rules as the compiled set search (kernel.py) reads them.

Ryan-Foster branching (branching.py) puts types together (all or none of a group in a set) or
apart. Apart pairs reach the kernel as an array of type pairs; together groups as one row of member
types per group (`together_groups`), with each type's last position in the search order, so that
`owes` can tell, as the search grows a set in position order, whether a group held in part can
still be completed.
"""

from __future__ import annotations

import numpy as np

from igniter_opt.solvers.exact.kernelshares import compiled as _compiled


@_compiled
def owes(gmem, tlast, used, t, q):  # pragma: no cover - compiled
    """For the set of types `used` plus type t at position q, under together groups (gmem: one
    row of member types per group, -1 padded): 0 when it obeys every group (all or none), 1 when
    it holds a group partly but the missing members can still join (each has a position from q
    on: the search adds positions in order), 2 when one cannot (no extension obeys the rules)."""
    state = 0
    for g in range(gmem.shape[0]):
        present, size = 0, 0
        for k in range(gmem.shape[1]):
            u = gmem[g, k]
            if u < 0:
                break
            size += 1
            if used[u] > 0 or u == t:
                present += 1
        if present == 0 or present == size:
            continue
        state = 1
        for k in range(size):
            u = gmem[g, k]
            if used[u] == 0 and u != t and tlast[u] < q:
                return 2
    return state


def together_groups(rules, ptype: np.ndarray, types: int) -> tuple[np.ndarray, np.ndarray]:
    """A node's together groups for the kernel: member types per group (-1 padded) and each
    type's last position in the search order (-1: none)."""
    groups = rules.sorted_groups()
    gmem = np.full((len(groups), max((len(g) for g in groups), default=0)), -1, dtype=np.int64)
    for i, g in enumerate(groups):
        gmem[i, :len(g)] = g
    tlast = np.full(types, -1, dtype=np.int64)
    np.maximum.at(tlast, ptype, np.arange(ptype.size))
    return gmem, tlast
