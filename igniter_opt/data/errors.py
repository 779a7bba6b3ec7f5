"""Errors the CLI turns into one line and an exit code instead of a traceback."""

from __future__ import annotations

import importlib
from types import ModuleType


class InputError(ValueError):
    """Bad input: a file, field or value the user gave. The CLI exits with code 2."""


class InfeasibleError(RuntimeError):
    """No plan can meet the SLOs under the model (e.g. a workload no GPU can serve)."""


class DeadlineReached(RuntimeError):
    """A solver's preparation passed its deadline before the search could start; the solver
    answers with the best plan it has and status "time_limit" (never "infeasible")."""


class SolveInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a solve. `plan` is the best plan found so far (status "interrupted"; it may
    have no GPUs when the solver had none yet).

    A solver may raise it carrying its incumbent, return a plan with status "interrupted", or let
    a plain KeyboardInterrupt through; `solvers.solve.solve` turns all three into this exception
    with a verified plan. It is a KeyboardInterrupt, so code that stops on Ctrl-C still stops.
    """

    def __init__(self, plan=None, message: str = "interrupted"):
        super().__init__(message)
        self.plan = plan


class MissingExtraError(InputError):
    """An optional dependency is missing; the message names the extra that installs it."""


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import an optional dependency, or raise MissingExtraError saying which extra to install:
    `report figures: matplotlib is not installed; pip install 'igniter-opt[plot]'`."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(f"{what}: {module.split('.')[0]} is not installed; "
                                f"pip install 'igniter-opt[{extra}]'") from None
