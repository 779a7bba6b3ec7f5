"""Benchmarks: instance families and the random generator, batch solving, reports and plots."""

from __future__ import annotations

from igniter_opt.lazy import lazy_getattr

# Public API, imported on first use (these modules pull in optional or heavy dependencies).
_EXPORTS = {
    "COMMITTED": "igniter_opt.bench.families",
    "FAMILIES": "igniter_opt.bench.families",
    "FamilySpec": "igniter_opt.bench.families",
    "write_family": "igniter_opt.bench.families",
    "random_instance": "igniter_opt.bench.generate",
    "BatchSummary": "igniter_opt.bench.batch",
    "ProcessPool": "igniter_opt.bench.pool",
    "ResultsWriter": "igniter_opt.bench.results",
    "Task": "igniter_opt.bench.results",
    "TaskPool": "igniter_opt.bench.pool",
    "read_results": "igniter_opt.bench.results",
    "run_batch": "igniter_opt.bench.batch",
    "solve_task": "igniter_opt.bench.pool",
    "Report": "igniter_opt.bench.report",
    "ResultRow": "igniter_opt.bench.report",
    "build_report": "igniter_opt.bench.report",
    "load_report": "igniter_opt.bench.report",
    "markdown": "igniter_opt.bench.report",
    "rich_tables": "igniter_opt.bench.report",
    "write_figures": "igniter_opt.bench.plots",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
