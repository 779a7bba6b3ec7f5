"""One change to an instance, as the service sees it between two re-plans (warm-start benchmark
and tests): a workload's rate scaled, a workload removed, or one added."""

from __future__ import annotations

from dataclasses import replace

from igniter_opt.data.instance import Instance, Workload

KINDS = ("up", "down", "remove", "add")


def one_change(instance: Instance, kind: str, index: int, factor: float = 1.2,
               added: Workload | None = None) -> tuple[Instance, str]:
    """The instance after one change to workload `index`: "up" (rate times `factor`), "down"
    (rate times 2 - factor: -20% for 1.2), "remove", or "add" (`added`, or a copy of the
    workload at half its rate under a new name); the new instance and the workload's name."""
    ws = list(instance.workloads)
    w = ws[index]
    if kind == "up":
        ws[index] = replace(w, rate_rps=float(round(w.rate_rps * factor)))
    elif kind == "down":
        ws[index] = replace(w, rate_rps=float(max(1, round(w.rate_rps * (2 - factor)))))
    elif kind == "remove":
        ws.pop(index)
    elif kind == "add":
        w = added or replace(w, name=f"{w.name}-new", rate_rps=float(max(1, round(w.rate_rps / 2))))
        ws.append(w)
    else:
        raise ValueError(f"change {kind!r}: one of {KINDS}")
    return replace(instance, workloads=tuple(ws), name=f"{instance.name}-{kind}-{w.name}"), w.name
