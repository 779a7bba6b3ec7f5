"""Placing changed workloads into a warm start's repaired plan (warm.py `_repair`, issue 24 item 4).

A GPU is a list of option indices; it fits when the oracle finds least shares for its members
together (`Pricer.shares_of`). A changed or new workload goes to the fullest GPU it fits beside;
else into a GPU one of whose movable members leaves for another GPU (where it fits);
else onto a GPU of its own. Afterwards the lightest GPUs are emptied into the others where
every member fits. Cheap local moves only: what they miss, the dive and branch-and-price find.
"""

from __future__ import annotations

import math

import numpy as np

from igniter_opt.solvers.exact.pricing import Pricer


def fits(pricer: Pricer, gpu: list[int]) -> bool:
    """Do these members fit one GPU together?"""
    return pricer.shares_of(tuple(gpu)) is not None


def load(pricer: Pricer, gpu: list[int]) -> float:
    """A GPU's total least share (inf when it does not fit)."""
    least = pricer.shares_of(tuple(gpu))
    return math.inf if least is None else float(np.sum(least))


def by_load(pricer: Pricer, gpus: list[list[int]], skip: int = -1) -> list[int]:
    """GPU indices, fullest first (`skip` left out)."""
    loads = [load(pricer, g) for g in gpus]
    return [j for j in sorted(range(len(gpus)), key=lambda j: -loads[j]) if j != skip]


def place(pricer: Pricer, gpus: list[list[int]], o: int, movable: set[int]) -> None:
    """Option o onto the fullest GPU it fits beside; else into a GPU one of whose movable members
    leaves for another GPU; else a GPU of its own."""
    order = by_load(pricer, gpus)
    for j in order:
        if fits(pricer, gpus[j] + [o]):
            gpus[j].append(o)
            return
    for j in order:
        if _eject(pricer, gpus, j, o, movable):
            return
    gpus.append([o])


def _eject(pricer: Pricer, gpus: list[list[int]], j: int, o: int, movable: set[int]) -> bool:
    """Option o into GPU j when one of its movable members leaves for the fullest other GPU it
    fits on (in place; True when done). Two members leaving was tried: it found no better plan
    where the dive or the integer master did (docs/exact.md)."""
    for m in sorted(set(gpus[j]) & movable):
        rest = list(gpus[j])
        rest.remove(m)
        if not fits(pricer, [*rest, o]):
            continue
        trial = [list(g) for g in gpus]
        trial[j] = [*rest, o]
        if _first_fit(pricer, trial, m, skip=j):
            gpus[:] = trial
            return True
    return False


def _first_fit(pricer: Pricer, gpus: list[list[int]], m: int, skip: int) -> bool:
    """Option m onto the fullest GPU (not `skip`) it fits beside (in place; False when none)."""
    for k in by_load(pricer, gpus, skip=skip):
        if fits(pricer, gpus[k] + [m]):
            gpus[k].append(m)
            return True
    return False


def consolidate(pricer: Pricer, gpus: list[list[int]], movable: set[int], tries: int = 3) -> None:
    """Empty each of the `tries` lightest GPUs whose members all move, when every member fits on
    another GPU (first fit, largest share alone first)."""
    for j in list(reversed(by_load(pricer, gpus)))[:tries]:
        if j >= len(gpus) or not set(gpus[j]) <= movable or len(gpus) < 2:
            continue
        trial = [list(g) for g in gpus]
        if all(_first_fit(pricer, trial, m, skip=j) for m in sorted(gpus[j], key=lambda m: -float(pricer.o.alone[m]))):
            gpus[:] = [g for i, g in enumerate(trial) if i != j]
            return
