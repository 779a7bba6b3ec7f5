"""Errors the CLI turns into one line and an exit code instead of a traceback."""


class InputError(ValueError):
    """Bad input: a file, field or value the user gave. The CLI exits with code 2."""


class InfeasibleError(RuntimeError):
    """No plan can meet the SLOs under the model (e.g. a workload no GPU can serve)."""
