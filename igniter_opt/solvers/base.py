"""What a solver is: the `Solver` protocol, the common options every entry point takes, and the
options dataclasses the built-in solvers share.

A solver turns sized demands into a plan: `solve(instance, profile, demands, options) -> Plan`,
with `options` an instance of its own frozen options dataclass. `options(common)` builds that
dataclass from the `SolveOptions` the CLI and the batch runner pass to every solver, so a caller
either passes `SolveOptions` (and gets each solver's defaults for the rest) or the solver's own
options value (e.g. a compact-model variant with one strengthening off).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from igniter_opt.data.instance import Instance
    from igniter_opt.data.plan import Plan
    from igniter_opt.model import Profile
    from igniter_opt.solvers.sizing import Demand

from igniter_opt.data.errors import InputError

OptionsT = TypeVar("OptionsT")


@dataclass(frozen=True)
class SolveOptions:
    """Options of a solve call that every solver may read (the heuristics ignore them).

    `margin_pct` is applied once for all solvers: `solve` sizes the demands at the margin, and each
    Demand carries its tightened limits (latency_limit_ms, rate_target_rps); it is also in every
    solver's own options for a solver that builds its own limits.
    """

    time_limit: float = 60.0
    threads: int = 1
    mip_gap: float = 0.0
    batch_policy: str | None = None  # None: the instance's own policy
    force: bool = False  # patterns: enumerate even above the size limit
    verbose: bool = False
    margin_pct: float = 0.0  # robustness margin (%): latency <= (1 - m) SLO/2, throughput >= (1 + m) rate

    def __post_init__(self) -> None:
        check_highs_options(self)


def check_time_limit(value: object, option: str = "--time-limit") -> None:
    """A time limit is a finite number of seconds > 0 (InputError otherwise)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value <= 0:
        raise InputError(f"{option} {value!r}: must be a finite number of seconds > 0")


def check_highs_options(options: SolveOptions | HighsOptions) -> None:
    """Refuse (InputError, exit 2) a time limit that is not finite and > 0, threads < 1, or a MIP
    gap outside [0, 1): a negative limit or zero threads would otherwise be taken silently."""
    check_time_limit(options.time_limit)
    threads = options.threads
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InputError(f"--threads {threads!r}: must be an integer >= 1")
    gap = options.mip_gap
    if isinstance(gap, bool) or not isinstance(gap, (int, float)) or not 0 <= gap < 1:
        raise InputError(f"--mip-gap {gap!r}: must be a number in [0, 1)")


class Solver(Protocol[OptionsT]):
    """A registered solver (see igniter_opt.solvers.registry)."""

    name: str  # its registry name, written into each plan's `solver` field

    def options(self, common: SolveOptions) -> OptionsT:
        """This solver's options from the common ones (its defaults for everything else)."""
        ...

    def solve(self, instance: Instance, profile: Profile, demands: list[Demand], options: OptionsT) -> Plan:
        """A plan for the sized demands (verified afterwards by igniter_opt.solvers.solve)."""
        ...


@dataclass(frozen=True)
class FunctionSolver(Generic[OptionsT]):
    """A `Solver` made of a solve function and the constructor of its options from the common ones."""

    name: str
    function: Callable[[Instance, Profile, list[Demand], OptionsT], Plan]
    make_options: Callable[[SolveOptions], OptionsT]

    def options(self, common: SolveOptions) -> OptionsT:
        return self.make_options(common)

    def solve(self, instance: Instance, profile: Profile, demands: list[Demand], options: OptionsT) -> Plan:
        return self.function(instance, profile, demands, options)


@dataclass(frozen=True)
class NoOptions:
    """Options of a solver that has none but the margin and a time limit (the heuristics: past
    it they place each remaining workload on its own GPU and say so)."""

    margin_pct: float = 0.0
    time_limit: float | None = None

    @classmethod
    def from_common(cls, common: SolveOptions) -> NoOptions:
        return cls(margin_pct=common.margin_pct, time_limit=common.time_limit)


@dataclass(frozen=True)
class HighsOptions:
    """Options of a solver that runs HiGHS: whole-call time limit, threads, MIP gap, log."""

    time_limit: float = 60.0
    threads: int = 1
    mip_gap: float = 0.0
    verbose: bool = False
    margin_pct: float = 0.0

    def __post_init__(self) -> None:
        check_highs_options(self)

    @classmethod
    def from_common(cls, common: SolveOptions) -> HighsOptions:
        return cls(time_limit=common.time_limit, threads=common.threads, mip_gap=common.mip_gap,
                   verbose=common.verbose, margin_pct=common.margin_pct)
