"""benchmarks/bench_exact.py's summary over repeated runs (--repeats): the threads make a cut
solve take another path run to run, so the table says which instances were proven always and
which at least once."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from rich.console import Console

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_exact", ROOT / "benchmarks" / "bench_exact.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(seed: int, status: str, gpus: int = 10) -> dict:
    return {"n": 200, "seed": seed, "greedy": 12, "greedy_ok": True, "gpus": gpus,
            "bound": gpus if status == "optimal" else gpus - 1, "status": status, "feasible": True,
            "seconds": 60.0, "message": "", "rss_mb": 300.0}


def test_repeated_runs_count_instances_proven_always_and_ever():
    bench = _bench()
    rows = [_row(1, "optimal"), _row(1, "optimal"),  # proven in both runs
            _row(2, "optimal"), _row(2, "time_limit", 11),  # in one of two
            _row(3, "time_limit", 11), _row(3, "time_limit", 11)]  # in neither
    assert bench.proven_instances(rows) == (1, 2)
    console = Console(width=200, record=True)
    console.print(bench.table(rows, "t"))
    line = next(x for x in console.export_text().splitlines() if x.strip().startswith("│") and "200" in x)
    cells = [c.strip() for c in line.strip("│ ").split("│")]
    assert cells[:4] == ["200", "3", "3/6", "1 / 2"]  # 3 instances, 3 of 6 runs, always 1, ever 2


def test_repeats_below_one_is_refused_with_exit_2(capsys):
    bench = _bench()
    with pytest.raises(SystemExit) as exc:
        bench.main(["--sizes", "32", "--repeats", "0"])
    assert exc.value.code == 2
    assert "--repeats" in capsys.readouterr().err
