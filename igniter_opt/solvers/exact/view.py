"""What the searches read of the pricer (pricing.Pricer), as a Protocol.

The set search (levels.py) and the state search (statespace.py) are built by the pricer and read
its catalogue; naming that here keeps the import graph acyclic (pricing imports the searches,
the searches import only this), type-only imports included.
"""

from __future__ import annotations

from typing import Protocol

from igniter_opt.model.coefficients import Hardware
from igniter_opt.model.predict import Array
from igniter_opt.solvers.exact.oracle import Options
from igniter_opt.solvers.exact.settings import ExactSettings


class PricerView(Protocol):
    """The catalogue a search prices over: hardware, options, their types and demands, the pair
    table, the tuning, and the least shares of a set of options (None when it does not fit)."""

    hw: Hardware
    settings: ExactSettings
    o: Options
    option_type: Array
    demand: Array
    pair: Array

    def shares_of(self, members: tuple[int, ...]) -> Array | None: ...
