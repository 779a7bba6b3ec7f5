"""`igniter top`: the live table of a deployment's windows, from a pluggable source.

A source is anything with `latest() -> list[WindowRecord]` (the newest window of each workload)
and `describe() -> str`. `RunDirSource` reads RUN_DIR/monitor.jsonl, which a running
`igniter run`/`measure` writes; a source reading the provisioning service's /metrics or API can
be added beside it without touching the table (`render_table`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from rich.table import Table
from rich.text import Text

from igniter_opt.deploy.monitor import MONITOR_FILE, JsonlTail, WindowRecord


class MonitorSource(Protocol):
    """Where `igniter top` gets its windows."""

    def latest(self) -> list[WindowRecord]: ...

    def describe(self) -> str: ...


class RunDirSource:
    """The newest window per workload in RUN_DIR/monitor.jsonl, read incrementally (only the lines
    added since the last call; from the start again when a new measurement rewrites the file)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / MONITOR_FILE
        self._tail = JsonlTail(self.path)
        self._newest: dict[str, WindowRecord] = {}

    def describe(self) -> str:
        return str(self.path)

    def latest(self) -> list[WindowRecord]:
        new = self._tail.poll()
        if self._tail.restarted:
            self._newest = {}  # the file was rewritten: a new measurement
        for r in new:
            if r.workload not in self._newest or r.t_s >= self._newest[r.workload].t_s:
                self._newest[r.workload] = r
        return list(self._newest.values())


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def render_table(records: list[WindowRecord], title: str = "") -> Table:
    """One row per workload: rate, throughput, p50/p99 against the SLO (red when broken), violations,
    share, GPU, the server answering and its shadow state, and Triton's queue/compute means."""
    t_s = max((r.t_s for r in records), default=0.0)
    table = Table(title=title or f"live windows at t = {t_s:.1f} s")
    for col in ("workload", "rate req/s", "req/s", "p50 ms", "p99 ms", "SLO ms", "SLO viol. %", "errors",
                "share %", "GPU", "server", "shadow", "queue ms", "compute ms", "batch"):
        table.add_column(col, justify="left" if col in ("workload", "server", "shadow") else "right")
    for r in sorted(records, key=lambda r: r.workload):
        p99 = Text(f"{_ms(r.p99_ms)} > SLO", style="bold red") if r.breaks_slo else Text(_ms(r.p99_ms))
        tri = r.triton or {}
        shadow = Text(r.shadow, style="bold yellow" if r.shadow == "active" else "")
        table.add_row(Text(r.workload), f"{r.rate_rps:g}", f"{r.throughput_rps:.1f}", _ms(r.p50_ms), p99,
                      f"{r.slo_ms:g}", f"{r.violation_pct:.1f}", str(r.errors),
                      "-" if r.share_pct is None else f"{r.share_pct:g}", "-" if r.gpu is None else str(r.gpu),
                      Text(r.server or "-"), shadow, _ms(tri.get("queue_ms")),
                      _ms(tri.get("compute_ms")), "-" if "batch" not in tri else f"{tri['batch']:.1f}")
    return table
